#include "cloud/ecs_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cloud/fake_http_transport.h"
#include "cloud_test_util.h"
#include "mock_ecs_api.h"

namespace terway::cloud {
namespace {

using nlohmann::json;
using testing::ParamsOf;
using ::testing::_;
using ::testing::Return;

json EniJson(const std::string& id, const std::string& status) {
  NetworkInterface e;
  e.network_interface_id = id;
  e.status = status;
  e.type = "Secondary";
  e.vswitch_id = "vsw-1";
  e.mac_address = "00:16:3e:00:00:01";
  e.private_ip_address = "198.18.0.10";
  e.private_ip_sets = {{"198.18.0.10", true}, {"198.18.0.11", false}};
  e.tags = {{"creator", "terway"}};
  return ToJson(e);
}

class EcsClientTest : public ::testing::Test {
 protected:
  EcsClientTest() : sleeper_(&clock_), creds_("id", "secret") {
    OpenApiConfig cfg;
    cfg.region_id = "cn-hangzhou";
    OpenApiClient::Deps deps;
    deps.transport = &http_;
    deps.credentials = &creds_;
    deps.clock = &clock_;
    deps.sleeper = &sleeper_;
    deps.random = [] { return 0.5; };
    client_ = std::make_unique<OpenApiClient>(cfg, deps);
    ecs_ = std::make_unique<OpenApiEcsClient>(client_.get());
  }

  // Routes by Action to a handler returning the JSON reply.
  void Serve(std::function<Result<HttpResponse>(const QueryParams&)> h) {
    http_.SetHandler([h](const HttpRequest& req) -> Result<HttpResponse> {
      EXPECT_TRUE(testing::SignatureValid(req, "secret"));
      return h(ParamsOf(req));
    });
  }
  static HttpResponse Ok(const json& j) { return FakeHttpTransport::Reply(200, j.dump()); }

  FakeClock clock_;
  FakeSleeper sleeper_;
  StaticCredentialProvider creds_;
  FakeHttpTransport http_;
  std::unique_ptr<OpenApiClient> client_;
  std::unique_ptr<OpenApiEcsClient> ecs_;
};

TEST_F(EcsClientTest, CreateNetworkInterfaceSendsDocumentedParameters) {
  Serve([](const QueryParams& p) {
    EXPECT_EQ(p.at("Action"), "CreateNetworkInterface");
    EXPECT_EQ(p.at("VSwitchId"), "vsw-1");
    EXPECT_EQ(p.at("SecurityGroupIds.1"), "sg-1");
    EXPECT_EQ(p.at("SecurityGroupIds.2"), "sg-2");
    EXPECT_EQ(p.at("SecondaryPrivateIpAddressCount"), "9");
    EXPECT_EQ(p.at("Tag.1.Key"), "creator");
    EXPECT_EQ(p.at("Tag.1.Value"), "terway");
    EXPECT_EQ(p.at("ClientToken"), "tok-1");
    EXPECT_EQ(p.at("RegionId"), "cn-hangzhou");
    EXPECT_EQ(p.at("ResourceGroupId"), "rg-1");  // eni_conf resource_group_id
    json reply = EniJson("eni-new", "Available");
    reply["RequestId"] = "r";
    reply["ResourceGroupId"] = "rg-1";
    return Ok(reply);
  });
  CreateEniRequest req;
  req.vswitch_id = "vsw-1";
  req.security_group_ids = {"sg-1", "sg-2"};
  req.secondary_private_ip_count = 9;
  req.tags = {{"creator", "terway"}};
  req.client_token = "tok-1";
  req.resource_group_id = "rg-1";
  auto eni = ecs_->CreateNetworkInterface(req);
  ASSERT_TRUE(eni.ok()) << eni.error().ToString();
  EXPECT_EQ(eni->network_interface_id, "eni-new");
  EXPECT_EQ(eni->private_ip_sets.size(), 2u);
  EXPECT_EQ(eni->resource_group_id, "rg-1");
}

TEST_F(EcsClientTest, DescribeNetworkInterfacesFiltersByResourceGroup) {
  Serve([](const QueryParams& p) {
    EXPECT_EQ(p.at("ResourceGroupId"), "rg-1");
    json e = EniJson("eni-1", "InUse");
    e["ResourceGroupId"] = "rg-1";
    return Ok(json{{"RequestId", "r"}, {"NetworkInterfaceSets", {{"NetworkInterfaceSet", {e}}}}});
  });
  DescribeEnisFilter f;
  f.resource_group_id = "rg-1";
  auto enis = ecs_->DescribeNetworkInterfaces(f);
  ASSERT_TRUE(enis.ok()) << enis.error().ToString();
  ASSERT_EQ(enis->size(), 1u);
  EXPECT_EQ(enis->front().resource_group_id, "rg-1");
  EXPECT_EQ(http_.request_count(), 1u);
}

TEST_F(EcsClientTest, CreateRetriedAfterThrottlingKeepsOneClientToken) {
  std::vector<std::string> tokens;
  Serve([&](const QueryParams& p) -> Result<HttpResponse> {
    tokens.push_back(p.at("ClientToken"));
    if (tokens.size() == 1) {
      return FakeHttpTransport::Reply(400, R"({"Code":"Throttling","Message":"slow down","RequestId":"r"})");
    }
    return Ok(EniJson("eni-1", "Available"));
  });
  CreateEniRequest req;
  req.vswitch_id = "vsw-1";
  req.security_group_ids = {"sg-1"};
  ASSERT_TRUE(ecs_->CreateNetworkInterface(req).ok());
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_FALSE(tokens[0].empty());
  EXPECT_EQ(tokens[0], tokens[1]);
}

TEST_F(EcsClientTest, CreateRefusesIncompleteRequests) {
  CreateEniRequest req;
  req.vswitch_id = "vsw-1";
  auto r = ecs_->CreateNetworkInterface(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(http_.request_count(), 0u);
}

TEST_F(EcsClientTest, DescribeNetworkInterfacesPagesThroughAllPages) {
  Serve([](const QueryParams& p) {
    EXPECT_EQ(p.at("Action"), "DescribeNetworkInterfaces");
    EXPECT_EQ(p.at("InstanceId"), "i-1");
    EXPECT_EQ(p.at("Tag.1.Key"), "creator");
    EXPECT_EQ(p.at("NetworkInterfaceId.1"), "eni-a");
    EXPECT_EQ(p.at("MaxResults"), "100");
    std::string token = p.contains("NextToken") ? p.at("NextToken") : "";
    json reply = {{"RequestId", "r"}};
    json set = json::array();
    if (token.empty()) {
      set = {EniJson("eni-1", "InUse"), EniJson("eni-2", "InUse")};
      reply["NextToken"] = "page2";
    } else if (token == "page2") {
      set = {EniJson("eni-3", "Available")};
      reply["NextToken"] = "page3";
    } else {
      set = {EniJson("eni-4", "Attaching")};
      reply["NextToken"] = "";
    }
    reply["NetworkInterfaceSets"] = {{"NetworkInterfaceSet", set}};
    return Ok(reply);
  });
  DescribeEnisFilter f;
  f.instance_id = "i-1";
  f.tags = {{"creator", "terway"}};
  f.eni_ids = {"eni-a"};
  auto enis = ecs_->DescribeNetworkInterfaces(f);
  ASSERT_TRUE(enis.ok()) << enis.error().ToString();
  ASSERT_EQ(enis->size(), 4u);
  EXPECT_EQ((*enis)[0].network_interface_id, "eni-1");
  EXPECT_EQ((*enis)[3].network_interface_id, "eni-4");
  EXPECT_EQ((*enis)[3].status, "Attaching");
  EXPECT_EQ(http_.request_count(), 3u);
}

TEST_F(EcsClientTest, RepeatedNextTokenIsAnErrorNotALoop) {
  Serve([](const QueryParams&) {
    return Ok({{"NextToken", "same"}, {"NetworkInterfaceSets", {{"NetworkInterfaceSet", json::array()}}}});
  });
  auto r = ecs_->DescribeNetworkInterfaces({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 2u);
}

TEST_F(EcsClientTest, AssignPrivateIpAddressesByCountAndByAddress) {
  Serve([](const QueryParams& p) {
    EXPECT_EQ(p.at("Action"), "AssignPrivateIpAddresses");
    EXPECT_FALSE(p.at("ClientToken").empty());
    json ips = json::array();
    if (p.contains("SecondaryPrivateIpAddressCount")) {
      EXPECT_EQ(p.at("SecondaryPrivateIpAddressCount"), "2");
      ips = {"198.18.0.20", "198.18.0.21"};
    } else {
      EXPECT_EQ(p.at("PrivateIpAddress.1"), "198.18.0.30");
      ips = {"198.18.0.30"};
    }
    return Ok({{"RequestId", "r"},
               {"AssignedPrivateIpAddressesSet",
                {{"NetworkInterfaceId", p.at("NetworkInterfaceId")}, {"PrivateIpSet", {{"PrivateIpAddress", ips}}}}}});
  });
  auto a = ecs_->AssignPrivateIpAddresses({"eni-1", 2, {}, ""});
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(*a, (std::vector<std::string>{"198.18.0.20", "198.18.0.21"}));
  auto b = ecs_->AssignPrivateIpAddresses({"eni-1", 0, {"198.18.0.30"}, ""});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::vector<std::string>{"198.18.0.30"});
  // Neither or both: refused before any call.
  EXPECT_FALSE(ecs_->AssignPrivateIpAddresses({"eni-1", 0, {}, ""}).ok());
  EXPECT_FALSE(ecs_->AssignPrivateIpAddresses({"eni-1", 1, {"198.18.0.1"}, ""}).ok());
  EXPECT_EQ(http_.request_count(), 2u);
}

TEST_F(EcsClientTest, AssignReportsQuotaErrorsUnretried) {
  Serve([](const QueryParams&) {
    return FakeHttpTransport::Reply(
        403, R"({"Code":"InvalidVSwitchId.IpNotEnough","Message":"no IPs left","RequestId":"r","HostId":"h"})");
  });
  auto r = ecs_->AssignPrivateIpAddresses({"eni-1", 10, {}, ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().cloud_code, "InvalidVSwitchId.IpNotEnough");
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_EQ(http_.request_count(), 1u);
}

TEST_F(EcsClientTest, Ipv6AndUnassignCalls) {
  Serve([](const QueryParams& p) {
    const std::string& a = p.at("Action");
    if (a == "AssignIpv6Addresses") {
      EXPECT_EQ(p.at("Ipv6AddressCount"), "1");
      return Ok({{"NetworkInterfaceId", "eni-1"}, {"Ipv6Sets", {{"Ipv6Address", {"2001:db8::5"}}}}});
    }
    if (a == "UnassignIpv6Addresses") {
      EXPECT_EQ(p.at("Ipv6Address.1"), "2001:db8::5");
    }
    if (a == "UnassignPrivateIpAddresses") {
      EXPECT_EQ(p.at("PrivateIpAddress.1"), "198.18.0.20");
      EXPECT_EQ(p.at("PrivateIpAddress.2"), "198.18.0.21");
    }
    return Ok({{"RequestId", "r"}});
  });
  auto v6 = ecs_->AssignIpv6Addresses({"eni-1", 1, {}, ""});
  ASSERT_TRUE(v6.ok()) << v6.error().ToString();
  EXPECT_EQ(*v6, std::vector<std::string>{"2001:db8::5"});
  EXPECT_TRUE(ecs_->UnassignIpv6Addresses("eni-1", {"2001:db8::5"}).ok());
  EXPECT_TRUE(ecs_->UnassignPrivateIpAddresses("eni-1", {"198.18.0.20", "198.18.0.21"}).ok());
  EXPECT_TRUE(ecs_->UnassignPrivateIpAddresses("eni-1", {}).ok());  // no call for nothing
  EXPECT_EQ(http_.request_count(), 3u);
}

// AssignIpv6Addresses: named addresses as Ipv6Address.N, one ClientToken
// across a throttled retry (as for AssignPrivateIpAddresses), the documented
// reply {"NetworkInterfaceId", "Ipv6Sets": {"Ipv6Address": [...]}}.
TEST_F(EcsClientTest, AssignIpv6ByAddressRetriesThrottlingWithOneClientToken) {
  std::vector<std::string> tokens;
  Serve([&](const QueryParams& p) -> Result<HttpResponse> {
    EXPECT_EQ(p.at("Action"), "AssignIpv6Addresses");
    EXPECT_EQ(p.at("NetworkInterfaceId"), "eni-1");
    EXPECT_EQ(p.at("Ipv6Address.1"), "fd00:1::10");
    EXPECT_EQ(p.at("Ipv6Address.2"), "fd00:1::11");
    EXPECT_EQ(p.count("Ipv6AddressCount"), 0u);
    tokens.push_back(p.at("ClientToken"));
    if (tokens.size() == 1) {
      return FakeHttpTransport::Reply(400, R"({"Code":"Throttling","Message":"slow down","RequestId":"r"})");
    }
    return FakeHttpTransport::Reply(
        200, R"({"RequestId":"r","NetworkInterfaceId":"eni-1","Ipv6Sets":{"Ipv6Address":["fd00:1::10","fd00:1::11"]}})");
  });
  auto r = ecs_->AssignIpv6Addresses({"eni-1", 0, {"fd00:1::10", "fd00:1::11"}, "v6-tok"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, (std::vector<std::string>{"fd00:1::10", "fd00:1::11"}));
  EXPECT_EQ(tokens, (std::vector<std::string>{"v6-tok", "v6-tok"}));
}

TEST_F(EcsClientTest, AssignIpv6ErrorsAreTheCloudsAndAShortAnswerIsAnError) {
  int calls = 0;
  std::string code = "InvalidOperation.Ipv6CountExceeded";
  Serve([&](const QueryParams& p) -> Result<HttpResponse> {
    calls++;
    if (p.at("Ipv6AddressCount") == "3") {
      return FakeHttpTransport::Reply(
          403, fmt::format(R"({{"Code":"{}","Message":"m","RequestId":"r","HostId":"h"}})", code));
    }
    return Ok({{"NetworkInterfaceId", "eni-1"}, {"Ipv6Sets", {{"Ipv6Address", {"fd00:1::5"}}}}});
  });
  for (const char* c : {"InvalidOperation.Ipv6CountExceeded", "InvalidVSwitch.Ipv6NotTurnOn",
                        "InvalidOperation.Ipv6NotSupport"}) {
    code = c;
    calls = 0;
    auto r = ecs_->AssignIpv6Addresses({"eni-1", 3, {}, ""});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().cloud_code, c);
    EXPECT_EQ(r.error().http_status, 403);
    EXPECT_EQ(calls, 1) << c << ": a caller error is not retried";
  }
  // Asked for two, told of one: the caller could not track the other.
  auto short_answer = ecs_->AssignIpv6Addresses({"eni-1", 2, {}, ""});
  ASSERT_FALSE(short_answer.ok());
  EXPECT_NE(short_answer.error().message.find("asked 2"), std::string::npos) << short_answer.error().ToString();
  // Neither or both of count and addresses: refused before any call.
  calls = 0;
  EXPECT_FALSE(ecs_->AssignIpv6Addresses({"eni-1", 0, {}, ""}).ok());
  EXPECT_FALSE(ecs_->AssignIpv6Addresses({"eni-1", 1, {"fd00:1::5"}, ""}).ok());
  EXPECT_FALSE(ecs_->AssignIpv6Addresses({"", 1, {}, ""}).ok());
  EXPECT_EQ(calls, 0);
}

// The IPv6 fields of the documented wire shapes: an ENI's Ipv6Sets, a type's
// EniIpv6AddressQuantity, a vSwitch's Ipv6CidrBlock.
TEST_F(EcsClientTest, Ipv6FieldsOfDescribeReplies) {
  Serve([](const QueryParams& p) -> Result<HttpResponse> {
    const std::string& a = p.at("Action");
    if (a == "DescribeNetworkInterfaces") {
      return FakeHttpTransport::Reply(200, R"({"RequestId":"r","TotalCount":1,"NextToken":"",
        "NetworkInterfaceSets":{"NetworkInterfaceSet":[{"NetworkInterfaceId":"eni-1","Status":"InUse",
          "Ipv6Sets":{"Ipv6Set":[{"Ipv6Address":"fd00:1::5"},{"Ipv6Address":"fd00:1::6"}]}}]}})");
    }
    if (a == "DescribeInstanceTypes") {
      return FakeHttpTransport::Reply(200, R"({"RequestId":"r","NextToken":"","InstanceTypes":{"InstanceType":[
        {"InstanceTypeId":"ecs.g7.large","EniQuantity":3,"EniPrivateIpAddressQuantity":6,
         "EniIpv6AddressQuantity":6}]}})");
    }
    return FakeHttpTransport::Reply(200, R"({"RequestId":"r","TotalCount":1,"VSwitches":{"VSwitch":[
      {"VSwitchId":"vsw-1","CidrBlock":"198.18.0.0/24","Ipv6CidrBlock":"fd00:1::/64"}]}})");
  });
  auto enis = ecs_->DescribeNetworkInterfaces({});
  ASSERT_TRUE(enis.ok()) << enis.error().ToString();
  ASSERT_EQ(enis->size(), 1u);
  EXPECT_EQ((*enis)[0].ipv6_sets, (std::vector<std::string>{"fd00:1::5", "fd00:1::6"}));
  auto types = ecs_->DescribeInstanceTypes({"ecs.g7.large"});
  ASSERT_TRUE(types.ok()) << types.error().ToString();
  EXPECT_EQ(types->at(0).eni_ipv6_address_quantity, 6);
  auto vsws = ecs_->DescribeVSwitches("", {"vsw-1"});
  ASSERT_TRUE(vsws.ok()) << vsws.error().ToString();
  EXPECT_EQ(vsws->at(0).ipv6_cidr_block, "fd00:1::/64");
}

TEST_F(EcsClientTest, DescribeInstanceTypesVSwitchesInstances) {
  Serve([](const QueryParams& p) {
    const std::string& a = p.at("Action");
    if (a == "DescribeInstanceTypes") {
      EXPECT_EQ(p.at("InstanceTypes.1"), "ecs.g7.large");
      InstanceType t;
      t.instance_type_id = "ecs.g7.large";
      t.eni_quantity = 3;
      t.eni_private_ip_address_quantity = 6;
      return Ok({{"InstanceTypes", {{"InstanceType", {ToJson(t)}}}}});
    }
    if (a == "DescribeVSwitches") {
      EXPECT_EQ(p.at("Version"), "2016-04-28");
      VSwitch v;
      v.vswitch_id = p.at("VSwitchId");
      v.cidr_block = "198.18.0.0/24";
      v.available_ip_address_count = 200;
      return Ok({{"TotalCount", 1}, {"VSwitches", {{"VSwitch", {ToJson(v)}}}}});
    }
    EXPECT_EQ(a, "DescribeInstances");
    EXPECT_EQ(p.at("InstanceIds"), R"(["i-1"])");
    Instance i;
    i.instance_id = "i-1";
    i.instance_type = "ecs.g7.large";
    return Ok({{"Instances", {{"Instance", {ToJson(i)}}}}});
  });
  auto types = ecs_->DescribeInstanceTypes({"ecs.g7.large"});
  ASSERT_TRUE(types.ok()) << types.error().ToString();
  ASSERT_EQ(types->size(), 1u);
  EXPECT_EQ((*types)[0].eni_quantity, 3);
  auto vsws = ecs_->DescribeVSwitches("vpc-1", {"vsw-a", "vsw-b"});
  ASSERT_TRUE(vsws.ok()) << vsws.error().ToString();
  ASSERT_EQ(vsws->size(), 2u);
  EXPECT_EQ((*vsws)[1].vswitch_id, "vsw-b");
  auto inst = ecs_->DescribeInstances({"i-1"});
  ASSERT_TRUE(inst.ok()) << inst.error().ToString();
  ASSERT_EQ(inst->size(), 1u);
  EXPECT_EQ((*inst)[0].instance_type, "ecs.g7.large");
}

NetworkInterface Eni(const std::string& status) {
  NetworkInterface e;
  e.network_interface_id = "eni-1";
  e.status = status;
  return e;
}

TEST(WaitForEniStatusTest, PollsUntilTheWantedStatus) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  MockEcsApi api;
  Error transient(ErrorCode::kCloud, "Throttling");
  transient.retryable = true;
  EXPECT_CALL(api, DescribeNetworkInterfaces(_))
      .WillOnce(Return(std::vector<NetworkInterface>{Eni("Attaching")}))
      .WillOnce(Return(transient))
      .WillOnce(Return(std::vector<NetworkInterface>{Eni("Attaching")}))
      .WillOnce(Return(std::vector<NetworkInterface>{Eni("InUse")}));
  WaitOptions opts;
  opts.backoff = {.duration = std::chrono::milliseconds(500), .factor = 2.0, .steps = 10,
                  .cap = std::chrono::milliseconds(1000)};
  auto r = WaitForEniStatus(&api, "eni-1", kEniInUse, &clock, &sleeper, opts);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, "InUse");
  auto sleeps = sleeper.sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  EXPECT_EQ(sleeps[0], std::chrono::milliseconds(500));
  EXPECT_EQ(sleeps[1], std::chrono::milliseconds(1000));
  EXPECT_EQ(sleeps[2], std::chrono::milliseconds(1000));  // bounded
}

TEST(WaitForEniStatusTest, TimesOutNamingTheLastStatus) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  MockEcsApi api;
  EXPECT_CALL(api, DescribeNetworkInterfaces(_))
      .Times(4)
      .WillRepeatedly(Return(std::vector<NetworkInterface>{Eni("Detaching")}));
  WaitOptions opts;
  opts.backoff = {.duration = std::chrono::seconds(1), .factor = 2.0, .steps = 4};
  auto start = clock.Steady();
  auto r = WaitForEniStatus(&api, "eni-1", kEniAvailable, &clock, &sleeper, opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("still Detaching"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("after 4 polls"), std::string::npos) << r.error().message;
  EXPECT_EQ(clock.Steady() - start, std::chrono::seconds(1 + 2 + 4));  // no wait after the last poll
}

// The default keeps the wait this terwayd always had: about two minutes,
// 0.5 s doubling to 5 s.
TEST(WaitForEniStatusTest, DefaultWaitIsAboutTwoMinutes) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  MockEcsApi api;
  EXPECT_CALL(api, DescribeNetworkInterfaces(_))
      .WillRepeatedly(Return(std::vector<NetworkInterface>{Eni("Attaching")}));
  auto start = clock.Steady();
  auto r = WaitForEniStatus(&api, "eni-1", kEniInUse, &clock, &sleeper);
  ASSERT_FALSE(r.ok());
  auto waited = clock.Steady() - start;
  EXPECT_GE(waited, std::chrono::seconds(110));
  EXPECT_LE(waited, std::chrono::seconds(125));
  EXPECT_EQ(sleeper.sleeps().front(), std::chrono::milliseconds(500));
  EXPECT_EQ(sleeper.sleeps().back(), std::chrono::seconds(5));
}

TEST(WaitForEniStatusTest, InitialDelayAndJitterAsUpstream) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  MockEcsApi api;
  EXPECT_CALL(api, DescribeNetworkInterfaces(_))
      .WillOnce(Return(std::vector<NetworkInterface>{Eni("Attaching")}))
      .WillOnce(Return(std::vector<NetworkInterface>{Eni("InUse")}));
  WaitOptions opts;
  opts.backoff = {.initial_delay = std::chrono::seconds(3), .duration = std::chrono::seconds(2),
                  .factor = 1.5, .jitter = 0.5, .steps = 8};
  opts.random = [] { return 0.5; };
  auto r = WaitForEniStatus(&api, "eni-1", kEniInUse, &clock, &sleeper, opts);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto sleeps = sleeper.sleeps();
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_EQ(sleeps[0], std::chrono::seconds(3));         // before the first poll
  EXPECT_EQ(sleeps[1], std::chrono::milliseconds(2500));  // 2 s stretched by 0.5 x 0.5
}

TEST(StepBackoffTest, DelaysGrowByFactorUpToTheCap) {
  StepBackoff b{.duration = std::chrono::seconds(1), .factor = 3, .steps = 5,
                .cap = std::chrono::seconds(5)};
  EXPECT_EQ(StepBackoffDelay(b, 0, 0), std::chrono::seconds(1));
  EXPECT_EQ(StepBackoffDelay(b, 1, 0), std::chrono::seconds(3));
  EXPECT_EQ(StepBackoffDelay(b, 2, 0), std::chrono::seconds(5));
  b.factor = 0;  // Kubernetes: no growth
  EXPECT_EQ(StepBackoffDelay(b, 3, 0), std::chrono::seconds(1));
  EXPECT_EQ(StepBackoffMaxTotal(b), std::chrono::seconds(4));
}

TEST(WaitForEniStatusTest, VanishedOrCallerErrorStopsAtOnce) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  MockEcsApi api;
  EXPECT_CALL(api, DescribeNetworkInterfaces(_))
      .WillOnce(Return(std::vector<NetworkInterface>{}))
      .WillOnce(Return(Error(ErrorCode::kCloud, "Forbidden")));
  auto r = WaitForEniStatus(&api, "eni-1", kEniInUse, &clock, &sleeper);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  r = WaitForEniStatus(&api, "eni-1", kEniInUse, &clock, &sleeper);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCloud);
  EXPECT_TRUE(sleeper.sleeps().empty());
}

}  // namespace
}  // namespace terway::cloud
