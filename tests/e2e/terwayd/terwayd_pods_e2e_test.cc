// Pods wired by terwayd's shared-ENI datapath, set up exactly as a container
// runtime does it: the real `terway` plugin exec'd with the CNI environment
// and the network configuration on stdin, inside the node's namespace, for a
// pod namespace. Then real packets between pods on one node, on two nodes,
// and to a VPC host; then DEL (twice) leaves nothing of the pod behind.
#include <gtest/gtest.h>

#include "e2e/terwayd/cni_exec.h"

namespace terway::testing {
namespace {

class TerwaydPods : public ::testing::Test {
 protected:
  std::unique_ptr<VpcsimWorld> world_;
};

TEST_F(TerwaydPods, PodsOnTwoNodesReachEachOtherAndLeaveNothingBehind) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.g7.large";
  ws.instances = 3;  // two nodes and a plain VPC host
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  std::vector<std::unique_ptr<TerwaydNode>> nodes;
  for (int i = 0; i < 2; i++) {
    TerwaydSpec ts;
    ts.instance_id = world_->instances()[i];
    ts.datapath = "shared";
    auto n = TerwaydNode::Start(world_.get(), ts);
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    ASSERT_TRUE((*n)->WaitReady().ok()) << (*n)->process().Log();
    nodes.push_back(std::move(n).value());
  }
  PodNs a, b, c;
  std::string ip_a = AddPod(nodes[0].get(), world_->name(), &a, "pa");
  std::string ip_c = AddPod(nodes[0].get(), world_->name(), &c, "pc");
  std::string ip_b = AddPod(nodes[1].get(), world_->name(), &b, "pb");
  ASSERT_FALSE(ip_a.empty() || ip_b.empty() || ip_c.empty()) << nodes[0]->process().Log();

  EXPECT_TRUE(Ping(a.name, ip_b)) << "cross-node pod to pod " << ip_a << " -> " << ip_b;
  EXPECT_TRUE(Ping(b.name, ip_a)) << "cross-node pod to pod " << ip_b << " -> " << ip_a;
  EXPECT_TRUE(Ping(a.name, ip_c)) << "same-node pod to pod " << ip_a << " -> " << ip_c;
  std::string host_ns = world_->InstanceNetns(world_->instances()[2]);
  std::string vpc_host = Eth0Ip(host_ns);
  EXPECT_TRUE(Ping(a.name, vpc_host)) << "pod to VPC host " << vpc_host;
  EXPECT_TRUE(Ping(host_ns, ip_b)) << "VPC host to pod " << ip_b;

  // No tunnel anywhere: the pod's packets are plain VPC packets.
  auto links = RunCommand({"/usr/sbin/ip", "-d", "link"}, nodes[0]->netns());
  EXPECT_EQ(links.output.find("vxlan"), std::string::npos) << links.output;
  EXPECT_EQ(links.output.find("geneve"), std::string::npos) << links.output;

  auto check = CniExec("CHECK", nodes[0].get(), a);
  EXPECT_EQ(check.exit_code, 0) << check.output;

  for (auto* p : {&a, &c}) {
    auto del = CniExec("DEL", nodes[0].get(), *p);
    EXPECT_EQ(del.exit_code, 0) << del.output;
    auto again = CniExec("DEL", nodes[0].get(), *p);
    EXPECT_EQ(again.exit_code, 0) << "DEL must be idempotent: " << again.output;
  }
  auto host_links = RunCommand({"/usr/sbin/ip", "-o", "link"}, nodes[0]->netns());
  EXPECT_EQ(host_links.output.find(": tw"), std::string::npos) << host_links.output;
  auto rules = RunCommand({"/usr/sbin/ip", "rule"}, nodes[0]->netns());
  EXPECT_EQ(rules.output.find(ip_a), std::string::npos) << rules.output;
  EXPECT_EQ(rules.output.find(ip_c), std::string::npos) << rules.output;
  EXPECT_FALSE(Ping(b.name, ip_a)) << "a deleted pod's IP must not answer";
  auto del_b = CniExec("DEL", nodes[1].get(), b);
  EXPECT_EQ(del_b.exit_code, 0) << del_b.output;
}

}  // namespace
}  // namespace terway::testing
