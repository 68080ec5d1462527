#include "ipam/pool.h"

#include <atomic>
#include <filesystem>
#include <latch>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "test_util.h"

namespace terway::ipam {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::CloudError;
using testing::FakeCloud;

constexpr const char* kInstance = "i-test";

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("terway-pool-" + terway::testing::UniqueSuffix());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& n) const { return (path_ / n).string(); }

 private:
  fs::path path_;
};

PodIdentity Pod(const std::string& name, const std::string& cid = "") {
  PodIdentity p;
  p.namespace_ = "default";
  p.name = name;
  p.uid = "uid-" + name;
  p.container_id = cid.empty() ? "c-" + name : cid;
  return p;
}

// One pool on a fake cloud and a real store in a temp dir; everything torn
// down on scope exit (the pool's worker stops first).
class PoolTest : public ::testing::Test {
 protected:
  void SetUpPool(InstanceLimits limits, std::vector<FakeCloud::VSwitchSpec> vsw,
                 std::function<void(PoolConfig&)> tweak = nullptr, bool start = true) {
    cloud_ = std::make_unique<FakeCloud>(limits, kInstance, vsw);
    auto st = store::StateStore::Open(dir_.File("state.db"));
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    opts_.instance_id = kInstance;
    opts_.instance_type = "ecs.test";
    opts_.vswitch_ids.clear();  // a second SetUpPool must not list the first one's vSwitches again
    for (const auto& v : vsw) opts_.vswitch_ids.push_back(v.id);
    opts_.config.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
    opts_.config.eni_tags["creator"] = "terway";
    opts_.config.max_pool_size = 5;  // the pool size of upstream Terway's chart
    opts_.config.idle_ip_reclaim_interval = seconds(3600);  // tests drive reclaim by hand
    opts_.config.ip_pool_sync_period = seconds(3600);
    if (tweak) tweak(opts_.config);
    NewPool(start);
  }
  void NewPool(bool start = true) {
    pool_.reset();
    auto p = IpPool::Create(opts_, cloud_.get(), store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    pool_ = std::move(p).value();
    if (start) pool_->Start();
  }
  void TearDown() override { pool_.reset(); }

  // The daemon's view equals the cloud's: every IP the pool holds is on a
  // terway ENI attached to the instance, and vice versa.
  void ExpectCloudMatchesPool() {
    pool_->Stop();  // quiesce: no cloud call in flight while we compare
    auto s = pool_->Stats();
    auto cloud_ips = cloud_->AttachedTerwayIps();
    EXPECT_EQ(static_cast<size_t>(s.idle + s.in_use + s.reserved + s.releasing), cloud_ips.size());
    auto ips = store_->ListIps();
    ASSERT_TRUE(ips.ok());
    std::set<std::string> stored;
    for (const auto& r : *ips) stored.insert(r.ip);
    EXPECT_EQ(stored, cloud_ips);
  }

  TempDir dir_;
  FakeClock clock_;
  PoolOptions opts_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<IpPool> pool_;
};

TEST_F(PoolTest, FirstPodCreatesTaggedEniAndWarmsThePool) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  auto a = pool_->Allocate(Pod("p1"), seconds(10));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_FALSE(a->eni_id.empty());
  EXPECT_FALSE(a->eni_mac.empty());
  EXPECT_EQ(a->vswitch_id, "vsw-a");
  auto enis = cloud_->AllEnis();
  bool found = false;
  for (const auto& e : enis) {
    if (e.network_interface_id != a->eni_id) continue;
    found = true;
    EXPECT_EQ(e.status, cloud::kEniInUse);
    std::map<std::string, std::string> tags;
    for (const auto& t : e.tags) tags[t.key] = t.value;
    EXPECT_EQ(tags["creator"], "terway");
    EXPECT_EQ(tags[kInstanceTagKey], kInstance);
  }
  EXPECT_TRUE(found);
  auto s = pool_->Stats();
  EXPECT_EQ(s.in_use, 1);
  EXPECT_EQ(s.idle, 5);  // batched up to max_pool_size, not one call per pod
  EXPECT_EQ(cloud_->Calls("CreateNetworkInterface"), 1);
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, AllocateIsIdempotentAndReleaseTwiceIsFine) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  auto a = pool_->Allocate(Pod("p1"), seconds(10));
  ASSERT_TRUE(a.ok());
  auto b = pool_->Allocate(Pod("p1"), seconds(10));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->ip, b->ip);
  EXPECT_EQ(pool_->Stats().in_use, 1);
  auto got = pool_->Get("c-p1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->ip, a->ip);
  EXPECT_TRUE(pool_->Release("c-p1").ok());
  EXPECT_TRUE(pool_->Release("c-p1").ok());
  EXPECT_TRUE(pool_->Release("never-seen").ok());
  EXPECT_EQ(pool_->Stats().in_use, 0);
  EXPECT_FALSE(pool_->Get("c-p1")->has_value());
}

TEST_F(PoolTest, ConcurrentRequestForSamePodIsRefusedRetryably) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  std::latch entered(1), release(1);
  std::atomic<bool> blocked{false};
  cloud_->SetHook([&](const std::string& op) {
    if (op == "CreateNetworkInterface" && !blocked.exchange(true)) {
      entered.count_down();
      release.wait();
    }
  });
  std::thread first([&] {
    auto a = pool_->Allocate(Pod("p1", "c-1"), seconds(10));
    EXPECT_TRUE(a.ok());
  });
  entered.wait();
  auto second = pool_->Allocate(Pod("p1", "c-2"), seconds(10));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(second.error().retryable);
  release.count_down();
  first.join();
}

TEST_F(PoolTest, BurstOfHundredPodsCostsAboutTenCalls) {
  SetUpPool({6, 20}, {{"vsw-a", 1000}});
  // The first cloud call holds until all 100 pods are queued, as when a
  // Deployment scales up faster than one API round trip (and so the test
  // does not depend on thread timing, e.g. under sanitizers).
  std::atomic<bool> first{true};
  cloud_->SetHook([&](const std::string& op) {
    if (op != "CreateNetworkInterface" || !first.exchange(false)) return;
    auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (pool_->Stats().waiting < 100 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  std::vector<std::thread> threads;
  std::vector<std::string> ips(100);
  std::atomic<int> failures{0};
  for (int i = 0; i < 100; ++i) {
    threads.emplace_back([&, i] {
      auto a = pool_->Allocate(Pod("burst-" + std::to_string(i)), seconds(30));
      if (a.ok()) ips[i] = a->ip;
      else {
        if (failures++ == 0) ADD_FAILURE() << a.error().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(std::set<std::string>(ips.begin(), ips.end()).size(), 100u);
  int calls = cloud_->Calls("AssignPrivateIpAddresses") + cloud_->Calls("CreateNetworkInterface");
  // 100 IPs at 10 per call = 10 calls; allow a few for the first lone pod.
  EXPECT_LE(calls, 14) << "assign=" << cloud_->Calls("AssignPrivateIpAddresses")
                       << " create=" << cloud_->Calls("CreateNetworkInterface");
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, ChurnUnderThrottlingNeverGivesOneIpToTwoPods) {
  SetUpPool({5, 10}, {{"vsw-a", 1000}}, [](PoolConfig& c) {
    c.max_pool_size = 3;
  });
  cloud_->SetRandomFaults(0.2, 0.05, 42);
  std::mutex mu;
  std::map<std::string, std::string> owner;  // ip -> container
  std::atomic<int> violations{0}, allocated{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        std::string cid = fmt::format("t{}-{}", t, i);
        auto a = pool_->Allocate(Pod(fmt::format("pod-{}-{}", t, i), cid), seconds(30));
        if (!a.ok()) {
          errors++;
          ADD_FAILURE() << a.error().ToString();
          continue;
        }
        allocated++;
        {
          std::lock_guard l(mu);
          if (!owner.emplace(a->ip, cid).second) violations++;
        }
        std::this_thread::yield();
        {
          std::lock_guard l(mu);
          owner.erase(a->ip);
        }
        ASSERT_TRUE(pool_->Release(cid).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(allocated.load(), 300);
  EXPECT_EQ(pool_->Stats().allocations_total, 300u);
  EXPECT_EQ(pool_->Stats().releases_total, 300u);
  EXPECT_TRUE(pool_->Allocations()->empty());
  EXPECT_EQ(pool_->Stats().in_use, 0);
  EXPECT_TRUE(store_->ListAllocations()->empty());
  cloud_->SetRandomFaults(0, 0, 1);
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, NeverMoreThanMaxPods) {
  SetUpPool({3, 4}, {{"vsw-a", 100}});  // (3-1) x 4 = 8
  EXPECT_EQ(pool_->MaxPodCount(), 8);
  for (int i = 0; i < 8; ++i) {
    auto a = pool_->Allocate(Pod("p" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(a.ok()) << i << ": " << a.error().ToString();
  }
  auto ninth = pool_->Allocate(Pod("p8"), seconds(10));
  ASSERT_FALSE(ninth.ok());
  EXPECT_EQ(ninth.error().code, ErrorCode::kExhausted);
  EXPECT_NE(ninth.error().ToString().find("maximum of 8 pod IPs"), std::string::npos)
      << ninth.error().ToString();
  EXPECT_NE(ninth.error().ToString().find("default/p8"), std::string::npos);
  ASSERT_TRUE(pool_->Release("c-p3").ok());
  EXPECT_TRUE(pool_->Allocate(Pod("p8"), seconds(10)).ok());
}

TEST_F(PoolTest, ExhaustedVSwitchIsSkippedThenAllExhaustedIsNamed) {
  // The stale counts are set before the pool starts: its worker reads them
  // (DescribeVSwitches) at once, and a true 0 read first would make the pool
  // skip vsw-a without ever hearing IpNotEnough (seen under TSan's timing).
  SetUpPool({4, 10}, {{"vsw-a", 0}, {"vsw-b", 100}}, nullptr, /*start=*/false);
  cloud_->SetReportedAvailable("vsw-a", 100);  // stale: the API will say IpNotEnough
  pool_->Start();
  auto a = pool_->Allocate(Pod("p1"), seconds(10));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->vswitch_id, "vsw-b");
  // Later, vsw-b runs dry too while its ENI is full.
  pool_->Stop();
  SetUpPool({4, 2}, {{"vsw-a", 0}, {"vsw-b", 2}}, nullptr, /*start=*/false);
  cloud_->SetReportedAvailable("vsw-a", 100);
  cloud_->SetReportedAvailable("vsw-b", 100);
  pool_->Start();
  ASSERT_TRUE(pool_->Allocate(Pod("q1"), seconds(10)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("q2"), seconds(10)).ok());
  auto third = pool_->Allocate(Pod("q3"), seconds(10));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kExhausted);
  EXPECT_NE(third.error().ToString().find("vsw-a (InvalidVSwitchId.IpNotEnough)"), std::string::npos)
      << third.error().ToString();
  EXPECT_NE(third.error().ToString().find("vsw-b (InvalidVSwitchId.IpNotEnough)"), std::string::npos)
      << third.error().ToString();
}

TEST_F(PoolTest, EniQuotaStopsCreationAndUndoesTheCreatedEni) {
  // The instance says 3 ENIs, but someone else's ENI occupies a slot.
  SetUpPool({3, 2}, {{"vsw-a", 100}}, [](PoolConfig& c) { c.max_pool_size = 0; });
  cloud_->AttachForeignEni();
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), seconds(10)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p2"), seconds(10)).ok());
  auto third = pool_->Allocate(Pod("p3"), seconds(10));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kExhausted);
  EXPECT_NE(third.error().ToString().find("EniPerInstanceLimitExceeded"), std::string::npos)
      << third.error().ToString();
  for (const auto& e : cloud_->AllEnis()) {
    EXPECT_NE(e.status, cloud::kEniAvailable) << e.network_interface_id << " leaked";
  }
  // Creation stays paused: a second pod does not cost another failed create.
  int creates = cloud_->Calls("CreateNetworkInterface");
  EXPECT_FALSE(pool_->Allocate(Pod("p4"), seconds(10)).ok());
  EXPECT_EQ(cloud_->Calls("CreateNetworkInterface"), creates);
}

// Found by the chaos e2e test: terwayd killed between an ENI's attach and
// its record; the next terwayd read the cloud at start while the ENI was
// still attaching, so it did not know it. On a node that needs that slot,
// every pod then failed "the instance cannot attach more ENIs" until the next
// periodic reconcile (ip_pool_sync_period, 2 minutes by default). The quota
// error itself says the cloud holds more ENIs than the pool knows: read it
// at once and adopt ours.
TEST_F(PoolTest, EniQuotaHitByAnUnrecordedEniOfOursAdoptsItAtOnce) {
  SetUpPool({3, 2}, {{"vsw-a", 100}}, [](PoolConfig& c) { c.max_pool_size = 0; });
  const std::string hidden = cloud_->AttachUnrecordedTerwayEni("vsw-a", 2);
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), seconds(10)).ok());
  ASSERT_TRUE(pool_->Allocate(Pod("p2"), seconds(10)).ok());
  // The pool's own ENI is full; the third slot is taken by the hidden one.
  auto third = pool_->Allocate(Pod("p3"), seconds(10));
  ASSERT_TRUE(third.ok()) << third.error().ToString();
  EXPECT_EQ(third->eni_id, hidden);
  auto fourth = pool_->Allocate(Pod("p4"), seconds(10));
  ASSERT_TRUE(fourth.ok()) << fourth.error().ToString();
  EXPECT_EQ(fourth->eni_id, hidden);
  for (const auto& e : cloud_->AllEnis()) {
    EXPECT_NE(e.status, cloud::kEniAvailable) << e.network_interface_id << " leaked";
  }
}

// Upstream Terway's idle reclaim: what is above max_pool_size goes at the
// next check whatever its age; below it, only once the pool has been quiet
// (no allocation, no release) for idle_ip_reclaim_after, a batch per
// idle_ip_reclaim_interval, down to min_pool_size.
TEST_F(PoolTest, IdleReclaimAsUpstream) {
  SetUpPool({4, 10}, {{"vsw-a", 100}}, [](PoolConfig& c) {
    c.max_pool_size = 6;
    c.min_pool_size = 1;
    c.idle_ip_reclaim_after = minutes(30);
    c.idle_ip_reclaim_interval = minutes(10);
    c.idle_ip_reclaim_batch_size = 2;
  });
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(pool_->Allocate(Pod("p" + std::to_string(i)), seconds(10)).ok());
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(pool_->Release("c-p" + std::to_string(i)).ok());
  pool_->Stop();  // drive the background work by hand from here
  ASSERT_GT(pool_->Stats().idle, 6);
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 6) << "the excess above max_pool_size goes at once, however young";
  clock_.Advance(minutes(29));
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 6) << "not quiet for idle_ip_reclaim_after yet";
  clock_.Advance(minutes(2));
  ASSERT_TRUE(pool_->ReclaimOnce().ok());  // quiet: the interval starts now
  EXPECT_EQ(pool_->Stats().idle, 6);
  clock_.Advance(minutes(12));  // > interval x (1 + jitter 0.1)
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 4) << "one batch of idle_ip_reclaim_batch_size";
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 4) << "one batch per interval";
  clock_.Advance(minutes(12));
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 2);
  clock_.Advance(minutes(12));
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 1) << "never below min_pool_size";
  // A pod comes and goes: busy again, nothing more until quiet.
  ASSERT_TRUE(pool_->Allocate(Pod("q"), seconds(10)).ok());
  ASSERT_TRUE(pool_->Release("c-q").ok());
  clock_.Advance(minutes(12));
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 1);
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, EmptyEniIsDetachedAndDeletedButNeverThePrimary) {
  SetUpPool({4, 10}, {{"vsw-a", 100}}, [](PoolConfig& c) {
    c.max_pool_size = 0;
    c.idle_ip_reclaim_batch_size = 20;
  });
  ASSERT_TRUE(pool_->Allocate(Pod("p1"), seconds(10)).ok());
  ASSERT_TRUE(pool_->Release("c-p1").ok());
  pool_->Stop();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().enis, 0);
  auto enis = cloud_->AllEnis();
  ASSERT_EQ(enis.size(), 1u);
  EXPECT_EQ(enis[0].network_interface_id, "eni-primary");
  EXPECT_EQ(cloud_->Calls("DetachNetworkInterface"), 1);
  EXPECT_TRUE(store_->ListEnis()->empty());
}

TEST_F(PoolTest, StatefulSetPodGetsItsIpBackWithinTheWindowOnly) {
  SetUpPool({4, 10}, {{"vsw-a", 100}}, [](PoolConfig& c) {
    c.max_pool_size = 0;
    c.ip_reservation_window = minutes(5);
  });
  PodIdentity web = Pod("web-0", "c-web-a");
  web.owner_kind = "StatefulSet";
  auto first = pool_->Allocate(web, seconds(10));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(pool_->Release("c-web-a").ok());
  EXPECT_EQ(pool_->Stats().reserved, 1);
  // Other pods never receive the reserved address during the window.
  for (int i = 0; i < 12; ++i) {
    auto o = pool_->Allocate(Pod("other-" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(o.ok()) << o.error().ToString();
    EXPECT_NE(o->ip, first->ip);
  }
  clock_.Advance(minutes(4));
  web.container_id = "c-web-b";
  auto again = pool_->Allocate(web, seconds(10));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ip, first->ip);
  EXPECT_TRUE(again->reused_reservation);
  EXPECT_FALSE(store_->FindReservation({"default", "web-0"})->has_value());

  // After the window the reservation lapses and the IP returns to the pool.
  ASSERT_TRUE(pool_->Release("c-web-b").ok());
  clock_.Advance(minutes(6));
  pool_->Stop();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().reserved, 0);
  web.container_id = "c-web-c";
  pool_->Start();
  auto late = pool_->Allocate(web, seconds(10));
  ASSERT_TRUE(late.ok());
  EXPECT_FALSE(late->reused_reservation);
}

TEST_F(PoolTest, AnnotationMakesAnyPodSticky) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  PodIdentity p = Pod("api", "c-1");
  p.owner_kind = "ReplicaSet";
  p.annotations[kPodIpReservationAnnotation] = "true";
  auto a = pool_->Allocate(p, seconds(10));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(pool_->Release("c-1").ok());
  p.container_id = "c-2";
  auto b = pool_->Allocate(p, seconds(10));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->ip, b->ip);
  // Without the annotation a ReplicaSet pod is not sticky.
  PodIdentity q = Pod("plain", "c-3");
  q.owner_kind = "ReplicaSet";
  ASSERT_TRUE(pool_->Allocate(q, seconds(10)).ok());
  ASSERT_TRUE(pool_->Release("c-3").ok());
  EXPECT_EQ(pool_->Stats().reserved, 0);
}

// Pod GC is the daemon's (it tears the pod's wiring down first): Reconcile
// never frees an address because its pod looks gone.
TEST_F(PoolTest, ReconcileNeverFreesAPodsAddress) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(pool_->Allocate(Pod(n), seconds(10)).ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  for (const char* c : {"c-a", "c-b", "c-c"}) EXPECT_TRUE(pool_->Get(c)->has_value()) << c;
  EXPECT_EQ(pool_->Stats().in_use, 3);
}

TEST_F(PoolTest, ReconcileDropsIpsTheCloudNoLongerListsAndAdoptsLostResponses) {
  // No worker: every cloud step below is driven by hand.
  SetUpPool({4, 10}, {{"vsw-a", 100}}, [](PoolConfig& c) {
    c.min_pool_size = 2;
    c.max_pool_size = 2;
  }, /*start=*/false);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("a"), seconds(1));
  auto b = pool_->Allocate(Pod("b"), seconds(1));
  ASSERT_TRUE(a.ok() && b.ok());
  // Drop the one that is a secondary IP (an ENI's primary IP cannot vanish
  // without its ENI).
  const bool a_secondary = a->ip != a->eni_primary_ip;
  const std::string lost_ip = a_secondary ? a->ip : b->ip;
  const std::string lost_cid = a_secondary ? "c-a" : "c-b";
  const std::string kept_cid = a_secondary ? "c-b" : "c-a";
  cloud_->DropIpBehindOurBack(lost_ip);
  // An assign whose response is lost: the cloud did it, the pool does not know.
  cloud_->ApplyThenFail("AssignPrivateIpAddresses");
  EXPECT_FALSE(pool_->RefillOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 0);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_FALSE(pool_->Get(lost_cid)->has_value()) << "allocation on a vanished IP kept";
  // The daemon learns of it, to tear the sandbox's wiring down.
  auto lost = pool_->TakeLostAllocations();
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].container_id, lost_cid);
  EXPECT_EQ(lost[0].ip, lost_ip);
  EXPECT_TRUE(pool_->Get(kept_cid)->has_value());
  EXPECT_EQ(pool_->Stats().idle, 2) << "IPs of the lost response adopted";
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, LeakedEniIsDeletedAfterGracePeriod) {
  SetUpPool({4, 10}, {{"vsw-a", 100}}, [](PoolConfig& c) {
    c.min_pool_size = 1;
    c.leaked_eni_grace_period = minutes(10);
  }, /*start=*/false);
  // Failure between steps: created, attach fails, and the undo fails too.
  cloud_->Script("AttachNetworkInterface", CloudError("InternalError"));
  cloud_->Script("DeleteNetworkInterface", CloudError("InternalError"));
  EXPECT_FALSE(pool_->RefillOnce().ok());
  auto leaked = [&] {
    int n = 0;
    for (const auto& e : cloud_->AllEnis()) n += e.status == cloud::kEniAvailable ? 1 : 0;
    return n;
  };
  ASSERT_EQ(leaked(), 1);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(leaked(), 1) << "deleted inside the grace period";
  clock_.Advance(minutes(11));
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(leaked(), 0);
}

TEST_F(PoolTest, RestartKeepsAllocationsAndServesTheSameIps) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  std::map<std::string, std::string> before;
  for (int i = 0; i < 6; ++i) {
    auto a = pool_->Allocate(Pod("p" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(a.ok());
    before["c-p" + std::to_string(i)] = a->ip;
  }
  // Restart: a new pool object on the same store and cloud.
  NewPool();
  EXPECT_EQ(pool_->Stats().in_use, 6);
  for (const auto& [cid, ip] : before) {
    auto g = pool_->Get(cid);
    ASSERT_TRUE(g.ok() && g->has_value());
    EXPECT_EQ((*g)->ip, ip);
  }
  auto again = pool_->Allocate(Pod("p0"), seconds(10));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ip, before["c-p0"]);
  auto fresh = pool_->Allocate(Pod("new"), seconds(10));
  ASSERT_TRUE(fresh.ok());
  for (const auto& [cid, ip] : before) EXPECT_NE(fresh->ip, ip);
  ExpectCloudMatchesPool();
}

TEST_F(PoolTest, ReservationSurvivesRestart) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  PodIdentity web = Pod("db-0", "c-1");
  web.owner_kind = "StatefulSet";
  auto a = pool_->Allocate(web, seconds(10));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(pool_->Release("c-1").ok());
  NewPool();
  EXPECT_EQ(pool_->Stats().reserved, 1);
  for (int i = 0; i < 8; ++i) {
    auto o = pool_->Allocate(Pod("x" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(o.ok());
    EXPECT_NE(o->ip, a->ip);
  }
  web.container_id = "c-2";
  auto b = pool_->Allocate(web, seconds(10));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->ip, a->ip);
}

TEST_F(PoolTest, TimeoutNamesTheLastCloudError) {
  SetUpPool({4, 10}, {{"vsw-a", 100}});
  cloud_->SetRandomFaults(1.0, 0, 7);  // every call throttled
  auto a = pool_->Allocate(Pod("p1"), milliseconds(400));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, ErrorCode::kTimeout);
  EXPECT_NE(a.error().ToString().find("Throttling"), std::string::npos) << a.error().ToString();
}

}  // namespace
}  // namespace terway::ipam
