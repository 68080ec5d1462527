// CNI and datapath benchmark, side by side with the reference plugins:
//   - CNI ADD and DEL latency (p50/p99) through the real `terway` binary with
//     a warm pool, and through Debian's reference `ptp` + `host-local`
//     plugins, on the same machine in the same run, calls interleaved so that
//     both see the same noise;
//   - pod-to-pod TCP throughput (iperf3), connection rate and request rate
//     (one connection, 1-byte ping-pong) same node and cross node for terway
//     pods, same node for ptp pods, each as a ratio to a plain veth pair
//     between two namespaces measured in the same run;
//   - the eBPF datapath (networks asking eniip_virtual_type IPVlan, served
//     by terwayd's EbpfEniDatapath): ADD latency next to veth mode, and the
//     same three figures same node and cross node, in the same rounds; and
//     veth and eBPF pods again on two nodes whose terwayd watches a
//     Kubernetes API holding 1,000 NetworkPolicies, eleven of which select
//     the measured servers (so they are policed: eBPF mode hands their
//     packets to the host stack) and one allows the measured clients. Each
//     eBPF round is valid only if the programs' counters
//     (terway_ebpf_datapath_packets_total) rose on the expected paths;
//     otherwise the round is dropped and the JSON says so;
//   - a reference path with no CNI at all, in the same rounds: node 0 and
//     node 1 themselves (their instance namespaces, host network) over their
//     primary ENIs' addresses: the emulated VPC (each node's ENI veth,
//     vpcsim's router namespace with its anti-spoofing, the vSwitch bridge),
//     the leg every cross-node pod path also crosses and a bare veth pair
//     does not, plus the two nodes' own stacks as terwayd leaves them (its
//     nftables there include a nat hook, so conntrack sees every packet;
//     the eBPF datapath's redirects skip those stacks, veth mode forwards
//     through them). A round of it is valid only if both eth0s counted the
//     traffic;
//   - cold-pool ADD/DEL (every ADD waits for the cloud), pod churn, and
//     bandwidth accuracy (achieved / limit at 10, 50, 200 Mbit/s).
// Every plugin is exec'd exactly as a runtime does (fork, setns into the
// node's namespace, exec with the CNI environment and the config on stdin);
// the measured time is that whole exec, for both plugins alike.
// Results: JSON on stdout (or --out FILE); progress on stderr.
//
//   sudo build/bench/cni_datapath_bench --out bench/results/cni_datapath.json [--pods 100]
#include <fcntl.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "cni_exec.h"
#include "datapath_nodes.h"
#include "e2e/harness/world.h"
#include "netlink/netns.h"
#include "test_util.h"

using namespace terway;
using namespace terway::testing;
using terway::bench::ConnectRate;
using terway::bench::EbpfPackets;
using terway::bench::ExecPlugin;
using terway::bench::FirstIp;
using terway::bench::FabricRoundValid;
using terway::bench::LinkCounters;
using terway::bench::PolicedApi;
using terway::bench::PrimaryEniIpv4;
using terway::bench::ReadLinkCounters;
using terway::bench::PrivateBpffs;
using terway::bench::Iperf;
using terway::bench::Namespaces;
using terway::bench::Percentile;
using terway::bench::RequestRate;
using terway::bench::Summary;
using terway::bench::TotalApiCalls;

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const std::string& what, const Error& e) {
  std::cerr << "bench: " << what << ": " << e.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int pods = 100;
  int iperf_seconds = 3;
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i++) {
    std::string a = argv[i];
    if (a == "--out") out_path = argv[i + 1];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    if (a == "--iperf-seconds") iperf_seconds = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
  }
  if (pods < 2 || pods > 400 || iperf_seconds < 1 || rounds < 1) {
    std::cerr << "bench: --pods must be 2..400, --iperf-seconds and --rounds at least 1\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "bench: needs root (vpcsim's fabric and the pods are network namespaces)\n";
    return 1;
  }
  if (!getenv("TERWAY_BINARY_DIR")) setenv("TERWAY_BINARY_DIR", TERWAY_BUILD_DIR, 1);
  const std::string ref_dir = "/usr/lib/cni";
  if (access((ref_dir + "/ptp").c_str(), X_OK) != 0 || access((ref_dir + "/host-local").c_str(), X_OK) != 0) {
    std::cerr << "bench: the reference plugins are missing from " << ref_dir
              << " (install Debian's containernetworking-plugins: make deps)\n";
    return 1;
  }

  nlohmann::json results;
  results["command"] = fmt::format("sudo build/bench/cni_datapath_bench --out bench/results/cni_datapath.json "
                                   "--pods {} --iperf-seconds {} --rounds {}",
                                   pods, iperf_seconds, rounds);

  // Each terwayd pins the eBPF datapath's maps in a bpf filesystem of ours;
  // declared before the daemons, so they stop before it is unmounted.
  PrivateBpffs bpffs[5];
  for (const auto& fs : bpffs) {
    if (!fs.error().empty()) return Fail("a private bpf filesystem", Error{ErrorCode::kUnavailable, fs.error()});
  }
  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.xlarge";  // (18 - 1) x 30 = 510 pods per node
  // node 0 warm, node 1 the cross-node peer, node 2 cold; nodes 3 and 4
  // watch the API with the policies (same node on 3, cross node 3 -> 4).
  ws.instances = 5;
  ws.vswitch_cidr = "198.18.0.0/22";
  auto world = VpcsimWorld::Start(ws);
  if (!world.ok()) return Fail("starting vpcsim", world.error());
  VpcsimWorld* w = world->get();
  std::vector<std::unique_ptr<TerwaydNode>> nodes;
  for (int i = 0; i < 3; i++) {
    TerwaydSpec ts;
    ts.instance_id = w->instances()[i];
    ts.datapath = "shared";
    ts.extra_args = {"--bpffs", bpffs[i].dir(), "--ebpf-datapath", "auto"};
    // Node 0 warm: every measured ADD finds an idle address (veth and eBPF
    // pods). Node 2 cold: no idle address is ever kept, every ADD waits for
    // the cloud.
    ts.min_pool_size = i == 0 ? 2 * pods + 5 : i == 1 ? 4 : 0;
    ts.max_pool_size = i == 2 ? 0 : ts.min_pool_size + 10;
    auto n = TerwaydNode::Start(w, ts);
    if (!n.ok()) return Fail("starting terwayd", n.error());
    if (auto s = (*n)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    nodes.push_back(std::move(n).value());
  }
  // The policed nodes: terwayd with the Kubernetes API (eni_conf from its
  // ConfigMap, as in a cluster; the same pool settings the harness writes).
  const std::vector<std::string> policed_names = {"bench-policed-0", "bench-policed-1"};
  std::vector<std::string> policed_netns;
  for (int i = 3; i < 5; i++) policed_netns.push_back(w->InstanceNetns(w->instances()[i]));
  auto api = PolicedApi::Start(policed_netns);
  if (!api.ok()) return Fail("the Kubernetes API of the policed nodes", api.error());
  const std::string policed_conf = nlohmann::json{{"version", "1"},
                                                  {"max_pool_size", 14},
                                                  {"min_pool_size", 4},
                                                  {"vswitches", {{w->zone(), {w->vswitches()[0]}}}},
                                                  {"security_group", "sg-" + w->name()},
                                                  {"ecs_endpoint", "http://100.100.0.1"},
                                                  {"vpc_endpoint", "http://100.100.0.1"},
                                                  {"credential_source", "ram_role"},
                                                  {"ip_pool_sync_period", "30s"},
                                                  {"idle_ip_reclaim_interval", "5s"}}
                                       .dump();
  // 989 synthetic policies + the 11 of namespace "bench" = 1,000.
  if (auto s = (*api)->Populate(policed_conf, policed_names, 989); !s.ok()) return Fail("loading the policies", s.error());
  TempDir kube_dir;
  for (int i = 3; i < 5; i++) {
    const std::string kc = kube_dir.File(policed_names[i - 3] + ".kubeconfig");
    if (auto s = (*api)->WriteKubeconfig(i - 3, kc); !s.ok()) return Fail("kubeconfig", s.error());
    TerwaydSpec ts;
    ts.instance_id = w->instances()[i];
    ts.datapath = "shared";
    ts.extra_args = {"--bpffs", bpffs[i].dir(), "--ebpf-datapath", "auto", "--kubeconfig", kc,
                     "--node-name", policed_names[i - 3]};
    auto n = TerwaydNode::Start(w, ts);
    if (!n.ok()) return Fail("starting terwayd", n.error());
    if (auto s = (*n)->WaitReady(); !s.ok()) return Fail("terwayd ready (policed node)", s.error());
    nodes.push_back(std::move(n).value());
  }
  std::cerr << "bench: waiting for node 0's pool to hold " << 2 * pods << " idle addresses\n";
  bool warm = WaitFor(
      [&] {
        auto m = nodes[0]->Metrics();
        if (!m.ok()) return false;
        auto pos = m->find("terway_pool_ips{state=\"idle\"} ");
        if (pos == std::string::npos) return false;
        return std::atoi(m->c_str() + pos + std::string("terway_pool_ips{state=\"idle\"} ").size()) >= 2 * pods;
      },
      std::chrono::seconds(180), std::chrono::milliseconds(200));
  if (!warm) return Fail("warming the pool", Error{ErrorCode::kTimeout, "node 0 never held enough idle IPs"});

  Namespaces ns;
  const std::string ref_node = w->name() + "-ref";
  if (auto s = ns.Create(ref_node); !s.ok()) return Fail("reference node namespace", s.error());
  TempDir hl;
  const std::string terway_conf = nlohmann::json{{"cniVersion", "1.0.0"},
                                                 {"name", "terway"},
                                                 {"type", "terway"},
                                                 {"daemon_socket", nodes[0]->socket()}}
                                      .dump();
  // 198.19.128.0/17: inside the benchmarking range, never used by the world.
  const std::string ptp_conf =
      nlohmann::json{{"cniVersion", "1.0.0"},
                     {"name", "ref"},
                     {"type", "ptp"},
                     {"ipMasq", false},
                     {"ipam", {{"type", "host-local"},
                               {"ranges", {{{{"subnet", "198.19.128.0/17"}}}}},
                               {"dataDir", hl.File("host-local")}}}}
          .dump();
  // The network asking the eBPF datapath, as upstream Terway's
  // datapathv2 clusters write it (eniip_virtual_type IPVlan).
  auto ebpf_conf_for = [](const std::string& socket) {
    return nlohmann::json{{"cniVersion", "1.0.0"},
                          {"name", "terway"},
                          {"type", "terway"},
                          {"eniip_virtual_type", "IPVlan"},
                          {"daemon_socket", socket}}
        .dump();
  };
  auto veth_conf_for = [](const std::string& socket) {
    return nlohmann::json{{"cniVersion", "1.0.0"}, {"name", "terway"}, {"type", "terway"}, {"daemon_socket", socket}}
        .dump();
  };
  const std::string ebpf_conf = ebpf_conf_for(nodes[0]->socket());
  const std::string terway_bin = BinaryPath("terway");
  const std::string terway_cni_path = BinaryDir() + "/cmd/terway";
  const std::string ptp_bin = ref_dir + "/ptp";

  std::vector<std::string> terway_pods, ref_pods, ebpf_pods;
  std::vector<double> t_add, t_del, r_add, r_del, e_add, e_del;
  std::string t_ip0, t_ip1, r_ip0, r_ip1, e_ip1;
  std::cerr << "bench: " << pods << " pods each for terway veth, terway eBPF and ptp+host-local, ADD interleaved\n";
  for (int i = 0; i < pods; i++) {
    std::string tp = fmt::format("{}-t{}", w->name(), i), rp = fmt::format("{}-r{}", w->name(), i),
                ep = fmt::format("{}-e{}", w->name(), i);
    if (auto s = ns.Create(tp); !s.ok()) return Fail("pod namespace", s.error());
    if (auto s = ns.Create(rp); !s.ok()) return Fail("pod namespace", s.error());
    if (auto s = ns.Create(ep); !s.ok()) return Fail("pod namespace", s.error());
    auto ta = ExecPlugin(terway_bin, terway_cni_path, "ADD", "t" + std::to_string(i), tp, "t" + std::to_string(i),
                         nodes[0]->netns(), terway_conf);
    if (ta.result.exit_code != 0) return Fail("terway ADD", Error{ErrorCode::kInternal, ta.result.output});
    auto ea = ExecPlugin(terway_bin, terway_cni_path, "ADD", "e" + std::to_string(i), ep, "e" + std::to_string(i),
                         nodes[0]->netns(), ebpf_conf);
    if (ea.result.exit_code != 0) return Fail("terway eBPF ADD", Error{ErrorCode::kInternal, ea.result.output});
    e_add.push_back(ea.ms);
    ebpf_pods.push_back(ep);
    if (i == 1) {
      auto eip = FirstIp(ea.result.output);
      if (!eip.ok()) return Fail("terway eBPF result", eip.error());
      e_ip1 = *eip;
    }
    auto ra = ExecPlugin(ptp_bin, ref_dir, "ADD", "r" + std::to_string(i), rp, "r" + std::to_string(i), ref_node,
                         ptp_conf);
    if (ra.result.exit_code != 0) return Fail("ptp ADD", Error{ErrorCode::kInternal, ra.result.output});
    t_add.push_back(ta.ms);
    r_add.push_back(ra.ms);
    terway_pods.push_back(tp);
    ref_pods.push_back(rp);
    if (i < 2) {
      auto tip = FirstIp(ta.result.output);
      auto rip = FirstIp(ra.result.output);
      if (!tip.ok()) return Fail("terway result", tip.error());
      if (!rip.ok()) return Fail("ptp result", rip.error());
      (i == 0 ? t_ip0 : t_ip1) = *tip;
      (i == 0 ? r_ip0 : r_ip1) = *rip;
    }
  }

  // Throughput while the pods exist: pods 0 and 1 on node 0 (same node), a
  // pod on node 1 (cross node), ptp pods 0 and 1, and a bare veth pair.
  const std::string cross_pod = w->name() + "-x0";
  if (auto s = ns.Create(cross_pod); !s.ok()) return Fail("pod namespace", s.error());
  const std::string cross_conf = nlohmann::json{{"cniVersion", "1.0.0"},
                                                {"name", "terway"},
                                                {"type", "terway"},
                                                {"daemon_socket", nodes[1]->socket()}}
                                     .dump();
  auto xa = ExecPlugin(terway_bin, terway_cni_path, "ADD", "x0", cross_pod, "x0", nodes[1]->netns(), cross_conf);
  if (xa.result.exit_code != 0) return Fail("terway ADD on node 1", Error{ErrorCode::kInternal, xa.result.output});
  auto x_ip = FirstIp(xa.result.output);
  if (!x_ip.ok()) return Fail("terway result", x_ip.error());
  const std::string cross_ebpf_pod = w->name() + "-y0";
  if (auto s = ns.Create(cross_ebpf_pod); !s.ok()) return Fail("pod namespace", s.error());
  const std::string cross_ebpf_conf = ebpf_conf_for(nodes[1]->socket());
  auto ya = ExecPlugin(terway_bin, terway_cni_path, "ADD", "y0", cross_ebpf_pod, "y0", nodes[1]->netns(),
                       cross_ebpf_conf);
  if (ya.result.exit_code != 0) return Fail("terway eBPF ADD on node 1", Error{ErrorCode::kInternal, ya.result.output});
  auto y_ip = FirstIp(ya.result.output);
  if (!y_ip.ok()) return Fail("terway eBPF result", y_ip.error());

  // The policed pods: each exists in the API before its ADD (as the
  // scheduler leaves it), its address goes to status.podIP after (as the
  // kubelet reports it). Clients app=client, servers app=server; node 3
  // holds the clients and the same-node servers, node 4 the cross-node ones.
  struct PolicedPod {
    std::string id, app;
    size_t node;
    bool ebpf;
    std::string netns = {}, ip = {};
  };
  std::vector<PolicedPod> policed = {{"pc0", "client", 3, false}, {"ps0", "server", 3, false},
                                     {"px0", "server", 4, false}, {"pe0", "client", 3, true},
                                     {"pf0", "server", 3, true},  {"py0", "server", 4, true}};
  for (auto& p : policed) {
    p.netns = w->name() + "-" + p.id;
    if (auto s = ns.Create(p.netns); !s.ok()) return Fail("pod namespace", s.error());
    if (auto s = (*api)->AddPod(p.id, p.app, policed_names[p.node - 3]); !s.ok()) return Fail("policed pod", s.error());
    const std::string sock = nodes[p.node]->socket();
    auto a = ExecPlugin(terway_bin, terway_cni_path, "ADD", p.id, p.netns, p.id, nodes[p.node]->netns(),
                        p.ebpf ? ebpf_conf_for(sock) : veth_conf_for(sock));
    if (a.result.exit_code != 0) return Fail("terway ADD of " + p.id, Error{ErrorCode::kInternal, a.result.output});
    auto ip = FirstIp(a.result.output);
    if (!ip.ok()) return Fail("terway result", ip.error());
    p.ip = *ip;
    if (auto s = (*api)->SetPodIp(p.id, p.ip); !s.ok()) return Fail("policed pod status", s.error());
  }
  // Enforced when, from each measured client to its server, a port no
  // policy allows is dropped (a connect times out) while an allowed one
  // (5201, no listener yet) is refused at once: the server's node knows the
  // client's address (across nodes, from its status.podIP).
  auto connect_exit = [&](const PolicedPod& client, const PolicedPod& server, int port) {
    return RunCommand({"/usr/bin/timeout", "1", "/bin/bash", "-c",
                       fmt::format("exec 3<>/dev/tcp/{}/{}", server.ip, port)},
                      client.netns, std::chrono::seconds(5))
        .exit_code;
  };
  auto policed_as_measured = [&](const PolicedPod& client, const PolicedPod& server) {
    return connect_exit(client, server, 5999) == 124 && connect_exit(client, server, 5201) != 124;
  };
  std::cerr << "bench: waiting for the policies to be enforced on the policed servers\n";
  bool enforced = WaitFor(
      [&] {
        return policed_as_measured(policed[0], policed[1]) && policed_as_measured(policed[0], policed[2]) &&
               policed_as_measured(policed[3], policed[4]) && policed_as_measured(policed[3], policed[5]);
      },
      std::chrono::seconds(120), std::chrono::milliseconds(500));
  if (!enforced) {
    return Fail("policy enforcement",
                Error{ErrorCode::kTimeout, "after 120 s the policed servers still accept TCP 5999 or drop the allowed 5201; "
                                               "terwayd logs: " +
                                               nodes[3]->log_path() + ", " + nodes[4]->log_path()});
  }

  const std::string va = w->name() + "-va", vb = w->name() + "-vb";
  if (auto s = ns.Create(va); !s.ok()) return Fail("veth namespace", s.error());
  if (auto s = ns.Create(vb); !s.ok()) return Fail("veth namespace", s.error());
  for (const auto& cmd : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {va, {"/usr/sbin/ip", "link", "add", "bench0", "type", "veth", "peer", "name", "bench1", "netns", vb}},
           {va, {"/usr/sbin/ip", "addr", "add", "198.19.0.1/30", "dev", "bench0"}},
           {va, {"/usr/sbin/ip", "link", "set", "bench0", "up"}},
           {vb, {"/usr/sbin/ip", "addr", "add", "198.19.0.2/30", "dev", "bench1"}},
           {vb, {"/usr/sbin/ip", "link", "set", "bench1", "up"}}}) {
    auto r = RunCommand(cmd.second, cmd.first);
    if (r.exit_code != 0) return Fail("bare veth pair", Error{ErrorCode::kInternal, r.output});
  }

  // An eBPF path is measured only while its programs handle its packets:
  // the counters of `watch` (by node) on `expect` must rise during the
  // round, else the round is invalid and its samples are dropped. Not
  // policed: the fast paths. Policed (the server is; the client is selected
  // by no policy): the server's packets leave through the stack
  // (pod_to_stack), and across nodes those arriving at its node's ENI too
  // (eni_to_stack), while the client's node still takes its fast path.
  struct Path {
    std::string name, server_ns, client_ns, server_ip;
    std::vector<size_t> watch = {};
    std::vector<std::string> expect = {};
    std::vector<double> gbps = {};
    std::vector<double> conn_per_s = {};
    std::vector<double> rr_per_s = {};
    int invalid_rounds = 0;
    nlohmann::json counters = nlohmann::json::array();
    // The fabric reference: server_ns and client_ns are node namespaces,
    // and their eth0 counters decide whether a round crossed the VPC.
    bool fabric = false;
    bool checked() const { return fabric || !watch.empty(); }
  };
  const std::vector<std::string> fast_same = {"pod_to_pod"}, fast_cross = {"pod_to_eni", "eni_to_pod"},
                                 stack_same = {"pod_to_stack"}, stack_cross = {"pod_to_stack", "eni_to_stack"};
  // The fabric reference runs between the nodes of the unpoliced
  // cross-node paths (client node 0, server node 1), on their own
  // addresses: traffic between two namespaces of this world only.
  auto fabric_ip = PrimaryEniIpv4(nodes[1]->netns());
  if (!fabric_ip.ok()) return Fail("node 1's primary ENI address", fabric_ip.error());
  {
    // The node's route to the other node must be eth0 (the VPC), not a
    // link some agent added: else the path would not measure the fabric.
    auto r = RunCommand({"/usr/sbin/ip", "-j", "route", "get", *fabric_ip}, nodes[0]->netns());
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (r.exit_code != 0 || !j.is_array() || j.empty() || j[0].value("dev", "") != "eth0") {
      return Fail("the fabric path", Error{ErrorCode::kInternal,
                                           fmt::format("node 0 does not route {} (node 1's eth0) through its eth0: {}",
                                                       *fabric_ip, r.output)});
    }
  }
  std::vector<Path> paths = {
      {"bare_veth", vb, va, "198.19.0.2"},
      {"fabric_node_to_node", nodes[1]->netns(), nodes[0]->netns(), *fabric_ip},
      {"terway_same_node", terway_pods[1], terway_pods[0], t_ip1},
      {"ebpf_same_node", ebpf_pods[1], ebpf_pods[0], e_ip1, {0}, fast_same},
      {"terway_cross_node", cross_pod, terway_pods[0], *x_ip},
      {"ebpf_cross_node", cross_ebpf_pod, ebpf_pods[0], *y_ip, {0, 1}, fast_cross},
      {"terway_policed_same_node", policed[1].netns, policed[0].netns, policed[1].ip},
      {"ebpf_policed_same_node", policed[4].netns, policed[3].netns, policed[4].ip, {3}, stack_same},
      {"terway_policed_cross_node", policed[2].netns, policed[0].netns, policed[2].ip},
      {"ebpf_policed_cross_node", policed[5].netns, policed[3].netns, policed[5].ip, {3, 4}, stack_cross},
      {"ptp_same_node", ref_pods[1], ref_pods[0], r_ip1},
  };
  // Where the references sit in `paths` (the ratios divide by them).
  constexpr size_t kBareVeth = 0, kFabric = 1;
  paths[kFabric].fabric = true;
  // Sum over the watched nodes of the expected paths' counters.
  auto ebpf_count = [&](const Path& p) -> Result<std::map<std::string, double>> {
    std::map<std::string, double> sum;
    for (size_t n : p.watch) {
      TERWAY_ASSIGN_OR_RETURN(auto m, nodes[n]->Metrics());
      for (const auto& [k, v] : EbpfPackets(m)) sum[k] += v;
    }
    return sum;
  };
  std::cerr << "bench: iperf3, connection and request rate, " << rounds << " rounds of " << iperf_seconds
            << " s per path and figure, paths interleaved\n";
  for (int round = 0; round < rounds; round++) {
    for (auto& p : paths) {
      std::map<std::string, double> before;
      if (!p.watch.empty()) {
        auto c = ebpf_count(p);
        if (!c.ok()) return Fail("eBPF counters before " + p.name, c.error());
        before = *c;
      }
      LinkCounters client_eth0, server_eth0;
      if (p.fabric) {
        auto c = ReadLinkCounters(p.client_ns, "eth0");
        auto s = ReadLinkCounters(p.server_ns, "eth0");
        if (!c.ok()) return Fail("eth0 counters before " + p.name, c.error());
        if (!s.ok()) return Fail("eth0 counters before " + p.name, s.error());
        client_eth0 = *c;
        server_eth0 = *s;
      }
      auto bps = Iperf(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!bps.ok()) return Fail("iperf3 " + p.name, bps.error());
      auto crr = ConnectRate(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!crr.ok()) return Fail("connection rate " + p.name, crr.error());
      auto rr = RequestRate(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!rr.ok()) return Fail("request rate " + p.name, rr.error());
      if (p.fabric) {
        auto c = ReadLinkCounters(p.client_ns, "eth0");
        auto s = ReadLinkCounters(p.server_ns, "eth0");
        if (!c.ok()) return Fail("eth0 counters after " + p.name, c.error());
        if (!s.ok()) return Fail("eth0 counters after " + p.name, s.error());
        LinkCounters cd, sd;
        cd.tx = {c->tx.bytes - client_eth0.tx.bytes, c->tx.packets - client_eth0.tx.packets};
        sd.rx = {s->rx.bytes - server_eth0.rx.bytes, s->rx.packets - server_eth0.rx.packets};
        const double iperf_bytes = *bps / 8 * iperf_seconds;
        const bool valid = FabricRoundValid(cd, sd, iperf_bytes, 3 * iperf_seconds);
        nlohmann::json delta = {{"round", round},
                                {"valid", valid},
                                {"client_eth0_tx_packets", cd.tx.packets},
                                {"server_eth0_rx_packets", sd.rx.packets},
                                {"server_eth0_rx_bytes", sd.rx.bytes},
                                {"iperf3_received_bytes", iperf_bytes}};
        p.counters.push_back(delta);
        if (!valid) {
          std::cerr << "bench: round " << round << " of " << p.name << " is INVALID: the nodes' eth0 counters "
                    << delta.dump() << " do not show the traffic crossing the VPC; its samples are dropped\n";
          p.invalid_rounds++;
          continue;
        }
      }
      if (!p.watch.empty()) {
        auto after = ebpf_count(p);
        if (!after.ok()) return Fail("eBPF counters after " + p.name, after.error());
        nlohmann::json delta;
        bool valid = true;
        for (const auto& [k, v] : *after) delta[k] = v - before[k];
        // Every expected path carried traffic: at least one packet per
        // millisecond of measurement (iperf3 alone sends far more).
        for (const auto& k : p.expect) valid = valid && (*after)[k] - before[k] >= 3.0 * iperf_seconds * 1000;
        delta["round"] = round;
        delta["valid"] = valid;
        p.counters.push_back(delta);
        if (!valid) {
          std::cerr << "bench: round " << round << " of " << p.name << " is INVALID: the eBPF counters "
                    << delta.dump() << " did not rise on " << fmt::format("{}", fmt::join(p.expect, "+"))
                    << "; its samples are dropped\n";
          p.invalid_rounds++;
          continue;
        }
      }
      p.gbps.push_back(*bps / 1e9);
      p.conn_per_s.push_back(*crr);
      p.rr_per_s.push_back(*rr);
    }
  }
  // Medians, spread (min..max) and ratios to the bare veth pair (and, for
  // the cross-node paths, to fabric_node_to_node); a path with no valid round
  // has no figure (null), never a number.
  auto figures = [&](auto samples_of, const char* unit) {
    nlohmann::json out;
    double bare_med = Percentile(samples_of(paths[kBareVeth]), 0.5);
    const std::vector<double>& fabric_samples = samples_of(paths[kFabric]);
    for (const auto& p : paths) {
      const std::vector<double>& v = samples_of(p);
      nlohmann::json f;
      if (v.empty()) {
        f[std::string(unit) + "_median"] = nullptr;
        f["ratio_to_bare_veth"] = nullptr;
      } else {
        double med = Percentile(v, 0.5);
        f[std::string(unit) + "_median"] = med;
        f["min"] = *std::min_element(v.begin(), v.end());
        f["max"] = *std::max_element(v.begin(), v.end());
        f["ratio_to_bare_veth"] = bare_med > 0 ? med / bare_med : 0;
      }
      if (p.name.find("cross_node") != std::string::npos) {
        const double fabric_med = Percentile(fabric_samples, 0.5);
        f["ratio_to_fabric_node_to_node"] = v.empty() || fabric_samples.empty() || fabric_med <= 0
                                                ? nlohmann::json(nullptr)
                                                : nlohmann::json(Percentile(v, 0.5) / fabric_med);
      }
      f[std::string("samples_") + unit] = v;
      if (p.checked()) f["invalid_rounds"] = p.invalid_rounds;
      out[p.name] = f;
    }
    return out;
  };
  results["tcp_throughput"] = figures([](const Path& p) -> const std::vector<double>& { return p.gbps; }, "gbps");
  results["tcp_connect_rate"] =
      figures([](const Path& p) -> const std::vector<double>& { return p.conn_per_s; }, "per_s");
  results["tcp_request_rate"] = figures([](const Path& p) -> const std::vector<double>& { return p.rr_per_s; }, "per_s");
  nlohmann::json counters;
  for (const auto& p : paths) {
    if (!p.watch.empty()) counters[p.name] = {{"expected_paths", p.expect}, {"rounds", p.counters}};
  }
  results["ebpf_counters"] = counters;
  results["fabric_counters"] = {
      {paths[kFabric].name,
       {{"what", "node 0 (client) to node 1 (server), host network, over their primary ENIs (eth0), no CNI: per "
                 "round the packets node 0's eth0 sent, node 1's eth0 received, and its bytes next to the payload "
                 "iperf3 counted"},
        {"server_ip", paths[kFabric].server_ip},
        {"rounds", paths[kFabric].counters}}}};
  results["rounds"] = rounds;
  results["policed"] = {
      {"policies", (*api)->policies()},
      {"selecting_measured_servers", 11},
      {"what",
       "989 synthetic NetworkPolicies of policy_bench's cluster (policy_cluster.h: namespaces ns0..ns49, each "
       "selecting an app=a* label of 1,000 synthetic pods of another node, ingress from a pod or namespace+tier "
       "selector on one TCP port, every fourth also an egress ipBlock rule) plus 11 in namespace bench selecting "
       "app=server (the measured servers, same node and cross node, veth and eBPF): server-0..8 allow other "
       "labels on other ports, server-9 allows app=client (the measured clients) on TCP 5201, 5301 and 5401 "
       "(iperf3, the connection rate, the request rate), grant allows access=granted on UDP 7000. The clients are selected by none."}};

  // Bandwidth accuracy: a pod on node 0 limited through runtimeConfig (as
  // containerd passes kubernetes.io/*-bandwidth: rates in bits/s, the burst
  // math.MaxInt32), iperf3 into and out of it against pod 1.
  nlohmann::json accuracy = nlohmann::json::array();
  std::cerr << "bench: bandwidth accuracy at 10, 50 and 200 Mbit/s\n";
  for (int mbit : {10, 50, 200}) {
    const std::string bp = fmt::format("{}-bw{}", w->name(), mbit);
    if (auto st = ns.Create(bp); !st.ok()) return Fail("pod namespace", st.error());
    const uint64_t rate = static_cast<uint64_t>(mbit) * 1'000'000;
    nlohmann::json conf = nlohmann::json::parse(terway_conf);
    conf["capabilities"] = {{"bandwidth", true}};
    conf["runtimeConfig"]["bandwidth"] = {{"ingressRate", rate}, {"ingressBurst", 2147483647},
                                          {"egressRate", rate}, {"egressBurst", 2147483647}};
    const std::string id = fmt::format("bw{}", mbit);
    auto ba = ExecPlugin(terway_bin, terway_cni_path, "ADD", id, bp, id, nodes[0]->netns(), conf.dump());
    if (ba.result.exit_code != 0) return Fail("terway ADD with a limit", Error{ErrorCode::kInternal, ba.result.output});
    auto into = Iperf(terway_pods[1], bp, t_ip1, iperf_seconds, /*reverse=*/true, /*omit=*/1);
    if (!into.ok()) return Fail("iperf3 into the limited pod", into.error());
    auto out = Iperf(terway_pods[1], bp, t_ip1, iperf_seconds, /*reverse=*/false, /*omit=*/1);
    if (!out.ok()) return Fail("iperf3 out of the limited pod", out.error());
    accuracy.push_back({{"limit_mbit", mbit},
                        {"into_pod_mbit", *into / 1e6},
                        {"out_of_pod_mbit", *out / 1e6},
                        {"into_ratio", *into / static_cast<double>(rate)},
                        {"out_ratio", *out / static_cast<double>(rate)}});
    auto bd = ExecPlugin(terway_bin, terway_cni_path, "DEL", id, bp, id, nodes[0]->netns(), conf.dump());
    if (bd.result.exit_code != 0) return Fail("terway DEL with a limit", Error{ErrorCode::kInternal, bd.result.output});
  }
  results["bandwidth_accuracy"] = accuracy;

  // DEL interleaved the same way, then DEL again (idempotence costs too).
  auto xd = ExecPlugin(terway_bin, terway_cni_path, "DEL", "x0", cross_pod, "x0", nodes[1]->netns(), cross_conf);
  if (xd.result.exit_code != 0) return Fail("terway DEL on node 1", Error{ErrorCode::kInternal, xd.result.output});
  auto yd = ExecPlugin(terway_bin, terway_cni_path, "DEL", "y0", cross_ebpf_pod, "y0", nodes[1]->netns(),
                       cross_ebpf_conf);
  if (yd.result.exit_code != 0) return Fail("terway eBPF DEL on node 1", Error{ErrorCode::kInternal, yd.result.output});
  for (const auto& p : policed) {
    const std::string sock = nodes[p.node]->socket();
    auto d = ExecPlugin(terway_bin, terway_cni_path, "DEL", p.id, p.netns, p.id, nodes[p.node]->netns(),
                        p.ebpf ? ebpf_conf_for(sock) : veth_conf_for(sock));
    if (d.result.exit_code != 0) return Fail("terway DEL of " + p.id, Error{ErrorCode::kInternal, d.result.output});
  }
  for (int i = 0; i < pods; i++) {
    auto td = ExecPlugin(terway_bin, terway_cni_path, "DEL", "t" + std::to_string(i), terway_pods[i],
                         "t" + std::to_string(i), nodes[0]->netns(), terway_conf);
    if (td.result.exit_code != 0) return Fail("terway DEL", Error{ErrorCode::kInternal, td.result.output});
    auto ed = ExecPlugin(terway_bin, terway_cni_path, "DEL", "e" + std::to_string(i), ebpf_pods[i],
                         "e" + std::to_string(i), nodes[0]->netns(), ebpf_conf);
    if (ed.result.exit_code != 0) return Fail("terway eBPF DEL", Error{ErrorCode::kInternal, ed.result.output});
    e_del.push_back(ed.ms);
    auto rd = ExecPlugin(ptp_bin, ref_dir, "DEL", "r" + std::to_string(i), ref_pods[i], "r" + std::to_string(i),
                         ref_node, ptp_conf);
    if (rd.result.exit_code != 0) return Fail("ptp DEL", Error{ErrorCode::kInternal, rd.result.output});
    t_del.push_back(td.ms);
    r_del.push_back(rd.ms);
  }
  // The daemon's own view of the same ADDs and DELs: time spent inside terwayd (pool,
  // datapath, state commit) versus the whole exec.
  if (auto m = nodes[0]->Metrics(); m.ok()) {
    nlohmann::json daemon_side;
    for (const std::string op : {"allocate", "release"}) {
      auto value = [&](const std::string& series) -> double {
        std::string key = series + "{op=\"" + op + "\"} ";
        auto pos = m->find(key);
        return pos == std::string::npos ? 0 : std::atof(m->c_str() + pos + key.size());
      };
      double sum = value("terway_cni_request_duration_seconds_sum"),
             count = value("terway_cni_request_duration_seconds_count");
      if (count > 0) daemon_side[op + "_mean_ms"] = sum / count * 1000;
    }
    results["terwayd_side"] = daemon_side;
  }

  // Cold pool on node 2: each ADD waits for AssignPrivateIpAddresses (the
  // first also for CreateNetworkInterface and the asynchronous attach).
  const int cold_pods = std::min(pods, 20);
  const std::string cold_conf = nlohmann::json{{"cniVersion", "1.0.0"},
                                               {"name", "terway"},
                                               {"type", "terway"},
                                               {"daemon_socket", nodes[2]->socket()}}
                                    .dump();
  std::vector<double> cold_add, cold_del;
  int64_t calls_before = TotalApiCalls(w);
  for (int i = 0; i < cold_pods; i++) {
    std::string cp = fmt::format("{}-k{}", w->name(), i);
    if (auto st = ns.Create(cp); !st.ok()) return Fail("pod namespace", st.error());
    auto ca = ExecPlugin(terway_bin, terway_cni_path, "ADD", "k" + std::to_string(i), cp, "k" + std::to_string(i),
                         nodes[2]->netns(), cold_conf);
    if (ca.result.exit_code != 0) return Fail("terway ADD, cold pool", Error{ErrorCode::kInternal, ca.result.output});
    cold_add.push_back(ca.ms);
  }
  int64_t cold_calls = TotalApiCalls(w) - calls_before;
  for (int i = 0; i < cold_pods; i++) {
    auto cd = ExecPlugin(terway_bin, terway_cni_path, "DEL", "k" + std::to_string(i), fmt::format("{}-k{}", w->name(), i),
                         "k" + std::to_string(i), nodes[2]->netns(), cold_conf);
    if (cd.result.exit_code != 0) return Fail("terway DEL, cold pool", Error{ErrorCode::kInternal, cd.result.output});
    cold_del.push_back(cd.ms);
  }

  // Churn: 4 workers, each ADDs then DELs a pod in its own namespace as fast
  // as the node takes it, for a fixed time; terway (warm) and ptp alike.
  auto churn = [&](bool terway, int workers, double seconds) -> Result<double> {
    std::vector<std::string> names;
    for (int k = 0; k < workers; k++) {
      names.push_back(fmt::format("{}-{}{}", w->name(), terway ? "ct" : "cr", k));
      TERWAY_TRY(ns.Create(names.back()));
    }
    std::atomic<long> cycles{0};
    std::mutex mu;
    std::string failure;
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> ts;
    for (int k = 0; k < workers; k++) {
      ts.emplace_back([&, k] {
        for (int n = 0; std::chrono::steady_clock::now() < end; n++) {
          std::string id = fmt::format("{}{}-{}", terway ? "ct" : "cr", k, n);
          for (const char* cmd : {"ADD", "DEL"}) {
            auto c = terway ? ExecPlugin(terway_bin, terway_cni_path, cmd, id, names[k], id, nodes[0]->netns(),
                                         terway_conf)
                            : ExecPlugin(ptp_bin, ref_dir, cmd, id, names[k], id, ref_node, ptp_conf);
            if (c.result.exit_code != 0) {
              std::lock_guard<std::mutex> l(mu);
              failure = std::string(cmd) + " " + id + ": " + c.result.output;
              return;
            }
          }
          cycles++;
        }
      });
    }
    for (auto& t : ts) t.join();
    if (!failure.empty()) return Errorf(ErrorCode::kInternal, "churn: {}", failure);
    return static_cast<double>(cycles.load()) / seconds;
  };
  std::cerr << "bench: pod churn, 4 workers, 10 s per plugin\n";
  auto churn_t = churn(true, 4, 10);
  if (!churn_t.ok()) return Fail("terway churn", churn_t.error());
  auto churn_r = churn(false, 4, 10);
  if (!churn_r.ok()) return Fail("ptp churn", churn_r.error());
  results["pod_churn_per_s"] = {{"terway", *churn_t}, {"ptp_host_local", *churn_r},
                                {"ratio_terway_to_ptp", *churn_t / *churn_r}, {"workers", 4}, {"seconds", 10}};

  results["cni_latency_ms"] = {
      {"terway", {{"add", Summary(t_add)}, {"del", Summary(t_del)}}},
      {"ptp_host_local", {{"add", Summary(r_add)}, {"del", Summary(r_del)}}},
      {"terway_ebpf", {{"add", Summary(e_add)}, {"del", Summary(e_del)}}},
      {"add_p50_ratio_ebpf_to_veth", Percentile(e_add, 0.5) / Percentile(t_add, 0.5)},
      {"add_p99_ratio_ebpf_to_veth", Percentile(e_add, 0.99) / Percentile(t_add, 0.99)},
      {"terway_cold_pool", {{"add", Summary(cold_add)},
                            {"del", Summary(cold_del)},
                            {"api_calls_per_pod", static_cast<double>(cold_calls) / cold_pods}}},
      // host-local has no pool: its ADD is the same warm or cold.
      {"cold_add_p50_ratio_terway_to_ptp", Percentile(cold_add, 0.5) / Percentile(r_add, 0.5)},
      {"add_p50_ratio_terway_to_ptp", Percentile(t_add, 0.5) / Percentile(r_add, 0.5)},
      {"del_p50_ratio_terway_to_ptp", Percentile(t_del, 0.5) / Percentile(r_del, 0.5)},
  };

  std::string text = results.dump(2);
  if (!out_path.empty()) std::ofstream(out_path) << text << "\n";
  std::cout << text << "\n";
  return 0;
}
