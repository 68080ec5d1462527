// terwayd's life: Create's steps in order (each in the file of what it
// builds: configuration in daemon_config.cc, the datapath in
// daemon_datapath.cc, policy and the metadata guard in daemon_guards.cc,
// state rebuild in restart_repair.cc), the cloud, state and API connections,
// the address source and the CNI service they feed; then Start and Stop.
#include "daemon/daemon.h"

#include <map>
#include <mutex>

#include <httplib.h>  // Stop ends the metrics server, ~Daemon destroys it

#include "common/log.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "netlink/netns.h"

namespace terway::daemon {

Result<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& opts) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->opts_ = opts;
  TERWAY_TRY(d->LoadConfiguration());
  TERWAY_TRY(d->ConnectCloud());
  TERWAY_TRY(d->OpenState());
  TERWAY_TRY(d->WatchKubernetes());
  TERWAY_TRY(d->CreateAddressSource());
  TERWAY_TRY(d->CreateDatapath());
  d->DeclareMetrics();
  TERWAY_TRY(d->RebuildState());
  TERWAY_TRY(d->CreatePolicy());
  TERWAY_TRY(d->CreateMetadataGuard());
  d->CreateCniService();
  d->CreatePodGc();
  return d;
}

namespace {
// Start-up may meet the metadata service (or the cloud behind it) briefly
// unreachable: a node that boots with its network still settling, a
// metadata hiccup. Those are worth waiting out; a configuration mistake is
// not, and is reported at once.
bool WorthWaitingFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kPermission:
    case ErrorCode::kUnsupported:
      return false;
    default:
      return true;
  }
}

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
}  // namespace

Status Daemon::WaitOut(const std::string& what, const std::function<Status()>& attempt_fn) {
  auto delay = opts_.start_retry_first;
  for (int attempt = 1;; ++attempt) {
    Status st = attempt_fn();
    if (st.ok()) return Ok();
    if (!WorthWaitingFor(st.error())) return st;
    log::Warn("start-up: {} (attempt {}): {}; retrying in {} ms", what, attempt, st.error().ToString(),
              delay.count());
    auto until = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < until) {
      if (opts_.stop_requested && opts_.stop_requested()) {
        return std::move(st).error().Wrap("stopped while waiting: " + what);
      }
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(100),
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()) +
              std::chrono::milliseconds(1)));
    }
    delay = std::min(delay * 2, opts_.start_retry_cap);
  }
}

// Cloud clients and the node's identity from the metadata service, retried
// with backoff while the service does not answer (terwayd used to exit).
Status Daemon::ConnectCloud() {
  TERWAY_TRY(WaitOut("reaching the metadata service (it may be settling)", [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN_CTX(cloud_, cloud::CloudClients::Create(CloudOptionsFromConfig(config_)),
                                "setting up the cloud clients");
    TERWAY_ASSIGN_OR_RETURN(node_, ReadNodeIdentity(cloud_->metadata(), cloud_->region_id()));
    return Ok();
  }));
  log::Info("node instance={} type={} region={} zone={} vpc={} vswitch={}", node_.instance_id, node_.instance_type,
            node_.region_id, node_.zone_id, node_.vpc_id, node_.vswitch_id);
  return Ok();
}

Status Daemon::OpenState() {
  TERWAY_ASSIGN_OR_RETURN_CTX(store_, store::StateStore::Open(opts_.state_path), "opening the state database");
  // Pods set up in the other ENI mode cannot be carried over (a label added
  // or removed on a running node).
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "reading recorded pods");
  std::vector<std::string> modes;
  for (const auto& a : allocs) modes.push_back(a.datapath_mode);
  TERWAY_TRY_CTX(config::CheckEniModeSwitch(mode_choice_, modes), "node " + opts_.node_name);
  return Ok();
}

Status Daemon::WatchKubernetes() {
  if (!kube_client_) return Ok();
  KubeNodeOptions ko;
  ko.node_name = opts_.node_name;
  ko.patch_pod_ips = config_.enable_patch_pod_ips;
  TERWAY_ASSIGN_OR_RETURN_CTX(kube_, KubeNode::Create(kube_client_, ko, &metrics_),
                              "watching the pods of node " + opts_.node_name);
  return Ok();
}

Status Daemon::CreateAddressSource() {
  cloud::WaitOptions attach_wait, detach_wait;
  attach_wait.backoff = config_.backoff.eni_attach_wait;
  detach_wait.backoff = config_.backoff.eni_detach_wait;
  provider_ = std::make_unique<AliyunEniProvider>(cloud_->ecs(), node_.vpc_id, &RealClock::Instance(),
                                                  &cloud::RealSleeper::Instance(), attach_wait, detach_wait);
  ipam::PoolOptions po;
  po.instance_id = node_.instance_id;
  po.instance_type = node_.instance_type;
  po.config = config::PoolConfigOf(config_);
  std::vector<std::string> candidates = config_.VSwitchesForZone(node_.zone_id);
  if (candidates.empty()) candidates = {node_.vswitch_id};  // as Terway does
  TERWAY_ASSIGN_OR_RETURN_CTX(po.vswitch_ids, VSwitchesForNewEnis(candidates), "starting the IP pool");
  // An address the cloud took away from under a pod: its sandbox's wiring
  // goes through the one teardown (the worker calls this before it refills,
  // and only after Start, when the service exists).
  Daemon* self = this;
  po.on_address_lost = [self](const std::vector<store::AllocationRecord>& lost) {
    if (self->service_) self->service_->AddressesLost(lost);
  };
  if (config_.eni_mode == ipam::EniMode::kExclusive) {
    TERWAY_ASSIGN_OR_RETURN_CTX(addresses_,
                                ipam::ExclusiveEniAllocator::Create(po, provider_.get(), store_.get(),
                                                                    &RealClock::Instance()),
                                "starting the exclusive-ENI allocator");
  } else {
    TERWAY_ASSIGN_OR_RETURN_CTX(addresses_,
                                ipam::IpPool::Create(po, provider_.get(), store_.get(), &RealClock::Instance()),
                                "starting the IP pool");
  }
  return Ok();
}

namespace {
// Dual stack: an ENI's vSwitch IPv6 gateway, read once per ENI and MAC (as
// its IPv4 gateway, see CreateDatapath), bounded for exclusive mode.
std::function<Result<std::string>(const std::string&, const std::string&)> CachedIpv6GatewayLookup(
    cloud::InstanceMetadata* md) {
  struct Ipv6GatewayCache {
    std::mutex mu;
    std::map<std::string, std::string> by_eni;
  };
  auto cache = std::make_shared<Ipv6GatewayCache>();
  return [md, cache](const std::string& eni_id, const std::string& mac) -> Result<std::string> {
    const std::string key = eni_id + "/" + mac;
    {
      std::lock_guard l(cache->mu);
      if (auto it = cache->by_eni.find(key); it != cache->by_eni.end()) return it->second;
    }
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string gw, md->EniIpv6Gateway(mac), "the IPv6 gateway of " + eni_id);
    std::lock_guard l(cache->mu);
    if (cache->by_eni.size() >= 256) cache->by_eni.clear();
    cache->by_eni[key] = gw;
    return gw;
  };
}
}  // namespace

// The CNI service over the address source, datapath, policy and metadata
// guard, and the socket that serves it with terway-cli's views.
void Daemon::CreateCniService() {
  CniServiceOptions cso;
  cso.datapath_mode = datapath_mode_;
  if (!policy_off_.empty()) cso.policy_off_reason = policy_off_;
  if (datapath_choice_ == "shared") {
    cso.ebpf_datapath = ebpf_off_.empty();
    cso.ipvlan_fallback_reason = ebpf_off_;
  }
  cso.refuse_bad_bandwidth_annotation = config_.bandwidth_annotation_error == config::BandwidthAnnotationError::kRefuse;
  if (cloud_ != nullptr) cso.ipv6_gateway = CachedIpv6GatewayLookup(cloud_->metadata());
  service_ = std::make_unique<CniService>(cso, addresses_.get(), store_.get(), datapath_.get(), &metrics_);
  service_->SetPodDirectory(kube_.get());
  service_->SetPodPolicy(policy_.get());
  service_->SetMetadataGuard(metadata_guard_.get());
  RpcServerOptions ro;
  ro.socket_path = opts_.socket_path;
  ro.metrics = &metrics_;
  views_ = std::make_unique<OperatorViews>(ViewSources(), service_.get());
  rpc_ = std::make_unique<RpcServer>(ro, views_.get());
}

// Pod GC through the CNI service's teardown; each round also maintains the
// node-wide tables (MaintainNodeTables).
void Daemon::CreatePodGc() {
  PodGcOptions go;
  go.period = config_.ip_pool_sync_period;
  if (kube_) {
    KubeNode* kube = kube_.get();
    go.live_pods = [kube](const std::vector<store::AllocationRecord>& allocs) {
      std::vector<std::pair<std::string, std::string>> held;
      for (const auto& a : allocs) held.emplace_back(a.pod_namespace, a.pod_name);
      return kube->LivePods(held);
    };
  }
  if (datapath_) go.netns_alive = [](const std::string& netns) { return netlink::NetnsExists(netns); };
  CniService* svc = service_.get();
  go.teardown = [svc](const store::AllocationRecord& rec) { return svc->Teardown(rec, TeardownCause::kPodGc); };
  go.maintain = [this] { MaintainNodeTables(); };
  pod_gc_ = std::make_unique<PodGc>(go, store_.get());
}

Daemon::~Daemon() { Stop(); }

Status Daemon::Start() {
  if (config_.eni_mode == ipam::EniMode::kExclusive) {
    // Finish releases a crash interrupted, now that every live pod's ENI is
    // on record (a cloud failure here is retried by the worker).
    Status rec = addresses_->Reconcile();
    if (!rec.ok()) log::Warn("exclusive ENI reconcile at start: {}", rec.error().ToString());
  }
  if (datapath_) RepairPods();
  FollowBandwidthAnnotations();
  if (metadata_guard_) {
    // Fail closed: with credentials denied to pods, a guard that cannot
    // start means no pod may start either.
    TERWAY_TRY_CTX(metadata_guard_->Start(),
                   "starting the metadata guard (eni_conf metadata_credentials_for_pods is deny)");
  }
  addresses_->Start();
  TERWAY_TRY_CTX(rpc_->Start(), "starting the CNI socket");
  TERWAY_TRY(StartMetricsEndpoint());
  pod_gc_->Start();
  service_->SetReady(true);
  if (kube_) {
    // aliyun/eni is upstream's device-plugin resource: off with eni_conf
    // disable_device_plugin.
    const bool exclusive = datapath_mode_ == "exclusive" || config_.eni_mode == ipam::EniMode::kExclusive;
    kube_->ReportCapacity(addresses_->MaxPodCount(), exclusive && !config_.disable_device_plugin);
    if (std::string why = kube_->NodeRefusal(); !why.empty()) log::Warn("{}", why);
  }
  return Ok();
}

// After the repair (which Ensures pods itself, with no listener racing it):
// pods' bandwidth follows their annotations from now on, and whatever
// changed while terwayd was down is applied first.
void Daemon::FollowBandwidthAnnotations() {
  if (!kube_ || !datapath_) return;
  CniService* svc = service_.get();
  kube_->SetBandwidthListener(
      [svc](const std::string& ns, const std::string& name, const std::map<std::string, std::string>& a) {
        svc->UpdatePodBandwidth(ns, name, a);
      });
  for (const auto& p : kube_->Pods()) {
    service_->UpdatePodBandwidth(p.metadata.namespace_, p.metadata.name, p.metadata.annotations);
  }
}

void Daemon::Stop() {
  // First: KubeNode's bandwidth thread may be running an update through the
  // CNI service, which must not outlive it.
  if (kube_) kube_->Shutdown();
  if (service_) service_->SetReady(false, "terwayd is stopping");
  if (pod_gc_) pod_gc_->Stop();
  if (rpc_) rpc_->Stop();
  if (metadata_guard_) metadata_guard_->Stop();
  if (metrics_server_) metrics_server_->stop();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  if (addresses_) addresses_->Stop();
}

}  // namespace terway::daemon
