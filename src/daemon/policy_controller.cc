// The controller's life: the caches of everything policy reads, the
// handlers that mark what changed, the first apply, and the stop. The rest
// of PolicyController lives by responsibility beside this file:
// policy_apply.cc (the applier: worker and apply), policy_model_feed.cc
// (cache objects -> incremental compiler), policy_pod_start.cc (the local
// ledger and PodStarting's wait), policy_datapath_isolation.cc (the eBPF
// datapath's view of isolation), policy_explain.cc (explain / show).
#include "daemon/policy_controller.h"

#include <set>
#include <string>
#include <thread>
#include <utility>

#include "common/log.h"

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

void DeclarePolicyMetrics(Metrics* metrics) {
  metrics->DeclareCounter("terway_policy_applies_total", "Policy changes applied to nftables, by trigger and result");
  metrics->DeclareHistogram("terway_policy_apply_seconds",
                            "Time to bring the policy model up to date and send the kernel the difference",
                            LatencyBuckets());
  metrics->DeclareGauge("terway_policy_objects",
                        "Policy inputs by kind (pods, namespaces, policies, chains, sets, rejected)");
  metrics->DeclareGauge("terway_policy_fail_closed",
                        "Policies enforced on the safe side instead of as written (unreadable, or with a part that "
                        "cannot be enforced exactly), by kind (k8s, calico, global); see terway-cli policy show");
}

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
  DeclarePolicyMetrics(metrics);
  c->calico_ = DetectCalicoApi(*c->client_);
  c->WatchPolicyObjects();
  c->WatchCalicoPolicies();
  TERWAY_TRY(c->StartCaches());
  c->MarkDirty();  // the first apply reads everything the caches listed
  // Before the worker starts: this thread is the applier until then.
  TERWAY_TRY_CTX(c->ApplyChanges("start"), "enforcing network policy at start");
  PolicyController* self = c.get();
  c->worker_ = std::thread([self] { self->Worker(); });
  log::Info("policy: enforcing Kubernetes NetworkPolicy{} on node {} ({} pods, {} policies)",
            c->calico_ == CalicoApi::kNone ? "" : fmt::format(" and Calico policies ({})", CalicoApiName(c->calico_)),
            c->opts_.node_name, c->pods_->Size(),
            c->netpols_->Size() + (c->calico_policies_ ? c->calico_policies_->Size() + c->calico_global_->Size() : 0));
  return c;
}

void PolicyController::WatchPolicyObjects() {
  k8s::RestClient& rc = *client_;
  // Each handler names the object that changed: the worker converts only
  // those (a change of 1 object among 10,000 costs 1 conversion).
  auto changed = [this](std::set<std::string> Dirty::*what) {
    return [this, what](const auto& obj, auto&&...) { MarkChanged(what, obj.metadata.Key()); };
  };
  pods_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kPods);
  k8s::CacheHandlers<k8s::Pod> ph;
  ph.on_add = changed(&Dirty::pods);
  ph.on_delete = changed(&Dirty::pods);
  ph.on_update = [this](const k8s::Pod& a, const k8s::Pod& b) {
    if (PodChangeMatters(a, b)) MarkChanged(&Dirty::pods, b.metadata.Key());
  };
  pods_ = std::make_unique<k8s::Cache<k8s::Pod>>(*pods_lw_, k8s::ReflectorOptions{}, ph);

  ns_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNamespaces);
  k8s::CacheHandlers<k8s::Namespace> nsh;
  nsh.on_add = changed(&Dirty::namespaces);
  nsh.on_delete = changed(&Dirty::namespaces);
  nsh.on_update = [this](const k8s::Namespace& a, const k8s::Namespace& b) {
    if (a.metadata.labels != b.metadata.labels) MarkChanged(&Dirty::namespaces, b.metadata.Key());
  };
  namespaces_ = std::make_unique<k8s::Cache<k8s::Namespace>>(*ns_lw_, k8s::ReflectorOptions{}, nsh);

  nodes_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNodes);
  k8s::CacheHandlers<k8s::Node> nh;
  nh.on_add = [this](const k8s::Node&) { MarkFlag(&Dirty::nodes); };
  nh.on_delete = nh.on_add;
  nh.on_update = [this](const k8s::Node& a, const k8s::Node& b) {
    if (NodeAddressesDiffer(a, b)) MarkFlag(&Dirty::nodes);
  };
  nodes_ = std::make_unique<k8s::Cache<k8s::Node>>(*nodes_lw_, k8s::ReflectorOptions{}, nh);

  netpol_lw_ = std::make_unique<k8s::RestListerWatcher>(rc, k8s::resources::kNetworkPolicies);
  // Kept when unreadable: such a policy is enforced on the safe side.
  using NetpolOrError = k8s::ObjectOrError<k8s::NetworkPolicy>;
  auto netpol = changed(&Dirty::netpols);
  k8s::CacheHandlers<NetpolOrError> nph{netpol, netpol, netpol};
  netpols_ = std::make_unique<k8s::Cache<NetpolOrError>>(*netpol_lw_, k8s::ReflectorOptions{}, nph);

}

void PolicyController::WatchCalicoPolicies() {
  if (calico_ == CalicoApi::kNone) return;
  k8s::RestClient& rc = *client_;
  const bool v3 = calico_ == CalicoApi::kV3;
  auto changed = [this](std::set<std::string> Dirty::*what) {
    return [this, what](const auto& obj, auto&&...) { MarkChanged(what, obj.metadata.Key()); };
  };
  calico_lw_ = std::make_unique<k8s::RestListerWatcher>(
      rc, v3 ? k8s::resources::kCalicoNetworkPolicies : k8s::resources::kCalicoCrdNetworkPolicies);
  calico_global_lw_ = std::make_unique<k8s::RestListerWatcher>(
      rc, v3 ? k8s::resources::kCalicoGlobalNetworkPolicies : k8s::resources::kCalicoCrdGlobalNetworkPolicies);
  auto ns_policy = changed(&Dirty::calico), global_policy = changed(&Dirty::calico_global);
  k8s::CacheHandlers<k8s::RawObject> ch{ns_policy, ns_policy, ns_policy};
  k8s::CacheHandlers<k8s::RawObject> gh{global_policy, global_policy, global_policy};
  calico_policies_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*calico_lw_, k8s::ReflectorOptions{}, ch);
  calico_global_ = std::make_unique<k8s::Cache<k8s::RawObject>>(*calico_global_lw_, k8s::ReflectorOptions{}, gh);
}

Status PolicyController::StartCaches() {
  pods_->Start();
  namespaces_->Start();
  nodes_->Start();
  netpols_->Start();
  if (calico_policies_) {
    calico_policies_->Start();
    calico_global_->Start();
    WatchCalicoObjects();
  }
  auto synced = [&](auto& cache) { return !cache || cache->WaitForSync(opts_.sync_timeout); };
  if (!synced(pods_) || !synced(namespaces_) || !synced(nodes_) || !synced(netpols_) || !synced(calico_policies_) ||
      !synced(calico_global_) || !synced(tiers_) || !synced(network_sets_) || !synced(global_network_sets_) ||
      !synced(service_accounts_) || !synced(endpoint_slices_)) {
    return Errorf(ErrorCode::kUnavailable,
                  "policy: the Kubernetes API did not list pods, namespaces, nodes, network policies (and what "
                  "Calico's policies refer to) within {} ms; check the API server (or disable policy: eni-config "
                  "disable_network_policy: \"true\")",
                  opts_.sync_timeout.count());
  }
  return Ok();
}

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

Status PolicyController::RemoveTable(const std::string& netns) { return policy::NftPolicyTable(netns).Remove(); }

}  // namespace terway::daemon
