// EbpfEniDatapath: the policy map (terway_dp_policy, terway_dp_policy_state),
// written by the policy controller's apply path only. See ebpf_eni.h.
#include <utility>

#include "common/log.h"
#include "datapath/ebpf_eni.h"

namespace terway::datapath {

PolicyMapPlan PlanPolicyMap(const std::set<Ipv4Addr>& in_map, const std::set<Ipv4Addr>& isolated, bool exact) {
  PolicyMapPlan plan;
  for (const auto& ip : isolated) {
    if (!in_map.count(ip)) plan.add.push_back(ip);
  }
  if (exact) {
    for (const auto& ip : in_map) {
      if (!isolated.count(ip)) plan.remove.push_back(ip);
    }
  }
  return plan;
}

Status EbpfEniDatapath::PolicyIsolating(const std::set<Ipv4Addr>& isolated) {
  return SyncPolicyMap(isolated, false);
}

Status EbpfEniDatapath::PolicyIsolationApplied(const std::set<Ipv4Addr>& isolated) {
  return SyncPolicyMap(isolated, true);
}

Status EbpfEniDatapath::SyncPolicyMap(const std::set<Ipv4Addr>& isolated, bool exact) {
  // Not loaded: no program reads a policy map; the load's hook asks for a
  // sync once there is one.
  ebpf::DatapathPrograms* programs = Loaded();
  if (programs == nullptr) return Ok();
  auto write = [&]() -> Status {
    if (!policy_shadow_) {
      // Unknown (start: the pins of an earlier run, in step with its table
      // until this sync; or after a failure): the map says.
      PolicyShadow have;
      TERWAY_ASSIGN_OR_RETURN(have.in_map, programs->ListPolicyPods());
      TERWAY_ASSIGN_OR_RETURN(have.synced, programs->PolicySynced());
      policy_shadow_ = std::move(have);
    }
    PolicyMapPlan plan = PlanPolicyMap(policy_shadow_->in_map, isolated, exact);
    // Removals (exact only: the kernel has dropped their chains) before
    // additions, so extras never keep a full map from taking the isolated.
    // Safe: while the map is authoritative nothing is missing (the call
    // before the chains added it, or failed and marked it not so).
    for (const auto& ip : plan.remove) {
      TERWAY_TRY(programs->DeletePolicyPod(ip));
      policy_shadow_->in_map.erase(ip);
    }
    for (const auto& ip : plan.add) {
      TERWAY_TRY(programs->AddPolicyPod(ip));
      policy_shadow_->in_map.insert(ip);
    }
    if (exact && !policy_shadow_->synced) {
      TERWAY_TRY(programs->SetPolicySynced(true));
      policy_shadow_->synced = true;
    }
    return Ok();
  };
  Status st = write();
  if (st.ok()) return st;
  // Fail closed: the map may lack a pod a chain isolates, so it is no longer
  // authoritative and every pod takes the stack, until a full sync succeeds.
  policy_shadow_.reset();
  if (Status closed = programs->SetPolicySynced(false); !closed.ok()) {
    // Not even that: the map still lacks what the failed write was to add.
    // Nothing safer is left to do here; the caller reports and retries.
    log::Error("eBPF datapath: marking the policy map not synced after a failed write: {}",
               closed.error().ToString());
  }
  return std::move(st).error().Wrap(exact ? "eBPF datapath: writing the pods policy isolates (after the apply); "
                                            "every pod takes the host stack until a sync succeeds"
                                          : "eBPF datapath: adding the pods policy is about to isolate; every pod "
                                            "takes the host stack until a sync succeeds");
}

}  // namespace terway::datapath
