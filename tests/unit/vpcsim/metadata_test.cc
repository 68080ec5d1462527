// The metadata service: paths, per-MAC data, token flow, hardened mode.
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class MetadataTest : public CloudFixture {
 protected:
  HttpReply Get(const std::string& path, const std::string& instance = "i-big",
                std::optional<std::string> token = std::nullopt) {
    return metadata_->Handle({"GET", path, token, std::nullopt, instance});
  }
  std::string Body(const std::string& path) { return Body2(path, "i-big"); }
  std::string Body2(const std::string& path, const std::string& instance) {
    HttpReply r = Get(path, instance);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return r.body;
  }
};

TEST_F(MetadataTest, InstancePaths) {
  auto j = Ok("DescribeInstances", {{"InstanceIds", "[\"i-big\"]"}});
  auto inst = j["Instances"]["Instance"][0];
  auto primary = inst["NetworkInterfaces"]["NetworkInterface"][0];
  EXPECT_EQ(Body("/latest/meta-data/instance-id"), "i-big");
  EXPECT_EQ(Body("/latest/meta-data/region-id"), "cn-hangzhou");
  EXPECT_EQ(Body("/latest/meta-data/zone-id"), "cn-hangzhou-h");
  EXPECT_EQ(Body("/latest/meta-data/instance/instance-type"), "ecs.g7.4xlarge");
  EXPECT_EQ(Body("/latest/meta-data/mac"), primary["MacAddress"]);
  EXPECT_EQ(Body("/latest/meta-data/vpc-id"), "vpc-test");
  EXPECT_EQ(Body("/latest/meta-data/vpc-cidr-block"), "198.18.0.0/16");
  EXPECT_EQ(Body("/latest/meta-data/vswitch-id"), "vsw-a");
  EXPECT_EQ(Body("/latest/meta-data/vswitch-cidr-block"), "198.18.0.0/24");
  EXPECT_EQ(Body("/latest/meta-data/private-ipv4"), primary["PrimaryIpAddress"]);
  EXPECT_EQ(Get("/latest/meta-data/no-such-thing").status, 404);
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "").status, 403);
}

TEST_F(MetadataTest, PerMacPathsFollowAttachAndAssign) {
  std::string eni = CreateEni("vsw-a", {{"SecondaryPrivateIpAddressCount", "2"}});
  std::string mac = Eni(eni)["MacAddress"];
  EXPECT_EQ(Body("/latest/meta-data/network/interfaces/macs/").find(mac), std::string::npos);
  AttachAndWait(eni, "i-big");
  std::string macs = Body("/latest/meta-data/network/interfaces/macs/");
  EXPECT_NE(macs.find(mac + "/"), std::string::npos);
  std::string base = "/latest/meta-data/network/interfaces/macs/" + mac + "/";
  EXPECT_EQ(Body(base + "network-interface-id"), eni);
  auto e = Eni(eni);
  EXPECT_EQ(Body(base + "primary-ip-address"), e["PrivateIpAddress"]);
  auto ips = json::parse(Body(base + "private-ipv4s"));
  ASSERT_EQ(ips.size(), 3u);
  EXPECT_EQ(ips[0], e["PrivateIpAddress"]);
  EXPECT_EQ(Body(base + "vswitch-id"), "vsw-a");
  EXPECT_EQ(Body(base + "vswitch-cidr-block"), "198.18.0.0/24");
  EXPECT_EQ(Body(base + "gateway"), "198.18.0.253");
  EXPECT_EQ(Body(base + "netmask"), "255.255.255.0");
  EXPECT_EQ(Body(base + "vpc-id"), "vpc-test");
  EXPECT_EQ(Body(base + "vpc-cidr-block"), "198.18.0.0/16");
  // IPv6 (Alibaba's metadata reference): ipv6s is absent (404) while the ENI
  // holds none, then a bracketed unquoted list; the vSwitch's and VPC's blocks
  // and the IPv6 gateway (<block>:ffff:ffff:ffff:fff7) are there all along.
  EXPECT_EQ(Get(base + "ipv6s").status, 404);
  EXPECT_EQ(Body(base + "vswitch-ipv6-cidr-block"), "fd00:1::/64");
  EXPECT_EQ(Body(base + "vpc-ipv6-cidr-blocks"), "[fd00:1::/56]");
  EXPECT_EQ(Body(base + "ipv6-gateway"), "fd00:1::ffff:ffff:ffff:fff7");
  EXPECT_NE(Body(base).find("ipv6-gateway"), std::string::npos);
  auto v6 = Ok("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "2"}});
  auto got = v6["Ipv6Sets"]["Ipv6Address"];
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(Body(base + "ipv6s"),
            "[" + got[0].get<std::string>() + "," + got[1].get<std::string>() + "]");
  // Another instance never sees this ENI.
  EXPECT_EQ(Get(base + "network-interface-id", "i-tiny").status, 404);
  EXPECT_EQ(cloud_->InstanceByIp(e["PrivateIpAddress"]), "i-big");
  EXPECT_EQ(cloud_->InstanceByIp("198.18.0.250"), std::nullopt);
}

// An ENI in a vSwitch without IPv6 has none of the IPv6 entries.
TEST_F(MetadataTest, Ipv6PathsAbsentWithoutIpv6OnTheVSwitch) {
  auto inst = cloud_->AddInstance({"i-nov6", "ecs.g7.large", "vsw-b"});
  ASSERT_TRUE(inst.ok()) << inst.error().ToString();
  std::string mac = Body2("/latest/meta-data/mac", "i-nov6");
  std::string base = "/latest/meta-data/network/interfaces/macs/" + mac + "/";
  EXPECT_EQ(Body2(base + "network-interface-id", "i-nov6"), inst->primary_eni);
  for (const char* leaf : {"ipv6s", "ipv6-gateway", "vswitch-ipv6-cidr-block", "vpc-ipv6-cidr-blocks"}) {
    EXPECT_EQ(Get(base + leaf, "i-nov6").status, 404) << leaf;
  }
  EXPECT_EQ(Body2(base, "i-nov6").find("ipv6"), std::string::npos);
}

TEST_F(MetadataTest, TokenFlow) {
  HttpReply bad_ttl = metadata_->Handle({"PUT", "/latest/api/token", std::nullopt, "0", "i-big"});
  EXPECT_EQ(bad_ttl.status, 400);
  HttpReply t = metadata_->Handle({"PUT", "/latest/api/token", std::nullopt, "60", "i-big"});
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-big", t.body).body, "i-big");
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-big", "forged").status, 401);
  // A token belongs to the instance that asked for it.
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-tiny", t.body).status, 401);
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-big", t.body).status, 401);
  // Normal mode: tokenless reads are answered.
  EXPECT_EQ(Get("/latest/meta-data/instance-id").status, 200);
}

class HardenedMetadataTest : public MetadataTest {
 protected:
  void SetUp() override {
    world_yaml_ = std::string(kTestWorld) + "metadata_hardened: true\n";
    MetadataTest::SetUp();
  }
};

TEST_F(HardenedMetadataTest, TokenRequired) {
  EXPECT_EQ(Get("/latest/meta-data/instance-id").status, 401);
  HttpReply t = metadata_->Handle({"PUT", "/latest/api/token", std::nullopt, "21600", "i-big"});
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-big", t.body).body, "i-big");
}

TEST_F(MetadataTest, AdminAddsAndRemovesInstances) {
  HttpReply r = admin_->Handle("POST", "/admin/instances",
                               R"({"id":"i-node1","instance_type":"ecs.g7.large","vswitch":"vsw-c"})");
  ASSERT_EQ(r.status, 201) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["zone"], "cn-hangzhou-i");
  EXPECT_TRUE(fabric_->HasInstance("i-node1"));
  EXPECT_EQ(Body("/latest/meta-data/instance-id").size(), 5u);
  EXPECT_EQ(Get("/latest/meta-data/private-ipv4", "i-node1").body, j["primary_ip"]);
  EXPECT_EQ(admin_->Handle("POST", "/admin/instances", R"({"id":"i-node1","instance_type":"ecs.g7.large","vswitch":"vsw-c"})").status, 409);
  EXPECT_EQ(admin_->Handle("POST", "/admin/instances", R"({"instance_type":"ecs.nope","vswitch":"vsw-c"})").status, 400);
  EXPECT_EQ(admin_->Handle("POST", "/admin/instances", "not json").status, 400);
  // A secondary ENI attached to the instance becomes Available when it is removed.
  std::string eni = CreateEni("vsw-c");
  AttachAndWait(eni, "i-node1");
  EXPECT_EQ(admin_->Handle("DELETE", "/admin/instances/i-node1", "").status, 200);
  EXPECT_FALSE(fabric_->HasInstance("i-node1"));
  EXPECT_EQ(Eni(eni)["Status"], "Available");
  EXPECT_EQ(Ok("DescribeInstances", {{"InstanceIds", "[\"i-node1\"]"}})["TotalCount"], 0);
  EXPECT_EQ(admin_->Handle("DELETE", "/admin/instances/i-node1", "").status, 404);
  // Instances added at run time survive a restart (the world is seeded once).
  ASSERT_EQ(admin_->Handle("POST", "/admin/instances", R"({"id":"i-node2","instance_type":"ecs.g7.large","vswitch":"vsw-a"})").status, 201);
  ASSERT_EQ(admin_->Handle("DELETE", "/admin/instances/i-tiny", "").status, 200);
  Reopen();
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-node2").body, "i-node2");
  EXPECT_EQ(Get("/latest/meta-data/instance-id", "i-tiny").status, 404);
}

TEST_F(MetadataTest, AdminFaultsAndStats) {
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults", R"({"action":"DescribeInstances","throttle_rate":1})").status, 200);
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults", R"({"action":"Nope","throttle_rate":1})").status, 400);
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults", R"({"action":"*","throttle_rate":2})").status, 400);
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults", R"({"action":"*","bogus":1})").status, 400);
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults", R"({"action":"*","throttle_code":"Nope"})").status, 400);
  EXPECT_EQ(Fail("DescribeInstances", {}), "400 Throttling");
  auto faults = json::parse(admin_->Handle("GET", "/admin/faults", "").body);
  EXPECT_EQ(faults["DescribeInstances"]["throttle_rate"], 1.0);
  EXPECT_EQ(admin_->Handle("POST", "/admin/faults/clear", R"({"action":"DescribeInstances"})").status, 200);
  Ok("DescribeInstances", {});
  auto stats = json::parse(admin_->Handle("GET", "/admin/stats", "").body);
  EXPECT_EQ(stats["actions"]["DescribeInstances"]["calls"], 2);
  EXPECT_EQ(stats["actions"]["DescribeInstances"]["errors"], 1);
  auto world = json::parse(admin_->Handle("GET", "/admin/world", "").body);
  EXPECT_EQ(world["instances"].size(), 2u);
  EXPECT_EQ(admin_->Handle("GET", "/admin/nope", "").status, 404);
}

}  // namespace
}  // namespace terway::vpcsim::testing
