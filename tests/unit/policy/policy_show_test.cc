// `policy show` text: the compiled rules of each pod chain beside the
// kernel's counters, as an operator reads it.
#include "policy/policy_show.h"

#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT

TEST(PolicyShow, EachChainsRulesWithPeerAndCounters) {
  PolicyInputs in = NetpolWorld();
  in.policies.push_back(K8s(R"({"metadata":{"name":"p","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
      "ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"ns":"y"}}}],"ports":[{"port":80}]}]}})"));
  in.policies.push_back(Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"q","namespace":"y"},"spec":{
      "selector":"pod == 'b'","types":["Egress"],"egress":[{"action":"Log"},{"action":"Deny","protocol":"UDP"}]}})"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  const PodChain* in_xa = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  const PodChain* eg_yb = cp.Chain(*cp.FindPod("y/b"), Direction::kEgress);
  ASSERT_NE(in_xa, nullptr);
  ASSERT_NE(eg_yb, nullptr);
  ASSERT_EQ(eg_yb->rules.size(), 2u);
  // Counters the kernel reported; the others show "-" (e.g. the table was
  // just replaced, or a counter is not there).
  std::vector<RuleCounter> counters = {{in_xa->rules[0].counter, 7, 420},
                                       {in_xa->name + "_drop", 2, 120},
                                       {eg_yb->rules[1].counter, 0, 0},
                                       {"c_stray", 9, 9}};
  EXPECT_EQ(FormatPolicyShow(cp, counters),
            "x/a ingress (" + in_xa->name + "):\n"
            "  Allow by k8s:x/p ingress[0]                        peer pods=k8s{};ns=k8s{ns=y}                  7 pkts 420 bytes\n"
            "  default deny                                                                                     2 pkts 120 bytes\n"
            "y/b egress (" + eg_yb->name + "):\n"
            "  Log by calico:y/q egress[0]                        peer any                                      -\n"
            "  Deny by calico:y/q egress[1]                       peer any                                      0 pkts 0 bytes\n"
            "  default deny                                                                                     -\n");
}

TEST(PolicyShow, TiersAndWhatFailsClosed) {
  PolicyInputs in = NetpolWorld();
  in.tiers = {{"security", 1, false}, {"audit", 0, true}};
  in.policies.push_back(Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"log"},"spec":{"tier":"audit",
      "selector":"projectcalico.org/namespace == 'x' && pod == 'a'","ingress":[{"action":"Log"}]}})js"));
  in.policies.push_back(Calico(R"js({"kind":"NetworkPolicy","metadata":{"name":"web","namespace":"x"},"spec":{
      "tier":"security","selector":"pod == 'a'","ingress":[{"action":"Allow","protocol":"TCP","http":{"methods":["GET"]}},
      {"action":"Deny","source":{"notSelector":"pod == 'b'"}}]}})js"));
  CompiledPolicy cp = PolicyCompiler().Compile(in);
  const PodChain* a = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->tiers.size(), 2u);
  ASSERT_EQ(a->rules.size(), 2u);  // the http Allow allows nothing: no rule
  EXPECT_EQ(FormatPolicyShow(cp, {{a->tiers[1].chain + "_drop", 3, 180}}),
            "fail closed:\n"
            "  calico:x/web spec.ingress[0].http: HTTP matching needs an L7 proxy, which terway does not have; enforced "
            "as: the rule allows nothing; the policy still isolates the pods it selects\n"
            "x/a ingress (" + a->name + "):\n"
            "  tier audit (" + a->tiers[0].chain + "):\n"
            "  Log by global:log ingress[0] in tier audit         peer any                                      -\n"
            "  default pass                                      \n"
            "  tier security (" + a->tiers[1].chain + "):\n"
            // A namespaced notSelector alone is scoped to its namespace, folded.
            "  Deny by calico:x/web ingress[1] in tier security   peer sel=(projectcalico.org/namespace == 'x' && "
            "!(pod == 'b')) -\n"
            "  default deny                                                                                     3 pkts 180 bytes\n");
}

TEST(PolicyShow, NothingWhenNoPodIsSelected) {
  EXPECT_EQ(FormatPolicyShow(PolicyCompiler().Compile(NetpolWorld()), {{"c1", 1, 1}}), "");
}

}  // namespace
}  // namespace terway::policy
