// terwayd pool benchmark on the emulated cloud, through the real CNI socket:
//   - allocation latency from a warm pool and from an empty pool (p50/p99),
//   - cloud API calls per pod for a burst of 100 concurrent pods,
//   - daemon RSS at rest and with 500 allocations.
// terwayd runs in an instance namespace of a real vpcsim world and reaches the
// API and metadata through the VPC, as on ECS. Results: JSON on stdout (or
// --out FILE) and a markdown table on stderr.
//
//   sudo build/bench/terwayd_pool_bench --out bench/results/terwayd_pool.json
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cni/daemon_client.h"
#include "bench_util.h"
#include "e2e/harness/world.h"

using namespace terway;
using namespace terway::testing;
using namespace terway::bench;
namespace proto = cni::protocol;

namespace {

proto::Request Pod(proto::Op op, const std::string& tag, int i) {
  proto::Request r;
  r.op = op;
  r.container_id = fmt::format("{}-{}", tag, i);
  r.netns = "/var/run/netns/bench";
  r.ifname = "eth0";
  r.pod.namespace_ = "bench";
  r.pod.name = fmt::format("{}-{}", tag, i);
  return r;
}

// One CNI call like the plugin makes it: a fresh connection per request.
Result<double> TimedCall(const std::string& socket, const proto::Request& req) {
  auto start = std::chrono::steady_clock::now();
  auto c = cni::MakeUnixDaemonClient(socket, std::chrono::seconds(120));
  auto r = c->Call(req);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!r.ok()) return std::move(r).error();
  if (!r->ok() && !(req.op == proto::Op::kRelease && r->error->cls == proto::ErrorClass::kNotFound)) {
    return Errorf(ErrorCode::kInternal, "{}: {}", req.container_id, r->error->message);
  }
  return ms;
}

int Fail(const std::string& what, const Error& e) {
  std::cerr << "bench: " << what << ": " << e.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  for (int i = 1; i + 1 < argc; i++) {
    if (std::string(argv[i]) == "--out") out_path = argv[i + 1];
  }
  if (geteuid() != 0) {
    std::cerr << "bench: needs root (vpcsim's fabric is made of network namespaces)\n";
    return 1;
  }
  if (!getenv("TERWAY_BINARY_DIR")) setenv("TERWAY_BINARY_DIR", TERWAY_BUILD_DIR, 1);
  nlohmann::json results;
  results["command"] = "sudo build/bench/terwayd_pool_bench --out bench/results/terwayd_pool.json";

  // ---- latency: warm pool vs empty pool, on two nodes of one world ----
  {
    WorldSpec ws;
    ws.instance_type = "ecs.g7.16xlarge";  // (8 - 1) x 30 = 210 pods
    ws.instances = 2;
    ws.vswitch_cidr = "198.18.0.0/23";
    auto w = VpcsimWorld::Start(ws);
    if (!w.ok()) return Fail("starting vpcsim", w.error());
    TerwaydSpec warm_spec;
    warm_spec.instance_id = (*w)->instances()[0];
    warm_spec.min_pool_size = 20;
    warm_spec.max_pool_size = 40;
    auto warm = TerwaydNode::Start(w->get(), warm_spec);
    if (!warm.ok()) return Fail("starting terwayd", warm.error());
    if (auto s = (*warm)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    // Let the pool fill to min_pool_size before measuring.
    WaitFor([&] {
      auto r = TimedCall((*warm)->socket(), Pod(proto::Op::kAllocate, "probe", 0));
      if (r.ok()) (void)TimedCall((*warm)->socket(), Pod(proto::Op::kRelease, "probe", 0));
      return r.ok();
    }, std::chrono::seconds(60));
    std::this_thread::sleep_for(std::chrono::seconds(3));
    std::vector<double> warm_add, warm_del;
    for (int i = 0; i < 200; i++) {
      auto a = TimedCall((*warm)->socket(), Pod(proto::Op::kAllocate, "warm", i));
      if (!a.ok()) return Fail("warm allocate", a.error());
      warm_add.push_back(*a);
      auto d = TimedCall((*warm)->socket(), Pod(proto::Op::kRelease, "warm", i));
      if (!d.ok()) return Fail("warm release", d.error());
      warm_del.push_back(*d);
    }

    TerwaydSpec cold_spec;
    cold_spec.instance_id = (*w)->instances()[1];
    cold_spec.min_pool_size = 0;
    cold_spec.max_pool_size = 0;
    auto cold = TerwaydNode::Start(w->get(), cold_spec);
    if (!cold.ok()) return Fail("starting terwayd", cold.error());
    if (auto s = (*cold)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    std::vector<double> cold_add;
    int64_t calls_before = TotalApiCalls(w->get());
    for (int i = 0; i < 40; i++) {
      auto a = TimedCall((*cold)->socket(), Pod(proto::Op::kAllocate, "cold", i));
      if (!a.ok()) return Fail("cold allocate", a.error());
      cold_add.push_back(*a);
    }
    int64_t cold_calls = TotalApiCalls(w->get()) - calls_before;
    results["allocate_warm_ms"] = {{"p50", Percentile(warm_add, 0.5)}, {"p99", Percentile(warm_add, 0.99)},
                                   {"n", warm_add.size()}};
    results["release_warm_ms"] = {{"p50", Percentile(warm_del, 0.5)}, {"p99", Percentile(warm_del, 0.99)},
                                  {"n", warm_del.size()}};
    results["allocate_empty_pool_ms"] = {{"p50", Percentile(cold_add, 0.5)},
                                         {"p99", Percentile(cold_add, 0.99)},
                                         {"n", cold_add.size()},
                                         {"api_calls_per_pod", double(cold_calls) / 40.0}};
    results["rss_kib_at_rest"] = (*warm)->RssKib();
  }

  // ---- burst of 100 concurrent pods on a fresh node: API calls per pod ----
  {
    WorldSpec ws;
    ws.instance_type = "ecs.g7.16xlarge";
    ws.vswitch_cidr = "198.18.0.0/23";
    auto w = VpcsimWorld::Start(ws);
    if (!w.ok()) return Fail("starting vpcsim", w.error());
    TerwaydSpec spec;
    spec.instance_id = (*w)->instances()[0];
    spec.min_pool_size = 0;
    spec.max_pool_size = 5;
    auto node = TerwaydNode::Start(w->get(), spec);
    if (!node.ok()) return Fail("starting terwayd", node.error());
    if (auto s = (*node)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto before = ApiCallsByAction(w->get());
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> ts;
    std::atomic<int> failed{0};
    for (int i = 0; i < 100; i++) {
      ts.emplace_back([&, i] {
        if (!TimedCall((*node)->socket(), Pod(proto::Op::kAllocate, "burst", i)).ok()) failed++;
      });
    }
    for (auto& t : ts) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto after = ApiCallsByAction(w->get());
    nlohmann::json by_action;
    int64_t total = 0;
    for (const auto& [a, n] : after) {
      int64_t d = n - (before.count(a) ? before[a] : 0);
      if (d > 0) by_action[a] = d;
      total += d;
    }
    results["burst_100"] = {{"failed", failed.load()}, {"seconds", secs},
                            {"api_calls", total}, {"api_calls_per_pod", double(total) / 100.0},
                            {"by_action", by_action}};
  }

  // ---- RSS with 500 allocations ----
  {
    WorldSpec ws;
    ws.instance_type = "ecs.vpcsim.xlarge";  // (18 - 1) x 30 = 510 pods
    ws.vswitch_cidr = "198.18.0.0/22";
    auto w = VpcsimWorld::Start(ws);
    if (!w.ok()) return Fail("starting vpcsim", w.error());
    TerwaydSpec spec;
    spec.instance_id = (*w)->instances()[0];
    spec.max_pool_size = 10;
    auto node = TerwaydNode::Start(w->get(), spec);
    if (!node.ok()) return Fail("starting terwayd", node.error());
    if (auto s = (*node)->WaitReady(); !s.ok()) return Fail("terwayd ready", s.error());
    long at_rest = (*node)->RssKib();
    std::vector<std::thread> ts;
    std::atomic<int> failed{0};
    for (int t = 0; t < 20; t++) {
      ts.emplace_back([&, t] {
        for (int i = t; i < 500; i += 20) {
          if (!TimedCall((*node)->socket(), Pod(proto::Op::kAllocate, "rss", i)).ok()) failed++;
        }
      });
    }
    for (auto& t : ts) t.join();
    results["rss_kib"] = {{"at_rest", at_rest}, {"with_500_allocations", (*node)->RssKib()},
                          {"failed_allocations", failed.load()}};
  }

  std::string text = results.dump(2);
  if (!out_path.empty()) {
    std::ofstream(out_path) << text << "\n";
  }
  std::cout << text << "\n";
  return 0;
}
