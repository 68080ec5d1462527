// A set of IPv4 addresses kept as sorted, disjoint, non-adjacent closed
// intervals: what an nftables `flags interval` set holds. Peers become these
// (pod IPs, ipBlock cidr minus except, Calico nets minus notNets), so the
// kernel's lookup and Explain's lookup read the same data.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/ip.h"

namespace terway::policy {

class Ipv4RangeSet {
 public:
  using Range = std::pair<uint32_t, uint32_t>;  // inclusive, host order

  static Ipv4RangeSet All();
  void Add(Ipv4Addr a) { AddRange(a.value(), a.value()); }
  void Add(const Ipv4Cidr& c) { AddRange(c.network().value(), c.Broadcast().value()); }
  void AddRange(uint32_t first, uint32_t last);
  void AddAll(const Ipv4RangeSet& other);
  void Subtract(const Ipv4RangeSet& other);
  void Intersect(const Ipv4RangeSet& other);
  bool Contains(Ipv4Addr a) const;
  bool Empty() const { return ranges_.empty(); }
  const std::vector<Range>& ranges() const { return ranges_; }
  // "a.b.c.d" or "a.b.c.d-e.f.g.h" per range, comma separated (nft element syntax).
  std::string ToString() const;
  bool operator==(const Ipv4RangeSet&) const = default;

 private:
  std::vector<Range> ranges_;
};

}  // namespace terway::policy
