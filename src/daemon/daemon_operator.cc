// What the operator sees of terwayd: terway-cli's views (ViewSources, the
// inputs of OperatorViews) and the metrics -- declared at start, the pool,
// kernel and cloud gauges read at scrape, served on --metrics-listen.
#include <fstream>
#include <optional>
#include <string>
#include <utility>

#include <httplib.h>

#include "daemon/daemon.h"
#include "daemon/upstream_metrics.h"
#include "datapath/anti_spoof.h"
#include "datapath/ebpf_eni.h"
#include "ipam/pool.h"

namespace terway::daemon {

namespace {
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

}  // namespace terway::daemon
