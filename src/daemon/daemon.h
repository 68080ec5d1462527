// terwayd's wiring: configuration -> cloud clients -> state store -> pool ->
// CNI service on the unix socket, plus the metrics endpoint. One Daemon per
// node; it is the single owner of the node's addresses.
#pragma once

#include <chrono>
#include <functional>
#include <atomic>
#include <memory>
#include <set>
#include <string>

#include "cloud/cloud_clients.h"
#include "common/result.h"
#include "daemon/aliyun_eni_provider.h"
#include "daemon/cli_requests.h"
#include "daemon/cni_service.h"
#include "daemon/kube_node.h"
#include "daemon/metrics.h"
#include "daemon/pod_gc.h"
#include "daemon/policy_controller.h"
#include "daemon/rpc_server.h"
#include "ipam/address_source.h"
#include "config/eni_config.h"
#include "config/node_mode.h"
#include "metadata/metadata_guard.h"
#include "store/state_store.h"

namespace httplib {
class Server;
}
namespace terway::ebpf {
class DatapathPrograms;
}
namespace terway::datapath {
class EbpfEniDatapath;
struct EbpfEniOptions;
struct SharedEniOptions;
}

namespace terway::daemon {

struct DaemonOptions {
  std::string config_path = "/etc/eni/eni.json";  // eni_conf, as Terway mounts it
  // Empty: take the value from the config file (daemon_socket / state_path).
  std::string socket_path;
  std::string state_path;
  // host:port for Prometheus metrics; empty disables. Port 0 picks one.
  std::string metrics_listen = "127.0.0.1:9190";
  // Written with the bound metrics port once serving (tests, the lab).
  std::string metrics_port_file;
  // "auto": the datapath of eni_conf's eni_mode; "shared": wire pods with a
  // veth + policy routing through their ENI (eni_mode shared); "exclusive":
  // move each pod's own ENI into it (eni_mode exclusive); "none": IPAM only
  // (hand out addresses, wire nothing; shared mode only), for benchmarks of
  // the pool and runtimes that wire pods themselves.
  std::string datapath = "auto";
  // The eBPF datapath for networks asking eniip_virtual_type IPVlan /
  // datapathv2 (shared ENI): loaded at start when the kernel can run it,
  // its maps pinned under <bpffs>/terway. Off: such networks get veth.
  bool ebpf_datapath = true;
  std::string bpffs = "/sys/fs/bpf";
  // The Kubernetes API: a kubeconfig file, else in-cluster (the pod's service
  // account, when KUBERNETES_SERVICE_HOST is set), else none: terwayd then
  // runs API-less with eni_conf from config_path. node_name (or $NODE_NAME,
  // read by the main) names this node's object; required with an API.
  std::string kubeconfig;
  // Overrides the API server of the kubeconfig (upstream's -master flag).
  std::string api_server;
  std::string node_name;
  // Upstream's -daemon-mode: "" or "ENIMultiIP" (the node label and eni_conf
  // choose the ENI mode), "ENIOnly" (exclusive ENI on every node).
  std::string daemon_mode;
  // Polled while start-up waits for a service that is briefly unreachable
  // (the metadata service): true ends the wait (terwayd is being stopped).
  // Unset: never.
  std::function<bool()> stop_requested;
  // Backoff between those attempts: doubles from the first to the cap.
  std::chrono::milliseconds start_retry_first{500};
  std::chrono::milliseconds start_retry_cap{10000};
};

// Node identity as the metadata service reports it.
struct NodeIdentity {
  std::string instance_id;
  std::string instance_type;
  std::string region_id;
  std::string zone_id;
  std::string vpc_id;
  std::string vswitch_id;
};

class Daemon {
 public:
  static Result<std::unique_ptr<Daemon>> Create(const DaemonOptions& opts);
  ~Daemon();

  // Starts the pool worker, the socket and the metrics endpoint.
  Status Start();
  void Stop();

  const NodeIdentity& node() const { return node_; }
  ipam::PodAddressSource* addresses() { return addresses_.get(); }
  Metrics* metrics() { return &metrics_; }
  // Null when terwayd runs without a Kubernetes API.
  KubeNode* kube() { return kube_.get(); }
  PolicyController* policy() { return policy_.get(); }

 private:
  Daemon() = default;
  // Runs attempt until it succeeds, with backoff, while its errors are
  // worth waiting out (a service not answering yet); a configuration error
  // or a stop request ends it.
  Status WaitOut(const std::string& what, const std::function<Status()>& attempt);
  // Create's steps, in order; each a screenful, each its own error context.
  // Configuration (daemon_config.cc): the eni_conf of the API or the file,
  // then the ENI mode and the datapath it implies.
  Status LoadConfiguration();
  Status LoadEniConfFromApi();
  Status LoadEniConfFromFile();
  Status ChooseEniModeAndDatapath();
  Status ConnectCloud();
  Status OpenState();
  Status WatchKubernetes();
  Status CreateAddressSource();
  // The vSwitches new ENIs may use, as eni_conf's ip_stack allows
  // (start_checks.cc): with dual, those without an IPv6 block are left out
  // and told on the Node; none left refuses the start.
  Result<std::vector<std::string>> VSwitchesForNewEnis(const std::vector<std::string>& candidates);
  static constexpr const char* kVSwitchWithoutIpv6EventReason = "VSwitchWithoutIpv6";
  // Removes an earlier run's eBPF filters (ebpf::DetachForeign); what is
  // left is counted, logged and told on the Node, and swept again by
  // MaintainNodeTables while any is.
  void DetachEarlierEbpfFilters(const ebpf::DatapathPrograms* current);
  static constexpr const char* kForeignFiltersEventReason = "EbpfForeignFiltersLeft";
  // The pod datapath (daemon_datapath.cc): shared ENI, with the eBPF
  // programs when available, or exclusive ENI.
  Status CreateDatapath();
  Status CreateSharedEniDatapath(const datapath::SharedEniOptions& so);
  Status CreateEbpfEniDatapath(const datapath::SharedEniOptions& so);
  // The eBPF datapath's hooks into the policy map's writer (the policy
  // controller, or with policy off this daemon).
  void HookPolicyMapWriter(datapath::EbpfEniOptions* eo);
  // Why networks asking for the eBPF datapath get veth ("" when the kernel
  // can run it and it is not switched off); said once when one asks.
  std::string EbpfUnavailable();
  // Adopts what the database does not know (restart_repair.cc): before the
  // policy controller reads its ledger of local pods from the store.
  Status RebuildState();
  // NetworkPolicy (daemon_guards.cc): the controller, or with policy off
  // the removal of a leftover table and an empty eBPF policy map.
  Status CreatePolicy();
  void TurnPolicyOff();
  Status StartPolicyController();
  // The filter between pods and the node's cloud credentials (shared ENI).
  Status CreateMetadataGuard();
  void CreateCniService();
  void CreatePodGc();
  // terway-cli's views (list, show, mapping, metadata, nodeconfig), answered
  // on the socket before the CNI service (daemon_operator.cc, with the
  // metrics).
  OperatorViewSources ViewSources();
  void DeclareMetrics();
  // Start's first step (restart_repair.cc): verify, repair or free every
  // recorded pod.
  void RepairPods();
  // One recorded pod: verified, repaired or freed; returns the outcome for
  // terway_restart_repairs_total and collects what GC must keep.
  const char* RepairPod(const store::AllocationRecord& rec, std::set<std::string>* live,
                        std::set<Ipv4Addr>* adopted_ips);
  void FollowBandwidthAnnotations();
  Status StartMetricsEndpoint();
  void UpdatePoolGauges();
  // Each pod GC round: the node-wide tables are put back if someone
  // removed them (anti-spoofing), with every pod's element.
  void MaintainNodeTables();

  DaemonOptions opts_;
  config::EniConfig config_;
  NodeIdentity node_;
  Metrics metrics_;
  std::optional<k8s::RestConfig> kube_config_;
  std::shared_ptr<k8s::RestClient> kube_client_;
  std::string config_source_;    // where eni_conf came from, for messages
  std::string eni_conf_text_;    // the merged eni_conf as parsed (terway-cli nodeconfig)
  std::map<std::string, std::string> node_labels_;  // with an API
  config::EniModeChoice mode_choice_;
  std::string datapath_choice_;  // "shared", "exclusive", "none"
  std::unique_ptr<cloud::CloudClients> cloud_;
  std::unique_ptr<store::StateStore> store_;
  // Before the address source: pod GC asks kube_ for live pods.
  std::unique_ptr<KubeNode> kube_;
  std::unique_ptr<AliyunEniProvider> provider_;
  // IpPool (shared ENI) or ExclusiveEniAllocator (exclusive ENI).
  std::unique_ptr<ipam::PodAddressSource> addresses_;
  std::string datapath_mode_;  // "shared", "exclusive", "" (IPAM only)
  std::string ebpf_off_;  // why no eBPF datapath ("" when there is one, on a shared-ENI node)
  datapath::EbpfEniDatapath* ebpf_datapath_ = nullptr;  // datapath_ when it is one
  // Earlier runs' eBPF filters not yet removed (-1: unknown); written at
  // start and by the pod GC's thread.
  std::atomic<int> foreign_filters_left_{0};
  std::unique_ptr<PodDatapath> datapath_;
  bool disable_network_policy_ = false;
  std::string policy_off_;  // why policy is not enforced here ("" = it is)
  // Null when policy is not enforced on this node (see Create's log line).
  std::unique_ptr<PolicyController> policy_;
  // policy_ once Create returned, for the eBPF datapath's `loaded` hook
  // (the first eBPF pod's ADD thread asks the controller for a sync of the
  // policy map) -- read from other threads than the one assigning policy_.
  std::atomic<PolicyController*> policy_view_{nullptr};
  // With policy off on an eBPF node: terwayd writes the policy map (the
  // empty set), retried by the pod GC round while not in sync.
  std::unique_ptr<DatapathSyncReporter> ebpf_policy_reporter_;
  std::unique_ptr<PolicyOffDatapathSync> ebpf_policy_off_;
  std::unique_ptr<metadata::MetadataGuard> metadata_guard_;
  std::unique_ptr<CniService> service_;
  std::unique_ptr<PodGc> pod_gc_;
  std::unique_ptr<OperatorViews> views_;
  std::unique_ptr<RpcServer> rpc_;
  std::unique_ptr<httplib::Server> metrics_server_;
  std::thread metrics_thread_;
};

// Where the Kubernetes API is, from the options and the environment;
// nullopt when none is configured (terwayd then runs API-less).
Result<std::optional<k8s::RestConfig>> ResolveKubeConfig(const DaemonOptions& opts);

// Reads and parses an eni_conf file; warnings are logged.
Result<config::EniConfig> LoadEniConfig(const std::string& path);
// Settings for the cloud clients from eni_conf.
cloud::CloudOptions CloudOptionsFromConfig(const config::EniConfig& c);

}  // namespace terway::daemon
