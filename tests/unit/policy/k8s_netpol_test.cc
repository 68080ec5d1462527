// Kubernetes NetworkPolicy semantics on the upstream e2e world (x, y, z x
// a, b, c; ports 80/81). Each case: policies, a probe (protocol, port) and
// the expected reachability of every ordered pod pair, checked through
// Explain on the compiled model (the one the nft renderer programs).
#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT

struct Probe {
  Protocol proto;
  uint16_t port;
  Reach expect;
};

struct NetpolCase {
  const char* name;
  std::vector<std::string> policies;
  std::vector<Probe> probes;
};

bool All(const std::string&, const std::string&) { return true; }

const NetpolCase kCases[] = {
    {"no policies: everything reachable", {}, {{Protocol::kTCP, 80, All}, {Protocol::kUDP, 81, All}}},
    {"default-deny-ingress in x",
     {R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{}}})"},
     {{Protocol::kTCP, 80, [](auto&, auto& to) { return Ns(to) != "x"; }},
      {Protocol::kSCTP, 81, [](auto&, auto& to) { return Ns(to) != "x"; }}}},
    {"default-deny-egress in x (egress-only: ingress of x stays open)",
     {R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{},"policyTypes":["Egress"]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto&) { return Ns(from) != "x"; }}}},
    {"default-deny-all in x",
     {R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return Ns(from) != "x" && Ns(to) != "x"; }}}},
    {"allow-all ingress rule {} in x",
     {R"({"metadata":{"name":"all","namespace":"x"},"spec":{"podSelector":{},"ingress":[{}]}})"},
     {{Protocol::kTCP, 80, All}, {Protocol::kUDP, 80, All}}},
    {"allow-all egress rule {} with deny-all ingress",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{},"egress":[{}],"policyTypes":["Ingress","Egress"]}})"},
     {{Protocol::kTCP, 80, [](auto&, auto& to) { return Ns(to) != "x"; }}}},
    {"x/a: ingress from pod=b in its namespace only",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || from == "x/b"; }}}},
    {"x/a: ingress from namespaces ns=y",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "y"; }}}},
    {"namespaceSelector matchExpressions ns In [y]",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"namespaceSelector":{"matchExpressions":[{"key":"ns","operator":"In","values":["y"]}]}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "y"; }}}},
    {"empty namespaceSelector = all namespaces; nil = own namespace",
     {R"({"metadata":{"name":"all-ns","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"namespaceSelector":{},"podSelector":{"matchLabels":{"pod":"c"}}}]}]}})",
      R"({"metadata":{"name":"own-ns","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"b"}},
        "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"c"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) {
         if (to == "x/a") return Name(from) == "c";
         if (to == "x/b") return from == "x/c";
         return true;
       }}}},
    {"podSelector OR namespaceSelector (two peers)",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}},{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "y" || from == "x/b"; }}}},
    {"podSelector AND namespaceSelector (one peer)",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}},"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || from == "y/b"; }}}},
    {"matchExpressions NotIn / In / Exists / DoesNotExist",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchExpressions":[{"key":"pod","operator":"Exists"}]},
        "ingress":[{"from":[{"namespaceSelector":{"matchExpressions":[{"key":"ns","operator":"NotIn","values":["x"]}]},
                             "podSelector":{"matchExpressions":[{"key":"pod","operator":"In","values":["b","c"]},
                                                                {"key":"absent","operator":"DoesNotExist"}]}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return Ns(to) != "x" || (Ns(from) != "x" && Name(from) != "a"); }}}},
    {"port 80 only: 81 and other protocols isolated",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"port":80}]}]}})"},
     {{Protocol::kTCP, 80, All},
      {Protocol::kTCP, 81, [](auto&, auto& to) { return to != "x/a"; }},
      {Protocol::kUDP, 80, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"SCTP rule is never TCP, and still isolates TCP",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"protocol":"SCTP","port":80}]}]}})"},
     {{Protocol::kSCTP, 80, All},
      {Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }},
      {Protocol::kSCTP, 81, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"UDP rule on 81",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"protocol":"UDP","port":81}]}]}})"},
     {{Protocol::kUDP, 81, All}, {Protocol::kUDP, 80, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"endPort range 80-81 (TCP)",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"protocol":"TCP","port":80,"endPort":81}]}]}})"},
     {{Protocol::kTCP, 80, All}, {Protocol::kTCP, 81, All}, {Protocol::kTCP, 82, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"protocol without port: every port of that protocol",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"protocol":"UDP"}]}]}})"},
     {{Protocol::kUDP, 81, All}, {Protocol::kUDP, 9999, All}, {Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"named ingress port serve-81-tcp resolves on the destination pod",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"port":"serve-81-tcp"}]}]}})"},
     {{Protocol::kTCP, 81, All},
      {Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }},
      {Protocol::kUDP, 81, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"named port with the wrong protocol matches nothing but isolates",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"protocol":"UDP","port":"serve-81-tcp"}]}]}})"},
     {{Protocol::kTCP, 81, [](auto&, auto& to) { return to != "x/a"; }},
      {Protocol::kUDP, 81, [](auto&, auto& to) { return to != "x/a"; }}}},
    {"policies are additive (80 from one, 81 from another)",
     {R"({"metadata":{"name":"p80","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"port":80}],"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})",
      R"({"metadata":{"name":"p81","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"ports":[{"port":81}],"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || from == "x/b"; }},
      {Protocol::kTCP, 81, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "y"; }}}},
    // No policyTypes + egress rules defaults to [Ingress, Egress]: x/a's
    // ingress is isolated too (it has no ingress rules).
    {"egress of x/a only to y on port 80; needs egress AND ingress",
     {R"({"metadata":{"name":"eg","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "egress":[{"to":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}],"ports":[{"port":80}]}]}})",
      R"({"metadata":{"name":"deny","namespace":"y"},"spec":{"podSelector":{"matchLabels":{"pod":"c"}}}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) {
         if (to == "y/c" || to == "x/a") return false;
         return from != "x/a" || Ns(to) == "y";
       }},
      {Protocol::kTCP, 81, [](auto& from, auto& to) { return to != "y/c" && to != "x/a" && from != "x/a"; }}}},
    {"explicit policyTypes [Egress] ignores ingress rules",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},"policyTypes":["Egress"],
        "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto&) { return from != "x/a"; }}}},
    {"egress ipBlock with except (pod IPs are matched too)",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},"policyTypes":["Egress"],
        "egress":[{"to":[{"ipBlock":{"cidr":"198.18.2.0/24","except":["198.18.2.2/32"]}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return from != "x/a" || to == "y/a" || to == "y/c"; }}}},
    {"ingress ipBlock selects pods by address, with host bits in the CIDR",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"ipBlock":{"cidr":"198.18.3.1/30","except":["198.18.3.3/32"]}}]}]}})"},
     {{Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || from == "z/a" || from == "z/b"; }}}},
    {"egress named port resolves on each destination pod",
     {R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},"policyTypes":["Egress"],
        "egress":[{"ports":[{"port":"serve-81-udp","protocol":"UDP"}]}]}})"},
     {{Protocol::kUDP, 81, All}, {Protocol::kUDP, 80, [](auto& from, auto&) { return from != "x/a"; }}}},
};

class NetpolTable : public ::testing::TestWithParam<NetpolCase> {};

TEST_P(NetpolTable, Reachability) {
  const NetpolCase& c = GetParam();
  PolicyInputs in = NetpolWorld();
  for (const auto& p : c.policies) in.policies.push_back(K8s(p));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  for (const auto& probe : c.probes) {
    EXPECT_EQ(Mismatches(cp, probe.proto, probe.port, probe.expect), "")
        << c.name << " probing " << probe.port << "/" << ProtocolName(probe.proto);
  }
}

INSTANTIATE_TEST_SUITE_P(UpstreamScenarios, NetpolTable, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(Netpol, EgressNamedPortUsesEachPodsOwnNumber) {
  PolicyInputs in = NetpolWorld();
  // y/b serves "metrics" on 9090, y/c on 9100; x/a may reach "metrics" only.
  for (auto& p : in.pods) {
    if (p.Key() == "y/b") p.ports.push_back({"metrics", 9090, "TCP"});
    if (p.Key() == "y/c") p.ports.push_back({"metrics", 9100, "TCP"});
  }
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "policyTypes":["Egress"],"egress":[{"ports":[{"port":"metrics"}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_TRUE(cp.Explain("x/a", "y/b", Protocol::kTCP, 9090)->allowed);
  EXPECT_FALSE(cp.Explain("x/a", "y/b", Protocol::kTCP, 9100)->allowed);
  EXPECT_TRUE(cp.Explain("x/a", "y/c", Protocol::kTCP, 9100)->allowed);
  EXPECT_FALSE(cp.Explain("x/a", "y/c", Protocol::kTCP, 9090)->allowed);
  EXPECT_FALSE(cp.Explain("x/a", "y/a", Protocol::kTCP, 9090)->allowed);
}

TEST(Netpol, TrafficFromThePodsOwnNodeIsAlwaysAllowed) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{}}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto e = cp.Explain("198.18.0.1", "x/a", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->allowed) << e->ToString();
  EXPECT_NE(e->ingress.reason.find("own node"), std::string::npos);
  // Another address (not the node) is denied.
  EXPECT_FALSE(cp.Explain("198.18.0.2", "x/a", Protocol::kTCP, 80)->allowed);
}

TEST(Netpol, ExplainNamesTheDecidingPolicyAndRule) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"from-b","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"c"}}}]},{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto e = cp.Explain("x/b", "x/a", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->allowed);
  EXPECT_EQ(e->ingress.reason, "Allow by k8s:x/from-b ingress[1]");
  EXPECT_FALSE(e->ingress.counter.empty());
  EXPECT_EQ(e->egress.reason, "no policy selects x/b for egress");
  auto d = cp.Explain("y/b", "x/a", Protocol::kTCP, 80);
  EXPECT_FALSE(d->allowed);
  EXPECT_NE(d->ingress.reason.find("isolated for ingress by k8s:x/from-b"), std::string::npos) << d->ToString();
  EXPECT_FALSE(cp.Explain("x/nope", "x/a", Protocol::kTCP, 80).ok());
}

// Updates take effect by recompiling from the new inputs (the daemon
// recompiles on every change): label changes, pod IP changes, deletion.
TEST(Netpol, LabelIpAndPolicyUpdatesApplyOnRecompile) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"team":"blue"}}}]}]}})"));
  EXPECT_FALSE(PolicyCompiler().Compile(in).Explain("z/c", "x/a", Protocol::kTCP, 80)->allowed);
  in.namespaces[2].labels["team"] = "blue";  // z gains the label
  EXPECT_TRUE(PolicyCompiler().Compile(in).Explain("z/c", "x/a", Protocol::kTCP, 80)->allowed);
  in.pods[0].labels["pod"] = "renamed";  // x/a no longer selected
  EXPECT_TRUE(PolicyCompiler().Compile(in).Explain("y/c", "x/a", Protocol::kTCP, 80)->allowed);
  in.pods[0].labels["pod"] = "a";
  EXPECT_FALSE(PolicyCompiler().Compile(in).Explain("y/c", "x/a", Protocol::kTCP, 80)->allowed);
  // z/c's IP changes: the peer set follows it.
  in.pods[8].ip = Ipv4Addr::Parse("198.18.9.9").value();
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_TRUE(cp.Explain("198.18.9.9", "x/a", Protocol::kTCP, 80)->allowed);
  EXPECT_FALSE(cp.Explain("198.18.3.3", "x/a", Protocol::kTCP, 80)->allowed);
  in.policies.clear();
  EXPECT_TRUE(PolicyCompiler().Compile(in).Explain("y/c", "x/a", Protocol::kTCP, 80)->allowed);
}

TEST(Netpol, PeerSetsAreSharedAcrossRulesAndPods) {
  PolicyInputs in = NetpolWorld();
  // The same peer in two policies over all 9 pods: one set.
  in.policies.push_back(K8s(R"({"metadata":{"name":"p1","namespace":"x"},"spec":{"podSelector":{},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}]}]}})"));
  in.policies.push_back(K8s(R"({"metadata":{"name":"p2","namespace":"x"},"spec":{"podSelector":{},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}],"ports":[{"port":81}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_EQ(cp.sets().size(), 1u);
  EXPECT_EQ(cp.sets()[0].addresses.ToString(), "198.18.2.1-198.18.2.3");
  EXPECT_EQ(cp.chains().size(), 3u);  // x/a, x/b, x/c ingress
  for (const auto& ch : cp.chains()) EXPECT_EQ(ch.rules.size(), 2u);
}

TEST(Netpol, NodeFilterAndPodsOutsidePolicy) {
  PolicyInputs in = NetpolWorld();
  in.pods[1].node = "node-2";        // x/b elsewhere
  in.pods[2].exclusive_eni = true;   // x/c: exclusive ENI, outside policy
  in.policies.push_back(K8s(R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{}}})"));
  CompiledPolicy cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  ASSERT_EQ(cp.chains().size(), 1u);
  EXPECT_EQ(cp.pods()[cp.chains()[0].pod].Key(), "x/a");
  // Explain says where it cannot decide instead of claiming "no policy".
  auto e = cp.Explain("y/a", "x/b", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->ingress.evaluated);
  EXPECT_NE(e->ingress.reason.find("runs on node node-2"), std::string::npos) << e->ToString();
  e = cp.Explain("y/a", "x/c", Protocol::kTCP, 80);
  EXPECT_TRUE(e->allowed);
  EXPECT_NE(e->ingress.reason.find("outside policy (exclusive ENI)"), std::string::npos) << e->ToString();
}

TEST(Netpol, UnreachableRepeatsArePrunedWithoutChangingVerdicts) {
  PolicyInputs in = NetpolWorld();
  for (const char* name : {"p1", "p2", "p3"}) {
    in.policies.push_back(K8s(std::string(R"({"metadata":{"name":")") + name +
                              R"(","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
        "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}],"ports":[{"port":80}]},{}]}})"));
  }
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  const PodChain* chain = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(chain, nullptr);
  // p1's two rules; the second ({}: all traffic) ends the chain.
  ASSERT_EQ(chain->rules.size(), 2u);
  EXPECT_EQ(cp.DescribeRule(chain->rules[0]), "Allow by k8s:x/p1 ingress[0]");
  EXPECT_EQ(cp.DescribeRule(chain->rules[1]), "Allow by k8s:x/p1 ingress[1]");
  EXPECT_EQ(chain->policies.size(), 3u);
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 81, [](auto&, auto&) { return true; }), "");
}

TEST(Netpol, HostNetworkPodsAreNeverSelectorPeersButIpBlocksSeeEveryAddress) {
  PolicyInputs in = NetpolWorld();
  PodInfo host;
  host.namespace_ = "x";
  host.name = "host-agent";
  host.labels = {{"pod", "b"}};
  host.ip = Ipv4Addr::Parse("198.18.0.1").value();
  host.host_network = true;
  host.node = "node-1";
  in.pods.push_back(host);
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  ASSERT_EQ(cp.sets().size(), 1u);
  EXPECT_EQ(cp.sets()[0].addresses.ToString(), "198.18.1.2");
}

// An IPv6 block admits no IPv4 address (the world's pods are IPv4 only):
// the policy isolates x/a and allows nothing of its IPv4 traffic.
TEST(Netpol, Ipv6BlocksAdmitNoIpv4Address) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"ipBlock":{"cidr":"::/0"}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }), "");
}

TEST(Netpol, BadPoliciesFailNamingTheField) {
  k8s::NetworkPolicy bad_op;  // the typed parser may accept operators we must refuse
  bad_op.metadata.name = "p";
  bad_op.metadata.namespace_ = "x";
  bad_op.pod_selector.match_expressions.push_back({"a", "Sometimes", {}});
  auto r = PolicyFromK8s(bad_op);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("Sometimes"), std::string::npos) << r.error().ToString();
  auto bad_cidr = k8s::ParseNetworkPolicy(nlohmann::json::parse(R"({"metadata":{"name":"p","namespace":"x"},
      "spec":{"podSelector":{},"ingress":[{"from":[{"ipBlock":{"cidr":"300.1.2.3/8"}}]}]}})"));
  ASSERT_TRUE(bad_cidr.ok());
  r = PolicyFromK8s(*bad_cidr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("spec.ingress[0].from[0].ipBlock.cidr"), std::string::npos)
      << r.error().ToString();
}

TEST(Netpol, PodFromK8sTakesIpv4AndNamedPorts) {
  auto pod = k8s::ParsePod(nlohmann::json::parse(R"({"metadata":{"name":"a","namespace":"x","labels":{"pod":"a"}},
      "spec":{"nodeName":"n1","containers":[{"name":"c","ports":[{"name":"http","containerPort":8080}]}]},
      "status":{"podIP":"198.18.1.1","podIPs":[{"ip":"fd00::1"},{"ip":"198.18.1.1"}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  PodInfo p = PodFromK8s(*pod);
  ASSERT_TRUE(p.ip.has_value());
  EXPECT_EQ(p.ip->ToString(), "198.18.1.1");
  EXPECT_EQ(p.node, "n1");
  ASSERT_EQ(p.ports.size(), 1u);
  EXPECT_EQ(p.ports[0].name, "http");
  EXPECT_EQ(p.ports[0].protocol, "TCP");
}

}  // namespace
}  // namespace terway::policy
