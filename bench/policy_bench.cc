// NetworkPolicy benchmark:
//   1. compile, render and apply 1,000 and 10,000 Kubernetes NetworkPolicies
//      over 1,000 pods (all on the measured node: every pod gets chains, the
//      worst case for one node), into a scratch node namespace; a whole
//      replacement (as after a restart), and what a pod label change and a
//      pod start cost (compile, then only the difference goes to the kernel);
//   2. TCP throughput (iperf3) and connection rate between two real pods
//      wired like the shared-ENI datapath, with the 1,000-policy table loaded
//      (the server selected by ten policies) and with no table, interleaved
//      in the same rounds;
//   3. latency from a pod label change in the Kubernetes API to enforcement:
//      terwayd's PolicyController watching an in-process lab API server that
//      holds the 1,000-policy world; a real UDP probe from the client pod
//      detects the moment a grant (and a revoke) takes effect.
// Results: JSON on stdout (or --out FILE); progress on stderr. Needs root.
//
//   sudo build/bench/policy_bench --out bench/results/policy.json
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "daemon/metrics.h"
#include "daemon/policy_controller.h"
#include "e2e/lab/netpol_probe.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "policy/compiler.h"
#include "policy/k8s_policy.h"
#include "policy/nft_render.h"
#include "policy/nft_table.h"
#include "test_util.h"
#include "tools/lab/apiserver/server.h"

using namespace terway;
using terway::bench::ConnectRate;
using terway::bench::Iperf;
using terway::bench::Namespaces;
using terway::bench::Percentile;
using terway::bench::Summary;
using Json = nlohmann::json;

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr const char* kNode = "bench-node";
constexpr int kNamespaces = 50;

double MsSince(SteadyClock::time_point t) { return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count(); }

Ipv4Addr SynthIp(int i) { return Ipv4Addr(Ipv4Addr::Parse("198.19.64.0").value().value() + 1 + static_cast<uint32_t>(i)); }

// The synthetic cluster as API objects: namespaces ns0..ns49 (team=t0..t4),
// pods p<i> (app=a0..a9, tier=t0..t2), and policies np<k> that each select
// one app of their namespace and allow it from another app of the namespace
// or from a tier of a team's namespaces, on one port; every fourth also
// limits egress to an ipBlock. The benchmark's two real pods live in
// namespace "bench": the server is selected by ten policies, one of which
// allows the client on the iperf3 and connection-rate ports.
struct SynthCluster {
  std::vector<Json> namespaces, pods, policies;
};

SynthCluster MakeCluster(int pods, int policies, Ipv4Addr client_ip, Ipv4Addr server_ip) {
  SynthCluster c;
  for (int n = 0; n < kNamespaces; n++) {
    c.namespaces.push_back({{"apiVersion", "v1"}, {"kind", "Namespace"},
                            {"metadata", {{"name", fmt::format("ns{}", n)},
                                          {"labels", {{"team", fmt::format("t{}", n % 5)}}}}}});
  }
  c.namespaces.push_back({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "bench"}}}});
  auto pod = [](const std::string& ns, const std::string& name, Json labels, Ipv4Addr ip) {
    return Json{{"apiVersion", "v1"}, {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
                {"spec", {{"nodeName", kNode},
                          {"containers", {{{"name", "c"}, {"image", "busybox"},
                                           {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}},
                {"status", {{"phase", "Running"}, {"podIP", ip.ToString()}}}};
  };
  for (int i = 0; i < pods; i++) {
    c.pods.push_back(pod(fmt::format("ns{}", i % kNamespaces), fmt::format("p{}", i),
                         {{"app", fmt::format("a{}", i % 10)}, {"tier", fmt::format("t{}", i % 3)}}, SynthIp(i)));
  }
  c.pods.push_back(pod("bench", "client", {{"app", "client"}}, client_ip));
  c.pods.push_back(pod("bench", "server", {{"app", "server"}}, server_ip));
  auto selector = [](const char* key, const std::string& value) {
    Json s;
    s["matchLabels"][key] = value;
    return s;
  };
  auto port = [](const char* proto, int number) { return Json{{"protocol", proto}, {"port", number}}; };
  auto policy = [](const std::string& ns, const std::string& name, Json spec) {
    Json p;
    p["apiVersion"] = "networking.k8s.io/v1";
    p["kind"] = "NetworkPolicy";
    p["metadata"]["name"] = name;
    p["metadata"]["namespace"] = ns;
    p["spec"] = std::move(spec);
    return p;
  };
  for (int k = 0; k < policies; k++) {
    Json spec;
    spec["podSelector"] = selector("app", fmt::format("a{}", (k / kNamespaces) % 10));
    Json same_ns_peer, team_peer;
    same_ns_peer["podSelector"] = selector("app", fmt::format("a{}", (k / kNamespaces + 1) % 10));
    team_peer["namespaceSelector"] = selector("team", fmt::format("t{}", k % 5));
    team_peer["podSelector"] = selector("tier", fmt::format("t{}", k % 3));
    Json rule;
    rule["from"] = Json::array({same_ns_peer, team_peer});
    rule["ports"] = Json::array({port("TCP", 8000 + k % 100)});
    spec["ingress"] = Json::array({rule});
    if (k % 4 == 0) {
      Json block, to, eg;
      block["ipBlock"]["cidr"] = "198.19.0.0/16";
      block["ipBlock"]["except"] = Json::array({"198.19.255.0/24"});
      eg["to"] = Json::array({block});
      eg["ports"] = Json::array({port("UDP", 53)});
      spec["policyTypes"] = Json::array({"Ingress", "Egress"});
      spec["egress"] = Json::array({eg});
    }
    c.policies.push_back(policy(fmt::format("ns{}", k % kNamespaces), fmt::format("np{}", k), spec));
  }
  for (int k = 0; k < 10; k++) {
    Json peer, rule, spec;
    peer["podSelector"] = selector("app", k == 9 ? std::string("client") : fmt::format("other{}", k));
    rule["from"] = Json::array({peer});
    rule["ports"] = k == 9 ? Json::array({port("TCP", 5201), port("TCP", 5301)}) : Json::array({port("TCP", 9000 + k)});
    spec["podSelector"] = selector("app", "server");
    spec["ingress"] = Json::array({rule});
    c.policies.push_back(policy("bench", fmt::format("server-{}", k), spec));
  }
  // Label-change probe: UDP 7000 on the server from pods labelled access=granted.
  {
    Json peer, rule, spec;
    peer["podSelector"] = selector("access", "granted");
    rule["from"] = Json::array({peer});
    rule["ports"] = Json::array({port("UDP", 7000)});
    spec["podSelector"] = selector("app", "server");
    spec["ingress"] = Json::array({rule});
    c.policies.push_back(policy("bench", "grant", spec));
  }
  return c;
}

Result<policy::PolicyInputs> InputsOf(const SynthCluster& c) {
  policy::PolicyInputs in;
  for (const auto& n : c.namespaces) {
    TERWAY_ASSIGN_OR_RETURN(auto ns, k8s::ParseNamespace(n));
    in.namespaces.push_back(policy::NamespaceFromK8s(ns));
  }
  for (const auto& p : c.pods) {
    TERWAY_ASSIGN_OR_RETURN(auto pod, k8s::ParsePod(p));
    in.pods.push_back(policy::PodFromK8s(pod));
  }
  for (const auto& p : c.policies) {
    TERWAY_ASSIGN_OR_RETURN(auto np, k8s::ParseNetworkPolicy(p));
    TERWAY_ASSIGN_OR_RETURN(auto pol, policy::PolicyFromK8s(np));
    in.policies.push_back(std::move(pol));
  }
  return in;
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

}  // namespace

int main(int argc, char** argv) {
  std::string out_path;
  int pods = 1000, rounds = 3, iperf_seconds = 5, label_changes = 10;
  std::vector<int> policy_counts = {1000, 10000};
  for (int i = 1; i + 1 < argc; i++) {
    std::string a = argv[i];
    if (a == "--out") out_path = argv[i + 1];
    if (a == "--pods") pods = std::atoi(argv[i + 1]);
    if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    if (a == "--iperf-seconds") iperf_seconds = std::atoi(argv[i + 1]);
    if (a == "--label-changes") label_changes = std::atoi(argv[i + 1]);
  }
  if (pods < 10 || pods > 16000 || rounds < 1 || iperf_seconds < 1 || label_changes < 1) {
    std::cerr << "bench: --pods 10..16000; --rounds, --iperf-seconds, --label-changes at least 1\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "bench: needs root (nftables and network namespaces)\n";
    return 1;
  }
  Json results;
  results["command"] = fmt::format("sudo build/bench/policy_bench --out bench/results/policy.json --pods {} "
                                   "--rounds {} --iperf-seconds {} --label-changes {}",
                                   pods, rounds, iperf_seconds, label_changes);
  const std::string suffix = terway::testing::UniqueSuffix();
  const std::string node = "twbn" + suffix, client = "twbc" + suffix, server = "twbs" + suffix;
  Namespaces ns;
  for (const auto& n : {node, client, server}) {
    if (auto s = ns.Create(n); !s.ok()) return Fail("namespace " + n, s.error());
  }
  const Ipv4Addr client_ip = Ipv4Addr::Parse("198.19.200.1").value();
  const Ipv4Addr server_ip = Ipv4Addr::Parse("198.19.200.2").value();
  if (auto s = WirePods(node, {{client, client_ip}, {server, server_ip}}); !s.ok()) return Fail("wiring pods", s.error());
  policy::NftPolicyTable table(node);

  // --- 1. compile / render / apply at scale
  std::optional<policy::CompiledPolicy> loaded_1000;
  Json scale = Json::object();
  for (int count : policy_counts) {
    std::cerr << "bench: " << count << " policies over " << pods << " pods: compile, render, apply\n";
    SynthCluster cluster = MakeCluster(pods, count, client_ip, server_ip);
    auto in = InputsOf(cluster);
    if (!in.ok()) return Fail("synthetic cluster", in.error());
    std::vector<double> compile_ms;
    std::optional<policy::CompiledPolicy> cp;
    for (int r = 0; r < 3; r++) {
      policy::PolicyInputs copy = *in;
      auto t = SteadyClock::now();
      cp = policy::PolicyCompiler({kNode}).Compile(std::move(copy));
      compile_ms.push_back(MsSince(t));
    }
    auto t = SteadyClock::now();
    std::string script = policy::RenderNftScript(*cp);
    double render_ms = MsSince(t);
    if (const char* dump = getenv("BENCH_DUMP_SCRIPT")) std::ofstream(fmt::format("{}.{}", dump, count)) << script;
    if (auto s = table.Remove(); !s.ok()) return Fail("clearing the table", s.error());
    t = SteadyClock::now();
    if (auto s = table.Apply(*cp); !s.ok()) return Fail("applying", s.error());
    double apply_ms = MsSince(t);
    // A whole replacement in place, as after a restart (a new handle lists
    // the kernel's objects first).
    std::vector<double> replace_ms;
    for (int r = 0; r < 3; r++) {
      policy::NftPolicyTable fresh(node);
      t = SteadyClock::now();
      if (auto s = fresh.Apply(*cp); !s.ok()) return Fail("replacing", s.error());
      replace_ms.push_back(MsSince(t));
    }
    policy::NftPolicyTable live(node);  // knows the table from here on
    if (auto s = live.Apply(*cp); !s.ok()) return Fail("re-applying", s.error());
    // One pod's labels change, and one pod starts: the whole pipeline a
    // watch event or a CNI ADD triggers (compile, then the difference).
    std::vector<double> change_ms, start_ms;
    for (int r = 0; r < 3; r++) {
      // Each timed step starts from the base model (untimed), so it measures
      // one change, not also the undoing of the previous one.
      if (auto st = live.Apply(*cp); !st.ok()) return Fail("re-applying the base", st.error());
      policy::PolicyInputs changed = *in;
      changed.pods[static_cast<size_t>(r)].labels["app"] = fmt::format("a{}", (r + 5) % 10);
      t = SteadyClock::now();
      auto next = policy::PolicyCompiler({kNode}).Compile(std::move(changed));
      if (auto s = live.Apply(next); !s.ok()) return Fail("applying a change", s.error());
      change_ms.push_back(MsSince(t));
      if (auto st = live.Apply(*cp); !st.ok()) return Fail("re-applying the base", st.error());
      policy::PolicyInputs grown = *in;
      policy::PodInfo fresh_pod = grown.pods[static_cast<size_t>(r)];
      fresh_pod.name = fmt::format("started{}", r);
      fresh_pod.ip = SynthIp(pods + 100 + r);
      grown.pods.push_back(fresh_pod);
      t = SteadyClock::now();
      next = policy::PolicyCompiler({kNode}).Compile(std::move(grown));
      if (auto s = live.Apply(next); !s.ok()) return Fail("applying a new pod", s.error());
      start_ms.push_back(MsSince(t));
    }
    scale[std::to_string(count)] = {
        {"pods", pods + 2},
        {"policies", cluster.policies.size()},
        {"chains", cp->chains().size()},
        {"rules", RuleCount(*cp)},
        {"ip_sets", cp->sets().size()},
        {"nft_script_bytes", script.size()},
        {"compile_ms", Summary(compile_ms)},
        {"render_ms", render_ms},
        {"first_apply_ms", apply_ms},
        {"full_replace_ms", Summary(replace_ms)},
        {"label_change_compile_and_apply_ms", Summary(change_ms)},
        {"pod_start_compile_and_apply_ms", Summary(start_ms)},
    };
    if (count == 1000) loaded_1000 = std::move(cp);
  }
  results["compile_apply"] = scale;

  // --- 2. traffic with 1,000 policies vs none, interleaved
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

  // --- 3. label change -> enforcement through the real controller
  std::cerr << "bench: label change to enforcement, " << label_changes << " grants and revokes, 1,000 policies\n";
  lab::ApiServer api(lab::NewDefaultStore());
  if (auto s = api.Start(); !s.ok()) return Fail("starting the lab API server", s.error());
  k8s::RestConfig rc;
  rc.server = api.url();
  rc.qps = 1e6;
  rc.burst = 1000000;
  std::shared_ptr<k8s::RestClient> client_api = k8s::RestClient::FromConfig(rc);
  SynthCluster cluster = MakeCluster(pods, 1000, client_ip, server_ip);
  std::map<std::string, Ipv4Addr> local;
  for (const auto& n : cluster.namespaces) {
    if (auto r = client_api->Create(k8s::resources::kNamespaces, "", n); !r.ok()) return Fail("create ns", r.error());
  }
  for (const auto& p : cluster.pods) {
    const std::string pns = p["metadata"]["namespace"], pname = p["metadata"]["name"];
    if (auto r = client_api->Create(k8s::resources::kPods, pns, p); !r.ok()) return Fail("create pod", r.error());
    local[pns + "/" + pname] = Ipv4Addr::Parse(p["status"]["podIP"].get<std::string>()).value();
  }
  for (const auto& p : cluster.policies) {
    if (auto r = client_api->Create(k8s::resources::kNetworkPolicies, p["metadata"]["namespace"], p); !r.ok()) {
      return Fail("create policy", r.error());
    }
  }
  daemon::Metrics metrics;
  daemon::PolicyControllerOptions pco;
  pco.node_name = kNode;
  pco.netns = node;
  auto t_start = SteadyClock::now();
  auto controller = daemon::PolicyController::Create(client_api, pco, local, &metrics);
  if (!controller.ok()) return Fail("starting the policy controller", controller.error());
  double controller_start_ms = MsSince(t_start);
  terway::testing::PodServers udp;
  if (auto s = udp.Start(server, {{terway::testing::L4::kUdp, 7000}}); !s.ok()) return Fail("UDP server", s.error());
  // Every probe from a source port not used before in this run: a new flow
  // for conntrack, so what answers is the policy, not an established entry.
  uint16_t next_port = 20000;
  auto probe_for = [&](std::chrono::milliseconds timeout) {
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
      if (want || !probe_for(std::chrono::milliseconds(200))) {
        return at;
      }
    }
    return Errorf(ErrorCode::kTimeout, "the label change was not enforced within 30 s");
  };
  if (probe()) return Fail("label change", Error(ErrorCode::kInternal, "the client reaches UDP 7000 before any grant"));
  std::vector<double> grant_ms, revoke_ms;
  for (int i = 0; i < label_changes; i++) {
    for (bool grant : {true, false}) {
      Json patch = {{"metadata", {{"labels", {{"access", grant ? Json("granted") : Json(nullptr)}}}}}};
      auto t0 = SteadyClock::now();
      auto r = client_api->Patch(k8s::resources::kPods, "bench", "client", k8s::PatchType::kMerge, patch);
      if (!r.ok()) return Fail("patching the client's labels", r.error());
      auto ms = wait_for(grant, t0);
      if (!ms.ok()) return Fail(grant ? "grant" : "revoke", ms.error());
      (grant ? grant_ms : revoke_ms).push_back(*ms);
    }
  }
  {
    std::string m = metrics.Render();
    auto value = [&](const std::string& key) {
      auto pos = m.find(key + " ");
      return pos == std::string::npos ? 0.0 : std::atof(m.c_str() + pos + key.size() + 1);
    };
    double n = value("terway_policy_apply_seconds_count");
    results["controller_compile_apply_mean_ms"] = n > 0 ? value("terway_policy_apply_seconds_sum") / n * 1000 : 0;
    results["controller_applies"] = n;
  }
  results["label_change_to_enforcement_ms"] = {
      {"grant", Summary(grant_ms)},
      {"revoke", Summary(revoke_ms)},
      {"samples_grant", grant_ms},
      {"samples_revoke", revoke_ms},
      {"controller_start_ms", controller_start_ms},
      {"probe", "UDP datagram every ~3 ms from the client pod, each from a source port new in the run (a new "
                "conntrack flow); a revoke counts when a 200 ms probe right after is also unanswered"},
      {"world", fmt::format("{} pods, {} policies, lab API server in process", pods + 2, cluster.policies.size())}};
  controller->reset();
  api.Stop();
  (void)daemon::PolicyController::RemoveTable(node);

  std::string text = results.dump(2);
  if (!out_path.empty()) std::ofstream(out_path) << text << "\n";
  std::cout << text << "\n";
  return 0;
}
