#include "daemon/policy_controller.h"

#include <malloc.h>

#include <algorithm>
#include <set>

#include "common/log.h"
#include "policy/policy_show.h"

namespace terway::daemon {

namespace {

bool NodeAddressesDiffer(const k8s::Node& a, const k8s::Node& b) {
  if (a.addresses.size() != b.addresses.size()) return true;
  for (size_t i = 0; i < a.addresses.size(); i++) {
    if (a.addresses[i].type != b.addresses[i].type || a.addresses[i].address != b.addresses[i].address) return true;
  }
  return false;
}

// Which Calico API the cluster serves. An error other than "not served"
// (403 without RBAC for the group, say) also means we cannot watch it: say
// so, and run with Kubernetes policies only rather than refuse to start.
CalicoApi DetectCalicoApi(k8s::RestClient& client) {
  k8s::ListOptions one;
  one.limit = 1;
  // Both kinds must be listable (RBAC may grant one and not the other).
  auto v3 = client.List(k8s::resources::kCalicoNetworkPolicies, "", one);
  if (v3.ok()) v3 = client.List(k8s::resources::kCalicoGlobalNetworkPolicies, "", one);
  if (v3.ok()) return CalicoApi::kV3;
  auto crd = client.List(k8s::resources::kCalicoCrdNetworkPolicies, "", one);
  if (crd.ok()) crd = client.List(k8s::resources::kCalicoCrdGlobalNetworkPolicies, "", one);
  if (crd.ok()) return CalicoApi::kCrdV1;
  if (v3.error().code != ErrorCode::kNotFound || crd.error().code != ErrorCode::kNotFound) {
    log::Warn("policy: cannot list Calico policies (projectcalico.org/v3: {}; crd.projectcalico.org/v1: {}); "
              "enforcing Kubernetes NetworkPolicies only; grant terway list/watch on them to enforce Calico's",
              v3.error().ToString(), crd.error().ToString());
  }
  return CalicoApi::kNone;
}

}  // namespace

PolicyController::PolicyController(std::shared_ptr<k8s::RestClient> client, PolicyControllerOptions opts,
                                   Metrics* metrics)
    : client_(std::move(client)),
      opts_(std::move(opts)),
      metrics_(metrics),
      datapath_reporter_(metrics, opts_.node_name, opts_.warn_event),
      table_(std::make_unique<policy::NftPolicyTable>(opts_.netns)),
      compiler_(policy::CompileOptions{opts_.node_name}) {}

Result<std::unique_ptr<PolicyController>> PolicyController::Create(std::shared_ptr<k8s::RestClient> client,
                                                                   PolicyControllerOptions opts,
                                                                   std::map<std::string, Ipv4Addr> local_ips,
                                                                   Metrics* metrics,
                                                                   std::map<std::string, Ipv6Addr> local_ips6) {
  std::unique_ptr<PolicyController> c(new PolicyController(std::move(client), std::move(opts), metrics));
  c->local_ips_ = std::move(local_ips);
  c->local_ips6_ = std::move(local_ips6);
  metrics->DeclareCounter("terway_policy_applies_total", "Policy changes applied to nftables, by trigger and result");
  metrics->DeclareHistogram("terway_policy_apply_seconds",
                            "Time to bring the policy model up to date and send the kernel the difference",
                            LatencyBuckets());
  metrics->DeclareGauge("terway_policy_objects", "Policy inputs by kind (pods, namespaces, policies, chains, sets, rejected)");
  metrics->DeclareGauge("terway_policy_fail_closed",
                        "Policies enforced on the safe side instead of as written (unreadable, or with a part that "
                        "cannot be enforced exactly), by kind (k8s, calico, global); see terway-cli policy show");

  k8s::RestClient& rc = *c->client_;
  c->calico_ = DetectCalicoApi(rc);
  PolicyController* self = c.get();
  // Each handler names the object that changed: the worker converts only
  // those (a change of 1 object among 10,000 costs 1 conversion).
  auto changed = [self](std::set<std::string> Dirty::*what) {
    return [self, what](const auto& obj, auto&&...) { self->MarkChanged(what, obj.metadata.Key()); };
  };
  // Kinds without per-object tracking: any change rebuilds from the caches.
  [[maybe_unused]] auto dirty = [self](auto&&...) { self->MarkDirty(); };

  c->pods_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kPods);
  k8s::CacheHandlers<k8s::Pod> ph;
  ph.on_add = changed(&Dirty::pods);
  ph.on_delete = changed(&Dirty::pods);
  ph.on_update = [self](const k8s::Pod& a, const k8s::Pod& b) {
    if (PodChangeMatters(a, b)) self->MarkChanged(&Dirty::pods, b.metadata.Key());
  };
  c->pods_ = std::make_unique<k8s::Cache<k8s::Pod>>(*c->pods_lw_, k8s::ReflectorOptions{}, ph);

  c->ns_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNamespaces);
  k8s::CacheHandlers<k8s::Namespace> nsh;
  nsh.on_add = changed(&Dirty::namespaces);
  nsh.on_delete = changed(&Dirty::namespaces);
  nsh.on_update = [self](const k8s::Namespace& a, const k8s::Namespace& b) {
    if (a.metadata.labels != b.metadata.labels) self->MarkChanged(&Dirty::namespaces, b.metadata.Key());
  };
  c->namespaces_ = std::make_unique<k8s::Cache<k8s::Namespace>>(*c->ns_lw_, k8s::ReflectorOptions{}, nsh);

  c->nodes_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNodes);
  k8s::CacheHandlers<k8s::Node> nh;
  nh.on_add = [self](const k8s::Node&) { self->MarkFlag(&Dirty::nodes); };
  nh.on_delete = nh.on_add;
  nh.on_update = [self](const k8s::Node& a, const k8s::Node& b) {
    if (NodeAddressesDiffer(a, b)) self->MarkFlag(&Dirty::nodes);
  };
  c->nodes_ = std::make_unique<k8s::Cache<k8s::Node>>(*c->nodes_lw_, k8s::ReflectorOptions{}, nh);

  c->netpol_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNetworkPolicies);
  // Kept when unreadable: such a policy is enforced on the safe side.
  using NetpolOrError = k8s::ObjectOrError<k8s::NetworkPolicy>;
  auto netpol = changed(&Dirty::netpols);
  k8s::CacheHandlers<NetpolOrError> nph{netpol, netpol, netpol};
  c->netpols_ = std::make_unique<k8s::Cache<NetpolOrError>>(*c->netpol_lw_, k8s::ReflectorOptions{}, nph);

  if (c->calico_ != CalicoApi::kNone) {
    const bool v3 = c->calico_ == CalicoApi::kV3;
    c->calico_lw_ = std::make_unique<k8s::RestListerWatcher>(
        rc, v3 ? k8s::resources::kCalicoNetworkPolicies : k8s::resources::kCalicoCrdNetworkPolicies);
    c->calico_global_lw_ = std::make_unique<k8s::RestListerWatcher>(
        rc, v3 ? k8s::resources::kCalicoGlobalNetworkPolicies : k8s::resources::kCalicoCrdGlobalNetworkPolicies);
    auto ns_policy = changed(&Dirty::calico), global_policy = changed(&Dirty::calico_global);
    k8s::CacheHandlers<k8s::RawObject> ch{ns_policy, ns_policy, ns_policy};
    k8s::CacheHandlers<k8s::RawObject> gh{global_policy, global_policy, global_policy};
    c->calico_policies_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*c->calico_lw_, k8s::ReflectorOptions{}, ch);
    c->calico_global_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*c->calico_global_lw_, k8s::ReflectorOptions{}, gh);
  }

  c->pods_->Start();
  c->namespaces_->Start();
  c->nodes_->Start();
  c->netpols_->Start();
  if (c->calico_policies_) {
    c->calico_policies_->Start();
    c->calico_global_->Start();
    c->WatchCalicoObjects();
  }
  auto synced = [&](auto& cache) { return !cache || cache->WaitForSync(c->opts_.sync_timeout); };
  if (!synced(c->pods_) || !synced(c->namespaces_) || !synced(c->nodes_) || !synced(c->netpols_) ||
      !synced(c->calico_policies_) || !synced(c->calico_global_) || !synced(c->tiers_) ||
      !synced(c->network_sets_) || !synced(c->global_network_sets_) || !synced(c->service_accounts_) ||
      !synced(c->endpoint_slices_)) {
    return Errorf(ErrorCode::kUnavailable,
                  "policy: the Kubernetes API did not list pods, namespaces, nodes, network policies (and what "
                  "Calico's policies refer to) within {} ms; check the API server (or disable policy: eni-config "
                  "disable_network_policy: \"true\")",
                  c->opts_.sync_timeout.count());
  }
  c->MarkDirty();  // the first apply reads everything the caches listed
  // Before the worker starts: this thread is the applier until then.
  TERWAY_TRY_CTX(c->ApplyChanges("start"), "enforcing network policy at start");
  c->worker_ = std::thread([self] { self->Worker(); });
  log::Info("policy: enforcing Kubernetes NetworkPolicy{} on node {} ({} pods, {} policies)",
            c->calico_ == CalicoApi::kNone ? "" : fmt::format(" and Calico policies ({})", CalicoApiName(c->calico_)),
            c->opts_.node_name, c->pods_->Size(),
            c->netpols_->Size() + (c->calico_policies_ ? c->calico_policies_->Size() + c->calico_global_->Size() : 0));
  return c;
}

namespace {

// Whether the API serves a kind we can list. Not served (404) is normal (an
// older Calico has no Tier; a cluster may lack discovery.k8s.io/v1); any
// other refusal (403 without RBAC) is said once, and policy runs without
// the kind rather than not at all.
bool Served(k8s::RestClient& client, const k8s::ResourceRef& r) {
  k8s::ListOptions one;
  one.limit = 1;
  auto got = client.List(r, "", one);
  if (got.ok()) return true;
  if (got.error().code == ErrorCode::kNotFound) {
    log::Info("policy: the API does not serve {}/{}; Calico rules referring to them match nothing", r.group_version,
              r.plural);
  } else {
    log::Warn("policy: cannot list {}/{} ({}); Calico rules referring to them match nothing; grant terway "
              "get/list/watch on them (deploy/ has the RBAC)",
              r.group_version, r.plural, got.error().ToString());
  }
  return false;
}

}  // namespace

void PolicyController::WatchCalicoObjects() {
  k8s::RestClient& rc = *client_;
  const bool v3 = calico_ == CalicoApi::kV3;
  // Few objects, seldom changed (EndpointSlices aside): read whole.
  auto dirty = [this](auto&&...) { MarkFlag(&Dirty::context); };
  k8s::CacheHandlers<k8s::RawObject> rawh{dirty, [this](const k8s::RawObject& a, const k8s::RawObject& b) {
                                            if (CalicoObjectChangeMatters(a, b)) MarkFlag(&Dirty::context);
                                          },
                                          dirty};
  auto raw = [&](const k8s::ResourceRef& r, std::unique_ptr<k8s::RestListerWatcher>& lw,
                 std::unique_ptr<k8s::Cache<k8s::RawObject>>& cache) {
    if (!Served(rc, r)) return;
    lw = std::make_unique<k8s::RestListerWatcher>(rc, r);
    cache = std::make_unique<k8s::Cache<k8s::RawObject>>(*lw, k8s::ReflectorOptions{}, rawh);
    cache->Start();
  };
  raw(v3 ? k8s::resources::kCalicoTiers : k8s::resources::kCalicoCrdTiers, tiers_lw_, tiers_);
  raw(v3 ? k8s::resources::kCalicoNetworkSets : k8s::resources::kCalicoCrdNetworkSets, netsets_lw_, network_sets_);
  raw(v3 ? k8s::resources::kCalicoGlobalNetworkSets : k8s::resources::kCalicoCrdGlobalNetworkSets,
      global_netsets_lw_, global_network_sets_);
  if (Served(rc, k8s::resources::kServiceAccounts)) {
    sa_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kServiceAccounts);
    k8s::CacheHandlers<k8s::ServiceAccount> h{dirty,
                                              [this](const k8s::ServiceAccount& a, const k8s::ServiceAccount& b) {
                                                if (a.metadata.labels != b.metadata.labels) MarkFlag(&Dirty::context);
                                              },
                                              dirty};
    service_accounts_ = std::make_unique<k8s::Cache<k8s::ServiceAccount>>(*sa_lw_, k8s::ReflectorOptions{}, h);
    service_accounts_->Start();
  }
  if (Served(rc, k8s::resources::kEndpointSlices)) {
    slices_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kEndpointSlices);
    k8s::CacheHandlers<k8s::EndpointSlice> h{dirty,
                                             [this](const k8s::EndpointSlice& a, const k8s::EndpointSlice& b) {
                                               if (EndpointSliceChangeMatters(a, b)) MarkFlag(&Dirty::context);
                                             },
                                             dirty};
    endpoint_slices_ = std::make_unique<k8s::Cache<k8s::EndpointSlice>>(*slices_lw_, k8s::ReflectorOptions{}, h);
    endpoint_slices_->Start();
  }
}

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

void PolicyController::ReportFailClosed() {
  // Only policies that fail closed, or sit in a tier that may not exist
  // (the compiler notes those), can be reported: compile just those, with
  // the tiers and no pod, for the notes the compiler adds.
  policy::PolicyInputs everything = compiler_.Inputs();
  policy::PolicyInputs in;
  in.tiers = std::move(everything.tiers);
  for (auto& p : everything.policies) {
    if (!p.fail_closed.empty() || p.tier != policy::kDefaultTier) in.policies.push_back(std::move(p));
  }
  const policy::CompiledPolicy notes = policy::PolicyCompiler(policy::CompileOptions{opts_.node_name}).Compile(std::move(in));
  std::vector<FailClosedReport> reports = FailClosedReports(notes.policies(), policy_objects_);
  for (const auto& [kind, n] : FailClosedCounts(reports)) {
    metrics_->Set("terway_policy_fail_closed", {{"kind", kind}}, double(n));
  }
  for (const auto& r : fail_closed_events_.Due(reports)) {
    const std::string message = r.Message();
    log::Warn("policy {}: {}", r.policy, message);
    if (opts_.warn_event) opts_.warn_event(r.object.ref, kFailClosedEventReason, message);
  }
}

PolicyController::~PolicyController() {
  {
    std::lock_guard l(dirty_mu_);
    stop_ = true;
  }
  dirty_cv_.notify_all();
  applied_cv_.notify_all();  // PodStarting's waiters give up
  if (worker_.joinable()) worker_.join();
  // Caches stop (and their handlers end) before the rest goes.
  if (pods_) pods_->Stop();
  if (namespaces_) namespaces_->Stop();
  if (nodes_) nodes_->Stop();
  if (netpols_) netpols_->Stop();
  if (calico_policies_) calico_policies_->Stop();
  if (calico_global_) calico_global_->Stop();
  if (tiers_) tiers_->Stop();
  if (network_sets_) network_sets_->Stop();
  if (global_network_sets_) global_network_sets_->Stop();
  if (service_accounts_) service_accounts_->Stop();
  if (endpoint_slices_) endpoint_slices_->Stop();
}

void PolicyController::MarkDirty() {
  {
    std::lock_guard l(dirty_mu_);
    dirty_.all = true;
  }
  dirty_cv_.notify_one();
}

void PolicyController::MarkChanged(std::set<std::string> Dirty::*what, const std::string& key) {
  {
    std::lock_guard l(dirty_mu_);
    (dirty_.*what).insert(key);
  }
  dirty_cv_.notify_one();
}

void PolicyController::MarkFlag(bool Dirty::*what) {
  {
    std::lock_guard l(dirty_mu_);
    dirty_.*what = true;
  }
  dirty_cv_.notify_one();
}

void PolicyController::Worker() {
  std::unique_lock l(dirty_mu_);
  bool retry = false;
  while (true) {
    if (retry) {
      // The last apply failed: try again when something changes, or after a
      // pause (a kernel hiccup must not leave a stale table forever). The
      // next apply replaces the table whole if the kernel's copy is unknown.
      dirty_cv_.wait_for(l, std::chrono::seconds(5), [this] { return stop_ || !dirty_.empty(); });
    } else if (!dirty_cv_.wait_for(l, kVerifyPeriod,
                                   [this] { return stop_ || !dirty_.empty() || datapath_unsynced_; })) {
      // Quiet for a while: is our table still what we applied? (A ruleset
      // flush or a deleted table would otherwise stay unnoticed until the
      // next change.) The table is this thread's: no lock.
      l.unlock();
      bool intact = true;
      if (Status v = table_->Verify(); !v.ok()) {
        intact = false;
        log::Warn("policy: the kernel's table differs from what terwayd applied ({}); applying again",
                  v.error().ToString());
        metrics_->Inc("terway_policy_applies_total", {{"trigger", "repair"}, {"result", "needed"}});
      }
      l.lock();
      if (intact) continue;
      retry = true;  // apply even with nothing dirty: the table is replaced whole
    }
    if (stop_) return;
    applying_ = true;
    const char* why = retry ? "repair" : pod_starts_waiting_ > 0 ? "pod start" : "change";
    l.unlock();
    Status st = ApplyChanges(why);
    if (!st.ok()) log::Warn("policy: applying a change failed (retrying): {}", st.error().ToString());
    l.lock();
    // A datapath out of sync is retried like a failed apply (NoteDatapathSync).
    retry = !st.ok() || datapath_unsynced_;
    applying_ = false;
    idle_cv_.notify_all();
  }
}

bool PolicyController::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock l(dirty_mu_);
  return idle_cv_.wait_for(l, timeout, [this] { return dirty_.empty() && !applying_; });
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

Status PolicyController::ApplyChanges(const char* why) {
  auto start = std::chrono::steady_clock::now();
  Dirty d;
  uint64_t gen = 0;
  {
    // Ledger changes are marked and numbered under this lock: the marks
    // taken here are those of every change numbered up to `gen`.
    std::lock_guard l(dirty_mu_);
    gen = requested_gen_;
    std::swap(d, dirty_);
  }
  bool policies_changed = false;
  Result<policy::NftModelChange> change = policy::NftModelChange{};
  {
    // In memory only: Explain's copy of the inputs waits for this, never
    // for the kernel below.
    std::lock_guard in(inputs_mu_);
    change = UpdateModel(d, &policies_changed);
    // Explain's inputs changed (to what this apply enforces; a failed apply
    // is retried from the same inputs).
    if (!d.empty() || model_gen_ == 0) model_gen_++;
  }
  // Pods about to be isolated are policed before their chains exist, and
  // stay policed until the kernel dropped them (MayIsolate, the datapath's
  // policy map).
  std::set<Ipv4Addr> isolated_now;
  if (change.ok()) {
    isolated_now = IsolatedAddresses(compiler_.model());
    {
      std::lock_guard l(isolated_mu_);
      isolated_.insert(isolated_now.begin(), isolated_now.end());
    }
    // A failure does not hold the chains back: they are the enforcement,
    // and the datapath has fallen to its safe side (every pod on the stack),
    // or, if it could not, refuses new pods it does not police.
    if (opts_.isolating) {
      if (Status dp = opts_.isolating(isolated_now); !dp.ok()) NoteDatapathSync(dp);
    }
  }
  Status st = change.ok() ? table_->ApplyChange(*change, compiler_.model())
                          : Status(std::move(change).error().Wrap("policy: bringing the model up to date"));
  if (st.ok()) {
    {
      std::lock_guard l(isolated_mu_);
      isolated_ = isolated_now;
    }
    if (opts_.isolation_applied) NoteDatapathSync(opts_.isolation_applied(isolated_now));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Inc("terway_policy_applies_total", {{"trigger", why}, {"result", st.ok() ? "ok" : "error"}});
  metrics_->Observe("terway_policy_apply_seconds", {}, secs);
  {
    // PodStarting's waiters: their changes are in the kernel, or this
    // apply of them failed.
    std::lock_guard l(dirty_mu_);
    if (st.ok()) {
      applied_gen_ = std::max(applied_gen_, gen);
    } else {
      failed_gen_ = std::max(failed_gen_, gen);
      failed_error_ = st.error();
    }
  }
  applied_cv_.notify_all();
  if (!st.ok()) {
    // Nothing is lost: the compiler holds the inputs (and starts over from
    // them if its own state may be half updated), and the table is replaced
    // whole when the kernel's copy is unknown. The worker retries.
    return st;
  }
  if (d.all) {
    // Reading every object (start, a resync) allocated and freed tens of
    // MiB at 10,000 policies (lists, conversions, compiles); give the pages
    // back so terwayd's RSS is what it holds.
    malloc_trim(0);
  }
  const policy::NftModel& m = compiler_.model();
  metrics_->Set("terway_policy_objects", {{"kind", "pods"}}, double(compiler_.pod_count()));
  metrics_->Set("terway_policy_objects", {{"kind", "policies"}}, double(compiler_.policy_count()));
  metrics_->Set("terway_policy_objects", {{"kind", "chains"}}, double(m.chains.size()));
  metrics_->Set("terway_policy_objects", {{"kind", "sets"}}, double(m.sets.size()));
  metrics_->Set("terway_policy_objects", {{"kind", "rejected"}}, double(rejected_.size()));
  if (policies_changed || d.context) ReportFailClosed();
  const auto& w = compiler_.last_work();
  log::Debug("policy: applied ({}) {} names changed; {} chains recompiled, {} pods probed, {} sets computed in "
             "{:.1f} ms",
             why, change->size(), w.fragments, w.probed_pods, w.recomputed_sets, secs * 1000);
  return Ok();
}

std::set<Ipv4Addr> IsolatedAddresses(const policy::NftModel& model) {
  std::set<Ipv4Addr> out;
  for (const auto* m : {&model.ingress, &model.egress}) {
    for (const auto& [ip, chain] : *m) {
      if (auto a = Ipv4Addr::Parse(ip); a.ok()) out.insert(*a);
    }
  }
  return out;
}

bool PolicyController::MayIsolate(Ipv4Addr ip) const {
  std::lock_guard l(isolated_mu_);
  return isolated_.count(ip) > 0;
}

Status PolicyController::PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip,
                                     std::optional<Ipv6Addr> ipv6) {
  const std::string key = ns + "/" + name;
  auto cached = pods_->Get(key);
  bool known = cached.has_value();
  if (!known || cached->node_name != opts_.node_name) {
    known = false;
    // The runtime beat our watch: read the pod itself, or its labels would
    // be unknown and it would start outside every policy that selects it.
    auto got = client_->Get(k8s::resources::kPods, ns, name);
    if (got.ok()) {
      auto pod = k8s::ParsePod(*got);
      if (!pod.ok()) return std::move(pod).error().Wrap("policy: pod " + key);
      std::lock_guard l(local_mu_);
      fetched_[key] = std::move(pod).value();
      known = true;
    } else if (got.error().code != ErrorCode::kNotFound) {
      return std::move(got).error().Wrap("policy: reading pod " + key + " (retry the ADD)");
    }
  }
  std::set<std::string> stale;  // other pods whose ledger entry named this address
  {
    std::lock_guard l(local_mu_);
    // One address, one pod: a ledger entry of another pod still naming this
    // address is stale (its release was missed).
    for (auto it = local_ips_.begin(); it != local_ips_.end();) {
      if (it->first != key && it->second == ip) {
        stale.insert(it->first);
        local_ips6_.erase(it->first);
        it = local_ips_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = local_ips6_.begin(); ipv6 && it != local_ips6_.end();) {
      if (it->first != key && it->second == *ipv6) {
        stale.insert(it->first);
        it = local_ips6_.erase(it);
      } else {
        ++it;
      }
    }
    local_ips_[key] = ip;
    if (ipv6) local_ips6_[key] = *ipv6;
    else local_ips6_.erase(key);
  }
  stale.insert(key);
  const uint64_t mine = MarkLedgerChange(stale);
  // A sandbox of no Kubernetes pod has no labels: no policy can select it,
  // and as a peer it is matched by address (ipBlock) like any host.
  if (!known) return Ok();
  // The worker applies it (marking woke it); an apply that snapshotted after
  // our number enforces it, so many ADDs at once share applies.
  return WaitApplied(mine);
}

Status PolicyController::WaitApplied(uint64_t gen) {
  std::unique_lock l(dirty_mu_);
  ++pod_starts_waiting_;
  applied_cv_.wait_for(l, opts_.pod_start_timeout,
                       [&] { return stop_ || applied_gen_ >= gen || failed_gen_ >= gen; });
  --pod_starts_waiting_;
  if (applied_gen_ >= gen) return Ok();
  if (failed_gen_ >= gen && failed_error_) return Error(*failed_error_).Wrap("policy: applying the pod's rules");
  if (stop_) return MakeError(ErrorCode::kUnavailable, "policy: terwayd is stopping; retry the ADD");
  return Errorf(ErrorCode::kTimeout,
                "policy: the pod's rules were not applied within {} ms (an apply of a large change may be running; "
                "terway_policy_apply_seconds shows how long they take); retry the ADD",
                opts_.pod_start_timeout.count());
}

void PolicyController::PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) {
  bool held = false;
  const std::string key = ns + "/" + name;
  {
    std::lock_guard l(local_mu_);
    auto it = local_ips_.find(key);
    if (it != local_ips_.end() && it->second == ip) {
      local_ips_.erase(it);
      local_ips6_.erase(key);
      fetched_.erase(key);
      held = true;
    }
  }
  if (!held) return;
  MarkLedgerChange({key});
}

uint64_t PolicyController::MarkLedgerChange(const std::set<std::string>& pods) {
  uint64_t gen = 0;
  {
    // Marked and numbered at once: an apply that takes our marks covers our
    // number, and one that covers our number took our marks (ApplyChanges).
    std::lock_guard l(dirty_mu_);
    dirty_.pods.insert(pods.begin(), pods.end());
    gen = ++requested_gen_;
  }
  dirty_cv_.notify_one();
  return gen;
}

Result<PolicyController::Snapshot> PolicyController::CurrentModel() {
  policy::PolicyInputs in;
  uint64_t gen = 0;
  std::vector<std::string> rejected;
  {
    std::lock_guard l(model_mu_);
    std::lock_guard in_lock(inputs_mu_);
    gen = model_gen_;
    if (explained_.model && explained_gen_ == gen) return explained_;
    if (gen == 0) return MakeError(ErrorCode::kUnavailable, "policy: no model compiled yet");
    in = compiler_.Inputs();
    rejected = rejected_;
  }
  // Outside inputs_mu_: a full compile takes a while at scale, and applies
  // (pod starts) must not wait for an operator's question.
  Snapshot snap;
  snap.model = std::make_shared<policy::CompiledPolicy>(
      policy::PolicyCompiler(policy::CompileOptions{opts_.node_name}).Compile(std::move(in)));
  snap.rejected = std::move(rejected);
  std::lock_guard l(model_mu_);
  if (gen >= explained_gen_) {
    explained_ = snap;
    explained_gen_ = gen;
  }
  return snap;
}

Result<policy::Explanation> PolicyController::Explain(const std::string& from, const std::string& to,
                                                      policy::Protocol proto, uint16_t port) {
  TERWAY_ASSIGN_OR_RETURN(Snapshot s, CurrentModel());
  return s.model->Explain(from, to, proto, port);
}

Result<std::string> PolicyController::Show() {
  TERWAY_ASSIGN_OR_RETURN(Snapshot s, CurrentModel());
  std::shared_ptr<const policy::CompiledPolicy> m = s.model;
  std::vector<std::string> rejected = std::move(s.rejected);
  // A separate handle: reading counters needs no apply lock.
  TERWAY_ASSIGN_OR_RETURN(auto counters, policy::NftPolicyTable(opts_.netns).ReadCounters());
  std::string out = policy::FormatPolicyShow(*m, counters);
  if (out.empty()) out = fmt::format("no pod on node {} is selected by a policy\n", opts_.node_name);
  for (const auto& r : rejected) out += "not read (the policies and rules it concerns are enforced on the safe side): " + r + "\n";
  return out;
}

Status PolicyController::RemoveTable(const std::string& netns) { return policy::NftPolicyTable(netns).Remove(); }

}  // namespace terway::daemon
