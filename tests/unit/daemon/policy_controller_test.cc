// The pure parts of terwayd's policy controller: how API objects become the
// compiler's inputs (local pods take the address terwayd handed out, node
// addresses, rejected policies named), which pod changes matter, and
// Calico's datastore names.
#include "daemon/policy_controller.h"

#include <gtest/gtest.h>

#include "policy/calico_objects.h"

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

// Dual stack: every address of status.podIPs for pods of other nodes; a
// local pod's IPv6 from what PodStarting was told, else its status (the
// pool may not hand IPv6 to the ledger yet); none for a local pod we hold
// nothing for, nor for a finished pod.
TEST(PolicyInputs, DualStackPodsBringBothAddresses) {
  PolicySources s;
  s.node_name = "node1";
  auto dual = [](k8s::Pod p, const std::string& ip6) {
    p.pod_ips = {p.pod_ip, ip6};
    return p;
  };
  k8s::Pod done = dual(MakePod("x", "done", "node2", "198.18.1.6"), "fd00:1::6");
  done.phase = "Succeeded";
  s.pods = {dual(MakePod("x", "here", "node1", "198.18.0.10"), "fd00::99"),   // stale status: ours says fd00::10
            dual(MakePod("x", "legacy", "node1", "198.18.0.12"), "fd00::12"),  // the ledger has no IPv6
            dual(MakePod("x", "gone", "node1", "198.18.0.11"), "fd00::11"),
            dual(MakePod("x", "there", "node2", "198.18.1.5"), "fd00:1::5"), done};
  s.local_ips = {{"x/here", *Ipv4Addr::Parse("198.18.0.10")}, {"x/legacy", *Ipv4Addr::Parse("198.18.0.12")}};
  s.local_ips6 = {{"x/here", *Ipv6Addr::Parse("fd00::10")}};
  BuiltInputs b = BuildPolicyInputs(s);
  ASSERT_EQ(b.inputs.pods.size(), 5u);
  EXPECT_EQ(b.inputs.pods[0].ipv6->ToString(), "fd00::10");
  EXPECT_EQ(b.inputs.pods[1].ipv6->ToString(), "fd00::12");
  EXPECT_FALSE(b.inputs.pods[2].ipv6.has_value());
  EXPECT_EQ(b.inputs.pods[3].ipv6->ToString(), "fd00:1::5");
  EXPECT_EQ(b.inputs.pods[3].ip->ToString(), "198.18.1.5");
  EXPECT_FALSE(b.inputs.pods[4].ipv6.has_value());
  EXPECT_FALSE(b.inputs.pods[4].ip.has_value());
}

const policy::Policy* FindPolicy(const BuiltInputs& b, const std::string& id) {
  for (const auto& p : b.inputs.policies) {
    if (p.Id() == id) return &p;
  }
  return nullptr;
}

std::string Describe(const policy::Policy& p) { return policy::FailClosedMessage(p.fail_closed, 100000); }

bool Mentions(const std::vector<policy::FailClosed>& entries, const std::string& text) {
  for (const auto& f : entries) {
    if ((f.where + " " + f.why + " " + f.enforced_as).find(text) != std::string::npos) return true;
  }
  return false;
}

// Nothing is dropped: a policy that cannot be read, or not enforced exactly,
// is fed to the compiler enforced on the safe side, with what and why.
TEST(PolicyInputs, UnreadablePoliciesAreEnforcedOnTheSafeSideNotDropped) {
  PolicySources s;
  s.network_policies = {DenyAll("x", "ok")};
  s.calico_policies = {
      k8s::Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"good","namespace":"x","uid":"u-good"},
          "spec":{"selector":"all()","ingress":[{"action":"Allow"}]}})js"),
      k8s::Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"http","namespace":"x","uid":"u-http"},
          "spec":{"selector":"all()","ingress":[{"action":"Allow","http":{"methods":["GET"]}}]}})js"),
      k8s::Json::parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"syntax","uid":"u-syntax","generation":4},
          "spec":{"selector":"app ==","ingress":[{"action":"Allow"}]}})js"),
  };
  BuiltInputs b = BuildPolicyInputs(s);
  EXPECT_EQ(b.inputs.policies.size(), 4u);
  EXPECT_TRUE(b.rejected.empty());
  ASSERT_NE(FindPolicy(b, "calico:x/good"), nullptr);
  EXPECT_TRUE(FindPolicy(b, "calico:x/good")->fail_closed.empty());
  const policy::Policy* http = FindPolicy(b, "calico:x/http");
  ASSERT_NE(http, nullptr);
  EXPECT_TRUE(Mentions(http->fail_closed, "http")) << Describe(*http);
  const policy::Policy* syntax = FindPolicy(b, "global:syntax");
  ASSERT_NE(syntax, nullptr);
  EXPECT_FALSE(syntax->fail_closed.empty());
  EXPECT_TRUE(Mentions(syntax->fail_closed, "selector")) << Describe(*syntax);
  // Each policy knows the object its Event goes on.
  const PolicyObject& obj = b.policy_objects.at("global:syntax");
  EXPECT_EQ(obj.ref.api_version, "projectcalico.org/v3");
  EXPECT_EQ(obj.ref.kind, "GlobalNetworkPolicy");
  EXPECT_EQ(obj.ref.name, "syntax");
  EXPECT_EQ(obj.ref.namespace_, "");
  EXPECT_EQ(obj.ref.uid, "u-syntax");
  EXPECT_EQ(obj.generation, 4);
  EXPECT_EQ(b.policy_objects.at("k8s:x/ok").ref.api_version, "networking.k8s.io/v1");
}

// A NetworkPolicy whose spec does not parse (the cache keeps it as
// ObjectOrError) isolates every pod of its namespace, both ways.
TEST(PolicyInputs, UnparsableNetworkPolicyIsolatesItsNamespace) {
  auto bad = k8s::ParseNetworkPolicyOrError(k8s::Json::parse(
      R"({"metadata":{"name":"typo","namespace":"x","uid":"u-typo","generation":2},
          "spec":{"podSelector":{"matchLabels":{"app":"web"}},"ingress":[{"ports":[{"port":1.5}]}]}})"));
  ASSERT_TRUE(bad.ok());
  ASSERT_FALSE(bad->object.has_value());
  PolicySources s;
  s.unreadable_network_policies = {*bad};
  s.pods = {MakePod("x", "a", "node1", "198.18.0.10", {{"app", "db"}}), MakePod("y", "b", "node1", "198.18.0.11")};
  BuiltInputs b = BuildPolicyInputs(s);
  const policy::Policy* p = FindPolicy(b, "k8s:x/typo");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Mentions(p->fail_closed, "spec.ingress[0].ports[0]")) << Describe(*p);
  EXPECT_TRUE(p->applies_ingress);
  EXPECT_TRUE(p->applies_egress);
  // Its podSelector could not be trusted: every pod of x, not only app=web.
  auto model = policy::PolicyCompiler().Compile(b.inputs);
  auto xa = model.FindPod("x/a");
  ASSERT_TRUE(xa.has_value());
  EXPECT_FALSE(model.Evaluate(*xa, policy::Direction::kIngress, *Ipv4Addr::Parse("198.18.0.11"),
                              policy::Protocol::kTCP, 80).allowed);
  auto yb = model.FindPod("y/b");
  ASSERT_TRUE(yb.has_value());
  EXPECT_TRUE(model.Evaluate(*yb, policy::Direction::kIngress, *Ipv4Addr::Parse("198.18.0.10"),
                             policy::Protocol::kTCP, 80).allowed);
  EXPECT_EQ(b.policy_objects.at("k8s:x/typo").ref.uid, "u-typo");
  EXPECT_EQ(b.policy_objects.at("k8s:x/typo").generation, 2);
}

// Without Calico's API server the policies are crd.projectcalico.org/v1
// objects: read as v3, but their Events name the object as stored.
TEST(PolicyInputs, CrdPoliciesAreReadAsV3AndReportedAsStored) {
  PolicySources s;
  s.calico_api = CalicoApi::kCrdV1;
  s.calico_policies = {k8s::Json::parse(R"js({"apiVersion":"crd.projectcalico.org/v1","kind":"NetworkPolicy",
      "metadata":{"name":"default.web","namespace":"x","uid":"u-web"},"spec":{"selector":"all()","types":["Ingress"]}})js")};
  BuiltInputs b = BuildPolicyInputs(s);
  ASSERT_NE(FindPolicy(b, "calico:x/web"), nullptr);
  const PolicyObject& obj = b.policy_objects.at("calico:x/web");
  EXPECT_EQ(obj.ref.api_version, "crd.projectcalico.org/v1");
  EXPECT_EQ(obj.ref.name, "default.web");
  EXPECT_EQ(obj.ref.uid, "u-web");
}

TEST(PolicyInputs, CalicosOtherObjectsReachTheCompiler) {
  PolicySources s;
  s.tiers = {k8s::Json::parse(R"({"kind":"Tier","metadata":{"name":"security"},"spec":{"order":100,"defaultAction":"Pass"}})")};
  s.network_sets = {k8s::Json::parse(
      R"({"kind":"NetworkSet","metadata":{"name":"partners","namespace":"x","labels":{"role":"partner"}},"spec":{"nets":["198.51.100.0/24"]}})")};
  s.global_network_sets = {
      k8s::Json::parse(R"({"kind":"GlobalNetworkSet","metadata":{"name":"bad-actors"},"spec":{"nets":["203.0.113.0/24"]}})")};
  k8s::ServiceAccount sa;
  sa.metadata.namespace_ = "x";
  sa.metadata.name = "api";
  sa.metadata.labels = {{"team", "a"}};
  s.service_accounts = {sa};
  k8s::EndpointSlice slice;
  slice.metadata.namespace_ = "x";
  slice.metadata.name = "web-1";
  slice.metadata.labels = {{k8s::kServiceNameLabel, "web"}};
  slice.address_type = "IPv4";
  slice.endpoints = {{{"198.18.0.10"}, true}};
  slice.ports = {{"http", 8080, "TCP"}};
  s.endpoint_slices = {slice};
  BuiltInputs b = BuildPolicyInputs(s);
  EXPECT_TRUE(b.rejected.empty());
  ASSERT_EQ(b.inputs.tiers.size(), 1u);
  EXPECT_EQ(b.inputs.tiers[0].name, "security");
  EXPECT_EQ(b.inputs.tiers[0].order, std::optional<double>(100));
  EXPECT_TRUE(b.inputs.tiers[0].default_action_pass);
  ASSERT_EQ(b.inputs.network_sets.size(), 2u);
  EXPECT_EQ(b.inputs.network_sets[0].namespace_, "x");
  EXPECT_EQ(b.inputs.network_sets[0].labels.at("role"), "partner");
  EXPECT_EQ(b.inputs.network_sets[1].namespace_, "");  // global
  EXPECT_EQ(b.inputs.network_sets[1].nets, std::vector<Ipv4Cidr>{*Ipv4Cidr::Parse("203.0.113.0/24")});
  ASSERT_EQ(b.inputs.service_accounts.size(), 1u);
  EXPECT_EQ(b.inputs.service_accounts[0].labels.at("team"), "a");
  ASSERT_EQ(b.inputs.services.size(), 1u);
  EXPECT_EQ(b.inputs.services[0].name, "web");
  ASSERT_EQ(b.inputs.services[0].groups.size(), 1u);
  EXPECT_EQ(b.inputs.services[0].groups[0].addresses, std::vector<Ipv4Addr>{*Ipv4Addr::Parse("198.18.0.10")});
  ASSERT_EQ(b.inputs.services[0].groups[0].ports.size(), 1u);
  EXPECT_EQ(b.inputs.services[0].groups[0].ports[0].port, 8080);
}

// An unreadable network set takes no part and is named; an unreadable tier
// takes no part and its policies are enforced on the safe side.
TEST(PolicyInputs, UnreadableTiersFailTheirPoliciesClosedUnreadableSetsAreNamed) {
  PolicySources s;
  s.tiers = {k8s::Json::parse(R"({"kind":"Tier","metadata":{"name":"ops"},"spec":{"defaultAction":"Allow"}})"),
             k8s::Json::parse(R"({"kind":"Tier","metadata":{"name":"fine"},"spec":{"order":5}})")};
  s.network_sets = {
      k8s::Json::parse(R"({"kind":"NetworkSet","metadata":{"name":"typo","namespace":"x"},"spec":{"nets":["198.51.100.0/33"]}})")};
  s.calico_policies = {
      k8s::Json::parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"ops.allow-web","uid":"u1"},
          "spec":{"tier":"ops","selector":"all()","ingress":[{"action":"Allow"}]}})js"),
      k8s::Json::parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"allow-web","uid":"u2"},
          "spec":{"selector":"all()","ingress":[{"action":"Allow"}]}})js"),
  };
  BuiltInputs b = BuildPolicyInputs(s);
  ASSERT_EQ(b.rejected.size(), 2u);
  EXPECT_NE(b.rejected[0].find("Tier ops: spec.defaultAction"), std::string::npos) << b.rejected[0];
  EXPECT_NE(b.rejected[1].find("NetworkSet x/typo: spec.nets[0]"), std::string::npos) << b.rejected[1];
  ASSERT_EQ(b.inputs.tiers.size(), 1u);
  // The set still takes part, with unknown addresses (next test).
  ASSERT_EQ(b.inputs.network_sets.size(), 1u);
  EXPECT_FALSE(b.inputs.network_sets[0].Readable());
  const policy::Policy* ops = FindPolicy(b, "global:ops.allow-web");
  ASSERT_NE(ops, nullptr);
  EXPECT_TRUE(Mentions(ops->fail_closed, "tier ops")) << Describe(*ops);
  const policy::Policy* fine = FindPolicy(b, "global:allow-web");  // tier default
  ASSERT_NE(fine, nullptr);
  EXPECT_TRUE(fine->fail_closed.empty());
}

// A NetworkSet that cannot be read is named (log, metric, show) and still
// reaches the compiler, so a Deny selecting it denies any address its other
// criteria match, and says so. Dropped, it made the Deny deny nothing of
// the set's addresses: fail open.
TEST(PolicyInputs, UnreadableNetworkSetsFailTheRulesSelectingThemClosed) {
  PolicySources s;
  s.node_name = "node1";
  s.pods = {MakePod("x", "web", "node1", "", {{"app", "web"}})};
  s.local_ips = {{"x/web", *Ipv4Addr::Parse("198.18.0.10")}};
  s.network_sets = {k8s::Json::parse(R"({"kind":"NetworkSet","metadata":{"name":"partners","namespace":"x",
      "labels":{"role":"partner"}},"spec":{"nets":["198.51.100.0/24","198.51.100.0/33"]}})")};
  s.calico_policies = {k8s::Json::parse(R"({"kind":"NetworkPolicy","metadata":{"name":"no-partners","namespace":"x"},
      "spec":{"selector":"app == 'web'","ingress":[{"action":"Deny","source":{"selector":"role == 'partner'"}},
      {"action":"Allow"}]}})")};
  BuiltInputs b = BuildPolicyInputs(s);
  policy::CompiledPolicy cp = policy::PolicyCompiler({.node = "node1"}).Compile(b.inputs);
  auto e = cp.Explain("198.51.100.7", "x/web", policy::Protocol::kTCP, 80);
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_FALSE(e->allowed) << e->ToString();
  EXPECT_EQ(e->ingress.reason, "Deny by calico:x/no-partners ingress[0]");
  ASSERT_EQ(b.rejected.size(), 1u);
  EXPECT_NE(b.rejected[0].find("networkset: NetworkSet x/partners: spec.nets[1]"), std::string::npos) << b.rejected[0];
  ASSERT_EQ(b.inputs.network_sets.size(), 1u);
  EXPECT_EQ(b.inputs.network_sets[0].read, policy::NetworkSetInfo::Read::kLabels);
  ASSERT_EQ(cp.policies().size(), 1u);
  EXPECT_TRUE(Mentions(cp.policies()[0].fail_closed, "NetworkSet x/partners")) << Describe(cp.policies()[0]);
}

TEST(PolicyInputs, OnlyChangesCalicoCanSeeCount) {
  k8s::EndpointSlice a;
  a.metadata.name = "web-1";
  a.metadata.labels = {{k8s::kServiceNameLabel, "web"}};
  a.address_type = "IPv4";
  a.endpoints = {{{"198.18.0.10"}, true}};
  a.ports = {{"http", 8080, "TCP"}};
  k8s::EndpointSlice b = a;
  b.endpoints[0].ready = false;  // readiness churn: Calico matches every backend
  b.metadata.resource_version = "9";
  EXPECT_FALSE(EndpointSliceChangeMatters(a, b));
  b.endpoints[0].addresses = {"198.18.0.11"};
  EXPECT_TRUE(EndpointSliceChangeMatters(a, b));
  b = a;
  b.ports[0].port = 8081;
  EXPECT_TRUE(EndpointSliceChangeMatters(a, b));
  b = a;
  b.endpoints.push_back({{"198.18.0.12"}, true});
  EXPECT_TRUE(EndpointSliceChangeMatters(a, b));
  b = a;
  b.metadata.labels[k8s::kServiceNameLabel] = "api";
  EXPECT_TRUE(EndpointSliceChangeMatters(a, b));

  auto raw = [](const char* text) { return *k8s::ParseRawObject(k8s::Json::parse(text)); };
  k8s::RawObject set = raw(R"({"metadata":{"name":"s","resourceVersion":"1"},"spec":{"nets":["198.51.100.0/24"]}})");
  EXPECT_FALSE(CalicoObjectChangeMatters(
      set, raw(R"({"metadata":{"name":"s","resourceVersion":"2","annotations":{"a":"b"}},"spec":{"nets":["198.51.100.0/24"]}})")));
  EXPECT_TRUE(CalicoObjectChangeMatters(
      set, raw(R"({"metadata":{"name":"s","resourceVersion":"2"},"spec":{"nets":["198.51.100.0/25"]}})")));
  EXPECT_TRUE(CalicoObjectChangeMatters(
      set, raw(R"({"metadata":{"name":"s","resourceVersion":"2","labels":{"k":"v"}},"spec":{"nets":["198.51.100.0/24"]}})")));
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
