// A lost database on a dual-stack node (issue 15): terwayd is killed (-9),
// its state database deleted, and started again. The pool re-reads the
// cloud and pairs IPv4s with IPv6s its own way; the state rebuild must
// record each running pod with the IPv6 its sandbox really has, so no IPv6
// is recorded for two pods or handed to a new pod while its sandbox lives.
// The pods are added one by one over several refills, so the pool's pairs
// after the re-read differ from the ones the pods were given (the test
// checks that a re-pairing was needed; otherwise it would prove nothing).
// Without the fix, pods of the second ENI were recorded with each other's
// IPv6s.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "e2e/harness/world.h"
#include "e2e/terwayd/cni_exec.h"
#include "store/state_store.h"
#include "test_util.h"

namespace terway::testing {
namespace {

class TerwaydDualStackRebuild : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && node_) {
      std::string log = node_->process().Log();
      std::cerr << "---- terwayd log (tail) ----\n" << log.substr(log.size() > 12000 ? log.size() - 12000 : 0) << "\n";
    }
  }

  // container id -> (IPv4, IPv6) as the store records it.
  std::map<std::string, std::pair<std::string, std::string>> StoredPairs() {
    std::map<std::string, std::pair<std::string, std::string>> out;
    auto st = store::StateStore::Open(node_->state_path());
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    if (!st.ok()) return out;
    auto all = (*st)->ListAllocations();
    EXPECT_TRUE(all.ok());
    if (all.ok()) {
      for (const auto& a : *all) out[a.container_id] = {a.ip, a.ipv6};
    }
    return out;
  }

  // The pod's (IPv4, IPv6) from its ADD result.
  static std::pair<std::string, std::string> PairOf(const nlohmann::json& result) {
    std::pair<std::string, std::string> out;
    for (const auto& ip : result.value("ips", nlohmann::json::array())) {
      std::string addr = ip.value("address", "");
      addr = addr.substr(0, addr.find('/'));
      (addr.find(':') == std::string::npos ? out.first : out.second) = addr;
    }
    return out;
  }

  std::unique_ptr<VpcsimWorld> world_;
  std::unique_ptr<TerwaydNode> node_;
};

TEST_F(TerwaydDualStackRebuild, LostDatabaseKeepsEveryPodsOwnPair) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.g7.large";
  ws.vpc_ipv6_cidr = "fd00:c613::/56";
  ws.vswitch_ipv6_cidr = "fd00:c613::/64";
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  TerwaydSpec ts;
  ts.instance_id = world_->instances()[0];
  ts.datapath = "shared";
  ts.min_pool_size = 0;
  ts.max_pool_size = 1;
  ts.extra_conf = R"("ip_stack": "dual")";
  auto n = TerwaydNode::Start(world_.get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  node_ = std::move(n).value();
  ASSERT_TRUE(node_->WaitReady().ok()) << node_->process().Log();

  // One ADD at a time with a warm pool of one: each refill obtains a pair
  // of slots, so an ENI's addresses come in several rounds, and the second
  // ENI's IPv4s cross from one to two digits in their last byte (.8 .9,
  // then .10 .11). Sorted by text, as the pool pairs them after re-reading
  // the cloud, they are no longer in the order they came in with their
  // IPv6s: the re-read pairs differ from the pods' own.
  constexpr int kPods = 10;
  std::vector<PodNs> pods(kPods);
  std::map<std::string, std::pair<std::string, std::string>> given;  // container id -> pair
  for (int i = 0; i < kPods; ++i) {
    nlohmann::json res;
    std::string ip = AddPod(node_.get(), world_->name(), &pods[i], "d" + std::to_string(i), &res);
    ASSERT_FALSE(ip.empty());
    auto pair = PairOf(res);
    ASSERT_FALSE(pair.second.empty()) << "no IPv6 in the ADD result: " << res.dump();
    given["ctr-" + pods[i].pod] = pair;
  }
  ASSERT_EQ(StoredPairs(), given);

  node_->Kill9();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(node_->state_path() + suffix);
  ASSERT_TRUE(node_->Restart().ok());
  ASSERT_TRUE(node_->WaitReady().ok()) << node_->process().Log();

  const std::string log = node_->process().Log();
  EXPECT_NE(log.find("ip_repaired_for_adoption"), std::string::npos)
      << "the re-read cloud paired every slot as the pods have it: this test proves nothing";
  EXPECT_EQ(StoredPairs(), given) << "every pod recorded with its own (IPv4, IPv6)";
  for (int i = 0; i < kPods; ++i) {
    EXPECT_EQ(CniExec("CHECK", node_.get(), pods[i]).exit_code, 0) << pods[i].pod;
  }

  // New pods get IPv6s no running pod has.
  std::set<std::string> held;
  for (const auto& [id, pair] : given) held.insert(pair.second);
  std::vector<PodNs> fresh(2);
  for (int i = 0; i < 2; ++i) {
    nlohmann::json res;
    ASSERT_FALSE(AddPod(node_.get(), world_->name(), &fresh[i], "n" + std::to_string(i), &res).empty());
    const std::string v6 = PairOf(res).second;
    EXPECT_TRUE(held.insert(v6).second) << v6 << " handed to a new pod while a running pod has it";
  }

  for (auto* group : {&pods, &fresh}) {
    for (auto& p : *group) EXPECT_EQ(CniExec("DEL", node_.get(), p).exit_code, 0) << p.pod;
  }
  EXPECT_TRUE(StoredPairs().empty());
}

}  // namespace
}  // namespace terway::testing
