// What a compiled policy becomes in the kernel: one table `inet terway`,
// as plain values (names, elements, rule text), with no I/O. Rendering
// (nft_render.h) turns models into nft batches; the table (nft_table.h)
// sends them; two models differ exactly where the kernel must change.
//
//   table inet terway {
//     set s_<hash> { type ipv4_addr; flags interval; ... }   one per distinct peer
//     set t_<hash> { type ipv4_addr . inet_proto . inet_service; ... }
//                                     named ports and Calico services: tuples
//     counter c<hash> {}                                     one per compiled rule
//     counter <chain>_drop {}                                one per chain ending in deny
//     map pod_ingress { type ipv4_addr : verdict; }          pod IP -> jump in_<pod>
//     map pod_egress  { type ipv4_addr : verdict; }          pod IP -> jump eg_<pod>
//     chain forward { hook forward priority filter; policy accept;
//       ct state established,related accept   (replies of allowed connections)
//       ct state invalid drop
//       ip saddr vmap @pod_egress             (egress chains `return` on allow)
//       ip daddr vmap @pod_ingress }
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
  std::map<std::string, std::string> sets;                 // name -> elements ("" when empty)
  std::map<std::string, std::string> tuple_sets;           // name -> elements ("" when empty)
  std::map<std::string, std::vector<std::string>> chains;  // name -> rules, in order
  std::map<std::string, std::string> ingress, egress;      // pod IP -> chain (the two maps)
  std::set<std::string> counters;
  bool operator==(const NftModel&) const = default;
};
NftModel ModelOf(const CompiledPolicy& policy);

// The objects a render of the model declares.
NftObjects ObjectsOf(const NftModel& model);
NftObjects ObjectsOf(const CompiledPolicy& policy);

}  // namespace terway::policy
