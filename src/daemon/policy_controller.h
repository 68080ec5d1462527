// PolicyController: terwayd's NetworkPolicy enforcement for one node.
//
// Watches what decides policy, cluster-wide: every pod (peers live on every
// node), namespaces, nodes (their addresses), networking.k8s.io/v1
// NetworkPolicies and Calico's NetworkPolicy / GlobalNetworkPolicy (the
// projectcalico.org/v3 API when its API server is installed, else the
// crd.projectcalico.org/v1 objects Calico keeps in the Kubernetes datastore,
// else none). With Calico, also what its rules refer to, each kind only
// when the API serves it: Tiers, NetworkSets and GlobalNetworkSets (same
// API as the policies), ServiceAccounts (serviceAccounts matches) and
// EndpointSlices (services matches). Every change that can change policy
// marks the model dirty; one worker recompiles and replaces the nft table in
// one transaction, so bursts of changes coalesce.
//
// Fail closed, and say so: a policy that cannot be read is not dropped but
// enforced on the safe side (its pods isolated), like any part of a policy
// that cannot be enforced exactly (Policy::fail_closed). Each such policy
// gets a Warning Event (reason PolicyNotEnforcedAsWritten) on its object,
// once per generation per node, counts in terway_policy_fail_closed{kind}
// and is listed by `terway-cli policy show`.
//
// No window for a new pod: CNI ADD calls PodStarting with the address it
// just allocated, which compiles and applies synchronously (the pod's chain
// exists before its veth does), because the Pod object in the API carries no
// IP yet at that point. The local ledger of addresses this node handed out
// is the truth for local pods; status.podIP is for pods of other nodes.
//
// With policy disabled (eni-config's disable_network_policy) the daemon
// creates no controller at all: no watches on policy objects, no rules, and
// RemoveTable clears what an earlier run left.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/ip.h"
#include "daemon/metrics.h"
#include "daemon/pod_policy.h"
#include "daemon/policy_fail_closed.h"
#include "daemon/policy_sources.h"
#include "k8s/cache.h"
#include "k8s/client.h"
#include "policy/compiler.h"
#include "policy/nft_table.h"

namespace terway::daemon {

struct PolicyControllerOptions {
  std::string node_name;
  std::vector<Ipv4Addr> node_ips;
  // Network namespace holding the node's nft table; "" = terwayd's own.
  std::string netns;
  std::chrono::milliseconds sync_timeout{30000};
  // Writes a Warning Event on an object (best-effort; must not block: the
  // daemon queues it on KubeNode's writer). Unset: no Events.
  std::function<void(const k8s::ObjectReference& object, const std::string& reason, const std::string& message)>
      warn_event;
};

class PolicyController : public PodPolicy {
 public:
  // Starts the caches and waits for their first lists. local_ips: the pods
  // this node holds addresses for (from the state database), "ns/name" -> IP.
  // Then compiles and applies once, synchronously: after a restart the
  // table is right before the first ADD is served.
  static Result<std::unique_ptr<PolicyController>> Create(std::shared_ptr<k8s::RestClient> client,
                                                          PolicyControllerOptions opts,
                                                          std::map<std::string, Ipv4Addr> local_ips,
                                                          Metrics* metrics);
  ~PolicyController() override;

  // CNI ADD: the pod's address is known; its chain is in the kernel when
  // this returns Ok. An error means the pod would run unprotected: the ADD
  // must fail (and is undone).
  Status PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip) override;
  // CNI DEL or an undone ADD: the address no longer belongs to the pod.
  void PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) override;

  // terway-cli policy explain / show, from the model the kernel holds.
  Result<policy::Explanation> Explain(const std::string& from, const std::string& to, policy::Protocol proto,
                                      uint16_t port) override;
  Result<std::string> Show() override;

  // Deletes the node's policy table (policy disabled, node cleaned).
  static Status RemoveTable(const std::string& netns);

  // How often the worker verifies that the kernel still holds what was
  // applied (someone may flush the ruleset or delete our table).
  static constexpr std::chrono::seconds kVerifyPeriod{30};

 private:
  PolicyController(std::shared_ptr<k8s::RestClient> client, PolicyControllerOptions opts, Metrics* metrics);
  void MarkDirty();
  void Worker();
  // Snapshot -> compile -> apply; serialised by apply_mu_.
  Status CompileAndApply(const char* why);
  Status CompileAndApplyLocked(const char* why);  // apply_mu_ held
  // Starts the caches of Calico's other objects the API serves (tiers,
  // network sets, service accounts, EndpointSlices).
  void WatchCalicoObjects();
  // Copies the policy objects and what Calico's rules refer to from the
  // caches (everything but pods, namespaces and nodes).
  void SnapshotPolicyObjects(PolicySources& src) const;
  // After an apply: the metric, and the Events now due. apply_mu_ held.
  void ReportFailClosed(const policy::CompiledPolicy& model, const PolicyObjects& objects);

  std::shared_ptr<k8s::RestClient> client_;
  PolicyControllerOptions opts_;
  Metrics* metrics_;
  CalicoApi calico_ = CalicoApi::kNone;

  std::unique_ptr<k8s::RestListerWatcher> pods_lw_, ns_lw_, nodes_lw_, netpol_lw_, calico_lw_, calico_global_lw_;
  std::unique_ptr<k8s::Cache<k8s::Pod>> pods_;
  std::unique_ptr<k8s::Cache<k8s::Namespace>> namespaces_;
  std::unique_ptr<k8s::Cache<k8s::Node>> nodes_;
  std::unique_ptr<k8s::Cache<k8s::ObjectOrError<k8s::NetworkPolicy>>> netpols_;
  std::unique_ptr<k8s::Cache<k8s::RawObject>> calico_policies_;
  std::unique_ptr<k8s::Cache<k8s::RawObject>> calico_global_;
  // Calico's other objects; null when the API does not serve the kind.
  std::unique_ptr<k8s::RestListerWatcher> tiers_lw_, netsets_lw_, global_netsets_lw_, sa_lw_, slices_lw_;
  std::unique_ptr<k8s::Cache<k8s::RawObject>> tiers_;
  std::unique_ptr<k8s::Cache<k8s::RawObject>> network_sets_;
  std::unique_ptr<k8s::Cache<k8s::RawObject>> global_network_sets_;
  std::unique_ptr<k8s::Cache<k8s::ServiceAccount>> service_accounts_;
  std::unique_ptr<k8s::Cache<k8s::EndpointSlice>> endpoint_slices_;
  FailClosedEventLedger fail_closed_events_;  // guarded by apply_mu_

  std::mutex local_mu_;
  std::map<std::string, Ipv4Addr> local_ips_;
  // Pods an ADD fetched before the pod cache saw them.
  std::map<std::string, k8s::Pod> fetched_;

  std::mutex apply_mu_;  // one compile+apply at a time; guards table_ and applied_gen_
  std::unique_ptr<policy::NftPolicyTable> table_;
  // Changes to the local ledger are numbered; an apply covers every change
  // numbered before its snapshot, so concurrent ADDs share applies instead
  // of queueing one compile each.
  std::atomic<uint64_t> requested_gen_{0};
  uint64_t applied_gen_ = 0;
  std::mutex model_mu_;
  std::shared_ptr<const policy::CompiledPolicy> model_;
  std::vector<std::string> rejected_;  // last compile's unenforceable policies

  std::mutex dirty_mu_;
  std::condition_variable dirty_cv_;
  bool dirty_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace terway::daemon
