// Exclusive-ENI mode end to end: terwayd with eni_mode "exclusive" on one
// node, a shared-mode terwayd on another, a plain VPC host, all on vpcsim's
// real fabric; pods made by the real `terway` plugin. An exclusive pod gets
// an ENI of its own (the cloud shows it attached with the pod IP as primary),
// that ENI is the pod's eth0, the pod reaches a shared pod on the other node
// and the VPC host; the node refuses its EniQuantity-th pod; DEL detaches and
// deletes the ENI and leaves nothing on the node.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloud/cloud_clients.h"
#include "e2e/harness/world.h"
#include "e2e/terwayd/cni_exec.h"
#include "test_util.h"

namespace terway::testing {
namespace {

class TerwaydExclusive : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto* n : {exclusive_.get(), shared_.get()}) {
      if (HasFailure() && n) {
        std::string log = n->process().Log();
        std::cerr << "---- terwayd log (tail) ----\n" << log.substr(log.size() > 6000 ? log.size() - 6000 : 0) << "\n";
      }
    }
  }

  std::unique_ptr<cloud::CloudClients> Cloud() {
    cloud::CloudOptions co;
    co.region_id = "cn-hangzhou";
    co.ecs_endpoint = world_->endpoint();
    co.vpc_endpoint = world_->endpoint();
    co.credential_kind = cloud::CredentialKind::kStatic;
    co.access_key = VpcsimWorld::kAccessKey;
    co.access_secret = VpcsimWorld::kAccessSecret;
    auto c = cloud::CloudClients::Create(co);
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::unique_ptr<VpcsimWorld> world_;
  std::unique_ptr<TerwaydNode> exclusive_, shared_;
};

TEST_F(TerwaydExclusive, PodOwnsAnEniReachesTheVpcAndDelDeletesIt) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.tiny";  // EniQuantity 3: 2 exclusive pods
  ws.instances = 3;                      // exclusive node, shared node, VPC host
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  const std::string node_x = world_->instances()[0];

  TerwaydSpec xs;
  xs.instance_id = node_x;
  xs.datapath = "exclusive";
  xs.extra_conf = "\"eni_mode\": \"exclusive\"";
  auto xn = TerwaydNode::Start(world_.get(), xs);
  ASSERT_TRUE(xn.ok()) << xn.error().ToString();
  exclusive_ = std::move(xn).value();
  TerwaydSpec ss;
  ss.instance_id = world_->instances()[1];
  ss.datapath = "shared";
  auto sn = TerwaydNode::Start(world_.get(), ss);
  ASSERT_TRUE(sn.ok()) << sn.error().ToString();
  shared_ = std::move(sn).value();
  ASSERT_TRUE(exclusive_->WaitReady().ok()) << exclusive_->process().Log();
  ASSERT_TRUE(shared_->WaitReady().ok()) << shared_->process().Log();
  auto cloud = Cloud();
  ASSERT_TRUE(cloud);

  PodNs x1, x2, x3, s1;
  nlohmann::json res;
  std::string ip_x1 = AddPod(exclusive_.get(), world_->name(), &x1, "x1", &res);
  std::string ip_s1 = AddPod(shared_.get(), world_->name(), &s1, "s1");
  ASSERT_FALSE(ip_x1.empty() || ip_s1.empty());

  // The cloud: an ENI of its own, attached to the node, the pod IP primary.
  cloud::DescribeEnisFilter f;
  f.instance_id = node_x;
  auto enis = cloud->ecs()->DescribeNetworkInterfaces(f);
  ASSERT_TRUE(enis.ok()) << enis.error().ToString();
  std::optional<cloud::NetworkInterface> eni;
  for (const auto& e : *enis) {
    if (e.private_ip_address == ip_x1) eni = e;
  }
  ASSERT_TRUE(eni.has_value()) << "no ENI of " << node_x << " has primary IP " << ip_x1;
  EXPECT_EQ(eni->status, "InUse");
  EXPECT_EQ(eni->type, "Secondary");
  EXPECT_EQ(eni->instance_id, node_x);

  // The pod's eth0 is that ENI, and the CNI result says so (with MACs).
  auto link = RunCommand({"/usr/sbin/ip", "-o", "link", "show", "dev", "eth0"}, x1.name);
  EXPECT_NE(link.output.find(eni->mac_address), std::string::npos) << link.output << " vs " << eni->mac_address;
  bool reported = false;
  for (const auto& i : res["interfaces"]) {
    EXPECT_FALSE(i.value("mac", "").empty()) << res.dump();
    if (i.value("name", "") == "eth0" && i.value("mac", "") == eni->mac_address) reported = true;
  }
  EXPECT_TRUE(reported) << res.dump();
  auto on_node = RunCommand({"/usr/sbin/ip", "-o", "link"}, exclusive_->netns());
  EXPECT_EQ(on_node.output.find(eni->mac_address), std::string::npos) << "the ENI left the node: " << on_node.output;

  // Traffic: to a shared pod on the other node, to a VPC host, and back.
  const std::string vpc_host_ns = world_->InstanceNetns(world_->instances()[2]);
  const std::string vpc_host = Eth0Ip(vpc_host_ns);
  ASSERT_FALSE(vpc_host.empty());
  EXPECT_TRUE(Ping(x1.name, ip_s1)) << "exclusive pod -> shared pod on another node";
  EXPECT_TRUE(Ping(s1.name, ip_x1)) << "shared pod -> exclusive pod";
  EXPECT_TRUE(Ping(x1.name, vpc_host)) << "exclusive pod -> VPC host " << vpc_host;
  EXPECT_TRUE(Ping(vpc_host_ns, ip_x1)) << "VPC host -> exclusive pod";
  EXPECT_TRUE(Ping(exclusive_->netns(), ip_x1)) << "node -> its exclusive pod (through the veth)";
  // CHECK as a runtime sends it: the ADD result as prevResult.
  auto check = CniExec("CHECK", exclusive_.get(), x1, {.prev_result = &res});
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // Max pods = EniQuantity - 1 = 2: the third is refused, clearly.
  std::string ip_x2 = AddPod(exclusive_.get(), world_->name(), &x2, "x2");
  EXPECT_FALSE(ip_x2.empty());
  x3.pod = "x3";
  x3.name = world_->name() + "-x3";
  ASSERT_TRUE(netlink::CreateNamedNetns(x3.name).ok());
  auto refused = CniExec("ADD", exclusive_.get(), x3);
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  // stdout carries the CNI error object; stderr (merged here) a summary line.
  auto brace = refused.output.find("\n{");
  auto rj = nlohmann::json::parse(brace == std::string::npos ? refused.output : refused.output.substr(brace + 1),
                                  nullptr, false);
  ASSERT_FALSE(rj.is_discarded()) << refused.output;
  EXPECT_EQ(rj.value("code", 0), 100) << refused.output;  // kNoAddressAvailable
  EXPECT_NE(refused.output.find("maximum of 2"), std::string::npos) << refused.output;
  auto metrics = exclusive_->Metrics();
  ASSERT_TRUE(metrics.ok()) << metrics.error().ToString();
  EXPECT_NE(metrics->find("terway_pool_max_pods 2"), std::string::npos) << *metrics;

  // DEL (twice): the ENI is detached and deleted in the cloud, and nothing
  // of the pod stays on the node.
  for (auto* p : {&x1, &x2}) {
    auto del = CniExec("DEL", exclusive_.get(), *p);
    EXPECT_EQ(del.exit_code, 0) << del.output;
    auto again = CniExec("DEL", exclusive_.get(), *p);
    EXPECT_EQ(again.exit_code, 0) << "DEL must be idempotent: " << again.output;
  }
  cloud::DescribeEnisFilter byid;
  byid.eni_ids = {eni->network_interface_id};
  auto after = cloud->ecs()->DescribeNetworkInterfaces(byid);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_TRUE(after->empty()) << "ENI " << eni->network_interface_id << " still exists in the cloud";
  auto left = cloud->ecs()->DescribeNetworkInterfaces(f);
  ASSERT_TRUE(left.ok());
  for (const auto& e : *left) EXPECT_EQ(e.type, "Primary") << "left attached: " << e.network_interface_id;
  auto links = RunCommand({"/usr/sbin/ip", "-o", "link"}, exclusive_->netns());
  EXPECT_EQ(links.output.find(": tw"), std::string::npos) << links.output;
  EXPECT_EQ(links.output.find(eni->mac_address), std::string::npos) << links.output;
  auto routes = RunCommand({"/usr/sbin/ip", "route", "show", "table", "all"}, exclusive_->netns());
  EXPECT_EQ(routes.output.find(ip_x1 + " "), std::string::npos) << routes.output;
  EXPECT_EQ(routes.output.find(ip_x2 + " "), std::string::npos) << routes.output;
  auto in_pod = RunCommand({"/usr/sbin/ip", "-o", "link"}, x1.name);
  EXPECT_EQ(in_pod.output.find("eth0"), std::string::npos) << in_pod.output;
  EXPECT_EQ(in_pod.output.find("veth1"), std::string::npos) << in_pod.output;
  EXPECT_FALSE(Ping(s1.name, ip_x1)) << "a deleted pod's IP must not answer";

  // With the ENIs back, the refused pod now fits.
  auto retry = CniExec("ADD", exclusive_.get(), x3);
  EXPECT_EQ(retry.exit_code, 0) << retry.output;
  EXPECT_EQ(CniExec("DEL", exclusive_.get(), x3).exit_code, 0);
  EXPECT_EQ(CniExec("DEL", shared_.get(), s1).exit_code, 0);
}

// Restart repair in exclusive mode: while terwayd is down one pod loses its
// ENI's address (and its routes) and its veth, another pod's sandbox is destroyed. After
// the restart the first works again and the second's ENI is gone from the
// cloud.
TEST_F(TerwaydExclusive, RestartRepairsAPodAndDeletesTheEniOfAVanishedOne) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.tiny";
  ws.instances = 2;  // exclusive node, VPC host
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  TerwaydSpec xs;
  xs.instance_id = world_->instances()[0];
  xs.datapath = "exclusive";
  xs.extra_conf = "\"eni_mode\": \"exclusive\"";
  auto xn = TerwaydNode::Start(world_.get(), xs);
  ASSERT_TRUE(xn.ok()) << xn.error().ToString();
  exclusive_ = std::move(xn).value();
  ASSERT_TRUE(exclusive_->WaitReady().ok()) << exclusive_->process().Log();
  auto cloud = Cloud();
  ASSERT_TRUE(cloud);
  const std::string vpc_host_ns = world_->InstanceNetns(world_->instances()[1]);
  const std::string vpc_host = Eth0Ip(vpc_host_ns);

  PodNs x1, x2;
  std::string ip1 = AddPod(exclusive_.get(), world_->name(), &x1, "x1");
  std::string ip2 = AddPod(exclusive_.get(), world_->name(), &x2, "x2");
  ASSERT_FALSE(ip1.empty() || ip2.empty());
  ASSERT_TRUE(Ping(x1.name, vpc_host));
  cloud::DescribeEnisFilter f;
  f.private_ips = {ip2};
  auto e2 = cloud->ecs()->DescribeNetworkInterfaces(f);
  ASSERT_TRUE(e2.ok() && e2->size() == 1u);
  const std::string eni2 = (*e2)[0].network_interface_id;

  exclusive_->Kill9();
  // The VPC host is on the ENI's subnet: without the address (and with it
  // the connected and default routes) x1 reaches nothing.
  EXPECT_EQ(RunCommand({"/usr/sbin/ip", "addr", "flush", "dev", "eth0"}, x1.name).exit_code, 0);
  EXPECT_EQ(RunCommand({"/usr/sbin/ip", "link", "del", "veth1"}, x1.name).exit_code, 0);
  ASSERT_TRUE(netlink::DeleteNamedNetns(x2.name).ok());
  x2.name.clear();
  EXPECT_FALSE(Ping(x1.name, vpc_host)) << "x1 should be broken before the restart";

  ASSERT_TRUE(exclusive_->Restart().ok());
  ASSERT_TRUE(exclusive_->WaitReady().ok()) << exclusive_->process().Log();
  EXPECT_TRUE(WaitFor([&] { return Ping(x1.name, vpc_host); }, std::chrono::seconds(30), std::chrono::seconds(1)))
      << "x1 not repaired";
  EXPECT_TRUE(Ping(exclusive_->netns(), ip1)) << "node -> x1 through the rebuilt veth";
  cloud::DescribeEnisFilter byid;
  byid.eni_ids = {eni2};
  auto gone = cloud->ecs()->DescribeNetworkInterfaces(byid);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty()) << "the vanished pod's ENI " << eni2 << " still exists";
  auto metrics = exclusive_->Metrics();
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->find("terway_restart_repairs_total{outcome=\"repaired\"} 1"), std::string::npos) << *metrics;
  EXPECT_NE(metrics->find("terway_restart_repairs_total{outcome=\"released\"} 1"), std::string::npos) << *metrics;

  EXPECT_EQ(CniExec("DEL", exclusive_.get(), x1).exit_code, 0);
  cloud::DescribeEnisFilter node;
  node.instance_id = world_->instances()[0];
  auto left = cloud->ecs()->DescribeNetworkInterfaces(node);
  ASSERT_TRUE(left.ok());
  for (const auto& e : *left) EXPECT_EQ(e.type, "Primary") << "left attached: " << e.network_interface_id;
}

// The node's mode comes from eni_conf; a --datapath that contradicts it is
// refused before anything is created, naming the fix.
TEST(TerwaydExclusiveConfig, DatapathThatContradictsEniModeIsRefused) {
  struct Case {
    const char* conf;
    const char* datapath;
    const char* expect;
  };
  for (const Case& c : {Case{R"({"eni_mode": "exclusive"})", "none", "no IPAM-only form"},
                        Case{R"({"eni_mode": "exclusive"})", "shared", "--datapath auto"},
                        Case{R"({"eni_mode": "shared"})", "exclusive", "--datapath auto"}}) {
    TempDir dir;
    ASSERT_TRUE(WriteFile(dir.File("eni.json"), c.conf).ok());
    auto r = RunCommand({BinaryPath("terwayd"), "--config", dir.File("eni.json"), "--socket", dir.File("eni.socket"),
                         "--state", dir.File("state.db"), "--metrics-listen", "", "--datapath", c.datapath},
                        "", std::chrono::seconds(30));
    EXPECT_NE(r.exit_code, 0) << c.conf << " " << c.datapath << ": " << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << r.output;
    EXPECT_TRUE(ReadFile(dir.File("state.db")).empty()) << "nothing is created";
  }
}

}  // namespace
}  // namespace terway::testing
