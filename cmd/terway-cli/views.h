// terway-cli's commands over terwayd's operator views (list, show, mapping,
// metadata, nodeconfig; src/daemon/cli_views.h): one `inspect` request on
// the socket, the JSON answer rendered as aligned text or printed as it is.
#pragma once

#include <string>

#include "cni/protocol.h"

namespace terway::cli {

enum class Output { kText, kJson };

// Prints the view and returns the exit code: 0, or 1 when terwayd cannot be
// asked, refuses, or (mapping) reports an inconsistency.
int Inspect(const std::string& socket, const cni::protocol::InspectQuery& q, Output out);

}  // namespace terway::cli
