// The nft batch rendered from a compiled model: structure and the exact
// rule text for a small policy, so a change to the kernel program is a
// visible diff here. Kernel behaviour is proven in tests/root/policy.
#include "policy/nft_renderer.h"

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
  // Create-then-delete-then-declare: one transaction, no failure when absent.
  EXPECT_EQ(s.rfind("add table inet terway\ndelete table inet terway\ntable inet terway {\n", 0), 0u) << s;
  EXPECT_TRUE(Has(s, "set s0 {\n    type ipv4_addr; flags interval;\n    elements = { 198.18.2.1-198.18.2.3 }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.0.0-198.18.2.255, 198.18.4.0-198.18.255.255 }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.1.1 : jump in_0 }")) << s;
  EXPECT_TRUE(Has(s, "elements = { 198.18.1.1 : jump eg_0 }")) << s;
  EXPECT_TRUE(Has(s, "ip saddr @s0 tcp dport { 80 } counter name \"c0\" accept comment \"Allow by k8s:x/p ingress[0]\"")) << s;
  EXPECT_TRUE(Has(s, "ip saddr @s0 udp dport { 81-90 } counter name \"c0\" accept")) << s;
  EXPECT_TRUE(Has(s, "ip daddr @s1 counter name \"c1\" return comment \"Allow by k8s:x/p egress[0]\"")) << s;
  EXPECT_TRUE(Has(s, "counter name \"in_0_drop\" drop")) << s;
  EXPECT_TRUE(Has(s, "type filter hook forward priority filter; policy accept;\n"
                     "    ct state established,related accept\n"
                     "    ct state invalid drop\n"
                     "    ip saddr vmap @pod_egress\n"
                     "    ip daddr vmap @pod_ingress\n")) << s;
  std::string show = FormatPolicyShow(cp, {{"c0", 7, 420}});
  EXPECT_TRUE(Has(show, "x/a ingress (in_0):")) << show;
  EXPECT_TRUE(Has(show, "7 pkts 420 bytes")) << show;
}

TEST(NftRender, CalicoActionsBecomeVerdicts) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","types":["Ingress","Egress"],
      "ingress":[{"action":"Log"},{"action":"Deny","protocol":"SCTP"},{"action":"Pass","protocol":"ICMP"}],
      "egress":[{"action":"Pass"}]}})"));
  std::string s = RenderNftScript(PolicyCompiler().Compile(in));
  EXPECT_TRUE(Has(s, "counter name \"c0\" log prefix \"terway c0 \"  comment")) << s;
  EXPECT_TRUE(Has(s, "meta l4proto sctp counter name \"c1\" drop")) << s;
  EXPECT_TRUE(Has(s, "meta l4proto icmp counter name \"c2\" accept")) << s;
  EXPECT_TRUE(Has(s, "counter name \"c3\" return comment \"Pass by calico:x/p egress[0]\"")) << s;
}

TEST(NftRender, NoPoliciesStillDeclaresTheEmptyTable) {
  std::string s = RenderNftScript(PolicyCompiler().Compile(NetpolWorld()));
  EXPECT_TRUE(Has(s, "map pod_ingress {\n    type ipv4_addr : verdict;\n  }")) << s;
  EXPECT_FALSE(Has(s, "chain in_")) << s;
}

}  // namespace
}  // namespace terway::policy
