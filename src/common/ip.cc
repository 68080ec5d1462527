#include "common/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

namespace terway {

Result<Ipv4Addr> Ipv4Addr::Parse(std::string_view text) {
  std::string s(text);
  in_addr a{};
  // inet_pton rejects leading zeros forms like "010.0.0.1" ambiguity and
  // shorthand like "10.1"; exactly what a config parser should do.
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &a) != 1) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not an IPv4 address", text);
  }
  return Ipv4Addr(ntohl(a.s_addr));
}

uint32_t Ipv4Addr::network_order() const { return htonl(v_); }

std::string Ipv4Addr::ToString() const {
  return fmt::format("{}.{}.{}.{}", v_ >> 24, (v_ >> 16) & 0xff, (v_ >> 8) & 0xff, v_ & 0xff);
}

Ipv4Cidr::Ipv4Cidr(Ipv4Addr addr, int prefix_len) : len_(prefix_len) {
  net_ = Ipv4Addr(addr.value() & mask());
}

uint32_t Ipv4Cidr::mask() const {
  return len_ == 0 ? 0 : (~uint32_t{0} << (32 - len_));
}

static Result<int> ParsePrefixLen(std::string_view text, std::string_view whole, int max) {
  int len = -1;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), len);
  if (ec != std::errc() || p != text.data() + text.size() || len < 0 || len > max) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' has a bad prefix length (want 0-{})",
                  whole, max);
  }
  return len;
}

Result<Ipv4Cidr> Ipv4Cidr::Parse(std::string_view text, bool allow_host_bits) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not a CIDR (want a.b.c.d/len)", text);
  }
  auto addr = Ipv4Addr::Parse(text.substr(0, slash));
  if (!addr) return Errorf(ErrorCode::kInvalidArgument, "'{}' is not a CIDR: bad address", text);
  auto len = ParsePrefixLen(text.substr(slash + 1), text, 32);
  if (!len) return len.error();
  Ipv4Cidr c(*addr, *len);
  if (!allow_host_bits && c.network() != *addr) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' has host bits set (did you mean {}?)",
                  text, c.ToString());
  }
  return c;
}

bool Ipv4Cidr::Contains(Ipv4Addr a) const { return (a.value() & mask()) == net_.value(); }

bool Ipv4Cidr::Contains(const Ipv4Cidr& o) const {
  return o.len_ >= len_ && Contains(o.net_);
}

bool Ipv4Cidr::Overlaps(const Ipv4Cidr& o) const { return Contains(o.net_) || o.Contains(net_); }

std::string Ipv4Cidr::ToString() const { return fmt::format("{}/{}", net_.ToString(), len_); }

Result<Ipv6Addr> Ipv6Addr::Parse(std::string_view text) {
  std::string s(text);
  std::array<uint8_t, 16> b{};
  if (s.empty() || inet_pton(AF_INET6, s.c_str(), b.data()) != 1) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not an IPv6 address", text);
  }
  return Ipv6Addr(b);
}

std::string Ipv6Addr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, b_.data(), buf, sizeof(buf));
  return buf;
}

Result<Ipv6Cidr> Ipv6Cidr::Parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not an IPv6 CIDR", text);
  }
  auto addr = Ipv6Addr::Parse(text.substr(0, slash));
  if (!addr) return addr.error();
  auto len = ParsePrefixLen(text.substr(slash + 1), text, 128);
  if (!len) return len.error();
  auto bytes = addr->bytes();
  for (int i = 0; i < 16; i++) {
    int keep = std::min(8, std::max(0, *len - i * 8));
    bytes[i] &= static_cast<uint8_t>(keep == 0 ? 0 : (0xff << (8 - keep)));
  }
  return Ipv6Cidr(Ipv6Addr(bytes), *len);
}

bool Ipv6Cidr::Contains(const Ipv6Addr& a) const {
  const auto& n = net_.bytes();
  const auto& b = a.bytes();
  for (int i = 0; i < 16; i++) {
    int keep = std::min(8, std::max(0, len_ - i * 8));
    uint8_t m = static_cast<uint8_t>(keep == 0 ? 0 : (0xff << (8 - keep)));
    if ((b[i] & m) != n[i]) return false;
  }
  return true;
}

Ipv6Addr Ipv6Cidr::At(uint64_t i) const {
  auto b = net_.bytes();
  uint64_t low = 0;
  for (int k = 8; k < 16; k++) low = (low << 8) | b[k];
  low += i;
  for (int k = 15; k >= 8; k--) {
    b[k] = static_cast<uint8_t>(low & 0xff);
    low >>= 8;
  }
  return Ipv6Addr(b);
}

std::string Ipv6Cidr::ToString() const { return fmt::format("{}/{}", net_.ToString(), len_); }

Result<MacAddr> MacAddr::Parse(std::string_view text) {
  std::array<uint8_t, 6> b{};
  unsigned v[6];
  char tail;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5], &tail) != 6 || s.size() != 17) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not a MAC address", text);
  }
  for (int i = 0; i < 6; i++) b[i] = static_cast<uint8_t>(v[i]);
  return MacAddr(b);
}

std::string MacAddr::ToString() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b_[0], b_[1], b_[2], b_[3],
                     b_[4], b_[5]);
}

}  // namespace terway
