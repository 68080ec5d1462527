// ip_stack dual: a store write that fails while the pool pairs, hands out or
// gives back (IPv4, IPv6) slots leaves memory and the database saying the
// same thing and the pool serving. The failures are real ones of the real
// store (StoreFaults arms triggers in its database): the call fails and its
// transaction rolls back.
#include <gtest/gtest.h>

#include "pool_harness.h"

namespace terway::ipam::testing {
namespace {

using std::chrono::milliseconds;
using terway::testing::StoreWrite;

class PoolStoreFaultsTest : public PoolHarnessTest {
 protected:
  // One ENI of 6 slots, p1 on one of them; restarted to keep 1 idle slot,
  // so the next reclaim gives back 4 slots in one action (the ENI's primary
  // IP never goes).
  void OneEniToShrink() {
    StartPool(IpStack::kDual, 6, 6);
    ASSERT_TRUE(pool_->RefillOnce().ok());
    ASSERT_TRUE(pool_->Allocate(PodNamed("p1"), milliseconds(0)).ok());
    Reconfigure(IpStack::kDual, 0, 1);
    ASSERT_EQ(pool_->Stats().idle, 5);
    v6_before_ = cloud_->AttachedTerwayIpv6s();
  }
  int Count(IpUse use) {
    int n = 0;
    for (const auto& [ip, u] : Uses()) n += u == use ? 1 : 0;
    return n;
  }
  std::set<std::string> v6_before_;
};

// The 2nd slot's unpair write fails before the IPv6 unassign: the first
// slot, unpaired in the store already, is paired there again; no address
// went to the cloud; the slots are out of service until the cloud is read
// again (a store error may have been applied), then serve pods.
TEST_F(PoolStoreFaultsTest, UnpairWriteFailingMidReclaimRepairsTheStoreAndRestoresTheSlots) {
  OneEniToShrink();
  ASSERT_TRUE(faults_->Fail(StoreWrite::kUnpairIpv6, /*pass_first=*/1).ok());
  auto st = pool_->ReclaimOnce();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("injected store failure"), std::string::npos) << st.error().ToString();
  EXPECT_EQ(cloud_->Calls("UnassignIpv6Addresses"), 0);
  EXPECT_EQ(cloud_->Calls("UnassignPrivateIpAddresses"), 0);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s(), v6_before_);
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
  EXPECT_EQ(Count(IpUse::kReleasing), 4);  // not handed out while in doubt

  ASSERT_TRUE(faults_->Clear().ok());
  ASSERT_TRUE(pool_->Reconcile().ok());  // the cloud still lists them: back in service
  EXPECT_EQ(pool_->Stats().idle, 5);
  auto p2 = pool_->Allocate(PodNamed("p2"), milliseconds(0));
  ASSERT_TRUE(p2.ok()) << p2.error().ToString();
  EXPECT_FALSE(p2->ipv6.empty());
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
}

// ... and writing the first slot's pair back fails too: memory follows the
// store (the slot unpaired, its IPv6 a spare of the ENI), the next
// reconcile pairs them again, nothing leaks.
TEST_F(PoolStoreFaultsTest, RepairWriteFailingTooLeavesTheIpv6ASpareAsTheStoreSays) {
  OneEniToShrink();
  ASSERT_TRUE(faults_->Fail(StoreWrite::kUnpairIpv6, /*pass_first=*/1).ok());
  ASSERT_TRUE(faults_->Fail(StoreWrite::kPairIpv6).ok());
  ASSERT_FALSE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s(), v6_before_);
  ExpectMemoryMatchesStore();
  EXPECT_EQ(SpareIpv6().size(), 1u);
  ExpectCloudMatchesStore();

  ASSERT_TRUE(faults_->Clear().ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_TRUE(SpareIpv6().empty());
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(pool_->Stats().idle, 5);
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
}

// Both families left the cloud, then recording it fails: the slots are
// never handed out (out of service, release in doubt: what `terway-cli
// mapping` shows), the pool serves its other slots, and reconcile forgets
// them once the store takes writes again.
TEST_F(PoolStoreFaultsTest, ForgetWriteFailingAfterTheUnassignKeepsTheAddressesOutOfService) {
  OneEniToShrink();
  ASSERT_TRUE(faults_->Fail(StoreWrite::kRemoveIps).ok());
  ASSERT_FALSE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(cloud_->AttachedTerwayIps().size(), 2u);  // p1's and the ENI's primary IP
  int in_doubt = 0;
  for (const auto& a : pool_->Contents().addresses) {
    if (cloud_->AttachedTerwayIps().count(a.ip)) continue;
    EXPECT_EQ(a.use, IpUse::kReleasing) << a.ip;
    EXPECT_TRUE(a.release_in_doubt) << a.ip << " gone from the cloud, kept by the store";
    in_doubt += a.release_in_doubt ? 1 : 0;
  }
  EXPECT_EQ(in_doubt, 4);
  ExpectMemoryMatchesStore();
  auto p2 = pool_->Allocate(PodNamed("p2"), milliseconds(0));
  ASSERT_TRUE(p2.ok()) << p2.error().ToString();
  EXPECT_TRUE(cloud_->AttachedTerwayIps().count(p2->ip));
  EXPECT_FALSE(pool_->Reconcile().ok());  // still failing: retried, nothing half done
  ExpectMemoryMatchesStore();

  ASSERT_TRUE(faults_->Clear().ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(pool_->Contents().addresses.size(), 2u);
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
}

// AssignIpv6Addresses answered, pairing the new IPv6s in the store fails:
// the IPv4s stay unpaired (never handed out) and the IPv6s spares, as in
// the store; the next refill pairs them without asking the cloud for more.
TEST_F(PoolStoreFaultsTest, PairWriteFailingDuringRefillIsRetriedFromTheSpares) {
  StartPool(IpStack::kDual, 2, 5);
  ASSERT_TRUE(faults_->Fail(StoreWrite::kPairIpv6).ok());
  ASSERT_FALSE(pool_->RefillOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 2);
  EXPECT_EQ(pool_->Stats().idle, 0);
  EXPECT_EQ(SpareIpv6().size(), 2u);
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
  auto half = pool_->Allocate(PodNamed("p1"), milliseconds(20));
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().code, ErrorCode::kTimeout);

  ASSERT_TRUE(faults_->Clear().ok());
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_EQ(cloud_->Calls("AssignIpv6Addresses"), 0);  // the spares were enough
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 2u);
  EXPECT_EQ(pool_->Stats().idle, 2);
  auto p1 = pool_->Allocate(PodNamed("p1"), milliseconds(0));
  ASSERT_TRUE(p1.ok()) << p1.error().ToString();
  EXPECT_FALSE(p1->ipv6.empty());
  ExpectMemoryMatchesStore();
  ExpectCloudMatchesStore();
}

// Recording a pod's pair fails: the pod gets an error, the slot stays idle
// and whole, the next ADD gets it.
TEST_F(PoolStoreFaultsTest, AllocationWriteFailingLeavesTheSlotIdleAndWhole) {
  StartPool(IpStack::kDual, 2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(faults_->Fail(StoreWrite::kAllocate).ok());
  EXPECT_FALSE(pool_->Allocate(PodNamed("p1"), milliseconds(0)).ok());
  EXPECT_EQ(pool_->Stats().idle, 2);
  EXPECT_EQ(pool_->Stats().in_use, 0);
  ExpectMemoryMatchesStore();

  ASSERT_TRUE(faults_->Clear().ok());
  auto p1 = pool_->Allocate(PodNamed("p1"), milliseconds(0));
  ASSERT_TRUE(p1.ok()) << p1.error().ToString();
  EXPECT_EQ(MemoryPairs()[p1->ip], p1->ipv6);
  ExpectMemoryMatchesStore();
}

}  // namespace
}  // namespace terway::ipam::testing
