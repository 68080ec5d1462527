// Link-name derivation. Linux link names are at most 15 bytes (IFNAMSIZ - 1),
// while cloud ids ("eni-2ze8f3k1x9...") are longer: names are derived from a
// stable hash of the id so the same id always maps to the same link, across
// restarts, without storing the mapping anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace terway::netlink {

inline constexpr size_t kMaxLinkNameLen = 15;

// FNV-1a 64-bit with a final avalanche mix; stable across platforms and releases (never std::hash, whose
// value may change between library versions).
uint64_t StableHash(std::string_view text);

// prefix + lowercase hex digits of StableHash(id), filling up to 15 bytes.
// prefix must leave room for at least 8 hex digits.
std::string HashedLinkName(std::string_view prefix, std::string_view id);

// Validates a name the kernel would accept: 1..15 bytes, no '/', ':' or
// whitespace, not "." or "..".
Status ValidateLinkName(std::string_view name);

}  // namespace terway::netlink
