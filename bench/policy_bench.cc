// NetworkPolicy benchmark, at 1,000 and 10,000 Kubernetes NetworkPolicies
// over 1,000 pods (all on the measured node: every pod gets chains, the
// worst case for one node):
//   1. the compiler and the kernel table in process, in a scratch node
//      namespace: a full compile, render and apply, a whole replacement (as
//      after a restart), and what one pod label change and one pod start
//      cost two ways in the same run -- a full recompile whose model is
//      diffed against the kernel's (the design before the incremental
//      compiler) and the incremental compiler (policy/incremental.h) with
//      the table sending only its change;
//   2. TCP throughput (iperf3) and connection rate between two real pods
//      wired like the shared-ENI datapath, with the 1,000-policy table loaded
//      (the server selected by ten policies) and with no table, interleaved
//      in the same rounds;
//   3. terwayd's PolicyController watching an in-process lab API server
//      that holds the world: a pod start's policy work (PodStarting, which
//      CNI ADD waits for: the pod's chain is in the kernel when it returns),
//      a label change from the API write to enforcement in the kernel (a
//      real UDP probe from the client pod detects when a grant, and a
//      revoke, takes effect), and the memory the controller holds (RSS of
//      this process before and after the controller starts: the API server
//      and the world run in this process too, so the difference is the
//      controller's).
// Results: JSON on stdout (or --out FILE); progress on stderr. Needs root.
//
//   sudo build/bench/policy_bench --out bench/results/policy.json
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "daemon/metrics.h"
#include "daemon/policy_controller.h"
#include "e2e/lab/netpol_probe.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "policy/compiler.h"
#include "policy/incremental.h"
#include "policy/k8s_policy.h"
#include "policy/nft_batch.h"
#include "policy/nft_render.h"
#include "policy/nft_table.h"
#include "policy_cluster.h"
#include "test_util.h"
#include "tools/lab/apiserver/server.h"

using namespace terway;
using namespace terway::bench;
using Json = nlohmann::json;

namespace {

Json Figures(const std::vector<double>& v) {
  return {{"p50", Percentile(v, 0.5)}, {"p90", Percentile(v, 0.9)}, {"p99", Percentile(v, 0.99)}, {"n", v.size()},
          {"samples", v}};
}

size_t RuleCount(const policy::CompiledPolicy& cp) {
  size_t n = 0;
  for (const auto& c : cp.chains()) n += c.rules.size();
  return n;
}

int Fail(const std::string& what, const Error& e) {
  std::cerr << "bench: " << what << ": " << e.ToString() << "\n";
  return 1;
}

// This process's resident memory (VmRSS), in KiB.
double RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  }
  return 0;
}

// A node namespace and two pod namespaces wired as the shared-ENI datapath
// wires pods (pod IP/32, default via 169.254.1.1 with a permanent neighbour;
// node podIP/32 dev <veth>), so pod-to-pod traffic crosses the node's
// forward hook where the policy table sits.
Status WirePods(const std::string& node, const std::vector<std::pair<std::string, Ipv4Addr>>& pods) {
  auto sh = [](const std::string& netns, std::vector<std::string> argv) -> Status {
    auto r = terway::testing::RunCommand(argv, netns);
    if (r.exit_code != 0) return Errorf(ErrorCode::kInternal, "{}: {}", argv.back(), r.output);
    return Ok();
  };
  TERWAY_TRY(sh(node, {"/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"}));
  int i = 0;
  for (const auto& [netns, ip] : pods) {
    const std::string host = fmt::format("twb{}", i++);
    TERWAY_TRY(sh(node, {"/usr/sbin/ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", netns}));
    // "twb0@if2  DOWN  aa:bb:cc:dd:ee:ff <...>": the third field.
    auto brief = terway::testing::RunCommand({"/usr/sbin/ip", "-br", "link", "show", host}, node);
    std::istringstream fields(brief.output);
    std::string name, state, m;
    fields >> name >> state >> m;
    TERWAY_TRY(sh(netns, {"/usr/sbin/ip", "link", "set", "eth0", "up"}));
    TERWAY_TRY(sh(netns, {"/usr/sbin/ip", "addr", "add", ip.ToString() + "/32", "dev", "eth0"}));
    TERWAY_TRY(sh(netns, {"/usr/sbin/ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"}));
    TERWAY_TRY(sh(netns, {"/usr/sbin/ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"}));
    TERWAY_TRY(sh(netns, {"/usr/sbin/ip", "neigh", "add", "169.254.1.1", "lladdr", m, "dev", "eth0", "nud", "permanent"}));
    TERWAY_TRY(sh(node, {"/usr/sbin/ip", "link", "set", host, "up"}));
    TERWAY_TRY(sh(node, {"/usr/sbin/ip", "route", "add", ip.ToString() + "/32", "dev", host, "scope", "link"}));
  }
  return Ok();
}


// A label change and a pod start of the synthetic world (pod r relabelled;
// a copy of pod r started under a new name and address).
policy::PodInfo Relabelled(const policy::PolicyInputs& in, int r) {
  policy::PodInfo p = in.pods[static_cast<size_t>(r)];
  p.labels["app"] = fmt::format("a{}", (r + 5) % 10);
  return p;
}
policy::PodInfo Started(const policy::PolicyInputs& in, int pods, int r) {
  policy::PodInfo p = in.pods[static_cast<size_t>(r)];
  p.name = fmt::format("started{}", r);
  p.ip = SynthIp(pods + 100 + r);
  return p;
}

// Section 1 at one policy count.
Result<Json> CompileAndApply(const std::string& node, int pods, int count, int changes, Ipv4Addr client_ip,
                             Ipv4Addr server_ip, std::optional<policy::CompiledPolicy>* keep) {
  std::cerr << "bench: " << count << " policies over " << pods << " pods: compile, render, apply\n";
  SynthCluster cluster = MakeCluster(pods, count, client_ip, server_ip);
  TERWAY_ASSIGN_OR_RETURN(policy::PolicyInputs in, InputsOf(cluster));
  std::vector<double> compile_ms;
  std::optional<policy::CompiledPolicy> cp;
  for (int r = 0; r < 3; r++) {
    policy::PolicyInputs copy = in;
    auto t = SteadyClock::now();
    cp = policy::PolicyCompiler({kNode}).Compile(std::move(copy));
    compile_ms.push_back(MsSince(t));
  }
  auto t = SteadyClock::now();
  std::string script = policy::RenderNftScript(*cp);
  double render_ms = MsSince(t);
  policy::NftPolicyTable table(node);
  TERWAY_TRY_CTX(table.Remove(), "clearing the table");
  t = SteadyClock::now();
  TERWAY_TRY_CTX(table.Apply(*cp), "applying");
  double apply_ms = MsSince(t);
  // A whole replacement in place, as after a restart (a new handle lists
  // the kernel's objects first).
  std::vector<double> replace_ms;
  for (int r = 0; r < 3; r++) {
    policy::NftPolicyTable fresh(node);
    t = SteadyClock::now();
    TERWAY_TRY_CTX(fresh.Apply(*cp), "replacing");
    replace_ms.push_back(MsSince(t));
  }

  // Before: every change compiles everything and the table diffs whole
  // models. Each timed step starts from the base model (untimed), so it
  // measures one change, not also the undoing of the previous one.
  std::cerr << "bench: " << count << " policies: changes by full recompile\n";
  policy::NftPolicyTable live(node);
  TERWAY_TRY(live.Apply(*cp));
  std::vector<double> full_change_ms, full_start_ms;
  const int full_rounds = std::min(changes, 5);  // ~0.3 s each at 10,000 policies
  for (int r = 0; r < full_rounds; r++) {
    TERWAY_TRY(live.Apply(*cp));
    policy::PolicyInputs changed = in;
    changed.pods[static_cast<size_t>(r)] = Relabelled(in, r);
    t = SteadyClock::now();
    auto next = policy::PolicyCompiler({kNode}).Compile(std::move(changed));
    TERWAY_TRY_CTX(live.Apply(next), "applying a change");
    full_change_ms.push_back(MsSince(t));
    TERWAY_TRY(live.Apply(*cp));
    policy::PolicyInputs grown = in;
    grown.pods.push_back(Started(in, pods, r));
    t = SteadyClock::now();
    next = policy::PolicyCompiler({kNode}).Compile(std::move(grown));
    TERWAY_TRY_CTX(live.Apply(next), "applying a new pod");
    full_start_ms.push_back(MsSince(t));
  }

  // After: the incremental compiler and the table's change path.
  std::cerr << "bench: " << count << " policies: changes by the incremental compiler\n";
  policy::IncrementalCompiler inc({kNode});
  inc.Reset(in);
  t = SteadyClock::now();
  TERWAY_ASSIGN_OR_RETURN(auto first, inc.Update());
  double rebuild_ms = MsSince(t);
  TERWAY_TRY(live.Apply(inc.model()));
  std::vector<double> change_ms, change_compile_ms, start_ms, start_compile_ms;
  auto step = [&](std::vector<double>* total, std::vector<double>* compile) -> Status {
    auto t0 = SteadyClock::now();
    TERWAY_ASSIGN_OR_RETURN(auto change, inc.Update());
    if (compile) compile->push_back(MsSince(t0));
    TERWAY_TRY(live.ApplyChange(change, inc.model()));
    if (total) total->push_back(MsSince(t0));
    return Ok();
  };
  for (int r = 0; r < changes; r++) {
    inc.UpsertPod(Relabelled(in, r));
    TERWAY_TRY_CTX(step(&change_ms, &change_compile_ms), "a label change");
    inc.UpsertPod(in.pods[static_cast<size_t>(r)]);
    TERWAY_TRY(step(nullptr, nullptr));
    policy::PodInfo started = Started(in, pods, r);
    inc.UpsertPod(started);
    TERWAY_TRY_CTX(step(&start_ms, &start_compile_ms), "a pod start");
    inc.RemovePod(started.Key());
    TERWAY_TRY(step(nullptr, nullptr));
  }
  // The incremental model is the full compile's (tests/unit/policy holds the
  // proof; this checks the benchmark's world).
  inc.UpsertPod(Relabelled(in, 0));
  TERWAY_TRY(step(nullptr, nullptr));
  policy::PolicyInputs last = in;
  last.pods[0] = Relabelled(in, 0);
  const bool same = policy::CanonicalModelOf(policy::PolicyCompiler({kNode}).Compile(std::move(last))) == inc.model();
  if (!same) return Errorf(ErrorCode::kInternal, "the incremental model differs from a full compile");

  const double before_change = Percentile(full_change_ms, 0.5), after_change = Percentile(change_ms, 0.5);
  const double before_start = Percentile(full_start_ms, 0.5), after_start = Percentile(start_ms, 0.5);
  Json out = {
      {"pods", pods + 2},
      {"policies", cluster.policies.size()},
      {"chains", cp->chains().size()},
      {"rules", RuleCount(*cp)},
      {"ip_sets", cp->sets().size()},
      {"nft_script_bytes", script.size()},
      {"compile_ms", Figures(compile_ms)},
      {"render_ms", render_ms},
      {"first_apply_ms", apply_ms},
      {"full_replace_ms", Figures(replace_ms)},
      {"full_recompile", {{"label_change_ms", Figures(full_change_ms)}, {"pod_start_ms", Figures(full_start_ms)}}},
      {"incremental",
       {{"rebuild_ms", rebuild_ms},
        {"label_change_ms", Figures(change_ms)},
        {"label_change_compile_ms", Figures(change_compile_ms)},
        {"pod_start_ms", Figures(start_ms)},
        {"pod_start_compile_ms", Figures(start_compile_ms)},
        {"equals_full_compile", same}}},
      {"ratio_full_over_incremental",
       {{"label_change", after_change > 0 ? before_change / after_change : 0},
        {"pod_start", after_start > 0 ? before_start / after_start : 0}}},
  };
  if (keep) *keep = std::move(cp);
  (void)first;
  return out;
}

// Section 3 at one policy count: the real controller.
Result<Json> Controller(const std::string& node, const std::string& client, const std::string& server, int pods,
                        int count, int pod_starts, int label_changes, Ipv4Addr client_ip, Ipv4Addr server_ip) {
  std::cerr << "bench: controller with " << count << " policies: pod starts, label changes to enforcement\n";
  lab::ApiServer api(lab::NewDefaultStore());
  TERWAY_TRY_CTX(api.Start(), "starting the lab API server");
  k8s::RestConfig rc;
  rc.server = api.url();
  rc.qps = 1e6;
  rc.burst = 1000000;
  std::shared_ptr<k8s::RestClient> client_api = k8s::RestClient::FromConfig(rc);
  SynthCluster cluster = MakeCluster(pods, count, client_ip, server_ip);
  std::map<std::string, Ipv4Addr> local;
  for (const auto& n : cluster.namespaces) {
    TERWAY_TRY_CTX(client_api->Create(k8s::resources::kNamespaces, "", n), "create namespace");
  }
  for (const auto& p : cluster.pods) {
    const std::string pns = p["metadata"]["namespace"], pname = p["metadata"]["name"];
    TERWAY_TRY_CTX(client_api->Create(k8s::resources::kPods, pns, p), "create pod");
    local[pns + "/" + pname] = Ipv4Addr::Parse(p["status"]["podIP"].get<std::string>()).value();
  }
  for (const auto& p : cluster.policies) {
    TERWAY_TRY_CTX(client_api->Create(k8s::resources::kNetworkPolicies, p["metadata"]["namespace"], p),
                   "create policy");
  }
  daemon::Metrics metrics;
  daemon::PolicyControllerOptions pco;
  pco.node_name = kNode;
  pco.netns = node;
  malloc_trim(0);  // pages earlier sections freed go back first
  const double rss_before = RssKib();
  auto t_start = SteadyClock::now();
  TERWAY_ASSIGN_OR_RETURN(auto controller, daemon::PolicyController::Create(client_api, pco, local, &metrics));
  const double start_ms = MsSince(t_start);
  const double rss_started = RssKib();

  // Pod starts: the pods exist in the API (scheduled here, no address yet)
  // and the controller has seen them, as when the kubelet runs a sandbox;
  // then CNI ADD hands each its address and waits. Each start is timed
  // alone: the controller is idle before it (the previous pod's stop is
  // applied untimed).
  const size_t known_before = controller->KnownPods();
  std::vector<std::pair<std::string, std::string>> starting;
  for (int i = 0; i < pod_starts; i++) {
    const std::string pns = fmt::format("ns{}", i % kNamespaces), pname = fmt::format("starting{}", i);
    Json pod = cluster.pods[static_cast<size_t>(i)];
    pod["metadata"] = {{"name", pname}, {"namespace", pns}, {"labels", pod["metadata"]["labels"]}};
    pod["status"] = {{"phase", "Pending"}};
    TERWAY_TRY_CTX(client_api->Create(k8s::resources::kPods, pns, pod), "create a starting pod");
    starting.push_back({pns, pname});
  }
  for (auto deadline = SteadyClock::now() + std::chrono::seconds(30);
       controller->KnownPods() < known_before + starting.size();) {
    if (SteadyClock::now() > deadline) return Errorf(ErrorCode::kTimeout, "the controller did not see the new pods");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::vector<double> starting_ms;
  for (size_t i = 0; i < starting.size(); i++) {
    const auto& [pns, pname] = starting[i];
    const Ipv4Addr ip = SynthIp(pods + 1000 + static_cast<int>(i));
    if (!controller->WaitIdle(std::chrono::seconds(30))) return Errorf(ErrorCode::kTimeout, "the controller stayed busy");
    auto t0 = SteadyClock::now();
    TERWAY_TRY_CTX(controller->PodStarting(pns, pname, ip), "PodStarting");
    starting_ms.push_back(MsSince(t0));
    // Untimed: the pod's chain is reachable in the kernel now.
    std::string listing;
    TERWAY_TRY(policy::RunNftBatch(node, "list map inet terway pod_ingress", &listing));
    if (listing.find("\"" + ip.ToString() + "\"") == std::string::npos) {
      return Errorf(ErrorCode::kInternal, "pod {}/{} started but {} is not in pod_ingress", pns, pname, ip.ToString());
    }
    controller->PodStopped(pns, pname, ip);
  }
  for (const auto& [pns, pname] : starting) TERWAY_TRY(client_api->Delete(k8s::resources::kPods, pns, pname));
  if (!controller->WaitIdle(std::chrono::seconds(30))) return Errorf(ErrorCode::kTimeout, "the controller stayed busy");

  terway::testing::PodServers udp;
  TERWAY_TRY_CTX(udp.Start(server, {{terway::testing::L4::kUdp, 7000}}), "UDP server");
  // Every probe from a source port not used before in this run: a new flow
  // for conntrack, so what answers is the policy, not an established entry.
  static uint16_t next_port = 20000;
  auto probe_for = [&](std::chrono::milliseconds timeout) {
    if (next_port < 20000) next_port = 20000;
    return terway::testing::ProbeOne({client, terway::testing::L4::kUdp, server_ip, 7000, next_port++}, timeout);
  };
  auto probe = [&]() { return probe_for(std::chrono::milliseconds(3)); };
  // Until `want`: probes back to back (each a fresh socket, so a fresh
  // conntrack flow); the time is from the API write's reply.
  auto wait_for = [&](bool want, SteadyClock::time_point since) -> Result<double> {
    while (MsSince(since) < 30000) {
      if (probe() != want) continue;
      double at = MsSince(since);
      // A reply proves a grant; a silence proves a revoke only if a patient
      // probe right after also goes unanswered (a 3 ms one can just be slow).
      if (want || !probe_for(std::chrono::milliseconds(200))) return at;
    }
    return Errorf(ErrorCode::kTimeout, "the label change was not enforced within 30 s");
  };
  if (probe()) return Errorf(ErrorCode::kInternal, "the client reaches UDP 7000 before any grant");
  std::vector<double> grant_ms, revoke_ms;
  for (int i = 0; i < label_changes; i++) {
    for (bool grant : {true, false}) {
      Json patch = {{"metadata", {{"labels", {{"access", grant ? Json("granted") : Json(nullptr)}}}}}};
      auto t0 = SteadyClock::now();
      TERWAY_TRY_CTX(client_api->Patch(k8s::resources::kPods, "bench", "client", k8s::PatchType::kMerge, patch),
                     "patching the client's labels");
      TERWAY_ASSIGN_OR_RETURN_CTX(double ms, wait_for(grant, t0), grant ? "grant" : "revoke");
      (grant ? grant_ms : revoke_ms).push_back(ms);
    }
  }
  const double rss_end = RssKib();
  malloc_trim(0);  // what the heap holds, without the pages freed but not returned
  const double rss_end_trimmed = RssKib();
  Json out = {{"pod_start_ms", Figures(starting_ms)},
              {"label_change_to_enforcement_ms", {{"grant", Figures(grant_ms)}, {"revoke", Figures(revoke_ms)}}},
              {"controller_start_ms", start_ms},
              {"rss_mib",
               {{"before_controller", rss_before / 1024},
                {"controller_started", rss_started / 1024},
                {"end", rss_end / 1024},
                {"end_after_malloc_trim", rss_end_trimmed / 1024},
                {"controller", (rss_end_trimmed - rss_before) / 1024},
                {"note", "RSS of this process, which also runs the lab API server holding the world: `controller` is "
                         "what starting terwayd's PolicyController added by the end of the run (its caches, the "
                         "incremental compiler's state, the kernel model), heap pages freed but kept by malloc "
                         "returned first (malloc_trim) at both ends"}}}};
  std::string m = metrics.Render();
  auto value = [&](const std::string& key) {
    auto pos = m.find(key + " ");
    return pos == std::string::npos ? 0.0 : std::atof(m.c_str() + pos + key.size() + 1);
  };
  double n = value("terway_policy_apply_seconds_count");
  out["controller_applies"] = n;
  out["controller_apply_mean_ms"] = n > 0 ? value("terway_policy_apply_seconds_sum") / n * 1000 : 0;
  controller.reset();
  api.Stop();
  (void)daemon::PolicyController::RemoveTable(node);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int pods = 1000, rounds = 3, iperf_seconds = 5, label_changes = 10, changes = 20, pod_starts = 20;
  std::vector<int> policy_counts = {1000, 10000};
  for (int i = 1; i + 1 < argc; i++) {
    std::string a = argv[i];
    if (a == "--out") out_path = argv[i + 1];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--iperf-seconds") iperf_seconds = std::atoi(argv[i + 1]);
    if (a == "--label-changes") label_changes = std::atoi(argv[i + 1]);
    if (a == "--changes") changes = std::atoi(argv[i + 1]);
    if (a == "--pod-starts") pod_starts = std::atoi(argv[i + 1]);
    if (a == "--policy-counts") {  // e.g. 10000 or 1000,10000
      policy_counts.clear();
      std::stringstream list(argv[i + 1]);
      std::string n;
      while (std::getline(list, n, ',')) policy_counts.push_back(std::atoi(n.c_str()));
    }
  }
  if (pods < 10 || pods > 16000 || rounds < 1 || iperf_seconds < 1 || label_changes < 1 || changes < 1 ||
      changes > pods || pod_starts < 1 || pod_starts > pods || policy_counts.empty() ||
      std::any_of(policy_counts.begin(), policy_counts.end(), [](int n) { return n < 1 || n > 100000; })) {
    std::cerr << "bench: --pods 10..16000; --rounds, --iperf-seconds, --label-changes at least 1; --changes and "
                 "--pod-starts 1..pods; --policy-counts N[,N...] with N in 1..100000\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "bench: needs root (nftables and network namespaces)\n";
    return 1;
  }
  Json results;
  results["command"] = fmt::format("sudo build/bench/policy_bench --out bench/results/policy.json --pods {} "
                                   "--rounds {} --iperf-seconds {} --label-changes {} --changes {} --pod-starts {}",
                                   pods, rounds, iperf_seconds, label_changes, changes, pod_starts);
  const std::string suffix = terway::testing::UniqueSuffix();
  const std::string node = "twbn" + suffix, client = "twbc" + suffix, server = "twbs" + suffix;
  Namespaces ns;
  for (const auto& n : {node, client, server}) {
    if (auto s = ns.Create(n); !s.ok()) return Fail("namespace " + n, s.error());
  }
  const Ipv4Addr client_ip = Ipv4Addr::Parse("198.19.200.1").value();
  const Ipv4Addr server_ip = Ipv4Addr::Parse("198.19.200.2").value();
  if (auto s = WirePods(node, {{client, client_ip}, {server, server_ip}}); !s.ok()) return Fail("wiring pods", s.error());

  // --- 1. compile / render / apply at scale, changes before and after
  std::optional<policy::CompiledPolicy> loaded_1000;
  Json scale = Json::object();
  for (int count : policy_counts) {
    auto r = CompileAndApply(node, pods, count, changes, client_ip, server_ip, count == 1000 ? &loaded_1000 : nullptr);
    if (!r.ok()) return Fail(fmt::format("{} policies", count), r.error());
    scale[std::to_string(count)] = *r;
  }
  results["compile_apply"] = scale;

  // --- 2. traffic with 1,000 policies vs none, interleaved
  policy::NftPolicyTable table(node);
  if (loaded_1000) {
    std::cerr << "bench: iperf3 and connection rate, " << rounds << " rounds, no policy vs 1,000 policies\n";
    std::vector<double> bps_none, bps_pol, crr_none, crr_pol;
    for (int r = 0; r < rounds; r++) {
      for (bool with : {false, true}) {
        Status s = with ? table.Apply(*loaded_1000) : table.Remove();
        if (!s.ok()) return Fail("switching the table", s.error());
        auto bps = Iperf(server, client, server_ip.ToString(), iperf_seconds);
        if (!bps.ok()) return Fail(with ? "iperf3 with policy" : "iperf3 without policy", bps.error());
        auto crr = ConnectRate(server, client, server_ip.ToString(), iperf_seconds);
        if (!crr.ok()) return Fail(with ? "connection rate with policy" : "connection rate without", crr.error());
        (with ? bps_pol : bps_none).push_back(*bps / 1e9);
        (with ? crr_pol : crr_none).push_back(*crr);
      }
    }
    double gn = Percentile(bps_none, 0.5), gp = Percentile(bps_pol, 0.5);
    double cn = Percentile(crr_none, 0.5), cp = Percentile(crr_pol, 0.5);
    results["traffic_1000_policies"] = {
        {"tcp_gbps", {{"no_policy", gn}, {"with_policies", gp}, {"ratio", gn > 0 ? gp / gn : 0},
                      {"samples_no_policy", bps_none}, {"samples_with_policies", bps_pol}}},
        {"tcp_connections_per_s", {{"no_policy", cn}, {"with_policies", cp}, {"ratio", cn > 0 ? cp / cn : 0},
                                   {"samples_no_policy", crr_none}, {"samples_with_policies", crr_pol}}}};
  }
  if (auto s = table.Remove(); !s.ok()) return Fail("clearing the table", s.error());

  // --- 3. the controller: pod start, label change to enforcement, memory
  Json controller = Json::object();
  for (int count : policy_counts) {
    auto r = Controller(node, client, server, pods, count, pod_starts, label_changes, client_ip, server_ip);
    if (!r.ok()) return Fail(fmt::format("controller with {} policies", count), r.error());
    controller[std::to_string(count)] = *r;
  }
  results["controller"] = controller;
  results["probe"] = "UDP datagram every ~3 ms from the client pod, each from a source port new in the run (a new "
                     "conntrack flow); a revoke counts when a 200 ms probe right after is also unanswered";

  std::string text = results.dump(2);
  if (!out_path.empty()) std::ofstream(out_path) << text << "\n";
  std::cout << text << "\n";
  return 0;
}
