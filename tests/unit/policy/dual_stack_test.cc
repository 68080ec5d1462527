// Dual stack: a pod's IPv4 and IPv6 addresses are both its own. Kubernetes
// ipBlocks and Calico nets in IPv6 (with except / notNets), peer sets per
// family, Calico ipVersion, ICMPv6 type/code, a local side matching one
// family only, Explain over IPv6, and the exact nft text of all of it.
// Kernel behaviour with real IPv6 packets: tests/root/policy.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "policy/incremental.h"
#include "policy/nft_model.h"
#include "policy/nft_render.h"
#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT
using Rules = std::vector<std::string>;

Packet Tcp6(uint16_t port) {
  Packet p = Packet::Of(Protocol::kTCP, port);
  p.ip_version = 6;
  return p;
}
Packet Icmp6(uint8_t type, uint8_t code) {
  Packet p;
  p.protocol = Protocol::kICMPv6;
  p.icmp_type = type;
  p.icmp_code = code;
  p.ip_version = 6;
  return p;
}

TEST(DualStack, PodFromK8sTakesEveryAddressOfStatusPodIps) {
  auto pod = k8s::ParsePod(nlohmann::json::parse(R"({"metadata":{"name":"a","namespace":"x"},
      "spec":{"nodeName":"n1"},"status":{"podIP":"fd00::1","podIPs":[{"ip":"fd00::1"},{"ip":"198.18.1.1"}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  PodInfo p = PodFromK8s(*pod);
  ASSERT_TRUE(p.ip && p.ipv6);
  EXPECT_EQ(p.ip->ToString(), "198.18.1.1");
  EXPECT_EQ(p.ipv6->ToString(), "fd00::1");
}

// A policy selecting a dual-stack pod isolates both families; a pod
// selector peer admits the peer's addresses of both families.
TEST(DualStack, PodSelectorPeersAdmitBothAddressesAndIsolationCoversBothFamilies) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}],"ports":[{"port":80}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto expect = [](const std::string& from, const std::string& to) { return to != "x/a" || from == "x/b"; };
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, expect), "");
  EXPECT_EQ(Mismatches(cp, Tcp6(80), expect), "");
  EXPECT_EQ(Mismatches(cp, Tcp6(81), [](auto&, auto& to) { return to != "x/a"; }), "");
}

// ipBlock in IPv6 with except: the block minus the exception, over IPv6;
// it admits no IPv4 address (the policy still isolates x/a for IPv4).
TEST(DualStack, K8sIpv6IpBlockWithExcept) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"ipBlock":{"cidr":"fd00:18:2::/48","except":["fd00:18:2::2/128"]}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_EQ(Mismatches(cp, Tcp6(80), [](auto& from, auto& to) {
              return to != "x/a" || (Ns(from) == "y" && from != "y/b");
            }),
            "");
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }), "");
  // Addresses outside the pods: the block's edges.
  EXPECT_TRUE(cp.Explain("fd00:18:2:ffff:ffff:ffff:ffff:ffff", "x/a", Tcp6(80))->allowed);
  EXPECT_FALSE(cp.Explain("fd00:18:3::", "x/a", Tcp6(80))->allowed);

  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(in_a, nullptr);
  const std::string s = cp.sets()[*in_a->rules[0].peer_set].name, c = in_a->rules[0].counter;
  ASSERT_EQ(s.substr(0, 2), "s_");
  const std::string s6 = "s6_" + s.substr(2);
  // One rule per family against each half of the set, one counter.
  EXPECT_EQ(m.chains[in_a->name],
            (Rules{"ip saddr @" + s + " counter name \"" + c + "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "ip6 saddr @" + s6 + " counter name \"" + c + "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "counter name \"" + in_a->name + "_drop\" drop comment \"ingress of x/a: no rule matched\""}));
  EXPECT_EQ(m.sets[s], "fd00:18:2::-fd00:18:2::1, fd00:18:2::3-fd00:18:2:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(m.ingress.at("fd00:18:1::1"), in_a->name);
  EXPECT_EQ(m.ingress.at("198.18.1.1"), in_a->name);

  const std::string script = RenderNftScript(m, NftObjects{});
  EXPECT_NE(script.find("  set " + s + " {\n    type ipv4_addr; flags interval;\n  }\n"), std::string::npos) << script;
  EXPECT_NE(script.find("  set " + s6 + " {\n    type ipv6_addr; flags interval;\n    elements = { "
                        "fd00:18:2::-fd00:18:2::1, fd00:18:2::3-fd00:18:2:ffff:ffff:ffff:ffff:ffff }\n  }\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("  map pod_ingress6 {\n    type ipv6_addr : verdict;\n    elements = { fd00:18:1::1 : jump " +
                        in_a->name + " }\n  }\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("  map pod_ingress {\n    type ipv4_addr : verdict;\n    elements = { 198.18.1.1 : jump " +
                        in_a->name + " }\n  }\n"),
            std::string::npos)
      << script;
}

// The forward chain lets neighbour discovery through before anything can
// drop it (conntrack marks none of it established), and sends each family
// to its own pod maps.
TEST(DualStack, ForwardChainAcceptsNeighbourDiscoveryAndLooksUpBothFamilies) {
  const std::string script = RenderNftScript(NftModel{}, NftObjects{});
  EXPECT_NE(script.find("  chain forward {\n"
                        "    type filter hook forward priority filter; policy accept;\n"
                        "    ct state established,related accept\n"
                        "    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
                        "nd-neighbor-advert, nd-redirect } accept\n"
                        "    ct state invalid drop\n"
                        "    ip saddr vmap @pod_egress\n"
                        "    ip6 saddr vmap @pod_egress6\n"
                        "    ip daddr vmap @pod_ingress\n"
                        "    ip6 daddr vmap @pod_ingress6\n"
                        "  }\n"),
            std::string::npos)
      << script;
  EXPECT_EQ(ObjectsOf(NftModel{}).maps,
            (std::set<std::string>{"pod_ingress", "pod_egress", "pod_ingress6", "pod_egress6"}));
}

// A pod's IPv6 joining a set and a map is an element of the IPv6 set and
// map only.
TEST(DualStack, DeltaSendsEachElementToItsFamily) {
  PolicyInputs in = DualStackWorld();
  in.pods[1].ipv6.reset();  // x/b, not yet dual stack
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"b"}}}]}]}})"));
  NftModel before = ModelOf(PolicyCompiler().Compile(in));
  in.pods[1].ipv6 = Ipv6Addr::Parse("fd00:18:1::2").value();
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel after = ModelOf(cp);
  const PodChain* in_b = cp.Chain(*cp.FindPod("x/b"), Direction::kIngress);
  const std::string s = cp.sets()[*in_b->rules[0].peer_set].name;
  EXPECT_EQ(RenderNftDelta(before, after),
            "add element inet terway s6_" + s.substr(2) + " { fd00:18:1::2 }\n" +
                "add element inet terway pod_ingress6 { fd00:18:1::2 : jump " + in_b->name + " }\n");
  EXPECT_EQ(RenderNftDelta(after, before),
            "delete element inet terway pod_ingress6 { fd00:18:1::2 }\n"
            "delete element inet terway s6_" + s.substr(2) + " { fd00:18:1::2 }\n");
}

// Calico: ipVersion restricts a rule to a family; nets of one family do
// not match the other family's packets; ICMPv6 types and codes.
TEST(DualStack, CalicoIpVersionNetsAndIcmpv6) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Deny","source":{"nets":["fd00:18:3::/48"]}},
                 {"action":"Allow","protocol":"ICMPv6","icmp":{"type":128,"code":0}},
                 {"action":"Allow","protocol":"TCP","ipVersion":6,"destination":{"ports":[80]}},
                 {"action":"Allow","protocol":"UDP","source":{"nets":["198.18.3.0/24"]}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto not_xa = [](auto&, auto& to) { return to != "x/a"; };
  // TCP 80: IPv6 only, and not from z (the IPv6 Deny), which over IPv4
  // matches nothing (no rule allows IPv4 TCP either).
  EXPECT_EQ(Mismatches(cp, Tcp6(80), [](auto& from, auto& to) { return to != "x/a" || Ns(from) != "z"; }), "");
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, not_xa), "");
  // UDP from z over IPv4: the IPv6 Deny does not see IPv4 packets.
  EXPECT_EQ(Mismatches(cp, Protocol::kUDP, 53, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "z"; }),
            "");
  Packet udp6 = Packet::Of(Protocol::kUDP, 53);
  udp6.ip_version = 6;
  EXPECT_EQ(Mismatches(cp, udp6, not_xa), "");  // the IPv4 nets admit no IPv6 address
  // ICMPv6 echo request allowed (except from z), echo reply type 129 and
  // code 1 not; IPv4 ping not.
  EXPECT_EQ(Mismatches(cp, Icmp6(128, 0), [](auto& from, auto& to) { return to != "x/a" || Ns(from) != "z"; }), "");
  EXPECT_EQ(Mismatches(cp, Icmp6(129, 0), not_xa), "");
  EXPECT_EQ(Mismatches(cp, Icmp6(128, 1), not_xa), "");
  EXPECT_EQ(Mismatches(cp, Protocol::kICMP, 0, not_xa), "");

  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(in_a, nullptr);
  ASSERT_EQ(in_a->rules.size(), 4u);
  auto set = [&](size_t i, bool v6) {
    const std::string n = cp.sets()[*in_a->rules[i].peer_set].name;
    return v6 ? "s6_" + n.substr(2) : n;
  };
  auto tail = [&](size_t i, const char* verdict, size_t rule) {
    return fmt::format(" counter name \"{}\" {} comment \"{} by calico:x/p ingress[{}]\"", in_a->rules[i].counter,
                       verdict, verdict == std::string("drop") ? "Deny" : "Allow", rule);
  };
  EXPECT_EQ(m.chains[in_a->name],
            (Rules{"ip saddr @" + set(0, false) + tail(0, "drop", 0),
                   "ip6 saddr @" + set(0, true) + tail(0, "drop", 0),
                   "icmpv6 type 128 icmpv6 code 0" + tail(1, "accept", 1),
                   "meta nfproto ipv6 tcp dport { 80 }" + tail(2, "accept", 2),
                   "ip saddr @" + set(3, false) + " meta l4proto udp" + tail(3, "accept", 3),
                   "ip6 saddr @" + set(3, true) + " meta l4proto udp" + tail(3, "accept", 3),
                   "counter name \"" + in_a->name + "_drop\" drop comment \"ingress of x/a: no rule matched\""}));
  EXPECT_EQ(m.sets[cp.sets()[*in_a->rules[0].peer_set].name], "fd00:18:3::-fd00:18:3:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(m.sets[cp.sets()[*in_a->rules[3].peer_set].name], "198.18.3.0-198.18.3.255");
}

// NotNets of one family make the rule that family's: the complement of an
// IPv6 notNets is not "every IPv4 address too" (Calico case ipv6-nets:
// notNets fd00::/8 and nets fd00::/8 together admit no IPv4 peer).
TEST(DualStack, CalicoNotNetsOfOneFamilyMatchNoPacketOfTheOther) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","source":{"notNets":["fd00::/8"]}},
                 {"action":"Allow","source":{"nets":["fd00::/8"]}},
                 {"action":"Allow","source":{"notNets":["198.18.0.0/16"]}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto not_xa = [](auto&, auto& to) { return to != "x/a"; };
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, not_xa), "") << "an IPv6 notNets admitted IPv4 peers";
  EXPECT_EQ(Mismatches(cp, Tcp6(80), [](auto&, auto&) { return true; }), "") << "IPv6 from fd00::/8 is allowed";
  // What the kernel gets: the IPv6 notNets rule is IPv6's only.
  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(in_a, nullptr);
  bool v6_only = false;
  for (const auto& r : m.chains[in_a->name]) {
    if (r.find("ingress[0]") != std::string::npos) {
      v6_only = r.find("ip6 ") != std::string::npos || r.find("meta nfproto ipv6") != std::string::npos;
      EXPECT_TRUE(v6_only) << r;
    }
  }
}

// A set only an IPv6 rule reads (ipVersion 6 with nets) is read: the
// canonical model keeps it, or its s6_ twin would be referenced undeclared.
TEST(DualStack, ASetReadOnlyThroughItsIpv6TwinIsKept) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","ipVersion":6,"source":{"nets":["fd00:18:2::/48"]}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const std::string s = cp.sets()[*in_a->rules[0].peer_set].name;
  NftModel m = CanonicalModelOf(cp);
  EXPECT_EQ(m.chains[in_a->name][0].rfind("ip6 saddr @s6_" + s.substr(2) + " counter", 0), 0u) << m.chains[in_a->name][0];
  EXPECT_EQ(m.chains[in_a->name].size(), 2u);  // the rule in IPv6 only, then the drop
  EXPECT_EQ(m.sets.count(s), 1u);
  EXPECT_EQ(ModelSetName("s6_" + s.substr(2)), s);
  EXPECT_EQ(ModelSetName(s), s);
}

// notICMP under ICMPv6: ICMPv6 packets other than the type (IPv6 only).
TEST(DualStack, CalicoNotIcmpv6) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","protocol":"ICMPv6","notICMP":{"type":128}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto not_xa = [](auto&, auto& to) { return to != "x/a"; };
  EXPECT_EQ(Mismatches(cp, Icmp6(128, 0), not_xa), "");
  EXPECT_EQ(Mismatches(cp, Icmp6(1, 4), [](auto&, auto&) { return true; }), "");
  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  EXPECT_EQ(m.chains[in_a->name][0].substr(0, 24), "icmpv6 type != 128 count");
}

// A Calico local side (our own pod's nets) that admits one of a dual-stack
// pod's addresses gives the pod the rule for that family only.
TEST(DualStack, CalicoLocalSideMatchingOneFamilyKeepsTheRuleForThatFamily) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","destination":{"nets":["fd00:18:1::1/128"]}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  EXPECT_EQ(Mismatches(cp, Tcp6(80), [](auto&, auto&) { return true; }), "");
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/a"; }), "");
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_EQ(in_a->rules.size(), 1u);
  EXPECT_EQ(in_a->rules[0].ip_version, 6);
  EXPECT_EQ(ModelOf(cp).chains[in_a->name][0].substr(0, 26), "meta nfproto ipv6 counter ");
}

// A local side admitting only x/a's IPv6 on an ICMP (IPv4) type rule: no
// packet can match, so the rule is not compiled (no nft rule, no counter:
// what the incremental compiler reads from the rules' text).
TEST(DualStack, ARuleOfOneFamilyWithOnlyTheOtherFamilysIcmpIsDropped) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","protocol":"ICMP","icmp":{"type":8},"destination":{"nets":["fd00:18:1::1/128"]}}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(in_a, nullptr);
  EXPECT_TRUE(in_a->rules.empty());
  EXPECT_EQ(ModelOf(cp).counters, std::set<std::string>{in_a->name + "_drop"});
  EXPECT_EQ(Mismatches(cp, Protocol::kICMP, 0, [](auto&, auto& to) { return to != "x/a"; }), "");
}

// Named ports resolve on the peer's addresses of both families (tuples).
TEST(DualStack, NamedPortTuplesHoldBothAddresses) {
  PolicyInputs in = DualStackWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"pod":"b"}}}],"ports":[{"port":"serve-81-tcp"}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto expect = [](auto& from, auto& to) { return from != "x/a" || to == "x/b"; };
  EXPECT_EQ(Mismatches(cp, Tcp6(81), expect), "");
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 81, expect), "");
  NftModel m = ModelOf(cp);
  ASSERT_EQ(m.tuple_sets.size(), 1u);
  EXPECT_EQ(m.tuple_sets.begin()->second, "198.18.1.2 . 6 . 81, fd00:18:1::2 . 6 . 81");
  const PodChain* eg_a = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress);
  const std::string t = m.tuple_sets.begin()->first;
  const std::string t6 = "t6_" + t.substr(2);
  ASSERT_EQ(m.chains[eg_a->name].size(), 3u);
  EXPECT_NE(m.chains[eg_a->name][0].find("ip daddr . meta l4proto . th dport @" + t + " counter"), std::string::npos)
      << m.chains[eg_a->name][0];
  EXPECT_NE(m.chains[eg_a->name][1].find("ip6 daddr . meta l4proto . th dport @" + t6 + " counter"),
            std::string::npos)
      << m.chains[eg_a->name][1];
}

// A dual-stack Service's IPv6 slice: a Deny of the Service denies its IPv6
// backends too (not only its IPv4 ones), on the slice's port only.
TEST(DualStack, ServiceBackendsOfBothFamilies) {
  PolicyInputs in = DualStackWorld();
  ServiceBackends db;
  db.namespace_ = "x";
  db.name = "db";
  db.groups.push_back({{*Ipv4Addr::Parse(PodIp("x", "b"))}, {{6, 80}}, {*Ipv6Addr::Parse(PodIp6("x", "b"))}});
  in.services = {db};
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Egress"],
      "egress":[{"action":"Deny","protocol":"TCP","destination":{"services":{"name":"db"}}},{"action":"Allow"}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto expect = [](auto& from, auto& to) { return from != "x/a" || to != "x/b"; };
  EXPECT_EQ(Mismatches(cp, Tcp6(80), expect), "");
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, expect), "");
  EXPECT_EQ(Mismatches(cp, Tcp6(81), [](auto&, auto&) { return true; }), "");
  NftModel m = ModelOf(cp);
  ASSERT_EQ(m.tuple_sets.size(), 1u);
  EXPECT_EQ(m.tuple_sets.begin()->second, "198.18.1.2 . 6 . 80, fd00:18:1::2 . 6 . 80");
}

TEST(DualStack, ExplainTakesIpv6AddressesAndOneFamilyPerFlow) {
  PolicyInputs in = DualStackWorld();
  in.pods[8].ipv6.reset();  // z/c: IPv4 only
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"ipBlock":{"cidr":"fd00:18:2::/48"}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  auto e = cp.Explain("fd00:18:2::1", "x/a", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_TRUE(e->allowed);
  EXPECT_EQ(e->summary, "ALLOW y/a -> x/a 80/TCP");  // the address is y/a's
  e = cp.Explain("y/b", "fd00:18:1::1", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_TRUE(e->allowed);
  e = cp.Explain("fd00:18:3::1", "x/a", Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->allowed);
  EXPECT_NE(e->ToString().find("isolated for ingress by k8s:x/p"), std::string::npos) << e->ToString();
  EXPECT_TRUE(cp.Explain("2001:db8::1", "x/b", Protocol::kICMPv6, 0)->allowed);  // x/b is not isolated

  // Refusals name the cause.
  auto mixed = cp.Explain("198.18.2.1", "fd00:18:1::1", Protocol::kTCP, 80);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().ToString().find("give both ends in one family"), std::string::npos);
  auto v4only = cp.Explain("z/c", "fd00:18:1::1", Protocol::kTCP, 80);
  ASSERT_FALSE(v4only.ok());
  EXPECT_NE(v4only.error().ToString().find("pod z/c has no IPv6 address"), std::string::npos);
  auto icmp = cp.Explain("fd00:18:2::1", "x/a", Protocol::kICMP, 0);
  ASSERT_FALSE(icmp.ok());
  EXPECT_NE(icmp.error().ToString().find("ICMPv6"), std::string::npos);
  auto junk = cp.Explain("fd00:::1", "x/a", Protocol::kTCP, 80);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().ToString().find("nor an IPv4 or IPv6 address"), std::string::npos);
}

}  // namespace
}  // namespace terway::policy
