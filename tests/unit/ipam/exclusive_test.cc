#include "ipam/exclusive.h"

#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "test_util.h"

namespace terway::ipam {
namespace {

namespace fs = std::filesystem;
using std::chrono::minutes;
using testing::CloudError;
using testing::FakeCloud;

class ExclusiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("terway-excl-" + terway::testing::UniqueSuffix());
    fs::create_directories(dir_);
    auto st = store::StateStore::Open((dir_ / "state.db").string());
    ASSERT_TRUE(st.ok());
    store_ = std::move(st).value();
  }
  void TearDown() override {
    alloc_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Make(InstanceLimits limits, std::vector<FakeCloud::VSwitchSpec> vsw,
            std::chrono::seconds sync_period = std::chrono::seconds(120),
            VSwitchSelectionPolicy policy = VSwitchSelectionPolicy::kListOrder) {
    cloud_ = std::make_unique<FakeCloud>(limits, "i-x", vsw);
    PoolOptions o;
    o.instance_id = "i-x";
    o.instance_type = "ecs.test";
    for (const auto& v : vsw) o.vswitch_ids.push_back(v.id);
    o.config.vswitch_selection_policy = policy;
    o.config.eni_tags["creator"] = "terway";
    o.config.leaked_eni_grace_period = minutes(10);
    o.config.ip_pool_sync_period = sync_period;
    auto a = ExclusiveEniAllocator::Create(o, cloud_.get(), store_.get(), &clock_);
    ASSERT_TRUE(a.ok());
    alloc_ = std::move(a).value();
  }
  int TerwayEnisInCloud() {
    int n = 0;
    for (const auto& e : cloud_->AllEnis()) n += e.type == "Primary" ? 0 : 1;
    return n;
  }
  PodIdentity Pod(const std::string& name) {
    PodIdentity p;
    p.namespace_ = "ns";
    p.name = name;
    p.uid = "u-" + name;
    p.container_id = "c-" + name;
    return p;
  }

  fs::path dir_;
  FakeClock clock_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<ExclusiveEniAllocator> alloc_;
};

TEST_F(ExclusiveTest, OneEniPerPodUpToEniQuantityMinusOne) {
  Make({3, 10}, {{"vsw-a", 100}});
  EXPECT_EQ(alloc_->MaxPodCount(), 2);
  auto a = alloc_->Allocate(Pod("a"));
  auto b = alloc_->Allocate(Pod("b"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->eni_id, b->eni_id);
  EXPECT_EQ(a->ip, a->eni_primary_ip);
  EXPECT_FALSE(a->eni_mac.empty());
  auto again = alloc_->Allocate(Pod("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->eni_id, a->eni_id);
  auto c = alloc_->Allocate(Pod("c"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kExhausted);
  EXPECT_NE(c.error().ToString().find("maximum of 2"), std::string::npos) << c.error().ToString();
  EXPECT_EQ(TerwayEnisInCloud(), 2);
}

TEST_F(ExclusiveTest, ReleaseDetachesAndDeletesAndIsIdempotent) {
  Make({3, 10}, {{"vsw-a", 100}});
  ASSERT_TRUE(alloc_->Allocate(Pod("a")).ok());
  ASSERT_TRUE(alloc_->Release("c-a").ok());
  ASSERT_TRUE(alloc_->Release("c-a").ok());
  EXPECT_EQ(TerwayEnisInCloud(), 0);
  EXPECT_TRUE(store_->ListEnis()->empty());
  EXPECT_FALSE(alloc_->Get("c-a")->has_value());
}

TEST_F(ExclusiveTest, ExhaustedVSwitchFallsThroughToTheNext) {
  Make({3, 10}, {{"vsw-a", 0}, {"vsw-b", 10}});
  auto a = alloc_->Allocate(Pod("a"));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->vswitch_id, "vsw-b");
}

// vswitch_selection_policy as on the shared pool (one selection function,
// OrderVSwitches, fed DescribeVSwitches' free counts): ordered/most = the
// vSwitch with the most free IPs, list = configuration order; a vSwitch with
// none free is not even tried.
TEST_F(ExclusiveTest, VSwitchPolicyUsesTheCloudsFreeCounts) {
  const std::vector<FakeCloud::VSwitchSpec> three = {{"vsw-a", 5}, {"vsw-b", 50}, {"vsw-c", 20}};
  struct Row {
    VSwitchSelectionPolicy policy;
    std::vector<FakeCloud::VSwitchSpec> vswitches;
    const char* want;
  } rows[] = {
      {VSwitchSelectionPolicy::kMost, three, "vsw-b"},
      {VSwitchSelectionPolicy::kListOrder, three, "vsw-a"},
      {VSwitchSelectionPolicy::kListOrder, {{"vsw-a", 0}, {"vsw-b", 5}, {"vsw-c", 50}}, "vsw-b"},
      {VSwitchSelectionPolicy::kMost, {{"vsw-a", 0}, {"vsw-b", 5}, {"vsw-c", 50}}, "vsw-c"},
  };
  for (const auto& r : rows) {
    alloc_.reset();
    Make({3, 10}, r.vswitches, std::chrono::seconds(120), r.policy);
    auto a = alloc_->Allocate(Pod("a"));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    EXPECT_EQ(a->vswitch_id, r.want) << VSwitchSelectionPolicyName(r.policy);
    EXPECT_EQ(cloud_->Calls("CreateNetworkInterface"), 1) << "a vSwitch with no free IP was tried";
    EXPECT_EQ(cloud_->Calls("DescribeVSwitches"), 1);
    ASSERT_TRUE(alloc_->Release("c-a").ok());
  }
}

// Counts are read once per ip_pool_sync_period, and lowered by each ENI we
// make meanwhile, so "most" moves on when the fullest runs low.
TEST_F(ExclusiveTest, VSwitchCountsAreCachedAndConsumed) {
  Make({5, 10}, {{"vsw-a", 2}, {"vsw-b", 1}}, std::chrono::seconds(120), VSwitchSelectionPolicy::kMost);
  auto a = alloc_->Allocate(Pod("a"));
  auto b = alloc_->Allocate(Pod("b"));
  auto c = alloc_->Allocate(Pod("c"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->vswitch_id, "vsw-a");  // 2 free against 1
  EXPECT_EQ(b->vswitch_id, "vsw-a");  // 1 against 1: configuration order breaks the tie
  EXPECT_EQ(c->vswitch_id, "vsw-b");  // vsw-a is used up
  EXPECT_EQ(cloud_->Calls("DescribeVSwitches"), 1);
  auto d = alloc_->Allocate(Pod("d"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kExhausted);
  EXPECT_NE(d.error().message.find("vsw-a (no free IP)"), std::string::npos) << d.error().message;
}

TEST_F(ExclusiveTest, InterruptedReleaseIsFinishedByReconcile) {
  Make({3, 10}, {{"vsw-a", 100}});
  ASSERT_TRUE(alloc_->Allocate(Pod("a")).ok());
  cloud_->Script("DetachNetworkInterface", CloudError("InternalError"));
  // The pod is released even though the cloud refused: its DEL must not
  // fail (and be retried) for work the allocator finishes on its own.
  EXPECT_TRUE(alloc_->Release("c-a").ok());
  EXPECT_FALSE(alloc_->Get("c-a")->has_value());
  EXPECT_EQ(TerwayEnisInCloud(), 1);
  ASSERT_TRUE(alloc_->Reconcile().ok());
  EXPECT_EQ(TerwayEnisInCloud(), 0);
}

TEST_F(ExclusiveTest, WorkerFinishesAnInterruptedReleaseWithoutAnotherPod) {
  Make({3, 10}, {{"vsw-a", 100}}, std::chrono::seconds(1));
  ASSERT_TRUE(alloc_->Allocate(Pod("a")).ok());
  ASSERT_TRUE(alloc_->Allocate(Pod("b")).ok());
  cloud_->Script("DetachNetworkInterface", CloudError("InternalError"));
  EXPECT_TRUE(alloc_->Release("c-a").ok());
  EXPECT_EQ(TerwayEnisInCloud(), 2);
  alloc_->Start();
  // Polled with a deadline: the worker runs once per sync period (1 s).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (TerwayEnisInCloud() != 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  alloc_->Stop();
  EXPECT_EQ(TerwayEnisInCloud(), 1) << "the interrupted release was not finished";
  auto b = alloc_->Get("c-b");
  ASSERT_TRUE(b.ok() && b->has_value()) << "the live pod's ENI must survive reconcile";
  auto stats = alloc_->Stats();
  EXPECT_EQ(stats.in_use, 1);
  EXPECT_EQ(stats.enis, 1);
  EXPECT_EQ(stats.max_pods, 2);
}

// Pod GC is the daemon's (it tears the pod's wiring down first): Reconcile
// never frees a pod's ENI because the pod looks gone.
TEST_F(ExclusiveTest, ReconcileKeepsPodsAndCollectsLeaks) {
  Make({4, 10}, {{"vsw-a", 100}});
  ASSERT_TRUE(alloc_->Allocate(Pod("a")).ok());
  ASSERT_TRUE(alloc_->Allocate(Pod("b")).ok());
  // A failed attach whose undo also failed leaves an Available tagged ENI.
  cloud_->Script("AttachNetworkInterface", CloudError("InternalError"));
  cloud_->Script("DeleteNetworkInterface", CloudError("InternalError"));
  EXPECT_FALSE(alloc_->Allocate(Pod("c")).ok());
  EXPECT_EQ(TerwayEnisInCloud(), 3);
  ASSERT_TRUE(alloc_->Reconcile().ok());
  EXPECT_EQ(TerwayEnisInCloud(), 3) << "leak deleted inside its grace period";
  clock_.Advance(minutes(11));
  ASSERT_TRUE(alloc_->Reconcile().ok());
  EXPECT_EQ(TerwayEnisInCloud(), 2);
  EXPECT_TRUE(alloc_->Get("c-a")->has_value());
  EXPECT_TRUE(alloc_->Get("c-b")->has_value());
}

}  // namespace
}  // namespace terway::ipam
