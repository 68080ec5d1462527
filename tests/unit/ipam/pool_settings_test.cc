// The pool honouring upstream Terway's eni_conf keys: the security groups of
// the primary ENI when none are configured (including that lookup failing),
// ip_warm_up_size, eni_selection_policy, eni_tag_block_list / eni_tag_filter,
// resource_group_id and the ENI caps, against the fake cloud.
#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "test_util.h"

namespace terway::ipam {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::CloudError;
using testing::FakeCloud;
namespace fs = std::filesystem;

constexpr const char* kInstance = "i-settings";

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("terway-pool-settings-" + terway::testing::UniqueSuffix());
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

PodIdentity Pod(const std::string& name) {
  PodIdentity p;
  p.namespace_ = "default";
  p.name = name;
  p.uid = "uid-" + name;
  p.container_id = "c-" + name;
  return p;
}

// Waits (with a deadline, polling) until cond holds.
bool Eventually(const std::function<bool()>& cond, milliseconds limit = milliseconds(10000)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return cond();
}

class PoolSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto st = store::StateStore::Open(dir_.File("state.db"));
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    opts_.instance_id = kInstance;
    opts_.instance_type = "ecs.test";
    opts_.vswitch_ids = {"vsw-a"};
    opts_.config.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
    opts_.config.eni_tags["creator"] = "terway";
    opts_.config.max_pool_size = 5;
    opts_.config.idle_ip_reclaim_interval = seconds(3600);  // driven by hand
    opts_.config.ip_pool_sync_period = seconds(3600);
  }
  void NewPool(bool start = true) {
    pool_.reset();
    auto p = IpPool::Create(opts_, &cloud_, store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    pool_ = std::move(p).value();
    if (start) pool_->Start();
  }
  void TearDown() override { pool_.reset(); }

  TempDir dir_;
  FakeClock clock_;
  FakeCloud cloud_{{4, 10}, kInstance, {{"vsw-a", 1000}}};
  PoolOptions opts_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<IpPool> pool_;
};

// Upstream's chart default `security_groups: []`: ENIs join the primary
// ENI's groups, read once.
TEST_F(PoolSettingsTest, NoSecurityGroupsConfiguredMeansThePrimaryEnisGroups) {
  cloud_.SetPrimarySecurityGroups({"sg-node-1", "sg-node-2"});
  opts_.config.max_pool_size = 0;
  NewPool();
  for (int i = 0; i < 12; ++i) {  // two ENIs
    auto a = pool_->Allocate(Pod("p" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
  }
  auto reqs = cloud_.CreateRequests();
  ASSERT_GE(reqs.size(), 2u);
  for (const auto& r : reqs) EXPECT_EQ(r.security_group_ids, (std::vector<std::string>{"sg-node-1", "sg-node-2"}));
  EXPECT_EQ(cloud_.Calls(FakeCloud::kPrimaryLookup), 1) << "read once, then remembered";
}

TEST_F(PoolSettingsTest, ConfiguredSecurityGroupsNeedNoLookup) {
  opts_.config.security_groups = {"sg-conf"};
  NewPool();
  ASSERT_TRUE(pool_->Allocate(Pod("p"), seconds(10)).ok());
  EXPECT_EQ(cloud_.CreateRequests().back().security_group_ids, std::vector<std::string>{"sg-conf"});
  EXPECT_EQ(cloud_.Calls(FakeCloud::kPrimaryLookup), 0);
}

// The lookup failing: pods that need a new ENI wait and are told why; pods
// served from addresses the node holds are not held up; once the cloud
// answers, the node serves again without a restart.
TEST_F(PoolSettingsTest, PrimaryLookupFailureIsReportedAndRecovered) {
  opts_.config.max_pool_size = 0;
  NewPool();
  // A full ENI of ours the node already holds (adopted): its ten addresses
  // serve pods, the eleventh pod needs a new ENI.
  cloud_.AttachUnrecordedTerwayEni("vsw-a", 10);
  ASSERT_TRUE(pool_->Reconcile().ok());
  for (int i = 0; i < 200; ++i) cloud_.Script(FakeCloud::kPrimaryLookup, CloudError("Throttling.User", "slow down"));

  for (int i = 0; i < 10; ++i) {
    auto a = pool_->Allocate(Pod("held-" + std::to_string(i)), seconds(5));
    ASSERT_TRUE(a.ok()) << i << ": " << a.error().ToString();
  }
  auto stuck = pool_->Allocate(Pod("needs-an-eni"), milliseconds(1500));
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.error().code, ErrorCode::kTimeout);
  EXPECT_NE(stuck.error().ToString().find("security groups of the primary ENI"), std::string::npos)
      << stuck.error().ToString();
  EXPECT_GE(cloud_.Calls(FakeCloud::kPrimaryLookup), 1);
  EXPECT_TRUE(cloud_.CreateRequests().empty()) << "no ENI may be created without its security groups";

  cloud_.ClearScript(FakeCloud::kPrimaryLookup);
  auto later = pool_->Allocate(Pod("needs-an-eni"), seconds(10));
  ASSERT_TRUE(later.ok()) << later.error().ToString();
  EXPECT_EQ(cloud_.CreateRequests().back().security_group_ids, std::vector<std::string>{"sg-primary"});
}

TEST_F(PoolSettingsTest, ExclusiveEniJoinsThePrimaryEnisGroupsAndResourceGroup) {
  cloud_.SetPrimarySecurityGroups({"sg-node"});
  opts_.config.resource_group_id = "rg-pods";
  opts_.config.eni_mode = EniMode::kExclusive;
  auto a = ExclusiveEniAllocator::Create(opts_, &cloud_, store_.get(), &clock_);
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  cloud_.Script(FakeCloud::kPrimaryLookup, CloudError("InternalError", "boom"));
  auto first = (*a)->Allocate(Pod("x"), seconds(5));
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.error().ToString().find("security groups of the primary ENI"), std::string::npos)
      << first.error().ToString();
  auto second = (*a)->Allocate(Pod("x"), seconds(5));
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(cloud_.CreateRequests().back().security_group_ids, std::vector<std::string>{"sg-node"});
  EXPECT_EQ(cloud_.CreateRequests().back().resource_group_id, "rg-pods");
}

TEST_F(PoolSettingsTest, ResourceGroupOnEveryEni) {
  opts_.config.resource_group_id = "rg-pods";
  NewPool();
  ASSERT_TRUE(pool_->Allocate(Pod("p"), seconds(10)).ok());
  EXPECT_EQ(cloud_.CreateRequests().back().resource_group_id, "rg-pods");
}

// A new node obtains ip_warm_up_size addresses once; then max_pool_size
// takes over; a restart does not warm up again.
TEST_F(PoolSettingsTest, WarmUpOnceOnANewNode) {
  opts_.config.ip_warm_up_size = 12;
  opts_.config.max_pool_size = 5;
  NewPool();
  EXPECT_TRUE(Eventually([&] { return pool_->Stats().idle == 12 && pool_->WarmUpLeft() == 0; }))
      << "idle " << pool_->Stats().idle << ", warm-up left " << pool_->WarmUpLeft();
  pool_->Stop();
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  EXPECT_EQ(pool_->Stats().idle, 5) << "after the warm-up, max_pool_size holds";
  NewPool(/*start=*/false);
  EXPECT_EQ(pool_->WarmUpLeft(), 0) << "a node holding addresses does not warm up again";
}

TEST_F(PoolSettingsTest, NoWarmUpByDefault) {
  opts_.config.max_pool_size = 5;
  NewPool(/*start=*/false);
  EXPECT_EQ(pool_->WarmUpLeft(), 0);
  opts_.config.ip_warm_up_size = 500;  // more than the node can hold: capped to its capacity
  NewPool(/*start=*/false);
  EXPECT_EQ(pool_->WarmUpLeft(), 30);
}

// least_ips spreads pods over ENIs; most_ips (the default) packs them.
TEST_F(PoolSettingsTest, EniSelectionPolicy) {
  opts_.config.max_pool_size = 0;
  opts_.config.eni_selection_policy = EniSelectionPolicy::kLeastIps;
  NewPool();
  std::set<std::string> enis;
  for (int i = 0; i < 3; ++i) {
    auto a = pool_->Allocate(Pod("s" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    enis.insert(a->eni_id);
  }
  EXPECT_EQ(enis.size(), 3u) << "least_ips: one ENI per pod while ENIs are left";

  pool_.reset();
  auto fresh = store::StateStore::Open(dir_.File("packed.db"));
  ASSERT_TRUE(fresh.ok());
  store_ = std::move(fresh).value();
  FakeCloud packed({4, 10}, kInstance, {{"vsw-a", 1000}});
  opts_.config.eni_selection_policy = EniSelectionPolicy::kMostIps;
  auto p = IpPool::Create(opts_, &packed, store_.get(), &clock_);
  ASSERT_TRUE(p.ok());
  (*p)->Start();
  enis.clear();
  for (int i = 0; i < 3; ++i) {
    auto a = (*p)->Allocate(Pod("m" + std::to_string(i)), seconds(10));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    enis.insert(a->eni_id);
  }
  EXPECT_EQ(enis.size(), 1u) << "most_ips: packed onto one ENI";
}

// eni_tag_block_list (with upstream's built-in entries) and eni_tag_filter
// decide which of our attached ENIs the pool may use.
TEST_F(PoolSettingsTest, BlockedOrFilteredEnisAreNotAdopted) {
  opts_.config.eni_tag_block_list = {{"terway.alibabacloud.com/excluded", "true"}, {"owner", "rdma"}};
  NewPool(/*start=*/false);
  cloud_.AttachUnrecordedTerwayEni("vsw-a", 3, {{"terway.alibabacloud.com/excluded", "true"}});
  cloud_.AttachUnrecordedTerwayEni("vsw-a", 3, {{"owner", "rdma"}});
  std::string usable = cloud_.AttachUnrecordedTerwayEni("vsw-a", 2);
  ASSERT_TRUE(pool_->Reconcile().ok());
  EXPECT_EQ(pool_->Stats().enis, 1);
  EXPECT_EQ(pool_->Stats().idle, 2);
  auto a = pool_->Allocate(Pod("p"), seconds(5));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->eni_id, usable);

  opts_.config.eni_tag_block_list.clear();
  opts_.config.eni_tag_filter = {{"pool", "blue"}};
  NewPool(/*start=*/false);  // same store: `usable` is known, but untagged
  std::string blue = cloud_.AttachUnrecordedTerwayEni("vsw-a", 2, {{"pool", "blue"}});
  ASSERT_TRUE(pool_->Reconcile().ok());
  // The known ENI outside the filter keeps its pod but serves no new one.
  auto b = pool_->Allocate(Pod("q"), seconds(5));
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(b->eni_id, blue);
  auto again = pool_->Get("c-p");
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->eni_id, usable);
}

// EniSchedulable is the rule both of the above go by.
TEST(EniSchedulable, BlockListAndFilter) {
  PoolConfig c;
  c.eni_tag_block_list = {{"owner", "rdma"}};
  EXPECT_TRUE(EniSchedulable({{"creator", "terway"}}, c));
  EXPECT_FALSE(EniSchedulable({{"creator", "terway"}, {"owner", "rdma"}}, c));
  EXPECT_TRUE(EniSchedulable({{"owner", "other"}}, c)) << "key and value must both match";
  c.eni_tag_filter = {{"pool", "blue"}, {"zone", "i"}};
  EXPECT_FALSE(EniSchedulable({{"pool", "blue"}}, c)) << "every filter tag is required";
  EXPECT_TRUE(EniSchedulable({{"pool", "blue"}, {"zone", "i"}}, c));
}

// eni_cap_ratio / eni_cap_shift / max_eni bound the node's pods.
TEST_F(PoolSettingsTest, EniCapsBoundMaxPods) {
  opts_.config.eni_cap_shift = -1;  // 4 ENIs: 4 + (-1) - 1 = 2 secondary ENIs
  NewPool(/*start=*/false);
  EXPECT_EQ(pool_->MaxPodCount(), 20);
  EXPECT_EQ(pool_->Stats().max_pods, 20);
  opts_.config.eni_cap_shift = 0;
  opts_.config.max_eni = 1;
  NewPool(/*start=*/false);
  EXPECT_EQ(pool_->MaxPodCount(), 10);
  opts_.config.eni_mode = EniMode::kExclusive;
  auto x = ExclusiveEniAllocator::Create(opts_, &cloud_, store_.get(), &clock_);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ((*x)->MaxPodCount(), 1);
}

}  // namespace
}  // namespace terway::ipam
