// An instance's own IPv6 (RunInstances' Ipv6AddressCount, issue 15): the
// world file's and the admin endpoint's `ipv6_address_count` give the primary
// ENI IPv6 addresses of its vSwitch, which DescribeNetworkInterfaces lists in
// Ipv6Sets, the metadata service under the primary MAC's `ipv6s`, and the
// fabric routes; they survive a restart, stay taken, count against the type's
// quota and are freed with the instance. A count the vSwitch or the type
// cannot serve is refused and allocates nothing.
#include <set>

#include "test_util.h"
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class InstanceIpv6Test : public CloudFixture {
 protected:
  InstanceIpv6Test() {
    // i-v6: an ecs.vpcsim.tiny (3 IPv6 per ENI) created with one IPv6.
    const std::string marker = "instances:\n";
    world_yaml_.insert(world_yaml_.find(marker) + marker.size(),
                       "  - {id: i-v6, instance_type: ecs.vpcsim.tiny, vswitch: vsw-a, ipv6_address_count: 1}\n");
  }
  // The instance's primary ENI as DescribeNetworkInterfaces answers it.
  json Primary(const std::string& instance) {
    auto j = Ok("DescribeNetworkInterfaces", {{"InstanceId", instance}, {"Type", "Primary"}});
    const auto& set = j["NetworkInterfaceSets"]["NetworkInterfaceSet"];
    EXPECT_EQ(set.size(), 1u) << instance << ": " << j.dump();
    return set.empty() ? json::object() : set[0];
  }
  std::vector<std::string> Ipv6Sets(const json& eni) {
    std::vector<std::string> out;
    for (const auto& s : eni["Ipv6Sets"]["Ipv6Set"]) out.push_back(s["Ipv6Address"]);
    return out;
  }
  HttpReply Metadata(const std::string& instance, const std::string& path) {
    return metadata_->Handle({"GET", "/latest/meta-data/" + path, std::nullopt, std::nullopt, instance});
  }
  std::vector<std::string> FabricIpv6s(const std::string& eni) {
    std::vector<std::string> out;
    for (const auto& a : fabric_->EniIpv6s(eni)) out.push_back(a.ToString());
    return out;
  }
  // vsw-a's (IPv4, IPv6) addresses in use, as `vpcsim describe` reports them.
  std::pair<int, int> VswAUsed() {
    const json summary = cloud_->Summary();  // kept: a range-for over a member of a temporary dangles
    for (const auto& v : summary["vswitches"]) {
      if (v["id"] == "vsw-a") return {v["used"].get<int>(), v["ipv6_used"].get<int>()};
    }
    ADD_FAILURE() << "vsw-a missing from the summary";
    return {-1, -1};
  }
};

TEST_F(InstanceIpv6Test, TheWorldsInstanceHasAnIpv6OnItsPrimaryEniEverywhereTheCloudShowsIt) {
  json eni = Primary("i-v6");
  auto v6 = Ipv6Sets(eni);
  ASSERT_EQ(v6.size(), 1u) << eni.dump();
  auto a = Ipv6Addr::Parse(v6[0]);
  ASSERT_TRUE(a.ok()) << v6[0];
  EXPECT_TRUE(Ipv6Assignable(*Ipv6Cidr::Parse("fd00:1::/64"), *a)) << v6[0];
  // The metadata service: under the primary MAC, as ECS lists an ENI's IPv6.
  std::string mac = Metadata("i-v6", "mac").body;
  EXPECT_EQ(mac, eni["MacAddress"]);
  HttpReply ipv6s = Metadata("i-v6", "network/interfaces/macs/" + mac + "/ipv6s");
  EXPECT_EQ(ipv6s.status, 200) << ipv6s.body;
  EXPECT_EQ(ipv6s.body, "[" + v6[0] + "]");
  EXPECT_EQ(Metadata("i-v6", "network/interfaces/macs/" + mac + "/ipv6-gateway").body, "fd00:1::ffff:ffff:ffff:fff7");
  // The fabric routes it to the primary ENI (and allows it as its source).
  EXPECT_EQ(FabricIpv6s(eni["NetworkInterfaceId"]), v6);
  // DescribeInstances shows the same ENI with it.
  auto inst = Ok("DescribeInstances", {{"InstanceIds", "[\"i-v6\"]"}})["Instances"]["Instance"][0];
  EXPECT_EQ(Ipv6Sets(inst["NetworkInterfaces"]["NetworkInterface"][0]), v6) << inst.dump();
  // An instance created without the count has none, as on ECS.
  json plain = Primary("i-big");
  EXPECT_TRUE(Ipv6Sets(plain).empty()) << plain.dump();
  EXPECT_EQ(Metadata("i-big", "network/interfaces/macs/" + plain["MacAddress"].get<std::string>() + "/ipv6s").status,
            404);
  EXPECT_TRUE(FabricIpv6s(plain["NetworkInterfaceId"]).empty());
  EXPECT_EQ(VswAUsed().second, 1);
}

TEST_F(InstanceIpv6Test, TheAddressSurvivesARestartStaysTakenAndCountsAgainstTheQuota) {
  const std::string eni = Primary("i-v6")["NetworkInterfaceId"];
  const auto v6 = Ipv6Sets(Primary("i-v6"));
  ASSERT_EQ(v6.size(), 1u);
  Reopen();
  EXPECT_EQ(Ipv6Sets(Primary("i-v6")), v6);
  EXPECT_EQ(FabricIpv6s(eni), v6) << "SyncFabric gives the instance its IPv6 again";
  std::string other = CreateEni();
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", other}, {"Ipv6Address.1", v6[0]}}),
            "403 InvalidIp.IpAssigned");
  // ecs.vpcsim.tiny: 3 IPv6 per ENI, one of them the instance's own.
  Ok("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "2"}});
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidOperation.Ipv6CountExceeded");
  EXPECT_EQ(Ipv6Sets(Primary("i-v6")).front(), v6[0]);
}

TEST_F(InstanceIpv6Test, TheAdminEndpointTakesIpv6AddressCountAndReleasingTheInstanceFreesIt) {
  const auto before = VswAUsed();
  HttpReply r = admin_->Handle("POST", "/admin/instances",
                               R"({"id":"i-node1","instance_type":"ecs.g7.large","vswitch":"vsw-a","ipv6_address_count":2})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto j = json::parse(r.body);
  std::vector<std::string> v6 = j["ipv6s"];
  ASSERT_EQ(v6.size(), 2u) << r.body;
  EXPECT_EQ(Ipv6Sets(Primary("i-node1")), v6);
  EXPECT_EQ(FabricIpv6s(j["primary_eni"]), v6);
  EXPECT_EQ(Metadata("i-node1", "network/interfaces/macs/" + j["mac"].get<std::string>() + "/ipv6s").body,
            "[" + v6[0] + "," + v6[1] + "]");
  EXPECT_EQ(VswAUsed(), std::make_pair(before.first + 1, before.second + 2));
  ASSERT_EQ(admin_->Handle("DELETE", "/admin/instances/i-node1", "").status, 200);
  EXPECT_EQ(VswAUsed(), before);
  std::string eni = CreateEni();
  Ok("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", v6[1]}});  // free again
}

TEST_F(InstanceIpv6Test, ACountTheVSwitchOrTheTypeCannotServeIsRefusedAndAllocatesNothing) {
  const auto before = VswAUsed();
  auto add = [&](const std::string& body) {
    HttpReply r = admin_->Handle("POST", "/admin/instances", body);
    return std::to_string(r.status) + " " + json::parse(r.body).value("error", "");
  };
  auto refused = [&](const std::string& body, const std::string& why) {
    std::string got = add(body);
    EXPECT_EQ(got.rfind("400 ", 0), 0u) << body << ": " << got;
    EXPECT_NE(got.find(why), std::string::npos) << body << ": " << got;
  };
  refused(R"({"id":"i-x","instance_type":"ecs.g7.large","vswitch":"vsw-b","ipv6_address_count":1})",
          "vswitch vsw-b has no ipv6_cidr");
  refused(R"({"id":"i-x","instance_type":"ecs.vpcsim.ipv4only","vswitch":"vsw-a","ipv6_address_count":1})",
          "does not support IPv6");
  refused(R"({"id":"i-x","instance_type":"ecs.vpcsim.tiny","vswitch":"vsw-a","ipv6_address_count":4})",
          "exceeds the 3 IPv6 addresses instance type ecs.vpcsim.tiny gives an ENI");
  refused(R"({"id":"i-x","instance_type":"ecs.g7.4xlarge","vswitch":"vsw-a","ipv6_address_count":11})",
          "out of range: 1..10");
  refused(R"({"id":"i-x","instance_type":"ecs.g7.large","vswitch":"vsw-a","ipv6_address_count":-1})",
          "out of range");
  refused(R"({"id":"i-x","instance_type":"ecs.g7.large","vswitch":"vsw-a","ipv6_address_count":"1"})",
          "'ipv6_address_count' must be an integer");
  EXPECT_EQ(VswAUsed(), before);
  EXPECT_FALSE(fabric_->HasInstance("i-x"));
  EXPECT_EQ(Ok("DescribeInstances", {{"InstanceIds", "[\"i-x\"]"}})["TotalCount"], 0);
  // Zero is "none", as leaving it out.
  EXPECT_EQ(add(R"({"id":"i-x","instance_type":"ecs.g7.large","vswitch":"vsw-b","ipv6_address_count":0})"), "201 ");
  EXPECT_TRUE(Ipv6Sets(Primary("i-x")).empty());
}

TEST(InstanceIpv6World, TheWorldFileChecksIpv6AddressCount) {
  auto world = [](const std::string& instance) {
    return ParseWorld(
        "name: w6\nregion: cn-hangzhou\nvpc:\n  id: vpc-1\n  cidr: 198.18.0.0/16\n  ipv6_cidr: \"fd00:9::/56\"\n"
        "  vswitches:\n    - {id: vsw-6, zone: z, cidr: 198.18.0.0/24, ipv6_cidr: \"fd00:9::/64\"}\n"
        "    - {id: vsw-4, zone: z, cidr: 198.18.1.0/24}\n"
        "instances:\n  - " + instance + "\naccess_keys:\n  - {id: AK, secret: S}\n");
  };
  auto ok = world("{id: i-1, instance_type: ecs.g7.large, vswitch: vsw-6, ipv6_address_count: 1}");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->instances[0].ipv6_address_count, 1);
  auto absent = world("{id: i-1, instance_type: ecs.g7.large, vswitch: vsw-6}");
  ASSERT_TRUE(absent.ok()) << absent.error().ToString();
  EXPECT_EQ(absent->instances[0].ipv6_address_count, 0) << "absent: none, as RunInstances without it";
  auto msg = [&](const std::string& instance) {
    auto w = world(instance);
    return w.ok() ? std::string("accepted") : w.error().message;
  };
  EXPECT_NE(msg("{id: i-1, instance_type: ecs.g7.large, vswitch: vsw-4, ipv6_address_count: 1}")
                .find("instance i-1: ipv6_address_count 1 but vswitch vsw-4 has no ipv6_cidr"),
            std::string::npos);
  EXPECT_NE(msg("{id: i-1, instance_type: ecs.g5.large, vswitch: vsw-6, ipv6_address_count: 2}")
                .find("exceeds the 1 IPv6 addresses instance type ecs.g5.large"),
            std::string::npos);
  EXPECT_NE(msg("{id: i-1, instance_type: ecs.g7.large, vswitch: vsw-6, ipv6_address_count: many}")
                .find("ipv6_address_count must be an integer"),
            std::string::npos);
}

}  // namespace
}  // namespace terway::vpcsim::testing
