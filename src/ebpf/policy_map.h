// PolicyMap: the eBPF datapath's policy isolation maps as an interface --
// terway_dp_policy (pod IPv4s a NetworkPolicy chain may isolate) and
// terway_dp_policy_state (1: that map is authoritative; else every pod is
// policed). DatapathPrograms implements it over the pinned maps; the
// datapath's writer (src/datapath, ebpf_eni_policy.h) takes this interface,
// so its fail-closed logic is unit-tested with failures injected by a fake.
#pragma once

#include <set>

#include "common/ip.h"
#include "common/result.h"

namespace terway::ebpf {

class PolicyMap {
 public:
  virtual ~PolicyMap() = default;
  // Single-entry, idempotent writes.
  virtual Status AddPolicyPod(Ipv4Addr ip) = 0;
  virtual Status DeletePolicyPod(Ipv4Addr ip) = 0;  // success when there is none
  virtual Result<bool> HasPolicyPod(Ipv4Addr ip) const = 0;
  virtual Result<std::set<Ipv4Addr>> ListPolicyPods() const = 0;
  // Whether the policy map is authoritative (false: every pod is policed).
  virtual Status SetPolicySynced(bool synced) = 0;
  virtual Result<bool> PolicySynced() const = 0;
};

}  // namespace terway::ebpf
