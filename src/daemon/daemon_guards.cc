// What guards pods' traffic beyond their wiring: NetworkPolicy (the policy
// controller, or with policy off the removal of an earlier run's table and
// an empty eBPF policy map) and the metadata guard between pods and the
// node's cloud credentials.
#include <map>
#include <set>

#include "common/log.h"
#include "daemon/daemon.h"
#include "datapath/ebpf_eni.h"
#include "k8s/node_config.h"

namespace terway::daemon {

namespace {
// Why NetworkPolicy is not enforced on this node ("" when it is).
std::string PolicyOffReason(const std::string& datapath_choice, bool has_api, bool disable_network_policy) {
  if (datapath_choice != "shared") {
    return datapath_choice == "exclusive" ? "network policy does not apply on this node: exclusive-ENI pods are "
                                            "outside policy (as in Terway)"
                                          : "network policy needs a pod datapath (terwayd runs with --datapath none)";
  }
  if (!has_api) return "network policy needs the Kubernetes API (terwayd runs API-less)";
  if (disable_network_policy) {
    return fmt::format("network policy is disabled: ConfigMap {}/{} has {}: \"true\"", k8s::kEniConfigNamespace,
                       k8s::kEniConfigName, k8s::kDisableNetworkPolicyKey);
  }
  return "";
}

// The policy controller's ledger of local pods' addresses, by
// namespace/name, from their records.
struct LocalPodAddresses {
  std::map<std::string, Ipv4Addr> ipv4;
  std::map<std::string, Ipv6Addr> ipv6;  // dual-stack pods'
};
LocalPodAddresses LocalPodAddressesOf(const std::vector<store::AllocationRecord>& allocs) {
  LocalPodAddresses local;
  for (const auto& a : allocs) {
    if (auto ip = Ipv4Addr::Parse(a.ip); ip.ok()) local.ipv4[a.pod_namespace + "/" + a.pod_name] = *ip;
    if (auto ip6 = Ipv6Addr::Parse(a.ipv6); !a.ipv6.empty() && ip6.ok()) {
      local.ipv6[a.pod_namespace + "/" + a.pod_name] = *ip6;
    }
  }
  return local;
}
}  // namespace

// NetworkPolicy: only where pods are wired by the shared-ENI datapath with
// an API to learn policies from. Wherever we do not enforce, a table an
// earlier run left is removed: this daemon is its only owner.
Status Daemon::CreatePolicy() {
  policy_off_ = PolicyOffReason(datapath_choice_, kube_client_ != nullptr, disable_network_policy_);
  if (!policy_off_.empty()) {
    TurnPolicyOff();
    return Ok();
  }
  return StartPolicyController();
}

void Daemon::TurnPolicyOff() {
  log::Info("{}", policy_off_);
  if (datapath_choice_ != "none") {
    Status rm = PolicyController::RemoveTable("");
    if (!rm.ok()) log::Warn("removing a leftover policy table: {}", rm.error().ToString());
  }
  datapath::EbpfEniDatapath* ebpf = ebpf_datapath_;
  if (ebpf == nullptr) return;
  // No chain isolates any pod: the eBPF datapath's policy map is empty and
  // authoritative (nothing to write until it is loaded; its `loaded` hook
  // does it then). A failure leaves every eBPF pod on the stack (slower, no
  // less correct: no chain exists): reported, and retried every pod GC
  // round (MaintainNodeTables) until it succeeds.
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

Status Daemon::StartPolicyController() {
  // Local pods' addresses come from the store; RebuildState adds what it
  // adopts through PodStarting before serving.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "reading allocations for policy");
  LocalPodAddresses local = LocalPodAddressesOf(allocs);
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
  TERWAY_ASSIGN_OR_RETURN_CTX(policy_, PolicyController::Create(kube_client_, pco, std::move(local.ipv4), &metrics_,
                                                                   std::move(local.ipv6)),
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

}  // namespace terway::daemon
