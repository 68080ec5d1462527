// The cache objects into the incremental compiler: each changed object is
// converted alone (FeedPod, FeedPolicy) through policy_sources' pure
// BuildPolicyInputs, the few that are read whole (nodes, Calico's tiers,
// network sets, service accounts, EndpointSlices) together. The applier
// only, with inputs_mu_ held (see policy_controller.h).
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "common/log.h"
#include "daemon/policy_controller.h"

namespace terway::daemon {

void PolicyController::SnapshotContext(PolicySources& src) const {
  src.calico_api = calico_;
  // Items of a list need not carry their kind; the collection says it.
  auto raw = [](const std::unique_ptr<k8s::Cache<k8s::RawObject>>& cache, const char* kind,
                std::vector<k8s::Json>& out) {
    if (!cache) return;
    for (auto& o : cache->List()) {
      if (!o.raw.contains("kind")) o.raw["kind"] = kind;
      out.push_back(std::move(o.raw));
    }
  };
  raw(tiers_, "Tier", src.tiers);
  raw(network_sets_, "NetworkSet", src.network_sets);
  raw(global_network_sets_, "GlobalNetworkSet", src.global_network_sets);
  if (service_accounts_) src.service_accounts = service_accounts_->List();
  if (endpoint_slices_) src.endpoint_slices = endpoint_slices_->List();
}

void PolicyController::FeedPod(const std::string& key) {
  std::optional<k8s::Pod> pod = pods_->Get(key);
  PolicySources s;
  s.node_name = opts_.node_name;
  {
    std::lock_guard l(local_mu_);
    if (auto f = fetched_.find(key); f != fetched_.end()) {
      if (pod && pod->node_name == opts_.node_name) fetched_.erase(f);  // the cache has caught up
      else pod = f->second;  // the cache lacks it, or its copy predates the binding
    }
    if (auto ip = local_ips_.find(key); ip != local_ips_.end()) s.local_ips.insert(*ip);
    if (auto ip = local_ips6_.find(key); ip != local_ips6_.end()) s.local_ips6.insert(*ip);
  }
  if (!pod) {
    compiler_.RemovePod(key);
    return;
  }
  s.pods.push_back(std::move(*pod));
  compiler_.UpsertPod(std::move(BuildPolicyInputs(s).inputs.pods.front()));
}

// source: "k8s", "calico" or "global" (the caches they come from). Every
// policy the API holds is fed: one that cannot be read is enforced on the
// safe side (BuildPolicyInputs).
void PolicyController::FeedPolicy(const std::string& source, const std::string& key) {
  PolicySources s;
  s.calico_api = calico_;
  if (source == "k8s") {
    if (auto np = netpols_->Get(key)) {
      if (np->object) s.network_policies.push_back(std::move(*np->object));
      else s.unreadable_network_policies.push_back(std::move(*np));
    }
  } else {
    auto* cache = source == "calico" ? calico_policies_.get() : calico_global_.get();
    if (auto o = cache ? cache->Get(key) : std::nullopt) {
      if (!o->raw.contains("kind")) o->raw["kind"] = source == "calico" ? "NetworkPolicy" : "GlobalNetworkPolicy";
      s.calico_policies.push_back(std::move(o->raw));
      s.tiers = tiers_seen_;  // a policy of a tier that cannot be read fails closed
    }
  }
  const std::string object = source + "/" + key;
  // What this object was enforced as goes (its id may change with a
  // Calico datastore rename), then what it is now comes.
  if (auto was = policy_ids_.find(object); was != policy_ids_.end()) {
    compiler_.RemovePolicy(was->second);
    policy_objects_.erase(was->second);
    policy_ids_.erase(was);
  }
  BuiltInputs b = BuildPolicyInputs(s);
  for (auto& p : b.inputs.policies) {
    const std::string id = p.Id();
    policy_ids_[object] = id;
    if (auto o = b.policy_objects.find(id); o != b.policy_objects.end()) policy_objects_[id] = o->second;
    compiler_.UpsertPolicy(std::move(p));
  }
}

void PolicyController::FeedNodes() {
  PolicySources s;
  s.node_name = opts_.node_name;
  s.node_ips = opts_.node_ips;
  s.nodes = nodes_->List();
  compiler_.SetNodeIps(BuildPolicyInputs(s).inputs.node_ips);
}

bool PolicyController::FeedContext() {
  PolicySources s;
  SnapshotContext(s);
  const bool tiers_changed = s.tiers != tiers_seen_;
  BuiltInputs b = BuildPolicyInputs(s);
  if (b.rejected != rejected_) {
    // Logged when the set changes, not at every apply.
    for (const auto& r : b.rejected) {
      log::Warn("policy: not read (the policies and rules it concerns are enforced on the safe side): {}", r);
    }
  }
  rejected_ = std::move(b.rejected);
  tiers_seen_ = std::move(s.tiers);
  compiler_.SetContext(std::move(b.inputs.tiers), std::move(b.inputs.network_sets),
                       std::move(b.inputs.service_accounts), std::move(b.inputs.services));
  return tiers_changed;
}

void PolicyController::LoadAll() {
  // Everything goes unless fed again; the compiler's next Update rebuilds.
  compiler_.Reset({});
  policy_ids_.clear();
  policy_objects_.clear();
  FeedContext();
  std::set<std::string> pods;
  for (const auto& p : pods_->List()) pods.insert(p.metadata.Key());
  {
    std::lock_guard l(local_mu_);
    for (const auto& [key, pod] : fetched_) pods.insert(key);
  }
  for (const auto& key : pods) FeedPod(key);
  for (const auto& ns : namespaces_->List()) compiler_.UpsertNamespace(policy::NamespaceFromK8s(ns));
  FeedNodes();
  for (const auto& np : netpols_->List()) FeedPolicy("k8s", np.metadata.Key());
  if (calico_policies_) {
    for (const auto& o : calico_policies_->List()) FeedPolicy("calico", o.metadata.Key());
    for (const auto& o : calico_global_->List()) FeedPolicy("global", o.metadata.Key());
  }
}

Result<policy::NftModelChange> PolicyController::UpdateModel(const Dirty& d, bool* policies_changed) {
  *policies_changed = d.all || !d.netpols.empty() || !d.calico.empty() || !d.calico_global.empty();
  if (d.all) {
    LoadAll();
    return compiler_.Update();
  }
  std::set<std::string> calico = d.calico, calico_global = d.calico_global;
  if (d.context && FeedContext() && calico_policies_) {
    // Policies are read with their tier (one that cannot be read fails
    // them closed): read every Calico policy again.
    for (const auto& o : calico_policies_->List()) calico.insert(o.metadata.Key());
    for (const auto& o : calico_global_->List()) calico_global.insert(o.metadata.Key());
    *policies_changed = true;
  }
  for (const auto& key : d.pods) FeedPod(key);
  for (const auto& name : d.namespaces) {
    if (auto ns = namespaces_->Get(name)) compiler_.UpsertNamespace(policy::NamespaceFromK8s(*ns));
    else compiler_.RemoveNamespace(name);
  }
  if (d.nodes) FeedNodes();
  for (const auto& key : d.netpols) FeedPolicy("k8s", key);
  for (const auto& key : calico) FeedPolicy("calico", key);
  for (const auto& key : calico_global) FeedPolicy("global", key);
  return compiler_.Update();
}
}  // namespace terway::daemon
