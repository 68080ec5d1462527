// ip_stack dual: the pool hands out (IPv4, IPv6) pairs of one ENI, keeps
// both families in step with the cloud through refill, reclaim, reconcile and
// restart, and never hands out half a pair -- also when an IPv6 call fails.
// The pool runs without its worker: each test drives the jobs by hand.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "dual_stack_pool_fixture.h"
#include "ipam/exclusive.h"

namespace terway::ipam {
namespace {

using namespace dual_stack_test;  // NOLINT: the fixture and its helpers

TEST_F(DualStackPoolTest, PodGetsAnIpv4AndAnIpv6OfTheSameEni) {
  Make(3, 5);
  EXPECT_EQ(pool_->MaxPodCount(), 18);  // 3 ENIs x min(10 IPv4, 6 IPv6)
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto creates = cloud_->CreateRequests();
  ASSERT_EQ(creates.size(), 1u);
  EXPECT_EQ(creates[0].ipv6_count, creates[0].secondary_ip_count + 1);  // both families at create
  EXPECT_EQ(pool_->Stats().idle, 3);

  auto a = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  ASSERT_FALSE(a->ipv6.empty());
  EXPECT_EQ(EniOfIpv4(a->ip), a->eni_id);
  EXPECT_EQ(EniOfIpv6(a->ipv6), a->eni_id);
  auto rec = store_->FindByContainer("c-p1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->ipv6, a->ipv6);
  // Retried ADD and Get give the same pair.
  auto again = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ipv6, a->ipv6);
  auto got = pool_->Get("c-p1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->ipv6, a->ipv6);

  // Release: the pair goes back to the pool whole.
  ASSERT_TRUE(pool_->Release("c-p1").ok());
  EXPECT_EQ(pool_->Stats().idle, 3);
  EXPECT_EQ(Pairs()[a->ip], a->ipv6);
  ExpectCloudMatchesPool();
}

TEST_F(DualStackPoolTest, RefusedWhenTheInstanceTypeHasNoIpv6) {
  cloud_ = std::make_unique<FakeCloud>(InstanceLimits{4, 10, 0}, kInstance,
                                       std::vector<FakeCloud::VSwitchSpec>{{"vsw-a", 100}});
  opts_.instance_id = kInstance;
  opts_.instance_type = "ecs.v4only";
  opts_.config.ip_stack = IpStack::kDual;
  auto p = IpPool::Create(opts_, cloud_.get(), store_.get(), &clock_);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().ToString().find("EniIpv6AddressQuantity 0"), std::string::npos) << p.error().ToString();
}

// AssignIpv6Addresses fails after the IPv4s were assigned: no half pair is
// handed out, the IPv4s go back to the cloud, the next refill gets pairs.
TEST_F(DualStackPoolTest, FailedIpv6AssignGivesTheIpv4sBackAndHandsOutNoHalfPair) {
  Make(2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());  // a new ENI with 2 pairs
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p2"), milliseconds(0)).ok());
  const auto before = cloud_->AttachedTerwayIps();

  cloud_->Script("AssignIpv6Addresses", Refused("InvalidOperation.Ipv6CountExceeded"));
  EXPECT_FALSE(pool_->RefillOnce().ok());
  EXPECT_EQ(cloud_->Calls("AssignPrivateIpAddresses"), 1);
  EXPECT_EQ(cloud_->AttachedTerwayIps(), before);  // the 2 new IPv4s were given back
  EXPECT_EQ(pool_->Stats().idle, 0);
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  auto half = pool_->Allocate(Pod("p3"), milliseconds(50));
  ASSERT_FALSE(half.ok());  // nothing whole to give
  EXPECT_EQ(half.error().code, ErrorCode::kTimeout);

  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto p3 = pool_->Allocate(Pod("p3"), milliseconds(0));
  ASSERT_TRUE(p3.ok()) << p3.error().ToString();
  EXPECT_FALSE(p3->ipv6.empty());
  ExpectCloudMatchesPool();
}

// ... and when giving the IPv4s back fails too, they stay unpaired (never
// handed out) until the next refill pairs them.
TEST_F(DualStackPoolTest, UnpairedIpv4sAreNotServedUntilARefillPairsThem) {
  Make(2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p2"), milliseconds(0)).ok());
  cloud_->Script("AssignIpv6Addresses", Refused("InvalidOperation.Ipv6CountExceeded"));
  cloud_->Script("UnassignPrivateIpAddresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->RefillOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 2);
  EXPECT_EQ(pool_->Stats().idle, 0);
  EXPECT_FALSE(pool_->Allocate(Pod("p3"), milliseconds(50)).ok());

  const int assigns_before = cloud_->Calls("AssignPrivateIpAddresses");
  ASSERT_TRUE(pool_->RefillOnce().ok());
  // Paired, not replaced: no new IPv4 was asked for.
  EXPECT_EQ(cloud_->Calls("AssignPrivateIpAddresses"), assigns_before);
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(pool_->Stats().idle, 2);
  auto p3 = pool_->Allocate(Pod("p3"), milliseconds(0));
  ASSERT_TRUE(p3.ok());
  EXPECT_EQ(EniOfIpv6(p3->ipv6), p3->eni_id);
  ExpectCloudMatchesPool();
}

// A pairing that fails does not hold back the assigns planned after it:
// the pool still grows to min_pool_size; the unpaired IPv4s wait for the
// next round.
TEST_F(DualStackPoolTest, AFailedPairingDoesNotStopTheRefill) {
  Make(2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p2"), milliseconds(0)).ok());
  cloud_->Script("AssignIpv6Addresses", Refused("InvalidOperation.Ipv6CountExceeded"));
  cloud_->Script("UnassignPrivateIpAddresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->RefillOnce().ok());
  ASSERT_EQ(pool_->Stats().unpaired, 2);
  opts_.config.min_pool_size = 4;
  Restart();
  const int assigns_before = cloud_->Calls("AssignPrivateIpAddresses");

  cloud_->Script("AssignIpv6Addresses", Refused("InvalidOperation.Conflict"));  // the pairing
  (void)pool_->RefillOnce();
  EXPECT_EQ(cloud_->Calls("AssignPrivateIpAddresses"), assigns_before + 1);
  EXPECT_EQ(pool_->Stats().idle, 2);
  EXPECT_EQ(pool_->Stats().unpaired, 2);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(pool_->Stats().idle, 4);
  ExpectCloudMatchesPool();
}

// Reclaim gives back both addresses of a slot; an IPv6 unassign the cloud
// refuses puts the slot back and is retried; nothing leaks.
TEST_F(DualStackPoolTest, ReclaimUnassignsBothFamiliesAndRetriesAFailedIpv6Unassign) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  // The operator lowers the pool sizes; the daemon restarts.
  opts_.config.min_pool_size = 0;
  opts_.config.max_pool_size = 1;
  Restart();
  const size_t v6_before = cloud_->AttachedTerwayIpv6s().size();

  cloud_->Script("UnassignIpv6Addresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(cloud_->Calls("UnassignPrivateIpAddresses"), 0);  // the IPv4s stay with their IPv6s
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), v6_before);
  EXPECT_EQ(pool_->Stats().idle, 5);
  ExpectCloudMatchesPool();

  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 1);
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(cloud_->AttachedTerwayIps().size(), 2u);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().size(), 2u);
  ExpectCloudMatchesPool();
}

// Reclaim unpairs the slots in the store before it unassigns their IPv6s:
// a daemon killed right after the cloud applied the call restarts with no
// stored pair holding a dead IPv6, and nothing leaks.
TEST_F(DualStackPoolTest, ACrashDuringTheIpv6UnassignLeavesNoDeadPairInTheStore) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  opts_.config.min_pool_size = 0;
  opts_.config.max_pool_size = 1;
  Restart();
  struct Crash {};
  std::set<std::string> stored_at_call;
  cloud_->SetHook([&](const std::string& op) {
    if (op != "UnassignIpv6Addresses") return;
    stored_at_call = StoredIpv6();
    // The cloud carries the call out; the daemon dies before it hears back.
    for (const auto& e : cloud_->AllEnis()) {
      if (e.type == "Primary") continue;
      for (const auto& a : pool_->Contents().addresses) {
        if (a.use == IpUse::kReleasing && !a.ipv6.empty() && a.eni_id == e.network_interface_id) {
          cloud_->DropIpv6BehindOurBack(a.ipv6);
        }
      }
    }
    throw Crash{};
  });
  std::set<std::string> in_flight;
  EXPECT_THROW(pool_->ReclaimOnce(), Crash);
  cloud_->SetHook(nullptr);
  for (const auto& a : pool_->Contents().addresses) {
    if (a.use == IpUse::kReleasing && !a.ipv6.empty()) in_flight.insert(a.ipv6);
  }
  ASSERT_FALSE(in_flight.empty());
  for (const auto& v6 : in_flight) EXPECT_EQ(stored_at_call.count(v6), 0u) << v6 << " still paired in the store";

  Restart();
  for (const auto& v6 : in_flight) EXPECT_EQ(StoredIpv6().count(v6), 0u) << v6;
  ExpectCloudMatchesPool();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectCloudMatchesPool();
}

// Unpaired IPv4s ahead of the slots used to shift the IPv4 batches against
// the IPv6 ones: a refused IPv6 call then left slots of the next batch to
// lose their IPv4 while their IPv6 stayed assigned, forgotten by the pool.
// Each slot's two addresses now go in one action.
TEST_F(DualStackPoolTest, AFailedReclaimBatchSplitsNoSlot) {
  Make(13, 13, {4, 20, 20});
  ASSERT_TRUE(pool_->RefillOnce().ok());
  opts_.config.min_pool_size = 18;
  opts_.config.max_pool_size = 18;
  Restart();
  cloud_->Script("AssignIpv6Addresses", Refused("InvalidOperation.Ipv6CountExceeded"));
  cloud_->Script("UnassignPrivateIpAddresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->RefillOnce().ok());
  ASSERT_EQ(pool_->Stats().unpaired, 5);
  ASSERT_EQ(pool_->Stats().idle, 13);
  // A pod keeps the unpaired IPv4s' ENI (it is not deleted whole).
  auto p1 = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(p1.ok());
  opts_.config.min_pool_size = 0;
  opts_.config.max_pool_size = 1;
  Restart();
  ASSERT_EQ(pool_->Stats().unpaired, 5);

  cloud_->Script("UnassignIpv6Addresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->ReclaimOnce().ok());
  ExpectCloudMatchesPool();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectCloudMatchesPool();
}

// The IPv6s went, the IPv4 unassign is refused: the IPv4s are unpaired and
// the next reclaim gives them back (they serve no pod).
TEST_F(DualStackPoolTest, IpsWhoseIpv4UnassignFailedAreGivenBackNextRound) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), milliseconds(0)).ok());
  opts_.config.min_pool_size = 0;
  opts_.config.max_pool_size = 1;
  Restart();
  cloud_->Script("UnassignPrivateIpAddresses", Refused("InvalidOperation.Conflict"));
  EXPECT_FALSE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 4);
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectCloudMatchesPool();

  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().unpaired, 0);
  EXPECT_EQ(cloud_->AttachedTerwayIps().size(), 2u);
  ExpectCloudMatchesPool();
}

// An IPv6 the cloud lost under a pod ends the pod's allocation (as a lost
// IPv4 does); the slot is paired again by the next refill. A leaked IPv6
// the store does not know is adopted and, serving no pod, given back.
TEST_F(DualStackPoolTest, ReconcileAppliesTheIpv4RulesToIpv6) {
  Make(2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(a.ok());
  cloud_->DropIpv6BehindOurBack(a->ipv6);
  ASSERT_TRUE(pool_->Reconcile().ok());
  auto lost = pool_->TakeLostAllocations();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].container_id, "c-p1");
  EXPECT_EQ(lost[0].ipv6, a->ipv6);
  auto rec = store_->FindByContainer("c-p1");
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
  EXPECT_EQ(Pairs()[a->ip], "");
  EXPECT_EQ(pool_->Stats().unpaired, 1);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_NE(Pairs()[a->ip], "");
  EXPECT_NE(Pairs()[a->ip], a->ipv6);
  ExpectCloudMatchesPool();

  const std::string leaked = cloud_->AddIpv6BehindOurBack(a->eni_id);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(SpareIpv6(), std::set<std::string>{leaked});
  EXPECT_EQ(pool_->Stats().spare_ipv6, 1);
  ExpectCloudMatchesPool();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_TRUE(SpareIpv6().empty());
  EXPECT_EQ(pool_->Stats().spare_ipv6, 0);
  EXPECT_EQ(cloud_->AttachedTerwayIpv6s().count(leaked), 0u);
  ExpectCloudMatchesPool();
}

// The instance's primary ENI may hold an IPv6 of its own (RunInstances'
// Ipv6AddressCount) and carry the tags terway's ENIs carry (RunInstances'
// Tag.N tags the primary ENI too): it is the node's interface, never adopted,
// so its IPv6 is never paired, spare, given to a pod or given back.
TEST_F(DualStackPoolTest, ThePrimaryEnisOwnIpv6IsNeverAPodAddress) {
  Make(2, 5);
  cloud_->TagPrimaryEni({{"creator", "terway"}, {kInstanceTagKey, kInstance}});
  const std::string own = cloud_->AddIpv6BehindOurBack("eni-primary");
  ASSERT_FALSE(own.empty());
  auto expect_untouched = [&](const std::string& when) {
    for (const auto& e : pool_->Contents().enis) {
      EXPECT_NE(e.eni_id, "eni-primary") << when << ": the primary ENI was adopted";
      EXPECT_EQ(std::count(e.spare_ipv6.begin(), e.spare_ipv6.end(), own), 0) << when;
    }
    for (const auto& [ip, v6] : Pairs()) EXPECT_NE(v6, own) << when << ": paired with " << ip;
    EXPECT_EQ(EniOfIpv6(own), "eni-primary") << when << ": the node's own IPv6 was given back";
  };
  for (int round = 0; round < 2; round++) {
    ASSERT_TRUE(pool_->Reconcile().ok());
    ASSERT_TRUE(pool_->RefillOnce().ok());
    for (int i = 0; i < 2; i++) {  // min_pool_size 2: idle after the refill
      auto a = pool_->Allocate(Pod(fmt::format("p{}-{}", round, i)), milliseconds(0));
      ASSERT_TRUE(a.ok()) << a.error().ToString();
      EXPECT_NE(a->eni_id, "eni-primary");
      EXPECT_NE(a->ipv6, own);
    }
    ASSERT_TRUE(pool_->ReclaimOnce().ok());
    expect_untouched(round == 0 ? "first start" : "after a restart");
    Restart();
  }
}

// A lost IPv6 ends its pod's allocation, but the old sandbox keeps the
// slot's IPv4 wired until the daemon tears it down: no pod gets that IPv4
// (re-paired) before on_address_lost has returned for it. Mirror: a lost
// IPv4 leaves its IPv6 assigned and wired: it is not adopted as a spare nor
// paired before the teardown.
TEST_F(DualStackPoolTest, LostAddressesServeNoPodBeforeTheirSandboxIsTornDown) {
  std::set<std::string> torn_down;  // container ids on_address_lost was given
  opts_.on_address_lost = [&](const std::vector<store::AllocationRecord>& recs) {
    for (const auto& r : recs) torn_down.insert(r.container_id);
  };
  Make(2, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(a.ok());
  cloud_->DropIpv6BehindOurBack(a->ipv6);
  ASSERT_TRUE(pool_->Reconcile().ok());  // no worker: nothing delivered yet
  ASSERT_TRUE(pool_->RefillOnce().ok());
  for (int i = 2; i < 8; ++i) {
    auto got = pool_->Allocate(Pod("p" + std::to_string(i)), milliseconds(0));
    if (!got.ok()) break;
    EXPECT_NE(got->ip, a->ip) << "handed out while c-p1's sandbox may still have it";
  }
  EXPECT_TRUE(torn_down.empty());

  auto b = pool_->Get("c-p2");
  ASSERT_TRUE(b.ok() && b->has_value());
  cloud_->DropIpBehindOurBack((*b)->ip);
  ASSERT_TRUE(pool_->Reconcile().ok());
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_EQ(SpareIpv6().count((*b)->ipv6), 0u) << "adopted while c-p2's sandbox may still have it";
  for (const auto& [v4, v6] : Pairs()) EXPECT_NE(v6, (*b)->ipv6) << v4;

  // Torn down (here: handed over to the caller): both serve pods again.
  EXPECT_EQ(pool_->TakeLostAllocations().size(), 2u);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_NE(Pairs()[a->ip], "");
  ExpectCloudMatchesPool();
}

// A restarted pool serves the same pairs: from the store, checked against
// the cloud.
TEST_F(DualStackPoolTest, RestartKeepsPairs) {
  Make(3, 5);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), milliseconds(0));
  ASSERT_TRUE(a.ok());
  const auto pairs = Pairs();
  Restart();
  EXPECT_EQ(Pairs(), pairs);
  auto got = pool_->Get("c-p1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->ipv6, a->ipv6);
  EXPECT_EQ(pool_->Stats().idle, 2);
  EXPECT_EQ(pool_->Stats().in_use, 1);
  EXPECT_EQ(cloud_->Calls("AssignIpv6Addresses"), 0);  // nothing had to be repaired
  ExpectCloudMatchesPool();
}

TEST(DualStackExclusive, EniIsCreatedWithOneIpv6ForThePod) {
  auto dir = fs::temp_directory_path() / ("terway-dual-excl-" + terway::testing::UniqueSuffix());
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  auto st = store::StateStore::Open((dir / "state.db").string());
  ASSERT_TRUE(st.ok());
  FakeCloud cloud({4, 10, 6}, "i-x", {{"vsw-a", 100}});
  FakeClock clock;
  PoolOptions o;
  o.instance_id = "i-x";
  o.instance_type = "ecs.test";
  o.vswitch_ids = {"vsw-a"};
  o.config.eni_tags["creator"] = "terway";
  o.config.ip_stack = IpStack::kDual;
  auto a = ExclusiveEniAllocator::Create(o, &cloud, st->get(), &clock);
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  auto got = (*a)->Allocate(Pod("p1"));
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  ASSERT_EQ(cloud.CreateRequests().size(), 1u);
  EXPECT_EQ(cloud.CreateRequests()[0].ipv6_count, 1);
  ASSERT_FALSE(got->ipv6.empty());
  std::string eni_of_ipv6;
  for (const auto& e : cloud.AllEnis()) {
    for (const auto& v6 : e.ipv6_sets) {
      if (v6 == got->ipv6) eni_of_ipv6 = e.network_interface_id;
    }
  }
  EXPECT_EQ(eni_of_ipv6, got->eni_id);
  auto again = (*a)->Get("c-p1");
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->ipv6, got->ipv6);

  // An ENI that comes without its IPv6: no pod gets half of it, the ENI is
  // given back.
  cloud.CreateWithoutIpv6(true);
  auto half = (*a)->Allocate(Pod("p2"));
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().ToString().find("without the IPv6"), std::string::npos) << half.error().ToString();
  auto rec = st->get()->FindByContainer("c-p2");
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->has_value());
  int secondary = 0;
  for (const auto& e : cloud.AllEnis()) secondary += e.type == "Primary" ? 0 : 1;
  EXPECT_EQ(secondary, 1);  // p1's only
}

}  // namespace
}  // namespace terway::ipam
