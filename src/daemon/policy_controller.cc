#include "daemon/policy_controller.h"

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
      table_(std::make_unique<policy::NftPolicyTable>(opts_.netns)) {}

Result<std::unique_ptr<PolicyController>> PolicyController::Create(std::shared_ptr<k8s::RestClient> client,
                                                                   PolicyControllerOptions opts,
                                                                   std::map<std::string, Ipv4Addr> local_ips,
                                                                   Metrics* metrics) {
  std::unique_ptr<PolicyController> c(new PolicyController(std::move(client), std::move(opts), metrics));
  c->local_ips_ = std::move(local_ips);
  metrics->DeclareCounter("terway_policy_applies_total", "Policy compiles applied to nftables, by trigger and result");
  metrics->DeclareHistogram("terway_policy_apply_seconds", "Time to compile the policy model and replace the nft table",
                            LatencyBuckets());
  metrics->DeclareGauge("terway_policy_objects", "Policy inputs by kind (pods, namespaces, policies, chains, sets, rejected)");
  metrics->DeclareGauge("terway_policy_fail_closed",
                        "Policies enforced on the safe side instead of as written (unreadable, or with a part that "
                        "cannot be enforced exactly), by kind (k8s, calico, global); see terway-cli policy show");

  k8s::RestClient& rc = *c->client_;
  c->calico_ = DetectCalicoApi(rc);
  PolicyController* self = c.get();
  auto dirty = [self](auto&&...) { self->MarkDirty(); };

  c->pods_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kPods);
  k8s::CacheHandlers<k8s::Pod> ph;
  ph.on_add = dirty;
  ph.on_delete = dirty;
  ph.on_update = [self](const k8s::Pod& a, const k8s::Pod& b) {
    if (PodChangeMatters(a, b)) self->MarkDirty();
  };
  c->pods_ = std::make_unique<k8s::Cache<k8s::Pod>>(*c->pods_lw_, k8s::ReflectorOptions{}, ph);

  c->ns_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNamespaces);
  k8s::CacheHandlers<k8s::Namespace> nsh;
  nsh.on_add = dirty;
  nsh.on_delete = dirty;
  nsh.on_update = [self](const k8s::Namespace& a, const k8s::Namespace& b) {
    if (a.metadata.labels != b.metadata.labels) self->MarkDirty();
  };
  c->namespaces_ = std::make_unique<k8s::Cache<k8s::Namespace>>(*c->ns_lw_, k8s::ReflectorOptions{}, nsh);

  c->nodes_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNodes);
  k8s::CacheHandlers<k8s::Node> nh;
  nh.on_add = dirty;
  nh.on_delete = dirty;
  nh.on_update = [self](const k8s::Node& a, const k8s::Node& b) {
    if (NodeAddressesDiffer(a, b)) self->MarkDirty();
  };
  c->nodes_ = std::make_unique<k8s::Cache<k8s::Node>>(*c->nodes_lw_, k8s::ReflectorOptions{}, nh);

  c->netpol_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNetworkPolicies);
  // Kept when unreadable: such a policy is enforced on the safe side.
  using NetpolOrError = k8s::ObjectOrError<k8s::NetworkPolicy>;
  k8s::CacheHandlers<NetpolOrError> nph{dirty, dirty, dirty};
  c->netpols_ = std::make_unique<k8s::Cache<NetpolOrError>>(*c->netpol_lw_, k8s::ReflectorOptions{}, nph);

  if (c->calico_ != CalicoApi::kNone) {
    const bool v3 = c->calico_ == CalicoApi::kV3;
    c->calico_lw_ = std::make_unique<k8s::RestListerWatcher>(
        rc, v3 ? k8s::resources::kCalicoNetworkPolicies : k8s::resources::kCalicoCrdNetworkPolicies);
    c->calico_global_lw_ = std::make_unique<k8s::RestListerWatcher>(
        rc, v3 ? k8s::resources::kCalicoGlobalNetworkPolicies : k8s::resources::kCalicoCrdGlobalNetworkPolicies);
    k8s::CacheHandlers<k8s::RawObject> ch{dirty, dirty, dirty};
    c->calico_policies_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*c->calico_lw_, k8s::ReflectorOptions{}, ch);
    c->calico_global_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*c->calico_global_lw_, k8s::ReflectorOptions{}, ch);
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
  TERWAY_TRY_CTX(c->CompileAndApply("start"), "enforcing network policy at start");
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
  auto dirty = [this](auto&&...) { MarkDirty(); };
  k8s::CacheHandlers<k8s::RawObject> rawh{dirty, [this](const k8s::RawObject& a, const k8s::RawObject& b) {
                                            if (CalicoObjectChangeMatters(a, b)) MarkDirty();
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
                                                if (a.metadata.labels != b.metadata.labels) MarkDirty();
                                              },
                                              dirty};
    service_accounts_ = std::make_unique<k8s::Cache<k8s::ServiceAccount>>(*sa_lw_, k8s::ReflectorOptions{}, h);
    service_accounts_->Start();
  }
  if (Served(rc, k8s::resources::kEndpointSlices)) {
    slices_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kEndpointSlices);
    k8s::CacheHandlers<k8s::EndpointSlice> h{dirty,
                                             [this](const k8s::EndpointSlice& a, const k8s::EndpointSlice& b) {
                                               if (EndpointSliceChangeMatters(a, b)) MarkDirty();
                                             },
                                             dirty};
    endpoint_slices_ = std::make_unique<k8s::Cache<k8s::EndpointSlice>>(*slices_lw_, k8s::ReflectorOptions{}, h);
    endpoint_slices_->Start();
  }
}

void PolicyController::SnapshotPolicyObjects(PolicySources& src) const {
  for (auto& np : netpols_->List()) {
    if (np.object) {
      src.network_policies.push_back(std::move(*np.object));
    } else {
      src.unreadable_network_policies.push_back(std::move(np));
    }
  }
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
  raw(calico_policies_, "NetworkPolicy", src.calico_policies);
  raw(calico_global_, "GlobalNetworkPolicy", src.calico_policies);
  raw(tiers_, "Tier", src.tiers);
  raw(network_sets_, "NetworkSet", src.network_sets);
  raw(global_network_sets_, "GlobalNetworkSet", src.global_network_sets);
  if (service_accounts_) src.service_accounts = service_accounts_->List();
  if (endpoint_slices_) src.endpoint_slices = endpoint_slices_->List();
}

void PolicyController::ReportFailClosed(const policy::CompiledPolicy& model, const PolicyObjects& objects) {
  std::vector<FailClosedReport> reports = FailClosedReports(model.policies(), objects);
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
    dirty_ = true;
  }
  dirty_cv_.notify_one();
}

void PolicyController::Worker() {
  std::unique_lock l(dirty_mu_);
  bool retry = false;
  while (true) {
    if (retry) {
      // The last apply failed: try again when something changes, or after a
      // pause (a kernel hiccup must not leave a stale table forever).
      dirty_cv_.wait_for(l, std::chrono::seconds(5), [this] { return stop_ || dirty_; });
      dirty_ = true;
    } else if (!dirty_cv_.wait_for(l, kVerifyPeriod, [this] { return stop_ || dirty_; })) {
      // Quiet for a while: is our table still what we applied? (A ruleset
      // flush or a deleted table would otherwise stay unnoticed until the
      // next change.)
      l.unlock();
      bool intact = true;
      {
        std::lock_guard apply(apply_mu_);
        Status v = table_->Verify();
        if (!v.ok()) {
          intact = false;
          log::Warn("policy: the kernel's table differs from what terwayd applied ({}); applying again",
                    v.error().ToString());
          metrics_->Inc("terway_policy_applies_total", {{"trigger", "repair"}, {"result", "needed"}});
        }
      }
      l.lock();
      if (intact) continue;
      dirty_ = true;
    }
    if (stop_) return;
    dirty_ = false;
    l.unlock();
    Status st = CompileAndApply("change");
    retry = !st.ok();
    if (retry) log::Warn("policy: applying a change failed (retrying): {}", st.error().ToString());
    l.lock();
  }
}

Status PolicyController::CompileAndApply(const char* why) {
  std::lock_guard apply(apply_mu_);
  return CompileAndApplyLocked(why);
}

Status PolicyController::CompileAndApplyLocked(const char* why) {
  auto start = std::chrono::steady_clock::now();
  // Every ledger change numbered up to here is in this snapshot.
  const uint64_t gen = requested_gen_.load();
  PolicySources src;
  src.node_name = opts_.node_name;
  src.node_ips = opts_.node_ips;
  src.pods = pods_->List();
  {
    std::lock_guard l(local_mu_);
    src.local_ips = local_ips_;
    std::map<std::string, size_t> cached;
    for (size_t i = 0; i < src.pods.size(); i++) cached[src.pods[i].metadata.Key()] = i;
    for (auto it = fetched_.begin(); it != fetched_.end();) {
      auto c = cached.find(it->first);
      if (c == cached.end()) {
        src.pods.push_back(it->second);
        ++it;
      } else if (src.pods[c->second].node_name == opts_.node_name) {
        it = fetched_.erase(it);  // the cache has caught up
      } else {
        src.pods[c->second] = it->second;  // the cache's copy predates the binding
        ++it;
      }
    }
  }
  src.namespaces = namespaces_->List();
  src.nodes = nodes_->List();
  SnapshotPolicyObjects(src);
  BuiltInputs built = BuildPolicyInputs(src);
  const size_t n_pods = built.inputs.pods.size(), n_ns = built.inputs.namespaces.size(),
               n_pol = built.inputs.policies.size();
  policy::CompileOptions co;
  co.node = opts_.node_name;
  auto model = std::make_shared<policy::CompiledPolicy>(policy::PolicyCompiler(co).Compile(std::move(built.inputs)));
  Status st = table_->Apply(*model);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Inc("terway_policy_applies_total", {{"trigger", why}, {"result", st.ok() ? "ok" : "error"}});
  metrics_->Observe("terway_policy_apply_seconds", {}, secs);
  if (!st.ok()) return st;
  metrics_->Set("terway_policy_objects", {{"kind", "pods"}}, double(n_pods));
  metrics_->Set("terway_policy_objects", {{"kind", "namespaces"}}, double(n_ns));
  metrics_->Set("terway_policy_objects", {{"kind", "policies"}}, double(n_pol));
  metrics_->Set("terway_policy_objects", {{"kind", "chains"}}, double(model->chains().size()));
  metrics_->Set("terway_policy_objects", {{"kind", "sets"}}, double(model->sets().size()));
  metrics_->Set("terway_policy_objects", {{"kind", "rejected"}}, double(built.rejected.size()));
  applied_gen_ = std::max(applied_gen_, gen);
  ReportFailClosed(*model, built.policy_objects);
  std::lock_guard l(model_mu_);
  if (built.rejected != rejected_) {
    // Logged when the set changes, not at every recompile.
    for (const auto& r : built.rejected) log::Warn("policy: not read, takes no part in policy: {}", r);
  }
  rejected_ = std::move(built.rejected);
  model_ = std::move(model);
  log::Debug("policy: applied ({}) {} chains over {} pods, {} policies in {:.1f} ms", why, model_->chains().size(),
             n_pods, n_pol, secs * 1000);
  return Ok();
}

Status PolicyController::PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip) {
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
  uint64_t mine = 0;
  {
    std::lock_guard l(local_mu_);
    // One address, one pod: a ledger entry of another pod still naming this
    // address is stale (its release was missed).
    for (auto it = local_ips_.begin(); it != local_ips_.end();) {
      it = it->first != key && it->second == ip ? local_ips_.erase(it) : std::next(it);
    }
    local_ips_[key] = ip;
    mine = ++requested_gen_;
  }
  // A sandbox of no Kubernetes pod has no labels: no policy can select it,
  // and as a peer it is matched by address (ipBlock) like any host.
  if (!known) return Ok();
  std::lock_guard apply(apply_mu_);
  // An apply that snapshotted after our entry already enforces it (many
  // ADDs at once share applies).
  if (applied_gen_ >= mine) return Ok();
  return CompileAndApplyLocked("pod start");
}

void PolicyController::PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) {
  bool held = false;
  {
    std::lock_guard l(local_mu_);
    const std::string key = ns + "/" + name;
    auto it = local_ips_.find(key);
    if (it != local_ips_.end() && it->second == ip) {
      local_ips_.erase(it);
      fetched_.erase(key);
      held = true;
      ++requested_gen_;
    }
  }
  if (held) MarkDirty();
}

Result<policy::Explanation> PolicyController::Explain(const std::string& from, const std::string& to,
                                                      policy::Protocol proto, uint16_t port) {
  std::shared_ptr<const policy::CompiledPolicy> m;
  {
    std::lock_guard l(model_mu_);
    m = model_;
  }
  if (!m) return MakeError(ErrorCode::kUnavailable, "policy: no model compiled yet");
  return m->Explain(from, to, proto, port);
}

Result<std::string> PolicyController::Show() {
  std::shared_ptr<const policy::CompiledPolicy> m;
  std::vector<std::string> rejected;
  {
    std::lock_guard l(model_mu_);
    m = model_;
    rejected = rejected_;
  }
  if (!m) return MakeError(ErrorCode::kUnavailable, "policy: no model compiled yet");
  // A separate handle: reading counters needs no apply lock.
  TERWAY_ASSIGN_OR_RETURN(auto counters, policy::NftPolicyTable(opts_.netns).ReadCounters());
  std::string out = policy::FormatPolicyShow(*m, counters);
  if (out.empty()) out = fmt::format("no pod on node {} is selected by a policy\n", opts_.node_name);
  for (const auto& r : rejected) out += "not read, takes no part in policy: " + r + "\n";
  return out;
}

Status PolicyController::RemoveTable(const std::string& netns) { return policy::NftPolicyTable(netns).Remove(); }

}  // namespace terway::daemon
