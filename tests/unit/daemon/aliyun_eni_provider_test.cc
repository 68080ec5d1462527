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
