// The compiler on Calico's semantics (docs/calico-semantics.md), through
// Explain on the compiled model (the one the nft renderer programs):
// ordering and the v3.32 tie-break, tiers with Pass and defaultAction, each
// match and its negation on real packet fields, network-set scopes, the
// labels Calico gives endpoints (pcns/pcsa, service accounts), services,
// named ports on the source, and the fail-closed cases.
#include <gtest/gtest.h>

#include "policy/calico_objects.h"
#include "policy/l4_match.h"
#include "policy/policy_order.h"
#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT

Packet Tcp(uint16_t dport, uint16_t sport = 40000) {
  Packet p;
  p.protocol = Protocol::kTCP;
  p.destination_port = dport;
  p.source_port = sport;
  return p;
}
Packet Udp(uint16_t dport, uint16_t sport = 40000) {
  Packet p = Tcp(dport, sport);
  p.protocol = Protocol::kUDP;
  return p;
}
Packet Icmp(uint8_t type, uint8_t code = 0) {
  Packet p;
  p.protocol = Protocol::kICMP;
  p.icmp_type = type;
  p.icmp_code = code;
  return p;
}
Packet Proto(uint8_t n) {
  Packet p;
  p.protocol = Protocol(n);
  return p;
}

CompiledPolicy Compile(const std::vector<Policy>& policies, PolicyInputs in = NetpolWorld()) {
  in.policies = policies;
  return PolicyCompiler().Compile(std::move(in));
}

bool Allowed(const CompiledPolicy& cp, const std::string& from, const std::string& to, const Packet& pkt) {
  auto e = cp.Explain(from, to, pkt);
  EXPECT_TRUE(e.ok()) << e.error().ToString();
  return e.ok() && e->allowed;
}

std::string Why(const CompiledPolicy& cp, const std::string& from, const std::string& to, const Packet& pkt) {
  auto e = cp.Explain(from, to, pkt);
  return e.ok() ? e->ToString() : e.error().ToString();
}

// A NetworkPolicy in x selecting pod a, with these ingress rules.
Policy IngressOfXa(const std::string& rules, const std::string& extra = "") {
  return Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"selector":"pod == 'a'",)" +
                extra + R"("ingress":[)" + rules + "]}}");
}

// --- ordering

TEST(CalicoOrder, EqualOrderTieBreakIsNameThenNamespaceThenKind) {
  auto np = [](const std::string& kind, const std::string& name, const std::string& ns, const std::string& action) {
    std::string meta = ns.empty() ? R"({"name":")" + name + R"("})" : R"({"name":")" + name + R"(","namespace":")" + ns + R"("})";
    return Calico(R"({"kind":")" + kind + R"(","metadata":)" + meta +
                  R"(,"spec":{"order":5,"selector":"pod == 'a'","ingress":[{"action":")" + action + R"("}]}})");
  };
  // Byte-wise on "name/namespace/kind": "a-b/..." sorts before "a/..." ('-' < '/').
  auto cp = Compile({np("NetworkPolicy", "a", "x", "Allow"), np("NetworkPolicy", "a-b", "x", "Deny")});
  EXPECT_EQ(cp.Explain("y/b", "x/a", Tcp(80))->ingress.reason, "Deny by calico:x/a-b ingress[0]");
  // Same name: the global policy (empty namespace) first.
  cp = Compile({np("NetworkPolicy", "same", "x", "Allow"), np("GlobalNetworkPolicy", "same", "", "Deny")});
  EXPECT_EQ(cp.Explain("y/b", "x/a", Tcp(80))->ingress.reason, "Deny by global:same ingress[0]");
  // Name before namespace: "b" in x after "a" in y... both select x/a only
  // when global; here two namespaced policies of different names.
  cp = Compile({np("NetworkPolicy", "zz", "x", "Deny"), np("NetworkPolicy", "aa", "x", "Allow")});
  EXPECT_EQ(cp.Explain("y/b", "x/a", Tcp(80))->ingress.reason, "Allow by calico:x/aa ingress[0]");
  // A Kubernetes policy is order 1000 in tier default, kind
  // KubernetesNetworkPolicy: before a Calico NetworkPolicy of the same name.
  Policy k8s = K8s(R"({"metadata":{"name":"m","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}]}]}})");
  Policy calico = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"m","namespace":"x"},"spec":{"order":1000,
      "selector":"pod == 'a'","ingress":[{"action":"Deny"}]}})");
  cp = Compile({calico, k8s});
  EXPECT_TRUE(Allowed(cp, "y/b", "x/a", Tcp(80))) << Why(cp, "y/b", "x/a", Tcp(80));
  EXPECT_EQ(cp.Explain("z/b", "x/a", Tcp(80))->ingress.reason, "Deny by calico:x/m ingress[0]");
}

TEST(CalicoOrder, PolicyBeforeAndTierRanking) {
  Policy a, b;
  a.name = b.name = "n";
  a.order = 1;
  EXPECT_TRUE(PolicyBefore(a, b));  // absent order sorts last
  EXPECT_FALSE(PolicyBefore(b, a));
  b.order = 0.5;
  EXPECT_TRUE(PolicyBefore(b, a));
  Policy in_ghost;
  in_ghost.tier = "ghost";
  auto tiers = RankTiers({{"b", 10, false}, {"a", 10, true}, {"late", std::nullopt, false}}, {in_ghost});
  ASSERT_EQ(tiers.size(), 5u);
  std::vector<std::string> names;
  for (const auto& t : tiers) names.push_back(t.name);
  // Equal order: by name; absent order = 1,000,000 like `default`, so
  // "default" < "late" by name; unknown tiers after all.
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "default", "late", "ghost"}));
  EXPECT_TRUE(tiers[0].default_pass);
  EXPECT_FALSE(tiers[4].known);
}

// --- tiers

PolicyInputs TieredWorld() {
  PolicyInputs in = NetpolWorld();
  in.tiers = {{"security", 100, false}, {"audit", 50, true}};
  return in;
}

TEST(CalicoTiers, PassGoesToTheNextTierAndTheTierDefaultActionEndsIt) {
  auto sec = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"sec"},"spec":{"tier":"security","order":1,
      "selector":"projectcalico.org/namespace == 'x'",
      "ingress":[{"action":"Pass","source":{"namespaceSelector":"ns == 'y'"}},
                 {"action":"Deny","source":{"namespaceSelector":"ns == 'z'","selector":"pod == 'a'"}},
                 {"action":"Allow","source":{"namespaceSelector":"ns == 'z'"}}]}})");
  // The default tier isolates x/a: only from y/b.
  auto dflt = K8s(R"({"metadata":{"name":"only-yb","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}},"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})");
  auto cp = Compile({sec, dflt}, TieredWorld());
  EXPECT_TRUE(Allowed(cp, "y/b", "x/a", Tcp(80)));    // Pass, then the k8s allow
  EXPECT_FALSE(Allowed(cp, "y/c", "x/a", Tcp(80)));   // Pass, then default-tier deny
  EXPECT_FALSE(Allowed(cp, "z/a", "x/a", Tcp(80)));   // Deny in security
  EXPECT_TRUE(Allowed(cp, "z/b", "x/a", Tcp(80)));    // Allow in security: default tier never runs
  EXPECT_FALSE(Allowed(cp, "x/b", "x/a", Tcp(80)));   // no rule in security: its default action Deny
  EXPECT_FALSE(Allowed(cp, "x/c", "x/b", Tcp(80)));   // x/b: security denies at its end
  EXPECT_TRUE(Allowed(cp, "y/a", "x/b", Tcp(80)));    // x/b: Pass, default tier does not take part
  auto e = cp.Explain("y/c", "x/a", Tcp(80));
  EXPECT_EQ(e->ingress.passed, std::vector<std::string>{"security"});
  EXPECT_EQ(e->ingress.tier, "default");
  EXPECT_NE(e->ingress.reason.find("no rule matched; x/a is isolated for ingress by k8s:x/only-yb"), std::string::npos)
      << e->ToString();
  auto end = cp.Explain("x/b", "x/a", Tcp(80));
  EXPECT_NE(end->ingress.reason.find("no rule matched in tier security (default action Deny)"), std::string::npos)
      << end->ToString();
  // The chain: one part per tier taking part, in tier order.
  const PodChain* c = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->tiers.size(), 2u);
  EXPECT_EQ(c->tiers[0].tier, "security");
  EXPECT_EQ(c->tiers[0].chain, c->name);
  EXPECT_EQ(c->tiers[1].tier, "default");
  EXPECT_NE(c->tiers[1].chain, c->name);
}

TEST(CalicoTiers, DefaultActionPassAndOnlyTiersThatSelectTakePart) {
  // audit (order 50, defaultAction Pass) logs everything into x; its end
  // passes. security's policy governs egress only: it takes no part in
  // ingress.
  auto audit = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"log-x"},"spec":{"tier":"audit",
      "selector":"projectcalico.org/namespace == 'x'","ingress":[{"action":"Log"}]}})");
  auto sec = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"eg"},"spec":{"tier":"security",
      "types":["Egress"],"egress":[{"action":"Deny","protocol":"UDP"}]}})");
  auto cp = Compile({audit, sec}, TieredWorld());
  auto e = cp.Explain("y/a", "x/a", Tcp(80));
  EXPECT_TRUE(e->ingress.allowed) << e->ToString();
  EXPECT_EQ(e->ingress.logged, std::vector<std::string>{"Log by global:log-x ingress[0] in tier audit"});
  EXPECT_EQ(e->ingress.passed, std::vector<std::string>{"audit"});
  EXPECT_EQ(e->ingress.reason, "tiers audit passed; the namespace profile allows");
  EXPECT_EQ(cp.Chain(*cp.FindPod("x/a"), Direction::kIngress)->tiers.size(), 1u);
  // security (egress): no rule for TCP, so its default Deny.
  EXPECT_FALSE(e->egress.allowed);
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Udp(81)));
  // A Pass in the last tier taking part: the profile allows.
  auto pass = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{"tier":"security",
      "ingress":[{"action":"Pass","protocol":"TCP"}]}})");
  cp = Compile({pass}, TieredWorld());
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Udp(80)));
  EXPECT_NE(cp.Explain("y/a", "x/a", Tcp(80))->ingress.reason.find("Pass by global:p ingress[0] in tier security"),
            std::string::npos);
}

TEST(CalicoTiers, APolicyInAMissingTierSortsLastAndDenies) {
  auto ghost = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"g","namespace":"x"},"spec":{"tier":"ghost",
      "order":1,"selector":"pod == 'a'","ingress":[{"action":"Allow","protocol":"UDP"}]}})");
  // In the default tier (evaluated first): y passes on, z is allowed.
  auto dflt = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"d","namespace":"x"},"spec":{"order":1000,
      "selector":"pod == 'a'","ingress":[{"action":"Pass","source":{"namespaceSelector":"ns == 'y'"}},
                                         {"action":"Allow","source":{"namespaceSelector":"ns == 'z'"}}]}})");
  auto cp = Compile({ghost, dflt});
  EXPECT_TRUE(Allowed(cp, "z/a", "x/a", Tcp(80)));   // decided in default
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Udp(80)));   // passed to ghost, which allows UDP
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80)));  // ghost ends in deny
  EXPECT_FALSE(Allowed(cp, "x/b", "x/a", Udp(80)));  // default tier's own end: deny
  auto e = cp.Explain("y/a", "x/a", Tcp(80));
  EXPECT_NE(e->ingress.reason.find("in tier ghost (no such Tier: it ends in deny)"), std::string::npos) << e->ToString();
  // The compiled copy says why.
  const Policy* g = nullptr;
  for (const auto& p : cp.policies()) {
    if (p.name == "g") g = &p;
  }
  ASSERT_NE(g, nullptr);
  ASSERT_EQ(g->fail_closed.size(), 1u);
  EXPECT_EQ(g->fail_closed[0].where, "spec.tier");
  EXPECT_EQ(g->fail_closed[0].why, "tier \"ghost\" does not exist (no Tier object)");
}

// --- matches and their negations, on real packet fields

TEST(CalicoMatch, ProtocolNumbersAndNotProtocol) {
  auto cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":47},{"action":"Allow","protocol":"UDPLite"},
                                   {"action":"Deny","notProtocol":"TCP"},{"action":"Allow"})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Proto(47)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Proto(136)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Proto(50)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Udp(80)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(8)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));  // not excluded, reaches the last Allow
  // "47" is 47; protocol and notProtocol both hold.
  cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"47","notProtocol":"UDP"})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Proto(47)));
  cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"UDP","notProtocol":"UDP"})")});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Udp(80)));
  EXPECT_TRUE(cp.Chain(*cp.FindPod("x/a"), Direction::kIngress)->rules.empty());  // can never match
}

TEST(CalicoMatch, IcmpTypeAndCodeAndNotIcmp) {
  auto cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"ICMP","icmp":{"type":8}},
                                   {"action":"Allow","protocol":"ICMP","icmp":{"type":3,"code":1}})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(8)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(8, 5)));  // no code: any code
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(13)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(3, 1)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(3, 3)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80)));
  // notICMP {8, 0}: not (type 8 and code 0), ICMP only (our choice on the
  // iptables/nftables disagreement: README).
  cp = Compile({IngressOfXa(R"({"action":"Deny","notICMP":{"type":8,"code":0}},{"action":"Allow"})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(8, 0)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(8, 1)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(0)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));  // not ICMP: the notICMP rule does not match
  // Two nft rules say it (type != 8 | type 8 code != 0), disjoint.
  const PodChain* c = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_EQ(c->rules[0].ports.size(), 2u);
  // notICMP {type} alone; with icmp of the same type it can never match.
  cp = Compile({IngressOfXa(R"({"action":"Deny","notICMP":{"type":0}},{"action":"Allow"})")});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(8)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(0)));
  cp = Compile({IngressOfXa(R"({"action":"Deny","protocol":"ICMP","icmp":{"type":8},"notICMP":{"type":8}},
                              {"action":"Allow"})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Icmp(8)));
  // ICMPv6 rules never match this IPv4 datapath.
  cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"ICMPv6","icmp":{"type":128}})")});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Icmp(8)));
  EXPECT_TRUE(cp.Chain(*cp.FindPod("x/a"), Direction::kIngress) != nullptr);  // still isolated
}

TEST(CalicoMatch, PortsNotPortsAndSourcePortsOnBothSides) {
  auto cp = Compile({IngressOfXa(
      R"({"action":"Allow","protocol":"TCP","source":{"ports":["1024:65535"],"notPorts":[40001]},
          "destination":{"ports":["80:90"],"notPorts":[85,"serve-81-tcp"]}})")});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80, 40000)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(90, 1024)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(85)));          // notPorts number
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(81)));          // notPorts named, on our pod
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(91)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80, 1023)));    // source port range
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80, 40001)));   // source notPorts
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Udp(80)));
  // Egress: destination ports are the peer's, source ports ours.
  auto eg = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"e","namespace":"x"},"spec":{"selector":"pod == 'a'",
      "egress":[{"action":"Allow","protocol":"UDP","source":{"notPorts":["serve-80-udp"]},
                 "destination":{"notPorts":["1:79"]}}]}})");
  cp = Compile({eg});
  EXPECT_TRUE(Allowed(cp, "x/a", "y/a", Udp(81, 5000)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/a", Udp(53, 5000)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/a", Udp(81, 80)));  // our own named port as source port
  EXPECT_TRUE(Allowed(cp, "x/a", "y/a", Udp(81, 81)));
}

TEST(CalicoMatch, NamedPortsOnTheSourceAndWithoutAProtocol) {
  PolicyInputs in = NetpolWorld();
  // y/b serves "metrics" on TCP 9100 only.
  for (auto& p : in.pods) {
    if (p.Key() == "y/b") p.ports.push_back({"metrics", 9100, "TCP"});
  }
  auto cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"TCP","source":{"ports":["metrics"]}},
                                   {"action":"Allow","destination":{"ports":["serve-81-udp"]}})")},
                    in);
  // Source named port: (source address, TCP, source port) of a pod that
  // declares it.
  EXPECT_TRUE(Allowed(cp, "y/b", "x/a", Tcp(80, 9100)));
  EXPECT_FALSE(Allowed(cp, "y/b", "x/a", Tcp(80, 9101)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80, 9100)));   // y/a does not declare it
  EXPECT_FALSE(Allowed(cp, "y/b", "x/a", Udp(80, 9100)));
  const PodChain* c = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_EQ(c->rules.size(), 2u);
  ASSERT_EQ(c->rules[0].ports.size(), 1u);
  ASSERT_TRUE(c->rules[0].ports[0].tuple_set);
  const IpSet& t = cp.sets()[*c->rules[0].ports[0].tuple_set];
  EXPECT_TRUE(t.is_tuples);
  EXPECT_EQ(t.tuples, (std::set<AddressPortTuple>{{KeyOf(*Ipv4Addr::Parse("198.18.2.2")), 6, 9100}}));
  // Named destination port with no protocol: the port's own (UDP 81).
  EXPECT_TRUE(Allowed(cp, "z/c", "x/a", Udp(81)));
  EXPECT_FALSE(Allowed(cp, "z/c", "x/a", Tcp(81)));
}

TEST(CalicoMatch, NotSelectorIsANotInSetWithoutAPositiveSelector) {
  // Global: every address except pods labelled pod=a (anywhere).
  auto gnp = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"selector":"pod == 'c'",
      "ingress":[{"action":"Deny","source":{"notSelector":"pod == 'a'"}},{"action":"Allow"}]}})");
  auto cp = Compile({gnp});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/c", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "y/b", "x/c", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "10.9.9.9", "x/c", Tcp(80)));  // outside the cluster too
  const CompiledRule& r = cp.Chain(*cp.FindPod("x/c"), Direction::kIngress)->rules[0];
  EXPECT_FALSE(r.peer_set.has_value());
  ASSERT_TRUE(r.peer_not_set.has_value());
  EXPECT_EQ(cp.sets()[*r.peer_not_set].addresses.ToString(), "198.18.1.1, 198.18.2.1, 198.18.3.1");
  // Namespaced: scoped to the policy's namespace (folded).
  auto np = IngressOfXa(R"({"action":"Deny","source":{"notSelector":"pod == 'b'"}},{"action":"Allow"})");
  cp = Compile({np});
  EXPECT_FALSE(Allowed(cp, "x/c", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "x/b", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "y/c", "x/a", Tcp(80)));  // not in x: the Deny does not match
  EXPECT_TRUE(Allowed(cp, "10.9.9.9", "x/a", Tcp(80)));
}

TEST(CalicoMatch, NetsNotNetsAndTheLocalSide) {
  auto cp = Compile({Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{
      "selector":"projectcalico.org/namespace == 'x'",
      "ingress":[{"action":"Deny","destination":{"nets":["198.18.1.2/32"]}},
                 {"action":"Deny","destination":{"notSelector":"pod == 'c'"},"source":{"notNets":["198.18.2.0/24"]}},
                 {"action":"Allow"}]}})")});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/b", Tcp(80)));  // destination nets: x/b
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));   // from y: notNets excludes it
  EXPECT_FALSE(Allowed(cp, "z/a", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "z/a", "x/c", Tcp(80)));   // destination notSelector: x/c exempt
}

// --- network sets and their scopes (docs 2.3 / 5)

PolicyInputs NetsetWorld() {
  PolicyInputs in = NetpolWorld();
  in.network_sets = {
      {"x", "ext-x", {{"role", "ext"}}, {*Ipv4Cidr::Parse("10.1.0.0/16")}, {}},
      {"y", "ext-y", {{"role", "ext"}}, {*Ipv4Cidr::Parse("10.3.0.0/16")}, {}},
      {"", "ext-global", {{"role", "ext"}}, {*Ipv4Cidr::Parse("10.2.0.0/16")}, {*Ipv6Cidr::Parse("2001:db8::/32")}},
  };
  return in;
}

TEST(CalicoNetworkSets, RuleSelectorsSeeNetworkSetsInTheirScope) {
  struct Case {
    const char* kind;
    const char* source;
    bool x, y, global;  // 10.1.0.9 (NetworkSet in x), 10.3.0.9 (in y), 10.2.0.9 (GlobalNetworkSet)
  };
  const Case cases[] = {
      {"NetworkPolicy", R"({"selector":"role == 'ext'"})", true, false, false},
      {"NetworkPolicy", R"({"selector":"role == 'ext'","namespaceSelector":"ns == 'y'"})", false, true, false},
      {"NetworkPolicy", R"js({"selector":"role == 'ext'","namespaceSelector":"all()"})js", true, true, false},
      {"NetworkPolicy", R"js({"selector":"role == 'ext'","namespaceSelector":"global()"})js", false, false, true},
      {"NetworkPolicy", R"js({"namespaceSelector":"global()"})js", false, false, true},
      {"GlobalNetworkPolicy", R"({"selector":"role == 'ext'"})", true, true, true},
      {"GlobalNetworkPolicy", R"({"selector":"role == 'ext'","namespaceSelector":"projectcalico.org/name == 'x'"})", true,
       false, false},
      // A NetworkSet inherits its namespace's labels (pcns.*).
      {"GlobalNetworkPolicy", R"({"selector":"pcns.ns == 'y'"})", false, true, false},
      {"GlobalNetworkPolicy", R"({"notSelector":"role == 'ext'"})", false, false, false},
  };
  for (const auto& c : cases) {
    std::string meta = std::string(c.kind) == "NetworkPolicy" ? R"({"name":"p","namespace":"x"})" : R"({"name":"g"})";
    auto p = Calico(std::string(R"({"kind":")") + c.kind + R"(","metadata":)" + meta +
                    R"(,"spec":{"selector":"pod == 'a'","ingress":[{"action":"Allow","source":)" + c.source + "}]}}");
    auto cp = Compile({p}, NetsetWorld());
    EXPECT_EQ(Allowed(cp, "10.1.0.9", "x/a", Tcp(80)), c.x) << c.kind << " " << c.source;
    EXPECT_EQ(Allowed(cp, "10.3.0.9", "x/a", Tcp(80)), c.y) << c.kind << " " << c.source;
    EXPECT_EQ(Allowed(cp, "10.2.0.9", "x/a", Tcp(80)), c.global) << c.kind << " " << c.source;
  }
  // A policy's spec.selector never selects a network set (they are not
  // endpoints): a policy selecting role=ext isolates no pod.
  auto cp = Compile({Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"selector":"role == 'ext'",
      "ingress":[{"action":"Deny"}]}})")},
                    NetsetWorld());
  EXPECT_TRUE(cp.chains().empty());
}

// --- the labels Calico gives endpoints

TEST(CalicoLabels, ServiceAccountsAndInheritedNamespaceLabels) {
  PolicyInputs in = NetpolWorld();
  const std::string long_sa(63, 's');
  for (auto& p : in.pods) {
    if (p.name == "a") p.service_account = "api";
    if (p.name == "b") p.service_account = "default";
    if (p.name == "c") p.service_account = long_sa;
  }
  in.service_accounts = {{"y", "api", {{"team", "blue"}}}, {"z", "api", {{"team", "red"}}}};
  auto rule = [](const std::string& source) {
    return Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"selector":"pod == 'a' && projectcalico.org/namespace == 'x'",
        "ingress":[{"action":"Allow","source":)" + source + "}]}}");
  };
  struct Case {
    std::string source;
    std::vector<std::string> allowed;  // sources into x/a, among y/*, z/*
  };
  const Case cases[] = {
      {R"({"serviceAccounts":{"names":["api"]}})", {"y/a", "z/a"}},
      {R"({"serviceAccounts":{"selector":"team == 'blue'"}})", {"y/a"}},
      {R"({"serviceAccounts":{"names":["api"],"selector":"team == 'red'"}})", {"z/a"}},
      {R"({"selector":"pcsa.projectcalico.org/name == 'default'"})", {"y/b", "z/b"}},
      // Names of 63 characters and more carry no serviceaccount label.
      {R"({"selector":"projectcalico.org/serviceaccount == ')" + long_sa + R"('"})", {}},
      {R"({"selector":"pcsa.projectcalico.org/name == ')" + long_sa + R"('"})", {"y/c", "z/c"}},
      {R"({"selector":"pcns.ns == 'z' && projectcalico.org/orchestrator == 'k8s'"})", {"z/a", "z/b", "z/c"}},
      {R"({"namespaceSelector":"kubernetes.io/metadata.name == 'y'"})", {"y/a", "y/b", "y/c"}},
  };
  for (const auto& c : cases) {
    auto cp = Compile({rule(c.source)}, in);
    for (const char* from : {"y/a", "y/b", "y/c", "z/a", "z/b", "z/c"}) {
      bool want = std::find(c.allowed.begin(), c.allowed.end(), from) != c.allowed.end();
      EXPECT_EQ(Allowed(cp, from, "x/a", Tcp(80)), want) << c.source << " from " << from;
    }
  }
  // serviceAccountSelector on the policy: pcsa.* of the subject.
  auto cp = Compile({Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{
      "serviceAccountSelector":"team == 'blue'","ingress":[{"action":"Deny"}]}})")},
                    in);
  ASSERT_EQ(cp.chains().size(), 1u);
  EXPECT_EQ(cp.pods()[cp.chains()[0].pod].Key(), "y/a");
}

// --- services (docs 2.5)

TEST(CalicoServices, SourceBackendsAndDestinationTuples) {
  PolicyInputs in = NetpolWorld();
  ServiceBackends db;
  db.namespace_ = "y";
  db.name = "db";
  // A port without a number contributes nothing.
  db.groups = {{{*Ipv4Addr::Parse("198.18.2.1"), *Ipv4Addr::Parse("198.18.2.2")}, {{6, 5432}, {17, 0}}}};
  in.services = {db};
  // Ingress from the Service's backends (any port); egress only to its
  // backends' (address, protocol, port).
  auto p = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"selector":"pod == 'a'",
      "types":["Ingress","Egress"],
      "ingress":[{"action":"Allow","source":{"services":{"name":"db","namespace":"y"}}}],
      "egress":[{"action":"Allow","destination":{"services":{"name":"db","namespace":"y"}}},
                {"action":"Allow","destination":{"services":{"name":"missing"}}}]}})");
  auto cp = Compile({p}, in);
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Udp(81)));
  EXPECT_TRUE(Allowed(cp, "y/b", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "y/c", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "x/a", "y/a", Tcp(5432)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/a", Tcp(5433)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/a", Udp(5432)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/c", Tcp(5432)));
  const CompiledRule& r = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress)->rules[0];
  ASSERT_EQ(r.tuple_sets.size(), 1u);
  EXPECT_EQ(cp.sets()[r.tuple_sets[0]].tuples.size(), 2u);
  EXPECT_FALSE(r.peer_set.has_value());
}

// Felix builds destination tuples per EndpointSlice: a Service whose named
// targetPort resolves to 8080 on y/a and 9090 on y/b has two slices (the
// EndpointSlice controller groups pods by resolved ports), and y/a is not
// reachable on 9090 nor y/b on 8080.
TEST(CalicoServices, DestinationTuplesArePerSlice) {
  auto slice = [](const char* name, const std::string& ns_pod, int32_t port) {
    k8s::EndpointSlice s;
    s.metadata.namespace_ = "y";
    s.metadata.name = name;
    s.metadata.labels[k8s::kServiceNameLabel] = "web";
    s.address_type = "IPv4";
    s.endpoints.push_back({{PodIp("y", ns_pod)}, true});
    s.ports.push_back({"http", port, "TCP"});
    return s;
  };
  PolicyInputs in = NetpolWorld();
  in.services = ServicesFromEndpointSlices({slice("web-a", "a", 8080), slice("web-b", "b", 9090)});
  auto p = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"selector":"pod == 'a'",
      "types":["Ingress","Egress"],
      "ingress":[{"action":"Allow","source":{"services":{"name":"web","namespace":"y"}}}],
      "egress":[{"action":"Allow","destination":{"services":{"name":"web","namespace":"y"}}}]}})");
  auto cp = Compile({p}, in);
  EXPECT_TRUE(Allowed(cp, "x/a", "y/a", Tcp(8080)));
  EXPECT_TRUE(Allowed(cp, "x/a", "y/b", Tcp(9090)));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/a", Tcp(9090))) << Why(cp, "x/a", "y/a", Tcp(9090));
  EXPECT_FALSE(Allowed(cp, "x/a", "y/b", Tcp(8080))) << Why(cp, "x/a", "y/b", Tcp(8080));
  // The source match is every backend address, whatever its slice's ports.
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(9090)));
  EXPECT_TRUE(Allowed(cp, "y/b", "x/a", Udp(53)));
  EXPECT_FALSE(Allowed(cp, "y/c", "x/a", Tcp(8080)));
  const CompiledRule& r = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress)->rules[0];
  ASSERT_EQ(r.tuple_sets.size(), 1u);
  EXPECT_EQ(cp.sets()[r.tuple_sets[0]].tuples.size(), 2u);
}

// --- fail closed, compiled

TEST(CalicoFailClosedCompiled, UnenforceableAllowIsolatesAndUnreadablePolicyDeniesAtItsPlace) {
  // http: the Allow allows nothing, the policy still isolates x/a.
  auto http = IngressOfXa(R"({"action":"Allow","protocol":"TCP","http":{"methods":["GET"]}})");
  auto cp = Compile({http});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "y/a", "x/b", Tcp(80)));
  // An unreadable policy at order 20 denies x/a's ingress behind an Allow
  // at order 10, ahead of one at 30.
  auto broken = CalicoPolicyOrFailClosed(nlohmann::json::parse(R"({"kind":"NetworkPolicy",
      "metadata":{"name":"broken","namespace":"x"},"spec":{"order":20,"selector":"pod == 'a'",
      "ingress":[{"action":"Allow","protocol":"tcp"}]}})"));
  auto early = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"early","namespace":"x"},"spec":{"order":10,
      "ingress":[{"action":"Allow","source":{"namespaceSelector":"ns == 'y'"}}]}})");
  auto late = Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"late","namespace":"x"},"spec":{"order":30,
      "ingress":[{"action":"Allow"}]}})");
  cp = Compile({late, broken, early});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "z/a", "x/a", Tcp(80)));
  EXPECT_EQ(cp.Explain("z/a", "x/a", Tcp(80))->ingress.reason, "Deny by calico:x/broken ingress[0]");
  EXPECT_TRUE(Allowed(cp, "z/a", "x/b", Tcp(80)));  // outside its selector
  // A host-endpoint-only policy filters no pod.
  cp = Compile({Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"hep"},"spec":{"doNotTrack":true,
      "applyOnForward":true,"ingress":[{"action":"Deny"}]}})")});
  EXPECT_TRUE(cp.chains().empty());
}

TEST(CalicoExplain, OldSignaturesMeanTheDestinationPortAndAnEchoRequest) {
  auto cp = Compile({IngressOfXa(R"({"action":"Allow","protocol":"ICMP","icmp":{"type":8}},
                                   {"action":"Allow","protocol":"TCP","source":{"notPorts":["1:1023"]}})")});
  EXPECT_TRUE(cp.Explain("y/a", "x/a", Protocol::kICMP, 0)->allowed);
  EXPECT_TRUE(cp.Explain("y/a", "x/a", Protocol::kTCP, 80)->allowed);  // unknown source port: 0
  auto e = cp.Explain("y/a", "x/a", Protocol::kUDP, 80);
  EXPECT_FALSE(e->allowed);
  EXPECT_EQ(e->summary, "DENY y/a -> x/a 80/UDP");
  EXPECT_EQ(cp.Explain("y/a", "x/a", Icmp(0))->summary, "DENY y/a -> x/a ICMP type 0 code 0");
}

}  // namespace
}  // namespace terway::policy
