// The dual-stack pool's test fixture (pool_dual_stack_test.cc,
// pool_adopt_dual_stack_test.cc): a pool over FakeCloud and a real store in a
// temporary directory, run without its worker (each test drives the jobs by
// hand), with views of its pairs, spares and stored rows.
#pragma once

#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "ipam/pool.h"
#include "test_util.h"

namespace terway::ipam::dual_stack_test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::CloudError;
using testing::FakeCloud;

inline constexpr const char* kInstance = "i-dual";

inline PodIdentity Pod(const std::string& name) {
  PodIdentity p;
  p.namespace_ = "default";
  p.name = name;
  p.uid = "uid-" + name;
  p.container_id = "c-" + name;
  return p;
}

// A refusal: the cloud did nothing (the pool puts the addresses back).
inline Error Refused(const std::string& code) {
  Error e = CloudError(code);
  e.retryable = false;
  return e;
}

class DualStackPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("terway-dual-" + terway::testing::UniqueSuffix());
    fs::create_directories(dir_);
    auto st = store::StateStore::Open((dir_ / "state.db").string());
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
  }
  void TearDown() override {
    pool_.reset();
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // EniQuantity 4, 10 IPv4 and 6 IPv6 per ENI: 3 x 6 = 18 dual-stack pods.
  void Make(int min_pool, int max_pool, InstanceLimits limits = {4, 10, 6}) {
    cloud_ = std::make_unique<FakeCloud>(limits, kInstance, std::vector<FakeCloud::VSwitchSpec>{{"vsw-a", 100}});
    opts_.instance_id = kInstance;
    opts_.instance_type = "ecs.test";
    opts_.vswitch_ids = {"vsw-a"};
    opts_.config.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
    opts_.config.eni_tags["creator"] = "terway";
    opts_.config.ip_stack = IpStack::kDual;
    opts_.config.min_pool_size = min_pool;
    opts_.config.max_pool_size = max_pool;
    opts_.config.idle_ip_reclaim_interval = seconds(3600);
    opts_.config.ip_pool_sync_period = seconds(3600);
    Restart();
  }
  // A new pool on the same store and cloud (a restarted daemon).
  void Restart() {
    pool_.reset();
    auto p = IpPool::Create(opts_, cloud_.get(), store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    pool_ = std::move(p).value();
  }
  // IPv4 -> IPv6 of every slot the pool holds.
  std::map<std::string, std::string> Pairs() {
    std::map<std::string, std::string> out;
    for (const auto& a : pool_->Contents().addresses) out[a.ip] = a.ipv6;
    return out;
  }
  std::set<std::string> StoredIpv6() {
    std::set<std::string> out;
    auto ips = store_->ListIps();
    EXPECT_TRUE(ips.ok());
    for (const auto& r : *ips) {
      if (!r.ipv6.empty()) out.insert(r.ipv6);
    }
    return out;
  }
  std::set<std::string> StoredIps() {
    std::set<std::string> out;
    auto ips = store_->ListIps();
    EXPECT_TRUE(ips.ok());
    for (const auto& r : *ips) out.insert(r.ip);
    return out;
  }
  std::set<std::string> SpareIpv6() {
    std::set<std::string> out;
    for (const auto& e : pool_->Contents().enis) out.insert(e.spare_ipv6.begin(), e.spare_ipv6.end());
    return out;
  }
  // Nothing leaked either way: what the cloud lists is what the pool holds
  // (pairs and spares), family by family.
  void ExpectCloudMatchesPool() {
    EXPECT_EQ(StoredIps(), cloud_->AttachedTerwayIps());
    std::set<std::string> held = StoredIpv6();
    for (const auto& v6 : SpareIpv6()) held.insert(v6);
    EXPECT_EQ(held, cloud_->AttachedTerwayIpv6s());
  }
  // The cloud's ENI holding `ip`, "" if none.
  std::string EniOfIpv6(const std::string& ipv6) {
    for (const auto& e : cloud_->AllEnis()) {
      for (const auto& v6 : e.ipv6_sets) {
        if (v6 == ipv6) return e.network_interface_id;
      }
    }
    return "";
  }
  std::string EniOfIpv4(const std::string& ip) {
    for (const auto& e : cloud_->AllEnis()) {
      for (const auto& p : e.private_ip_sets) {
        if (p.address == ip) return e.network_interface_id;
      }
    }
    return "";
  }

  fs::path dir_;
  FakeClock clock_;
  PoolOptions opts_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<IpPool> pool_;
};

}  // namespace terway::ipam::dual_stack_test
