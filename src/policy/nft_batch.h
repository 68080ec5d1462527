// The one door to the kernel's nftables: a script run through libnftables as
// ONE batch, so the kernel commits it as one transaction or not at all.
// Shared by the policy table, the datapath's anti-spoofing table and the
// metadata guard, so they also share the lock that keeps libnftables
// single-threaded.
#pragma once

#include <string>

#include "common/result.h"

namespace terway::policy {

// Runs an nft script (one batch) in a namespace ("" = the caller's) through
// libnftables; on failure the error carries nft's message, with code
// kNotFound when nft says "No such file or directory" (a table, chain or
// set that is not there). `json_out` set: list output as JSON.
Status RunNftBatch(const std::string& netns, const std::string& script, std::string* json_out = nullptr);

}  // namespace terway::policy
