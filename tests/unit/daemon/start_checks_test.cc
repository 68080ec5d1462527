// ip_stack dual at start: the node's vSwitches without an IPv6 block are not
// used for new ENIs; with none left terwayd refuses to start, saying which
// vSwitches, why, and what to change.
#include "daemon/start_checks.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "ipam/pool.h"
#include "test_util.h"
#include "unit/ipam/fake_cloud.h"

namespace terway::daemon {
namespace {

using ipam::IpStack;
using ipam::testing::FakeCloud;

cloud::VSwitch Described(const std::string& id, const std::string& ipv6_block) {
  cloud::VSwitch v;
  v.vswitch_id = id;
  v.ipv6_cidr_block = ipv6_block;
  v.available_ip_address_count = 100;
  return v;
}

TEST(VSwitchesForIpStack, DualSkipsVSwitchesWithoutAnIpv6BlockKeepingTheOrder) {
  auto got = VSwitchesForIpStack(IpStack::kDual, {"vsw-a", "vsw-b", "vsw-c", "vsw-gone"},
                                 {Described("vsw-a", ""), Described("vsw-b", "2408:4000:1::/64"),
                                  Described("vsw-c", "2408:4000:2::/64")},
                                 "ConfigMap kube-system/eni-config");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->usable, (std::vector<std::string>{"vsw-b", "vsw-c"}));
  ASSERT_EQ(got->skipped.size(), 2u);
  EXPECT_NE(got->skipped[0].find("vsw-a (no IPv6 CIDR block"), std::string::npos) << got->skipped[0];
  EXPECT_NE(got->skipped[1].find("vsw-gone (DescribeVSwitches does not list it"), std::string::npos)
      << got->skipped[1];
}

TEST(VSwitchesForIpStack, DualWithNoIpv6VSwitchRefusesNamingThemTheCauseAndTheFix) {
  auto got = VSwitchesForIpStack(IpStack::kDual, {"vsw-a", "vsw-b"}, {Described("vsw-a", ""), Described("vsw-b", "")},
                                 "ConfigMap kube-system/eni-config");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kInvalidArgument);  // not waited out: a configuration that cannot work
  const std::string msg = got.error().ToString();
  for (const char* part : {"ip_stack is dual", "vsw-a (no IPv6 CIDR block", "vsw-b (no IPv6 CIDR block",
                           "InvalidVSwitch.Ipv6NotTurnOn", "Enable IPv6 on the vSwitch", "set ip_stack to ipv4",
                           "ConfigMap kube-system/eni-config"}) {
    EXPECT_NE(msg.find(part), std::string::npos) << "missing \"" << part << "\" in: " << msg;
  }
}

TEST(VSwitchesForIpStack, Ipv4UsesEveryVSwitchAndAsksTheCloudNothing) {
  FakeCloud cloud({4, 10, 0}, "i-1", {{"vsw-a", 100, /*ipv6=*/false}});
  auto got = CheckVSwitchesForIpStack(cloud, IpStack::kIpv4, {"vsw-a"}, "eni.json");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->usable, std::vector<std::string>{"vsw-a"});
  EXPECT_TRUE(got->skipped.empty());
  EXPECT_EQ(cloud.Calls("DescribeVSwitches"), 0);
}

TEST(VSwitchesForIpStack, AFailedDescribeIsReturnedForTheCallerToWaitOut) {
  FakeCloud cloud({4, 10, 6}, "i-1", {{"vsw-a", 100}});
  Error throttled(ErrorCode::kCloud, "Request was denied due to user flow control.");
  throttled.cloud_code = "Throttling.User";
  throttled.retryable = true;
  cloud.Script("DescribeVSwitches", throttled);
  auto got = CheckVSwitchesForIpStack(cloud, IpStack::kDual, {"vsw-a"}, "eni.json");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(got.error().ToString().find("Throttling.User"), std::string::npos) << got.error().ToString();
  got = CheckVSwitchesForIpStack(cloud, IpStack::kDual, {"vsw-a"}, "eni.json");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
}

// With the fake cloud: a dual-stack pool given the checked vSwitches puts
// its ENIs where IPv6s can be had and serves pods; given the unchecked list
// (the IPv6-less vSwitch first), its refill fails as the cloud refuses.
TEST(VSwitchesForIpStack, APoolOnTheCheckedVSwitchesServesDualStackPods) {
  FakeCloud cloud({4, 10, 6}, "i-1", {{"vsw-v4only", 100, /*ipv6=*/false}, {"vsw-dual", 100}});
  auto dir = std::filesystem::temp_directory_path() / ("terway-start-checks-" + testing::UniqueSuffix());
  std::filesystem::create_directories(dir);
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  } cleanup{dir};
  auto store = store::StateStore::Open((dir / "state.db").string());
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  FakeClock clock;
  ipam::PoolOptions po;
  po.instance_id = "i-1";
  po.instance_type = "ecs.test";
  po.config.eni_tags["creator"] = "terway";
  po.config.ip_stack = IpStack::kDual;
  po.config.vswitch_selection_policy = ipam::VSwitchSelectionPolicy::kListOrder;
  po.config.min_pool_size = 2;
  po.config.max_pool_size = 2;

  po.vswitch_ids = {"vsw-v4only", "vsw-dual"};
  auto unchecked = ipam::IpPool::Create(po, &cloud, store->get(), &clock);
  ASSERT_TRUE(unchecked.ok()) << unchecked.error().ToString();
  auto refused = (*unchecked)->RefillOnce();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().ToString().find("InvalidVSwitch.Ipv6NotTurnOn"), std::string::npos)
      << refused.error().ToString();
  unchecked->reset();

  auto choice = CheckVSwitchesForIpStack(cloud, IpStack::kDual, po.vswitch_ids, "eni.json");
  ASSERT_TRUE(choice.ok()) << choice.error().ToString();
  po.vswitch_ids = choice->usable;
  auto pool = ipam::IpPool::Create(po, &cloud, store->get(), &clock);
  ASSERT_TRUE(pool.ok()) << pool.error().ToString();
  ASSERT_TRUE((*pool)->RefillOnce().ok());
  ipam::PodIdentity pod;
  pod.namespace_ = "default";
  pod.name = "p1";
  pod.container_id = "c-p1";
  auto got = (*pool)->Allocate(pod, std::chrono::milliseconds(0));
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_FALSE(got->ipv6.empty());
  EXPECT_EQ(got->vswitch_id, "vsw-dual");
}

}  // namespace
}  // namespace terway::daemon
