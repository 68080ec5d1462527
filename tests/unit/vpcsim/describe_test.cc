// Describe actions: filters, both paging styles, instance types, instances.
#include <set>

#include "unit/vpcsim/cloud_fixture.h"
#include "tools/vpcsim/catalogue.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class DescribeTest : public CloudFixture {
 protected:
  std::vector<std::string> Ids(const json& j) {
    std::vector<std::string> out;
    for (const auto& e : j["NetworkInterfaceSets"]["NetworkInterfaceSet"]) out.push_back(e["NetworkInterfaceId"]);
    return out;
  }
};

TEST_F(DescribeTest, TokenPagingVisitsEveryEniOnce) {
  for (int i = 0; i < 5; i++) CreateEni();
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    cloud::QueryParams p = {{"MaxResults", "2"}};
    if (!token.empty()) p["NextToken"] = token;
    auto j = Ok("DescribeNetworkInterfaces", p);
    EXPECT_EQ(j["TotalCount"], 7);  // 5 + two primary ENIs
    for (auto& id : Ids(j)) seen.push_back(id);
    token = j["NextToken"];
    pages++;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 7u);
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {{"NextToken", "garbage!"}}), "400 InvalidParameter");
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {{"MaxResults", "0"}}), "400 InvalidParameter");
}

TEST_F(DescribeTest, PageNumberPaging) {
  for (int i = 0; i < 5; i++) CreateEni();
  auto p1 = Ok("DescribeNetworkInterfaces", {{"PageNumber", "1"}, {"PageSize", "3"}});
  auto p3 = Ok("DescribeNetworkInterfaces", {{"PageNumber", "3"}, {"PageSize", "3"}});
  auto p4 = Ok("DescribeNetworkInterfaces", {{"PageNumber", "4"}, {"PageSize", "3"}});
  EXPECT_EQ(p1["PageNumber"], 1);
  EXPECT_EQ(p1["PageSize"], 3);
  EXPECT_EQ(p1["TotalCount"], 7);
  EXPECT_EQ(Ids(p1).size(), 3u);
  EXPECT_EQ(Ids(p3).size(), 1u);
  EXPECT_EQ(Ids(p4).size(), 0u);
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {{"PageSize", "1001"}}), "400 InvalidParameter");
}

TEST_F(DescribeTest, Filters) {
  std::string tagged = CreateEni("vsw-a", {{"Tag.1.Key", "creator"}, {"Tag.1.Value", "terway"},
                                           {"NetworkInterfaceName", "n1"}, {"SecondaryPrivateIpAddressCount", "1"}});
  std::string other_vsw = CreateEni("vsw-c", {{"SecurityGroupId", "sg-other"}});
  AttachAndWait(tagged, "i-big");
  auto e = Eni(tagged);
  std::string secondary = e["PrivateIpSets"]["PrivateIpSet"][1]["PrivateIpAddress"];
  auto one = [&](cloud::QueryParams p) { return Ids(Ok("DescribeNetworkInterfaces", p)); };
  using V = std::vector<std::string>;
  EXPECT_EQ(one({{"Tag.1.Key", "creator"}, {"Tag.1.Value", "terway"}}), V{tagged});
  EXPECT_EQ(one({{"Tag.1.Key", "creator"}, {"Tag.1.Value", "other"}}), V{});
  EXPECT_EQ(one({{"VSwitchId", "vsw-c"}}), V{other_vsw});
  EXPECT_EQ(one({{"Status", "Available"}}), V{other_vsw});
  EXPECT_EQ(one({{"InstanceId", "i-big"}, {"Type", "Secondary"}}), V{tagged});
  EXPECT_EQ(one({{"PrivateIpAddress.1", secondary}}), V{tagged});
  EXPECT_EQ(one({{"PrimaryIpAddress", e["PrivateIpAddress"]}}), V{tagged});
  EXPECT_EQ(one({{"NetworkInterfaceName", "n1"}}), V{tagged});
  EXPECT_EQ(one({{"SecurityGroupId", "sg-other"}}), V{other_vsw});
  EXPECT_EQ(one({{"NetworkInterfaceId.1", tagged}, {"NetworkInterfaceId.2", other_vsw}}), (V{tagged, other_vsw}));
  EXPECT_EQ(one({{"VpcId", "vpc-other"}}), V{});
  EXPECT_EQ(one({{"InstanceId", "i-tiny"}}).size(), 1u);
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {{"NetworkInterfaceId.x", "a"}}), "400 InvalidParameter");
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {{"Tag.99.Key", "a"}}), "400 InvalidParameter");
}

// CreateNetworkInterface's ResourceGroupId is kept per ENI, returned by
// DescribeNetworkInterfaces and filtered on. As the API reference says, ENIs
// of the account's default group (created without one) are listed whatever
// the filter says.
TEST_F(DescribeTest, ResourceGroupIsKeptReturnedAndFiltered) {
  std::string in_a = CreateEni("vsw-a", {{"ResourceGroupId", "rg-a"}});
  std::string in_b = CreateEni("vsw-a", {{"ResourceGroupId", "rg-b"}});
  std::string in_default = CreateEni("vsw-a");
  EXPECT_EQ(Eni(in_a)["ResourceGroupId"], "rg-a");
  EXPECT_EQ(Eni(in_b)["ResourceGroupId"], "rg-b");
  EXPECT_EQ(Eni(in_default)["ResourceGroupId"], "");
  auto created = Ok("CreateNetworkInterface", {{"VSwitchId", "vsw-a"}, {"SecurityGroupId", "sg"},
                                               {"ResourceGroupId", "rg-c"}});
  EXPECT_EQ(created["ResourceGroupId"], "rg-c");  // the create reply carries it too

  auto ids = [&](cloud::QueryParams p) {
    p["VSwitchId"] = "vsw-a";
    p["Type"] = "Secondary";
    auto v = Ids(Ok("DescribeNetworkInterfaces", p));
    return std::set<std::string>(v.begin(), v.end());
  };
  using S = std::set<std::string>;
  EXPECT_EQ(ids({{"ResourceGroupId", "rg-a"}}), (S{in_a, in_default}));
  EXPECT_EQ(ids({{"ResourceGroupId", "rg-b"}}), (S{in_b, in_default}));
  EXPECT_EQ(ids({{"ResourceGroupId", "rg-none"}}), (S{in_default}));
  EXPECT_EQ(ids({}).size(), 4u);

  // It outlives a restart of vpcsim.
  Reopen();
  EXPECT_EQ(Eni(in_b)["ResourceGroupId"], "rg-b");
  EXPECT_EQ(ids({{"ResourceGroupId", "rg-a"}}), (S{in_a, in_default}));
}

TEST_F(DescribeTest, InstanceTypesCarryPublishedQuotas) {
  auto j = Ok("DescribeInstanceTypes", {{"InstanceTypes.1", "ecs.g7.large"}, {"InstanceTypes.2", "ecs.g6.xlarge"}});
  auto list = j["InstanceTypes"]["InstanceType"];
  ASSERT_EQ(list.size(), 2u);
  for (const auto& t : list) {
    auto parsed = cloud::InstanceTypeFromJson(t);
    ASSERT_TRUE(parsed.ok());
    if (parsed->instance_type_id == "ecs.g7.large") {
      EXPECT_EQ(parsed->eni_quantity, 3);
      EXPECT_EQ(parsed->eni_private_ip_address_quantity, 6);
      EXPECT_EQ(parsed->eni_ipv6_address_quantity, 6);
      EXPECT_EQ(parsed->cpu_core_count, 2);
      EXPECT_EQ(parsed->memory_size, 8);
    }
  }
  for (const char* fam : {"ecs.g5", "ecs.g6", "ecs.g7"}) {
    auto f = Ok("DescribeInstanceTypes", {{"InstanceTypeFamily", fam}});
    EXPECT_GE(f["InstanceTypes"]["InstanceType"].size(), 8u) << fam;
    for (const auto& t : f["InstanceTypes"]["InstanceType"]) EXPECT_EQ(t["InstanceTypeFamily"], fam);
  }
  EXPECT_EQ(Ok("DescribeInstanceTypes", {})["InstanceTypes"]["InstanceType"].size(), InstanceTypeCatalogue().size());
}

TEST_F(DescribeTest, InstancesWithVpcAttributesAndEnis) {
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-big");
  auto j = Ok("DescribeInstances", {{"InstanceIds", "[\"i-big\"]"}});
  EXPECT_EQ(j["TotalCount"], 1);
  auto parsed = cloud::InstanceFromJson(j["Instances"]["Instance"][0]);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->instance_type, "ecs.g7.4xlarge");
  EXPECT_EQ(parsed->vpc_id, "vpc-test");
  EXPECT_EQ(parsed->vswitch_id, "vsw-a");
  ASSERT_EQ(parsed->network_interfaces.size(), 2u);
  EXPECT_EQ(parsed->network_interfaces[0].type, "Primary");
  EXPECT_EQ(parsed->network_interfaces[0].private_ip_address, parsed->primary_ip);
  EXPECT_EQ(parsed->network_interfaces[1].network_interface_id, eni);
  EXPECT_EQ(Ok("DescribeInstances", {})["TotalCount"], 2);
  EXPECT_EQ(Fail("DescribeInstances", {{"InstanceIds", "i-big"}}), "400 InvalidInstanceIds.Malformed");
}

TEST_F(DescribeTest, VSwitchFilters) {
  auto vsw = [&](cloud::QueryParams p) {
    HttpReply r = Raw("DescribeVSwitches", p, {}, "GET", cloud::kVpcApiVersion);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  };
  EXPECT_EQ(vsw({})["TotalCount"], 3);
  EXPECT_EQ(vsw({{"ZoneId", "cn-hangzhou-i"}})["VSwitches"]["VSwitch"][0]["VSwitchId"], "vsw-c");
  auto a = vsw({{"VSwitchId", "vsw-a"}, {"VpcId", "vpc-test"}})["VSwitches"]["VSwitch"][0];
  auto parsed = cloud::VSwitchFromJson(a);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->cidr_block, "198.18.0.0/24");
  EXPECT_EQ(parsed->available_ip_address_count, 252 - 2);  // two primary ENIs
  EXPECT_EQ(vsw({{"VpcId", "vpc-nope"}})["TotalCount"], 0);
}

}  // namespace
}  // namespace terway::vpcsim::testing
