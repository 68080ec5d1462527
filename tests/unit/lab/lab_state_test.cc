// The lab state file: what one invocation leaves for the next.
#include "tools/lab/cluster/lab_state.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

LabState Sample() {
  LabState s;
  s.world = "lab1";
  s.phase = "up";
  s.cni_timeout_seconds = 45;
  s.vswitch = "vsw-lab1a";
  s.vswitch_cidr = "198.18.0.0/24";
  s.ip_stack = "dual";
  s.vpc_ipv6_cidr = "fd00:1ab::/56";
  s.vswitch_ipv6_cidr = "fd00:1ab:0:1::/64";
  s.zone = "cn-hangzhou-h";
  s.access_key = "LTAIlab1";
  s.access_secret = "secret";
  s.vpcsim_state = "/x/vpcsim";
  s.vpcsim_log = "/x/vpcsim.log";
  s.vpcsim_port = 4242;
  s.vpcsim = {1234, 987654};
  NodeRecord n;
  n.name = "node1";
  n.instance_id = "i-lab1n1";
  n.instance_type = "ecs.vpcsim.tiny";
  n.netns = "lab1-i-lab1n1";
  n.socket = "/x/nodes/node1/eni.socket";
  n.max_pods = 4;
  n.terwayd = {2345, 11};
  n.eniip_virtual_type = "datapathv2";
  n.bpffs = "/x/nodes/node1/bpffs";
  s.nodes.push_back(n);
  s.eniip_virtual_type = "IPVlan";
  s.hosts.push_back({"host1", "i-lab1h1", "lab1-i-lab1h1", "198.18.0.3"});
  PodRecord p;
  p.ns = "default";
  p.name = "web-1";
  p.node = "node1";
  p.container_id = PodContainerId("lab1", "default", "web-1");
  p.netns = PodNetnsName("lab1", "default", "web-1");
  p.cni_version = "0.4.0";
  p.ip = "198.18.0.10";
  p.labels = {{"app", "web"}};
  p.annotations = {{"k8s.aliyun.com/x", ""}};
  p.result = {{"cniVersion", "0.4.0"}, {"ips", {{{"address", "198.18.0.10/24"}}}}};
  s.pods.push_back(p);
  return s;
}

TEST(LabState, JsonRoundTripKeepsEverything) {
  LabState s = Sample();
  auto back = LabStateFromJson(LabStateToJson(s));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(LabStateToJson(*back), LabStateToJson(s));
  EXPECT_EQ(back->vpcsim.pid, 1234);
  EXPECT_EQ(back->vpcsim.start_time, 987654);
  EXPECT_EQ(back->nodes[0].terwayd.pid, 2345);
  EXPECT_EQ(back->nodes[0].max_pods, 4);
  EXPECT_EQ(back->pods[0].labels.at("app"), "web");
  EXPECT_EQ(back->pods[0].result["ips"][0]["address"], "198.18.0.10/24");
  EXPECT_EQ(back->cni_timeout_seconds, 45);
  nlohmann::json old = LabStateToJson(s);
  old.erase("cni_timeout_seconds");
  EXPECT_EQ(LabStateFromJson(old)->cni_timeout_seconds, 120) << "a lab.json of an older terway-lab";
  EXPECT_EQ(back->eniip_virtual_type, "IPVlan");
  EXPECT_EQ(back->nodes[0].eniip_virtual_type, "datapathv2");
  EXPECT_EQ(back->nodes[0].bpffs, "/x/nodes/node1/bpffs");
  old.erase("eniip_virtual_type");
  old["nodes"][0].erase("eniip_virtual_type");
  old["nodes"][0].erase("bpffs");
  auto older = LabStateFromJson(old);
  EXPECT_EQ(older->eniip_virtual_type, "veth") << "a lab of an older terway-lab ran veth";
  EXPECT_EQ(older->nodes[0].eniip_virtual_type, "veth");
  EXPECT_EQ(older->nodes[0].bpffs, "") << "its terwayd ran without --bpffs";
  EXPECT_EQ(back->ip_stack, "dual");
  EXPECT_EQ(back->vpc_ipv6_cidr, "fd00:1ab::/56");
  EXPECT_EQ(back->vswitch_ipv6_cidr, "fd00:1ab:0:1::/64");
  for (const char* k : {"ip_stack", "vpc_ipv6_cidr", "vswitch_ipv6_cidr"}) old.erase(k);
  auto v4 = LabStateFromJson(old);
  EXPECT_EQ(v4->ip_stack, "ipv4") << "a lab of an older terway-lab was IPv4 only";
  EXPECT_EQ(v4->vswitch_ipv6_cidr, "");
}

TEST(LabState, RefusesWhatIsNotALabState) {
  EXPECT_FALSE(LabStateFromJson(nlohmann::json::array()).ok());
  EXPECT_FALSE(LabStateFromJson({{"version", 2}, {"world", "x"}}).ok());
  auto missing = LabStateFromJson({{"version", 1}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("world"), std::string::npos) << missing.error().ToString();
  auto bad_type = LabStateFromJson({{"version", 1}, {"world", "x"}, {"nodes", {{{"name", 3}}}}});
  EXPECT_FALSE(bad_type.ok()) << "a node name of the wrong type is an error, not an exception";
}

TEST(LabState, FindsNodesByNameNumberOrInstanceAndPods) {
  LabState s = Sample();
  EXPECT_EQ(s.FindNode("node1"), &s.nodes[0]);
  EXPECT_EQ(s.FindNode("1"), &s.nodes[0]);
  EXPECT_EQ(s.FindNode("i-lab1n1"), &s.nodes[0]);
  EXPECT_EQ(s.FindNode("2"), nullptr);
  EXPECT_EQ(s.NodeNames(), "node1");
  ASSERT_NE(s.FindPod("default", "web-1"), nullptr);
  EXPECT_EQ(s.FindPod("other", "web-1"), nullptr);
  s.RemovePod("default", "web-1");
  EXPECT_TRUE(s.pods.empty());
  EXPECT_EQ(LabState().NodeNames(), "(none)");
}

TEST(LabState, PodNamesAreSafeAndDistinct) {
  EXPECT_EQ(PodContainerId("lab1", "default", "web-1"), "lab-lab1-default-web-1");
  EXPECT_EQ(PodNetnsName("lab1", "default", "web-1"), "lab1-pod-default-web-1");
  EXPECT_NE(PodNetnsName("lab1", "a", "b"), PodNetnsName("lab2", "a", "b"));
  EXPECT_EQ(PodContainerId("w", "a b", "c/d"), "lab-w-a_b-c_d");
}

TEST(LabState, SavesAndLoadsFromTheLabDirectory) {
  char tmpl[] = "/tmp/lab-state-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto none = LoadLabState(dir);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_NE(none.error().ToString().find("up --nodes"), std::string::npos) << "says what to do next";
  LabState s = Sample();
  s.dir = dir;
  ASSERT_TRUE(SaveLabState(s).ok());
  auto back = LoadLabState(dir);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->dir, dir);
  EXPECT_EQ(back->pods.size(), 1u);
  ASSERT_TRUE(WriteTextFileAtomic(LabStatePath(dir), "{not json").ok());
  auto broken = LoadLabState(dir);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().ToString().find("not JSON"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// Pod operations of every node update lab.json at once: each update is a
// read-modify-write under the lab lock, so none is lost, and a failed change
// leaves the file as it was.
TEST(LabState, ConcurrentUpdatesLoseNothingAndAFailedOneChangesNothing) {
  char tmpl[] = "/tmp/lab-state-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  LabState s = Sample();
  s.dir = dir;
  s.pods.clear();
  ASSERT_TRUE(StoreLabState(s).ok());
  constexpr int kThreads = 6, kPodsEach = 15;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPodsEach; i++) {
        Status st = UpdateLabState(dir, [&](LabState& st) {
          PodRecord p;
          p.ns = "default";
          p.name = "p" + std::to_string(t) + "-" + std::to_string(i);
          st.pods.push_back(p);
          return Ok();
        });
        if (!st.ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  auto back = LoadLabState(dir);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->pods.size(), static_cast<size_t>(kThreads * kPodsEach)) << "an update was lost";
  const std::string before = ReadTextFile(LabStatePath(dir));
  Status refused = UpdateLabState(dir, [](LabState& st) {
    st.pods.clear();
    return Status(Error(ErrorCode::kAlreadyExists, "pod exists"));
  });
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(ReadTextFile(LabStatePath(dir)), before);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace terway::lab
