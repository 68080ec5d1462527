// The compiled policy as nftables state: one table `inet terway`, written
// through libnftables as ONE batch (one kernel transaction) per render, so
// the kernel never holds half a policy, and changed in place so its hook is
// never absent.
//
//   table inet terway {
//     set s<N>     { type ipv4_addr; flags interval; ... }   one per distinct peer
//     counter c<N> {}                                        one per compiled rule
//     map pod_ingress { type ipv4_addr : verdict; }          pod IP -> jump in_<pod>
//     map pod_egress  { type ipv4_addr : verdict; }          pod IP -> jump eg_<pod>
//     chain forward { hook forward priority filter; policy accept;
//       ct state established,related accept   (replies of allowed connections)
//       ct state invalid drop
//       ip saddr vmap @pod_egress             (egress chains `return` on allow)
//       ip daddr vmap @pod_ingress }
//     chain in_<pod> / eg_<pod> { rules in evaluation order; counted drop }
//   }
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
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "policy/nft_batch.h"
#include "policy/compiler.h"

namespace terway::policy {

inline constexpr const char* kNftFamily = "inet";
inline constexpr const char* kNftTable = "terway";

struct RuleCounter {
  std::string name;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

// The named objects of our table the kernel holds (base chain included).
struct NftObjects {
  std::set<std::string> chains, sets, maps, counters;
  bool operator==(const NftObjects&) const = default;
};

// A compiled policy as the kernel objects it becomes: sets with their
// elements, chains with their rules, map elements, counters. Two models
// differ exactly where the kernel must change.
struct NftModel {
  std::map<std::string, std::string> sets;                 // name -> elements ("" when empty)
  std::map<std::string, std::vector<std::string>> chains;  // name -> rules, in order
  std::map<std::string, std::string> ingress, egress;      // pod IP -> chain (the two maps)
  std::set<std::string> counters;
  bool operator==(const NftModel&) const = default;
};
NftModel ModelOf(const CompiledPolicy& policy);

// The objects a render declares.
NftObjects ObjectsOf(const NftModel& model);
NftObjects ObjectsOf(const CompiledPolicy& policy);

// The whole batch, one kernel transaction that changes the table in place:
// rules flushed, sets and maps flushed, objects the new model lacks
// deleted, everything declared again. The table and its base chain are
// never deleted, so the forward hook stays registered across every change
// (tests/root/policy probes a denied flow while large tables are replaced),
// and named counters that survive keep their values with no read-back
// (their names are stable across compiles).
// `existing`: what the kernel holds now (empty: no table yet).
std::string RenderNftScript(const CompiledPolicy& policy, const NftObjects& existing = {});
std::string RenderNftScript(const NftModel& model, const NftObjects& existing = {});

// The batch that turns the kernel's table from `from` into `to`, touching
// only what differs (one transaction too): a new pod costs its chains, its
// map elements and the sets it joins, not the whole table. "" when equal.
std::string RenderNftDelta(const NftModel& from, const NftModel& to);

// "policy show": per pod chain, each rule with its counter values.
std::string FormatPolicyShow(const CompiledPolicy& policy, const std::vector<RuleCounter>& counters);

// The kernel side, in one network namespace ("" = the caller's). Remembers
// the model it applied and sends only the difference next time; replaces
// the table whole (in place) when it does not know what the kernel holds:
// first use, or after a batch failed.
class NftPolicyTable {
 public:
  explicit NftPolicyTable(std::string netns = "") : netns_(std::move(netns)) {}

  // Replaces everything of ours with `policy`, atomically and in place
  // (see RenderNftScript). On failure the kernel keeps the previous table.
  Status Apply(const CompiledPolicy& policy);
  // Deletes our table; success when it is already gone.
  Status Remove();
  Result<std::vector<RuleCounter>> ReadCounters() const;
  // Our table's named objects as the kernel lists them (empty: no table).
  Result<NftObjects> ListObjects() const;
  // Ok when the kernel holds the objects of what this handle applied last
  // (nothing applied yet: Ok). Otherwise an error saying what differs, and
  // the handle forgets what it applied: the next Apply replaces the table
  // whole.
  Status Verify();

 private:
  std::string netns_;
  std::optional<NftModel> applied_;
};

}  // namespace terway::policy
