// IPv4/IPv6 address and CIDR value types. Parsing never throws; it returns
// Result with a message naming the bad text.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace terway {

class Ipv4Addr {
 public:
  constexpr Ipv4Addr() = default;
  // host-order value: 10.0.0.1 == 0x0a000001
  constexpr explicit Ipv4Addr(uint32_t host_order) : v_(host_order) {}
  static Result<Ipv4Addr> Parse(std::string_view text);

  constexpr uint32_t value() const { return v_; }     // host order
  uint32_t network_order() const;
  std::string ToString() const;
  auto operator<=>(const Ipv4Addr&) const = default;

 private:
  uint32_t v_ = 0;
};

class Ipv4Cidr {
 public:
  Ipv4Cidr() = default;
  Ipv4Cidr(Ipv4Addr addr, int prefix_len);
  // "10.0.0.0/24"; host bits must be zero unless allow_host_bits.
  static Result<Ipv4Cidr> Parse(std::string_view text, bool allow_host_bits = false);

  Ipv4Addr network() const { return net_; }
  int prefix_len() const { return len_; }
  uint32_t mask() const;
  Ipv4Addr netmask() const { return Ipv4Addr(mask()); }
  uint64_t size() const { return uint64_t{1} << (32 - len_); }
  bool Contains(Ipv4Addr a) const;
  bool Contains(const Ipv4Cidr& other) const;
  bool Overlaps(const Ipv4Cidr& other) const;
  // The i-th address of the block (0 = network address).
  Ipv4Addr At(uint64_t i) const { return Ipv4Addr(net_.value() + static_cast<uint32_t>(i)); }
  Ipv4Addr Broadcast() const { return Ipv4Addr(net_.value() | ~mask()); }
  std::string ToString() const;
  auto operator<=>(const Ipv4Cidr&) const = default;

 private:
  Ipv4Addr net_;
  int len_ = 0;
};

class Ipv6Addr {
 public:
  Ipv6Addr() = default;
  explicit Ipv6Addr(const std::array<uint8_t, 16>& b) : b_(b) {}
  static Result<Ipv6Addr> Parse(std::string_view text);
  const std::array<uint8_t, 16>& bytes() const { return b_; }
  std::string ToString() const;
  auto operator<=>(const Ipv6Addr&) const = default;

 private:
  std::array<uint8_t, 16> b_{};
};

class Ipv6Cidr {
 public:
  Ipv6Cidr() = default;
  Ipv6Cidr(Ipv6Addr addr, int prefix_len) : net_(addr), len_(prefix_len) {}
  static Result<Ipv6Cidr> Parse(std::string_view text);
  Ipv6Addr network() const { return net_; }
  int prefix_len() const { return len_; }
  bool Contains(const Ipv6Addr& a) const;
  // Adds a 64-bit offset to the low half of the network address.
  Ipv6Addr At(uint64_t i) const;
  std::string ToString() const;
  auto operator<=>(const Ipv6Cidr&) const = default;

 private:
  Ipv6Addr net_;
  int len_ = 0;
};

// MAC address "00:16:3e:xx:xx:xx" (Alibaba Cloud's OUI is 00:16:3e).
class MacAddr {
 public:
  MacAddr() = default;
  explicit MacAddr(const std::array<uint8_t, 6>& b) : b_(b) {}
  static Result<MacAddr> Parse(std::string_view text);
  const std::array<uint8_t, 6>& bytes() const { return b_; }
  std::string ToString() const;  // lower-case, colon separated
  auto operator<=>(const MacAddr&) const = default;

 private:
  std::array<uint8_t, 6> b_{};
};

}  // namespace terway
