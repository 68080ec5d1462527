#include "k8s/types.h"

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

Json J(const char* text) { return Json::parse(text); }

TEST(ParsePod, ReadsTheFieldsTerwayUses) {
  auto pod = ParsePod(J(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web-0", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
                 "labels": {"app": "web"}, "annotations": {"k8s.aliyun.com/pod-ips": "10.0.0.5"},
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                      "uid": "s-1", "controller": true}],
                 "deletionTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{"x": 1}]},
    "spec": {"nodeName": "node-1", "hostNetwork": false, "unknownField": {"a": [1, 2]},
             "containers": [{"name": "c", "image": "busybox",
                             "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"},
                                       {"containerPort": 53, "protocol": "UDP"}]}]},
    "status": {"phase": "Running", "podIP": "10.0.0.5",
               "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(pod->metadata.Key(), "shop/web-0");
  EXPECT_EQ(pod->metadata.uid, "u-1");
  EXPECT_EQ(pod->metadata.resource_version, "42");
  EXPECT_EQ(pod->metadata.labels.at("app"), "web");
  EXPECT_EQ(pod->metadata.annotations.at("k8s.aliyun.com/pod-ips"), "10.0.0.5");
  ASSERT_EQ(pod->metadata.owner_references.size(), 1u);
  EXPECT_EQ(pod->metadata.owner_references[0].kind, "StatefulSet");
  EXPECT_TRUE(pod->metadata.owner_references[0].controller);
  ASSERT_TRUE(pod->metadata.deletion_timestamp.has_value());
  EXPECT_EQ(pod->node_name, "node-1");
  ASSERT_EQ(pod->containers.size(), 1u);
  ASSERT_EQ(pod->containers[0].ports.size(), 2u);
  EXPECT_EQ(pod->containers[0].ports[0].name, "http");
  EXPECT_EQ(pod->containers[0].ports[0].container_port, 80);
  EXPECT_EQ(pod->containers[0].ports[1].protocol, "UDP");
  EXPECT_EQ(pod->phase, "Running");
  EXPECT_EQ(pod->pod_ips, (std::vector<std::string>{"10.0.0.5", "fd00::5"}));
}

TEST(ParsePod, DefaultsAndPodIpFallback) {
  auto pod = ParsePod(J(R"({"metadata": {"name": "p"}, "status": {"podIP": "10.1.1.1"},
                             "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]}})"));
  ASSERT_TRUE(pod.ok()) << pod.error().ToString();
  EXPECT_EQ(pod->metadata.Key(), "p");
  EXPECT_EQ(pod->containers[0].ports[0].protocol, "TCP");
  EXPECT_EQ(pod->pod_ips, std::vector<std::string>{"10.1.1.1"});
  EXPECT_FALSE(pod->metadata.deletion_timestamp.has_value());
}

struct Malformed {
  const char* name;
  const char* json;
  const char* expect_in_message;
};

class MalformedPodTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedPodTest, IsRejectedWithTheFieldNamed) {
  auto pod = ParsePod(J(GetParam().json));
  ASSERT_FALSE(pod.ok());
  EXPECT_EQ(pod.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(pod.error().ToString().find(GetParam().expect_in_message), std::string::npos)
      << pod.error().ToString();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedPodTest,
    ::testing::Values(
        Malformed{"NotObject", R"([1,2])", "expected object"},
        Malformed{"NoMetadata", R"({"spec": {}})", "metadata missing"},
        Malformed{"NoName", R"({"metadata": {"namespace": "x"}})", "metadata.name"},
        Malformed{"LabelNotString", R"({"metadata": {"name": "p", "labels": {"a": 1}}})", "metadata.labels.a"},
        Malformed{"PortAsString",
                  R"({"metadata": {"name": "p"}, "spec": {"containers": [{"ports": [{"containerPort": "80"}]}]}})",
                  "containerPort"},
        Malformed{"ContainersNotArray", R"({"metadata": {"name": "p"}, "spec": {"containers": {}}})",
                  "spec.containers"},
        Malformed{"NodeNameNumber", R"({"metadata": {"name": "p"}, "spec": {"nodeName": 3}})", "spec.nodeName"},
        Malformed{"PodIPsWrong", R"({"metadata": {"name": "p"}, "status": {"podIPs": ["10.0.0.1"]}})",
                  "status.podIPs[0]"}),
    [](const auto& info) { return info.param.name; });

TEST(ParseNetworkPolicy, FullSpec) {
  auto np = ParseNetworkPolicy(J(R"({
    "metadata": {"name": "np", "namespace": "x"},
    "spec": {
      "podSelector": {"matchLabels": {"pod": "a"},
                      "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]},
                                           {"key": "legacy", "operator": "DoesNotExist"}]},
      "policyTypes": ["Ingress", "Egress"],
      "ingress": [{"from": [{"podSelector": {}, "namespaceSelector": {"matchLabels": {"ns": "y"}}},
                            {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                   "ports": [{"protocol": "TCP", "port": 80}, {"port": "http"},
                             {"protocol": "UDP", "port": 1000, "endPort": 2000}]}],
      "egress": [{}]}})"));
  ASSERT_TRUE(np.ok()) << np.error().ToString();
  EXPECT_EQ(np->pod_selector.match_labels.at("pod"), "a");
  ASSERT_EQ(np->pod_selector.match_expressions.size(), 2u);
  EXPECT_EQ(np->pod_selector.match_expressions[0].values, (std::vector<std::string>{"fe", "be"}));
  EXPECT_FALSE(np->policy_types_defaulted);
  ASSERT_EQ(np->ingress.size(), 1u);
  const auto& rule = np->ingress[0];
  ASSERT_EQ(rule.peers.size(), 2u);
  ASSERT_TRUE(rule.peers[0].pod_selector.has_value());
  EXPECT_TRUE(rule.peers[0].pod_selector->Empty());
  ASSERT_TRUE(rule.peers[0].namespace_selector.has_value());
  EXPECT_FALSE(rule.peers[1].pod_selector.has_value());
  EXPECT_FALSE(rule.peers[1].namespace_selector.has_value());
  ASSERT_TRUE(rule.peers[1].ip_block.has_value());
  EXPECT_EQ(rule.peers[1].ip_block->except, std::vector<std::string>{"10.1.0.0/16"});
  ASSERT_EQ(rule.ports.size(), 3u);
  EXPECT_FALSE(rule.ports[0].port->is_string);
  EXPECT_EQ(rule.ports[0].port->int_value, 80);
  EXPECT_TRUE(rule.ports[1].port->is_string);
  EXPECT_EQ(rule.ports[1].port->str_value, "http");
  EXPECT_EQ(rule.ports[1].protocol, "TCP");  // defaulted
  EXPECT_EQ(rule.ports[2].end_port, 2000);
  ASSERT_EQ(np->egress.size(), 1u);
  EXPECT_TRUE(np->egress[0].peers.empty());
  EXPECT_TRUE(np->egress[0].ports.empty());
}

TEST(ParseNetworkPolicy, PolicyTypesDefaultLikeTheApiServer) {
  auto ingress_only = ParseNetworkPolicy(J(R"({"metadata": {"name": "a"}, "spec": {"podSelector": {}}})"));
  ASSERT_TRUE(ingress_only.ok());
  EXPECT_TRUE(ingress_only->policy_types_defaulted);
  EXPECT_EQ(ingress_only->policy_types, std::vector<std::string>{"Ingress"});
  auto with_egress = ParseNetworkPolicy(
      J(R"({"metadata": {"name": "a"}, "spec": {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}})"));
  ASSERT_TRUE(with_egress.ok());
  EXPECT_EQ(with_egress->policy_types, (std::vector<std::string>{"Ingress", "Egress"}));
}

TEST(ParseNetworkPolicy, RejectsMalformed) {
  for (const char* text : {
           R"({"metadata": {"name": "a"}})",
           R"({"metadata": {"name": "a"}, "spec": {"podSelector": {"matchExpressions": [{"key": "k", "operator": "Like"}]}}})",
           R"({"metadata": {"name": "a"}, "spec": {"podSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}}})",
           R"({"metadata": {"name": "a"}, "spec": {"ingress": [{"from": [{"ipBlock": {"except": []}}]}]}})",
           R"({"metadata": {"name": "a"}, "spec": {"ingress": [{"ports": [{"port": 1.5}]}]}})",
           R"({"metadata": {"name": "a"}, "spec": {"policyTypes": ["Sideways"]}})",
           R"({"metadata": {"name": "a"}, "spec": {"egress": {}}})",
       }) {
    auto np = ParseNetworkPolicy(J(text));
    EXPECT_FALSE(np.ok()) << text;
  }
}

TEST(ParseNode, CapacityConditionsAndLabels) {
  auto node = ParseNode(J(R"({"metadata": {"name": "n1", "labels": {"terway-config": "cfg"}},
      "spec": {"providerID": "cn-hangzhou.i-123"},
      "status": {"capacity": {"cpu": "4", "aliyun/eni": 3}, "allocatable": {"memory": "8Gi"},
                 "conditions": [{"type": "SufficientIP", "status": "True", "reason": "Ok"}]}})"));
  ASSERT_TRUE(node.ok()) << node.error().ToString();
  EXPECT_EQ(node->metadata.Key(), "n1");
  EXPECT_EQ(node->provider_id, "cn-hangzhou.i-123");
  EXPECT_EQ(node->capacity.at("aliyun/eni"), "3");
  EXPECT_EQ(node->allocatable.at("memory"), "8Gi");
  ASSERT_EQ(node->conditions.size(), 1u);
  EXPECT_EQ(node->conditions[0].type, "SufficientIP");
  EXPECT_FALSE(ParseNode(J(R"({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": true}}})")).ok());
}

TEST(ParseConfigMapAndNamespace, Basics) {
  auto cm = ParseConfigMap(J(R"({"metadata": {"name": "eni-config", "namespace": "kube-system"},
                                 "data": {"eni_conf": "{}"}})"));
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ(cm->data.at("eni_conf"), "{}");
  EXPECT_FALSE(ParseConfigMap(J(R"({"metadata": {"name": "c"}, "data": {"k": 1}})")).ok());
  auto ns = ParseNamespace(J(R"({"metadata": {"name": "x", "labels": {"ns": "x"}}, "status": {"phase": "Active"}})"));
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->metadata.labels.at("ns"), "x");
  EXPECT_EQ(ns->phase, "Active");
}

TEST(ParseEndpointSlice, AddressesPortsAndTheirDefaults) {
  auto es = ParseEndpointSlice(J(R"({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
      "metadata": {"name": "web-abc", "namespace": "x", "labels": {"kubernetes.io/service-name": "web"}},
      "addressType": "IPv4",
      "endpoints": [{"addresses": ["198.18.0.10"], "conditions": {"ready": true}},
                    {"addresses": ["198.18.0.11"], "conditions": {"ready": false}},
                    {"addresses": ["198.18.0.12"]}],
      "ports": [{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "none"}]})"));
  ASSERT_TRUE(es.ok()) << es.error().ToString();
  EXPECT_EQ(es->ServiceName(), "web");
  EXPECT_EQ(es->address_type, "IPv4");
  ASSERT_EQ(es->endpoints.size(), 3u);
  EXPECT_EQ(es->endpoints[0].addresses, std::vector<std::string>{"198.18.0.10"});
  EXPECT_EQ(es->endpoints[1].ready, std::optional<bool>(false));
  EXPECT_FALSE(es->endpoints[2].ready.has_value());
  ASSERT_EQ(es->ports.size(), 3u);
  EXPECT_EQ(es->ports[0].protocol, "TCP");  // the API's default
  EXPECT_EQ(es->ports[0].port, std::optional<int32_t>(80));
  EXPECT_EQ(es->ports[1].protocol, "UDP");
  EXPECT_FALSE(es->ports[2].port.has_value());
  // A slice of no Service (a hand-made one) says so.
  auto orphan = ParseEndpointSlice(J(R"({"metadata": {"name": "s", "namespace": "x"}})"));
  ASSERT_TRUE(orphan.ok());
  EXPECT_EQ(orphan->ServiceName(), "");
  for (const char* text : {
           R"({"metadata": {"name": "s"}, "endpoints": [{"addresses": "198.18.0.1"}]})",
           R"({"metadata": {"name": "s"}, "endpoints": [{"conditions": {"ready": "yes"}}]})",
           R"({"metadata": {"name": "s"}, "ports": [{"port": "80"}]})",
           R"({"metadata": {"name": "s"}, "ports": {}})",
       }) {
    auto bad = ParseEndpointSlice(J(text));
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.error().ToString().find("EndpointSlice s"), std::string::npos) << bad.error().ToString();
  }
}

TEST(ParseServiceAccount, KeepsItsLabels) {
  auto sa = ParseServiceAccount(J(R"({"metadata": {"name": "api", "namespace": "x", "labels": {"team": "a"}}})"));
  ASSERT_TRUE(sa.ok());
  EXPECT_EQ(sa->metadata.Key(), "x/api");
  EXPECT_EQ(sa->metadata.labels.at("team"), "a");
  EXPECT_FALSE(ParseServiceAccount(J(R"({"metadata": {"name": "api", "labels": {"team": 1}}})")).ok());
}

TEST(ParseNetworkPolicyOrError, KeepsAnUnreadablePolicyWithItsError) {
  auto good = ParseNetworkPolicyOrError(J(R"({"metadata": {"name": "a", "namespace": "x"}, "spec": {}})"));
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(good->object.has_value());
  EXPECT_FALSE(good->error.has_value());
  EXPECT_TRUE(good->raw.is_null());  // not kept twice
  auto bad = ParseNetworkPolicyOrError(
      J(R"({"metadata": {"name": "b", "namespace": "x", "uid": "u-b", "generation": 3},
            "spec": {"policyTypes": ["Sideways"]}})"));
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->object.has_value());
  ASSERT_TRUE(bad->error.has_value());
  EXPECT_NE(bad->error->ToString().find("Sideways"), std::string::npos);
  EXPECT_EQ(bad->metadata.uid, "u-b");
  EXPECT_EQ(bad->metadata.generation, 3);
  EXPECT_EQ(bad->raw["spec"]["policyTypes"][0], "Sideways");
  // Without readable metadata there is nothing to name: an error.
  EXPECT_FALSE(ParseNetworkPolicyOrError(J(R"({"metadata": {"labels": []}})")).ok());
}

TEST(Event, RoundTripsThroughJson) {
  Event e;
  e.metadata.name = "pod-a.1";
  e.metadata.namespace_ = "default";
  e.involved_object = {"Pod", "default", "pod-a", "uid-a", "v1"};
  e.reason = "AllocIPFailed";
  e.message = "no free IP in vSwitch vsw-1";
  e.type = "Warning";
  e.source_component = "terway";
  e.count = 3;
  auto back = ParseEvent(EventToJson(e));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->involved_object.name, "pod-a");
  EXPECT_EQ(back->involved_object.kind, "Pod");
  EXPECT_EQ(back->reason, e.reason);
  EXPECT_EQ(back->type, "Warning");
  EXPECT_EQ(back->count, 3);
  EXPECT_EQ(back->source_component, "terway");
}

}  // namespace
}  // namespace terway::k8s
