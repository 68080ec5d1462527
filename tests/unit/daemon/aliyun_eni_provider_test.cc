// The cloud calls behind eni_conf's security-group fallback and resource
// group: what AliyunEniProvider asks of the ECS API, and what a failed or
// empty answer becomes.
#include "daemon/aliyun_eni_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/eni_config.h"
#include "unit/cloud/mock_ecs_api.h"

namespace terway::daemon {
namespace {

using ::testing::_;
using ::testing::Return;

class NoSleep : public cloud::Sleeper {
 public:
  void SleepFor(std::chrono::nanoseconds) override {}
};

cloud::NetworkInterface Primary(const std::string& instance, std::vector<std::string> groups) {
  cloud::NetworkInterface e;
  e.network_interface_id = "eni-primary";
  e.type = "Primary";
  e.instance_id = instance;
  e.status = cloud::kEniInUse;
  e.security_group_ids = std::move(groups);
  return e;
}

struct Fixture {
  cloud::MockEcsApi api;
  FakeClock clock;
  NoSleep sleeper;
  AliyunEniProvider provider{&api, "vpc-1", &clock, &sleeper};
};

TEST(AliyunEniProvider, PrimaryEniSecurityGroupsAsksForTheInstancesPrimaryEni) {
  Fixture f;
  EXPECT_CALL(f.api, DescribeNetworkInterfaces(_)).WillOnce([](const cloud::DescribeEnisFilter& filter) {
    // As upstream Terway asks: the instance, Type=Primary.
    EXPECT_EQ(filter.instance_id, "i-1");
    EXPECT_EQ(filter.type, "Primary");
    return Result<std::vector<cloud::NetworkInterface>>(
        std::vector<cloud::NetworkInterface>{Primary("i-1", {"sg-a", "sg-b"})});
  });
  auto groups = f.provider.PrimaryEniSecurityGroups("i-1");
  ASSERT_TRUE(groups.ok()) << groups.error().ToString();
  EXPECT_EQ(*groups, (std::vector<std::string>{"sg-a", "sg-b"}));
}

TEST(AliyunEniProvider, PrimaryEniSecurityGroupsFailureKeepsTheCloudsError) {
  Fixture f;
  Error throttled(ErrorCode::kCloud, "Request was denied due to user flow control.");
  throttled.cloud_code = "Throttling.User";
  throttled.retryable = true;
  EXPECT_CALL(f.api, DescribeNetworkInterfaces(_))
      .WillOnce(Return(Result<std::vector<cloud::NetworkInterface>>(throttled)));
  auto groups = f.provider.PrimaryEniSecurityGroups("i-1");
  ASSERT_FALSE(groups.ok());
  // Retryable stays retryable: the pool asks again at its next ENI.
  EXPECT_EQ(groups.error().cloud_code, "Throttling.User");
  EXPECT_TRUE(groups.error().retryable);
  EXPECT_NE(groups.error().ToString().find("primary ENI of i-1"), std::string::npos) << groups.error().ToString();
}

TEST(AliyunEniProvider, NoPrimaryEniIsNotFoundNamingTheInstance) {
  Fixture f;
  EXPECT_CALL(f.api, DescribeNetworkInterfaces(_))
      .WillOnce(Return(Result<std::vector<cloud::NetworkInterface>>(std::vector<cloud::NetworkInterface>{})));
  auto groups = f.provider.PrimaryEniSecurityGroups("i-1");
  ASSERT_FALSE(groups.ok());
  EXPECT_EQ(groups.error().code, ErrorCode::kNotFound);
  EXPECT_NE(groups.error().message.find("no primary ENI for instance i-1"), std::string::npos);
}

TEST(AliyunEniProvider, CreateEniCarriesTheResourceGroup) {
  Fixture f;
  EXPECT_CALL(f.api, CreateNetworkInterface(_)).WillOnce([](const cloud::CreateEniRequest& req) {
    EXPECT_EQ(req.resource_group_id, "rg-1");
    EXPECT_EQ(req.security_group_ids, std::vector<std::string>{"sg-a"});
    cloud::NetworkInterface e;
    e.network_interface_id = "eni-new";
    return Result<cloud::NetworkInterface>(e);
  });
  ipam::CreateEniRequest req;
  req.vswitch_id = "vsw-1";
  req.security_group_ids = {"sg-a"};
  req.resource_group_id = "rg-1";
  ASSERT_TRUE(f.provider.CreateEni(req).ok());
}

// Dual stack: the ENI is created with its IPv6s, IPv6s are assigned and
// unassigned with the IPv6 actions, and the type's IPv6 quota is read.
TEST(AliyunEniProvider, Ipv6CallsMapToTheIpv6Actions) {
  Fixture f;
  EXPECT_CALL(f.api, CreateNetworkInterface(_)).WillOnce([](const cloud::CreateEniRequest& req) {
    EXPECT_EQ(req.secondary_private_ip_count, 4);
    EXPECT_EQ(req.ipv6_count, 5);
    return Result<cloud::NetworkInterface>(cloud::NetworkInterface{});
  });
  ipam::CreateEniRequest create;
  create.secondary_ip_count = 4;
  create.ipv6_count = 5;
  ASSERT_TRUE(f.provider.CreateEni(create).ok());

  EXPECT_CALL(f.api, AssignIpv6Addresses(_)).WillOnce([](const cloud::AssignIpsRequest& req) {
    EXPECT_EQ(req.eni_id, "eni-1");
    EXPECT_EQ(req.count, 3);
    return Result<std::vector<std::string>>(std::vector<std::string>{"2001:db8::1", "2001:db8::2", "2001:db8::3"});
  });
  auto v6 = f.provider.AssignIpv6("eni-1", 3);
  ASSERT_TRUE(v6.ok()) << v6.error().ToString();
  EXPECT_EQ(v6->size(), 3u);
  // The IPv4 action is never used for IPv6.
  EXPECT_CALL(f.api, AssignPrivateIpAddresses(_)).Times(0);
  EXPECT_CALL(f.api, UnassignPrivateIpAddresses(_, _)).Times(0);

  // Unassign: an address already gone (a retry after a lost reply) is the
  // goal reached; any other refusal is reported with its code.
  Error gone(ErrorCode::kCloud, "The specified IP is not assigned.");
  gone.cloud_code = "InvalidIp.IpUnassigned";
  Error refused(ErrorCode::kCloud, "conflict");
  refused.cloud_code = "InvalidOperation.Conflict";
  std::vector<std::string> two = {"2001:db8::1", "2001:db8::2"};
  EXPECT_CALL(f.api, UnassignIpv6Addresses("eni-1", two))
      .WillOnce(Return(Status(gone)))
      .WillOnce(Return(Status(refused)));
  EXPECT_TRUE(f.provider.UnassignIpv6("eni-1", two).ok());
  auto st = f.provider.UnassignIpv6("eni-1", two);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().cloud_code, "InvalidOperation.Conflict");

  cloud::InstanceType t;
  t.instance_type_id = "ecs.g7.large";
  t.eni_quantity = 3;
  t.eni_private_ip_address_quantity = 6;
  t.eni_ipv6_address_quantity = 4;
  EXPECT_CALL(f.api, DescribeInstanceTypes(_)).WillOnce(Return(std::vector<cloud::InstanceType>{t}));
  auto limits = f.provider.GetInstanceLimits("ecs.g7.large");
  ASSERT_TRUE(limits.ok());
  EXPECT_EQ(limits->ipv6_per_eni, 4);
  EXPECT_EQ(limits->ips_per_eni, 6);
}

// eni_conf backoff_override "eni_ops" decides how long an attach is polled:
// its Steps are the DescribeNetworkInterfaces calls made before giving up.
TEST(AliyunEniProvider, EniOpsOverrideSetsTheAttachPolls) {
  for (int steps : {3, 7}) {
    auto parsed = config::ParseEniConfig(
        fmt::format(R"({{"backoff_override": {{"eni_ops": {{"Duration": "1s", "Steps": {}}}}}}})", steps));
    ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
    cloud::MockEcsApi api;
    FakeClock clock;
    NoSleep sleeper;
    cloud::WaitOptions attach_wait;
    attach_wait.backoff = parsed->config.backoff.eni_attach_wait;
    AliyunEniProvider provider{&api, "vpc-1", &clock, &sleeper, attach_wait};
    cloud::NetworkInterface stuck;
    stuck.network_interface_id = "eni-1";
    stuck.status = "Attaching";
    EXPECT_CALL(api, AttachNetworkInterface("eni-1", "i-1")).WillOnce(Return(Ok()));
    EXPECT_CALL(api, DescribeNetworkInterfaces(_))
        .Times(steps)
        .WillRepeatedly(Return(std::vector<cloud::NetworkInterface>{stuck}));
    auto s = provider.AttachEni("eni-1", "i-1");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kTimeout) << s.error().ToString();
  }
}

}  // namespace
}  // namespace terway::daemon
