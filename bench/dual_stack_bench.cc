// Dual-stack CNI ADD next to IPv4-only (issue 15's goal: no more than 1.3x).
//
// One world with an IPv6 VPC; two terwayds, both warm (every measured ADD
// finds an idle address, or an idle pair): node 0 with eni_conf ip_stack
// ipv4, node 1 with ip_stack dual. The real `terway` plugin is exec'd as a
// runtime execs it, ADDs interleaved (ipv4, dual, ipv4, ...) so the
// machine's noise falls on both alike; then DELs the same way. Each dual
// pod's result is checked to carry an IPv6 (a silent IPv4-only ADD would
// flatter the ratio).
//
//   sudo build/bench/dual_stack_bench --out bench/results/dual_stack.json --pods 100
#include <unistd.h>

#include <fstream>
#include <iostream>

#include "bench_util.h"
#include "cni_exec.h"

using terway::Error;
using terway::ErrorCode;
using terway::testing::BinaryDir;
using terway::testing::BinaryPath;
using terway::testing::TerwaydNode;
using terway::testing::TerwaydSpec;
using terway::testing::VpcsimWorld;
using terway::testing::WorldSpec;
using terway::bench::ExecPlugin;
using terway::bench::Namespaces;
using terway::bench::Percentile;
using terway::bench::Summary;

namespace {

int Fail(const std::string& what, const Error& e) {
  std::cerr << "bench: " << what << ": " << e.ToString() << "\n";
  return 1;
}

// The IPv6 of an ADD result ("" when it has none).
std::string Ipv6Of(const std::string& add_output) {
  auto j = nlohmann::json::parse(add_output, nullptr, false);
  if (j.is_discarded() || !j.contains("ips")) return "";
  for (const auto& ip : j["ips"]) {
    std::string a = ip.value("address", "");
    if (a.find(':') != std::string::npos) return a.substr(0, a.find('/'));
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int pods = 100;
  for (int i = 1; i + 1 < argc; i++) {
    std::string a = argv[i];
    if (a == "--out") out_path = argv[i + 1];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
  }
  if (pods < 2 || pods > 400) {
    std::cerr << "bench: --pods must be 2..400\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "bench: needs root (vpcsim's fabric and the pods are network namespaces)\n";
    return 1;
  }
  if (!getenv("TERWAY_BINARY_DIR")) setenv("TERWAY_BINARY_DIR", TERWAY_BUILD_DIR, 1);

  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.xlarge";  // 30 IPv4 and 30 IPv6 per ENI
  ws.instances = 2;
  ws.vswitch_cidr = "198.18.0.0/22";
  ws.vpc_ipv6_cidr = "fd00:b6::/56";
  ws.vswitch_ipv6_cidr = "fd00:b6:0:1::/64";
  auto world = VpcsimWorld::Start(ws);
  if (!world.ok()) return Fail("starting vpcsim", world.error());
  VpcsimWorld* w = world->get();
  std::vector<std::unique_ptr<TerwaydNode>> nodes;
  for (int i = 0; i < 2; i++) {
    TerwaydSpec ts;
    ts.instance_id = w->instances()[i];
    ts.datapath = "shared";
    ts.min_pool_size = pods + 5;
    ts.max_pool_size = pods + 15;
    ts.extra_conf = i == 0 ? "\"ip_stack\": \"ipv4\"" : "\"ip_stack\": \"dual\"";
    auto n = TerwaydNode::Start(w, ts);
    if (!n.ok()) return Fail("starting terwayd", n.error());
    if (auto s = (*n)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    nodes.push_back(std::move(n).value());
  }
  // Warm: both pools hold an address (a pair on the dual node) for every
  // measured pod before the first ADD.
  std::cerr << "bench: waiting for both pools to hold " << pods << " idle addresses\n";
  for (auto& n : nodes) {
    const std::string key = "terway_pool_ips{state=\"idle\"} ";
    bool warm = terway::testing::WaitFor(
        [&] {
          auto m = n->Metrics();
          if (!m.ok()) return false;
          auto at = m->find(key);
          return at != std::string::npos && std::atoi(m->c_str() + at + key.size()) >= pods;
        },
        std::chrono::seconds(180), std::chrono::milliseconds(250));
    if (!warm) return Fail("warming the pools", Error{ErrorCode::kTimeout, "a node never held enough idle addresses"});
  }

  Namespaces ns;
  const std::string plugin = BinaryPath("terway");
  const std::string cni_path = BinaryDir() + "/cmd/terway";
  auto conf = [&](int node) {
    return nlohmann::json{{"cniVersion", "1.0.0"}, {"name", "terway"}, {"type", "terway"},
                          {"daemon_socket", nodes[node]->socket()}}
        .dump();
  };
  std::vector<double> add[2], del[2];
  std::cerr << "bench: " << pods << " pods each on an ipv4 and a dual-stack node, ADDs interleaved\n";
  for (int i = 0; i < pods; i++) {
    for (int node = 0; node < 2; node++) {
      const std::string id = fmt::format("{}{}", node == 0 ? "v4-" : "ds-", i);
      const std::string pod_ns = fmt::format("{}-{}", w->name(), id);
      if (auto s = ns.Create(pod_ns); !s.ok()) return Fail("pod namespace", s.error());
      auto a = ExecPlugin(plugin, cni_path, "ADD", id, pod_ns, id, nodes[node]->netns(), conf(node));
      if (a.result.exit_code != 0) return Fail("ADD of " + id, Error{ErrorCode::kInternal, a.result.output});
      if (node == 1 && Ipv6Of(a.result.output).empty()) {
        return Fail("ADD of " + id, Error{ErrorCode::kInternal, "a dual-stack ADD without IPv6: " + a.result.output});
      }
      add[node].push_back(a.ms);
    }
  }
  for (int i = 0; i < pods; i++) {
    for (int node = 0; node < 2; node++) {
      const std::string id = fmt::format("{}{}", node == 0 ? "v4-" : "ds-", i);
      auto d = ExecPlugin(plugin, cni_path, "DEL", id, fmt::format("{}-{}", w->name(), id), id, nodes[node]->netns(),
                          conf(node));
      if (d.result.exit_code != 0) return Fail("DEL of " + id, Error{ErrorCode::kInternal, d.result.output});
      del[node].push_back(d.ms);
    }
  }
  nlohmann::json r;
  r["command"] = fmt::format("sudo build/bench/dual_stack_bench --out bench/results/dual_stack.json --pods {}", pods);
  r["ipv4"] = {{"add", Summary(add[0])}, {"del", Summary(del[0])}};
  r["dual"] = {{"add", Summary(add[1])}, {"del", Summary(del[1])}};
  r["add_p50_ratio"] = Percentile(add[1], 0.5) / Percentile(add[0], 0.5);
  r["add_p99_ratio"] = Percentile(add[1], 0.99) / Percentile(add[0], 0.99);
  std::cout << r.dump(2) << "\n";
  if (!out_path.empty()) {
    std::ofstream f(out_path);
    f << r.dump(2) << "\n";
    if (!f) return Fail("writing " + out_path, Error{ErrorCode::kInternal, "write failed"});
  }
  return 0;
}
