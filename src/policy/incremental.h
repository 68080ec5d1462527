// IncrementalCompiler: the node's kernel model (nft_model.h) kept up to date
// change by change, so a pod start or a label change costs what it touches,
// not a compile of every policy against every pod.
//
// It runs the full compiler (PolicyCompiler::Compile) on small inputs rather
// than re-implementing its semantics, so whatever the compiler learns
// (Calico's rule model, tiers, ...) the incremental path follows. It keeps:
//   - per local pod, its fragment of the model: its chains and their rules,
//     its map elements and counters, the sets its rules read, the policies
//     that select it;
//   - per set (by name, a hash of its definition), its content and the pods
//     whose rules read it.
// A change recomputes:
//   - the fragment of a local pod when the pod, its namespace or a policy
//     selecting it (before or after) changes: Compile over those pods and the
//     policies that can select them (their namespace's and the global ones);
//   - set contents address by address when pods change (labels, address,
//     ports, ...) or a namespace's labels do: one Compile in which those pods
//     are the only peers of one "holder" (a pod of no namespace, at a
//     reserved address) selected by the one rule that creates each set;
//     each set then holds or drops exactly the addresses that changed (a
//     set the holder does not get is computed in full). Only sets
//     whose peers can reach the changed pods' namespaces are probed (a
//     rule's pod selector without a namespace selector stays in its
//     policy's namespace, model.h's Peer::scope_namespace);
//   - a new set's content: Compile with every pod as a peer of one pod whose
//     rules create it.
//
// What this relies on, checked by tests/unit/policy/incremental_test.cc (a
// random walk of changes compared at every step with a full compile):
//   1. a pod's chains depend on the pod, the policies selecting it, the
//      namespaces and Calico's context objects, not on other pods (peers'
//      named ports are tuple sets, not rules);
//   2. a namespaced policy selects pods of its own namespace only;
//   3. whether a pod is in a set depends on that pod, the namespaces and the
//      context only; a set holds what its definition admits by address plus
//      the addresses of the pods in it;
//   4. names are functions of identities (compiler.h), so fragments of
//      different compiles merge by name;
//   5. a pod is a member of a set only through peers that select pods
//      (Kubernetes selectors, within the peer's scope_namespace when it has
//      one and no namespace selector; Calico selectors, anywhere) or through
//      named ports.
// Calico's context objects (tiers, network sets, service accounts,
// services) change seldom: a change of them recompiles everything.
//
// The model holds the sets some rule reads. A full compile also lists sets
// that only rules pruned as unreachable created (nothing reads them);
// CanonicalModelOf leaves those out, and the daemon sends that to the kernel.
//
// Not thread-safe: one owner (the policy controller's apply path).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "policy/compiler.h"
#include "policy/nft_change.h"
#include "policy/nft_model.h"

namespace terway::policy {

// ModelOf without the sets no rule reads.
NftModel CanonicalModelOf(const CompiledPolicy& policy);

class IncrementalCompiler {
 public:
  explicit IncrementalCompiler(CompileOptions options = {});

  // Inputs, by identity (PodInfo::Key, NamespaceInfo::name, Policy::Id).
  // Buffered: the next Update applies them together. An upsert is taken as
  // a change (callers filter out changes that cannot matter).
  void UpsertPod(PodInfo pod);
  void RemovePod(const std::string& key);
  void UpsertNamespace(NamespaceInfo ns);
  void RemoveNamespace(const std::string& name);
  void UpsertPolicy(Policy policy);
  void RemovePolicy(const std::string& id);
  // For Explain only: node addresses never change a chain.
  void SetNodeIps(std::map<std::string, std::vector<Ipv4Addr>> node_ips);
  // Calico's other objects, whole (they are few). Tiers order every chain:
  // a change rebuilds. Network sets and services only reach sets through
  // Calico selectors and `services`: a change rebuilds if a policy has
  // them. A service account's labels are its pods' (pcsa.*): a change
  // counts as a change of its namespace.
  void SetContext(std::vector<TierInfo> tiers, std::vector<NetworkSetInfo> network_sets,
                  std::vector<ServiceAccountInfo> service_accounts, std::vector<ServiceBackends> services);
  // Everything replaced (start, relist): the next Update rebuilds the model.
  // Calico's context objects (tiers, network sets, service accounts,
  // services) are taken from here too.
  void Reset(PolicyInputs inputs);

  // Applies the buffered changes. The result is what the model changed by.
  Result<NftModelChange> Update();

  const NftModel& model() const { return model_; }
  // The inputs as of the last Update, for a full compile (Explain, show).
  PolicyInputs Inputs() const;
  bool HasPendingChanges() const;
  size_t pod_count() const { return pods_.size(); }
  size_t policy_count() const { return policies_.size(); }

  // What the last Update did (benchmarks, and tests that prove a change
  // stays small).
  struct Work {
    bool rebuilt = false;
    size_t fragments = 0;        // local pods whose chains were recompiled
    size_t compiles = 0;         // PolicyCompiler::Compile calls
    size_t probed_pods = 0;      // pods whose set memberships were probed
    size_t recomputed_sets = 0;  // sets computed against every pod
  };
  const Work& last_work() const { return work_; }

 private:
  // A rule of a policy, as a chain compiled it.
  struct RuleRef {
    std::string policy;
    Direction direction = Direction::kIngress;
    size_t index = 0;
  };
  struct Fragment {
    std::map<std::string, std::vector<std::string>> chains;
    std::map<std::string, std::string> ingress, egress;  // pod IP -> chain
    std::set<std::string> counters;
    std::set<std::string> sets;      // the sets its rules read
    std::set<std::string> policies;  // ids of the policies that select the pod
    std::map<std::string, RuleRef> set_rules;  // a rule of its chains that reads each set
  };
  // Where a set's pod members can come from: the namespaces its rule's
  // peers are scoped to, or anywhere (a namespace selector, a global
  // policy's peers, rules that follow peers).
  struct Scope {
    bool any = false;
    std::set<std::string> namespaces;
  };
  struct SetEntry {
    IpSet content;       // addresses, or (address, protocol, port) tuples
    bool known = false;  // content computed
    Scope scope;
    std::set<std::string> readers;  // pods whose fragments read it
  };

  // Sub-compiles choose which pods get chains through the node they say the
  // pods run on; peers "run" elsewhere.
  static constexpr const char* kChainNode = "~incremental:chains";
  static constexpr const char* kPeerNode = "~incremental:peer";
  // Holders stand at addresses of 0.0.0.0/8 ("this network", RFC 1122),
  // which is never a pod's, so the changed pods' addresses are theirs alone.
  static constexpr uint32_t kHolderBase = 0x00000001;

  bool Local(const PodInfo& p) const;
  bool Namespaced(const Policy& p) const;
  // Pods and policies that are given to every Compile.
  PolicyInputs Context() const;
  std::vector<Policy> CandidatePolicies(const std::string& ns) const;
  std::set<std::string> SelectedBy(const Policy& p);

  // Addresses whose set memberships may have changed -> the namespaces of
  // the pods that held or hold them.
  using ChangedAddresses = std::map<IpKey, std::set<std::string>>;  // both families
  void ApplyPending(std::set<std::string>* recompile, ChangedAddresses* addresses);
  Status CompileFragments(const std::set<std::string>& pods);
  void ReplaceFragment(const std::string& pod, Fragment next);
  void DropUnreadSets();
  Status ComputeSets(const std::set<std::string>& names);
  Status ProbeAddresses(const ChangedAddresses& addresses);
  Scope ScopeOf(const std::string& set) const;
  // Pods whose chains create `sets` when compiled with `policies` (copies
  // cut down to the rules that create them).
  struct Holders {
    std::vector<std::string> pods;
    std::vector<Policy> policies;
  };
  Holders HoldersOf(const std::set<std::string>& sets) const;
  std::vector<Policy> RulesCreating(const std::set<std::string>& sets) const;
  static PodInfo ProbeHolder();

  // Model edits, remembering each name's value before the first edit.
  void TouchChain(const std::string& name);
  void TouchSet(const std::string& name);
  void TouchCounter(const std::string& name);
  void TouchEntry(bool ingress, const std::string& ip);
  NftModelChange TakeChange();

  CompileOptions options_;
  std::map<std::string, PodInfo> pods_;
  std::map<std::string, NamespaceInfo> namespaces_;
  std::map<std::string, Policy> policies_;
  std::map<std::string, std::vector<Ipv4Addr>> node_ips_;
  std::vector<TierInfo> tiers_;
  std::vector<NetworkSetInfo> network_sets_;
  std::vector<ServiceAccountInfo> service_accounts_;
  std::vector<ServiceBackends> services_;

  // Indexes.
  std::map<std::string, std::set<std::string>> pods_by_ns_;        // every pod
  std::map<std::string, std::set<std::string>> local_by_ns_;       // pods that get chains
  std::map<IpKey, std::set<std::string>> pods_by_ip_;  // every address of each pod
  std::map<std::string, std::set<std::string>> policies_by_ns_;    // namespaced policies
  std::set<std::string> global_policies_;
  std::map<std::string, std::set<std::string>> selected_by_;  // policy id -> pods it selects
  std::set<std::string> selector_policies_;  // with Calico selectors in rules (network sets reach them)
  std::set<std::string> service_policies_;   // with `services` in rules
  std::set<std::string> pending_sa_namespaces_;

  std::map<std::string, std::optional<PodInfo>> pending_pods_;
  std::map<std::string, std::optional<NamespaceInfo>> pending_namespaces_;
  std::map<std::string, std::optional<Policy>> pending_policies_;
  bool rebuild_ = true;

  std::map<std::string, Fragment> fragments_;
  std::map<std::string, SetEntry> sets_;
  std::set<std::string> unread_sets_;  // readers dropped to none during this Update
  std::set<std::string> new_sets_;     // content to compute during this Update
  NftModel model_;

  NftModelChange change_;  // `from` of the names touched so far
  std::set<std::string> touched_chains_, touched_sets_, touched_counters_, touched_ingress_, touched_egress_;
  Work work_;
};

}  // namespace terway::policy
