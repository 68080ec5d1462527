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
// EndpointSlices (services matches). Every change marks the object it
// names; one worker converts only those objects and hands them to the
// incremental compiler (policy/incremental.h), which recompiles what they
// touch, and sends the kernel only the difference, in one transaction;
// bursts of changes coalesce into one apply. Calico's other objects (tiers,
// network sets, service accounts, EndpointSlices) are few and read whole.
//
// Fail closed, and say so: a policy that cannot be read is not dropped but
// enforced on the safe side (its pods isolated), like any part of a policy
// that cannot be enforced exactly (Policy::fail_closed). Each such policy
// gets a Warning Event (reason PolicyNotEnforcedAsWritten) on its object,
// once per generation per node, counts in terway_policy_fail_closed{kind}
// and is listed by `terway-cli policy show`.
//
// No window for a new pod: CNI ADD calls PodStarting with the address it
// just allocated, which returns once an apply covering it is in the kernel
// (the pod's chain exists before its veth does), because the Pod object in
// the API carries no IP yet at that point. The local ledger of addresses
// this node handed out is the truth for local pods; status.podIP is for pods
// of other nodes.
//
// Threads: one applier. Create applies once before its worker starts; after
// that only the worker applies (compiles, calls the kernel and the datapath
// callbacks), so no lock is held across a kernel call: PodStarting marks its
// change and waits for the worker's apply that covers it, and concurrent
// ADDs share applies. Explain and show copy the compiler's inputs under
// inputs_mu_, which the worker holds only while it changes them in memory.
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
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ip.h"
#include "daemon/metrics.h"
#include "daemon/pod_policy.h"
#include "daemon/policy_datapath_sync.h"
#include "daemon/policy_fail_closed.h"
#include "daemon/policy_sources.h"
#include "k8s/cache.h"
#include "k8s/client.h"
#include "policy/compiler.h"
#include "policy/incremental.h"
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
  // The eBPF datapath's policy map follows isolation. Both get the FULL set
  // of local addresses the model isolates (not a difference: a call after a
  // failure repairs what an earlier one missed), at every apply:
  // `isolating` BEFORE the kernel gets the chains (the datapath makes its
  // map a superset), `isolation_applied` AFTER the kernel took them (it
  // makes the map exact and authoritative). Called from the applier only
  // (Create, then the worker thread), one call at a time; they may call
  // MayIsolate and SyncDatapath, and must not wait for an apply.
  // An error does not stop the apply (the chains are the enforcement; the
  // datapath fails closed: every pod takes the stack): it is counted
  // (terway_ebpf_datapath_policy_sync_errors_total), told on the Node (a
  // Warning Event, reason kDatapathSyncEventReason; DatapathSyncReporter)
  // and retried by the worker until a full sync succeeds. When the datapath
  // could not even fail closed (datapath::PolicyMapFailedOpen), new pods it
  // does not police are refused by the datapath's Ensure (EbpfEniOptions::
  // may_isolate, which the daemon wires to MayIsolate). Unset: none.
  std::function<Status(const std::set<Ipv4Addr>&)> isolating;
  std::function<Status(const std::set<Ipv4Addr>&)> isolation_applied;
  // How long PodStarting waits for the worker's apply that covers the pod.
  std::chrono::milliseconds pod_start_timeout{30000};
};

// The local pods' addresses `model` isolates in either direction (the keys
// of its ingress and egress maps).
std::set<Ipv4Addr> IsolatedAddresses(const policy::NftModel& model);

class PolicyController : public PodPolicy {
 public:
  // Starts the caches and waits for their first lists. local_ips: the pods
  // this node holds addresses for (from the state database), "ns/name" -> IP.
  // Then compiles and applies once, synchronously: after a restart the
  // table is right before the first ADD is served.
  static Result<std::unique_ptr<PolicyController>> Create(std::shared_ptr<k8s::RestClient> client,
                                                          PolicyControllerOptions opts,
                                                          std::map<std::string, Ipv4Addr> local_ips,
                                                          Metrics* metrics,
                                                          std::map<std::string, Ipv6Addr> local_ips6 = {});
  ~PolicyController() override;

  // CNI ADD: the pod's address is known; its chain is in the kernel when
  // this returns Ok (the worker applied it; this waits, with no lock held).
  // An error means the pod would run unprotected: the ADD must fail (and is
  // undone).
  Status PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip,
                     std::optional<Ipv6Addr> ipv6 = std::nullopt) override;
  // CNI DEL or an undone ADD: the address no longer belongs to the pod.
  void PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) override;

  // terway-cli policy explain / show, from the inputs of the latest apply
  // (what the kernel holds, or is being given).
  Result<policy::Explanation> Explain(const std::string& from, const std::string& to, policy::Protocol proto,
                                      uint16_t port) override;
  Result<std::string> Show() override;

  // The datapath asks for its callbacks to be called again (its programs
  // were just loaded): the worker applies (nothing new for the kernel) and
  // calls them with the full set. Does not block.
  void SyncDatapath() { MarkFlag(&Dirty::datapath); }
  static constexpr const char* kDatapathSyncEventReason = kEbpfPolicyMapNotSyncedReason;

  // Whether a chain may isolate the pod with this address: it is in the
  // kernel, about to be, or was when an apply failed (fail closed: a pod
  // leaves this set only after the kernel dropped its chains).
  bool MayIsolate(Ipv4Addr ip) const;

  // For benchmarks and tests that time one change alone: returns true once
  // no change is waiting and none is being applied, false at the deadline.
  bool WaitIdle(std::chrono::milliseconds timeout);
  // Pods the watch has delivered (every node's).
  size_t KnownPods() const { return pods_->Size(); }

  // Deletes the node's policy table (policy disabled, node cleaned).
  static Status RemoveTable(const std::string& netns);

  // How often the worker verifies that the kernel still holds what was
  // applied (someone may flush the ruleset or delete our table).
  static constexpr std::chrono::seconds kVerifyPeriod{30};

 private:
  // Objects changed since the last apply; the worker converts only these.
  struct Dirty {
    bool all = false;      // a change with no finer tracking: rebuild from the caches
    bool nodes = false;    // node addresses (few objects: all re-read)
    bool context = false;  // Calico's tiers, network sets, service accounts, EndpointSlices
    bool datapath = false;  // the datapath's callbacks are due (SyncDatapath)
    std::set<std::string> pods, namespaces, netpols, calico, calico_global;
    bool empty() const {
      return !all && !nodes && !context && !datapath && pods.empty() && namespaces.empty() && netpols.empty() &&
             calico.empty() && calico_global.empty();
    }
  };

  PolicyController(std::shared_ptr<k8s::RestClient> client, PolicyControllerOptions opts, Metrics* metrics);
  // Everything may have changed (kinds watched without per-object tracking).
  void MarkDirty();
  // One object changed; `what` picks its set in Dirty.
  void MarkChanged(std::set<std::string> Dirty::*what, const std::string& key);
  // A flag of Dirty: nodes, context.
  void MarkFlag(bool Dirty::*what);
  // Local pods whose ledger entry changed; returns the change's number.
  uint64_t MarkLedgerChange(const std::set<std::string>& pods);
  void Worker();
  // Dirty objects -> incremental compiler -> the kernel's difference, then
  // the outcome for PodStarting's waiters. The applier only (Create, then
  // the worker).
  Status ApplyChanges(const char* why);
  // The marks to apply and the highest change number they cover.
  struct TakenChanges {
    Dirty dirty;
    uint64_t gen = 0;
  };
  TakenChanges TakeChanges();
  // Wakes PodStarting's waiters with the outcome of an apply covering `gen`.
  void NoteApplyOutcome(uint64_t gen, const Status& st);
  // After a successful apply: the gauges, the fail-closed report (when
  // policies or tiers changed) and the log line.
  void ReportApplied(const char* why, size_t names_changed, bool policies_or_tiers_changed, double secs);
  // The datapath around the kernel's apply: the isolated set, given before
  // the chains reach the kernel (MayIsolate keeps the union) and after it
  // took them (exact). The applier only.
  std::set<Ipv4Addr> IsolationBeforeKernel();
  void IsolationInKernel(const std::set<Ipv4Addr>& isolated_now);
  // The in-memory half: dirty objects into the compiler and its Update;
  // inputs_mu_ held.
  Result<policy::NftModelChange> UpdateModel(const Dirty& d, bool* policies_changed);
  // PodStarting: until an apply covering change `gen` succeeded (Ok) or
  // failed (its error), the controller stops, or the timeout.
  Status WaitApplied(uint64_t gen);
  // PodStarting: whether the pod is a Kubernetes pod of this node (read
  // from the API when the cache lacks it or predates its binding).
  Result<bool> LearnPod(const std::string& ns, const std::string& name);
  // PodStarting: the ledger now gives `key` these addresses; returns the
  // other pods whose stale entries named them (dropped).
  std::set<std::string> RecordAddresses(const std::string& key, Ipv4Addr ip, std::optional<Ipv6Addr> ipv6);
  // The applier, inputs_mu_ held: one object of the caches into the
  // incremental compiler.
  void FeedPod(const std::string& key);
  void FeedPolicy(const std::string& source, const std::string& key);
  void FeedNodes();
  // Calico's other objects, read whole (few, seldom changed); returns
  // whether the tiers changed (their policies are then read again).
  bool FeedContext();
  // The applier, inputs_mu_ held: every object of the caches (start, and
  // changes of kinds without per-object tracking).
  void LoadAll();
  // Create's steps: the caches of pods, namespaces, nodes and
  // NetworkPolicies, then of Calico's policies (when served), each with
  // handlers marking what changed; then start them all and wait for their
  // first lists.
  void WatchPolicyObjects();
  void WatchCalicoPolicies();
  Status StartCaches();
  // Starts the caches of Calico's other objects the API serves (tiers,
  // network sets, service accounts, EndpointSlices).
  void WatchCalicoObjects();
  // Calico's other objects from their caches.
  void SnapshotContext(PolicySources& src) const;
  // After an apply that changed policies or tiers: the metric, and the
  // Events now due. The applier only.
  void ReportFailClosed();
  // After a datapath callback: the report (DatapathSyncReporter) and the
  // worker's retry. The applier only.
  void NoteDatapathSync(const Status& st);
  // The full compile Explain and show answer from, of the inputs the kernel
  // holds (compiled on demand: they are rare next to changes).
  struct Snapshot {
    std::shared_ptr<const policy::CompiledPolicy> model;
    std::vector<std::string> rejected;
  };
  Result<Snapshot> CurrentModel();

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
  FailClosedEventLedger fail_closed_events_;  // the applier's
  DatapathSyncReporter datapath_reporter_;

  mutable std::mutex isolated_mu_;
  std::set<Ipv4Addr> isolated_;  // see MayIsolate

  std::mutex local_mu_;
  std::map<std::string, Ipv4Addr> local_ips_;
  // Dual-stack pods' IPv6 addresses, as PodStarting was told them.
  std::map<std::string, Ipv6Addr> local_ips6_;
  // Pods an ADD fetched before the pod cache saw them.
  std::map<std::string, k8s::Pod> fetched_;

  // What follows up to model_mu_ is the applier's (Create's apply, then the
  // worker's alone: no lock needed around the kernel). inputs_mu_ guards
  // the compiler's inputs, rejected_ and model_gen_ against CurrentModel's
  // reads; the applier holds it only while it changes them (in memory,
  // never across a kernel call) and reads them without it.
  std::mutex inputs_mu_;
  std::unique_ptr<policy::NftPolicyTable> table_;
  policy::IncrementalCompiler compiler_;
  // Each policy object ("k8s/ns/name", "calico/ns/name", "global/name") ->
  // the Policy::Id it became, and each Policy::Id -> the object (Events).
  std::map<std::string, std::string> policy_ids_;
  PolicyObjects policy_objects_;
  std::map<std::string, Error> tier_errors_;     // tiers that cannot be read, by name
  std::vector<std::string> rejected_;            // tiers and network sets that cannot be read
  std::vector<k8s::Json> tiers_seen_;            // the tiers the policies were read with
  uint64_t model_gen_ = 0;  // applies that changed the inputs

  std::mutex model_mu_;  // the full compile for Explain and show
  Snapshot explained_;
  uint64_t explained_gen_ = 0;

  std::mutex dirty_mu_;
  std::condition_variable dirty_cv_;
  std::condition_variable idle_cv_;
  Dirty dirty_;
  bool applying_ = false;  // the worker has taken changes it has not applied yet
  // Changes to the local ledger are numbered as they are marked; an apply
  // covers every change numbered before its snapshot, so concurrent ADDs
  // share applies instead of queueing one compile each.
  uint64_t requested_gen_ = 0;
  // The highest change number an apply covered, ok or failed (the latter's
  // error with it): PodStarting's waiters, woken by applied_cv_.
  uint64_t applied_gen_ = 0;
  uint64_t failed_gen_ = 0;
  std::optional<Error> failed_error_;
  std::condition_variable applied_cv_;
  int pod_starts_waiting_ = 0;  // the apply's trigger is "pod start" while any waits
  // The datapath's last callback failed: the worker retries until one works.
  bool datapath_unsynced_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace terway::daemon
