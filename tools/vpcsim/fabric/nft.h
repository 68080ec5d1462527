// A thin edge over libnftables: run an nft script inside a network namespace.
// nftables state is per namespace, and libnftables talks netlink from the
// calling thread's namespace, so each run happens on a RunInNetns thread.
#pragma once

#include <string>

#include "common/result.h"

namespace terway::vpcsim {

// Runs commands (nft syntax, several lines = one atomic batch). On failure the
// error carries nft's own message.
Status RunNft(const std::string& netns, const std::string& commands);
// Runs a list command and returns its JSON output (`nft -j`).
Result<std::string> RunNftJson(const std::string& netns, const std::string& command);

}  // namespace terway::vpcsim
