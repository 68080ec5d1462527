#include "daemon/daemon.h"

#include <fstream>
#include <set>
#include <sstream>

#include <httplib.h>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/shared_eni.h"

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

Result<std::unique_ptr<Daemon>> Daemon::Create(const DaemonOptions& opts) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->opts_ = opts;
  TERWAY_ASSIGN_OR_RETURN(d->config_, LoadEniConfig(opts.config_path));
  if (d->opts_.socket_path.empty()) d->opts_.socket_path = d->config_.daemon_socket;
  if (d->opts_.state_path.empty()) d->opts_.state_path = d->config_.state_path;
  if (d->config_.eni_mode != ipam::EniMode::kShared) {
    return Errorf(ErrorCode::kUnsupported,
                  "eni mode 'exclusive' needs the exclusive-ENI datapath, which this terwayd "
                  "does not have yet; use the shared mode");
  }

  TERWAY_ASSIGN_OR_RETURN_CTX(d->cloud_, cloud::CloudClients::Create(CloudOptionsFromConfig(d->config_)),
                              "setting up the cloud clients");
  TERWAY_ASSIGN_OR_RETURN(d->node_, ReadNodeIdentity(d->cloud_->metadata(), d->cloud_->region_id()));
  log::Info("node instance={} type={} region={} zone={} vpc={} vswitch={}", d->node_.instance_id,
            d->node_.instance_type, d->node_.region_id, d->node_.zone_id, d->node_.vpc_id,
            d->node_.vswitch_id);

  TERWAY_ASSIGN_OR_RETURN_CTX(d->store_, store::StateStore::Open(d->opts_.state_path),
                              "opening the state database");
  d->provider_ = std::make_unique<AliyunEniProvider>(d->cloud_->ecs(), d->node_.vpc_id,
                                                     &RealClock::Instance(),
                                                     &cloud::RealSleeper::Instance());
  ipam::PoolOptions po;
  po.instance_id = d->node_.instance_id;
  po.instance_type = d->node_.instance_type;
  po.vswitch_ids = d->config_.VSwitchesForZone(d->node_.zone_id);
  if (po.vswitch_ids.empty()) po.vswitch_ids = {d->node_.vswitch_id};  // as Terway does
  po.config = d->config_;
  TERWAY_ASSIGN_OR_RETURN_CTX(d->pool_,
                              ipam::IpPool::Create(po, d->provider_.get(), d->store_.get(),
                                                   &RealClock::Instance()),
                              "starting the IP pool");
  if (d->opts_.datapath == "shared") {
    datapath::SharedEniOptions so;
    cloud::InstanceMetadata* md = d->cloud_->metadata();
    // The ENI's gateway and vSwitch, as the metadata service reports them for
    // its MAC (the same source the ENI's own configuration comes from on ECS).
    so.eni_network = [md](const std::string& eni_id,
                          const MacAddr& mac) -> Result<datapath::EniNetwork> {
      std::string m = mac.ToString();
      TERWAY_ASSIGN_OR_RETURN_CTX(std::string gw, md->EniGateway(m), "gateway of " + eni_id);
      TERWAY_ASSIGN_OR_RETURN_CTX(std::string cidr, md->EniVSwitchCidrBlock(m),
                                  "vSwitch CIDR of " + eni_id);
      TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Addr g, Ipv4Addr::Parse(gw), "gateway of " + eni_id);
      TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Cidr c, Ipv4Cidr::Parse(cidr, true), "vSwitch of " + eni_id);
      return datapath::EniNetwork{g, c};
    };
    d->datapath_ = std::make_unique<datapath::SharedEniDatapath>(so);
  } else if (d->opts_.datapath != "none") {
    return Errorf(ErrorCode::kInvalidArgument, "--datapath must be 'shared' or 'none', not '{}'",
                  d->opts_.datapath);
  }
  d->service_ = std::make_unique<CniService>(CniServiceOptions{}, d->pool_.get(), d->store_.get(),
                                             d->datapath_.get(), &d->metrics_);
  RpcServerOptions ro;
  ro.socket_path = d->opts_.socket_path;
  d->rpc_ = std::make_unique<RpcServer>(ro, d->service_.get());

  d->metrics_.DeclareGauge("terway_pool_ips", "Pod IPs of the node's ENIs by state");
  d->metrics_.DeclareGauge("terway_pool_enis", "ENIs the pool manages");
  d->metrics_.DeclareGauge("terway_pool_max_pods", "Pods this node can hold");
  d->metrics_.DeclareGauge("terway_pool_waiting_requests", "Allocations waiting for the pool to grow");
  d->metrics_.DeclareCounter("terway_cloud_api_calls_total", "OpenAPI calls by action (logical calls)");
  d->metrics_.DeclareCounter("terway_cloud_api_attempts_total", "OpenAPI HTTP requests by action");
  d->metrics_.DeclareCounter("terway_cloud_api_errors_total", "OpenAPI calls that failed, by action");
  d->metrics_.DeclareCounter("terway_cloud_api_retries_total", "OpenAPI retries by action");
  return d;
}

Daemon::~Daemon() { Stop(); }

void Daemon::UpdatePoolGauges() {
  auto s = pool_->Stats();
  metrics_.Set("terway_pool_ips", {{"state", "idle"}}, s.idle);
  metrics_.Set("terway_pool_ips", {{"state", "in_use"}}, s.in_use);
  metrics_.Set("terway_pool_ips", {{"state", "reserved"}}, s.reserved);
  metrics_.Set("terway_pool_ips", {{"state", "releasing"}}, s.releasing);
  metrics_.Set("terway_pool_enis", {}, s.enis);
  metrics_.Set("terway_pool_max_pods", {}, s.max_pods);
  metrics_.Set("terway_pool_waiting_requests", {}, s.waiting);
  // The cloud client counts per action; exported as counters (monotonic).
  for (const auto& [action, st] : cloud_->openapi()->Stats()) {
    metrics_.Set("terway_cloud_api_calls_total", {{"action", action}}, double(st.calls));
    metrics_.Set("terway_cloud_api_attempts_total", {{"action", action}}, double(st.attempts));
    metrics_.Set("terway_cloud_api_errors_total", {{"action", action}}, double(st.errors));
    metrics_.Set("terway_cloud_api_retries_total", {{"action", action}}, double(st.retries));
  }
}

Status Daemon::Start() {
  if (auto* shared = dynamic_cast<datapath::SharedEniDatapath*>(datapath_.get())) {
    // One owner of kernel state: links and rules of pods that vanished while
    // we were down are collected before serving (no Ensure runs yet).
    auto allocs = store_->ListAllocations();
    if (allocs.ok()) {
      std::set<std::string> live;
      for (const auto& a : *allocs) live.insert(a.container_id);
      auto removed = shared->CollectGarbage(live);
      if (!removed.ok()) {
        log::Warn("datapath garbage collection: {}", removed.error().ToString());
      } else {
        for (const auto& r : *removed) log::Info("datapath gc removed {}", r);
      }
    }
  }
  pool_->Start();
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
  return Ok();
}

void Daemon::Stop() {
  if (service_) service_->SetReady(false, "terwayd is stopping");
  if (rpc_) rpc_->Stop();
  if (metrics_server_) metrics_server_->stop();
  if (metrics_thread_.joinable()) metrics_thread_.join();
  if (pool_) pool_->Stop();
}

}  // namespace terway::daemon
