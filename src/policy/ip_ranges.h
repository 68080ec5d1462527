// A set of addresses of both IP families kept as sorted, disjoint,
// non-adjacent closed intervals: what an nftables `flags interval` set holds.
// Peers become these (pod IPs, ipBlock cidr minus except, Calico nets minus
// notNets), so the kernel's lookup and Explain's lookup read the same data.
//
// Both families share one 128-bit space: an IPv6 address is itself, an IPv4
// address stands at its IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291
// 2.5.5.2). So "every address" is one interval and a peer's constraints
// intersect and subtract across families without a case per family: an IPv6
// CIDR admits no IPv4 address, as Calico and Kubernetes mean. The mapped
// block itself never appears on the wire (the kernel drops IPv6 packets with
// IPv4-mapped addresses), so an IPv6 CIDR's part in it is left out.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/ip.h"

namespace terway::policy {

using IpKey = unsigned __int128;
inline constexpr IpKey kIpv4MappedBase = IpKey{0xffff} << 32;

inline IpKey KeyOf(Ipv4Addr a) { return kIpv4MappedBase | a.value(); }
IpKey KeyOf(const Ipv6Addr& a);
inline bool IsIpv4Key(IpKey k) { return (k >> 32) == 0xffff; }
// "a.b.c.d" or IPv6 text.
std::string KeyToString(IpKey k);
// An IPv4 or IPv6 address in text.
Result<IpKey> ParseIpKey(std::string_view text);

class IpRangeSet {
 public:
  using Range = std::pair<IpKey, IpKey>;  // inclusive

  static IpRangeSet All();
  void Add(Ipv4Addr a) { AddRange(KeyOf(a), KeyOf(a)); }
  void Add(const Ipv6Addr& a);
  void Add(const Ipv4Cidr& c) { AddRange(KeyOf(c.network()), KeyOf(c.Broadcast())); }
  void Add(const Ipv6Cidr& c);
  void AddKey(IpKey k) { AddRange(k, k); }
  void AddRange(IpKey first, IpKey last);
  void AddAll(const IpRangeSet& other);
  void Subtract(const IpRangeSet& other);
  void Intersect(const IpRangeSet& other);
  bool Contains(IpKey k) const;
  bool Contains(Ipv4Addr a) const { return Contains(KeyOf(a)); }
  bool Contains(const Ipv6Addr& a) const { return Contains(KeyOf(a)); }
  bool Empty() const { return ranges_.empty(); }
  const std::vector<Range>& ranges() const { return ranges_; }
  // nft element syntax, comma separated: "a.b.c.d" or "a.b.c.d-e.f.g.h" per
  // IPv4 range, then "x::y" or "x::y-x::z" per IPv6 range. A range across
  // the IPv4-mapped block is written as its parts in each family.
  std::string ToString() const;
  bool operator==(const IpRangeSet&) const = default;

 private:
  std::vector<Range> ranges_;
};

}  // namespace terway::policy
