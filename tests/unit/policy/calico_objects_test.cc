// Calico's tiers and network sets, Kubernetes service accounts and
// EndpointSlices as the policy model takes them (docs/calico-semantics.md
// sections 2.5, 4, 5), and the Event text terwayd tells users with when a
// policy is enforced on the safe side.
#include "policy/calico_objects.h"

#include <gtest/gtest.h>

namespace terway::policy {
namespace {

using Json = nlohmann::json;

Ipv4Addr A(const char* s) { return *Ipv4Addr::Parse(s); }
Ipv4Cidr C(const char* s) { return *Ipv4Cidr::Parse(s); }

TEST(CalicoNetworkSet, NetsLabelsAndNamespace) {
  auto ns = NetworkSetFromCalico(Json::parse(R"({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet",
      "metadata": {"name": "partners", "namespace": "x", "labels": {"role": "partner"}},
      "spec": {"nets": ["198.51.100.0/24", "203.0.113.7", "192.0.2.77/28", "2001:db8::/32", "2001:db8::1"]}})"));
  ASSERT_TRUE(ns.ok()) << ns.error().ToString();
  EXPECT_EQ(ns->namespace_, "x");
  EXPECT_EQ(ns->name, "partners");
  EXPECT_EQ(ns->labels, (k8s::Labels{{"role", "partner"}}));
  // A bare address is a /32; host bits are masked as Calico masks them.
  EXPECT_EQ(ns->nets, (std::vector<Ipv4Cidr>{C("198.51.100.0/24"), C("203.0.113.7/32"), C("192.0.2.64/28")}));
  EXPECT_EQ(ns->nets6, (std::vector<Ipv6Cidr>{*Ipv6Cidr::Parse("2001:db8::/32"), *Ipv6Cidr::Parse("2001:db8::1/128")}));
}

TEST(CalicoNetworkSet, GlobalHasNoNamespaceAndEmptySpecIsEmpty) {
  auto g = GlobalNetworkSetFromCalico(Json::parse(R"({"kind": "GlobalNetworkSet",
      "metadata": {"name": "blocklist", "labels": {"list": "bad"}}, "spec": {"nets": ["198.18.9.0/24"]}})"));
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  EXPECT_EQ(g->namespace_, "");
  EXPECT_EQ(g->nets, std::vector<Ipv4Cidr>{C("198.18.9.0/24")});
  EXPECT_TRUE(g->nets6.empty());
  // The crd.projectcalico.org/v1 object of the same set reads the same.
  auto crd = GlobalNetworkSetFromCalico(Json::parse(R"({"apiVersion": "crd.projectcalico.org/v1",
      "kind": "GlobalNetworkSet", "metadata": {"name": "blocklist", "labels": {"list": "bad"}},
      "spec": {"nets": ["198.18.9.0/24"]}})"));
  ASSERT_TRUE(crd.ok());
  EXPECT_EQ(crd->nets, g->nets);
  auto empty = GlobalNetworkSetFromCalico(Json::parse(R"({"metadata": {"name": "none"}})"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->nets.empty());
}

TEST(CalicoNetworkSet, MalformedSetsAreErrorsNamingSetAndField) {
  struct Case {
    bool global;
    const char* json;
    const char* want;  // in the error
  };
  for (const Case& c : std::vector<Case>{
           {false, R"({"metadata": {"name": "s", "namespace": "x"}, "spec": {"nets": ["10.0.0.0/33"]}})",
            "NetworkSet x/s: spec.nets[0]"},
           {false, R"({"metadata": {"name": "s", "namespace": "x"}, "spec": {"nets": ["not-an-ip"]}})",
            "\"not-an-ip/32\" is not a CIDR"},
           {false, R"({"metadata": {"name": "s", "namespace": "x"}, "spec": {"nets": [7]}})", "spec.nets[0]"},
           {false, R"({"metadata": {"name": "s", "namespace": "x"}, "spec": {"nets": "10.0.0.0/8"}})", "spec.nets"},
           {false, R"({"metadata": {"name": "s"}, "spec": {}})", "metadata.namespace missing"},
           {false, R"({"metadata": {"name": "s", "namespace": "x", "labels": {"projectcalico.org/namespace": "y"}}})",
            "reserved"},
           {true, R"({"metadata": {"name": "g"}, "spec": []})", "GlobalNetworkSet g: spec"},
           {true, R"({"spec": {}})", "metadata missing"},
       }) {
    auto r = c.global ? GlobalNetworkSetFromCalico(Json::parse(c.json)) : NetworkSetFromCalico(Json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().ToString().find(c.want), std::string::npos) << r.error().ToString();
  }
}

TEST(CalicoTier, OrderDefaultsToTheDefaultTiersAndDefaultActionToDeny) {
  auto plain = TierFromCalico(Json::parse(R"({"kind": "Tier", "metadata": {"name": "security"}, "spec": {}})"));
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  EXPECT_EQ(plain->name, "security");
  EXPECT_EQ(plain->order, std::optional<double>(kDefaultTierOrder));
  EXPECT_FALSE(plain->default_action_pass);
  auto full = TierFromCalico(
      Json::parse(R"({"metadata": {"name": "platform"}, "spec": {"order": 100.5, "defaultAction": "Pass"}})"));
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->order, std::optional<double>(100.5));
  EXPECT_TRUE(full->default_action_pass);
  auto deny = TierFromCalico(Json::parse(R"({"metadata": {"name": "t"}, "spec": {"order": 7, "defaultAction": "Deny"}})"));
  ASSERT_TRUE(deny.ok());
  EXPECT_EQ(deny->order, std::optional<double>(7));
  EXPECT_FALSE(deny->default_action_pass);
  auto nospec = TierFromCalico(Json::parse(R"({"metadata": {"name": "bare"}})"));
  ASSERT_TRUE(nospec.ok());
  EXPECT_EQ(nospec->order, std::optional<double>(kDefaultTierOrder));
}

TEST(CalicoTier, MalformedTiersAreErrors) {
  for (const char* text : {
           R"({"metadata": {"name": "t"}, "spec": {"order": "10"}})",
           R"({"metadata": {"name": "t"}, "spec": {"defaultAction": "Allow"}})",
           R"({"metadata": {"name": "t"}, "spec": {"defaultAction": "pass"}})",
           R"({"metadata": {"name": "t"}, "spec": {"defaultAction": 1}})",
       }) {
    auto r = TierFromCalico(Json::parse(text));
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().ToString().find("Tier t: spec."), std::string::npos) << r.error().ToString();
  }
}

TEST(ServiceAccounts, KeepNamespaceNameAndLabels) {
  k8s::ServiceAccount sa;
  sa.metadata.namespace_ = "x";
  sa.metadata.name = "api";
  sa.metadata.labels = {{"team", "a"}};
  ServiceAccountInfo info = ServiceAccountFromK8s(sa);
  EXPECT_EQ(info.namespace_, "x");
  EXPECT_EQ(info.name, "api");
  EXPECT_EQ(info.labels, sa.metadata.labels);
}

k8s::EndpointSlice Slice(const std::string& ns, const std::string& name, const std::string& service,
                         std::vector<std::vector<std::string>> endpoints, std::vector<k8s::EndpointPort> ports,
                         const std::string& type = "IPv4") {
  k8s::EndpointSlice s;
  s.metadata.namespace_ = ns;
  s.metadata.name = name;
  if (!service.empty()) s.metadata.labels[k8s::kServiceNameLabel] = service;
  s.address_type = type;
  for (auto& addrs : endpoints) s.endpoints.push_back({std::move(addrs), true});
  s.ports = std::move(ports);
  return s;
}

using Port = ServiceBackends::Port;
using Ports = std::vector<Port>;
using Addrs = std::vector<Ipv4Addr>;

TEST(ServiceBackendsFromSlices, SlicesWithTheSamePortsShareAGroup) {
  std::vector<k8s::EndpointSlice> slices = {
      Slice("x", "web-1", "web", {{"198.18.0.11"}, {"198.18.0.10"}}, {{"http", 8080, "TCP"}, {"dns", 53, "UDP"}}),
      // A second slice of the same Service and ports (slices hold at most
      // 100 endpoints), listing them in another order.
      Slice("x", "web-2", "web", {{"198.18.0.12"}, {"198.18.0.10"}}, {{"dns", 53, "UDP"}, {"http", 8080, "TCP"}}),
      Slice("y", "web-1", "web", {{"198.18.1.10"}}, {{"", 80, ""}}),  // same name, other namespace
  };
  auto services = ServicesFromEndpointSlices(slices);
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].namespace_, "x");
  EXPECT_EQ(services[0].name, "web");
  ASSERT_EQ(services[0].groups.size(), 1u);
  EXPECT_EQ(services[0].groups[0].addresses, (Addrs{A("198.18.0.10"), A("198.18.0.11"), A("198.18.0.12")}));
  EXPECT_EQ(services[0].groups[0].ports, (Ports{{6, 8080}, {17, 53}}));
  EXPECT_EQ(services[1].namespace_, "y");
  ASSERT_EQ(services[1].groups.size(), 1u);
  EXPECT_EQ(services[1].groups[0].ports, (Ports{{6, 80}}));  // no protocol: TCP
}

// Felix pairs each slice's endpoints with that slice's ports only. The
// EndpointSlice controller puts pods whose named targetPort resolves to
// different numbers into different slices: pod .10 serves 8080, pod .11
// serves 9090. The union would also let .10 be reached on 9090.
TEST(ServiceBackendsFromSlices, EachSlicesEndpointsKeepTheirOwnPorts) {
  std::vector<k8s::EndpointSlice> slices = {
      Slice("x", "web-a", "web", {{"198.18.0.10"}}, {{"http", 8080, "TCP"}}),
      Slice("x", "web-b", "web", {{"198.18.0.11"}}, {{"http", 9090, "TCP"}, {"s", 9000, "SCTP"}}),
  };
  auto services = ServicesFromEndpointSlices(slices);
  ASSERT_EQ(services.size(), 1u);
  ASSERT_EQ(services[0].groups.size(), 2u);
  EXPECT_EQ(services[0].groups[0].addresses, Addrs{A("198.18.0.10")});
  EXPECT_EQ(services[0].groups[0].ports, (Ports{{6, 8080}}));
  EXPECT_EQ(services[0].groups[1].addresses, Addrs{A("198.18.0.11")});
  EXPECT_EQ(services[0].groups[1].ports, (Ports{{6, 9090}, {132, 9000}}));
  // A source `services` match takes every address, without ports.
  EXPECT_EQ(services[0].Addresses(), (Addrs{A("198.18.0.10"), A("198.18.0.11")}));
}

TEST(ServiceBackendsFromSlices, WhatContributesNothing) {
  k8s::EndpointSlice not_ready = Slice("x", "db-1", "db", {{"198.18.0.20"}}, {{"pg", std::nullopt, "TCP"}});
  not_ready.endpoints[0].ready = false;  // Calico matches backends whatever their readiness
  std::vector<k8s::EndpointSlice> slices = {
      not_ready,
      Slice("x", "db-v6", "db", {{"fd00::20"}}, {{"pg", 5432, "TCP"}}, "IPv6"),
      Slice("x", "orphan", "", {{"198.18.0.30"}}, {{"p", 1, "TCP"}}),  // no Service label
      Slice("x", "empty-1", "empty", {}, {{"p", 80, "TCP"}}),
  };
  auto services = ServicesFromEndpointSlices(slices);
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].name, "db");
  // The IPv4 slice's port has no number: its address, on no port. The
  // IPv6 slice (a dual-stack Service) is a group of its own port.
  ASSERT_EQ(services[0].groups.size(), 2u);
  EXPECT_EQ(services[0].groups[0].addresses, Addrs{A("198.18.0.20")});
  EXPECT_TRUE(services[0].groups[0].ports.empty());
  EXPECT_TRUE(services[0].groups[1].addresses.empty());
  EXPECT_EQ(services[0].groups[1].addresses6, std::vector<Ipv6Addr>{*Ipv6Addr::Parse("fd00::20")});
  EXPECT_EQ(services[0].groups[1].ports, (std::vector<ServiceBackends::Port>{{6, 5432}}));
  // A Service whose slices list no endpoint still exists (its rules match
  // nothing), with no group: its ports pair with no address.
  EXPECT_EQ(services[1].name, "empty");
  EXPECT_TRUE(services[1].groups.empty());
  EXPECT_TRUE(services[1].Addresses().empty());
}

std::vector<FailClosed> Entries(size_t n, size_t why_len = 10) {
  std::vector<FailClosed> out;
  for (size_t i = 0; i < n; i++) {
    out.push_back({fmt::format("spec.ingress[{}].http", i), std::string(why_len, 'w'), "the rule allows nothing"});
  }
  return out;
}

TEST(FailClosedText, EventMessageNamesFieldWhyAndWhatIsEnforced) {
  std::string m = FailClosedMessage({{"spec.egress[1].destination.services", "the Service x/web has no slices",
                                      "the rule denies all it could match"}});
  EXPECT_NE(m.find("spec.egress[1].destination.services: the Service x/web has no slices; enforced as: the rule "
                   "denies all it could match"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("more"), std::string::npos);
}

TEST(FailClosedText, EventMessageStaysWithinTheLimitAndPointsToShow) {
  std::string all = FailClosedMessage(Entries(3), 100000);
  for (int i = 0; i < 3; i++) EXPECT_NE(all.find(fmt::format("spec.ingress[{}]", i)), std::string::npos);
  std::string some = FailClosedMessage(Entries(40, 30), 1024);
  EXPECT_LE(some.size(), 1024u);
  EXPECT_NE(some.find("spec.ingress[0].http"), std::string::npos);
  EXPECT_EQ(some.find("spec.ingress[39].http"), std::string::npos);
  EXPECT_NE(some.find("more: see terway-cli policy show"), std::string::npos) << some;
  // The count of those left out is right: entries shown + left out = 40.
  size_t shown = 0;
  for (size_t pos = 0; (pos = some.find("enforced as:", pos)) != std::string::npos; pos++) shown++;
  EXPECT_NE(some.find(fmt::format("and {} more", 40 - shown)), std::string::npos) << some;
  // One entry longer than the limit is cut, never split inside a UTF-8
  // character.
  std::string why(400, 'x');
  for (int i = 0; i < 150; i++) why += "\u00e9";  // two bytes each
  std::vector<FailClosed> long_one = {{"spec.selector", why, "all"}};
  ASSERT_GT(FailClosedMessage(long_one, 100000).size(), 700u);
  for (size_t limit = 300; limit < 700; limit++) {
    std::string cut = FailClosedMessage(long_one, limit);
    EXPECT_LE(cut.size(), limit);
    EXPECT_NE(cut.find("(cut: see terway-cli policy show)"), std::string::npos) << cut;
    EXPECT_NO_THROW(Json(cut).dump()) << "not valid UTF-8 when cut at " << limit;
  }
}

}  // namespace
}  // namespace terway::policy
