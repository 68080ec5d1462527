// ENI actions: happy paths, async attach/detach, quotas, exhaustion,
// documented errors, idempotency and durability across a restart.
#include <set>

#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class EniTest : public CloudFixture {};

TEST_F(EniTest, CreateReturnsDocumentedShapeWithAlibabaMac) {
  auto j = Ok("CreateNetworkInterface", {{"VSwitchId", "vsw-a"},
                                         {"SecurityGroupId", "sg-test"},
                                         {"SecondaryPrivateIpAddressCount", "2"},
                                         {"NetworkInterfaceName", "pool"},
                                         {"Tag.1.Key", "creator"},
                                         {"Tag.1.Value", "terway"}});
  EXPECT_EQ(j["Status"], "Available");
  EXPECT_EQ(j["Type"], "Secondary");
  EXPECT_EQ(j["VpcId"], "vpc-test");
  EXPECT_EQ(j["ZoneId"], "cn-hangzhou-h");
  EXPECT_TRUE(j.contains("RequestId"));
  EXPECT_EQ(j["MacAddress"].get<std::string>().substr(0, 8), "00:16:3e");
  ASSERT_EQ(j["PrivateIpSets"]["PrivateIpSet"].size(), 3u);
  EXPECT_EQ(j["PrivateIpSets"]["PrivateIpSet"][0]["Primary"], true);
  EXPECT_EQ(j["Tags"]["Tag"][0]["TagValue"], "terway");
  auto cidr = *Ipv4Cidr::Parse("198.18.0.0/24");
  for (const auto& ip : j["PrivateIpSets"]["PrivateIpSet"]) {
    auto a = Ipv4Addr::Parse(ip["PrivateIpAddress"].get<std::string>());
    ASSERT_TRUE(a.ok());
    EXPECT_TRUE(cidr.Contains(*a));
    EXPECT_NE(a->ToString(), "198.18.0.0");
    EXPECT_NE(a->ToString(), "198.18.0.253");  // the gateway is never handed out
  }
  auto parsed = cloud::NetworkInterfaceFromJson(j);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->network_interface_name, "pool");
}

TEST_F(EniTest, CreateErrors) {
  EXPECT_EQ(Fail("CreateNetworkInterface", {{"SecurityGroupId", "sg"}}), "400 MissingParameter");
  EXPECT_EQ(Fail("CreateNetworkInterface", {{"VSwitchId", "vsw-nope"}, {"SecurityGroupId", "sg"}}),
            "404 InvalidVSwitchId.NotFound");
  EXPECT_EQ(Fail("CreateNetworkInterface", {{"VSwitchId", "vsw-a"}}), "400 MissingParameter");
  EXPECT_EQ(Fail("CreateNetworkInterface",
                 {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"}, {"SecondaryPrivateIpAddressCount", "x"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("CreateNetworkInterface",
                 {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"}, {"PrivateIpAddress.1", "198.18.9.9"}}),
            "403 InvalidVSwitchId.IpInvalid");
}

TEST_F(EniTest, AttachAndDetachAreAsynchronous) {
  std::string eni = CreateEni();
  Ok("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}});
  EXPECT_EQ(Eni(eni)["Status"], "Attaching");
  clock_.Advance(std::chrono::milliseconds(400));
  EXPECT_EQ(cloud_->Tick(), 0);
  EXPECT_EQ(Eni(eni)["Status"], "Attaching");
  EXPECT_EQ(fabric_->AttachedEnis().count(eni), 0u);
  clock_.Advance(std::chrono::milliseconds(200));
  EXPECT_EQ(cloud_->Tick(), 1);
  auto e = Eni(eni);
  EXPECT_EQ(e["Status"], "InUse");
  EXPECT_EQ(e["InstanceId"], "i-tiny");
  EXPECT_EQ(e["Attachment"]["DeviceIndex"], 1);
  EXPECT_EQ(fabric_->AttachedEnis().at(eni), 1);

  Ok("DetachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}});
  EXPECT_EQ(Eni(eni)["Status"], "Detaching");
  clock_.Advance(std::chrono::seconds(1));
  cloud_->Tick();
  e = Eni(eni);
  EXPECT_EQ(e["Status"], "Available");
  EXPECT_EQ(e["InstanceId"], "");
  EXPECT_EQ(fabric_->AttachedEnis().count(eni), 0u);
  Ok("DeleteNetworkInterface", {{"NetworkInterfaceId", eni}});
  EXPECT_EQ(Fail("DeleteNetworkInterface", {{"NetworkInterfaceId", eni}}), "404 InvalidEniId.NotFound");
}

TEST_F(EniTest, StateErrors) {
  std::string eni = CreateEni();
  EXPECT_EQ(Fail("DetachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}}),
            "400 InvalidOperation.InvalidEniState");
  Ok("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}});
  // In flight: another task on the same ENI conflicts.
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}}),
            "403 Operation.Conflict");
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}}),
            "403 Operation.Conflict");
  clock_.Advance(std::chrono::seconds(1));
  cloud_->Tick();
  EXPECT_EQ(Fail("DeleteNetworkInterface", {{"NetworkInterfaceId", eni}}), "400 InvalidOperation.InvalidEniState");
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}}),
            "400 InvalidOperation.InvalidEniState");
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", "eni-nope"}, {"InstanceId", "i-big"}}),
            "404 InvalidEniId.NotFound");
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", eni}}), "400 MissingParameter");
  std::string other = CreateEni();
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", other}, {"InstanceId", "i-nope"}}),
            "404 InvalidInstanceId.NotFound");
  // The primary ENI is neither detached nor deleted.
  auto prim = Ok("DescribeNetworkInterfaces", {{"InstanceId", "i-tiny"}, {"Type", "Primary"}});
  std::string pid = prim["NetworkInterfaceSets"]["NetworkInterfaceSet"][0]["NetworkInterfaceId"];
  EXPECT_EQ(Fail("DetachNetworkInterface", {{"NetworkInterfaceId", pid}, {"InstanceId", "i-tiny"}}),
            "403 InvalidOperation.InvalidEniType");
  EXPECT_EQ(Fail("DeleteNetworkInterface", {{"NetworkInterfaceId", pid}}), "403 InvalidOperation.InvalidEniType");
}

TEST_F(EniTest, EniQuotaPerInstance) {
  // ecs.vpcsim.tiny: 3 ENIs including the primary.
  AttachAndWait(CreateEni(), "i-tiny");
  AttachAndWait(CreateEni(), "i-tiny");
  std::string third = CreateEni();
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", third}, {"InstanceId", "i-tiny"}}),
            "403 EniPerInstanceLimitExceeded");
  AttachAndWait(third, "i-big");
  EXPECT_EQ(Eni(third)["Attachment"]["DeviceIndex"], 1);
}

TEST_F(EniTest, PrivateIpQuotaPerEni) {
  // ecs.vpcsim.tiny: 3 private IPs per ENI including the primary.
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-tiny");
  auto j = Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "2"}});
  auto& set = j["AssignedPrivateIpAddressesSet"];
  EXPECT_EQ(set["NetworkInterfaceId"], eni);
  ASSERT_EQ(set["PrivateIpSet"]["PrivateIpAddress"].size(), 2u);
  EXPECT_EQ(fabric_->EniIps(eni).size(), 3u);
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}}),
            "403 InvalidOperation.Ipv4CountExceeded");
  // An ENI that holds more than the type allows cannot be attached there.
  std::string fat = CreateEni("vsw-a", {{"SecondaryPrivateIpAddressCount", "5"}});
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", fat}, {"InstanceId", "i-tiny"}}),
            "403 InvalidOperation.Ipv4CountExceeded");
}

TEST_F(EniTest, AssignSpecificAndUnassign) {
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-big");
  Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.100"},
                                  {"PrivateIpAddress.2", "198.18.0.101"}});
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.100"}}),
            "403 InvalidIp.IpAssigned");
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}}), "400 MissingParameter");
  EXPECT_EQ(Fail("UnassignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.102"}}),
            "403 InvalidIp.IpUnassigned");
  std::string primary = Eni(eni)["PrivateIpAddress"];
  EXPECT_EQ(Fail("UnassignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", primary}}),
            "403 InvalidIp.IpUnassigned");
  // All or nothing: one unknown IP fails the whole call.
  EXPECT_EQ(Fail("UnassignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.100"},
                                                {"PrivateIpAddress.2", "198.18.0.150"}}),
            "403 InvalidIp.IpUnassigned");
  EXPECT_EQ(Eni(eni)["PrivateIpSets"]["PrivateIpSet"].size(), 3u);
  Ok("UnassignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.100"}});
  auto ips = Eni(eni)["PrivateIpSets"]["PrivateIpSet"];
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[1]["PrivateIpAddress"], "198.18.0.101");
  EXPECT_EQ(fabric_->EniIps(eni).size(), 2u);
  // The freed address can be assigned again.
  Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.0.100"}});
}

TEST_F(EniTest, VSwitchExhaustion) {
  // vsw-b is a /29: 8 addresses, 4 reserved, 4 usable.
  auto available = [&] {
    HttpReply r = Raw("DescribeVSwitches", {{"VSwitchId", "vsw-b"}}, {}, "GET", cloud::kVpcApiVersion);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body)["VSwitches"]["VSwitch"][0]["AvailableIpAddressCount"].get<int>();
  };
  EXPECT_EQ(available(), 4);
  std::string eni = CreateEni("vsw-b", {{"SecondaryPrivateIpAddressCount", "3"}});
  EXPECT_EQ(available(), 0);
  EXPECT_EQ(Fail("CreateNetworkInterface", {{"VSwitchId", "vsw-b"}, {"SecurityGroupId", "sg"}}),
            "403 InvalidVSwitchId.IpNotEnough");
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}}),
            "403 InvalidVSwitchId.IpNotEnough");
  Ok("UnassignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"PrivateIpAddress.1", "198.18.1.2"}});
  auto j = Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}});
  EXPECT_EQ(j["AssignedPrivateIpAddressesSet"]["PrivateIpSet"]["PrivateIpAddress"][0], "198.18.1.2");
}

TEST_F(EniTest, FailedMultiAssignLeaksNothing) {
  std::string eni = CreateEni("vsw-b");  // 1 of 4 used
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "4"}}),
            "403 InvalidVSwitchId.IpNotEnough");
  Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "3"}});
}

TEST_F(EniTest, Ipv6AssignQuotaAndUnassign) {
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-tiny");  // 3 IPv6 per ENI
  auto j = Ok("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "2"}});
  ASSERT_EQ(j["Ipv6Sets"]["Ipv6Address"].size(), 2u);
  std::string v6 = j["Ipv6Sets"]["Ipv6Address"][0];
  EXPECT_TRUE(Ipv6Cidr::Parse("fd00:1::/64")->Contains(*Ipv6Addr::Parse(v6)));
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "2"}}),
            "403 InvalidOperation.Ipv6CountExceeded");
  EXPECT_EQ(Eni(eni)["Ipv6Sets"]["Ipv6Set"].size(), 2u);
  EXPECT_EQ(Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", "fd00:1::ffff"}}),
            "403 InvalidIp.IpUnassigned");
  Ok("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", v6}});
  EXPECT_EQ(Eni(eni)["Ipv6Sets"]["Ipv6Set"].size(), 1u);
  std::string nov6 = CreateEni("vsw-c");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", nov6}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidVSwitch.Ipv6NotTurnOn");
}

TEST_F(EniTest, ClientTokenMakesCreateAndAssignIdempotent) {
  cloud::QueryParams p = {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg-test"}, {"ClientToken", "tok-1"}};
  auto a = Ok("CreateNetworkInterface", p);
  auto b = Ok("CreateNetworkInterface", p);
  EXPECT_EQ(a["NetworkInterfaceId"], b["NetworkInterfaceId"]);
  EXPECT_NE(a["RequestId"], b["RequestId"]);
  auto all = Ok("DescribeNetworkInterfaces", {{"Type", "Secondary"}});
  EXPECT_EQ(all["TotalCount"], 1);
  p["NetworkInterfaceName"] = "different";
  EXPECT_EQ(Fail("CreateNetworkInterface", p), "400 IdempotentParameterMismatch");

  std::string eni = a["NetworkInterfaceId"];
  cloud::QueryParams ap = {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "2"}, {"ClientToken", "tok-2"}};
  auto x = Ok("AssignPrivateIpAddresses", ap);
  Reopen();  // the token outlives a restart
  auto y = Ok("AssignPrivateIpAddresses", ap);
  EXPECT_EQ(x["AssignedPrivateIpAddressesSet"], y["AssignedPrivateIpAddressesSet"]);
  EXPECT_EQ(Eni(eni)["PrivateIpSets"]["PrivateIpSet"].size(), 3u);
  // The same token on another action is a mismatch, not a replay.
  EXPECT_EQ(Fail("CreateNetworkInterface", {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"}, {"ClientToken", "tok-2"}}),
            "400 IdempotentParameterMismatch");
}

TEST_F(EniTest, StateSurvivesRestartAndFabricIsRecreated) {
  std::string eni = CreateEni("vsw-a", {{"Tag.1.Key", "creator"}, {"Tag.1.Value", "terway"}});
  AttachAndWait(eni, "i-big");
  Ok("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "3"}});
  std::string detached = CreateEni();
  std::string attaching = CreateEni();
  Ok("AttachNetworkInterface", {{"NetworkInterfaceId", attaching}, {"InstanceId", "i-big"}});
  auto before = Eni(eni);
  auto summary_before = cloud_->Summary();

  Reopen();
  auto after = Eni(eni);
  EXPECT_EQ(after, before);
  EXPECT_EQ(Eni(detached)["Status"], "Available");
  EXPECT_EQ(Eni(attaching)["Status"], "Attaching");
  EXPECT_EQ(cloud_->Summary(), summary_before);
  // The fresh fabric was told to rebuild everything the state says exists.
  auto calls = fabric_->Calls();
  auto has = [&](const std::string& prefix) {
    return std::any_of(calls.begin(), calls.end(), [&](const std::string& c) { return c.rfind(prefix, 0) == 0; });
  };
  EXPECT_TRUE(has("EnsureVpc vpc-test 198.18.0.0/16"));
  EXPECT_TRUE(has("EnsureVSwitch vsw-a 198.18.0.0/24 198.18.0.253"));
  EXPECT_TRUE(has("EnsureInstance i-tiny"));
  EXPECT_TRUE(has("EnsureInstance i-big"));
  EXPECT_TRUE(has("AttachEni " + eni + " i-big 1"));
  EXPECT_TRUE(has("SetEniIps " + eni + " 4"));
  EXPECT_FALSE(has("AttachEni " + detached));
  // The in-flight attach completes after the restart.
  clock_.Advance(std::chrono::seconds(1));
  cloud_->Tick();
  EXPECT_EQ(Eni(attaching)["Status"], "InUse");
  // Addresses in use stay in use: a new ENI never reuses one.
  std::set<std::string> used;
  for (const auto& ip : after["PrivateIpSets"]["PrivateIpSet"]) used.insert(ip["PrivateIpAddress"]);
  auto fresh = Ok("CreateNetworkInterface", {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"}});
  EXPECT_FALSE(used.count(fresh["PrivateIpAddress"]));
}

TEST_F(EniTest, FaultsInjectThrottlingServerErrorsAndCount) {
  FaultSpec f;
  f.throttle_rate = 1.0;
  faults_.Set("AssignPrivateIpAddresses", f);
  std::string eni = CreateEni();
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}}),
            "400 Throttling");
  f.throttle_code = "Throttling.User";
  faults_.Set("AssignPrivateIpAddresses", f);
  EXPECT_EQ(Fail("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "1"}}),
            "400 Throttling.User");
  f = FaultSpec{};
  f.error_rate = 1.0;
  faults_.Set("*", f);
  std::string r = Fail("DescribeNetworkInterfaces", {});
  EXPECT_TRUE(r == "500 InternalError" || r == "503 ServiceUnavailable") << r;
  faults_.ClearAll();
  Ok("DescribeNetworkInterfaces", {});
  EXPECT_EQ(counters_.Calls("AssignPrivateIpAddresses"), 2u);
  EXPECT_EQ(counters_.Errors("AssignPrivateIpAddresses", "Throttling"), 1u);
  EXPECT_EQ(counters_.Calls("DescribeNetworkInterfaces"), 2u);
  EXPECT_EQ(counters_.Calls("CreateNetworkInterface"), 1u);
  auto j = counters_.ToJson();
  EXPECT_EQ(j["actions"]["AssignPrivateIpAddresses"]["errors_by_code"]["Throttling"], 1);
}

TEST_F(EniTest, FaultRatesAreStatistical) {
  FaultSpec f;
  f.throttle_rate = 0.3;
  faults_.Set("DescribeInstanceTypes", f);
  int throttled = 0;
  for (int i = 0; i < 400; i++) {
    if (Raw("DescribeInstanceTypes", {}).status != 200) throttled++;
  }
  EXPECT_GT(throttled, 80);
  EXPECT_LT(throttled, 160);
}

TEST_F(EniTest, LatencyAttachDelayAndStuckDetaching) {
  std::vector<std::chrono::milliseconds> slept;
  api_->SetSleeper([&](std::chrono::milliseconds d) { slept.push_back(d); });
  FaultSpec lat;
  lat.latency_ms = 250;
  faults_.Set("DescribeVSwitches", lat);
  Ok("DescribeNetworkInterfaces", {});
  EXPECT_TRUE(slept.empty());
  EXPECT_EQ(Raw("DescribeVSwitches", {}, {}, "GET", cloud::kVpcApiVersion).status, 200);
  ASSERT_EQ(slept.size(), 1u);
  EXPECT_EQ(slept[0].count(), 250);

  FaultSpec slow;
  slow.attach_delay_ms = 5000;
  faults_.Set("AttachNetworkInterface", slow);
  std::string eni = CreateEni();
  Ok("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}});
  clock_.Advance(std::chrono::seconds(4));
  cloud_->Tick();
  EXPECT_EQ(Eni(eni)["Status"], "Attaching");
  clock_.Advance(std::chrono::seconds(2));
  cloud_->Tick();
  EXPECT_EQ(Eni(eni)["Status"], "InUse");

  FaultSpec stuck;
  stuck.stuck_detaching = true;
  faults_.Set("DetachNetworkInterface", stuck);
  Ok("DetachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}});
  clock_.Advance(std::chrono::minutes(10));
  cloud_->Tick();
  EXPECT_EQ(Eni(eni)["Status"], "Detaching");
  faults_.Clear("DetachNetworkInterface");
  cloud_->Tick();
  EXPECT_EQ(Eni(eni)["Status"], "Available");
}

}  // namespace
}  // namespace terway::vpcsim::testing
