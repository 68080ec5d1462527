// The eBPF datapath's policy isolation maps, terwayd's side: which pods the
// programs must hand to the host stack because a NetworkPolicy chain may
// isolate them (terway_dp_policy), and whether that map is authoritative
// (terway_dp_policy_state 1; else every pod is policed: fail closed).
//
// PolicyMapWriter is the maps' one writer (the policy controller's apply
// path, or terwayd with policy off). It reaches the kernel through
// ebpf::PolicyMap, so its failure handling is unit-tested with a fake.
#pragma once

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "ebpf/policy_map.h"

namespace terway::datapath {

// The writes that bring the policy map from `in_map` to hold `isolated`:
// all of them when `exact`, else only the additions (a superset is enough
// before the chains are applied; extras go only once they were removed).
struct PolicyMapPlan {
  std::vector<Ipv4Addr> add, remove;
};
PolicyMapPlan PlanPolicyMap(const std::set<Ipv4Addr>& in_map, const std::set<Ipv4Addr>& isolated, bool exact);

// A failed write after which the map could not even be marked not
// authoritative: its state may still say 1, so a pod a chain isolates that
// the map lacks is fast-pathed past its chain (fail OPEN) until a sync
// succeeds. PolicyMapWriter returns kUnavailable (retryable) for it and only
// for it: a write that failed closed keeps its own code (never kUnavailable).
bool PolicyMapFailedOpen(const Error& e);

// The admission rule of a pod a chain may isolate: the fast path may carry
// it only while the map polices it -- the map holds its address, or is not
// authoritative (every pod policed). Ok then; else kUnavailable naming the
// pod (`who`), why and what happens next (the writer retries; the runtime
// retries the ADD). Two map lookups.
Status CheckIsolatedPodPoliced(const ebpf::PolicyMap& map, Ipv4Addr ip, const std::string& who);

class PolicyMapWriter {
 public:
  // Brings the map to `isolated` (PlanPolicyMap): before the kernel gets
  // the chains (`exact` false: adds the missing), or after (`exact`: drops
  // the extras, then marks the map authoritative). On a failed write it
  // marks the map not authoritative (every pod policed), forgets what it
  // believed the map held, and returns the error; when even that mark
  // fails, the error is PolicyMapFailedOpen. map null (nothing loaded): Ok,
  // nothing written. One caller at a time (the map's one writer).
  Status Sync(ebpf::PolicyMap* map, const std::set<Ipv4Addr>& isolated, bool exact);
  // The last write left the map exact and authoritative (false before the
  // first full sync and after any failure). Any thread.
  bool synced() const { return synced_.load(); }

 private:
  Status Write(ebpf::PolicyMap& map, const std::set<Ipv4Addr>& isolated, bool exact);

  // What the map holds and whether it is authoritative, as this writer last
  // wrote them; unset: unknown (start, after a failure), read from the map.
  // Touched by the writer only.
  struct Shadow {
    std::set<Ipv4Addr> in_map;
    bool synced = false;
  };
  std::optional<Shadow> shadow_;
  std::atomic<bool> synced_{false};
};

}  // namespace terway::datapath
