#include "daemon/policy_controller.h"

#include <malloc.h>

#include <algorithm>
#include <set>

#include "common/log.h"
#include "policy/calico_policy.h"
#include "policy/k8s_policy.h"
#include "policy/policy_show.h"

namespace terway::daemon {

const char* CalicoApiName(CalicoApi a) {
  switch (a) {
    case CalicoApi::kNone: return "none";
    case CalicoApi::kV3: return "projectcalico.org/v3";
    case CalicoApi::kCrdV1: return "crd.projectcalico.org/v1";
  }
  return "?";
}

k8s::Json CalicoCrdToV3(const k8s::Json& crd) {
  k8s::Json v3 = crd;
  if (!v3.is_object()) return v3;
  v3["apiVersion"] = "projectcalico.org/v3";
  auto meta = v3.find("metadata");
  if (meta == v3.end() || !meta->is_object()) return v3;
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string()) return v3;
  // Calico's datastore names a default-tier policy "default.<name>"; the v3
  // API (and our Explain) calls it <name>.
  const std::string n = name->get<std::string>();
  constexpr std::string_view kDefaultTier = "default.";
  if (n.size() > kDefaultTier.size() && n.compare(0, kDefaultTier.size(), kDefaultTier) == 0) {
    *name = n.substr(kDefaultTier.size());
  }
  return v3;
}

// A pod that ran to completion keeps status.podIP, but its address is free
// for reuse.
bool PodFinished(const k8s::Pod& p) { return p.phase == "Succeeded" || p.phase == "Failed"; }

BuiltInputs BuildPolicyInputs(const PolicySources& s) {
  BuiltInputs out;
  policy::PolicyInputs& in = out.inputs;
  for (const auto& ns : s.namespaces) in.namespaces.push_back(policy::NamespaceFromK8s(ns));
  for (const auto& p : s.pods) {
    policy::PodInfo info = policy::PodFromK8s(p);
    auto local = s.local_ips.find(info.Key());
    if (!p.host_network && local != s.local_ips.end()) {
      // A pod we handed an address to runs here, whatever a cached copy
      // (from before the scheduler bound it) says: our address is the truth.
      info.ip = local->second;
      info.node = s.node_name;
    } else if (!s.node_name.empty() && p.node_name == s.node_name && !p.host_network) {
      // Ours but holding nothing (gone, or not yet added): the API's
      // status.podIP lags and can be stale.
      info.ip = std::nullopt;
    } else if (PodFinished(p)) {
      // As a peer it would lend its labels to whoever gets the address next.
      info.ip = std::nullopt;
    }
    in.pods.push_back(std::move(info));
  }
  for (const auto& n : s.nodes) {
    for (const auto& a : n.addresses) {
      if (a.type != "InternalIP" && a.type != "ExternalIP") continue;
      if (auto ip = Ipv4Addr::Parse(a.address); ip.ok()) in.node_ips[n.metadata.name].push_back(*ip);
    }
  }
  if (!s.node_name.empty()) {
    auto& mine = in.node_ips[s.node_name];
    for (const auto& ip : s.node_ips) {
      if (std::find(mine.begin(), mine.end(), ip) == mine.end()) mine.push_back(ip);
    }
  }
  for (const auto& np : s.network_policies) {
    auto p = policy::PolicyFromK8s(np);
    if (!p.ok()) {
      out.rejected.push_back(fmt::format("k8s:{}: {}", np.metadata.Key(), p.error().ToString()));
      continue;
    }
    in.policies.push_back(std::move(p).value());
  }
  for (const auto& obj : s.calico_policies) {
    auto p = policy::PolicyFromCalico(obj);
    if (!p.ok()) {
      std::string name = obj.contains("metadata") && obj["metadata"].is_object()
                             ? obj["metadata"].value("namespace", std::string()) + "/" +
                                   obj["metadata"].value("name", std::string())
                             : "?";
      out.rejected.push_back(fmt::format("calico:{}: {}", name, p.error().ToString()));
      continue;
    }
    in.policies.push_back(std::move(p).value());
  }
  return out;
}

bool PodChangeMatters(const k8s::Pod& a, const k8s::Pod& b) {
  if (a.metadata.labels != b.metadata.labels || a.pod_ip != b.pod_ip || a.pod_ips != b.pod_ips ||
      a.node_name != b.node_name || a.host_network != b.host_network || a.metadata.uid != b.metadata.uid ||
      PodFinished(a) != PodFinished(b)) {
    return true;
  }
  if (a.containers.size() != b.containers.size()) return true;
  for (size_t i = 0; i < a.containers.size(); i++) {
    const auto& pa = a.containers[i].ports;
    const auto& pb = b.containers[i].ports;
    if (pa.size() != pb.size()) return true;
    for (size_t j = 0; j < pa.size(); j++) {
      if (pa[j].name != pb[j].name || pa[j].container_port != pb[j].container_port ||
          pa[j].protocol != pb[j].protocol) {
        return true;
      }
    }
  }
  return false;
}

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
      table_(std::make_unique<policy::NftPolicyTable>(opts_.netns)),
      compiler_(policy::CompileOptions{opts_.node_name}) {}

Result<std::unique_ptr<PolicyController>> PolicyController::Create(std::shared_ptr<k8s::RestClient> client,
                                                                   PolicyControllerOptions opts,
                                                                   std::map<std::string, Ipv4Addr> local_ips,
                                                                   Metrics* metrics) {
  std::unique_ptr<PolicyController> c(new PolicyController(std::move(client), std::move(opts), metrics));
  c->local_ips_ = std::move(local_ips);
  metrics->DeclareCounter("terway_policy_applies_total", "Policy changes applied to nftables, by trigger and result");
  metrics->DeclareHistogram("terway_policy_apply_seconds",
                            "Time to bring the policy model up to date and send the kernel the difference",
                            LatencyBuckets());
  metrics->DeclareGauge("terway_policy_objects", "Policy inputs by kind (pods, namespaces, policies, chains, sets, rejected)");

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
  nh.on_add = [self](const k8s::Node&) { self->MarkNodesChanged(); };
  nh.on_delete = nh.on_add;
  nh.on_update = [self](const k8s::Node& a, const k8s::Node& b) {
    if (NodeAddressesDiffer(a, b)) self->MarkNodesChanged();
  };
  c->nodes_ = std::make_unique<k8s::Cache<k8s::Node>>(*c->nodes_lw_, k8s::ReflectorOptions{}, nh);

  c->netpol_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNetworkPolicies);
  auto netpol = changed(&Dirty::netpols);
  k8s::CacheHandlers<k8s::NetworkPolicy> nph{netpol, netpol, netpol};
  c->netpols_ = std::make_unique<k8s::Cache<k8s::NetworkPolicy>>(*c->netpol_lw_, k8s::ReflectorOptions{}, nph);

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
  }
  auto synced = [&](auto& cache) { return !cache || cache->WaitForSync(c->opts_.sync_timeout); };
  if (!synced(c->pods_) || !synced(c->namespaces_) || !synced(c->nodes_) || !synced(c->netpols_) ||
      !synced(c->calico_policies_) || !synced(c->calico_global_)) {
    return Errorf(ErrorCode::kUnavailable,
                  "policy: the Kubernetes API did not list pods, namespaces, nodes and network policies within "
                  "{} ms; check the API server (or disable policy: eni-config disable_network_policy: \"true\")",
                  c->opts_.sync_timeout.count());
  }
  c->MarkDirty();  // the first apply reads everything the caches listed
  TERWAY_TRY_CTX(c->ApplyChanges("start"), "enforcing network policy at start");
  c->worker_ = std::thread([self] { self->Worker(); });
  log::Info("policy: enforcing Kubernetes NetworkPolicy{} on node {} ({} pods, {} policies)",
            c->calico_ == CalicoApi::kNone ? "" : fmt::format(" and Calico policies ({})", CalicoApiName(c->calico_)),
            c->opts_.node_name, c->pods_->Size(),
            c->netpols_->Size() + (c->calico_policies_ ? c->calico_policies_->Size() + c->calico_global_->Size() : 0));
  return c;
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

void PolicyController::MarkNodesChanged() {
  {
    std::lock_guard l(dirty_mu_);
    dirty_.nodes = true;
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
    } else if (!dirty_cv_.wait_for(l, kVerifyPeriod, [this] { return stop_ || !dirty_.empty(); })) {
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
      retry = true;  // apply even with nothing dirty: the table is replaced whole
    }
    if (stop_) return;
    applying_ = true;
    l.unlock();
    Status st = ApplyChanges(retry ? "repair" : "change");
    retry = !st.ok();
    if (retry) log::Warn("policy: applying a change failed (retrying): {}", st.error().ToString());
    l.lock();
    applying_ = false;
    idle_cv_.notify_all();
  }
}

bool PolicyController::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock l(dirty_mu_);
  return idle_cv_.wait_for(l, timeout, [this] { return dirty_.empty() && !applying_; });
}

Status PolicyController::ApplyChanges(const char* why) {
  std::lock_guard apply(apply_mu_);
  return ApplyChangesLocked(why);
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
  }
  if (!pod) {
    compiler_.RemovePod(key);
    return;
  }
  s.pods.push_back(std::move(*pod));
  compiler_.UpsertPod(std::move(BuildPolicyInputs(s).inputs.pods.front()));
}

// source: "k8s", "calico" or "global" (the caches they come from).
void PolicyController::FeedPolicy(const std::string& source, const std::string& key) {
  PolicySources s;
  if (source == "k8s") {
    if (auto np = netpols_->Get(key)) s.network_policies.push_back(std::move(*np));
  } else {
    auto* cache = source == "calico" ? calico_policies_.get() : calico_global_.get();
    if (auto o = cache ? cache->Get(key) : std::nullopt) {
      s.calico_policies.push_back(calico_ == CalicoApi::kCrdV1 ? CalicoCrdToV3(o->raw) : std::move(o->raw));
    }
  }
  const std::string object = source + "/" + key;
  BuiltInputs b = BuildPolicyInputs(s);
  // What this object was enforced as goes (its id may have changed with a
  // Calico datastore rename), then what it is now comes.
  if (auto was = policy_ids_.find(object); was != policy_ids_.end()) {
    compiler_.RemovePolicy(was->second);
    policy_ids_.erase(was);
  }
  if (!b.rejected.empty()) {
    auto [it, fresh] = rejected_.try_emplace(object, b.rejected.front());
    if (fresh || it->second != b.rejected.front()) log::Warn("policy not enforced: {}", b.rejected.front());
    it->second = b.rejected.front();
  } else {
    rejected_.erase(object);
  }
  if (!b.inputs.policies.empty()) {
    policy_ids_[object] = b.inputs.policies.front().Id();
    compiler_.UpsertPolicy(std::move(b.inputs.policies.front()));
  }
}

void PolicyController::FeedNodes() {
  PolicySources s;
  s.node_name = opts_.node_name;
  s.node_ips = opts_.node_ips;
  s.nodes = nodes_->List();
  compiler_.SetNodeIps(BuildPolicyInputs(s).inputs.node_ips);
}

void PolicyController::LoadAll() {
  // Everything goes unless fed again; the compiler's next Update rebuilds.
  compiler_.Reset({});
  policy_ids_.clear();
  std::set<std::string> pods, policies;
  for (const auto& p : pods_->List()) pods.insert(p.metadata.Key());
  {
    std::lock_guard l(local_mu_);
    for (const auto& [key, pod] : fetched_) pods.insert(key);
  }
  for (const auto& key : pods) FeedPod(key);
  for (const auto& ns : namespaces_->List()) compiler_.UpsertNamespace(policy::NamespaceFromK8s(ns));
  FeedNodes();
  auto feed = [&](const std::string& source, const std::string& key) {
    FeedPolicy(source, key);
    policies.insert(source + "/" + key);
  };
  for (const auto& np : netpols_->List()) feed("k8s", np.metadata.Key());
  if (calico_policies_) {
    for (const auto& o : calico_policies_->List()) feed("calico", o.metadata.Key());
    for (const auto& o : calico_global_->List()) feed("global", o.metadata.Key());
  }
  for (auto it = rejected_.begin(); it != rejected_.end();) it = policies.count(it->first) ? std::next(it) : rejected_.erase(it);
}

Status PolicyController::ApplyChangesLocked(const char* why) {
  auto start = std::chrono::steady_clock::now();
  // Every ledger change numbered up to here is marked dirty already.
  const uint64_t gen = requested_gen_.load();
  Dirty d;
  {
    std::lock_guard l(dirty_mu_);
    std::swap(d, dirty_);
  }
  if (d.all) {
    LoadAll();
  } else {
    for (const auto& key : d.pods) FeedPod(key);
    for (const auto& name : d.namespaces) {
      if (auto ns = namespaces_->Get(name)) compiler_.UpsertNamespace(policy::NamespaceFromK8s(*ns));
      else compiler_.RemoveNamespace(name);
    }
    if (d.nodes) FeedNodes();
    for (const auto& key : d.netpols) FeedPolicy("k8s", key);
    for (const auto& key : d.calico) FeedPolicy("calico", key);
    for (const auto& key : d.calico_global) FeedPolicy("global", key);
  }
  auto change = compiler_.Update();
  Status st = change.ok() ? table_->ApplyChange(*change, compiler_.model())
                          : std::move(change).error().Wrap("policy: bringing the model up to date");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Inc("terway_policy_applies_total", {{"trigger", why}, {"result", st.ok() ? "ok" : "error"}});
  metrics_->Observe("terway_policy_apply_seconds", {}, secs);
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
  applied_gen_ = std::max(applied_gen_, gen);
  if (!d.empty() || !change->empty() || model_gen_ == 0) model_gen_++;  // Explain's inputs changed
  const auto& w = compiler_.last_work();
  log::Debug("policy: applied ({}) {} names changed; {} chains recompiled, {} pods probed, {} sets computed in "
             "{:.1f} ms",
             why, change->size(), w.fragments, w.probed_pods, w.recomputed_sets, secs * 1000);
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
  std::set<std::string> stale;  // other pods whose ledger entry named this address
  {
    std::lock_guard l(local_mu_);
    // One address, one pod: a ledger entry of another pod still naming this
    // address is stale (its release was missed).
    for (auto it = local_ips_.begin(); it != local_ips_.end();) {
      if (it->first != key && it->second == ip) {
        stale.insert(it->first);
        it = local_ips_.erase(it);
      } else {
        ++it;
      }
    }
    local_ips_[key] = ip;
  }
  // Marked before numbered: an apply that sees our number sees our marks.
  for (const auto& k : stale) MarkChanged(&Dirty::pods, k);
  MarkChanged(&Dirty::pods, key);
  const uint64_t mine = ++requested_gen_;
  // A sandbox of no Kubernetes pod has no labels: no policy can select it,
  // and as a peer it is matched by address (ipBlock) like any host.
  if (!known) return Ok();
  std::lock_guard apply(apply_mu_);
  // An apply that snapshotted after our entry already enforces it (many
  // ADDs at once share applies).
  if (applied_gen_ >= mine) return Ok();
  return ApplyChangesLocked("pod start");
}

void PolicyController::PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) {
  bool held = false;
  const std::string key = ns + "/" + name;
  {
    std::lock_guard l(local_mu_);
    auto it = local_ips_.find(key);
    if (it != local_ips_.end() && it->second == ip) {
      local_ips_.erase(it);
      fetched_.erase(key);
      held = true;
    }
  }
  if (!held) return;
  MarkChanged(&Dirty::pods, key);
  ++requested_gen_;
}

Result<PolicyController::Snapshot> PolicyController::CurrentModel() {
  policy::PolicyInputs in;
  uint64_t gen = 0;
  std::vector<std::string> rejected;
  {
    std::lock_guard l(model_mu_);
    std::lock_guard apply(apply_mu_);
    gen = model_gen_;
    if (explained_.model && explained_gen_ == gen) return explained_;
    if (gen == 0) return MakeError(ErrorCode::kUnavailable, "policy: no model compiled yet");
    in = compiler_.Inputs();
    for (const auto& [object, why] : rejected_) rejected.push_back(why);
  }
  // Outside the apply lock: a full compile takes a while at scale, and pod
  // starts must not wait for an operator's question.
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
  for (const auto& r : rejected) out += "not enforced: " + r + "\n";
  return out;
}

Status PolicyController::RemoveTable(const std::string& netns) { return policy::NftPolicyTable(netns).Remove(); }

}  // namespace terway::daemon
