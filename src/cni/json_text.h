// JSON and untrusted text, in one place for the plugin and the protocol:
// strict field readers that turn a wrong type or an out-of-range number into
// an Error (never an exception, never a silent truncation), a UTF-8 check for
// text that must travel inside JSON, and the one way to serialise JSON that
// cannot throw.
//
// Why: nlohmann::json throws type_error from get<int>() on nothing but
// silently wraps 2^32+1 to 1, throws from dump() on a string that is not
// UTF-8, and its parser stops at a NUL byte as if the input ended there.
// Each of those reached the plugin's output once; these helpers close them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace terway::cni {

// Offset of the first byte of `s` that is not part of a well-formed UTF-8
// sequence (RFC 3629: no overlong forms, no surrogates, nothing past
// U+10FFFF), or nullopt when all of `s` is UTF-8. JSON text is UTF-8, so a
// string that fails this cannot be put into a CNI result or a frame as it is.
std::optional<size_t> FirstInvalidUtf8(std::string_view s);

// Checks text from the environment (or another non-JSON source) that will be
// echoed inside JSON: valid UTF-8 and no NUL (a C API would cut it there).
// The error (kInvalidArgument) names `what` and the offending byte.
Status CheckText(std::string_view what, std::string_view s);

// Parses `text` as one JSON value. A NUL byte anywhere is refused (the
// parser would treat it as the end of input and ignore what follows), as is
// anything that is not JSON. `what` names the input in the error.
Result<nlohmann::json> ParseJsonText(std::string_view text, std::string_view what);

// Serialises j; bytes that are not UTF-8 are replaced by U+FFFD instead of
// throwing. Everything the plugin prints or sends goes through this.
std::string DumpJson(const nlohmann::json& j);

// Strict readers of an object's field. Absent or null -> the empty value.
// Errors (kInvalidArgument) name the field.
Result<std::string> OptString(const nlohmann::json& obj, const char* key);
Result<std::vector<std::string>> OptStrings(const nlohmann::json& obj, const char* key);
// A JSON integer in 0..max, kept exact. Negative numbers, fractions and
// values above max are errors naming the accepted range, never truncated.
Result<std::optional<uint64_t>> OptUint(const nlohmann::json& obj, const char* key, uint64_t max);

}  // namespace terway::cni
