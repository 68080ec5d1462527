// A node that ran ip_stack dual restarted with ip_stack ipv4: reconcile
// gives back the IPv6s its ENIs hold that no pod holds (batched per ENI),
// keeps a pod's until its teardown has released the pod, and retries what
// the cloud or the store refused -- the node serving throughout.
#include <gtest/gtest.h>

#include "ipam/leftover_ipv6.h"
#include "pool_harness.h"

namespace terway::ipam::testing {
namespace {

using std::chrono::milliseconds;
using terway::testing::StoreWrite;

class PoolStackSwitchTest : public PoolHarnessTest {
 protected:
  // A dual-stack node with `pairs` slots on one ENI and `pods` dual-stack
  // pods on them.
  std::vector<IpAllocation> DualNode(int pairs, int pods, InstanceLimits limits = {4, 10, 6}) {
    std::vector<IpAllocation> out;
    StartPool(IpStack::kDual, pairs, pairs, limits);
    while (pool_->Stats().idle < pairs) {
      EXPECT_TRUE(pool_->RefillOnce().ok());
      if (::testing::Test::HasFailure()) return out;
    }
    for (int i = 1; i <= pods; ++i) {
      auto a = pool_->Allocate(PodNamed("dual" + std::to_string(i)), milliseconds(0));
      EXPECT_TRUE(a.ok() && !a->ipv6.empty());
      if (a.ok()) out.push_back(*a);
    }
    return out;
  }
  std::set<std::string> StoredIpv6() {
    std::set<std::string> out;
    for (const auto& [ip, v6] : StoredPairs()) {
      if (!v6.empty()) out.insert(v6);
    }
    return out;
  }
  LeftoverIpv6Stats Leftover() { return pool_->Stats().leftover_ipv6; }
};

TEST_F(PoolStackSwitchTest, IpsTheDualStackPeriodLeftGoBackExceptThosePodsHold) {
  auto pods = DualNode(4, 2);
  ASSERT_EQ(pods.size(), 2u);
  ASSERT_EQ(cloud_->AttachedTerwayIpv6s().size(), 4u);

  Reconfigure(IpStack::kIpv4, 0, 5);  // its start-up reconcile gives back what no pod holds
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s(), (std::set<std::string>{pods[0].ipv6, pods[1].ipv6}));
  EXPECT_EQ(cloud_->Calls("UnassignIpv6Addresses"), 1);
  EXPECT_EQ(StoredIpv6(), cloud_->AttachedTerwayIpv6s());  // no row names an IPv6 that went
  EXPECT_EQ(Leftover().held, 2);
  EXPECT_EQ(Leftover().returned_total, 2u);
  EXPECT_EQ(Leftover().pending, 0);
  auto kept = pool_->Get("c-dual1");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->ipv6, pods[0].ipv6) << "its teardown removes the IPv6 it was wired with";
  auto v4_pod = pool_->Allocate(PodNamed("v4"), milliseconds(0));
  ASSERT_TRUE(v4_pod.ok()) << v4_pod.error().ToString();
  EXPECT_EQ(v4_pod->ipv6, "");

  // The teardown ends with the release; the next reconcile gives it back.
  ASSERT_TRUE(pool_->Release("c-dual1").ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s(), std::set<std::string>{pods[1].ipv6});
  EXPECT_EQ(StoredIpv6(), std::set<std::string>{pods[1].ipv6});
  EXPECT_EQ(Leftover().held, 1);
  ASSERT_TRUE(pool_->Release("c-dual2").ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(cloud_->AttachedTerwayIpv6s().empty());
  EXPECT_TRUE(StoredIpv6().empty());
  EXPECT_EQ(Leftover().held, 0);
  EXPECT_EQ(Leftover().returned_total, 4u);

  const int calls = cloud_->Calls("UnassignIpv6Addresses");
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(cloud_->Calls("UnassignIpv6Addresses"), calls);  // nothing left: no call
  EXPECT_EQ(cloud_->AttachedTerwayIps().size(), StoredPairs().size());  // the IPv4 pool as it was
}

TEST_F(PoolStackSwitchTest, GivesBackAtMostTenPerCallPerEni) {
  DualNode(13, 0, {4, 20, 20});
  ASSERT_EQ(cloud_->AttachedTerwayIpv6s().size(), 13u);
  std::vector<size_t> before_each_call;  // the IPv6s the ENI holds as each call starts
  cloud_->SetHook([&](const std::string& op) {
    if (op == "UnassignIpv6Addresses") before_each_call.push_back(cloud_->AttachedTerwayIpv6s().size());
  });
  Reconfigure(IpStack::kIpv4, 0, 13);
  cloud_->SetHook(nullptr);
  EXPECT_TRUE(cloud_->AttachedTerwayIpv6s().empty());
  EXPECT_EQ(before_each_call, (std::vector<size_t>{13, 3}));  // 10, then the last 3
  EXPECT_EQ(Leftover().returned_total, 13u);
}

// The give-back fails: the node starts and serves all the same (the pool
// does not wait for the cloud to take IPv6s back), and the next reconcile
// tries again.
TEST_F(PoolStackSwitchTest, AFailedGiveBackLeavesTheNodeServingAndIsRetried) {
  DualNode(3, 0);
  cloud_->Script("UnassignIpv6Addresses", CloudError("InternalError"));
  Reconfigure(IpStack::kIpv4, 0, 5);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 3u);
  EXPECT_EQ(Leftover().pending, 3);
  EXPECT_EQ(Leftover().return_failures_total, 3u);
  auto p = pool_->Allocate(PodNamed("p1"), milliseconds(0));
  ASSERT_TRUE(p.ok()) << p.error().ToString();

  cloud_->Script("UnassignIpv6Addresses", CloudError("Throttling.User"));
  EXPECT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 3u);
  EXPECT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(cloud_->AttachedTerwayIpv6s().empty());
  EXPECT_EQ(Leftover().pending, 0);
  EXPECT_EQ(Leftover().returned_total, 3u);
  EXPECT_TRUE(StoredIpv6().empty());
}

// The cloud takes a dual-stack pod's IPv4 away: its allocation ends, and its
// IPv6 stays until the teardown on_address_lost does has run.
TEST_F(PoolStackSwitchTest, ALostPodKeepsItsIpv6UntilItsTeardown) {
  auto pods = DualNode(2, 1);
  Reconfigure(IpStack::kIpv4, 0, 5);
  ASSERT_EQ(cloud_->AttachedTerwayIpv6s(), std::set<std::string>{pods[0].ipv6});
  cloud_->DropIpBehindOurBack(pods[0].ip);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s(), std::set<std::string>{pods[0].ipv6}) << "its sandbox is still wired";
  EXPECT_EQ(Leftover().held, 1);
  ASSERT_EQ(pool_->TakeLostAllocations().size(), 1u);  // the teardown, taken over
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(cloud_->AttachedTerwayIpv6s().empty());
  EXPECT_EQ(Leftover().held, 0);
}

// The stored pairing cannot be cleared: that IPv6 stays (no row may name an
// address the cloud took back) until the store takes the write. Meanwhile
// an IPv4-only pod takes a slot of such a pairing: the IPv6 is no pod's (the
// pod's allocation records none) and goes; the row is cleared after the
// pod's release.
TEST_F(PoolStackSwitchTest, AnIpv6WhosePairingCannotBeClearedWaitsForTheStore) {
  DualNode(2, 0);
  ASSERT_TRUE(faults_->Fail(StoreWrite::kUnpairIpv6).ok());
  Reconfigure(IpStack::kIpv4, 0, 5);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 2u);
  EXPECT_EQ(cloud_->Calls("UnassignIpv6Addresses"), 0);
  EXPECT_EQ(Leftover().pending, 2);
  auto p = pool_->Allocate(PodNamed("v4"), milliseconds(0));
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->ipv6, "");
  const std::string stale = StoredPairs()[p->ip];
  ASSERT_FALSE(stale.empty());

  ASSERT_TRUE(faults_->Clear().ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(cloud_->AttachedTerwayIpv6s().empty());
  EXPECT_EQ(StoredIpv6(), std::set<std::string>{stale});  // the pod's row, as the store keeps it
  ASSERT_TRUE(pool_->Release("c-v4").ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(StoredIpv6().empty());
  EXPECT_EQ(Leftover().pending, 0);
}

// A dual-stack node reconciles as before: its IPv6s are its slots'.
TEST_F(PoolStackSwitchTest, ADualStackNodeGivesNoIpv6BackOnReconcile) {
  DualNode(3, 1);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(cloud_->Calls("UnassignIpv6Addresses"), 0);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 3u);
  EXPECT_EQ(Leftover().returned_total, 0u);
}

TEST(LeftoverIpv6Plan, GroupsPerEniKeepsHeldAndDeferredAndCountsThem) {
  std::map<std::string, std::vector<std::string>> listed{
      {"eni-a", {"2001:db8::1", "2001:db8::2", "2001:db8::3"}},
      {"eni-b", {"2001:db8::b1", "2001:db8::b2"}},
  };
  auto plan = PlanLeftoverIpv6(listed, {"2001:db8::2"}, {"2001:db8::b2"});
  EXPECT_EQ(plan.held, 1);
  EXPECT_EQ(plan.deferred, 1);
  ASSERT_EQ(plan.returns.size(), 2u);
  EXPECT_EQ(plan.returns[0], (UnassignAction{"eni-a", {}, {"2001:db8::1", "2001:db8::3"}}));
  EXPECT_EQ(plan.returns[1], (UnassignAction{"eni-b", {}, {"2001:db8::b1"}}));

  std::vector<std::string> many;
  for (int i = 0; i < 23; ++i) many.push_back(fmt::format("2001:db8::{:x}", 0x100 + i));
  plan = PlanLeftoverIpv6({{"eni-c", many}}, {}, {});
  ASSERT_EQ(plan.returns.size(), 3u);
  EXPECT_EQ(plan.returns[0].ipv6s.size(), 10u);
  EXPECT_EQ(plan.returns[2].ipv6s.size(), 3u);
  EXPECT_TRUE(PlanLeftoverIpv6({{"eni-d", {}}}, {}, {}).returns.empty());
}

}  // namespace
}  // namespace terway::ipam::testing
