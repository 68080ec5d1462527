#include "k8s/client.h"

#include <deque>

#include <gtest/gtest.h>

#include "scripted_transport.h"

namespace terway::k8s {
namespace {

class RestClientTest : public ::testing::Test {
 protected:
  std::shared_ptr<ScriptedTransport> transport = std::make_shared<ScriptedTransport>();
  RestClient client{transport, nullptr};
};

TEST_F(RestClientTest, BuildsPathsForCoreGroupsAndClusterScope) {
  EXPECT_EQ(ResourcePath(resources::kPods, "ns", "p", "status"), "/api/v1/namespaces/ns/pods/p/status");
  EXPECT_EQ(ResourcePath(resources::kPods, ""), "/api/v1/pods");
  EXPECT_EQ(ResourcePath(resources::kNodes, "ignored", "n1"), "/api/v1/nodes/n1");
  EXPECT_EQ(ResourcePath(resources::kNetworkPolicies, "x"),
            "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies");
}

TEST_F(RestClientTest, ListEncodesSelectorsAndOptions) {
  transport->answers.push_back(Resp(200, R"({"items": [], "metadata": {"resourceVersion": "7"}})"));
  ListOptions o;
  o.field_selector = "spec.nodeName=node-1";
  o.label_selector = "app in (a,b),!x";
  o.limit = 10;
  auto list = client.List(resources::kPods, "", o);
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  EXPECT_EQ((*list)["metadata"]["resourceVersion"], "7");
  ASSERT_EQ(transport->requests.size(), 1u);
  EXPECT_EQ(transport->requests[0].method, "GET");
  EXPECT_EQ(transport->requests[0].path,
            "/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29%2C%21x&fieldSelector=spec.nodeName%3Dnode-1&limit=10");
}

TEST_F(RestClientTest, MapsStatusErrors) {
  struct Case {
    int status;
    const char* reason;
    ErrorCode code;
  };
  for (const Case& c : {Case{404, "NotFound", ErrorCode::kNotFound},
                        Case{409, "AlreadyExists", ErrorCode::kAlreadyExists},
                        Case{409, "Conflict", ErrorCode::kConflict},
                        Case{403, "Forbidden", ErrorCode::kPermission},
                        Case{422, "Invalid", ErrorCode::kInvalidArgument},
                        Case{429, "TooManyRequests", ErrorCode::kUnavailable},
                        Case{410, "Expired", ErrorCode::kConflict}}) {
    transport->answers.push_back(Resp(c.status, Json{{"kind", "Status"}, {"reason", c.reason},
                                                     {"message", "m"}, {"code", c.status}}.dump()));
    auto r = client.Get(resources::kPods, "ns", "p");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code) << c.status << " " << c.reason;
    EXPECT_EQ(r.error().http_status, c.status);
    EXPECT_EQ(IsGone(r.error()), c.status == 410);
    EXPECT_NE(r.error().ToString().find("GET /api/v1/namespaces/ns/pods/p"), std::string::npos);
  }
}

TEST_F(RestClientTest, PatchContentTypesAndUpdateTarget) {
  for (auto [type, ct] : {std::pair{PatchType::kMerge, "application/merge-patch+json"},
                          std::pair{PatchType::kStrategicMerge, "application/strategic-merge-patch+json"},
                          std::pair{PatchType::kJsonPatch, "application/json-patch+json"}}) {
    transport->answers.push_back(Resp(200, "{}"));
    ASSERT_TRUE(client.Patch(resources::kNodes, "", "n1", type, Json::object(), "status").ok());
    EXPECT_EQ(transport->requests.back().method, "PATCH");
    EXPECT_EQ(transport->requests.back().path, "/api/v1/nodes/n1/status");
    EXPECT_EQ(transport->requests.back().headers.at(0).second, ct);
  }
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(client.Update(resources::kConfigMaps, "kube-system",
                            Json{{"metadata", {{"name", "eni-config"}, {"resourceVersion", "3"}}}})
                  .ok());
  EXPECT_EQ(transport->requests.back().method, "PUT");
  EXPECT_EQ(transport->requests.back().path, "/api/v1/namespaces/kube-system/configmaps/eni-config");
  EXPECT_FALSE(client.Update(resources::kConfigMaps, "kube-system", Json::object()).ok());
}

TEST_F(RestClientTest, WatchDeliversEventsAndReportsGone) {
  transport->stream_chunks = {R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})",
                              "\n{\"type\":\"BOOK", "MARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"6\"}}}\n"};
  transport->answers.push_back(Resp(200, ""));
  std::vector<WatchEvent> got;
  ListOptions o;
  o.resource_version = "4";
  o.allow_watch_bookmarks = true;
  o.timeout_seconds = 30;
  auto st = client.Watch(resources::kPods, "ns", o, [&](WatchEvent ev) {
    got.push_back(std::move(ev));
    return true;
  }, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].type, WatchEventType::kBookmark);
  EXPECT_EQ(transport->requests.back().path,
            "/api/v1/namespaces/ns/pods?watch=true&resourceVersion=4&timeoutSeconds=30&allowWatchBookmarks=true");

  transport->answers.push_back(Resp(410, R"({"kind":"Status","reason":"Expired","code":410})"));
  auto gone = client.Watch(resources::kPods, "ns", o, [](WatchEvent) { return true; }, nullptr);
  ASSERT_FALSE(gone.ok());
  EXPECT_TRUE(IsGone(gone.error()));
}

TEST_F(RestClientTest, ConnectionFailureIsUnavailable) {
  transport->answers.push_back(MakeError(ErrorCode::kUnavailable, "connection refused"));
  auto r = client.Get(resources::kNamespaces, "", "default");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace terway::k8s
