// The IPv6 side of the emulated ECS/VPC API: AssignIpv6Addresses and
// UnassignIpv6Addresses with their documented errors, quotas per instance
// type, ClientToken idempotency, faults, durability across a restart, the
// vSwitch's Ipv6CidrBlock, and the world file's IPv6 rules.
#include <map>
#include <set>

#include "test_util.h"
#include "tools/vpcsim/catalogue.h"
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class Ipv6Test : public CloudFixture {
 protected:
  std::vector<std::string> Assign(const std::string& eni, cloud::QueryParams extra) {
    extra["NetworkInterfaceId"] = eni;
    auto j = Ok("AssignIpv6Addresses", extra);
    EXPECT_EQ(j.value("NetworkInterfaceId", ""), eni);
    std::vector<std::string> out;
    for (const auto& a : j["Ipv6Sets"]["Ipv6Address"]) out.push_back(a);
    return out;
  }
  std::vector<std::string> Held(const std::string& eni) {
    std::vector<std::string> out;
    const json e = Eni(eni);  // kept: a range-for over a member of a temporary dangles
    for (const auto& s : e["Ipv6Sets"]["Ipv6Set"]) out.push_back(s["Ipv6Address"]);
    return out;
  }
};

TEST_F(Ipv6Test, AssignByCountGivesAddressesOfTheVSwitchBlockAndDescribeListsThem) {
  std::string eni = CreateEni();
  auto got = Assign(eni, {{"Ipv6AddressCount", "3"}});
  ASSERT_EQ(got.size(), 3u);
  auto block = *Ipv6Cidr::Parse("fd00:1::/64");
  for (const auto& a : got) {
    auto addr = Ipv6Addr::Parse(a);
    ASSERT_TRUE(addr.ok()) << a;
    EXPECT_TRUE(Ipv6Assignable(block, *addr)) << a;
  }
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 3u);
  EXPECT_EQ(Held(eni), got);
  // A second ENI never gets the same addresses.
  std::string other = CreateEni();
  for (const auto& a : Assign(other, {{"Ipv6AddressCount", "3"}})) {
    EXPECT_EQ(std::find(got.begin(), got.end(), a), got.end()) << a;
  }
}

TEST_F(Ipv6Test, AssignNamedAddressesAndTheirErrors) {
  std::string eni = CreateEni();
  // Named addresses come back in canonical text.
  EXPECT_EQ(Assign(eni, {{"Ipv6Address.1", "FD00:1:0:0::abcd"}}), std::vector<std::string>{"fd00:1::abcd"});
  std::string other = CreateEni();
  auto fail = [&](cloud::QueryParams p) {
    p["NetworkInterfaceId"] = other;
    return Fail("AssignIpv6Addresses", p);
  };
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::abcd"}}), "403 InvalidIp.IpAssigned");
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:2::1"}}), "403 InvalidIp.Address");           // other block
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::"}}), "403 InvalidIp.Address");            // subnet-router
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::ffff:ffff:ffff:fff7"}}), "403 InvalidIp.Address");  // gateway
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::ffff:ffff:ffff:ffff"}}), "403 InvalidIp.Address");
  EXPECT_EQ(fail({{"Ipv6Address.1", "198.18.0.9"}}), "403 InvalidIp.Address");
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::77"}, {"Ipv6Address.2", "fd00:1:0::77"}}),
            "403 InvalidIp.IpRepeated");
  // A call that fails half-way assigns nothing: fd00:1::5 stays free.
  EXPECT_EQ(fail({{"Ipv6Address.1", "fd00:1::5"}, {"Ipv6Address.2", "fd00:1::abcd"}}),
            "403 InvalidIp.IpAssigned");
  EXPECT_TRUE(Held(other).empty());
  EXPECT_EQ(Assign(other, {{"Ipv6Address.1", "fd00:1::5"}}), std::vector<std::string>{"fd00:1::5"});
}

TEST_F(Ipv6Test, BadParametersAreRefusedAndChangeNothing) {
  std::string eni = CreateEni();
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}}), "400 MissingParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"Ipv6AddressCount", "1"}}), "400 MissingParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses",
                 {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}, {"Ipv6Address.1", "fd00:1::9"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "0"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "11"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "two"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.11", "fd00:1::9"}}),
            "400 InvalidParameter");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", "eni-nosuch"}, {"Ipv6AddressCount", "1"}}),
            "404 InvalidEniId.NotFound");
  EXPECT_EQ(Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}}), "400 MissingParameter");
  EXPECT_EQ(Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", "eni-nosuch"}, {"Ipv6Address.1", "fd00:1::9"}}),
            "404 InvalidEniId.NotFound");
  EXPECT_TRUE(Held(eni).empty());
}

TEST_F(Ipv6Test, VSwitchWithoutIpv6Refuses) {
  std::string eni = CreateEni("vsw-c");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidVSwitch.Ipv6NotTurnOn");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", "fd00:1::9"}}),
            "403 InvalidVSwitch.Ipv6NotTurnOn");
  EXPECT_EQ(Fail("CreateNetworkInterface",
                 {{"VSwitchId", "vsw-c"}, {"SecurityGroupId", "sg"}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidVSwitch.Ipv6NotTurnOn");
}

TEST_F(Ipv6Test, DescribeVSwitchesGivesTheIpv6CidrBlock) {
  HttpReply r = Raw("DescribeVSwitches", {}, {}, "GET", cloud::kVpcApiVersion);
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, std::string> blocks;
  const json body = json::parse(r.body);
  for (const auto& v : body["VSwitches"]["VSwitch"]) blocks[v["VSwitchId"]] = v["Ipv6CidrBlock"];
  EXPECT_EQ(blocks.at("vsw-a"), "fd00:1::/64");
  EXPECT_EQ(blocks.at("vsw-c"), "");
}

TEST_F(Ipv6Test, QuotaIsTenWhileAvailableThenTheInstanceTypes) {
  std::string eni = CreateEni();
  EXPECT_EQ(Assign(eni, {{"Ipv6AddressCount", "10"}}).size(), 10u);
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidOperation.Ipv6CountExceeded");
  // ecs.vpcsim.tiny allows 3 IPv6 per ENI: an ENI with 10 cannot attach to it.
  EXPECT_EQ(Fail("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-tiny"}}),
            "403 InvalidOperation.Ipv6CountExceeded");
  std::string small = CreateEni();
  AttachAndWait(small, "i-tiny");
  EXPECT_EQ(Assign(small, {{"Ipv6AddressCount", "3"}}).size(), 3u);
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", small}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidOperation.Ipv6CountExceeded");
  EXPECT_EQ(Held(small).size(), 3u);
  // The catalogue reports the quotas DescribeInstanceTypes shows.
  auto types = Ok("DescribeInstanceTypes", {{"InstanceTypes.1", "ecs.g7.large"},
                                            {"InstanceTypes.2", "ecs.vpcsim.ipv4only"}});
  std::map<std::string, int> q;
  for (const auto& t : types["InstanceTypes"]["InstanceType"]) q[t["InstanceTypeId"]] = t["EniIpv6AddressQuantity"];
  EXPECT_EQ(q.at("ecs.g7.large"), 6);
  EXPECT_EQ(q.at("ecs.vpcsim.ipv4only"), 0);
}

TEST_F(Ipv6Test, InstanceTypeWithoutIpv6Refuses) {
  ASSERT_TRUE(cloud_->AddInstance({"i-v4only", "ecs.vpcsim.ipv4only", "vsw-a"}).ok());
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-v4only");
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}),
            "403 InvalidOperation.Ipv6NotSupport");
  EXPECT_TRUE(Held(eni).empty());
}

TEST_F(Ipv6Test, TransitionalEniConflicts) {
  std::string eni = CreateEni();
  Ok("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}});
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}),
            "403 Operation.Conflict");
  EXPECT_EQ(Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", "fd00:1::9"}}),
            "403 Operation.Conflict");
}

TEST_F(Ipv6Test, UnassignFreesAndAFailedUnassignChangesNothing) {
  std::string eni = CreateEni();
  auto got = Assign(eni, {{"Ipv6AddressCount", "2"}});
  EXPECT_EQ(Fail("UnassignIpv6Addresses",
                 {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", got[0]}, {"Ipv6Address.2", "fd00:1::ffff"}}),
            "403 InvalidIp.IpUnassigned");
  EXPECT_EQ(Held(eni), got);
  Ok("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", got[0]}});
  EXPECT_EQ(Held(eni), std::vector<std::string>{got[1]});
  // Freed: another ENI may take it by name.
  std::string other = CreateEni();
  EXPECT_EQ(Assign(other, {{"Ipv6Address.1", got[0]}}), std::vector<std::string>{got[0]});
  // An address of another ENI is not this one's to unassign.
  EXPECT_EQ(Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", got[0]}}),
            "403 InvalidIp.IpUnassigned");
}

// The fabric routes an ENI's IPv6 only while it is attached: assign and
// unassign on an InUse ENI push the set, an Available ENI's wait for attach,
// and a restart replays them.
TEST_F(Ipv6Test, TheFabricGetsTheIpv6OfAttachedEnis) {
  std::string eni = CreateEni();
  auto early = Assign(eni, {{"Ipv6AddressCount", "1"}});
  EXPECT_TRUE(fabric_->EniIpv6s(eni).empty()) << "not plugged in yet";
  AttachAndWait(eni, "i-big");
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& a : fabric_->EniIpv6s(eni)) out.push_back(a.ToString());
    return out;
  };
  EXPECT_EQ(names(), early);
  auto more = Assign(eni, {{"Ipv6AddressCount", "2"}});
  std::vector<std::string> all = early;
  all.insert(all.end(), more.begin(), more.end());
  EXPECT_EQ(names(), all);
  Ok("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", early[0]}});
  EXPECT_EQ(names(), more);
  Reopen();  // SyncFabric replays the state into a fresh fabric
  EXPECT_EQ(names(), more);
  // The vSwitch reaches the fabric with its IPv6 block and gateway.
  auto calls = fabric_->Calls();
  EXPECT_NE(std::find(calls.begin(), calls.end(),
                      "EnsureVSwitch vsw-a 198.18.0.0/24 198.18.0.253 fd00:1::/64 fd00:1::ffff:ffff:ffff:fff7"),
            calls.end());
  EXPECT_NE(std::find(calls.begin(), calls.end(), "EnsureVSwitch vsw-c 198.18.2.0/24 198.18.2.253"), calls.end());
}

TEST_F(Ipv6Test, ClientTokenMakesAssignIdempotentAcrossARestart) {
  std::string eni = CreateEni();
  cloud::QueryParams p = {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "2"}, {"ClientToken", "v6-tok"}};
  auto first = Assign(eni, p);
  EXPECT_EQ(Assign(eni, p), first);
  EXPECT_EQ(Held(eni).size(), 2u);
  cloud::QueryParams changed = p;
  changed["Ipv6AddressCount"] = "1";
  EXPECT_EQ(Fail("AssignIpv6Addresses", changed), "400 IdempotentParameterMismatch");
  Reopen();
  EXPECT_EQ(Assign(eni, p), first);
  EXPECT_EQ(Held(eni).size(), 2u);
}

TEST_F(Ipv6Test, AddressesSurviveARestartAndStayTaken) {
  std::string eni = CreateEni();
  AttachAndWait(eni, "i-big");
  auto got = Assign(eni, {{"Ipv6AddressCount", "4"}});
  Reopen();
  EXPECT_EQ(Held(eni), got);
  EXPECT_EQ(Eni(eni)["Status"], "InUse");
  std::string other = CreateEni();
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", other}, {"Ipv6Address.1", got[2]}}),
            "403 InvalidIp.IpAssigned");
  for (const auto& a : Assign(other, {{"Ipv6AddressCount", "4"}})) {
    EXPECT_EQ(std::find(got.begin(), got.end(), a), got.end()) << a;
  }
  Ok("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", got[0]}});
  Reopen();
  EXPECT_EQ(Held(eni), std::vector<std::string>(got.begin() + 1, got.end()));
  // Deleting the ENI frees its addresses for good.
  std::string third = CreateEni();
  Ok("DetachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-big"}});
  clock_.Advance(std::chrono::seconds(1));
  cloud_->Tick();
  Ok("DeleteNetworkInterface", {{"NetworkInterfaceId", eni}});
  Reopen();
  EXPECT_EQ(Assign(third, {{"Ipv6Address.1", got[1]}}), std::vector<std::string>{got[1]});
}

TEST_F(Ipv6Test, FaultsApplyToTheIpv6Actions) {
  std::string eni = CreateEni();
  FaultSpec f;
  f.throttle_rate = 1.0;
  faults_.Set("AssignIpv6Addresses", f);
  EXPECT_EQ(Fail("AssignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6AddressCount", "1"}}), "400 Throttling");
  f = FaultSpec{};
  f.error_rate = 1.0;
  faults_.Set("UnassignIpv6Addresses", f);
  faults_.Set("AssignIpv6Addresses", FaultSpec{});
  auto got = Assign(eni, {{"Ipv6AddressCount", "1"}});
  std::string r = Fail("UnassignIpv6Addresses", {{"NetworkInterfaceId", eni}, {"Ipv6Address.1", got[0]}});
  EXPECT_TRUE(r == "500 InternalError" || r == "503 ServiceUnavailable") << r;
  EXPECT_EQ(Held(eni), got);
  EXPECT_EQ(counters_.Errors("AssignIpv6Addresses", "Throttling"), 1u);
}

// A world may gain IPv6 under an existing state; it may not drop the block
// that ENIs hold addresses of.
TEST_F(Ipv6Test, AWorldThatDropsAnIpv6BlockInUseIsRefused) {
  std::string eni = CreateEni();
  Assign(eni, {{"Ipv6AddressCount", "1"}});
  Close();
  std::string yaml = world_yaml_;
  auto at = yaml.find(", ipv6_cidr: \"fd00:1::/64\"");
  ASSERT_NE(at, std::string::npos);
  yaml.erase(at, std::string(", ipv6_cidr: \"fd00:1::/64\"").size());
  auto w = ParseWorld(yaml);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  auto store = StateStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  FakeFabric fabric("ut");
  auto c = VpcCloud::Open(*w, std::move(*store), &fabric, &clock_, &faults_, {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(eni), std::string::npos) << c.error().ToString();
  EXPECT_NE(c.error().message.find("ipv6_cidr"), std::string::npos) << c.error().ToString();
  Open();  // the original world still opens it
  EXPECT_EQ(Held(eni).size(), 1u);
}

TEST(Ipv6World, Ipv6BlocksAreCheckedAndTheGatewayDerived) {
  auto world = [](const std::string& vpc_v6, const std::string& vsw_v6) {
    std::string y = "name: w6\nregion: cn-hangzhou\nvpc:\n  id: vpc-1\n  cidr: 198.18.0.0/16\n";
    if (!vpc_v6.empty()) y += "  ipv6_cidr: \"" + vpc_v6 + "\"\n";
    y += "  vswitches:\n    - {id: vsw-1, zone: z, cidr: 198.18.0.0/24";
    if (!vsw_v6.empty()) y += ", ipv6_cidr: \"" + vsw_v6 + "\"";
    y += "}\n    - {id: vsw-2, zone: z, cidr: 198.18.1.0/24, ipv6_cidr: \"fd00:9:0:2::/64\"}\n";
    y += "access_keys:\n  - {id: AK, secret: S}\n";
    return ParseWorld(y);
  };
  auto ok = world("fd00:9::/56", "fd00:9::/64");
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->vpc_ipv6_cidr->ToString(), "fd00:9::/56");
  EXPECT_EQ(ok->vswitches[0].ipv6_gateway.ToString(), "fd00:9::ffff:ffff:ffff:fff7");
  EXPECT_EQ(ok->vswitches[1].ipv6_gateway.ToString(), "fd00:9:0:2:ffff:ffff:ffff:fff7");
  auto msg = [&](const std::string& vpc_v6, const std::string& vsw_v6) {
    auto w = world(vpc_v6, vsw_v6);
    return w.ok() ? std::string("accepted") : w.error().message;
  };
  EXPECT_NE(msg("", "fd00:9::/64").find("has none"), std::string::npos);         // vSwitch v6 without VPC v6
  EXPECT_NE(msg("fd00:9::/48", "fd00:9::/64").find("/56"), std::string::npos);   // VPC not a /56
  EXPECT_NE(msg("2001:db8::/56", "2001:db8::/64").find("fd00::/8"), std::string::npos);  // not ULA
  EXPECT_NE(msg("fd00:9::/56", "fd00:8::/64").find("outside"), std::string::npos);
  EXPECT_NE(msg("fd00:9::/56", "fd00:9::/60").find("/64"), std::string::npos);
  EXPECT_NE(msg("fd00:9::/56", "fd00:9:0:2::/64").find("also"), std::string::npos);  // same /64 twice
}

TEST(Ipv6World, TheDefaultWorldIsDualStack) {
  auto w = LoadWorld(terway::testing::SourceDir() + "/tools/vpcsim/worlds/default.yaml");
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  ASSERT_TRUE(w->vpc_ipv6_cidr.has_value());
  for (const auto& v : w->vswitches) {
    ASSERT_TRUE(v.ipv6_cidr.has_value()) << v.id;
    EXPECT_TRUE(w->vpc_ipv6_cidr->Contains(v.ipv6_cidr->network())) << v.id;
  }
}

}  // namespace
}  // namespace terway::vpcsim::testing
