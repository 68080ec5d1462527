#include "k8s/reporter.h"

#include <gtest/gtest.h>

#include "scripted_transport.h"

namespace terway::k8s {
namespace {

using namespace std::chrono_literals;

std::string HeaderOf(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

std::string StatusBody(int code, const char* reason) {
  return Json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"reason", reason}, {"code", code},
              {"message", reason}}
      .dump();
}

class ReporterTest : public ::testing::Test {
 protected:
  std::shared_ptr<ScriptedTransport> transport = std::make_shared<ScriptedTransport>();
  RestClient client{transport, nullptr};
  FakeClock clock;  // 2023-11-14T22:13:20Z
  NodeReporter node{client, "node-1", clock};

  static std::string NodeWith(const std::string& rv, Json conditions) {
    return Json{{"apiVersion", "v1"}, {"kind", "Node"},
                {"metadata", {{"name", "node-1"}, {"resourceVersion", rv}}},
                {"status", {{"conditions", std::move(conditions)}}}}
        .dump();
  }
  Json Body(size_t i) const { return Json::parse(transport->requests.at(i).body); }
};

TEST_F(ReporterTest, FormatsKubeTimeInUtc) { EXPECT_EQ(FormatKubeTime(clock.Now()), "2023-11-14T22:13:20Z"); }

TEST_F(ReporterTest, MaxAvailableIpIsAMergePatchOfOneAnnotation) {
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetMaxAvailableIp(44).ok());
  const auto& req = transport->requests.at(0);
  EXPECT_EQ(req.method, "PATCH");
  EXPECT_EQ(req.path, "/api/v1/nodes/node-1");
  EXPECT_EQ(HeaderOf(req, "Content-Type"), "application/merge-patch+json");
  EXPECT_EQ(Body(0), Json::parse(R"({"metadata":{"annotations":{"k8s.aliyun.com/max-available-ip":"44"}}})"));
  EXPECT_FALSE(node.SetMaxAvailableIp(-1).ok());
  EXPECT_EQ(transport->requests.size(), 1u);
}

TEST_F(ReporterTest, EniCapacityGoesThroughTheStatusSubresource) {
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetEniCapacity(7).ok());
  const auto& req = transport->requests.at(0);
  EXPECT_EQ(req.path, "/api/v1/nodes/node-1/status");
  EXPECT_EQ(HeaderOf(req, "Content-Type"), "application/merge-patch+json");
  EXPECT_EQ(Body(0),
            Json::parse(R"({"status":{"capacity":{"aliyun/eni":"7"},"allocatable":{"aliyun/eni":"7"}}})"));
}

TEST_F(ReporterTest, SufficientIpSetsTransitionTimeOnlyWhenStatusChanges) {
  Json ready = {{"type", "Ready"}, {"status", "True"}};
  Json old = {{"type", "SufficientIP"}, {"status", "True"}, {"reason", "SufficientIP"},
              {"lastTransitionTime", "2023-01-01T00:00:00Z"}};

  // Same status: the transition time is kept, the heartbeat moves.
  transport->answers.push_back(Resp(200, NodeWith("10", {ready, old})));
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetSufficientIp(true, "12 IPs available").ok());
  ASSERT_EQ(transport->requests.size(), 2u);
  EXPECT_EQ(transport->requests[1].path, "/api/v1/nodes/node-1/status");
  EXPECT_EQ(HeaderOf(transport->requests[1], "Content-Type"), "application/strategic-merge-patch+json");
  Json want = Json::parse(R"({"metadata":{"resourceVersion":"10"},"status":{"conditions":[
      {"type":"SufficientIP","status":"True","reason":"SufficientIP","message":"12 IPs available",
       "lastHeartbeatTime":"2023-11-14T22:13:20Z","lastTransitionTime":"2023-01-01T00:00:00Z"}]}})");
  EXPECT_EQ(Body(1), want);

  // Flip to False: transition time is now, reason InsufficientIP.
  transport->answers.push_back(Resp(200, NodeWith("11", {ready, old})));
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetSufficientIp(false, "vSwitch vsw-1 has no free IPs").ok());
  Json c = Body(3)["status"]["conditions"][0];
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "InsufficientIP");
  EXPECT_EQ(c["lastTransitionTime"], "2023-11-14T22:13:20Z");

  // No condition yet: transition time is now.
  transport->answers.push_back(Resp(200, NodeWith("12", {ready})));
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetSufficientIp(true, "ok").ok());
  EXPECT_EQ(Body(5)["status"]["conditions"][0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
}

TEST_F(ReporterTest, SufficientIpRereadsOnConflict) {
  transport->answers.push_back(Resp(200, NodeWith("20", Json::array())));
  transport->answers.push_back(Resp(409, StatusBody(409, "Conflict")));
  transport->answers.push_back(Resp(200, NodeWith("21", Json::array())));
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(node.SetSufficientIp(true, "ok").ok());
  ASSERT_EQ(transport->requests.size(), 4u);
  EXPECT_EQ(Body(1)["metadata"]["resourceVersion"], "20");
  EXPECT_EQ(Body(3)["metadata"]["resourceVersion"], "21");
}

TEST_F(ReporterTest, SufficientIpGivesUpAfterRepeatedConflicts) {
  for (int i = 0; i < kConflictAttempts; ++i) {
    transport->answers.push_back(Resp(200, NodeWith(std::to_string(30 + i), Json::array())));
    transport->answers.push_back(Resp(409, StatusBody(409, "Conflict")));
  }
  auto s = node.SetSufficientIp(true, "ok");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
  EXPECT_NE(s.error().ToString().find("setting condition SufficientIP on node node-1"), std::string::npos)
      << s.error().ToString();
  EXPECT_EQ(transport->requests.size(), 2u * kConflictAttempts);
}

TEST_F(ReporterTest, SufficientIpDoesNotRetryOtherErrors) {
  transport->answers.push_back(Resp(403, StatusBody(403, "Forbidden")));
  auto s = node.SetSufficientIp(true, "ok");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kPermission);
  EXPECT_EQ(transport->requests.size(), 1u);
}

TEST_F(ReporterTest, PodIpsAnnotationIsCommaSeparatedAndRemovedWhenEmpty) {
  transport->answers.push_back(Resp(200, "{}"));
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(SetPodIps(client, "default", "web", {"10.0.0.5", "fd00::5"}).ok());
  ASSERT_TRUE(SetPodIps(client, "default", "web", {}).ok());
  EXPECT_EQ(transport->requests[0].path, "/api/v1/namespaces/default/pods/web");
  EXPECT_EQ(Body(0), Json::parse(R"({"metadata":{"annotations":{"k8s.aliyun.com/pod-ips":"10.0.0.5,fd00::5"}}})"));
  EXPECT_EQ(Body(1), Json::parse(R"({"metadata":{"annotations":{"k8s.aliyun.com/pod-ips":null}}})"));
}

TEST_F(ReporterTest, PodIpsErrorNamesThePod) {
  transport->answers.push_back(Resp(404, StatusBody(404, "NotFound")));
  auto s = SetPodIps(client, "default", "gone", {"10.0.0.5"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_NE(s.error().ToString().find("annotating pod default/gone"), std::string::npos) << s.error().ToString();
}

TEST_F(ReporterTest, EventsAreCreatedThenAggregated) {
  EventRecorder rec(client, "node-1", clock);
  ObjectReference pod{"Pod", "default", "web", "uid-1", "v1"};
  transport->answers.push_back(Resp(201, "{}"));
  ASSERT_TRUE(rec.Record(pod, EventType::kWarning, "AllocIPFailed", "vSwitch vsw-1 is full").ok());
  const auto& create = transport->requests.at(0);
  EXPECT_EQ(create.method, "POST");
  EXPECT_EQ(create.path, "/api/v1/namespaces/default/events");
  Json ev = Body(0);
  EXPECT_EQ(ev["kind"], "Event");
  EXPECT_EQ(ev["metadata"]["namespace"], "default");
  EXPECT_EQ(ev["metadata"]["name"].get<std::string>().rfind("web.", 0), 0u);
  EXPECT_EQ(ev["involvedObject"], Json::parse(R"({"kind":"Pod","namespace":"default","name":"web",
                                                   "uid":"uid-1","apiVersion":"v1"})"));
  EXPECT_EQ(ev["reason"], "AllocIPFailed");
  EXPECT_EQ(ev["type"], "Warning");
  EXPECT_EQ(ev["count"], 1);
  EXPECT_EQ(ev["source"], Json::parse(R"({"component":"terwayd","host":"node-1"})"));
  EXPECT_EQ(ev["firstTimestamp"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(ev["lastTimestamp"], "2023-11-14T22:13:20Z");

  // The same failure again: a patch of count and lastTimestamp.
  clock.Advance(30s);
  transport->answers.push_back(Resp(200, "{}"));
  ASSERT_TRUE(rec.Record(pod, EventType::kWarning, "AllocIPFailed", "vSwitch vsw-1 is full").ok());
  const auto& patch = transport->requests.at(1);
  EXPECT_EQ(patch.method, "PATCH");
  EXPECT_EQ(patch.path, "/api/v1/namespaces/default/events/" + ev["metadata"]["name"].get<std::string>());
  EXPECT_EQ(Body(1), Json::parse(R"({"count":2,"lastTimestamp":"2023-11-14T22:13:50Z"})"));

  // A different message is a different event.
  transport->answers.push_back(Resp(201, "{}"));
  ASSERT_TRUE(rec.Record(pod, EventType::kWarning, "AllocIPFailed", "quota exceeded").ok());
  EXPECT_EQ(transport->requests.at(2).method, "POST");
}

TEST_F(ReporterTest, ExpiredEventIsRecreatedAndNodeEventsGoToDefault) {
  EventRecorder rec(client, "node-1", clock);
  ObjectReference nodeRef{"Node", "", "node-1", "uid-n", "v1"};
  transport->answers.push_back(Resp(201, "{}"));
  ASSERT_TRUE(rec.Record(nodeRef, EventType::kNormal, "SufficientIP", "pool refilled").ok());
  EXPECT_EQ(transport->requests.at(0).path, "/api/v1/namespaces/default/events");
  EXPECT_EQ(Body(0)["type"], "Normal");

  clock.Advance(2h);
  transport->answers.push_back(Resp(404, StatusBody(404, "NotFound")));
  transport->answers.push_back(Resp(201, "{}"));
  ASSERT_TRUE(rec.Record(nodeRef, EventType::kNormal, "SufficientIP", "pool refilled").ok());
  ASSERT_EQ(transport->requests.size(), 3u);
  EXPECT_EQ(transport->requests[1].method, "PATCH");
  EXPECT_EQ(transport->requests[2].method, "POST");
  EXPECT_EQ(Body(2)["count"], 1);
}

TEST_F(ReporterTest, EventCreateFailureIsReportedAndNotRemembered) {
  EventRecorder rec(client, "node-1", clock);
  ObjectReference pod{"Pod", "default", "web", "uid-1", "v1"};
  transport->answers.push_back(Resp(403, StatusBody(403, "Forbidden")));
  auto s = rec.Record(pod, EventType::kWarning, "AllocIPFailed", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().ToString().find("creating event AllocIPFailed for Pod web"), std::string::npos);
  transport->answers.push_back(Resp(201, "{}"));
  ASSERT_TRUE(rec.Record(pod, EventType::kWarning, "AllocIPFailed", "x").ok());
  EXPECT_EQ(transport->requests.at(1).method, "POST");
}

}  // namespace
}  // namespace terway::k8s
