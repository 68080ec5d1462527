// What a compiled policy becomes in the kernel: one table `inet terway`,
// as plain values (names, elements, rule text), with no I/O. Rendering
// (nft_render.h) turns models into nft batches; the table (nft_table.h)
// sends them; two models differ exactly where the kernel must change.
//
//   table inet terway {
//     set s_<hash>  { type ipv4_addr; flags interval; ... }  one per distinct peer,
//     set s6_<hash> { type ipv6_addr; flags interval; ... }  per family
//     set t_<hash>  { type ipv4_addr . inet_proto . inet_service; ... }
//     set t6_<hash> { type ipv6_addr . inet_proto . inet_service; ... }
//                                     named ports and Calico services: tuples
//     counter c<hash> {}                                     one per compiled rule
//     counter <chain>_drop {}                                one per chain ending in deny
//     map pod_ingress  { type ipv4_addr : verdict; }         pod IP -> jump in_<pod>
//     map pod_egress   { type ipv4_addr : verdict; }         pod IP -> jump eg_<pod>
//     map pod_ingress6 { type ipv6_addr : verdict; }         a dual-stack pod's IPv6:
//     map pod_egress6  { type ipv6_addr : verdict; }         the same chains
//     chain forward { hook forward priority filter; policy accept;
//       ct state established,related accept   (replies of allowed connections)
//       icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit,
//                     nd-neighbor-advert, nd-redirect } accept
//                                             (neighbour discovery, as ARP, is
//                                             never policy's: before `invalid`,
//                                             since conntrack tracks none of it)
//       ct state invalid drop
//       ip saddr vmap @pod_egress             (egress chains `return` on allow)
//       ip6 saddr vmap @pod_egress6
//       ip daddr vmap @pod_ingress
//       ip6 daddr vmap @pod_ingress6 }
//     chain in_<hash> / eg_<hash> { the first tier's rules; its default action }
//     chain in_<hash> / eg_<hash> { each later tier taking part, likewise }
//   }
//
// Tiers: a pod's chain for a direction is one chain per tier taking part,
// entered from the map by `jump` and chained by `goto`, so a `return`
// anywhere returns to the forward chain: Allow is `accept` (ingress) or
// `return` (egress, so the destination's ingress chain still runs); Pass
// and a Pass default action `goto` the next tier's chain, or allow after
// the last one (the namespace profile); a Deny default action drops.
//
// Dual stack: one chain per pod and direction serves both families. A rule
// naming addresses is written once per family (`ip saddr @s_x`, `ip6 saddr
// @s6_x`, sharing the counter); a rule naming none matches both families as
// it is. The model keeps each set pair as one entry whose elements list
// both families (IPv4 elements then IPv6 ones, as IpRangeSet writes them),
// and each pod map entry by address text; the renderer sends each element
// to its family's set or map, so a pod's IPv6 joining a set is one element.
//
// Only the forward hook: shared-ENI pod traffic is routed by the node
// (pod -> tw* veth -> another tw* or the ENI), while the node's own traffic
// to its pods leaves through the output hook, which we leave alone: traffic
// from a pod's own node is always allowed, as Kubernetes requires.
// Per-packet cost: two map lookups plus the rules of at most two pods, each
// one set lookup; it does not grow with the number of pods or policies.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "policy/compiler.h"

namespace terway::policy {

inline constexpr const char* kNftFamily = "inet";
inline constexpr const char* kNftTable = "terway";
// The forward chain's neighbour discovery rule (RFC 4861 types 133-137):
// never subject to isolation, as ARP is not (nft's inet filter never sees
// ARP). Router and neighbour solicitations and adverts and redirects only:
// echo and every other ICMPv6 type stay under policy.
inline constexpr const char* kNeighbourDiscoveryAccept =
    "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } "
    "accept";

// A named counter's values as the kernel reports them.
struct RuleCounter {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// The named objects of our table (base chain included): what a render
// declares, or what the kernel lists.
struct NftObjects {
  std::set<std::string> chains, sets, maps, counters;
  bool operator==(const NftObjects&) const = default;
};

// A compiled policy as the kernel objects it becomes: sets with their
// elements, chains with their rules, map elements, counters. Names are
// stable across compiles (see compiler.h), so an unchanged pod has an
// unchanged chain here.
struct NftModel {
  // name -> elements of both families ("" when empty): the kernel sets
  // `name` (IPv4) and Ipv6SetName(name).
  std::map<std::string, std::string> sets;
  std::map<std::string, std::string> tuple_sets;

  std::map<std::string, std::vector<std::string>> chains;  // name -> rules, in order
  // pod IP (either family) -> chain: pod_ingress / pod_ingress6 by family
  std::map<std::string, std::string> ingress, egress;
  std::set<std::string> counters;
  bool operator==(const NftModel&) const = default;
};
NftModel ModelOf(const CompiledPolicy& policy);

// The IPv6 twin of a set the model names (s_x -> s6_x, t_x -> t6_x).
std::string Ipv6SetName(const std::string& name);
// The model's name of a kernel set: its own, or the pair an IPv6 twin
// belongs to (s6_x -> s_x).
std::string ModelSetName(const std::string& kernel_name);
// A model's element list ("a, b-c, x::1 . 6 . 80") as its IPv4 elements
// and its IPv6 ones (an IPv6 element is the one with a colon).
std::pair<std::string, std::string> SplitElementsByFamily(const std::string& elements);

// The objects a render of the model declares.
NftObjects ObjectsOf(const NftModel& model);
NftObjects ObjectsOf(const CompiledPolicy& policy);

}  // namespace terway::policy
