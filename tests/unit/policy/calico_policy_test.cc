// Calico v3 policies in the same tier as Kubernetes ones: order, Allow /
// Deny / Log / Pass, selectors, nets/notNets, port ranges, named ports,
// global policies with namespaceSelector, and the parser's errors.
#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT

CompiledPolicy Compile(const std::vector<Policy>& policies) {
  PolicyInputs in = NetpolWorld();
  in.policies = policies;
  return PolicyCompiler().Compile(in);
}

const char* kK8sDenyX = R"({"metadata":{"name":"deny","namespace":"x"},"spec":{"podSelector":{}}})";

TEST(Calico, GlobalDenyBeforeKubernetesAllow) {
  // k8s allows everything into x; a global Deny at order 10 for traffic from
  // pod b wins because it is evaluated first.
  auto cp = Compile({K8s(R"({"metadata":{"name":"all","namespace":"x"},"spec":{"podSelector":{},"ingress":[{}]}})"),
                     Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"deny-b"},"spec":{"order":10,
                       "selector":"projectcalico.org/namespace == 'x'",
                       "ingress":[{"action":"Deny","source":{"selector":"pod == 'b'"}}]}})")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80,
                       [](auto& from, auto& to) { return Ns(to) != "x" || Name(from) != "b"; }),
            "");
  auto e = cp.Explain("y/b", "x/a", Protocol::kTCP, 80);
  EXPECT_EQ(e->ingress.reason, "Deny by global:deny-b ingress[0]");
}

TEST(Calico, DenyAfterKubernetesAllowLoses) {
  // Order 2000 comes after the k8s policies (1000): their Allow decides first.
  auto cp = Compile({K8s(R"({"metadata":{"name":"all","namespace":"x"},"spec":{"podSelector":{},"ingress":[{}]}})"),
                     Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"late","namespace":"x"},"spec":{"order":2000,
                       "ingress":[{"action":"Deny"}]}})")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto&, auto&) { return true; }), "");
}

TEST(Calico, AllowAfterKubernetesIsolationStillAllows) {
  // A k8s policy that matches nothing does not deny by itself: evaluation
  // continues to later policies of the tier, as in Calico.
  auto cp = Compile({K8s(kK8sDenyX), Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"late","namespace":"x"},
                       "spec":{"order":2000,"selector":"pod == 'a'","ingress":[{"action":"Allow","protocol":"TCP",
                       "source":{"namespaceSelector":"ns == 'y'"}}]}})")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80,
                       [](auto& from, auto& to) { return Ns(to) != "x" || (to == "x/a" && Ns(from) == "y"); }),
            "");
}

TEST(Calico, PassSkipsTheRestOfTheTierIncludingKubernetesPolicies) {
  auto cp = Compile({K8s(kK8sDenyX), Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"pass-z"},"spec":{"order":1,
                       "ingress":[{"action":"Pass","source":{"namespaceSelector":"ns == 'z'"}}]}})")});
  // Pass applies to every pod (selector all()), so every pod is selected by
  // pass-z: traffic not from z reaches the end of the tier for pods outside
  // x too, and is denied there.
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto& from, auto&) { return Ns(from) == "z"; }), "");
  auto e = cp.Explain("z/a", "x/b", Protocol::kTCP, 80);
  EXPECT_NE(e->ingress.reason.find("Pass by global:pass-z ingress[0]"), std::string::npos) << e->ToString();
}

TEST(Calico, LogContinuesAndOrderTiesBreakByName) {
  auto cp = Compile({Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"b-allow","namespace":"x"},"spec":{"order":5,
                       "selector":"pod == 'a'","ingress":[{"action":"Allow"}]}})"),
                     Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"a-deny","namespace":"x"},"spec":{"order":5,
                       "selector":"pod == 'a'","ingress":[{"action":"Log"},{"action":"Deny","protocol":"UDP"}]}})")});
  auto tcp = cp.Explain("y/a", "x/a", Protocol::kTCP, 80);
  EXPECT_TRUE(tcp->allowed);
  EXPECT_EQ(tcp->ingress.reason, "Allow by calico:x/b-allow ingress[0]");
  ASSERT_EQ(tcp->ingress.logged.size(), 1u);
  EXPECT_EQ(tcp->ingress.logged[0], "Log by calico:x/a-deny ingress[0]");
  auto udp = cp.Explain("y/a", "x/a", Protocol::kUDP, 80);
  EXPECT_FALSE(udp->allowed);
  EXPECT_EQ(udp->ingress.reason, "Deny by calico:x/a-deny ingress[1]");
}

TEST(Calico, NetsNotNetsPortRangesAndNamedPorts) {
  auto cp = Compile({Calico(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'",
      "ingress":[
        {"action":"Allow","protocol":"TCP","source":{"nets":["198.18.2.0/24"],"notNets":["198.18.2.2"]},
         "destination":{"ports":["80:81"]}},
        {"action":"Allow","protocol":"UDP","source":{"selector":"pod == 'c'","namespaceSelector":"all()"},
         "destination":{"ports":["serve-81-udp"]}}]}})js")});
  for (uint16_t port : {80, 81}) {
    EXPECT_EQ(Mismatches(cp, Protocol::kTCP, port,
                         [](auto& from, auto& to) { return to != "x/a" || from == "y/a" || from == "y/c"; }),
              "");
  }
  EXPECT_FALSE(cp.Explain("y/a", "x/a", Protocol::kTCP, 82)->allowed);
  EXPECT_EQ(Mismatches(cp, Protocol::kUDP, 81, [](auto& from, auto& to) { return to != "x/a" || Name(from) == "c"; }), "");
  EXPECT_FALSE(cp.Explain("y/c", "x/a", Protocol::kUDP, 80)->allowed);
}

TEST(Calico, GlobalPolicyNamespaceSelectorAndEgressTypeDefaulting) {
  // Only egress rules: types default to [Egress]; ingress stays open.
  auto cp = Compile({Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"eg"},"spec":{
      "namespaceSelector":"ns in {'y','z'}","selector":"pod != 'c'",
      "egress":[{"action":"Allow","destination":{"selector":"pod starts with 'b'"}}]}})")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto& from, auto& to) {
              bool selected = Ns(from) != "x" && Name(from) != "c";
              return !selected || Name(to) == "b";  // global: b in every namespace
            }),
            "");
}

TEST(Calico, NamespacedRuleSelectorStaysInThePolicyNamespace) {
  auto cp = Compile({Calico(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "selector":"pod == 'a'","ingress":[{"action":"Allow","source":{"selector":"has(pod)"}}]}})js")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto& from, auto& to) { return to != "x/a" || Ns(from) == "x"; }), "");
}

TEST(Calico, DestinationSelectorOnIngressNarrowsOurPods) {
  auto cp = Compile({Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "ingress":[{"action":"Deny","destination":{"selector":"pod == 'b'"}},{"action":"Allow"}]}})")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80, [](auto&, auto& to) { return to != "x/b"; }), "");
}

TEST(Calico, SelectorAndNetsInOneEntityAreAnded) {
  auto cp = Compile({Calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{
      "selector":"projectcalico.org/namespace == 'x' && pod == 'a'",
      "ingress":[{"action":"Allow","source":{"selector":"pod in {'b', 'c'}","nets":["198.18.2.0/24","198.18.3.0/24"],
                  "notNets":["198.18.3.0/24"]}}]}})js")});
  EXPECT_EQ(Mismatches(cp, Protocol::kTCP, 80,
                       [](auto& from, auto& to) { return to != "x/a" || from == "y/b" || from == "y/c"; }),
            "");
}

struct BadCalico {
  const char* json;
  const char* want;
};

TEST(Calico, ErrorsNameTheField) {
  const BadCalico cases[] = {
      {R"({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"selector":"pod == "}})",
       "spec.selector: selector \"pod == \": at 7: expected a quoted string"},
      {R"({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"ingress":[{"action":"Maybe"}]}})",
       "spec.ingress[0].action: \"Maybe\""},
      {R"({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"ingress":[{"action":"Allow","destination":{"ports":[80]}}]}})",
       "numeric ports need protocol TCP, UDP or SCTP"},
      {R"({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"ingress":[{"action":"Allow","protocol":"TCP","destination":{"ports":["90:80"]}}]}})",
       "bad port range 90:80"},
      {R"({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"egress":[{"action":"Allow","destination":{"nets":["10.0.0.0/33"]}}]}})",
       "spec.egress[0].destination.nets[0]: \"10.0.0.0/33\" is not a CIDR"},
      {R"({"kind":"Profile","metadata":{"name":"p"}})", "kind: \"Profile\" (want NetworkPolicy or GlobalNetworkPolicy)"},
  };
  for (const auto& c : cases) {
    auto r = PolicyFromCalico(nlohmann::json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().ToString().find(c.want), std::string::npos) << r.error().ToString();
  }
}

}  // namespace
}  // namespace terway::policy
