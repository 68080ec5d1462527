// Policy and restart repair of dual-stack pods on terway-lab (issue 15), with
// real traffic, on one two-node cluster (`up --ip-stack dual`):
//   - Kubernetes NetworkPolicy ipBlocks of each family, with `except`, on
//     ingress and egress: TCP, UDP and ICMP echo over IPv6 and IPv4 from the
//     same pods; an IPv6 ipBlock admits no IPv4 peer and the other way round;
//     ICMPv6 echo follows the policy (a rule without ports admits it, one for
//     TCP 80 does not); neighbour discovery keeps working for an isolated pod
//     (every neighbour cache of the world flushed, its allowed peers still
//     reach it and it them, its node resolved it afresh).
//   - Calico (projectcalico.org/v3) GlobalNetworkPolicy with IPv6 nets /
//     notNets and an `ipVersion: 6` ICMPv6 echo rule.
//   - A TCP stream over IPv6 and a ping -6 across a SIGKILL of the node's
//     terwayd and its restart, losing nothing; restart repair puts back a
//     dual pod's IPv6 route deleted meanwhile; the pods' pod-ips
//     annotation, status.podIPs and terwayd's record of each pod's
//     IPv4/IPv6 pair are what they were.
// Expectations are Kubernetes' and Calico's documented semantics (an ipBlock
// is a CIDR of one family minus its excepts; a pod is isolated for the
// policyTypes of a policy selecting it; a Calico rule whose nets are all of
// one family never matches the other family), not our code's.
//
// One cluster for all of it (CI time): one test, its parts in sequence,
// each leaving no policy behind.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <sstream>

#include "e2e/lab/lab_calico_case_kit.h"
#include "e2e/lab/lab_dual_stack.h"
#include "e2e/lab/netpol_probe.h"
#include "common/strings.h"
#include "store/state_store.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;
using calico_cases::Gnp;
using calico_cases::K8sNp;

// What a probe sends: a protocol over one family.
struct Kind {
  L4 proto;
  bool v6;
};
constexpr Kind kTcp4{L4::kTcp, false}, kUdp4{L4::kUdp, false}, kEcho4{L4::kIcmp, false};
constexpr Kind kTcp6{L4::kTcp, true}, kUdp6{L4::kUdp, true}, kEcho6{L4::kIcmp, true};
const std::vector<Kind> kEveryKind = {kTcp4, kUdp4, kEcho4, kTcp6, kUdp6, kEcho6};
const std::vector<Kind> kIpv4Kinds = {kTcp4, kUdp4, kEcho4};
const std::vector<Kind> kIpv6Kinds = {kTcp6, kUdp6, kEcho6};

class LabDualPolicy : public LabDualStackTest {
 protected:
  struct Pod {
    std::string netns;
    Ipv4Addr v4;
    Ipv6Addr v6;
  };

  void TearDown() override {
    pod_servers_.clear();  // threads inside the pods' namespaces end before `down`
    LabDualStackTest::TearDown();
  }

  // Namespace x with pods a, b on node1 and c on node2, each serving TCP
  // and UDP port 80 on both families.
  void SetUpWorld() {
    UpDual(2);
    if (HasFatalFailure()) return;
    auto vsws = DescribeVSwitches();
    ASSERT_FALSE(vsws.empty());
    vswitch_cidr_ = vsws[0].cidr_block;
    Apply("ns-x", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n    ns: x\n");
    const std::map<std::string, int> plan = {{"a", 0}, {"b", 0}, {"c", 1}};
    for (const auto& [name, node] : plan) Apply("pod-" + name, PodYaml("x", name, fmt::format("node{}", node + 1)));
    for (const auto& [name, node] : plan) {
      const std::string key = "x/" + name;
      ASSERT_FALSE(WaitPodIp("x", name).empty());
      ExpectPodIps(key, node, /*ipv6=*/true);
      auto ips = PodIps(key);
      ASSERT_EQ(ips.size(), 2u) << key << " is not dual stack";
      Pod p{PodNetns(key), Ipv4Addr::Parse(ips[0]).value(), Ipv6Addr::Parse(ips[1]).value()};
      auto servers = std::make_unique<PodServers>();
      Status st = servers->Start(p.netns, {{L4::kTcp, 80}, {L4::kUdp, 80}, {L4::kTcp, 80, true}, {L4::kUdp, 80, true}});
      ASSERT_TRUE(st.ok()) << st.error().ToString();
      pod_servers_.push_back(std::move(servers));
      pods_[name] = p;
    }
  }

  std::string V6(const std::string& pod) { return pods_[pod].v6.ToString(); }
  std::string V4(const std::string& pod) { return pods_[pod].v4.ToString(); }

  // Probes from one pod of x to another, one per kind, each with the verdict
  // `allow`.
  std::vector<ProbeCheck> Probes(const std::string& from, const std::string& to, const std::vector<Kind>& kinds,
                                 bool allow) {
    std::vector<ProbeCheck> out;
    for (const Kind& k : kinds) {
      const Pod& dst = pods_[to];
      const uint16_t port = k.proto == L4::kIcmp ? 0 : 80;
      ProbeSpec spec = k.v6 ? Probe6(pods_[from].netns, k.proto, dst.v6, port)
                            : ProbeSpec{pods_[from].netns, k.proto, dst.v4, port};
      const std::string what =
          k.proto == L4::kIcmp ? (k.v6 ? "ICMPv6 echo" : "ICMP echo") : fmt::format("{}/80", L4Name(k.proto));
      out.push_back({fmt::format("{} -> {} {} to {}", from, to, what, spec.Destination()), spec, allow});
    }
    return out;
  }

  // Waits (bounded) until every probe gets its verdict at one moment.
  void ExpectVerdicts(const std::string& name, const std::vector<std::vector<ProbeCheck>>& groups,
                      std::chrono::seconds deadline = 30s) {
    std::vector<ProbeCheck> checks;
    for (const auto& g : groups) checks.insert(checks.end(), g.begin(), g.end());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(ProbeUntilExpected(checks, deadline), "") << name << "\n" << NodePolicyTables();
    // How long the policy took to hold everywhere (CI's time goes here).
    std::cout << fmt::format("[ VERDICTS ] {} probes in {} ms: {}\n", checks.size(),
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now() - start).count(), name);
  }

  void DeletePolicies() {
    for (const char* kind : {"networkpolicies.networking.k8s.io", "globalnetworkpolicies.projectcalico.org"}) {
      std::vector<std::string> args = {"delete", kind, "--all"};
      if (std::string(kind).rfind("global", 0) != 0) args.insert(args.end(), {"-n", "x"});
      auto r = Kubectl(args);
      EXPECT_EQ(r.exit_code, 0) << r.output;
    }
  }

  // Every pod reaches every other on every kind: the baseline, and what a
  // part must leave behind.
  void ExpectOpen(const std::string& name) {
    std::vector<std::vector<ProbeCheck>> all;
    for (const auto& [from, _] : pods_) {
      for (const auto& [to, __] : pods_) {
        if (from != to) all.push_back(Probes(from, to, kEveryKind, true));
      }
    }
    ExpectVerdicts(name, all);
  }

  void KubernetesIpBlocks();
  void NeighbourDiscoveryUnderIsolation();
  void CalicoIpv6NetsAndIcmpv6();
  void StreamAndPingAcrossTerwaydRestart();

  std::map<std::string, Pod> pods_;
  std::string vswitch_cidr_;
  std::vector<std::unique_ptr<PodServers>> pod_servers_;
};

// Kubernetes ipBlocks, one family at a time, on ingress and egress.
void LabDualPolicy::KubernetesIpBlocks() {
  // x/a takes ingress from the vSwitch's IPv6 /64 except x/b's IPv6: x/c over
  // IPv6 only (TCP, UDP and ICMPv6 echo: a rule without ports admits every
  // protocol from its peers); x/b not at all; IPv4 from nobody (an IPv6 CIDR
  // holds no IPv4 address). Ingress only: x/a's own traffic and x/b's
  // to x/c are untouched.
  Apply("in6", K8sNp("x", "a-in", fmt::format(R"(  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - ipBlock: {{cidr: "{}", except: ["{}/128"]}}
)",
                                              kVswitchIpv6Cidr, V6("b"))));
  ExpectVerdicts("ingress from an IPv6 ipBlock except x/b",
                 {Probes("c", "a", kIpv6Kinds, true), Probes("c", "a", kIpv4Kinds, false),
                  Probes("b", "a", kEveryKind, false), Probes("a", "c", {kTcp6, kTcp4}, true),
                  Probes("b", "c", {kTcp6, kEcho6}, true)});

  // The mirror: the vSwitch's IPv4 CIDR except x/c's IPv4 admits x/b over
  // IPv4 only.
  Apply("in6", K8sNp("x", "a-in", fmt::format(R"(  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - ipBlock: {{cidr: "{}", except: ["{}/32"]}}
)",
                                              vswitch_cidr_, V4("c"))));
  ExpectVerdicts("ingress from an IPv4 ipBlock except x/c",
                 {Probes("b", "a", kIpv4Kinds, true), Probes("b", "a", kIpv6Kinds, false),
                  Probes("c", "a", kEveryKind, false)});

  // ICMPv6 follows the policy: a rule for TCP 80 from the IPv6 block admits
  // TCP and nothing else, echo included.
  Apply("in6", K8sNp("x", "a-in", fmt::format(R"(  podSelector: {{matchLabels: {{pod: a}}}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - ipBlock: {{cidr: "{}"}}
    ports: [{{protocol: TCP, port: 80}}]
)",
                                              kVswitchIpv6Cidr)));
  ExpectVerdicts("ingress TCP 80 from the IPv6 block",
                 {Probes("c", "a", {kTcp6}, true), Probes("b", "a", {kTcp6}, true),
                  Probes("c", "a", {kUdp6, kEcho6, kTcp4, kEcho4}, false), Probes("b", "a", {kUdp6, kEcho6}, false)});
  DeletePolicies();

  // Egress: x/b may send to the IPv6 /64 except x/c's IPv6 -- so to x/a over
  // IPv6, never over IPv4, and to x/c not at all; its ingress stays open
  // (replies of what it is sent are replies).
  Apply("out6", K8sNp("x", "b-out", fmt::format(R"(  podSelector: {{matchLabels: {{pod: b}}}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {{cidr: "{}", except: ["{}/128"]}}
)",
                                                kVswitchIpv6Cidr, V6("c"))));
  ExpectVerdicts("egress to an IPv6 ipBlock except x/c",
                 {Probes("b", "a", kIpv6Kinds, true), Probes("b", "a", kIpv4Kinds, false),
                  Probes("b", "c", kEveryKind, false), Probes("c", "b", {kTcp6, kTcp4, kEcho6}, true),
                  Probes("a", "b", {kTcp6, kEcho4}, true)});
  DeletePolicies();
}

// An isolated pod's neighbours are resolved under its policy: x/b isolated
// both ways (in from x/c's IPv6 only, out to x/a's IPv6 only); every
// neighbour cache of the world flushed; then x/c reaches x/b across nodes
// and x/b reaches x/a, which needs node1 to resolve both pods' addresses on
// their veths afresh (and the far side to find x/b behind node1's ENI).
// Here a pod's neighbour discovery is with its node (input and output
// hooks), never forwarded, so this shows the isolated pod's wiring and
// node let it through; that the forward chain accepts it where it does
// cross (pods on one bridge) is tests/root/policy/dual_stack_root_test.cc's.
void LabDualPolicy::NeighbourDiscoveryUnderIsolation() {
  Apply("nd", K8sNp("x", "b-isolated", fmt::format(R"(  podSelector: {{matchLabels: {{pod: b}}}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from: [{{ipBlock: {{cidr: "{}/128"}}}}]
  egress:
  - to: [{{ipBlock: {{cidr: "{}/128"}}}}]
)",
                                                   V6("c"), V6("a"))));
  const std::vector<std::vector<ProbeCheck>> verdicts = {
      Probes("c", "b", {kTcp6, kEcho6}, true), Probes("b", "a", {kTcp6, kUdp6}, true),
      Probes("a", "b", {kTcp6, kEcho6}, false), Probes("b", "c", {kTcp6}, false),
      Probes("c", "b", {kTcp4}, false)};
  ExpectVerdicts("x/b isolated both ways", verdicts);
  if (HasFailure()) return;

  // Dynamic entries only: the pods' permanent entry for their gateway stays
  // (as in production), so what is learned again is the node's and the
  // VPC's side.
  const std::string node1 = NodeNetns(0);
  auto resolved = [&](const std::string& ip) {
    std::string out = Capture("ip -n " + node1 + " -6 neigh show " + ip);
    return out.find("lladdr") != std::string::npos && out.find("FAILED") == std::string::npos &&
           out.find("INCOMPLETE") == std::string::npos;
  };
  std::istringstream world(WorldNetns());
  for (std::string ns; world >> ns;) Capture("ip -n " + ns + " -6 neigh flush all 2>&1");
  ASSERT_FALSE(resolved(V6("b"))) << "node1 still resolves x/b's IPv6 after the flush: the check proves nothing\n"
                                  << Capture("ip -n " + node1 + " -6 neigh show");
  ASSERT_FALSE(resolved(V6("a")));
  ExpectVerdicts("x/b isolated both ways, after every neighbour cache was flushed", verdicts, 10s);
  EXPECT_TRUE(resolved(V6("b")) && resolved(V6("a")))
      << "node1 did not resolve the pods' IPv6 afresh:\n" << Capture("ip -n " + node1 + " -6 neigh show");
  DeletePolicies();
}

// Calico: IPv6 nets / notNets and an ipVersion 6 ICMPv6 echo rule on x/a.
// Rule 1 admits echo (128) from the /64 but x/b; rule 2 admits TCP from
// anything but x/c's IPv6 -- an IPv6-only notNets, so IPv6 only (Felix drops
// the rule from the IPv4 rules). Nothing admits UDP or IPv4.
void LabDualPolicy::CalicoIpv6NetsAndIcmpv6() {
  Apply("gnp", Gnp("a-v6", std::string(calico_cases::kGlobalSelA) + fmt::format(R"(  types: [Ingress]
  ingress:
  - action: Allow
    protocol: ICMPv6
    ipVersion: 6
    icmp: {{type: 128}}
    source:
      nets: ["{}"]
      notNets: ["{}/128"]
  - action: Allow
    protocol: TCP
    source:
      notNets: ["{}/128"]
)",
                                                                                 kVswitchIpv6Cidr, V6("b"), V6("c"))));
  ExpectVerdicts("Calico IPv6 nets/notNets and ICMPv6 echo",
                 {Probes("b", "a", {kTcp6}, true), Probes("b", "a", {kTcp4, kUdp6, kUdp4, kEcho6, kEcho4}, false),
                  Probes("c", "a", {kEcho6}, true), Probes("c", "a", {kTcp6, kTcp4, kUdp6, kEcho4}, false),
                  Probes("a", "c", {kEcho6, kTcp4}, true)});
  DeletePolicies();
}

// terwayd's record of a pod: its IPv4/IPv6 pair, ENI and container, read
// from the state database it keeps ("" fields when it has none).
std::string RecordedPair(const std::string& state_db, const std::string& name) {
  auto store = store::StateStore::Open(state_db);
  if (!store.ok()) return "cannot open " + state_db + ": " + store.error().ToString();
  auto allocs = (*store)->ListAllocations();
  if (!allocs.ok()) return allocs.error().ToString();
  std::string out;
  for (const auto& a : *allocs) {
    if (a.pod_namespace == "x" && a.pod_name == name) {
      out += fmt::format("{} {} {} {} ", a.ip, a.ipv6, a.eni_id, a.container_id);
    }
  }
  return out;
}

// Across a SIGKILL of node1's terwayd and its restart: x/a (node1) streams
// to x/c (node2) over IPv6 and x/c pings x/a with ping -6, losing nothing;
// meanwhile x/b's IPv6 route on node1 is deleted (a broken pod), and restart
// repair must put it back -- the IPv6 half of the pod's wiring, not only
// the IPv4 half. Each pod keeps its pair: the pod-ips annotation,
// status.podIPs and terwayd's record (address pair, ENI, container) are what
// they were, and terwayd serves x/a with the same address and ENI.
void LabDualPolicy::StreamAndPingAcrossTerwaydRestart() {
  const std::string state_db = State()["nodes"][0]["state_db"];
  const std::string log_path = State()["nodes"][0]["log"];
  const std::string node1 = NodeNetns(0);
  struct Seen {
    std::string annotation, pod_ips, record;
  };
  auto seen = [&](const std::string& name) {
    auto ips = PodIps("x/" + name);
    return Seen{KubectlGet("pod", name, "{.metadata.annotations.k8s\\.aliyun\\.com/pod-ips}", "x"),
                fmt::format("{}", fmt::join(ips, ",")), RecordedPair(state_db, name)};
  };
  std::map<std::string, Seen> before;
  for (const char* p : {"a", "b"}) {
    before[p] = seen(p);
    EXPECT_EQ(before[p].annotation, V4(p) + "," + V6(p)) << "x/" << p << "'s k8s.aliyun.com/pod-ips";
    EXPECT_NE(before[p].record.find(V4(p) + " " + V6(p) + " eni-"), std::string::npos)
        << "terwayd's record of x/" << p << " is not its pair: '" << before[p].record << "'";
  }
  auto b_route = [&] { return Capture("ip -n " + node1 + " -6 route show " + V6("b")); };
  ASSERT_NE(b_route(), "") << "node1 has no IPv6 route to x/b to break";

  TcpStream stream;
  StartStream("stream6", pods_["a"].netns, pods_["c"].netns, V6("c"), 7100, &stream);
  if (HasFatalFailure()) return;
  Process ping;
  StartPing("ping6", pods_["c"].netns, V6("a"), &ping);
  if (HasFatalFailure()) return;
  const size_t log_at = ReadFile(log_path).size();

  auto killed = Lab({"terwayd", "kill", "node1"});
  ASSERT_EQ(killed.exit_code, 0) << killed.output;
  EXPECT_EQ(Capture("ip -n " + node1 + " -6 route del " + V6("b") + " 2>&1"), "");
  // The break is real: x/b is out of reach over IPv6 (and still over IPv4).
  ExpectVerdicts("x/b's IPv6 route deleted with terwayd down",
                 {Probes("a", "b", {kTcp6}, false), Probes("a", "b", {kTcp4}, true)}, 10s);
  EXPECT_TRUE(stream.Grows(4096, 15s)) << "the IPv6 stream stalled with terwayd down";
  auto started = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_TRUE(stream.Grows(4096, 15s)) << "the IPv6 stream stalled after the restart";

  PingCount count = StopPing(ping);
  std::cout << fmt::format("[ RESTART ] ping -6 {} sent, {} received across the SIGKILL and restart; stream {} bytes\n",
                           count.sent, count.received, stream.Bytes());
  // Nothing on the path depends on terwayd running; only the echo in flight
  // when SIGINT stops ping can miss its reply.
  EXPECT_GE(count.sent, 40) << "the ping did not span the restart:\n" << count.log;
  EXPECT_LE(count.sent - count.received, 1) << count.log;
  EXPECT_EQ(stream.Broken(), "");

  // Restart repair: x/b's IPv6 route is back (it ran before terwayd said it
  // was ready, which `terwayd start` waits for) and x/b answers over IPv6;
  // x/a, untouched, needed nothing.
  EXPECT_NE(b_route(), "") << "restart repair did not restore x/b's IPv6 route";
  ExpectVerdicts("after the restart", {Probes("a", "b", kIpv6Kinds, true), Probes("c", "b", kIpv6Kinds, true),
                                       Probes("c", "a", kIpv6Kinds, true)});
  const std::string restarted = ReadFile(log_path).substr(log_at);
  bool b_repaired = false;
  for (const auto& line : Split(restarted)) {
    if (line.find("restart repair") == std::string::npos && line.find("state rebuild") == std::string::npos) continue;
    EXPECT_EQ(line.find("pod x/a ("), std::string::npos)
        << "the restarted terwayd did not find x/a as it was: " << line;
    b_repaired |= line.find("restart repair: repaired pod x/b (") != std::string::npos;
  }
  EXPECT_TRUE(b_repaired) << "no restart repair of x/b in the restarted terwayd's log:\n" << restarted;
  for (const char* p : {"a", "b"}) {
    Seen after = seen(p);
    EXPECT_EQ(after.annotation, before[p].annotation) << "x/" << p << "'s k8s.aliyun.com/pod-ips";
    EXPECT_EQ(after.pod_ips, before[p].pod_ips) << "x/" << p << "'s status.podIPs";
    EXPECT_EQ(after.record, before[p].record) << "terwayd's record of x/" << p;
  }
  const std::string socket = State()["nodes"][0]["socket"];
  auto show = RunCommand({BinaryPath("terway-cli"), "show", "pod", "x/a", "-o", "json", "--socket", socket});
  EXPECT_EQ(show.exit_code, 0) << show.output;
  // Its trace is [{key, value}...]: the address and ENI it serves x/a with.
  auto j = nlohmann::json::parse(show.output, nullptr, false);
  std::map<std::string, std::string> trace;
  if (j.is_object() && j["trace"].is_array()) {
    for (const auto& kv : j["trace"]) trace[kv.value("key", "")] = kv.value("value", "");
  }
  EXPECT_EQ(trace["ipv6"], V6("a")) << show.output;
  EXPECT_EQ(fmt::format("{} {} {} ", trace["ip"], trace["ipv6"], trace["eni_id"]),
            before["a"].record.substr(0, before["a"].record.find(' ', before["a"].record.find("eni-")) + 1))
      << "the restarted terwayd serves x/a as " << show.output;
  // The operator's listing of the state database shows the pair too.
  auto pods = RunCommand({BinaryPath("terway-cli"), "pods", "--state", state_db});
  EXPECT_EQ(pods.exit_code, 0) << pods.output;
  bool listed = false;
  for (const auto& line : terway::Split(pods.output, '\n')) {
    listed = listed || (line.find("x/a ") == 0 && line.find(" " + trace["ip"] + " ") != std::string::npos &&
                        line.find(" " + V6("a") + " ") != std::string::npos);
  }
  EXPECT_TRUE(listed) << "terway-cli pods does not list x/a with " << trace["ip"] << " and " << V6("a") << ":\n"
                      << pods.output;
}

TEST_F(LabDualPolicy, Ipv6PolicyCalicoIcmpv6AndRestartRepairOfDualStackPods) {
  SetUpWorld();
  if (HasFatalFailure()) return;
  ExpectOpen("no policy: every pod reaches every other over both families");
  if (HasFailure()) return;  // the probes themselves do not work: nothing below could mean anything
  {
    SCOPED_TRACE("Kubernetes ipBlocks");
    KubernetesIpBlocks();
  }
  {
    SCOPED_TRACE("neighbour discovery under isolation");
    NeighbourDiscoveryUnderIsolation();
  }
  {
    SCOPED_TRACE("Calico IPv6 nets and ICMPv6");
    CalicoIpv6NetsAndIcmpv6();
  }
  ExpectOpen("every policy deleted");
  {
    SCOPED_TRACE("terwayd restart");
    StreamAndPingAcrossTerwaydRestart();
  }
}

}  // namespace
}  // namespace terway::testing
