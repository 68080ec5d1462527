// The eBPF datapath's policy isolation maps: the writer (the policy
// controller's apply path only) and the admission rule. See ebpf_eni_policy.h.
#include "datapath/ebpf_eni_policy.h"

#include <utility>

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

bool PolicyMapFailedOpen(const Error& e) { return e.code == ErrorCode::kUnavailable; }

Status CheckIsolatedPodPoliced(const ebpf::PolicyMap& map, Ipv4Addr ip, const std::string& who) {
  auto refuse = [&](const std::string& why) {
    Error e = Errorf(ErrorCode::kUnavailable,
                     "{} ({}) is isolated by NetworkPolicy, but {}: on the eBPF fast path it would bypass its "
                     "policy, so it gets none; terwayd keeps retrying the map (Warning Event EbpfPolicyMapNotSynced "
                     "on the Node says why) and the runtime's retry of the ADD succeeds once the map is written",
                     who, ip.ToString(), why);
    e.retryable = true;
    return e;
  };
  auto synced = map.PolicySynced();
  if (!synced.ok()) {
    return refuse("the eBPF datapath's policy state cannot be read (" + synced.error().ToString() + ")");
  }
  if (!*synced) return Ok();  // every pod policed
  auto has = map.HasPolicyPod(ip);
  if (!has.ok()) return refuse("the eBPF datapath's policy map cannot be read (" + has.error().ToString() + ")");
  if (*has) return Ok();
  return refuse("the eBPF datapath's policy map lacks its address and could not be marked not authoritative");
}

Status PolicyMapWriter::Sync(ebpf::PolicyMap* map, const std::set<Ipv4Addr>& isolated, bool exact) {
  // Not loaded: no program reads a policy map; the load's hook asks for a
  // sync once there is one.
  if (map == nullptr) return Ok();
  Status st = Write(*map, isolated, exact);
  if (st.ok()) {
    if (exact) synced_.store(true);
    return st;
  }
  synced_.store(false);
  // Fail closed: the map may lack a pod a chain isolates, so it is no longer
  // authoritative and every pod takes the stack, until a full sync succeeds.
  shadow_.reset();
  Error e = std::move(st).error();
  if (e.code == ErrorCode::kUnavailable) e.code = ErrorCode::kKernel;  // kUnavailable says "failed open" alone
  const char* what = exact ? "writing the pods policy isolates (after the apply)"
                           : "adding the pods policy is about to isolate";
  if (Status closed = map->SetPolicySynced(false); !closed.ok()) {
    // Not even that: the state may still say authoritative while the map
    // lacks what the failed write was to add. Nothing safer is left to do
    // here (the pods' entries are Ensure's); the caller refuses new pods
    // the map does not police (CheckIsolatedPodPoliced) and retries.
    Error open = Errorf(ErrorCode::kUnavailable,
                        "eBPF datapath: {} failed ({}), and marking the policy map not authoritative failed too ({}): "
                        "isolated pods the map lacks are NOT policed on the fast path until a sync succeeds; new "
                        "such pods are refused",
                        what, e.ToString(), closed.error().ToString());
    open.retryable = true;
    return open;
  }
  return std::move(e).Wrap(
      fmt::format("eBPF datapath: {}; every pod takes the host stack until a sync succeeds", what));
}

Status PolicyMapWriter::Write(ebpf::PolicyMap& map, const std::set<Ipv4Addr>& isolated, bool exact) {
  if (!shadow_) {
    // Unknown (start: the pins of an earlier run, in step with its table
    // until this sync; or after a failure): the map says.
    Shadow have;
    TERWAY_ASSIGN_OR_RETURN(have.in_map, map.ListPolicyPods());
    TERWAY_ASSIGN_OR_RETURN(have.synced, map.PolicySynced());
    shadow_ = std::move(have);
  }
  PolicyMapPlan plan = PlanPolicyMap(shadow_->in_map, isolated, exact);
  // Removals (exact only: the kernel has dropped their chains) before
  // additions, so extras never keep a full map from taking the isolated.
  // Safe: while the map is authoritative nothing is missing (the call
  // before the chains added it, or failed and marked it not so).
  for (const auto& ip : plan.remove) {
    TERWAY_TRY(map.DeletePolicyPod(ip));
    shadow_->in_map.erase(ip);
  }
  for (const auto& ip : plan.add) {
    TERWAY_TRY(map.AddPolicyPod(ip));
    shadow_->in_map.insert(ip);
  }
  if (exact && !shadow_->synced) {
    TERWAY_TRY(map.SetPolicySynced(true));
    shadow_->synced = true;
  }
  return Ok();
}

// ---- EbpfEniDatapath's side ----

Status EbpfEniDatapath::PolicyIsolating(const std::set<Ipv4Addr>& isolated) {
  return policy_writer_.Sync(Loaded(), isolated, false);
}

Status EbpfEniDatapath::PolicyIsolationApplied(const std::set<Ipv4Addr>& isolated) {
  return policy_writer_.Sync(Loaded(), isolated, true);
}

std::optional<bool> EbpfEniDatapath::PolicyMapSynced() const {
  if (Loaded() == nullptr) return std::nullopt;
  return policy_writer_.synced();
}

Status EbpfEniDatapath::AdmitToFastPath(ebpf::DatapathPrograms& programs, const PodNetwork& pod, Ipv4Addr ip) {
  if (!opt_.may_isolate || !opt_.may_isolate(ip)) return Ok();
  return CheckIsolatedPodPoliced(programs, ip, DescribePod(pod));
}

}  // namespace terway::datapath
