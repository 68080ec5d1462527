// Wire shapes of the shared API types (src/cloud/types.h): what vpcsim emits
// is what the client parses, in the documented nesting.
#include "cloud/types.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace terway::cloud {
namespace {

TEST(CloudTypes, NetworkInterfaceRoundTripsInDocumentedShape) {
  NetworkInterface e;
  e.network_interface_id = "eni-1";
  e.status = kEniInUse;
  e.type = "Secondary";
  e.instance_id = "i-1";
  e.device_index = 2;
  e.mac_address = "00:16:3e:00:00:01";
  e.private_ip_address = "198.18.0.10";
  e.private_ip_sets = {{"198.18.0.10", true}, {"198.18.0.11", false}};
  e.ipv6_sets = {"fd00::1"};
  e.security_group_ids = {"sg-1"};
  e.tags = {{"creator", "terway"}};
  nlohmann::json j = ToJson(e);
  EXPECT_EQ(j["PrivateIpSets"]["PrivateIpSet"][1]["PrivateIpAddress"], "198.18.0.11");
  EXPECT_EQ(j["PrivateIpSets"]["PrivateIpSet"][0]["Primary"], true);
  EXPECT_EQ(j["Ipv6Sets"]["Ipv6Set"][0]["Ipv6Address"], "fd00::1");
  EXPECT_EQ(j["SecurityGroupIds"]["SecurityGroupId"][0], "sg-1");
  EXPECT_EQ(j["Tags"]["Tag"][0]["TagKey"], "creator");
  EXPECT_EQ(j["Attachment"]["DeviceIndex"], 2);
  auto back = NetworkInterfaceFromJson(j);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->private_ip_sets, e.private_ip_sets);
  EXPECT_EQ(back->ipv6_sets, e.ipv6_sets);
  EXPECT_EQ(back->tags, e.tags);
  EXPECT_EQ(back->device_index, 2);
  EXPECT_EQ(back->instance_id, "i-1");
}

TEST(CloudTypes, WrongFieldTypeIsAnErrorNamingTheField) {
  auto r = NetworkInterfaceFromJson(nlohmann::json{{"NetworkInterfaceId", 5}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("NetworkInterfaceId"), std::string::npos);
  auto r2 = NetworkInterfaceFromJson(nlohmann::json{{"PrivateIpSets", {{"PrivateIpSet", "x"}}}});
  ASSERT_FALSE(r2.ok());
  EXPECT_FALSE(InstanceTypeFromJson(nlohmann::json{{"EniQuantity", "3"}}).ok());
  EXPECT_FALSE(ApiErrorFromJson(400, nlohmann::json::array()).ok());
}

TEST(CloudTypes, UnknownFieldsAreIgnored) {
  auto r = VSwitchFromJson(nlohmann::json{{"VSwitchId", "vsw-1"}, {"Whatever", {1, 2}},
                                          {"AvailableIpAddressCount", 250}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->available_ip_address_count, 250);
}

TEST(CloudTypes, InstanceUsesPrimaryIpAddressAndVpcAttributes) {
  Instance i;
  i.instance_id = "i-1";
  i.vpc_id = "vpc-1";
  i.primary_ip = "198.18.0.5";
  NetworkInterface e;
  e.network_interface_id = "eni-p";
  e.private_ip_address = "198.18.0.5";
  e.type = "Primary";
  i.network_interfaces.push_back(e);
  auto j = ToJson(i);
  EXPECT_EQ(j["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0], "198.18.0.5");
  EXPECT_EQ(j["NetworkInterfaces"]["NetworkInterface"][0]["PrimaryIpAddress"], "198.18.0.5");
  auto back = InstanceFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->primary_ip, "198.18.0.5");
  ASSERT_EQ(back->network_interfaces.size(), 1u);
  EXPECT_EQ(back->network_interfaces[0].private_ip_address, "198.18.0.5");
}

TEST(CloudTypes, ApiErrorRoundTrip) {
  ApiError e{403, "req", "ecs.aliyuncs.com", "Throttling", "slow down"};
  auto back = ApiErrorFromJson(403, ToJson(e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->code, "Throttling");
  EXPECT_EQ(back->http_status, 403);
  EXPECT_FALSE(ApiErrorFromJson(500, nlohmann::json{{"Message", "x"}}).ok());
}

}  // namespace
}  // namespace terway::cloud
