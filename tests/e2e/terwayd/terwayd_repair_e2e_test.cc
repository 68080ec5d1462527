// One owner of kernel state: terwayd repairs live pods after a restart.
// Pods are wired by the real plugin; terwayd is killed (-9); while it is
// down, one pod loses its host route and its from-rule, another its host
// veth, and a third pod's netns is destroyed (its sandbox died without a DEL
// reaching us). After the restart the first two pods work again, the third
// pod's address is released and nothing of it is left on the node.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "datapath/layout.h"
#include "e2e/harness/world.h"
#include "e2e/terwayd/cni_exec.h"
#include "store/state_store.h"
#include "test_util.h"

namespace terway::testing {
namespace {

class TerwaydRepair : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && node_) {
      std::string log = node_->process().Log();
      std::cerr << "---- terwayd log (tail) ----\n" << log.substr(log.size() > 8000 ? log.size() - 8000 : 0) << "\n";
    }
  }

  std::set<std::string> StoredIps() {
    std::set<std::string> ips;
    auto st = store::StateStore::Open(node_->state_path());
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    if (!st.ok()) return ips;
    auto all = (*st)->ListAllocations();
    EXPECT_TRUE(all.ok());
    if (all.ok()) {
      for (const auto& a : *all) ips.insert(a.ip);
    }
    return ips;
  }

  std::string Sh(const std::string& ns, std::vector<std::string> argv) {
    auto r = RunCommand(argv, ns);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }

  std::unique_ptr<VpcsimWorld> world_;
  std::unique_ptr<TerwaydNode> node_;
};

TEST_F(TerwaydRepair, RestartRepairsBrokenPodsAndReleasesVanishedOnes) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.g7.large";
  ws.instances = 2;  // the node and a plain VPC host
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  TerwaydSpec ts;
  ts.instance_id = world_->instances()[0];
  ts.datapath = "shared";
  auto n = TerwaydNode::Start(world_.get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  node_ = std::move(n).value();
  ASSERT_TRUE(node_->WaitReady().ok()) << node_->process().Log();
  const std::string host_ns = world_->InstanceNetns(world_->instances()[1]);
  const std::string vpc_host = Eth0Ip(host_ns);
  ASSERT_FALSE(vpc_host.empty());

  PodNs p1, p2, p3;
  nlohmann::json res1;
  std::string ip1 = AddPod(node_.get(), world_->name(), &p1, "p1", &res1);
  std::string ip2 = AddPod(node_.get(), world_->name(), &p2, "p2");
  std::string ip3 = AddPod(node_.get(), world_->name(), &p3, "p3");
  ASSERT_FALSE(ip1.empty() || ip2.empty() || ip3.empty());
  for (auto* p : {&p1, &p2, &p3}) ASSERT_TRUE(Ping(p->name, vpc_host)) << p->pod << " before the restart";
  ASSERT_EQ(StoredIps(), (std::set<std::string>{ip1, ip2, ip3}));

  node_->Kill9();
  const std::string ns = node_->netns();
  // p1: host route and from-rule gone. p2: host veth gone (its pair and
  // route with it). p3: the sandbox is destroyed.
  Sh(ns, {"/usr/sbin/ip", "route", "del", ip1 + "/32"});
  Sh(ns, {"/usr/sbin/ip", "rule", "del", "from", ip1, "priority", "2048"});
  Sh(ns, {"/usr/sbin/ip", "link", "del", datapath::HostVethName("ctr-p2")});
  ASSERT_TRUE(netlink::DeleteNamedNetns(p3.name).ok());
  p3.name.clear();  // already gone
  EXPECT_FALSE(Ping(p1.name, vpc_host)) << "p1 should be broken before the restart";
  EXPECT_FALSE(Ping(p2.name, vpc_host)) << "p2 should be broken before the restart";

  ASSERT_TRUE(node_->Restart().ok());
  ASSERT_TRUE(node_->WaitReady().ok()) << node_->process().Log();

  // Repaired: both pods reach the VPC host again (and CHECK agrees).
  EXPECT_TRUE(WaitFor([&] { return Ping(p1.name, vpc_host); }, std::chrono::seconds(30), std::chrono::seconds(1)))
      << "p1 not repaired";
  EXPECT_TRUE(WaitFor([&] { return Ping(p2.name, vpc_host); }, std::chrono::seconds(30), std::chrono::seconds(1)))
      << "p2 not repaired";
  EXPECT_EQ(CniExec("CHECK", node_.get(), p1, {.prev_result = &res1}).exit_code, 0);
  EXPECT_EQ(CniExec("CHECK", node_.get(), p2).exit_code, 0);

  // Released: p3's address left the store, and nothing of p3 is on the node.
  EXPECT_EQ(StoredIps(), (std::set<std::string>{ip1, ip2}));
  auto cli = RunCommand({BinaryPath("terway-cli"), "pods", "--state", node_->state_path()});
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  EXPECT_NE(cli.output.find(ip1), std::string::npos) << cli.output;
  EXPECT_EQ(cli.output.find(ip3), std::string::npos) << cli.output;
  auto links = Sh(ns, {"/usr/sbin/ip", "-o", "link"});
  EXPECT_EQ(links.find(datapath::HostVethName("ctr-p3")), std::string::npos) << links;
  EXPECT_NE(links.find(datapath::HostVethName("ctr-p1")), std::string::npos) << links;
  EXPECT_NE(links.find(datapath::HostVethName("ctr-p2")), std::string::npos) << links;
  auto rules = Sh(ns, {"/usr/sbin/ip", "rule"});
  EXPECT_EQ(rules.find(ip3 + " "), std::string::npos) << rules;
  auto routes = Sh(ns, {"/usr/sbin/ip", "route"});
  EXPECT_EQ(routes.find(ip3 + " "), std::string::npos) << routes;

  auto metrics = node_->Metrics();
  ASSERT_TRUE(metrics.ok()) << metrics.error().ToString();
  EXPECT_NE(metrics->find("terway_restart_repairs_total{outcome=\"repaired\"} 2"), std::string::npos) << *metrics;
  EXPECT_NE(metrics->find("terway_restart_repairs_total{outcome=\"released\"} 1"), std::string::npos) << *metrics;
  std::string log = node_->process().Log();
  EXPECT_NE(log.find("repaired pod e2e/p1"), std::string::npos) << "the repair is logged";
  EXPECT_NE(log.find("repaired pod e2e/p2"), std::string::npos) << "the repair is logged";

  // A restart with nothing broken repairs nothing.
  ASSERT_TRUE(node_->Restart().ok());
  ASSERT_TRUE(node_->WaitReady().ok()) << node_->process().Log();
  auto m2 = node_->Metrics();
  ASSERT_TRUE(m2.ok());
  EXPECT_NE(m2->find("terway_restart_repairs_total{outcome=\"ok\"} 2"), std::string::npos) << *m2;
  EXPECT_EQ(m2->find("outcome=\"repaired\""), std::string::npos) << *m2;

  for (auto* p : {&p1, &p2}) EXPECT_EQ(CniExec("DEL", node_.get(), *p).exit_code, 0);
  EXPECT_TRUE(StoredIps().empty());
}

}  // namespace
}  // namespace terway::testing
