#include "daemon/daemon.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <httplib.h>

#include "common/log.h"
#include "common/strings.h"
#include "config/node_mode.h"
#include "daemon/upstream_metrics.h"
#include "datapath/anti_spoof.h"
#include "datapath/ebpf_eni.h"
#include "ebpf/attach.h"
#include "ebpf/detect.h"
#include "datapath/exclusive_eni.h"
#include "datapath/shared_eni.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "k8s/config.h"
#include "k8s/node_config.h"
#include "netlink/netns.h"
#include "qos/annotations.h"

namespace terway::daemon {

namespace {
Result<std::string> ReadEniConfText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Errorf(ErrorCode::kNotFound,
                  "cannot read the eni_conf file {}: {}; mount the eni-config ConfigMap's "
                  "eni_conf key there or pass --config", path, std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

Result<config::EniConfig> LoadEniConfig(const std::string& path) {
  TERWAY_ASSIGN_OR_RETURN(auto text, ReadEniConfText(path));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(text), "in " + path);
  for (const auto& w : parsed.warnings) log::Warn("config {}: {}", path, w);
  return parsed.config;
}

cloud::CloudOptions CloudOptionsFromConfig(const config::EniConfig& c) {
  cloud::CloudOptions o;
  o.region_id = c.region_id;
  o.ecs_endpoint = c.ecs_endpoint;
  o.vpc_endpoint = c.vpc_endpoint;
  o.metadata_endpoint = c.metadata_endpoint;
  o.rate_limit = c.rate_limit;
  o.access_key = c.access_key;
  o.access_secret = c.access_secret;
  o.credential_path = c.credential_path;
  o.action_backoff = c.backoff.ActionBackoffs();  // backoff_override
  switch (c.credential_source) {
    case config::CredentialSource::kAuto: o.credential_kind = cloud::CredentialKind::kAuto; break;
    case config::CredentialSource::kStatic: o.credential_kind = cloud::CredentialKind::kStatic; break;
    case config::CredentialSource::kFile: o.credential_kind = cloud::CredentialKind::kFile; break;
    case config::CredentialSource::kRamRole: o.credential_kind = cloud::CredentialKind::kRamRole; break;
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
  std::optional<k8s::RestConfig> cfg;
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (!opts.kubeconfig.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(cfg, k8s::LoadKubeconfig(opts.kubeconfig), "--kubeconfig " + opts.kubeconfig);
  } else if (host != nullptr && *host != '\0') {
    TERWAY_ASSIGN_OR_RETURN_CTX(cfg, k8s::LoadInClusterConfig(), "the in-cluster Kubernetes configuration");
  }
  if (!opts.api_server.empty()) {
    // As client-go's -master: the server of whatever configuration there is,
    // or the server alone (no credentials) when there is none.
    if (!cfg) cfg = k8s::RestConfig{};
    cfg->server = opts.api_server;
  }
  return cfg;
}

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
  return d;
}

// eni_conf (the cluster's ConfigMap plus this node's override with an API,
// else the file), the socket and state paths, and the datapath it implies.
Status Daemon::LoadConfiguration() {
  TERWAY_ASSIGN_OR_RETURN(kube_config_, ResolveKubeConfig(opts_));
  if (kube_config_) {
    if (opts_.node_name.empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Kubernetes API is configured but not this node's name: pass --node-name or set "
                       "$NODE_NAME (the DaemonSet sets it from spec.nodeName)");
    }
    kube_client_ = k8s::RestClient::FromConfig(*kube_config_);
    // With an API, eni_conf is the cluster's (plus this node's override);
    // --config is not read, so a stale file cannot shadow the ConfigMap.
    TERWAY_ASSIGN_OR_RETURN_CTX(auto conf, k8s::LoadNodeEniConf(*kube_client_, opts_.node_name),
                                fmt::format("reading eni_conf of node {} from ConfigMap {}/{} (server {})",
                                            opts_.node_name, k8s::kEniConfigNamespace, k8s::kEniConfigName,
                                            kube_config_->server));
    config_source_ = fmt::format("ConfigMap {}/{}{}", k8s::kEniConfigNamespace, k8s::kEniConfigName,
                                 conf.override_source.empty() ? "" : " + " + conf.override_source);
    TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(conf.eni_conf), "eni_conf of " + config_source_);
    for (const auto& w : parsed.warnings) log::Warn("config {}: {}", config_source_, w);
    config_ = parsed.config;
    eni_conf_text_ = conf.eni_conf;
    disable_network_policy_ = conf.disable_network_policy;
    node_labels_ = conf.node_labels;
    if (config_.kube_client_qps > 0 || config_.kube_client_burst > 0) {
      // The operator's limit from eni_conf, for every request from here on
      // (the first reads above ran with the defaults).
      k8s::RestConfig limited = *kube_config_;
      if (config_.kube_client_qps > 0) limited.qps = config_.kube_client_qps;
      if (config_.kube_client_burst > 0) limited.burst = config_.kube_client_burst;
      kube_client_ = k8s::RestClient::FromConfig(limited);
      log::Info("kubernetes client limited to {} QPS, burst {} (eni_conf kube_client_qps/kube_client_burst)",
                limited.qps, limited.burst);
    }
    log::Info("kubernetes API {} node {}: eni_conf from {}", kube_config_->server, opts_.node_name, config_source_);
  } else {
    log::Info("no Kubernetes API configured (no --kubeconfig, no in-cluster service account): running API-less, "
              "eni_conf from {}; pod labels/annotations, pod GC by the API and node reports are off",
              opts_.config_path);
    // One read: what nodeconfig shows is exactly what was parsed.
    TERWAY_ASSIGN_OR_RETURN(eni_conf_text_, ReadEniConfText(opts_.config_path));
    TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(eni_conf_text_), "in " + opts_.config_path);
    for (const auto& w : parsed.warnings) log::Warn("config {}: {}", opts_.config_path, w);
    config_ = parsed.config;
    config_source_ = opts_.config_path;
  }
  if (opts_.socket_path.empty()) opts_.socket_path = config_.daemon_socket;
  if (opts_.state_path.empty()) opts_.state_path = config_.state_path;
  // The node label and -daemon-mode may choose exclusive ENI over eni_conf.
  TERWAY_ASSIGN_OR_RETURN(mode_choice_, config::ResolveEniMode(config_, node_labels_, opts_.daemon_mode));
  for (const auto& w : mode_choice_.warnings) log::Warn("node {}: {}", opts_.node_name, w);
  config_.eni_mode = mode_choice_.mode;
  log::Info("eni mode {} ({})", ipam::EniModeName(config_.eni_mode), mode_choice_.source);
  const bool exclusive = config_.eni_mode == ipam::EniMode::kExclusive;
  const std::string mode = exclusive ? "exclusive" : "shared";
  datapath_choice_ = opts_.datapath == "auto" ? mode : opts_.datapath;
  const std::string& dp = datapath_choice_;
  if (dp != "none" && dp != "shared" && dp != "exclusive") {
    return Errorf(ErrorCode::kInvalidArgument, "--datapath must be auto, shared, exclusive or none, not '{}'",
                  opts_.datapath);
  }
  if (dp == "none" && exclusive) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "eni_mode exclusive moves each pod's ENI into the pod, so it has no IPAM-only form; "
                     "drop --datapath none (or use eni_mode shared)");
  }
  if (dp != "none" && dp != mode) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "--datapath {} does not match the node's ENI mode \"{}\" ({}, {}): pods of a node are wired the "
                  "way its addresses are handed out; use --datapath auto",
                  dp, mode, mode_choice_.source, config_source_);
  }
  datapath_mode_ = dp == "none" ? "" : dp;
  return Ok();
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

// Before policy starts: an earlier run's eBPF filters that this run's
// programs and maps are not (eBPF now off or unsupported, or its pins gone)
// would keep fast-pathing pods with maps nobody writes (a frozen policy
// map). Removed, their pods take the host stack; repair re-attaches ours. A
// failure is told and the node serves on (the filters then stay as they
// were).
void Daemon::DetachEarlierEbpfFilters(const ebpf::DatapathPrograms* current) {
  // An earlier run's filter left on a link reads maps this run never
  // writes (its pods' policy state frozen): until it is gone the node may
  // fast-path a pod a policy now isolates. So what could not be removed is
  // counted (terway_ebpf_datapath_foreign_filters_left), told on the Node,
  // and swept again every pod GC round (MaintainNodeTables) until none is.
  std::string failure;
  std::vector<std::string> left;
  auto h = netlink::Handle::Open();
  if (!h.ok()) {
    failure = h.error().ToString();
  } else if (auto sweep = ebpf::DetachForeign(*h, current); !sweep.ok()) {
    failure = sweep.error().ToString();
  } else {
    for (const auto& r : sweep->removed) {
      log::Warn("eBPF datapath: removed an earlier run's filter {} (not this run's programs and maps); its pod "
                "takes the host stack until repair re-attaches ours",
                r);
    }
    left = std::move(sweep->left);
    if (!left.empty()) failure = Join(left, "; ");
  }
  // -1: the links could not even be listed (unknown how many are left).
  const int count = failure.empty() ? 0 : left.empty() ? -1 : int(left.size());
  metrics_.Set("terway_ebpf_datapath_foreign_filters_left", {}, count);
  const bool was_clean = foreign_filters_left_.exchange(count) == 0;
  if (count == 0) return;
  const std::string message = fmt::format(
      "an earlier terwayd's eBPF filters could not all be removed ({}): their links may bypass NetworkPolicy "
      "applied since; terwayd retries every pod GC round (metric terway_ebpf_datapath_foreign_filters_left); to "
      "remove one by hand: tc filter del dev <link> ingress pref {}",
      failure, ebpf::kDatapathFilterPriority);
  log::Error("eBPF datapath: {}", message);
  if (was_clean && kube_) {
    kube_->ObjectWarning(k8s::ObjectReference{"Node", "", opts_.node_name, opts_.node_name, "v1"},
                         kForeignFiltersEventReason, message);
  }
}

Status Daemon::CreateDatapath() {
  cloud::InstanceMetadata* md = cloud_->metadata();
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
  if (datapath_choice_ == "shared") {
    datapath::SharedEniOptions so;
    so.eni_network = eni_network;
    ebpf_off_ = EbpfUnavailable();
    if (!ebpf_off_.empty()) {
      log::Info("networks asking eniip_virtual_type IPVlan or datapathv2 are served with veth: {}", ebpf_off_);
      DetachEarlierEbpfFilters(nullptr);
      datapath_ = std::make_unique<datapath::SharedEniDatapath>(so);
      return Ok();
    }
    datapath::EbpfEniOptions eo;
    eo.shared = so;
    ebpf::LoaderOptions lo;
    lo.bpffs = opts_.bpffs;
    eo.load = [lo] { return ebpf::DatapathPrograms::Load(lo); };
    // The policy map's writer is the policy controller (CreatePolicy wires
    // it), or with policy off this daemon. A fresh map is not synced (every
    // pod policed) until written; the first load asks for that. At start,
    // before CreatePolicy, neither is set: the pins of an earlier run stay
    // as they were, in step with its table, until the first apply.
    eo.loaded = [this] {
      if (ebpf_policy_off_) {
        ebpf_policy_off_->SyncIfDue();
      } else if (PolicyController* policy = policy_view_.load()) {
        policy->SyncDatapath();
      }
    };
    // A pod a chain isolates gets the fast path only while the policy map
    // polices it (the controller's view; none before it exists or with
    // policy off).
    eo.may_isolate = [this](Ipv4Addr ip) {
      PolicyController* policy = policy_view_.load();
      return policy != nullptr && policy->MayIsolate(ip);
    };
    eo.stack.service_cidr = config_.service_cidr;
    if (auto ip = md->PrivateIpv4(); ip.ok()) {
      if (auto a = Ipv4Addr::Parse(*ip); a.ok()) eo.stack.node_ips.push_back(*a);
    }
    // Only the node's primary IP: a secondary ENI's primary IP is handed to
    // a pod like its other addresses (the node configures none on it).
    if (auto allocs = store_->ListAllocations(); allocs.ok()) {
      for (const auto& a : *allocs) {
        for (const auto& c : datapath::ParseRecordedHostStackCidrs(a.host_stack_cidrs)) {
          eo.stack.host_stack_cidrs.push_back(c);
        }
      }
    }
    auto dp = std::make_unique<datapath::EbpfEniDatapath>(eo);
    // Loaded at the first pod asking for the mode; now when an earlier run
    // left pins (it served such pods: restart repair must see their entries).
    if (std::error_code ec; std::filesystem::exists(lo.PinDir(), ec)) {
      TERWAY_TRY_CTX(dp->LoadPrograms(), "loading the eBPF datapath (" + lo.PinDir() +
                                             " holds the maps of an earlier run; remove it to start afresh)");
    } else {
      log::Info("eBPF datapath available: loaded (maps pinned in {}) at the first pod whose network asks "
                "eniip_virtual_type IPVlan or datapathv2",
                lo.PinDir());
    }
    DetachEarlierEbpfFilters(dp->Loaded());
    ebpf_datapath_ = dp.get();
    datapath_ = std::move(dp);
  } else if (datapath_choice_ == "exclusive") {
    datapath::ExclusiveEniOptions eo;
    eo.eni_network = eni_network;
    eo.service_cidr = config_.service_cidr;
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string node_ip, md->PrivateIpv4(), "reading the node's primary IP");
    TERWAY_ASSIGN_OR_RETURN_CTX(eo.node_ip, Ipv4Addr::Parse(node_ip), "the node's primary IP (private-ipv4)");
    datapath_ = std::make_unique<datapath::ExclusiveEniDatapath>(eo);
  }
  return Ok();
}

std::string Daemon::EbpfUnavailable() {
  if (!opts_.ebpf_datapath) return "the eBPF datapath is off (terwayd --ebpf-datapath=off)";
  if (Status st = ebpf::DetectSupport(); !st.ok()) {
    return "this kernel cannot run the eBPF datapath: " + st.error().message;
  }
  return "";
}

// NetworkPolicy: only where pods are wired by the shared-ENI datapath with
// an API to learn policies from. Wherever we do not enforce, a table an
// earlier run left is removed: this daemon is its only owner.
Status Daemon::CreatePolicy() {
  const std::string& dp = datapath_choice_;
  if (dp != "shared") {
    policy_off_ = dp == "exclusive" ? "network policy does not apply on this node: exclusive-ENI pods are outside "
                                      "policy (as in Terway)"
                                    : "network policy needs a pod datapath (terwayd runs with --datapath none)";
  } else if (!kube_client_) {
    policy_off_ = "network policy needs the Kubernetes API (terwayd runs API-less)";
  } else if (disable_network_policy_) {
    policy_off_ = fmt::format("network policy is disabled: ConfigMap {}/{} has {}: \"true\"",
                              k8s::kEniConfigNamespace, k8s::kEniConfigName, k8s::kDisableNetworkPolicyKey);
  }
  if (!policy_off_.empty()) {
    log::Info("{}", policy_off_);
    if (dp != "none") {
      Status rm = PolicyController::RemoveTable("");
      if (!rm.ok()) log::Warn("removing a leftover policy table: {}", rm.error().ToString());
    }
    if (datapath::EbpfEniDatapath* ebpf = ebpf_datapath_) {
      // No chain isolates any pod: the eBPF datapath's policy map is empty
      // and authoritative (nothing to write until it is loaded; its `loaded`
      // hook does it then). A failure leaves every eBPF pod on the stack
      // (slower, no less correct: no chain exists): reported, and retried
      // every pod GC round (MaintainNodeTables) until it succeeds.
      WarnEvent warn;
      if (KubeNode* kube = kube_.get()) {
        warn = [kube](const k8s::ObjectReference& o, const std::string& reason, const std::string& message) {
          kube->ObjectWarning(o, reason, message);
        };
      }
      ebpf_policy_reporter_ = std::make_unique<DatapathSyncReporter>(&metrics_, opts_.node_name, std::move(warn));
      PolicyOffDatapathSync::Hooks hooks;
      hooks.write_empty = [ebpf] { return ebpf->PolicyIsolationApplied({}); };
      hooks.synced = [ebpf] { return ebpf->PolicyMapSynced(); };
      ebpf_policy_off_ = std::make_unique<PolicyOffDatapathSync>(std::move(hooks), ebpf_policy_reporter_.get());
      ebpf_policy_off_->SyncIfDue();
    }
    return Ok();
  }
  // Local pods' addresses come from the store; RebuildState adds what it
  // adopts through PodStarting before serving.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "reading allocations for policy");
  std::map<std::string, Ipv4Addr> local_ips;
  std::map<std::string, Ipv6Addr> local_ips6;  // dual-stack pods' IPv6, from their records too
  for (const auto& a : allocs) {
    if (auto ip = Ipv4Addr::Parse(a.ip); ip.ok()) local_ips[a.pod_namespace + "/" + a.pod_name] = *ip;
    if (auto ip6 = Ipv6Addr::Parse(a.ipv6); !a.ipv6.empty() && ip6.ok()) {
      local_ips6[a.pod_namespace + "/" + a.pod_name] = *ip6;
    }
  }
  PolicyControllerOptions pco;
  pco.node_name = opts_.node_name;
  if (auto node_ip = cloud_->metadata()->PrivateIpv4(); node_ip.ok()) {
    if (auto ip = Ipv4Addr::Parse(*node_ip); ip.ok()) pco.node_ips.push_back(*ip);
  }
  if (kube_) {
    // Policies enforced on the safe side are told on their objects, through
    // the node's one writer of API writes.
    KubeNode* kube = kube_.get();
    pco.warn_event = [kube](const k8s::ObjectReference& o, const std::string& reason, const std::string& message) {
      kube->ObjectWarning(o, reason, message);
    };
  }
  if (datapath::EbpfEniDatapath* dp = ebpf_datapath_) {
    // eBPF-mode pods take the host stack while a chain may isolate them.
    pco.isolating = [dp](const std::set<Ipv4Addr>& ips) { return dp->PolicyIsolating(ips); };
    pco.isolation_applied = [dp](const std::set<Ipv4Addr>& ips) { return dp->PolicyIsolationApplied(ips); };
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(policy_, PolicyController::Create(kube_client_, pco, std::move(local_ips), &metrics_,
                                                                   std::move(local_ips6)),
                              "starting network policy enforcement");
  policy_view_.store(policy_.get());
  return Ok();
}

Status Daemon::CreateMetadataGuard() {
  // Wherever terwayd wires pods: shared-ENI pods' traffic crosses the node,
  // and exclusive-ENI pods get a route to the service through their veth
  // (PodNetwork::metadata_via_node). An IPAM-only terwayd wires nothing and
  // may run in a namespace it does not own.
  if (datapath_choice_ == "none") return Ok();
  metadata::MetadataGuardOptions mo;
  mo.deny_credentials = config_.metadata_credentials_for_pods == config::MetadataCredentialsForPods::kDeny;
  if (!config_.metadata_endpoint.empty()) mo.metadata_endpoint = config_.metadata_endpoint;
  Metrics* m = &metrics_;
  mo.on_refusal = [m](metadata::Verdict v) {
    m->Inc("terway_metadata_refusals_total", {{"reason", metadata::VerdictName(v)}});
  };
  metadata_guard_ = std::make_unique<metadata::MetadataGuard>(mo);
  // Exemptions of the pods already running, before the table is installed.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "reading allocations for the metadata guard");
  std::map<std::string, std::map<std::string, std::string>> annotations;
  if (kube_) {
    for (const auto& p : kube_->Pods()) {
      annotations[p.metadata.namespace_ + "/" + p.metadata.name] = p.metadata.annotations;
    }
  }
  for (const auto& a : allocs) {
    auto ip = Ipv4Addr::Parse(a.ip);
    if (!ip.ok()) continue;
    const std::string pod = a.pod_namespace + "/" + a.pod_name;
    TERWAY_TRY_CTX(metadata_guard_->PodStarted(*ip, pod, annotations[pod]), "the metadata guard");
    if (!a.host_veth.empty()) TERWAY_TRY_CTX(metadata_guard_->GuardInterface(a.host_veth), "the metadata guard");
  }
  return Ok();
}

void Daemon::MaintainNodeTables() {
  if (!datapath_) return;
  if (foreign_filters_left_.load() != 0) {
    if (ebpf_datapath_ != nullptr) {
      // No first load may attach this run's programs between the sweep
      // reading "none loaded" and removing every filter of ours.
      ebpf_datapath_->WithoutConcurrentLoad(
          [this](const ebpf::DatapathPrograms* current) { DetachEarlierEbpfFilters(current); });
    } else {
      DetachEarlierEbpfFilters(nullptr);
    }
  }
  // Policy off: a failed write of the eBPF policy map is retried here.
  if (ebpf_policy_off_) ebpf_policy_off_->SyncIfDue();
  // Our pods from their veths' aliases, adopted ones from the store.
  datapath::AntiSpoofSeed aliases = datapath::SeedFromPodLinkAliases("");
  store::StateStore* store = store_.get();
  datapath::AntiSpoofSeed seed = [aliases, store]() -> Result<std::set<datapath::AntiSpoofElement>> {
    TERWAY_ASSIGN_OR_RETURN(auto elements, aliases());
    TERWAY_ASSIGN_OR_RETURN(auto allocs, store->ListAllocations());
    for (const auto& a : allocs) {
      if (a.host_veth.empty()) continue;
      if (auto ip = netlink::InetAddr::Parse(a.ip); ip.ok()) elements.insert({a.host_veth, *ip});
    }
    return elements;
  };
  Status st = datapath::AntiSpoofTable("", seed).Ensure();
  if (!st.ok()) log::Warn("anti-spoofing table check: {}", st.error().ToString());
}

OperatorViewSources Daemon::ViewSources() {
  using cli_views::KeyValue;
  OperatorViewSources v;
  v.store = store_.get();
  v.addresses = addresses_.get();
  v.pool = dynamic_cast<ipam::IpPool*>(addresses_.get());
  v.metadata = cloud_ ? cloud_->metadata() : nullptr;
  const std::string mode = ipam::EniModeName(config_.eni_mode);
  v.service_config = {
      {"node_name", opts_.node_name},
      {"instance_id", node_.instance_id},
      {"instance_type", node_.instance_type},
      {"region_id", node_.region_id},
      {"zone_id", node_.zone_id},
      {"vpc_id", node_.vpc_id},
      {"vswitch_id", node_.vswitch_id},
      {"eni_mode", mode + " (" + mode_choice_.source + ")"},
      {"datapath", datapath_mode_.empty() ? "none (IPAM only)" : datapath_mode_},
      {"network_policy", policy_off_.empty() ? "enforced" : "off: " + policy_off_},
      {"daemon_socket", opts_.socket_path},
      {"state_path", opts_.state_path},
      {"eni_conf_source", config_source_},
      {"kubernetes_api", kube_config_ ? kube_config_->server : "none"},
  };
  RequestHandler* service = service_.get();
  v.service_trace = [service] {
    cni::protocol::Request req;
    req.op = cni::protocol::Op::kStatus;
    auto r = service->Handle(req);
    bool ready = r.ok() && r.status && r.status->ready;
    return std::vector<KeyValue>{{"ready", ready ? "true" : "false"},
                                 {"not_ready_because", ready || !r.status ? "" : r.status->message}};
  };
  v.pool_name = config_.eni_mode == ipam::EniMode::kExclusive ? "exclusive-eni" : "shared-eni-ip";
  v.pool_config = {{"eni_mode", mode},
                   {"min_pool_size", std::to_string(config_.min_pool_size)},
                   {"max_pool_size", std::to_string(config_.max_pool_size)},
                   {"max_pods", std::to_string(addresses_->MaxPodCount())}};
  if (v.pool) {
    const auto& b = v.pool->Bounds();
    v.pool_config.push_back({"max_enis", std::to_string(b.max_enis)});
    v.pool_config.push_back({"min_idle", std::to_string(b.min_idle)});
    v.pool_config.push_back({"max_idle", std::to_string(b.max_idle)});
  }
  v.node_config.source = config_source_;
  v.node_config.eni_conf_text = eni_conf_text_;
  v.node_config.node = {
      {"eni_mode", mode},
      {"eni_mode_source", mode_choice_.source},
      {"daemon_mode", opts_.daemon_mode.empty() ? "(not set)" : opts_.daemon_mode},
      {"datapath", datapath_mode_.empty() ? "none (IPAM only)" : datapath_mode_},
      {"network_policy", policy_off_.empty() ? "enforced" : "off: " + policy_off_},
      {"daemon_socket", opts_.socket_path},
      {"state_path", opts_.state_path},
  };
  for (const auto& [k, val] : node_labels_) {
    if (k.rfind("k8s.aliyun.com/", 0) == 0) v.node_config.node.push_back({"node label " + k, val});
  }
  v.node_config.effective = cli_views::EffectiveConfig(config_);
  return v;
}

void Daemon::CreateCniService() {
  CniServiceOptions cso;
  cso.datapath_mode = datapath_mode_;
  if (!policy_off_.empty()) cso.policy_off_reason = policy_off_;
  if (datapath_choice_ == "shared") {
    cso.ebpf_datapath = ebpf_off_.empty();
    cso.ipvlan_fallback_reason = ebpf_off_;
  }
  cso.refuse_bad_bandwidth_annotation = config_.bandwidth_annotation_error == config::BandwidthAnnotationError::kRefuse;
  if (cloud_ != nullptr) {
    // Dual stack: an ENI's vSwitch IPv6 gateway, read once per ENI and MAC
    // (as its IPv4 gateway, see CreateDatapath), bounded for exclusive mode.
    struct Ipv6GatewayCache {
      std::mutex mu;
      std::map<std::string, std::string> by_eni;
    };
    auto cache = std::make_shared<Ipv6GatewayCache>();
    cloud::InstanceMetadata* md = cloud_->metadata();
    cso.ipv6_gateway = [md, cache](const std::string& eni_id, const std::string& mac) -> Result<std::string> {
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
  service_ = std::make_unique<CniService>(cso, addresses_.get(), store_.get(), datapath_.get(), &metrics_);
  service_->SetPodDirectory(kube_.get());
  service_->SetPodPolicy(policy_.get());
  service_->SetMetadataGuard(metadata_guard_.get());
  RpcServerOptions ro;
  ro.socket_path = opts_.socket_path;
  ro.metrics = &metrics_;
  views_ = std::make_unique<OperatorViews>(ViewSources(), service_.get());
  rpc_ = std::make_unique<RpcServer>(ro, views_.get());

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

void Daemon::DeclareMetrics() {
  DeclarePoolMetrics(metrics_);
  metrics_.DeclareGauge("terway_pool_config",
                        "The pool's sizes from eni_conf as resolved for this node (ConfigMap + override)");
  metrics_.DeclareCounter("terway_cloud_api_calls_total", "OpenAPI calls by action (logical calls)");
  metrics_.DeclareCounter("terway_cloud_api_attempts_total", "OpenAPI HTTP requests by action");
  metrics_.DeclareCounter("terway_cloud_api_errors_total", "OpenAPI calls that failed, by action");
  metrics_.DeclareCounter("terway_cloud_api_retries_total", "OpenAPI retries by action");
  metrics_.DeclareCounter("terway_restart_repairs_total",
                          "Pods verified at start-up, by outcome (ok, repaired, released, failed, unknown)");
  metrics_.DeclareCounter("terway_metadata_refusals_total",
                          "Pod requests to the metadata service the guard did not forward, by reason");
  metrics_.DeclareCounter("terway_antispoof_dropped_packets_total",
                          "Packets a pod sent with a source address not its own, dropped, by family");
  metrics_.DeclareCounter("terway_antispoof_dropped_bytes_total",
                          "Bytes of packets a pod sent with a source address not its own, dropped, by family");
  metrics_.DeclareGauge("terway_ebpf_datapath_available",
                        "1 when networks asking eniip_virtual_type IPVlan/datapathv2 get the eBPF datapath, 0 when "
                        "they get veth (the log says why)");
  metrics_.DeclareCounter("terway_ebpf_datapath_packets_total",
                          "Packets the eBPF datapath's programs handled, by path (pod_to_pod, pod_to_eni, eni_to_pod: "
                          "fast path; pod_to_stack, eni_to_stack: the host stack; drop_spoof)");
  metrics_.DeclareCounter("terway_ebpf_datapath_conntrack_to_stack_total",
                          "Of the eBPF datapath's packets sent to the host stack instead of a redirect, those "
                          "conntrack tracks (reason tracked: NAT or state only the stack applies) and those it cannot "
                          "be asked about (reason not_askable: ICMP, other protocols, fragments); also counted in "
                          "terway_ebpf_datapath_packets_total's *_to_stack");
  metrics_.DeclareGauge("terway_ebpf_datapath_policy_synced",
                        "Absent while no eBPF program is loaded (no eBPF-mode pod on this node yet): no map to sync. "
                        "Once loaded: 1 while its policy map says exactly which pods NetworkPolicy may isolate (with "
                        "policy off: none); 0 until the first write after the load and after a failed write, when "
                        "every eBPF-mode pod takes the host stack -- or, if even that could not be marked, new "
                        "eBPF-mode pods a policy isolates are refused -- until a retry succeeds (a Warning Event "
                        "EbpfPolicyMapNotSynced on the Node says which)");
  metrics_.DeclareGauge("terway_ebpf_datapath_foreign_filters_left",
                        "Links still carrying an earlier terwayd's eBPF filter that could not be removed (-1: the "
                        "links could not be listed); such a link may bypass NetworkPolicy applied since. Swept again "
                        "every pod GC round; a Warning Event " +
                            std::string(kForeignFiltersEventReason) + " on the Node names them");
  metrics_.DeclareCounter("terway_ebpf_datapath_policy_sync_errors_total",
                          "Failed writes of the eBPF datapath's policy map (each leaves every eBPF-mode pod on the "
                          "host stack until a retry succeeds)");
  if (datapath_choice_ == "shared") metrics_.Set("terway_ebpf_datapath_available", {}, ebpf_off_.empty() ? 1 : 0);
  metrics_.DeclareCounter("terway_state_rebuild_adoptions_total",
                          "Addresses found held at start without a record in the state database, adopted, by "
                          "source (kernel, kernel+api, api) and result (ok, failed)");
}

Daemon::~Daemon() { Stop(); }

void Daemon::UpdatePoolGauges() {
  auto s = addresses_->Stats();
  ExportPoolStats(metrics_, s);
  metrics_.Set("terway_pool_config", {{"setting", "min_pool_size"}}, config_.min_pool_size);
  metrics_.Set("terway_pool_config", {{"setting", "max_pool_size"}}, config_.max_pool_size);
  if (datapath_) {
    // The kernel's counters, read at scrape time (they count while we sleep).
    if (auto drops = datapath::AntiSpoofTable("").ReadDrops(); drops.ok()) {
      for (const auto& d : *drops) {
        metrics_.Set("terway_antispoof_dropped_packets_total", {{"family", d.family}}, double(d.packets));
        metrics_.Set("terway_antispoof_dropped_bytes_total", {{"family", d.family}}, double(d.bytes));
      }
    }
  }
  if (ebpf_datapath_ != nullptr) {
    // The datapath's own word: absent until programs are loaded.
    if (std::optional<bool> synced = ebpf_datapath_->PolicyMapSynced()) {
      metrics_.Set("terway_ebpf_datapath_policy_synced", {}, *synced ? 1 : 0);
    }
  }
  if (ebpf_datapath_ != nullptr && ebpf_datapath_->Loaded() != nullptr) {
    if (auto c = ebpf_datapath_->Loaded()->ReadCounters(); c.ok()) {
      for (const auto& [path, n] : {std::pair{"pod_to_pod", c->pod_to_pod}, {"pod_to_eni", c->pod_to_eni},
                                    {"eni_to_pod", c->eni_to_pod}, {"pod_to_stack", c->pod_to_stack},
                                    {"eni_to_stack", c->eni_to_stack}, {"drop_spoof", c->drop_spoof}}) {
        metrics_.Set("terway_ebpf_datapath_packets_total", {{"path", path}}, double(n));
      }
      metrics_.Set("terway_ebpf_datapath_conntrack_to_stack_total", {{"reason", "tracked"}}, double(c->ct_to_stack));
      metrics_.Set("terway_ebpf_datapath_conntrack_to_stack_total", {{"reason", "not_askable"}},
                   double(c->ct_unknown_to_stack));
    }
  }
  // The cloud client counts per action; exported as counters (monotonic).
  for (const auto& [action, st] : cloud_->openapi()->Stats()) {
    metrics_.Set("terway_cloud_api_calls_total", {{"action", action}}, double(st.calls));
    metrics_.Set("terway_cloud_api_attempts_total", {{"action", action}}, double(st.attempts));
    metrics_.Set("terway_cloud_api_errors_total", {{"action", action}}, double(st.errors));
    metrics_.Set("terway_cloud_api_retries_total", {{"action", action}}, double(st.retries));
  }
}

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

Status Daemon::StartMetricsEndpoint() {
  if (opts_.metrics_listen.empty()) return Ok();
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
    return Errorf(ErrorCode::kUnavailable, "cannot listen for metrics on {}: address in use?", opts_.metrics_listen);
  }
  if (!opts_.metrics_port_file.empty()) std::ofstream(opts_.metrics_port_file) << port << "\n";
  metrics_thread_ = std::thread([this] { metrics_server_->listen_after_bind(); });
  log::Info("metrics listening on {}:{}", hp.first, port);
  return Ok();
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
