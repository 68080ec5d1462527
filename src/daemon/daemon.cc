#include "daemon/daemon.h"

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <httplib.h>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/exclusive_eni.h"
#include "datapath/shared_eni.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "k8s/config.h"
#include "k8s/node_config.h"
#include "netlink/netns.h"
#include "qos/annotations.h"

namespace terway::daemon {

Result<ipam::EniConfig> LoadEniConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Errorf(ErrorCode::kNotFound,
                  "cannot read the eni_conf file {}: {}; mount the eni-config ConfigMap's "
                  "eni_conf key there or pass --config", path, std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, ipam::ParseEniConfig(ss.str()), "in " + path);
  for (const auto& w : parsed.warnings) log::Warn("config {}: {}", path, w);
  return parsed.config;
}

cloud::CloudOptions CloudOptionsFromConfig(const ipam::EniConfig& c) {
  cloud::CloudOptions o;
  o.region_id = c.region_id;
  o.ecs_endpoint = c.ecs_endpoint;
  o.vpc_endpoint = c.vpc_endpoint;
  o.metadata_endpoint = c.metadata_endpoint;
  o.rate_limit = c.rate_limit;
  o.access_key = c.access_key;
  o.access_secret = c.access_secret;
  o.credential_path = c.credential_path;
  switch (c.credential_source) {
    case ipam::CredentialSource::kAuto: o.credential_kind = cloud::CredentialKind::kAuto; break;
    case ipam::CredentialSource::kStatic: o.credential_kind = cloud::CredentialKind::kStatic; break;
    case ipam::CredentialSource::kFile: o.credential_kind = cloud::CredentialKind::kFile; break;
    case ipam::CredentialSource::kRamRole: o.credential_kind = cloud::CredentialKind::kRamRole; break;
  }
  return o;
}

namespace {
Result<NodeIdentity> ReadNodeIdentity(cloud::InstanceMetadata* md, const std::string& region) {
  NodeIdentity n;
  TERWAY_ASSIGN_OR_RETURN_CTX(n.instance_id, md->InstanceId(), "reading the node identity");
  TERWAY_ASSIGN_OR_RETURN_CTX(n.instance_type, md->InstanceType(), "reading the node identity");
  TERWAY_ASSIGN_OR_RETURN_CTX(n.zone_id, md->ZoneId(), "reading the node identity");
  TERWAY_ASSIGN_OR_RETURN_CTX(n.vpc_id, md->VpcId(), "reading the node identity");
  TERWAY_ASSIGN_OR_RETURN_CTX(n.vswitch_id, md->VSwitchId(), "reading the node identity");
  n.region_id = region;
  return n;
}

Result<std::pair<std::string, int>> SplitHostPort(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not host:port", s);
  }
  int port = 0;
  try {
    port = std::stoi(s.substr(colon + 1));
  } catch (...) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' has a bad port", s);
  }
  if (port < 0 || port > 65535) return Errorf(ErrorCode::kInvalidArgument, "'{}' has a bad port", s);
  return std::make_pair(s.substr(0, colon), port);
}
}  // namespace

Result<std::optional<k8s::RestConfig>> ResolveKubeConfig(const DaemonOptions& opts) {
  if (!opts.kubeconfig.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto cfg, k8s::LoadKubeconfig(opts.kubeconfig), "--kubeconfig " + opts.kubeconfig);
    return std::optional<k8s::RestConfig>(cfg);
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto cfg, k8s::LoadInClusterConfig(), "the in-cluster Kubernetes configuration");
    return std::optional<k8s::RestConfig>(cfg);
  }
  return std::optional<k8s::RestConfig>();
}

Result<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& opts) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->opts_ = opts;
  TERWAY_ASSIGN_OR_RETURN(auto kube_config, ResolveKubeConfig(opts));
  std::shared_ptr<k8s::RestClient> kube_client;
  if (kube_config) {
    if (opts.node_name.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Kubernetes API is configured but not this node's name: pass --node-name or set "
                       "$NODE_NAME (the DaemonSet sets it from spec.nodeName)");
    }
    kube_client = k8s::RestClient::FromConfig(*kube_config);
    // With an API, eni_conf is the cluster's (plus this node's override);
    // --config is not read, so a stale file cannot shadow the ConfigMap.
    TERWAY_ASSIGN_OR_RETURN_CTX(auto conf, k8s::LoadNodeEniConf(*kube_client, opts.node_name),
                                fmt::format("reading eni_conf of node {} from ConfigMap {}/{} (server {})",
                                            opts.node_name, k8s::kEniConfigNamespace, k8s::kEniConfigName,
                                            kube_config->server));
    const std::string source = fmt::format("ConfigMap {}/{}{}", k8s::kEniConfigNamespace, k8s::kEniConfigName,
                                           conf.override_source.empty() ? "" : " + " + conf.override_source);
    TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, ipam::ParseEniConfig(conf.eni_conf), "eni_conf of " + source);
    for (const auto& w : parsed.warnings) log::Warn("config {}: {}", source, w);
    d->config_ = parsed.config;
    d->disable_network_policy_ = conf.disable_network_policy;
    if (d->config_.kube_client_qps > 0 || d->config_.kube_client_burst > 0) {
      // The operator's limit from eni_conf, for every request from here on
      // (the first reads above ran with the defaults).
      k8s::RestConfig limited = *kube_config;
      if (d->config_.kube_client_qps > 0) limited.qps = d->config_.kube_client_qps;
      if (d->config_.kube_client_burst > 0) limited.burst = d->config_.kube_client_burst;
      kube_client = k8s::RestClient::FromConfig(limited);
      log::Info("kubernetes client limited to {} QPS, burst {} (eni_conf kube_client_qps/kube_client_burst)",
                limited.qps, limited.burst);
    }
    log::Info("kubernetes API {} node {}: eni_conf from {}", kube_config->server, opts.node_name, source);
  } else {
    log::Info("no Kubernetes API configured (no --kubeconfig, no in-cluster service account): running API-less, "
              "eni_conf from {}; pod labels/annotations, pod GC and node reports are off",
              opts.config_path);
    TERWAY_ASSIGN_OR_RETURN(d->config_, LoadEniConfig(opts.config_path));
  }
  if (d->opts_.socket_path.empty()) d->opts_.socket_path = d->config_.daemon_socket;
  if (d->opts_.state_path.empty()) d->opts_.state_path = d->config_.state_path;
  const bool exclusive = d->config_.eni_mode == ipam::EniMode::kExclusive;
  const std::string mode = exclusive ? "exclusive" : "shared";
  std::string dp = d->opts_.datapath == "auto" ? mode : d->opts_.datapath;
  if (dp != "none" && dp != "shared" && dp != "exclusive") {
    return Errorf(ErrorCode::kInvalidArgument, "--datapath must be auto, shared, exclusive or none, not '{}'",
                  d->opts_.datapath);
  }
  if (dp == "none" && exclusive) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "eni_mode exclusive moves each pod's ENI into the pod, so it has no IPAM-only form; "
                     "drop --datapath none (or use eni_mode shared)");
  }
  if (dp != "none" && dp != mode) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "--datapath {} does not match eni_mode \"{}\" of {}: pods of a node are wired the way its "
                  "addresses are handed out; use --datapath auto",
                  dp, mode, opts.config_path);
  }
  d->datapath_mode_ = dp == "none" ? "" : dp;

  TERWAY_ASSIGN_OR_RETURN_CTX(d->cloud_, cloud::CloudClients::Create(CloudOptionsFromConfig(d->config_)),
                              "setting up the cloud clients");
  TERWAY_ASSIGN_OR_RETURN(d->node_, ReadNodeIdentity(d->cloud_->metadata(), d->cloud_->region_id()));
  log::Info("node instance={} type={} region={} zone={} vpc={} vswitch={}", d->node_.instance_id,
            d->node_.instance_type, d->node_.region_id, d->node_.zone_id, d->node_.vpc_id,
            d->node_.vswitch_id);

  TERWAY_ASSIGN_OR_RETURN_CTX(d->store_, store::StateStore::Open(d->opts_.state_path),
                              "opening the state database");
  if (kube_client) {
    KubeNodeOptions ko;
    ko.node_name = opts.node_name;
    TERWAY_ASSIGN_OR_RETURN_CTX(d->kube_, KubeNode::Create(kube_client, ko, &d->metrics_),
                                "watching the pods of node " + opts.node_name);
  }
  d->provider_ = std::make_unique<AliyunEniProvider>(d->cloud_->ecs(), d->node_.vpc_id,
                                                     &RealClock::Instance(),
                                                     &cloud::RealSleeper::Instance());
  ipam::PoolOptions po;
  po.instance_id = d->node_.instance_id;
  po.instance_type = d->node_.instance_type;
  po.vswitch_ids = d->config_.VSwitchesForZone(d->node_.zone_id);
  if (po.vswitch_ids.empty()) po.vswitch_ids = {d->node_.vswitch_id};  // as Terway does
  po.config = d->config_;
  if (d->kube_) {
    // Pod GC: an address whose pod the API no longer has (deleted while its
    // DEL never came) goes back to the pool.
    Daemon* self = d.get();
    po.live_pods = [self]() -> Result<std::vector<ipam::LivePod>> {
      TERWAY_ASSIGN_OR_RETURN(auto allocs, self->store_->ListAllocations());
      std::vector<std::pair<std::string, std::string>> held;
      for (const auto& a : allocs) held.emplace_back(a.pod_namespace, a.pod_name);
      return self->kube_->LivePods(held);
    };
  }
  if (exclusive) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto alloc,
                                ipam::ExclusiveEniAllocator::Create(po, d->provider_.get(), d->store_.get(),
                                                                    &RealClock::Instance()),
                                "starting the exclusive-ENI allocator");
    // Finish releases a crash interrupted before serving (a cloud failure
    // here is retried by the periodic reconcile).
    Status rec = alloc->Reconcile(std::nullopt);
    if (!rec.ok()) log::Warn("exclusive ENI reconcile at start: {}", rec.error().ToString());
    d->addresses_ = std::move(alloc);
  } else {
    TERWAY_ASSIGN_OR_RETURN_CTX(d->addresses_,
                                ipam::IpPool::Create(po, d->provider_.get(), d->store_.get(),
                                                     &RealClock::Instance()),
                                "starting the IP pool");
  }
  cloud::InstanceMetadata* md = d->cloud_->metadata();
  // The ENI's gateway and vSwitch, as the metadata service reports them for
  // its MAC (the same source the ENI's own configuration comes from on ECS).
  // Cached per ENI and MAC: an ENI never changes vSwitch, and asking the
  // metadata service on every ADD put two HTTP round trips into pod start.
  // Bounded because exclusive mode churns one ENI per pod.
  struct EniNetworkCache {
    std::mutex mu;
    std::map<std::string, datapath::EniNetwork> by_eni;
  };
  auto cache = std::make_shared<EniNetworkCache>();
  datapath::EniNetworkLookup eni_network = [md, cache](const std::string& eni_id,
                                                       const MacAddr& mac) -> Result<datapath::EniNetwork> {
    std::string m = mac.ToString();
    const std::string key = eni_id + "/" + m;
    {
      std::lock_guard<std::mutex> l(cache->mu);
      if (auto it = cache->by_eni.find(key); it != cache->by_eni.end()) return it->second;
    }
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string gw, md->EniGateway(m), "gateway of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string cidr, md->EniVSwitchCidrBlock(m), "vSwitch CIDR of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Addr g, Ipv4Addr::Parse(gw), "gateway of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Cidr c, Ipv4Cidr::Parse(cidr, true), "vSwitch of " + eni_id);
    std::lock_guard<std::mutex> l(cache->mu);
    if (cache->by_eni.size() >= 256) cache->by_eni.clear();
    cache->by_eni[key] = datapath::EniNetwork{g, c};
    return datapath::EniNetwork{g, c};
  };
  if (dp == "shared") {
    datapath::SharedEniOptions so;
    so.eni_network = eni_network;
    d->datapath_ = std::make_unique<datapath::SharedEniDatapath>(so);
  } else if (dp == "exclusive") {
    datapath::ExclusiveEniOptions eo;
    eo.eni_network = eni_network;
    eo.service_cidr = d->config_.service_cidr;
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string node_ip, md->PrivateIpv4(), "reading the node's primary IP");
    TERWAY_ASSIGN_OR_RETURN_CTX(eo.node_ip, Ipv4Addr::Parse(node_ip), "the node's primary IP (private-ipv4)");
    d->datapath_ = std::make_unique<datapath::ExclusiveEniDatapath>(eo);
  }
  // NetworkPolicy: only where pods are wired by the shared-ENI datapath
  // with an API to learn policies from. Wherever we do not enforce, a table
  // an earlier run left is removed: this daemon is its only owner.
  std::string policy_off;
  if (dp != "shared") {
    policy_off = dp == "exclusive" ? "network policy does not apply on this node: exclusive-ENI pods are outside "
                                     "policy (as in Terway)"
                                   : "network policy needs a pod datapath (terwayd runs with --datapath none)";
  } else if (!kube_client) {
    policy_off = "network policy needs the Kubernetes API (terwayd runs API-less)";
  } else if (d->disable_network_policy_) {
    policy_off = fmt::format("network policy is disabled: ConfigMap {}/{} has {}: \"true\"", k8s::kEniConfigNamespace,
                             k8s::kEniConfigName, k8s::kDisableNetworkPolicyKey);
  }
  if (!policy_off.empty()) {
    log::Info("{}", policy_off);
    if (dp != "none") {
      Status rm = PolicyController::RemoveTable("");
      if (!rm.ok()) log::Warn("removing a leftover policy table: {}", rm.error().ToString());
    }
  } else {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, d->store_->ListAllocations(), "reading allocations for policy");
    std::map<std::string, Ipv4Addr> local_ips;
    for (const auto& a : allocs) {
      if (auto ip = Ipv4Addr::Parse(a.ip); ip.ok()) local_ips[a.pod_namespace + "/" + a.pod_name] = *ip;
    }
    PolicyControllerOptions pco;
    pco.node_name = opts.node_name;
    if (auto node_ip = md->PrivateIpv4(); node_ip.ok()) {
      if (auto ip = Ipv4Addr::Parse(*node_ip); ip.ok()) pco.node_ips.push_back(*ip);
    }
    TERWAY_ASSIGN_OR_RETURN_CTX(d->policy_,
                                PolicyController::Create(kube_client, pco, std::move(local_ips), &d->metrics_),
                                "starting network policy enforcement");
  }
  CniServiceOptions cso;
  cso.datapath_mode = d->datapath_mode_;
  if (!policy_off.empty()) cso.policy_off_reason = policy_off;
  if (dp == "shared") {
    Status ipvlan = netlink::ProbeLinkKind("ipvlan");
    cso.ipvlan_fallback_reason = ipvlan.ok() ? "the ipvlan datapath is not built in this terwayd"
                                             : ipvlan.error().message;
  }
  cso.refuse_bad_bandwidth_annotation =
      d->config_.bandwidth_annotation_error == ipam::BandwidthAnnotationError::kRefuse;
  d->service_ = std::make_unique<CniService>(cso, d->addresses_.get(), d->store_.get(),
                                             d->datapath_.get(), &d->metrics_);
  RpcServerOptions ro;
  ro.socket_path = d->opts_.socket_path;
  d->service_->SetPodDirectory(d->kube_.get());
  d->service_->SetPodPolicy(d->policy_.get());
  d->rpc_ = std::make_unique<RpcServer>(ro, d->service_.get());

  d->metrics_.DeclareGauge("terway_pool_ips", "Pod IPs of the node's ENIs by state");
  d->metrics_.DeclareGauge("terway_pool_enis", "ENIs the pool manages");
  d->metrics_.DeclareGauge("terway_pool_max_pods", "Pods this node can hold");
  d->metrics_.DeclareGauge("terway_pool_waiting_requests", "Allocations waiting for the pool to grow");
  d->metrics_.DeclareGauge("terway_pool_config",
                           "The pool's sizes from eni_conf as resolved for this node (ConfigMap + override)");
  d->metrics_.DeclareCounter("terway_cloud_api_calls_total", "OpenAPI calls by action (logical calls)");
  d->metrics_.DeclareCounter("terway_cloud_api_attempts_total", "OpenAPI HTTP requests by action");
  d->metrics_.DeclareCounter("terway_cloud_api_errors_total", "OpenAPI calls that failed, by action");
  d->metrics_.DeclareCounter("terway_cloud_api_retries_total", "OpenAPI retries by action");
  d->metrics_.DeclareCounter("terway_restart_repairs_total",
                             "Pods verified at start-up, by outcome (ok, repaired, released, failed, unknown)");
  return d;
}

Daemon::~Daemon() { Stop(); }

void Daemon::UpdatePoolGauges() {
  auto s = addresses_->Stats();
  metrics_.Set("terway_pool_ips", {{"state", "idle"}}, s.idle);
  metrics_.Set("terway_pool_ips", {{"state", "in_use"}}, s.in_use);
  metrics_.Set("terway_pool_ips", {{"state", "reserved"}}, s.reserved);
  metrics_.Set("terway_pool_ips", {{"state", "releasing"}}, s.releasing);
  metrics_.Set("terway_pool_enis", {}, s.enis);
  metrics_.Set("terway_pool_max_pods", {}, s.max_pods);
  metrics_.Set("terway_pool_waiting_requests", {}, s.waiting);
  metrics_.Set("terway_pool_config", {{"setting", "min_pool_size"}}, config_.min_pool_size);
  metrics_.Set("terway_pool_config", {{"setting", "max_pool_size"}}, config_.max_pool_size);
  // The cloud client counts per action; exported as counters (monotonic).
  for (const auto& [action, st] : cloud_->openapi()->Stats()) {
    metrics_.Set("terway_cloud_api_calls_total", {{"action", action}}, double(st.calls));
    metrics_.Set("terway_cloud_api_attempts_total", {{"action", action}}, double(st.attempts));
    metrics_.Set("terway_cloud_api_errors_total", {{"action", action}}, double(st.errors));
    metrics_.Set("terway_cloud_api_retries_total", {{"action", action}}, double(st.retries));
  }
}

void Daemon::RepairPods() {
  auto allocs = store_->ListAllocations();
  if (!allocs.ok()) {
    log::Warn("restart repair skipped, state unreadable: {}", allocs.error().ToString());
    return;
  }
  auto count = [this](const char* outcome) { metrics_.Inc("terway_restart_repairs_total", {{"outcome", outcome}}); };
  std::set<std::string> live;
  for (const auto& rec : *allocs) {
    const std::string who = fmt::format("pod {}/{} (container {}, IP {})", rec.pod_namespace, rec.pod_name,
                                        rec.container_id, rec.ip);
    if (rec.netns.empty() || (!rec.datapath_mode.empty() && rec.datapath_mode != datapath_mode_)) {
      // Recorded by an older terwayd (schema 1) or wired by another mode:
      // nothing to verify against; its DEL (or CNI GC) frees it.
      log::Warn("restart repair: {} has no netns recorded for the {} datapath (was '{}'); left to its DEL",
                who, datapath_mode_, rec.datapath_mode);
      count("unknown");
      live.insert(rec.container_id);
      continue;
    }
    auto held = addresses_->Get(rec.container_id);
    if (!held.ok() || !held->has_value()) {
      log::Warn("restart repair: {}: address not found: {}", who, held.ok() ? "none" : held.error().ToString());
      count("failed");
      live.insert(rec.container_id);
      continue;
    }
    PodNetwork pod;
    pod.container_id = rec.container_id;
    pod.netns = rec.netns;
    pod.ifname = rec.ifname.empty() ? "eth0" : rec.ifname;
    pod.pod_namespace = rec.pod_namespace;
    pod.pod_name = rec.pod_name;
    pod.ip = **held;
    pod.host_stack_cidrs = ParseRecordedHostStackCidrs(rec.host_stack_cidrs);
    if (auto bw = qos::DecodeBandwidth(rec.bandwidth); bw.ok()) {
      pod.bandwidth = *bw;
    } else {
      log::Warn("restart repair: {}: {}; repaired without a limit", who, bw.error().ToString());
    }
    if (!netlink::NetnsExists(rec.netns)) {
      // The pod vanished while we were down (its sandbox was destroyed
      // without a DEL reaching us): undo its wiring, free its address.
      Status rm = datapath_->Remove(pod);
      Status rel = Ok();
      if (rm.ok()) rel = addresses_->Release(rec.container_id);
      if (!rm.ok() || !rel.ok()) {
        log::Warn("restart repair: releasing {} whose netns {} is gone failed (retried by its DEL/GC): {}", who,
                  rec.netns, (!rm.ok() ? rm : rel).error().ToString());
        count("failed");
        live.insert(rec.container_id);
        continue;
      }
      if (policy_) {
        if (auto ip = Ipv4Addr::Parse(rec.ip); ip.ok()) policy_->PodStopped(rec.pod_namespace, rec.pod_name, *ip);
      }
      log::Info("restart repair: {} netns {} is gone: released its address and wiring", who, rec.netns);
      count("released");
      continue;
    }
    live.insert(rec.container_id);
    auto check = datapath_->Check(pod);
    if (check.ok()) {
      count("ok");
      continue;
    }
    auto fixed = datapath_->Ensure(pod);
    if (!fixed.ok()) {
      log::Warn("restart repair: {} is broken ({}) and could not be repaired: {}", who, check.error().ToString(),
                fixed.error().ToString());
      count("failed");
      continue;
    }
    log::Info("restart repair: repaired {}: {}", who, check.error().ToString());
    count("repaired");
  }
  // Links and rules of containers the store no longer knows.
  auto removed = datapath_->CollectGarbage(live);
  if (!removed.ok()) {
    log::Warn("datapath garbage collection: {}", removed.error().ToString());
  } else {
    for (const auto& r : *removed) log::Info("datapath gc removed {}", r);
  }
}

Status Daemon::Start() {
  if (datapath_) RepairPods();
  if (kube_ && datapath_) {
    // After the repair (which Ensures pods itself, with no listener racing
    // it): pods' bandwidth follows their annotations from now on, and
    // whatever changed while terwayd was down is applied first.
    CniService* svc = service_.get();
    kube_->SetBandwidthListener(
        [svc](const std::string& ns, const std::string& name, const std::map<std::string, std::string>& a) {
          svc->UpdatePodBandwidth(ns, name, a);
        });
    for (const auto& p : kube_->Pods()) {
      service_->UpdatePodBandwidth(p.metadata.namespace_, p.metadata.name, p.metadata.annotations);
    }
  }
  addresses_->Start();
  TERWAY_TRY_CTX(rpc_->Start(), "starting the CNI socket");
  if (!opts_.metrics_listen.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto hp, SplitHostPort(opts_.metrics_listen), "--metrics-listen");
    metrics_server_ = std::make_unique<httplib::Server>();
    metrics_server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      UpdatePoolGauges();
      res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
    });
    metrics_server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    int port = hp.second;
    if (port == 0) {
      port = metrics_server_->bind_to_any_port(hp.first.c_str());
    } else if (!metrics_server_->bind_to_port(hp.first.c_str(), port)) {
      port = -1;
    }
    if (port < 0) {
      return Errorf(ErrorCode::kUnavailable, "cannot listen for metrics on {}: address in use?",
                    opts_.metrics_listen);
    }
    if (!opts_.metrics_port_file.empty()) {
      std::ofstream(opts_.metrics_port_file) << port << "\n";
    }
    metrics_thread_ = std::thread([this] { metrics_server_->listen_after_bind(); });
    log::Info("metrics listening on {}:{}", hp.first, port);
  }
  service_->SetReady(true);
  if (kube_) {
    kube_->ReportCapacity(addresses_->MaxPodCount(), datapath_mode_ == "exclusive" ||
                                                         config_.eni_mode == ipam::EniMode::kExclusive);
    if (std::string why = kube_->NodeRefusal(); !why.empty()) log::Warn("{}", why);
  }
  return Ok();
}

void Daemon::Stop() {
  // First: KubeNode's bandwidth thread may be running an update through the
  // CNI service, which must not outlive it.
  if (kube_) kube_->Shutdown();
  if (service_) service_->SetReady(false, "terwayd is stopping");
  if (rpc_) rpc_->Stop();
  if (metrics_server_) metrics_server_->stop();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  if (addresses_) addresses_->Stop();
}

}  // namespace terway::daemon
