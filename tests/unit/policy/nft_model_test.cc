// A compile as the kernel objects it becomes: the exact rule text, set and
// map elements, and names that stay put across unrelated changes, so a
// change to the kernel program is a visible diff here. Kernel behaviour is
// proven in tests/root/policy.
#include "policy/nft_model.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT
using Rules = std::vector<std::string>;

TEST(NftModel, RulesMatchPeerSetPortsThenCountAndDecide) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}],"ports":[{"port":80},{"protocol":"UDP","port":81,"endPort":90}]}],
      "egress":[{"to":[{"ipBlock":{"cidr":"198.18.0.0/16","except":["198.18.3.0/24"]}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const PodChain* eg_a = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress);
  ASSERT_NE(in_a, nullptr);
  ASSERT_NE(eg_a, nullptr);
  const std::string c_in = in_a->rules[0].counter, c_eg = eg_a->rules[0].counter;
  const std::string s_in = cp.sets()[*in_a->rules[0].peer_set].name, s_eg = cp.sets()[*eg_a->rules[0].peer_set].name;

  // One nft rule per family and port match, sharing the policy rule's
  // counter: the IPv6 half of the set is its s6_ twin.
  const std::string s6_in = "s6_" + s_in.substr(2), s6_eg = "s6_" + s_eg.substr(2);
  EXPECT_EQ(m.chains[in_a->name],
            (Rules{"ip saddr @" + s_in + " tcp dport { 80 } counter name \"" + c_in +
                       "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "ip saddr @" + s_in + " udp dport { 81-90 } counter name \"" + c_in +
                       "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "ip6 saddr @" + s6_in + " tcp dport { 80 } counter name \"" + c_in +
                       "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "ip6 saddr @" + s6_in + " udp dport { 81-90 } counter name \"" + c_in +
                       "\" accept comment \"Allow by k8s:x/p ingress[0]\"",
                   "counter name \"" + in_a->name + "_drop\" drop comment \"ingress of x/a: no rule matched\""}));
  // Egress allows `return`, so the destination's ingress chain still runs.
  EXPECT_EQ(m.chains[eg_a->name],
            (Rules{"ip daddr @" + s_eg + " counter name \"" + c_eg + "\" return comment \"Allow by k8s:x/p egress[0]\"",
                   "ip6 daddr @" + s6_eg + " counter name \"" + c_eg + "\" return comment \"Allow by k8s:x/p egress[0]\"",
                   "counter name \"" + eg_a->name + "_drop\" drop comment \"egress of x/a: no rule matched\""}));
  EXPECT_EQ(m.sets[s_in], "198.18.2.1-198.18.2.3");
  EXPECT_EQ(m.sets[s_eg], "198.18.0.0-198.18.2.255, 198.18.4.0-198.18.255.255");
  EXPECT_EQ(m.ingress, (std::map<std::string, std::string>{{"198.18.1.1", in_a->name}}));
  EXPECT_EQ(m.egress, (std::map<std::string, std::string>{{"198.18.1.1", eg_a->name}}));
  EXPECT_EQ(m.counters, (std::set<std::string>{c_in, c_eg, in_a->name + "_drop", eg_a->name + "_drop"}));
}

TEST(NftModel, CalicoActionsBecomeVerdicts) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress","Egress"],
      "ingress":[{"action":"Log"},{"action":"Deny","protocol":"SCTP"},{"action":"Pass","protocol":"ICMP"}],
      "egress":[{"action":"Pass"}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const PodChain* eg_a = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress);
  ASSERT_NE(in_a, nullptr);
  ASSERT_NE(eg_a, nullptr);
  ASSERT_EQ(in_a->rules.size(), 3u);
  const std::string& log = in_a->rules[0].counter;
  const Rules& rules = m.chains[in_a->name];
  ASSERT_EQ(rules.size(), 4u);
  // Log counts and logs, with no verdict: evaluation goes on.
  EXPECT_EQ(rules[0], "counter name \"" + log + "\" log prefix \"terway " + log +
                          " \"  comment \"Log by calico:x/p ingress[0]\"");
  EXPECT_EQ(rules[1], "meta l4proto sctp counter name \"" + in_a->rules[1].counter +
                          "\" drop comment \"Deny by calico:x/p ingress[1]\"");
  // Pass: the namespace profile allows (one tier).
  EXPECT_EQ(rules[2], "meta l4proto icmp counter name \"" + in_a->rules[2].counter +
                          "\" accept comment \"Pass by calico:x/p ingress[2]\"");
  EXPECT_EQ(m.chains[eg_a->name][0],
            "counter name \"" + eg_a->rules[0].counter + "\" return comment \"Pass by calico:x/p egress[0]\"");
}

TEST(NftModel, CalicoMatchesRenderExactly) {
  PolicyInputs in = NetpolWorld();
  for (auto& p : in.pods) {
    if (p.Key() == "y/b") p.ports.push_back({"metrics", 9100, "TCP"});
  }
  in.policies.push_back(Calico(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress"],
      "ingress":[{"action":"Allow","protocol":47},
                 {"action":"Deny","notProtocol":"TCP"},
                 {"action":"Allow","protocol":"ICMP","icmp":{"type":8,"code":0}},
                 {"action":"Allow","protocol":"TCP","source":{"ports":["1024:65535"],"notPorts":[40001]},
                  "destination":{"ports":[80,"90:99"],"notPorts":[95]}},
                 {"action":"Allow","protocol":"TCP","source":{"ports":["metrics"]}}]}})js"));
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{
      "selector":"pod == 'c'","types":["Ingress"],
      "ingress":[{"action":"Deny","notICMP":{"type":8,"code":0}},
                 {"action":"Deny","source":{"notSelector":"pod == 'a'"}}]}})js"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel m = ModelOf(cp);
  const PodChain* a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->rules.size(), 5u);
  auto tail = [&](const PodChain* c, size_t i, const char* verdict) {
    return fmt::format("counter name \"{}\" {} comment \"{}\"", c->rules[i].counter, verdict,
                       cp.DescribeRule(c->rules[i]));
  };
  const std::string t = cp.sets()[*a->rules[4].ports[0].tuple_set].name;
  EXPECT_EQ(m.chains[a->name],
            (Rules{"meta l4proto 47 " + tail(a, 0, "accept"),
                   "meta l4proto != tcp " + tail(a, 1, "drop"),
                   "icmp type 8 icmp code 0 " + tail(a, 2, "accept"),
                   "tcp sport { 1024-65535 } tcp sport != { 40001 } tcp dport { 80, 90-99 } tcp dport != { 95 } " +
                       tail(a, 3, "accept"),
                   // A named source port: (saddr, protocol, sport) in a tuple set.
                   "meta l4proto tcp ip saddr . meta l4proto . th sport @" + t + " " + tail(a, 4, "accept"),
                   "meta l4proto tcp ip6 saddr . meta l4proto . th sport @t6_" + t.substr(2) + " " +
                       tail(a, 4, "accept"),
                   "counter name \"" + a->name + "_drop\" drop comment \"ingress of x/a: no rule matched\""}));
  EXPECT_EQ(m.tuple_sets[t], "198.18.2.2 . 6 . 9100");
  EXPECT_EQ(m.sets.count(t), 0u);

  // notICMP {8, 0}: two disjoint nft rules; a notSelector alone: not in a set.
  const PodChain* c = cp.Chain(*cp.FindPod("x/c"), Direction::kIngress);
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->rules.size(), 2u);
  const std::string n = cp.sets()[*c->rules[1].peer_not_set].name;
  EXPECT_EQ(m.chains[c->name],
            (Rules{"icmp type != 8 " + tail(c, 0, "drop"), "icmp type 8 icmp code != 0 " + tail(c, 0, "drop"),
                   "ip saddr != @" + n + " " + tail(c, 1, "drop"),
                   // Not in the set: per family (an IPv6 packet is in no IPv4 set).
                   "ip6 saddr != @s6_" + n.substr(2) + " " + tail(c, 1, "drop"),
                   "counter name \"" + c->name + "_drop\" drop comment \"ingress of x/c: no rule matched\""}));
  EXPECT_EQ(m.sets[n], "198.18.1.1, 198.18.2.1, 198.18.3.1");
}

TEST(NftModel, TiersAreChainsJoinedByGoto) {
  PolicyInputs in = NetpolWorld();
  in.tiers = {{"security", 100, false}, {"audit", 10, true}};
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"log"},"spec":{"tier":"audit",
      "selector":"pod == 'a'","types":["Ingress","Egress"],"ingress":[{"action":"Log"}],"egress":[{"action":"Log"}]}})js"));
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"sec"},"spec":{"tier":"security",
      "selector":"pod == 'a'","types":["Ingress","Egress"],
      "ingress":[{"action":"Pass","protocol":"TCP"}],"egress":[{"action":"Pass","protocol":"UDP"}]}})js"));
  in.policies.push_back(K8s(R"({"metadata":{"name":"k","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"ports":[{"port":80}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel m = ModelOf(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const PodChain* eg_a = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress);
  ASSERT_NE(in_a, nullptr);
  ASSERT_NE(eg_a, nullptr);
  ASSERT_EQ(in_a->tiers.size(), 3u);  // audit, security, default
  ASSERT_EQ(eg_a->tiers.size(), 2u);  // the k8s policy is ingress only
  const std::string& sec = in_a->tiers[1].chain;
  const std::string& dflt = in_a->tiers[2].chain;
  auto rule = [&](const PodChain* ch, size_t i) { return ch->rules[i].counter; };
  // audit: Log, then its default action Pass: on to security.
  EXPECT_EQ(m.chains[in_a->name],
            (Rules{"counter name \"" + rule(in_a, 0) + "\" log prefix \"terway " + rule(in_a, 0) +
                       " \"  comment \"Log by global:log ingress[0] in tier audit\"",
                   "goto " + sec + " comment \"ingress of x/a: tier audit passes\""}));
  // security: Pass goes to the default tier's chain; its end denies.
  EXPECT_EQ(m.chains[sec], (Rules{"meta l4proto tcp counter name \"" + rule(in_a, 1) + "\" goto " + dflt +
                                      " comment \"Pass by global:sec ingress[0] in tier security\"",
                                  "counter name \"" + sec + "_drop\" drop comment \"ingress of x/a: no rule matched in "
                                                             "tier security\""}));
  EXPECT_EQ(m.chains[dflt], (Rules{"tcp dport { 80 } counter name \"" + rule(in_a, 2) +
                                       "\" accept comment \"Allow by k8s:x/k ingress[0]\"",
                                   "counter name \"" + dflt + "_drop\" drop comment \"ingress of x/a: no rule matched\""}));
  // Egress: a Pass in the last tier taking part allows, as egress allows:
  // return to the forward chain, which runs the destination's ingress.
  EXPECT_EQ(m.chains[eg_a->tiers[1].chain][0], "meta l4proto udp counter name \"" + rule(eg_a, 1) +
                                                   "\" return comment \"Pass by global:sec egress[0] in tier security\"");
  EXPECT_EQ(m.egress.at("198.18.1.1"), eg_a->name);
}

TEST(NftModel, NamesSurviveUnrelatedChanges) {
  const char* policy = R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{}}]}]}})";
  PolicyInputs before = NetpolWorld();
  before.policies.push_back(K8s(policy));
  CompiledPolicy cp1 = PolicyCompiler().Compile(before);
  // Another policy and another pod appear; x/a's chain and rule keep names.
  PolicyInputs after = NetpolWorld();
  PodInfo extra;
  extra.namespace_ = "aaa";
  extra.name = "first";
  extra.ip = *Ipv4Addr::Parse("198.18.9.9");
  after.pods.insert(after.pods.begin(), extra);
  after.policies.push_back(K8s(R"({"metadata":{"name":"o","namespace":"y"},"spec":{"podSelector":{}}})"));
  after.policies.push_back(K8s(policy));
  CompiledPolicy cp2 = PolicyCompiler().Compile(after);
  const PodChain* c1 = cp1.Chain(*cp1.FindPod("x/a"), Direction::kIngress);
  const PodChain* c2 = cp2.Chain(*cp2.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(c1, nullptr);
  ASSERT_NE(c2, nullptr);
  EXPECT_EQ(c1->name, c2->name);
  ASSERT_EQ(c1->rules.size(), 1u);
  ASSERT_EQ(c2->rules.size(), 1u);
  EXPECT_EQ(c1->rules[0].counter, c2->rules[0].counter);
  // Different pods, directions and rules never share a name.
  EXPECT_NE(c2->name, cp2.Chain(*cp2.FindPod("y/a"), Direction::kIngress)->name);
  // So x/a's kernel objects are the same in both models: its chain with its
  // rules, and the peer set they reference (the new pod is in another
  // namespace), and a delta between the two leaves them alone.
  NftModel m1 = ModelOf(cp1), m2 = ModelOf(cp2);
  EXPECT_EQ(m1.chains[c1->name], m2.chains[c2->name]);
  const std::string& set = cp2.sets()[*c2->rules[0].peer_set].name;
  EXPECT_EQ(cp1.sets()[*c1->rules[0].peer_set].name, set);
  EXPECT_EQ(m1.sets[set], m2.sets[set]);
}

TEST(NftModel, ObjectsOfNamesEveryDeclaredObject) {
  // No policy: the base chain and the four maps (two per family), nothing else.
  const std::set<std::string> maps = {"pod_egress", "pod_ingress", "pod_egress6", "pod_ingress6"};
  NftObjects empty = ObjectsOf(PolicyCompiler().Compile(NetpolWorld()));
  EXPECT_EQ(empty, (NftObjects{{"forward"}, {}, maps, {}}));

  NftModel m;
  m.sets = {{"s_1", "198.18.1.1"}, {"s_2", ""}};
  m.chains = {{"in_1", {"counter name \"in_1_drop\" drop"}}};
  m.ingress = {{"198.18.1.1", "in_1"}};
  m.counters = {"c1", "in_1_drop"};
  EXPECT_EQ(ObjectsOf(m), (NftObjects{{"forward", "in_1"}, {"s_1", "s6_1", "s_2", "s6_2"}, maps, {"c1", "in_1_drop"}}));
}

}  // namespace
}  // namespace terway::policy
