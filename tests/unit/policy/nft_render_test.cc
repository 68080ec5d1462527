// The nft batch rendered from a compiled model: structure and the exact
// rule text for a small policy, so a change to the kernel program is a
// visible diff here. Kernel behaviour is proven in tests/root/policy.
#include "policy/nft_render.h"

#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT

bool Has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

TEST(NftRender, OneAtomicBatchWithSetsMapsAndChains) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}],"ports":[{"port":80},{"protocol":"UDP","port":81,"endPort":90}]}],
      "egress":[{"to":[{"ipBlock":{"cidr":"198.18.0.0/16","except":["198.18.3.0/24"]}}]}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  std::string s = RenderNftScript(cp);
  const PodChain* in_a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const PodChain* eg_a = cp.Chain(*cp.FindPod("x/a"), Direction::kEgress);
  ASSERT_NE(in_a, nullptr);
  ASSERT_NE(eg_a, nullptr);
  const std::string c_in = in_a->rules[0].counter, c_eg = eg_a->rules[0].counter;
  const std::string s_in = cp.sets()[*in_a->rules[0].peer_set].name, s_eg = cp.sets()[*eg_a->rules[0].peer_set].name;
  // No table yet: create, flush (a no-op), declare; one transaction.
  EXPECT_EQ(s.rfind("add table inet terway\nflush table inet terway\ntable inet terway {\n", 0), 0u) << s;
  EXPECT_TRUE(Has(s, "set " + s_in + " {\n    type ipv4_addr; flags interval;\n    elements = { 198.18.2.1-198.18.2.3 }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.0.0-198.18.2.255, 198.18.4.0-198.18.255.255 }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.1.1 : jump " + in_a->name + " }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.1.1 : jump " + eg_a->name + " }")) << s;
  EXPECT_TRUE(Has(s, "ip saddr @" + s_in + " tcp dport { 80 } counter name \"" + c_in +
                         "\" accept comment \"Allow by k8s:x/p ingress[0]\"")) << s;
  EXPECT_TRUE(Has(s, "ip saddr @" + s_in + " udp dport { 81-90 } counter name \"" + c_in + "\" accept")) << s;
  EXPECT_TRUE(Has(s, "ip daddr @" + s_eg + " counter name \"" + c_eg + "\" return comment \"Allow by k8s:x/p egress[0]\"")) << s;
  EXPECT_TRUE(Has(s, "counter name \"" + in_a->name + "_drop\" drop")) << s;
  EXPECT_TRUE(Has(s, "type filter hook forward priority filter; policy accept;\n"
                     "    ct state established,related accept\n"
                     "    icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
                     "nd-redirect } accept\n"
                     "    ct state invalid drop\n"
                     "    ip saddr vmap @pod_egress\n"
                     "    ip6 saddr vmap @pod_egress6\n"
                     "    ip daddr vmap @pod_ingress\n"
                     "    ip6 daddr vmap @pod_ingress6\n")) << s;
}

TEST(NftRender, TheTableChangesInPlace) {
  const char* policy = R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{}}]}]}})";
  PolicyInputs before = NetpolWorld();
  before.policies.push_back(K8s(policy));
  CompiledPolicy cp1 = PolicyCompiler().Compile(before);
  PolicyInputs after = NetpolWorld();
  after.policies.push_back(K8s(R"({"metadata":{"name":"o","namespace":"y"},"spec":{"podSelector":{}}})"));
  after.policies.push_back(K8s(policy));
  CompiledPolicy cp2 = PolicyCompiler().Compile(after);
  const PodChain* c2 = cp2.Chain(*cp2.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(c2, nullptr);
  ASSERT_EQ(c2->rules.size(), 1u);

  // Over the table of the first model plus strays: in place, never a
  // deleted table (its hook would be gone while the batch commits); what
  // stays is flushed and declared again, what went is deleted.
  NftObjects existing = ObjectsOf(cp1);
  existing.chains.insert("in_gone");
  existing.counters.insert("c_gone");
  existing.sets.insert("s_gone");
  std::string s = RenderNftScript(cp2, existing);
  EXPECT_FALSE(Has(s, "delete table")) << s;
  EXPECT_TRUE(Has(s, "flush table inet terway\n")) << s;
  EXPECT_TRUE(Has(s, "flush map inet terway pod_ingress\n")) << s;
  EXPECT_TRUE(Has(s, "flush set inet terway " + cp2.sets()[0].name + "\n")) << s;
  EXPECT_TRUE(Has(s, "delete set inet terway s_gone\n")) << s;
  EXPECT_TRUE(Has(s, "delete chain inet terway in_gone\n")) << s;
  EXPECT_TRUE(Has(s, "delete counter inet terway c_gone\n")) << s;
  EXPECT_FALSE(Has(s, "delete chain inet terway forward")) << s;
  EXPECT_FALSE(Has(s, "delete chain inet terway " + c2->name)) << s;
  EXPECT_FALSE(Has(s, "delete counter inet terway " + c2->rules[0].counter)) << s;
  // Deletions come before the declarations (nothing references them then).
  EXPECT_LT(s.find("delete chain"), s.find("table inet terway {")) << s;
}

TEST(NftRender, DeltaTouchesOnlyWhatChanged) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"role":"client"}}}]}]}})"));
  NftModel before = ModelOf(PolicyCompiler().Compile(in));
  EXPECT_EQ(RenderNftDelta(before, before), "");

  // A new pod that joins the peer set and is itself selected: its chain and
  // map element and the set change; nothing else is touched.
  PodInfo fresh;
  fresh.namespace_ = "x";
  fresh.name = "new";
  fresh.labels = {{"pod", "a"}, {"role", "client"}};
  fresh.ip = *Ipv4Addr::Parse("198.18.1.99");
  in.pods.push_back(fresh);
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  NftModel after = ModelOf(cp);
  std::string d = RenderNftDelta(before, after);
  const PodChain* mine = cp.Chain(*cp.FindPod("x/new"), Direction::kIngress);
  const PodChain* other = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(mine, nullptr);
  ASSERT_NE(other, nullptr);
  const std::string set = cp.sets()[*mine->rules[0].peer_set].name;
  EXPECT_TRUE(Has(d, "add chain inet terway " + mine->name + "\n")) << d;
  EXPECT_TRUE(Has(d, "add element inet terway pod_ingress { 198.18.1.99 : jump " + mine->name + " }")) << d;
  // The set gains one element (not flushed and written again).
  EXPECT_TRUE(Has(d, "add element inet terway " + set + " { 198.18.1.99 }\n")) << d;
  EXPECT_FALSE(Has(d, "flush set")) << d;
  EXPECT_FALSE(Has(d, other->name)) << "x/a's chain did not change:\n" << d;
  EXPECT_FALSE(Has(d, "delete")) << d;
  EXPECT_LT(d.find("add chain"), d.find("add element inet terway pod_ingress")) << d;

  // And back: the pod goes; its map element first, then its chain.
  std::string back = RenderNftDelta(after, before);
  EXPECT_TRUE(Has(back, "delete element inet terway pod_ingress { 198.18.1.99 }")) << back;
  EXPECT_TRUE(Has(back, "delete chain inet terway " + mine->name)) << back;
  EXPECT_LT(back.find("delete element"), back.find("delete chain")) << back;
  EXPECT_TRUE(Has(back, "delete element inet terway " + set + " { 198.18.1.99 }\n")) << back;
}

TEST(NftRender, DeltaAddsEveryNewChainBeforeAnyRuleThatGoesThere) {
  // From one tier to three: x/a's first chain now `goto`s chains the same
  // batch creates, so every `add chain` must come before the rules.
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"k","namespace":"x"},"spec":{"podSelector":{}}})"));
  NftModel before = ModelOf(PolicyCompiler().Compile(in));
  in.tiers = {{"audit", 1, true}, {"security", 2, false}};
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"l"},"spec":{"tier":"audit",
      "ingress":[{"action":"Log"}]}})js"));
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"s"},"spec":{"tier":"security",
      "ingress":[{"action":"Pass"}]}})js"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  std::string d = RenderNftDelta(before, ModelOf(cp));
  const PodChain* a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->tiers.size(), 3u);
  EXPECT_TRUE(Has(d, "add chain inet terway " + a->tiers[1].chain + "\n")) << d;
  EXPECT_TRUE(Has(d, "goto " + a->tiers[1].chain)) << d;
  EXPECT_LT(d.rfind("add chain"), d.find("add rule")) << d;
  // x/a's first chain is the same chain, rewritten: flushed, not re-created.
  EXPECT_TRUE(Has(d, "flush chain inet terway " + a->name + "\n")) << d;
  EXPECT_FALSE(Has(d, "add chain inet terway " + a->name + "\n")) << d;
}

TEST(NftRender, NoPoliciesStillDeclaresTheEmptyTable) {
  std::string s = RenderNftScript(PolicyCompiler().Compile(NetpolWorld()));
  EXPECT_TRUE(Has(s, "map pod_ingress {\n    type ipv4_addr : verdict;\n  }")) << s;
  EXPECT_FALSE(Has(s, "chain in_")) << s;
}

}  // namespace
}  // namespace terway::policy
