// The lab's kube-controller-manager parts: EndpointSlices computed from a
// Service and its pods (pure), kept in step with them by the store's
// reactions, and the `default` ServiceAccount of every namespace.
#include "tools/lab/apiserver/controllers.h"

#include <gtest/gtest.h>

#include "tools/lab/apiserver/server.h"

namespace terway::lab {
namespace {

Json Service(const std::string& name, Json selector, Json ports, const std::string& ns = "default") {
  Json s = {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"uid", "svc-uid"}}},
            {"spec", {{"ports", std::move(ports)}}}};
  if (!selector.is_null()) s["spec"]["selector"] = std::move(selector);
  return s;
}

Json Pod(const std::string& name, const std::string& ip, bool ready, Json container_ports = Json::array(),
         const std::string& ns = "default", Json labels = {{"app", "web"}}) {
  Json p = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata", {{"name", name}, {"namespace", ns}, {"uid", name + "-uid"}, {"labels", std::move(labels)}}},
      {"spec", {{"nodeName", "node-a"}, {"containers", {{{"name", "c"}, {"ports", std::move(container_ports)}}}}}},
      {"status", {{"phase", "Running"}, {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}}}};
  if (!ip.empty()) {
    p["status"]["podIP"] = ip;
    p["status"]["podIPs"] = {{{"ip", ip}}};
  }
  return p;
}

std::vector<const Json*> Ptrs(const std::vector<Json>& v) {
  std::vector<const Json*> out;
  for (const auto& j : v) out.push_back(&j);
  return out;
}

std::vector<std::string> Addresses(const Json& slice) {
  std::vector<std::string> out;
  if (!slice["endpoints"].is_array()) return out;
  for (const auto& e : slice["endpoints"]) out.push_back(e["addresses"][0]);
  return out;
}

const Json kWebPorts = {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", 8080}}};

TEST(EndpointSlicesTest, SelectedPodsWithAddressesInOneSlice) {
  std::vector<Json> pods = {Pod("b", "10.0.0.2", true), Pod("a", "10.0.0.1", false),
                            Pod("no-ip", "", true),
                            Pod("other-ns", "10.0.0.9", true, Json::array(), "prod"),
                            Pod("other-app", "10.0.0.8", true, Json::array(), "default", {{"app", "db"}})};
  auto slices = DesiredEndpointSlices(Service("web", {{"app", "web"}}, kWebPorts), Ptrs(pods), {{"node-a", "zone-1"}});
  ASSERT_EQ(slices.size(), 1u);
  const Json& s = slices[0];
  EXPECT_EQ(s["apiVersion"], "discovery.k8s.io/v1");
  EXPECT_EQ(s["addressType"], "IPv4");
  EXPECT_EQ(s["metadata"]["generateName"], "web-");
  EXPECT_EQ(s["metadata"]["namespace"], "default");
  EXPECT_EQ(s["metadata"]["labels"][kServiceNameLabel], "web");
  EXPECT_EQ(s["metadata"]["labels"][kManagedByLabel], kEndpointSliceController);
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["uid"], "svc-uid");
  EXPECT_EQ(s["ports"], Json::parse(R"j([{"name":"http","port":8080,"protocol":"TCP"}])j"));
  // Sorted by pod name; readiness from the pod's Ready condition.
  EXPECT_EQ(Addresses(s), (std::vector<std::string>{"10.0.0.1", "10.0.0.2"}));
  EXPECT_EQ(s["endpoints"][0]["conditions"], Json::parse(R"j({"ready":false,"serving":false,"terminating":false})j"));
  EXPECT_EQ(s["endpoints"][1]["conditions"], Json::parse(R"j({"ready":true,"serving":true,"terminating":false})j"));
  EXPECT_EQ(s["endpoints"][1]["targetRef"],
            Json::parse(R"j({"kind":"Pod","namespace":"default","name":"b","uid":"b-uid"})j"));
  EXPECT_EQ(s["endpoints"][1]["nodeName"], "node-a");
  EXPECT_EQ(s["endpoints"][1]["zone"], "zone-1");
}

TEST(EndpointSlicesTest, NamedTargetPortsResolvePerPod) {
  Json ports = {{{"name", "http"}, {"port", 80}, {"protocol", "TCP"}, {"targetPort", "web"}},
                {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}, {"targetPort", "dns"}}};
  std::vector<Json> pods = {
      Pod("a", "10.0.0.1", true,
          {{{"name", "web"}, {"containerPort", 8080}},
           {{"name", "dns"}, {"containerPort", 5353}, {"protocol", "UDP"}}}),
      Pod("b", "10.0.0.2", true, {{{"name", "web"}, {"containerPort", 9090}}}),
      // The name matches but the protocol does not: no dns port for c.
      Pod("c", "10.0.0.3", true,
          {{{"name", "web"}, {"containerPort", 9090}}, {{"name", "dns"}, {"containerPort", 53}}})};
  auto slices = DesiredEndpointSlices(Service("web", {{"app", "web"}}, ports), Ptrs(pods), {});
  ASSERT_EQ(slices.size(), 2u);
  std::map<std::string, std::vector<std::string>> by_ports;
  for (const auto& s : slices) by_ports[s["ports"].dump()] = Addresses(s);
  EXPECT_EQ(by_ports[R"j([{"name":"http","port":8080,"protocol":"TCP"},{"name":"dns","port":5353,"protocol":"UDP"}])j"],
            std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(by_ports[R"j([{"name":"http","port":9090,"protocol":"TCP"}])j"],
            (std::vector<std::string>{"10.0.0.2", "10.0.0.3"}));
}

TEST(EndpointSlicesTest, WhichPodsServe) {
  Json terminating = Pod("t", "10.0.0.4", true);
  terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  Json done = Pod("d", "10.0.0.5", false);
  done["spec"]["restartPolicy"] = "Never";
  done["status"]["phase"] = "Succeeded";
  Json failed_on_failure = Pod("f", "10.0.0.6", false);
  failed_on_failure["spec"]["restartPolicy"] = "OnFailure";
  failed_on_failure["status"]["phase"] = "Failed";  // it will run again
  Json v6 = Pod("v6", "", true);
  v6["status"]["podIPs"] = {{{"ip", "fd00::1"}}};
  EXPECT_FALSE(PodServesEndpoints(done));
  EXPECT_TRUE(PodServesEndpoints(failed_on_failure));
  EXPECT_FALSE(PodServesEndpoints(v6));  // an IPv4 slice has no place for it
  std::vector<Json> pods = {terminating, done, failed_on_failure, v6};
  auto slices = DesiredEndpointSlices(Service("web", {{"app", "web"}}, kWebPorts), Ptrs(pods), {});
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(Addresses(slices[0]), (std::vector<std::string>{"10.0.0.6", "10.0.0.4"}));
  // Terminating: still listed, serving, never ready.
  EXPECT_EQ(slices[0]["endpoints"][1]["conditions"],
            Json::parse(R"j({"ready":false,"serving":true,"terminating":true})j"));
}

TEST(EndpointSlicesTest, WhatGetsNoManagedSlices) {
  std::vector<Json> pods = {Pod("a", "10.0.0.1", true)};
  EXPECT_TRUE(DesiredEndpointSlices(Service("manual", nullptr, kWebPorts), Ptrs(pods), {}).empty());
  EXPECT_TRUE(DesiredEndpointSlices(Service("empty", Json::object(), kWebPorts), Ptrs(pods), {}).empty());
  Json external = Service("ext", {{"app", "web"}}, kWebPorts);
  external["spec"]["type"] = "ExternalName";
  EXPECT_TRUE(DesiredEndpointSlices(external, Ptrs(pods), {}).empty());
  // Selected but no pod matches: one placeholder without endpoints.
  auto none = DesiredEndpointSlices(Service("lonely", {{"app", "nobody"}}, kWebPorts), Ptrs(pods), {});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0]["endpoints"].is_null());
  EXPECT_FALSE(none[0].contains("ports"));
}

// --- the controllers running on the store, as terway-lab serves it.
class ControllersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = NewDefaultStore();
    pods = store->Find("", "v1", "pods");
    services = store->Find("", "v1", "services");
    slices = store->Find("discovery.k8s.io", "v1", "endpointslices");
    sas = store->Find("", "v1", "serviceaccounts");
    namespaces = store->Find("", "v1", "namespaces");
    ASSERT_TRUE(pods && services && slices && sas && namespaces);
  }
  std::vector<Json> SlicesOf(const std::string& svc) {
    return store->List(*slices, "default", [&](const Json& s) {
      return s["metadata"]["labels"].value(kServiceNameLabel, "") == svc;
    }).items;
  }
  void SetStatus(const std::string& name, Json status) {
    auto r = store->Mutate(*pods, "default", name, [&](Json& p) -> Status {
      p["status"] = status;
      return Ok();
    }, /*status_subresource=*/true);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  std::shared_ptr<ObjectStore> store;
  const ResourceType *pods, *services, *slices, *sas, *namespaces;
};

TEST_F(ControllersTest, SlicesFollowPodsAndServices) {
  Json pod = Pod("a", "", false);
  pod.erase("status");
  ASSERT_TRUE(store->Create(*pods, "default", pod).ok());
  auto svc = store->Create(*services, "default", Service("web", {{"app", "web"}}, {{{"port", 80}}}));
  ASSERT_TRUE(svc.ok()) << svc.error().ToString();
  // The Service's defaults (protocol, targetPort) reach the slice.
  EXPECT_EQ((*svc)["spec"]["ports"][0]["protocol"], "TCP");
  EXPECT_EQ((*svc)["spec"]["ports"][0]["targetPort"], 80);
  auto s = SlicesOf("web");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(s[0]["endpoints"].is_null());  // the pod has no address yet
  const std::string name = s[0]["metadata"]["name"];

  SetStatus("a", Pod("a", "10.0.0.1", true)["status"]);
  s = SlicesOf("web");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0]["metadata"]["name"], name);  // updated in place
  EXPECT_EQ(Addresses(s[0]), std::vector<std::string>{"10.0.0.1"});
  EXPECT_EQ(s[0]["endpoints"][0]["conditions"]["ready"], true);
  EXPECT_EQ(s[0]["ports"][0]["port"], 80);

  SetStatus("a", Pod("a", "10.0.0.1", false)["status"]);
  EXPECT_EQ(SlicesOf("web")[0]["endpoints"][0]["conditions"]["ready"], false);

  // Relabelled out of the selection: gone from the slice.
  ASSERT_TRUE(store->Mutate(*pods, "default", "a", [](Json& p) -> Status {
    p["metadata"]["labels"]["app"] = "other";
    return Ok();
  }, false).ok());
  EXPECT_TRUE(SlicesOf("web")[0]["endpoints"].is_null());

  // A slice deleted by someone else comes back; the Service's deletion
  // takes its slices along.
  ASSERT_TRUE(store->Delete(*slices, "default", name).ok());
  EXPECT_EQ(SlicesOf("web").size(), 1u);
  ASSERT_TRUE(store->Delete(*services, "default", "web").ok());
  EXPECT_TRUE(SlicesOf("web").empty());
}

TEST_F(ControllersTest, EveryNamespaceHasADefaultServiceAccount) {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    EXPECT_TRUE(store->Get(*sas, ns, "default").ok()) << ns;
  }
  ASSERT_TRUE(store->Create(*namespaces, "", {{"metadata", {{"name", "team-a"}}}}).ok());
  auto sa = store->Get(*sas, "team-a", "default");
  ASSERT_TRUE(sa.ok());
  const std::string uid = (*sa)["metadata"]["uid"];
  ASSERT_TRUE(store->Delete(*sas, "team-a", "default").ok());
  auto again = store->Get(*sas, "team-a", "default");
  ASSERT_TRUE(again.ok());
  EXPECT_NE((*again)["metadata"]["uid"], uid);  // recreated, a new object
}

TEST_F(ControllersTest, PodsRunAsAnExistingServiceAccount) {
  Json pod = Pod("a", "", false);
  pod.erase("status");
  auto created = store->Create(*pods, "default", pod);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_EQ((*created)["spec"]["serviceAccountName"], "default");
  EXPECT_EQ((*created)["status"]["phase"], "Pending");

  Json robot = Pod("b", "", false);
  robot.erase("status");
  robot["spec"]["serviceAccountName"] = "robot";
  auto refused = store->Create(*pods, "default", robot);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(HttpStatusOf(refused.error()).first, 403);
  EXPECT_NE(refused.error().message.find("error looking up service account default/robot: serviceaccount "
                                         "\"robot\" not found"),
            std::string::npos)
      << refused.error().message;
  ASSERT_TRUE(store->Create(*sas, "default", {{"metadata", {{"name", "robot"}}}}).ok());
  EXPECT_TRUE(store->Create(*pods, "default", robot).ok());
}

TEST_F(ControllersTest, ServicePortsAreValidated) {
  auto no_ports = store->Create(*services, "default", Service("a", {{"app", "web"}}, Json::array()));
  ASSERT_FALSE(no_ports.ok());
  EXPECT_EQ(no_ports.error().message, "Service \"a\" is invalid: spec.ports: Required value");
  auto unnamed = store->Create(*services, "default", Service("b", nullptr, {{{"port", 80}}, {{"port", 81}}}));
  ASSERT_FALSE(unnamed.ok());
  EXPECT_NE(unnamed.error().message.find("spec.ports[0].name: Required value"), std::string::npos);
  auto big = store->Create(*services, "default", Service("c", nullptr, {{{"port", 70000}}}));
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("spec.ports[0].port: Invalid value: 70000"), std::string::npos);
  auto bad_target =
      store->Create(*services, "default", Service("d", nullptr, {{{"port", 80}, {"targetPort", "Not_A_Name"}}}));
  ASSERT_FALSE(bad_target.ok());
  EXPECT_NE(bad_target.error().message.find("spec.ports[0].targetPort"), std::string::npos);
  Json headless = Service("e", {{"app", "web"}}, Json::array());
  headless["spec"]["clusterIP"] = "None";
  auto h = store->Create(*services, "default", headless);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  EXPECT_EQ(SlicesOf("e")[0]["metadata"]["labels"]["service.kubernetes.io/headless"], "");
  EXPECT_TRUE(store->List(*services, "default").items.size() == 1);
}

}  // namespace
}  // namespace terway::lab
