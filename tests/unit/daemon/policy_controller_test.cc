// The pure parts of terwayd's policy controller: how API objects become the
// compiler's inputs (local pods take the address terwayd handed out, node
// addresses, rejected policies named), which pod changes matter, and
// Calico's datastore names.
#include "daemon/policy_controller.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

k8s::Pod MakePod(const std::string& ns, const std::string& name, const std::string& node, const std::string& ip,
                 k8s::Labels labels = {}) {
  k8s::Pod p;
  p.metadata.namespace_ = ns;
  p.metadata.name = name;
  p.metadata.labels = std::move(labels);
  p.node_name = node;
  p.pod_ip = ip;
  return p;
}

k8s::NetworkPolicy DenyAll(const std::string& ns, const std::string& name) {
  auto np = k8s::ParseNetworkPolicy(k8s::Json::parse(
      R"({"metadata":{"name":")" + name + R"(","namespace":")" + ns + R"("},"spec":{"podSelector":{}}})"));
  EXPECT_TRUE(np.ok());
  return *np;
}

TEST(PolicyInputs, LocalPodsTakeTheAllocatedAddressOthersTheApis) {
  PolicySources s;
  s.node_name = "node1";
  s.node_ips = {*Ipv4Addr::Parse("198.18.0.2")};
  s.pods = {MakePod("x", "here", "node1", "198.18.0.99"),       // stale status: ours says .10
            MakePod("x", "starting", "node1", ""),              // ADD running: status has no IP yet
            MakePod("x", "gone", "node1", "198.18.0.11"),       // we hold nothing for it
            MakePod("x", "there", "node2", "198.18.1.5")};
  s.local_ips = {{"x/here", *Ipv4Addr::Parse("198.18.0.10")}, {"x/starting", *Ipv4Addr::Parse("198.18.0.12")}};
  k8s::Node n2;
  n2.metadata.name = "node2";
  n2.addresses = {{"Hostname", "node2"}, {"InternalIP", "198.18.1.2"}, {"InternalIP", "fd00::2"}};
  s.nodes = {n2};
  BuiltInputs b = BuildPolicyInputs(s);
  ASSERT_EQ(b.inputs.pods.size(), 4u);
  EXPECT_EQ(b.inputs.pods[0].ip->ToString(), "198.18.0.10");
  EXPECT_EQ(b.inputs.pods[1].ip->ToString(), "198.18.0.12");
  EXPECT_FALSE(b.inputs.pods[2].ip.has_value());
  EXPECT_EQ(b.inputs.pods[3].ip->ToString(), "198.18.1.5");
  EXPECT_EQ(b.inputs.node_ips.at("node1"), std::vector<Ipv4Addr>{*Ipv4Addr::Parse("198.18.0.2")});
  EXPECT_EQ(b.inputs.node_ips.at("node2"), std::vector<Ipv4Addr>{*Ipv4Addr::Parse("198.18.1.2")});
  EXPECT_TRUE(b.rejected.empty());
}

TEST(PolicyInputs, UnenforceablePoliciesAreNamedAndSkippedTheRestKept) {
  PolicySources s;
  s.network_policies = {DenyAll("x", "ok")};
  s.calico_policies = {
      k8s::Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"good","namespace":"x"},
          "spec":{"selector":"all()","ingress":[{"action":"Allow"}]}})js"),
      k8s::Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"http","namespace":"x"},
          "spec":{"selector":"all()","ingress":[{"action":"Allow","http":{"methods":["GET"]}}]}})js"),
      k8s::Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"syntax","namespace":"y"},
          "spec":{"selector":"app ==","ingress":[{"action":"Allow"}]}})js"),
  };
  BuiltInputs b = BuildPolicyInputs(s);
  EXPECT_EQ(b.inputs.policies.size(), 2u);
  ASSERT_EQ(b.rejected.size(), 2u);
  EXPECT_EQ(b.rejected[0].rfind("calico:x/http: ", 0), 0u) << b.rejected[0];
  EXPECT_NE(b.rejected[0].find("http"), std::string::npos);
  EXPECT_EQ(b.rejected[1].rfind("calico:y/syntax: ", 0), 0u) << b.rejected[1];
}

TEST(PolicyInputs, OnlyPolicyRelevantPodChangesCount) {
  k8s::Pod a = MakePod("x", "a", "node1", "198.18.0.10", {{"app", "web"}});
  k8s::Pod b = a;
  b.phase = "Running";  // status churn
  b.metadata.annotations["note"] = "x";
  b.metadata.resource_version = "7";
  EXPECT_FALSE(PodChangeMatters(a, b));
  b.metadata.labels["app"] = "db";
  EXPECT_TRUE(PodChangeMatters(a, b));
  b = a;
  b.pod_ip = "198.18.0.11";
  EXPECT_TRUE(PodChangeMatters(a, b));
  b = a;
  b.containers.push_back({"c", {{"http", 8080, "TCP"}}});
  EXPECT_TRUE(PodChangeMatters(a, b));  // named ports
  b = a;
  b.host_network = true;
  EXPECT_TRUE(PodChangeMatters(a, b));
}

TEST(PolicyInputs, CalicoDatastoreNamesLoseTheDefaultTierPrefix) {
  auto v3 = CalicoCrdToV3(k8s::Json::parse(
      R"({"apiVersion":"crd.projectcalico.org/v1","kind":"GlobalNetworkPolicy","metadata":{"name":"default.deny-all"},"spec":{}})"));
  EXPECT_EQ(v3["apiVersion"], "projectcalico.org/v3");
  EXPECT_EQ(v3["metadata"]["name"], "deny-all");
  auto plain = CalicoCrdToV3(k8s::Json::parse(R"({"kind":"NetworkPolicy","metadata":{"name":"web"}})"));
  EXPECT_EQ(plain["metadata"]["name"], "web");
  // "default." alone is not a tier prefix of anything.
  auto odd = CalicoCrdToV3(k8s::Json::parse(R"({"kind":"NetworkPolicy","metadata":{"name":"default."}})"));
  EXPECT_EQ(odd["metadata"]["name"], "default.");
  EXPECT_EQ(CalicoApiName(CalicoApi::kCrdV1), std::string("crd.projectcalico.org/v1"));
}

}  // namespace
}  // namespace terway::daemon
