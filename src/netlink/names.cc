#include "netlink/names.h"

#include <fmt/format.h>

namespace terway::netlink {

uint64_t StableHash(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // FNV-1a barely mixes the last bytes into the high bits, and cloud ids
  // often differ only at the end ("eni-...a", "eni-...b"): finish with
  // MurmurHash3's fmix64 so every input bit reaches every output bit.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

std::string HashedLinkName(std::string_view prefix, std::string_view id) {
  std::string hex = fmt::format("{:016x}", StableHash(id));
  size_t room = prefix.size() < kMaxLinkNameLen ? kMaxLinkNameLen - prefix.size() : 0;
  if (room < 8) room = 8;  // never fewer than 32 bits of hash; prefix is truncated instead
  std::string p(prefix.substr(0, kMaxLinkNameLen - room));
  return p + hex.substr(0, room);
}

Status ValidateLinkName(std::string_view name) {
  if (name.empty() || name.size() > kMaxLinkNameLen) {
    return Errorf(ErrorCode::kInvalidArgument, "link name '{}' must be 1..{} bytes", name,
                  kMaxLinkNameLen);
  }
  if (name == "." || name == "..") {
    return Errorf(ErrorCode::kInvalidArgument, "link name '{}' is reserved", name);
  }
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\0') {
      return Errorf(ErrorCode::kInvalidArgument, "link name '{}' contains '{}'", name, c);
    }
  }
  return Ok();
}

}  // namespace terway::netlink
