// What the CNI/datapath benchmark (bench/cni_datapath_bench.cc) needs beyond
// the e2e harness: a bpf filesystem of its own per terwayd (so the eBPF
// datapath's pins never touch the node's /sys/fs/bpf), the eBPF programs'
// packet counters as terwayd exports them, and a Kubernetes API (the lab's
// stand-in, in process) holding 1,000 NetworkPolicies for the nodes whose
// pods are measured policed; and the reference path through the emulated VPC
// alone (two nodes' own namespaces over their primary ENIs): the address of
// a node's eth0 and a link's byte and packet counters, which prove a round
// of that path really crossed the fabric.
#pragma once

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "e2e/harness/process.h"
#include "k8s/client.h"
#include "k8s/node_config.h"
#include "netlink/netns.h"
#include "policy_cluster.h"
#include "tools/lab/apiserver/server.h"

namespace terway::bench {

// A bpf filesystem mounted on a temporary directory; unmounted (lazily: a
// terwayd still holding a pin cannot keep it) and removed by the destructor,
// so also when the benchmark fails. Declare it before the terwayd using it:
// the daemon must stop first.
class PrivateBpffs {
 public:
  PrivateBpffs() {
    // Named after our pid, so scripts/bench.sh can unmount what a killed run
    // left (a signal skips this destructor).
    std::string tmpl = fmt::format("/tmp/twbench-bpffs-{}.XXXXXX", getpid());
    if (mkdtemp(tmpl.data()) == nullptr) {
      error_ = fmt::format("mkdtemp: {}", std::strerror(errno));
      return;
    }
    dir_ = tmpl;
    if (mount("bpf", dir_.c_str(), "bpf", 0, "mode=0700") != 0) {
      error_ = fmt::format("cannot mount a bpf filesystem on {} ({})", dir_, std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~PrivateBpffs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  PrivateBpffs(const PrivateBpffs&) = delete;
  PrivateBpffs& operator=(const PrivateBpffs&) = delete;
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, error_;
  bool mounted_ = false;
};

// terway_ebpf_datapath_packets_total by path from a /metrics text (absent
// series read as 0: the programs are loaded at the first eBPF pod).
inline std::map<std::string, double> EbpfPackets(const std::string& metrics) {
  std::map<std::string, double> out;
  for (const char* path : {"pod_to_pod", "pod_to_eni", "eni_to_pod", "pod_to_stack", "eni_to_stack", "drop_spoof"}) {
    std::string key = fmt::format("terway_ebpf_datapath_packets_total{{path=\"{}\"}} ", path);
    auto pos = metrics.find(key);
    out[path] = pos == std::string::npos ? 0 : std::atof(metrics.c_str() + pos + key.size());
  }
  return out;
}

// A node's primary ENI is eth0 in its instance namespace (vpcsim configures
// its IPv4 there before any agent starts): that address, the one the VPC
// routes to the node itself.
inline Result<std::string> PrimaryEniIpv4(const std::string& node_netns) {
  auto r = testing::RunCommand({"/usr/sbin/ip", "-j", "-4", "addr", "show", "dev", "eth0"}, node_netns);
  if (r.exit_code != 0) return Errorf(ErrorCode::kInternal, "ip addr show eth0 in {}: {}", node_netns, r.output);
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (j.is_array() && !j.empty() && j[0].contains("addr_info")) {
    for (const auto& a : j[0]["addr_info"]) {
      if (a.value("family", "") == "inet" && a.value("scope", "") == "global") return a.value("local", "");
    }
  }
  return Errorf(ErrorCode::kNotFound, "eth0 in {} holds no global IPv4 (vpcsim configures the primary ENI there): {}",
                node_netns, r.output);
}

// Which way a measured path crosses a link of a node namespace.
struct LinkCount {
  double bytes = 0, packets = 0;
};
struct LinkCounters {
  LinkCount rx, tx;
};
inline Result<LinkCounters> ReadLinkCounters(const std::string& netns, const std::string& ifname) {
  auto r = testing::RunCommand({"/usr/sbin/ip", "-j", "-s", "link", "show", "dev", ifname}, netns);
  if (r.exit_code != 0) return Errorf(ErrorCode::kInternal, "ip -s link show {} in {}: {}", ifname, netns, r.output);
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (!j.is_array() || j.empty() || !j[0].contains("stats64")) {
    return Errorf(ErrorCode::kInternal, "no stats64 for {} in {}: {}", ifname, netns, r.output);
  }
  const auto& s = j[0]["stats64"];
  LinkCounters c;
  c.rx = {s["rx"].value("bytes", 0.0), s["rx"].value("packets", 0.0)};
  c.tx = {s["tx"].value("bytes", 0.0), s["tx"].value("packets", 0.0)};
  return c;
}

// Did a round of the fabric path cross the VPC? The client node's eth0 sent
// and the server node's eth0 received at least one packet per millisecond
// measured (the eBPF paths' bar), and the server's eth0 received at least
// the payload iperf3 counted (its counters also hold the headers): eth0's
// only peer is vpcsim's router, so those bytes went through the router
// namespace, its anti-spoofing and the vSwitch bridge.
inline bool FabricRoundValid(const LinkCounters& client_delta, const LinkCounters& server_delta,
                             double iperf_received_bytes, int seconds_measured) {
  const double min_packets = 1000.0 * seconds_measured;
  return client_delta.tx.packets >= min_packets && server_delta.rx.packets >= min_packets &&
         server_delta.rx.bytes >= iperf_received_bytes;
}

// The API of the policed nodes: one object store served on the host's
// loopback (the benchmark writes through it) and on each node's loopback
// (its terwayd reads there: an instance has no route to the host), as the
// lab's control plane does.
class PolicedApi {
 public:
  static Result<std::unique_ptr<PolicedApi>> Start(const std::vector<std::string>& node_netns) {
    std::unique_ptr<PolicedApi> a(new PolicedApi());
    a->store_ = lab::NewDefaultStore();
    a->host_ = std::make_unique<lab::ApiServer>(a->store_);
    TERWAY_TRY_CTX(a->host_->Start(), "starting the API stand-in on the host's loopback");
    for (const auto& ns : node_netns) {
      auto srv = std::make_unique<lab::ApiServer>(a->store_);
      lab::ApiServer* p = srv.get();
      TERWAY_TRY_CTX(netlink::RunInNetns(ns, [p] { return p->Start(); }),
                     "starting the API stand-in inside namespace " + ns);
      a->nodes_.push_back(std::move(srv));
    }
    k8s::RestConfig rc;
    rc.server = a->host_->url();
    rc.qps = 1e6;
    rc.burst = 1000000;
    a->client_ = k8s::RestClient::FromConfig(rc);
    return a;
  }
  ~PolicedApi() {
    for (auto& s : nodes_) s->Stop();
    if (host_) host_->Stop();
  }
  k8s::RestClient& client() { return *client_; }
  Status WriteKubeconfig(size_t node, const std::string& path) { return nodes_.at(node)->WriteKubeconfig(path); }

  // The cluster before any terwayd starts: eni_conf, the nodes, and the
  // policy benchmark's synthetic cluster (policy_cluster.h: 1,000 pods of
  // node "bench-node", which runs no terwayd here, and `policies`
  // NetworkPolicies over them, plus the eleven that select app=server in
  // namespace "bench", one allowing app=client on TCP 5201, 5301 and 5401). Its
  // own client/server pods are left out: the measured pods are created by
  // AddPod with their real names and nodes.
  Status Populate(const std::string& eni_conf, const std::vector<std::string>& node_names, int policies) {
    // kube-system exists in the lab's store from the start.
    TERWAY_TRY(client_->Create(k8s::resources::kConfigMaps, k8s::kEniConfigNamespace,
                               {{"apiVersion", "v1"},
                                {"kind", "ConfigMap"},
                                {"metadata", {{"name", k8s::kEniConfigName}, {"namespace", k8s::kEniConfigNamespace}}},
                                {"data", {{k8s::kEniConfKey, eni_conf}}}}));
    for (const auto& n : node_names) {
      TERWAY_TRY(client_->Create(k8s::resources::kNodes, "",
                                 {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", n}}}}));
    }
    SynthCluster c = MakeCluster(1000, policies, Ipv4Addr::Parse("198.19.63.1").value(),
                                 Ipv4Addr::Parse("198.19.63.2").value());
    c.pods.resize(c.pods.size() - 2);  // MakeCluster's client and server
    // server-9 allows the measured clients on iperf3's and the connection
    // rate's ports; the request rate's (bench_util.h: 5401) joins them.
    for (auto& p : c.policies) {
      if (p["metadata"]["name"] == "server-9") {
        p["spec"]["ingress"][0]["ports"].push_back({{"protocol", "TCP"}, {"port", 5401}});
      }
    }
    for (const auto& n : c.namespaces) TERWAY_TRY_CTX(client_->Create(k8s::resources::kNamespaces, "", n), "namespace");
    for (const auto& p : c.pods) {
      TERWAY_TRY_CTX(client_->Create(k8s::resources::kPods, p["metadata"]["namespace"], p), "synthetic pod");
    }
    for (const auto& p : c.policies) {
      TERWAY_TRY_CTX(client_->Create(k8s::resources::kNetworkPolicies, p["metadata"]["namespace"], p), "policy");
    }
    policies_ = static_cast<int>(c.policies.size());
    return Ok();
  }
  int policies() const { return policies_; }

  // A measured pod as the scheduler leaves it (namespace "bench", labelled
  // app=<app>, bound to its node), before CNI ADD.
  Status AddPod(const std::string& name, const std::string& app, const std::string& node) {
    nlohmann::json pod = {{"apiVersion", "v1"},
                          {"kind", "Pod"},
                          {"metadata", {{"name", name}, {"namespace", "bench"}, {"labels", {{"app", app}}}}},
                          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}},
                          {"status", {{"phase", "Pending"}}}};
    TERWAY_TRY_CTX(client_->Create(k8s::resources::kPods, "bench", pod), "pod bench/" + name);
    return Ok();
  }
  // What the kubelet reports after the sandbox starts: other nodes' policy
  // controllers learn the pod's address from status.podIP.
  Status SetPodIp(const std::string& name, const std::string& ip) {
    nlohmann::json patch = {{"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
    TERWAY_TRY_CTX(client_->Patch(k8s::resources::kPods, "bench", name, k8s::PatchType::kMerge, patch, "status"),
                   "status of pod bench/" + name);
    return Ok();
  }

 private:
  PolicedApi() = default;
  std::shared_ptr<lab::ObjectStore> store_;
  std::unique_ptr<lab::ApiServer> host_;
  std::vector<std::unique_ptr<lab::ApiServer>> nodes_;
  std::shared_ptr<k8s::RestClient> client_;
  int policies_ = 0;
};

}  // namespace terway::bench
