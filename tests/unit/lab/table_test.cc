// Server-side Table output: columns, priorities and cells per kind, as
// Kubernetes' printers and Calico's CRD printer columns give them.
#include "tools/lab/apiserver/table.h"

#include <gtest/gtest.h>

#include "tools/lab/apiserver/server.h"

namespace terway::lab {
namespace {

using namespace std::chrono_literals;

class TableTest : public ::testing::Test {
 protected:
  void SetUp() override { store = NewDefaultStore(); }
  const ResourceType& Type(const std::string& group, const std::string& version, const std::string& plural) {
    const ResourceType* t = store->Find(group, version, plural);
    EXPECT_NE(t, nullptr) << plural;
    return *t;
  }
  // The columns as "Name" (priority 0) or "Name*" (priority 1, -o wide).
  static std::vector<std::string> Columns(const Json& table) {
    std::vector<std::string> out;
    for (const auto& c : table["columnDefinitions"]) {
      out.push_back(c["name"].get<std::string>() + (c["priority"] == 1 ? "*" : ""));
    }
    return out;
  }
  Clock::TimePoint now = Clock::TimePoint{} + std::chrono::hours(24 * 400);
  std::string Ago(std::chrono::seconds d) { return FormatIso8601(now - d); }
  std::shared_ptr<ObjectStore> store;
};

TEST_F(TableTest, Pods) {
  Json running = {{"metadata", {{"name", "web"}, {"creationTimestamp", Ago(3h + 10min)}}},
                  {"spec", {{"nodeName", "node-a"}, {"containers", {{{"name", "a"}}, {{"name", "b"}}}}}},
                  {"status",
                   {{"phase", "Running"},
                    {"podIPs", {{{"ip", "10.0.0.5"}}}},
                    {"conditions", {{{"type", "Ready"}, {"status", "False"}}}},
                    {"containerStatuses",
                     {{{"name", "a"}, {"ready", true}, {"restartCount", 1}, {"state", {{"running", Json::object()}}},
                       {"lastState", {{"terminated", {{"finishedAt", Ago(5min)}}}}}},
                      {{"name", "b"}, {"ready", false}, {"restartCount", 2},
                       {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}}}}}};
  Json pending = {{"metadata", {{"name", "new"}, {"creationTimestamp", Ago(30s)}}},
                  {"spec", {{"containers", {{{"name", "a"}}}}}},
                  {"status", {{"phase", "Pending"}}}};
  Json done = {{"metadata", {{"name", "job"}, {"creationTimestamp", Ago(2 * 24h)}}},
               {"spec", {{"containers", {{{"name", "a"}}}}}},
               {"status",
                {{"phase", "Succeeded"},
                 {"containerStatuses", {{{"name", "a"}, {"state", {{"terminated", {{"reason", "Completed"}}}}}}}}}}};
  Json t = TableOf(Type("", "v1", "pods"), {running, pending, done}, now, RowObject::kMetadata);
  EXPECT_EQ(t["kind"], "Table");
  EXPECT_EQ(t["apiVersion"], "meta.k8s.io/v1");
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Ready", "Status", "Restarts", "Age", "IP*", "Node*",
                                                  "Nominated Node*", "Readiness Gates*"}));
  EXPECT_EQ(
      t["rows"][0]["cells"],
      Json::parse(R"j(["web","1/2","CrashLoopBackOff","3 (5m ago)","3h10m","10.0.0.5","node-a","<none>","<none>"])j"));
  EXPECT_EQ(t["rows"][1]["cells"],
            Json::parse(R"j(["new","0/1","Pending","0","30s","<none>","<none>","<none>","<none>"])j"));
  EXPECT_EQ(t["rows"][2]["cells"][2], "Completed");
  EXPECT_EQ(t["rows"][2]["conditions"][0]["type"], "Completed");  // kubectl hides it without -a
  EXPECT_EQ(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
  EXPECT_EQ(t["rows"][0]["object"]["metadata"]["name"], "web");
  EXPECT_FALSE(TableOf(Type("", "v1", "pods"), {running}, now, RowObject::kNone)["rows"][0].contains("object"));
}

TEST_F(TableTest, Nodes) {
  Json node = {
      {"metadata",
       {{"name", "node-a"},
        {"creationTimestamp", Ago(45s)},
        {"labels", {{"node-role.kubernetes.io/control-plane", ""}, {"node-role.kubernetes.io/worker", ""}}}}},
      {"spec", {{"unschedulable", true}}},
      {"status",
       {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
        {"addresses",
         {{{"type", "Hostname"}, {"address", "node-a"}}, {{"type", "InternalIP"}, {"address", "192.168.0.10"}}}},
        {"nodeInfo",
         {{"kubeletVersion", "v1.32.0"},
          {"osImage", "Debian GNU/Linux 12"},
          {"kernelVersion", "6.1.0"},
          {"containerRuntimeVersion", "containerd://1.6"}}}}}};
  Json bare = {{"metadata", {{"name", "node-b"}, {"creationTimestamp", Ago(10 * 24h)}}}};
  Json t = TableOf(Type("", "v1", "nodes"), {node, bare}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Status", "Roles", "Age", "Version", "Internal-IP*",
                                                  "External-IP*", "OS-Image*", "Kernel-Version*",
                                                  "Container-Runtime*"}));
  EXPECT_EQ(t["rows"][0]["cells"],
            Json::parse(R"j(["node-a","Ready,SchedulingDisabled","control-plane,worker","45s","v1.32.0","192.168.0.10",
                             "<none>","Debian GNU/Linux 12","6.1.0","containerd://1.6"])j"));
  EXPECT_EQ(
      t["rows"][1]["cells"],
      Json::parse(R"j(["node-b","Unknown","<none>","10d","","<none>","<none>","<unknown>","<unknown>","<unknown>"])j"));
}

TEST_F(TableTest, CalicoKindsUseTheirCrdColumns) {
  Json tier = {{"metadata", {{"name", "security"}, {"creationTimestamp", Ago(1h)}}},
               {"spec", {{"order", 100}, {"defaultAction", "Pass"}}}};
  Json t = TableOf(Type("projectcalico.org", "v3", "tiers"), {tier}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Order", "DefaultAction", "Status"}));
  EXPECT_EQ(t["rows"][0]["cells"], Json::parse(R"j(["security",100,"Pass",null])j"));

  Json gnp = {{"metadata", {{"name", "deny"}, {"creationTimestamp", Ago(2min + 5s)}}}, {"spec", {{"tier", "default"}}}};
  t = TableOf(Type("projectcalico.org", "v3", "globalnetworkpolicies"), {gnp}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Tier", "Order", "Age"}));
  EXPECT_EQ(t["rows"][0]["cells"], Json::parse(R"j(["deny","default",null,"2m5s"])j"));

  Json np = {{"metadata", {{"name", "np"}}}, {"spec", {{"tier", "default"}, {"order", 10.5}}}};
  t = TableOf(Type("projectcalico.org", "v3", "networkpolicies"), {np}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Tier", "Order"}));
  EXPECT_EQ(t["rows"][0]["cells"], Json::parse(R"j(["np","default",10.5])j"));

  // NetworkSet's CRD declares no columns: NAME and AGE.
  Json set = {{"metadata", {{"name", "partners"}, {"creationTimestamp", Ago(5s)}}}};
  for (const char* plural : {"networksets", "globalnetworksets"}) {
    t = TableOf(Type("projectcalico.org", "v3", plural), {set}, now, RowObject::kMetadata);
    EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Age"})) << plural;
    EXPECT_EQ(t["rows"][0]["cells"], Json::parse(R"j(["partners","5s"])j")) << plural;
  }
}

TEST_F(TableTest, ServicesAndTheirSlices) {
  Json svc = {
      {"metadata", {{"name", "web"}, {"creationTimestamp", Ago(1min)}}},
      {"spec",
       {{"type", "NodePort"},
        {"clusterIPs", {"10.96.0.10"}},
        {"selector", {{"app", "web"}, {"tier", "fe"}}},
        {"ports", {{{"port", 80}, {"protocol", "TCP"}, {"nodePort", 30080}}, {{"port", 53}, {"protocol", "UDP"}}}}}}};
  Json t = TableOf(Type("", "v1", "services"), {svc}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age",
                                                  "Selector*"}));
  EXPECT_EQ(t["rows"][0]["cells"],
            Json::parse(R"j(["web","NodePort","10.96.0.10","<none>","80:30080/TCP,53/UDP","60s","app=web,tier=fe"])j"));

  Json slice = {{"metadata", {{"name", "web-abcde"}, {"creationTimestamp", Ago(1min)}}},
                {"addressType", "IPv4"},
                {"ports", {{{"port", 8080}}, {{"name", "named"}}}},
                {"endpoints", Json::array()}};
  for (int i = 1; i <= 5; i++) slice["endpoints"].push_back({{"addresses", {fmt::format("10.0.0.{}", i)}}});
  t = TableOf(Type("discovery.k8s.io", "v1", "endpointslices"), {slice}, now, RowObject::kMetadata);
  EXPECT_EQ(Columns(t), (std::vector<std::string>{"Name", "AddressType", "Ports", "Endpoints", "Age"}));
  EXPECT_EQ(t["rows"][0]["cells"],
            Json::parse(R"j(["web-abcde","IPv4","8080,named","10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...","60s"])j"));
  Json empty = {{"metadata", {{"name", "e"}}}, {"addressType", "IPv4"}, {"endpoints", nullptr}};
  EXPECT_EQ(
      TableOf(Type("discovery.k8s.io", "v1", "endpointslices"), {empty}, now, RowObject::kNone)["rows"][0]["cells"][2],
      "<unset>");
}

TEST(TableFormatTest, HumanDuration) {
  using std::chrono::seconds;
  EXPECT_EQ(HumanDuration(seconds(-5)), "<invalid>");
  EXPECT_EQ(HumanDuration(seconds(119)), "119s");
  EXPECT_EQ(HumanDuration(seconds(125)), "2m5s");
  EXPECT_EQ(HumanDuration(seconds(600)), "10m");
  EXPECT_EQ(HumanDuration(seconds(3 * 3600 + 60)), "3h1m");
  EXPECT_EQ(HumanDuration(seconds(9 * 3600)), "9h");
  EXPECT_EQ(HumanDuration(seconds(50 * 3600)), "2d2h");
  EXPECT_EQ(HumanDuration(seconds(30 * 86400)), "30d");
  EXPECT_EQ(HumanDuration(seconds(800 * 86400)), "2y70d");
}

TEST(TableFormatTest, WhichRequestsGetATable) {
  EXPECT_EQ(TableVersionAccepted("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                                 "g=meta.k8s.io,application/json"),
            "v1");
  EXPECT_EQ(TableVersionAccepted("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"), "v1beta1");
  EXPECT_EQ(TableVersionAccepted("application/json"), "");
  EXPECT_EQ(TableVersionAccepted("application/json, application/json;as=Table;v=v1;g=meta.k8s.io"), "");
  EXPECT_EQ(TableVersionAccepted("application/json;as=Table;v=v2;g=meta.k8s.io"), "");
  EXPECT_FALSE(ParseIncludeObject("Everything").ok());
}

}  // namespace
}  // namespace terway::lab
