#include "cni/result.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace terway::cni {
namespace {

using nlohmann::json;

CniResult Sample() {
  CniResult r;
  r.interfaces.push_back(Interface{"vethabc", "02:00:00:00:00:01", "", 1500});
  r.interfaces.push_back(Interface{"eth0", "02:00:00:00:00:02", "/var/run/netns/p", 1500});
  r.ips.push_back(IpConfig{"198.18.0.10/32", "169.254.1.1", 1});
  r.ips.push_back(IpConfig{"fd00::a/128", "", 1});
  r.routes.push_back(Route{"0.0.0.0/0", "169.254.1.1", 1500, {}, 10, 254, {}});
  r.dns.nameservers = {"198.18.0.2"};
  r.dns.search = {"svc.cluster.local"};
  return r;
}

// The shape per version, field by field.
TEST(RenderResult, ShapePerVersion) {
  struct Case {
    SpecVersion v;
    bool ip_version_field;
    bool route_extras;
  } cases[] = {
      {SpecVersion::k031, true, false},
      {SpecVersion::k040, true, false},
      {SpecVersion::k100, false, false},
      {SpecVersion::k110, false, true},
  };
  for (const auto& c : cases) {
    json j = RenderResult(Sample(), c.v);
    SCOPED_TRACE(std::string(SpecVersionString(c.v)));
    EXPECT_EQ(j["cniVersion"], std::string(SpecVersionString(c.v)));
    ASSERT_EQ(j["interfaces"].size(), 2u);
    EXPECT_EQ(j["interfaces"][1]["sandbox"], "/var/run/netns/p");
    EXPECT_EQ(j["interfaces"][1]["mac"], "02:00:00:00:00:02");
    EXPECT_FALSE(j["interfaces"][0].contains("sandbox"));  // host side
    EXPECT_EQ(j["ips"][0]["address"], "198.18.0.10/32");
    EXPECT_EQ(j["ips"][0]["gateway"], "169.254.1.1");
    EXPECT_EQ(j["ips"][0]["interface"], 1);
    EXPECT_FALSE(j["ips"][1].contains("gateway"));
    EXPECT_EQ(j["ips"][0].contains("version"), c.ip_version_field);
    if (c.ip_version_field) {
      EXPECT_EQ(j["ips"][0]["version"], "4");
      EXPECT_EQ(j["ips"][1]["version"], "6");
    }
    EXPECT_EQ(j["routes"][0]["dst"], "0.0.0.0/0");
    EXPECT_EQ(j["routes"][0]["gw"], "169.254.1.1");
    EXPECT_EQ(j["routes"][0].contains("mtu"), c.route_extras);
    EXPECT_EQ(j["routes"][0].contains("table"), c.route_extras);
    EXPECT_EQ(j["interfaces"][0].contains("mtu"), c.route_extras);
    EXPECT_FALSE(j["routes"][0].contains("advmss"));  // unset stays unset
    EXPECT_EQ(j["dns"]["nameservers"][0], "198.18.0.2");
  }
}

TEST(ParseResult, RoundTripsEveryVersionShape) {
  for (auto v : {SpecVersion::k031, SpecVersion::k040, SpecVersion::k100, SpecVersion::k110}) {
    auto back = ParseResult(RenderResult(Sample(), v));
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    CniResult expect = Sample();
    if (v != SpecVersion::k110) {  // 1.1.0-only fields are dropped by older shapes
      for (auto& i : expect.interfaces) i.mtu.reset();
      for (auto& r : expect.routes) r.mtu = r.priority = r.table = std::nullopt;
    }
    EXPECT_EQ(*back, expect) << SpecVersionString(v);
  }
}

TEST(ParseResult, RejectsWrongTypes) {
  for (const char* bad : {R"([])", R"({"ips":{}})", R"({"ips":[{"address":5}]})", R"({"interfaces":[1]})",
                          R"({"routes":[{"gw":"1.1.1.1"}]})", R"({"dns":{"nameservers":"x"}})",
                          R"({"ips":[{"address":"1.1.1.1/32","interface":-1}]})"})
    EXPECT_FALSE(ParseResult(json::parse(bad)).ok()) << bad;
}

TEST(MergeResults, ShiftsOurInterfaceIndexes) {
  CniResult prev;
  prev.interfaces.push_back(Interface{"lo", "", "/ns", {}});
  prev.ips.push_back(IpConfig{"127.0.0.1/8", "", 0});
  prev.dns.nameservers = {"10.0.0.10"};
  CniResult merged = MergeResults(prev, Sample());
  ASSERT_EQ(merged.interfaces.size(), 3u);
  ASSERT_EQ(merged.ips.size(), 3u);
  EXPECT_EQ(merged.ips[0].interface, 0);
  EXPECT_EQ(merged.ips[1].interface, 2);  // was 1 in ours
  EXPECT_EQ(merged.interfaces[*merged.ips[1].interface].name, "eth0");
  EXPECT_EQ(merged.dns.nameservers, std::vector<std::string>{"10.0.0.10"});
}

TEST(RenderError, Fields) {
  json j = json::parse(RenderError(MakeCniError(7, "bad config", "mtu too small"), "0.4.0"));
  EXPECT_EQ(j, json::parse(R"({"cniVersion":"0.4.0","code":7,"msg":"bad config","details":"mtu too small"})"));
  json k = json::parse(RenderError(MakeCniError(11, "later"), "1.1.0"));
  EXPECT_FALSE(k.contains("details"));
  // Invalid UTF-8 quoted from input must not break the output.
  json m = json::parse(RenderError(MakeCniError(6, "bad \xff byte"), "1.1.0"));
  EXPECT_EQ(m["code"], 6);
}

TEST(RenderVersionReply, ListsAllVersions) {
  json j = json::parse(RenderVersionReply());
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["supportedVersions"], json::parse(R"(["0.3.1","0.4.0","1.0.0","1.1.0"])"));
}

// The spec types these numbers as uint and the kernel takes each as a u32
// (a route's scope as one byte): the whole range is kept exactly, anything
// outside is refused naming the field. They used to be read as int, so
// 4294967295 came back as -1 and 4294967297 as 1.
TEST(ParseResult, NumbersAreExactOrRefused) {
  auto ok = ParseResult(json::parse(R"({"interfaces":[{"name":"eth0","mtu":4294967295}],
      "ips":[{"address":"198.18.0.9/32","interface":0}],
      "routes":[{"dst":"0.0.0.0/0","mtu":4294967295,"advmss":4294967295,"priority":4294967295,
                 "table":4294967295,"scope":255}]})"));
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->interfaces[0].mtu, 4294967295u);
  EXPECT_EQ(ok->routes[0].table, 4294967295u);
  EXPECT_EQ(ok->routes[0].priority, 4294967295u);
  EXPECT_EQ(ok->routes[0].scope, 255u);
  EXPECT_EQ(RenderResult(*ok, SpecVersion::k110)["routes"][0]["table"].get<uint64_t>(), 4294967295u);

  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {R"({"interfaces":[{"name":"a"}],"ips":[{"address":"1.1.1.1/32","interface":4294967296}]})",
       "interface index 4294967296 is out of range: the result lists 1 interface(s)"},
      {R"({"ips":[{"address":"1.1.1.1/32","interface":0}]})", "interface index 0 is out of range"},
      {R"({"ips":[{"address":"1.1.1.1/32","interface":-1}]})", "\"interface\" is -1"},
      {R"({"routes":[{"dst":"0.0.0.0/0","table":4294967297}]})", "\"table\" is 4294967297, outside 0..4294967295"},
      {R"({"routes":[{"dst":"0.0.0.0/0","priority":-5}]})", "\"priority\" is -5, outside 0..4294967295"},
      {R"({"routes":[{"dst":"0.0.0.0/0","mtu":18446744073709551615}]})", "\"mtu\" is 18446744073709551615"},
      {R"({"routes":[{"dst":"0.0.0.0/0","scope":256}]})", "\"scope\" is 256, outside 0..255"},
      {R"({"routes":[{"dst":"0.0.0.0/0","advmss":1.5}]})", "\"advmss\" must be an integer"},
      {R"({"interfaces":[{"name":"a","mtu":4294967296}]})", "\"mtu\" is 4294967296, outside 0..4294967295"},
  };
  for (const auto& c : cases) {
    auto r = ParseResult(json::parse(c.json));
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_NE(r.error().ToString().find(c.message), std::string::npos) << r.error().ToString();
  }
}

}  // namespace
}  // namespace terway::cni
