// Parsing of RPC-style requests: "a=1&b=2" from a GET query string or an
// application/x-www-form-urlencoded POST body. Hostile input never crashes the
// server: every malformation is an error value (fuzzed in the unit tests).
#pragma once

#include <string_view>
#include <vector>

#include "cloud/signer.h"
#include "common/result.h"

namespace terway::vpcsim {

// Duplicate keys are refused (they would make the signature ambiguous); a key
// without '=' has an empty value; empty segments ("a=1&&b=2") are skipped.
Result<cloud::QueryParams> ParseFormEncoded(std::string_view text);

// Collects "Prefix.1", "Prefix.2", ... (the RepeatList convention) in index
// order. Fails on a gap, a non-numeric index or more than max entries.
Result<std::vector<std::string>> RepeatList(const cloud::QueryParams& p, std::string_view prefix,
                                            size_t max = 1000);

}  // namespace terway::vpcsim
