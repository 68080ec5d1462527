// CNI and datapath benchmark, side by side with the reference plugins:
//   - CNI ADD and DEL latency (p50/p99) through the real `terway` binary with
//     a warm pool, and through Debian's reference `ptp` + `host-local`
//     plugins, on the same machine in the same run, calls interleaved so that
//     both see the same noise;
//   - pod-to-pod TCP throughput (iperf3), connection rate and request rate
//     (one connection, 1-byte ping-pong) same node and cross node for terway
//     pods, same node for ptp pods, each as a ratio to a plain veth pair
//     between two namespaces measured in the same run;
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
#include "e2e/harness/world.h"
#include "netlink/netns.h"
#include "test_util.h"

using namespace terway;
using namespace terway::testing;
using terway::bench::ConnectRate;
using terway::bench::Iperf;
using terway::bench::Namespaces;
using terway::bench::Percentile;
using terway::bench::RequestRate;
using terway::bench::Summary;
using terway::bench::TotalApiCalls;

namespace {

using Clock = std::chrono::steady_clock;

struct CniCall {
  double ms = 0;
  CommandResult result;
};

// One plugin exec as a runtime makes it: fork, exec with the CNI
// environment, config on stdin, result read from stdout until EOF, blocking
// wait. The child enters the node's namespace first (the runtime lives
// there); the namespace is opened before the clock starts.
CniCall ExecPlugin(const std::string& plugin, const std::string& cni_path, const std::string& command,
                   const std::string& container_id, const std::string& pod_netns, const std::string& pod_name,
                   const std::string& node_netns, const std::string& conf) {
  CniCall c;
  int node_fd = open(("/var/run/netns/" + node_netns).c_str(), O_RDONLY | O_CLOEXEC);
  int in[2], out[2];
  if (node_fd < 0 || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    c.result.output = fmt::format("bench: cannot prepare the exec of {}: {}", plugin, strerror(errno));
    if (node_fd >= 0) close(node_fd);
    return c;
  }
  std::vector<std::string> env = {"CNI_COMMAND=" + command,
                                  "CNI_CONTAINERID=" + container_id,
                                  "CNI_NETNS=/var/run/netns/" + pod_netns,
                                  "CNI_IFNAME=eth0",
                                  "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=" + pod_name,
                                  "CNI_PATH=" + cni_path,
                                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string path = plugin;
  char* argv[] = {path.data(), nullptr};
  auto start = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    if (setns(node_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  ssize_t ignored = write(in[1], conf.data(), conf.size());
  (void)ignored;
  close(in[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) c.result.output.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  c.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  close(node_fd);
  c.result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return c;
}

Result<std::string> FirstIp(const std::string& add_output) {
  auto j = nlohmann::json::parse(add_output, nullptr, false);
  if (j.is_discarded() || !j.contains("ips") || j["ips"].empty())
    return Errorf(ErrorCode::kInternal, "no IP in the ADD result: {}", add_output);
  std::string addr = j["ips"][0]["address"];
  return addr.substr(0, addr.find('/'));
}

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

  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.xlarge";  // (18 - 1) x 30 = 510 pods per node
  ws.instances = 3;  // node 0 warm, node 1 the cross-node peer, node 2 cold
  ws.vswitch_cidr = "198.18.0.0/22";
  auto world = VpcsimWorld::Start(ws);
  if (!world.ok()) return Fail("starting vpcsim", world.error());
  VpcsimWorld* w = world->get();
  std::vector<std::unique_ptr<TerwaydNode>> nodes;
  for (int i = 0; i < 3; i++) {
    TerwaydSpec ts;
    ts.instance_id = w->instances()[i];
    ts.datapath = "shared";
    // Node 0 warm: every measured ADD finds an idle address. Node 2 cold:
    // no idle address is ever kept, every ADD waits for the cloud.
    ts.min_pool_size = i == 0 ? pods + 5 : i == 1 ? 2 : 0;
    ts.max_pool_size = i == 2 ? 0 : ts.min_pool_size + 10;
    auto n = TerwaydNode::Start(w, ts);
    if (!n.ok()) return Fail("starting terwayd", n.error());
    if (auto s = (*n)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    nodes.push_back(std::move(n).value());
  }
  std::cerr << "bench: waiting for node 0's pool to hold " << pods << " idle addresses\n";
  bool warm = WaitFor(
      [&] {
        auto m = nodes[0]->Metrics();
        if (!m.ok()) return false;
        auto pos = m->find("terway_pool_ips{state=\"idle\"} ");
        if (pos == std::string::npos) return false;
        return std::atoi(m->c_str() + pos + std::string("terway_pool_ips{state=\"idle\"} ").size()) >= pods;
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
  const std::string terway_bin = BinaryPath("terway");
  const std::string terway_cni_path = BinaryDir() + "/cmd/terway";
  const std::string ptp_bin = ref_dir + "/ptp";

  std::vector<std::string> terway_pods, ref_pods;
  std::vector<double> t_add, t_del, r_add, r_del;
  std::string t_ip0, t_ip1, r_ip0, r_ip1;
  std::cerr << "bench: " << pods << " pods each for terway and ptp+host-local, ADD interleaved\n";
  for (int i = 0; i < pods; i++) {
    std::string tp = fmt::format("{}-t{}", w->name(), i), rp = fmt::format("{}-r{}", w->name(), i);
    if (auto s = ns.Create(tp); !s.ok()) return Fail("pod namespace", s.error());
    if (auto s = ns.Create(rp); !s.ok()) return Fail("pod namespace", s.error());
    auto ta = ExecPlugin(terway_bin, terway_cni_path, "ADD", "t" + std::to_string(i), tp, "t" + std::to_string(i),
                         nodes[0]->netns(), terway_conf);
    if (ta.result.exit_code != 0) return Fail("terway ADD", Error{ErrorCode::kInternal, ta.result.output});
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

  struct Path {
    std::string name, server_ns, client_ns, server_ip;
    std::vector<double> gbps;
    std::vector<double> conn_per_s = {};
    std::vector<double> rr_per_s = {};
  };
  std::vector<Path> paths = {
      {"bare_veth", vb, va, "198.19.0.2", {}},
      {"terway_same_node", terway_pods[1], terway_pods[0], t_ip1, {}},
      {"terway_cross_node", cross_pod, terway_pods[0], *x_ip, {}},
      {"ptp_same_node", ref_pods[1], ref_pods[0], r_ip1, {}},
  };
  std::cerr << "bench: iperf3 and connection rate, " << rounds << " rounds of " << iperf_seconds << " s per path, paths interleaved\n";
  for (int round = 0; round < rounds; round++) {
    for (auto& p : paths) {
      auto bps = Iperf(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!bps.ok()) return Fail("iperf3 " + p.name, bps.error());
      p.gbps.push_back(*bps / 1e9);
      auto crr = ConnectRate(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!crr.ok()) return Fail("connection rate " + p.name, crr.error());
      p.conn_per_s.push_back(*crr);
      auto rr = RequestRate(p.server_ns, p.client_ns, p.server_ip, iperf_seconds);
      if (!rr.ok()) return Fail("request rate " + p.name, rr.error());
      p.rr_per_s.push_back(*rr);
    }
  }
  double bare = Percentile(paths[0].gbps, 0.5);
  nlohmann::json tput;
  for (const auto& p : paths) {
    double med = Percentile(p.gbps, 0.5);
    tput[p.name] = {{"gbps_median", med}, {"samples_gbps", p.gbps}, {"ratio_to_bare_veth", bare > 0 ? med / bare : 0}};
  }
  results["tcp_throughput"] = tput;
  double bare_crr = Percentile(paths[0].conn_per_s, 0.5);
  nlohmann::json crr;
  for (const auto& p : paths) {
    double med = Percentile(p.conn_per_s, 0.5);
    crr[p.name] = {{"per_s_median", med},
                   {"samples_per_s", p.conn_per_s},
                   {"ratio_to_bare_veth", bare_crr > 0 ? med / bare_crr : 0}};
  }
  results["tcp_connect_rate"] = crr;
  double bare_rr = Percentile(paths[0].rr_per_s, 0.5);
  nlohmann::json rrs;
  for (const auto& p : paths) {
    double med = Percentile(p.rr_per_s, 0.5);
    rrs[p.name] = {{"per_s_median", med},
                   {"samples_per_s", p.rr_per_s},
                   {"ratio_to_bare_veth", bare_rr > 0 ? med / bare_rr : 0}};
  }
  results["tcp_request_rate"] = rrs;

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
  for (int i = 0; i < pods; i++) {
    auto td = ExecPlugin(terway_bin, terway_cni_path, "DEL", "t" + std::to_string(i), terway_pods[i],
                         "t" + std::to_string(i), nodes[0]->netns(), terway_conf);
    if (td.result.exit_code != 0) return Fail("terway DEL", Error{ErrorCode::kInternal, td.result.output});
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
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    std::vector<std::thread> ts;
    for (int k = 0; k < workers; k++) {
      ts.emplace_back([&, k] {
        for (int n = 0; Clock::now() < end; n++) {
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
