// A pool without its worker (each test drives refill, reclaim and reconcile
// by hand) on the fake cloud and a real store in a temp dir, with the store's
// failure seam (StoreFaults) and the checks the fault tests share: memory
// agrees with the database, and the database with the cloud.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "ipam/pool.h"
#include "test_util.h"
#include "unit/store/store_faults.h"

namespace terway::ipam::testing {

inline PodIdentity PodNamed(const std::string& name) {
  PodIdentity p;
  p.namespace_ = "default";
  p.name = name;
  p.uid = "uid-" + name;
  p.container_id = "c-" + name;
  return p;
}

class PoolHarnessTest : public ::testing::Test {
 protected:
  static constexpr const char* kNode = "i-harness";

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("terway-harness-" + terway::testing::UniqueSuffix());
    std::filesystem::create_directories(dir_);
    auto st = store::StateStore::Open(DbPath());
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    auto f = terway::testing::StoreFaults::Open(DbPath());
    ASSERT_TRUE(f.ok()) << f.error().ToString();
    faults_ = std::move(f).value();
  }
  void TearDown() override {
    pool_.reset();
    faults_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // One vSwitch with room; `limits` as DescribeInstanceTypes reports them.
  void StartPool(IpStack stack, int min_pool, int max_pool, InstanceLimits limits = {4, 10, 6}) {
    cloud_ = std::make_unique<FakeCloud>(limits, kNode, std::vector<FakeCloud::VSwitchSpec>{{"vsw-1", 200}});
    opts_.instance_id = kNode;
    opts_.instance_type = "ecs.harness";
    opts_.vswitch_ids = {"vsw-1"};
    opts_.config.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
    opts_.config.eni_tags["creator"] = "terway";
    opts_.config.idle_ip_reclaim_interval = std::chrono::seconds(3600);
    opts_.config.ip_pool_sync_period = std::chrono::seconds(3600);
    Reconfigure(stack, min_pool, max_pool);
  }
  // The daemon restarted with other settings (same store, same cloud).
  void Reconfigure(IpStack stack, int min_pool, int max_pool) {
    opts_.config.ip_stack = stack;
    opts_.config.min_pool_size = min_pool;
    opts_.config.max_pool_size = max_pool;
    pool_.reset();
    auto p = IpPool::Create(opts_, cloud_.get(), store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    pool_ = std::move(p).value();
  }

  std::string DbPath() const { return (dir_ / "state.db").string(); }

  // IPv4 -> paired IPv6 ("" unpaired), as the pool holds them and as the
  // database does.
  std::map<std::string, std::string> MemoryPairs() {
    std::map<std::string, std::string> out;
    for (const auto& a : pool_->Contents().addresses) out[a.ip] = a.ipv6;
    return out;
  }
  std::map<std::string, std::string> StoredPairs() {
    std::map<std::string, std::string> out;
    auto rows = store_->ListIps();
    EXPECT_TRUE(rows.ok());
    if (rows.ok()) {
      for (const auto& r : *rows) out[r.ip] = r.ipv6;
    }
    return out;
  }
  std::set<std::string> SpareIpv6() {
    std::set<std::string> out;
    for (const auto& e : pool_->Contents().enis) out.insert(e.spare_ipv6.begin(), e.spare_ipv6.end());
    return out;
  }
  std::map<std::string, IpUse> Uses() {
    std::map<std::string, IpUse> out;
    for (const auto& a : pool_->Contents().addresses) out[a.ip] = a.use;
    return out;
  }

  // What the pool believes is what a restarted daemon would read: the same
  // addresses and pairs, the same pods on the same addresses.
  void ExpectMemoryMatchesStore() {
    EXPECT_EQ(MemoryPairs(), StoredPairs());
    std::map<std::string, std::string> in_use, allocated;
    for (const auto& a : pool_->Contents().addresses) {
      if (a.use == IpUse::kInUse) in_use[a.ip] = a.container_id;
    }
    auto allocs = store_->ListAllocations();
    ASSERT_TRUE(allocs.ok());
    for (const auto& a : *allocs) allocated[a.ip] = a.container_id;
    EXPECT_EQ(in_use, allocated);
  }
  // Nothing leaked either way: the cloud lists what the database (and, for
  // IPv6s no slot pairs, the pool's spares) holds.
  void ExpectCloudMatchesStore() {
    std::set<std::string> v4, v6 = SpareIpv6();
    for (const auto& [ip, ipv6] : StoredPairs()) {
      v4.insert(ip);
      if (!ipv6.empty()) v6.insert(ipv6);
    }
    EXPECT_EQ(v4, cloud_->AttachedTerwayIps());
    EXPECT_EQ(v6, cloud_->AttachedTerwayIpv6s());
  }

  std::filesystem::path dir_;
  FakeClock clock_;
  PoolOptions opts_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<terway::testing::StoreFaults> faults_;
  std::unique_ptr<IpPool> pool_;
};

}  // namespace terway::ipam::testing
