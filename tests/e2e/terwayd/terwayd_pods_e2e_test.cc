// Pods wired by terwayd's shared-ENI datapath, set up exactly as a container
// runtime does it: the real `terway` plugin exec'd with the CNI environment
// and the network configuration on stdin, inside the node's namespace, for a
// pod namespace. Then real packets between pods on one node, on two nodes,
// and to a VPC host; then DEL (twice) leaves nothing of the pod behind.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/harness/world.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::testing {
namespace {

struct PodNs {
  std::string name;
  ~PodNs() {
    if (!name.empty()) (void)netlink::DeleteNamedNetns(name);
  }
};

class TerwaydPods : public ::testing::Test {
 protected:
  CommandResult Cni(const std::string& command, TerwaydNode* node, const std::string& pod_ns,
                    const std::string& pod, const std::string& version = "1.0.0") {
    std::string conf = nlohmann::json{{"cniVersion", version},
                                      {"name", "terway"},
                                      {"type", "terway"},
                                      {"daemon_socket", node->socket()}}
                           .dump();
    return RunCommand({"/usr/bin/env", "CNI_COMMAND=" + command, "CNI_CONTAINERID=ctr-" + pod,
                       "CNI_NETNS=/var/run/netns/" + pod_ns, "CNI_IFNAME=eth0",
                       "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=e2e;K8S_POD_NAME=" + pod,
                       "CNI_PATH=" + BinaryDir() + "/cmd/terway", BinaryPath("terway")},
                      node->netns(), std::chrono::seconds(90), conf);
  }

  std::string AddPod(TerwaydNode* node, PodNs* ns, const std::string& pod) {
    ns->name = world_->name() + "-" + pod;
    EXPECT_TRUE(netlink::CreateNamedNetns(ns->name).ok());
    auto r = Cni("ADD", node, ns->name, pod);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    if (r.exit_code != 0) return "";
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (j.is_discarded() || !j.contains("ips") || j["ips"].empty()) {
      ADD_FAILURE() << "no IP in the ADD result: " << r.output;
      return "";
    }
    std::string addr = j["ips"][0]["address"];
    EXPECT_TRUE(j["interfaces"].size() >= 1u) << r.output;
    return addr.substr(0, addr.find('/'));
  }

  bool Ping(const std::string& from_ns, const std::string& ip) {
    return RunCommand({"/usr/bin/ping", "-c", "2", "-W", "2", "-q", ip}, from_ns,
                      std::chrono::seconds(20))
               .exit_code == 0;
  }

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
  std::string ip_a = AddPod(nodes[0].get(), &a, "pa");
  std::string ip_c = AddPod(nodes[0].get(), &c, "pc");
  std::string ip_b = AddPod(nodes[1].get(), &b, "pb");
  ASSERT_FALSE(ip_a.empty() || ip_b.empty() || ip_c.empty()) << nodes[0]->process().Log();

  EXPECT_TRUE(Ping(a.name, ip_b)) << "cross-node pod to pod " << ip_a << " -> " << ip_b;
  EXPECT_TRUE(Ping(b.name, ip_a)) << "cross-node pod to pod " << ip_b << " -> " << ip_a;
  EXPECT_TRUE(Ping(a.name, ip_c)) << "same-node pod to pod " << ip_a << " -> " << ip_c;
  std::string host_ns = world_->InstanceNetns(world_->instances()[2]);
  auto host_ip = RunCommand({"/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"}, host_ns);
  std::string vpc_host = host_ip.output.substr(host_ip.output.find("inet ") + 5);
  vpc_host = vpc_host.substr(0, vpc_host.find('/'));
  EXPECT_TRUE(Ping(a.name, vpc_host)) << "pod to VPC host " << vpc_host;
  EXPECT_TRUE(Ping(host_ns, ip_b)) << "VPC host to pod " << ip_b;

  // No tunnel anywhere: the pod's packets are plain VPC packets.
  auto links = RunCommand({"/usr/sbin/ip", "-d", "link"}, nodes[0]->netns());
  EXPECT_EQ(links.output.find("vxlan"), std::string::npos) << links.output;
  EXPECT_EQ(links.output.find("geneve"), std::string::npos) << links.output;

  auto check = Cni("CHECK", nodes[0].get(), a.name, "pa");
  EXPECT_EQ(check.exit_code, 0) << check.output;

  for (auto* p : {&a, &c}) {
    std::string pod = p->name.substr(p->name.rfind('-') + 1);
    auto del = Cni("DEL", nodes[0].get(), p->name, pod);
    EXPECT_EQ(del.exit_code, 0) << del.output;
    auto again = Cni("DEL", nodes[0].get(), p->name, pod);
    EXPECT_EQ(again.exit_code, 0) << "DEL must be idempotent: " << again.output;
  }
  auto host_links = RunCommand({"/usr/sbin/ip", "-o", "link"}, nodes[0]->netns());
  EXPECT_EQ(host_links.output.find(": tw"), std::string::npos) << host_links.output;
  auto rules = RunCommand({"/usr/sbin/ip", "rule"}, nodes[0]->netns());
  EXPECT_EQ(rules.output.find(ip_a), std::string::npos) << rules.output;
  EXPECT_EQ(rules.output.find(ip_c), std::string::npos) << rules.output;
  EXPECT_FALSE(Ping(b.name, ip_a)) << "a deleted pod's IP must not answer";
  auto del_b = Cni("DEL", nodes[1].get(), b.name, "pb");
  EXPECT_EQ(del_b.exit_code, 0) << del_b.output;
}

}  // namespace
}  // namespace terway::testing
