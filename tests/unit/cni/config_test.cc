#include "cni/config.h"

#include <gtest/gtest.h>

namespace terway::cni {
namespace {

using nlohmann::json;

Result<NetConf> Parse(const std::string& text) {
  auto j = DecodeConfigJson(text);
  if (!j.ok()) return std::move(j).error();
  return ParseNetConf(*j);
}

TEST(Config, DecodeRejectsNonObjects) {
  for (const char* bad : {"", "{", "[]", "\"x\"", "12", "{\"a\":}", "null"})
    EXPECT_FALSE(DecodeConfigJson(bad).ok()) << bad;
  EXPECT_TRUE(DecodeConfigJson("{}").ok());
}

TEST(Config, VersionTable) {
  struct Case {
    const char* conf;
    bool ok;
  } cases[] = {
      {R"({"cniVersion":"0.3.1"})", true},  {R"({"cniVersion":"0.4.0"})", true},
      {R"({"cniVersion":"1.0.0"})", true},  {R"({"cniVersion":"1.1.0"})", true},
      {R"({"cniVersion":"0.3.0"})", false}, {R"({"cniVersion":"2.0.0"})", false},
      {R"({"cniVersion":1})", false},       {R"({})", false},  // missing means 0.1.0
  };
  for (const auto& c : cases) EXPECT_EQ(ConfigVersion(json::parse(c.conf)).ok(), c.ok) << c.conf;
}

TEST(Config, ParsesTerwayFields) {
  auto c = Parse(R"({
    "cniVersion": "1.0.0", "name": "terway", "type": "terway",
    "eniip_virtual_type": "Veth", "mtu": 1500, "service_cidr": "172.21.0.0/20",
    "host_stack_cidrs": ["169.254.20.10/32"],
    "capabilities": {"bandwidth": true, "portMappings": true},
    "runtimeConfig": {"bandwidth": {"ingressRate": 1000000, "ingressBurst": 2000000,
                                    "egressRate": 3000000, "egressBurst": 4000000},
                      "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
    "args": {"cni": {"anything": 1}},
    "unknownField": {"tolerated": true}
  })");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->version, SpecVersion::k100);
  EXPECT_EQ(c->name, "terway");
  EXPECT_EQ(c->eniip_virtual_type, "veth");
  EXPECT_EQ(c->mtu, 1500);
  EXPECT_EQ(c->service_cidr, "172.21.0.0/20");
  EXPECT_EQ(c->host_stack_cidrs, std::vector<std::string>{"169.254.20.10/32"});
  ASSERT_TRUE(c->bandwidth.has_value());
  EXPECT_EQ(*c->bandwidth, (Bandwidth{1000000, 2000000, 3000000, 4000000}));
  EXPECT_FALSE(c->prev_result.has_value());
}

TEST(Config, InvalidFieldsTable) {
  struct Case {
    const char* conf;
    ErrorCode code;
  } cases[] = {
      {R"({"cniVersion":"1.0.0"})", ErrorCode::kInvalidArgument},  // no name
      {R"({"cniVersion":"1.0.0","name":"bad name"})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":5})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","mtu":"1500"})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","mtu":10})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","service_cidr":"10.0.0.0/33"})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","service_cidr":"nonsense"})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","host_stack_cidrs":"10.0.0.0/8"})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","host_stack_cidrs":["x"]})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","eniip_virtual_type":"macvlan"})", ErrorCode::kUnsupported},
      {R"({"cniVersion":"1.0.0","name":"n","capabilities":[]})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"bandwidth":{"ingressRate":-1,"ingressBurst":1}}})",
       ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"bandwidth":{"ingressRate":100}}})",
       ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"bandwidth":{"egressRate":"1"}}})",
       ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","prevResult":{"ips":[{"gateway":"1.1.1.1"}]}})",
       ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.0.0","name":"n","prevResult":{"ips":[{"address":"1.1.1.1/32","interface":3}]}})",
       ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":{}})", ErrorCode::kInvalidArgument},
      {R"({"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"ifname":"eth0"}]})",
       ErrorCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.conf);
    ASSERT_FALSE(r.ok()) << c.conf;
    EXPECT_EQ(r.error().code, c.code) << c.conf << ": " << r.error().ToString();
  }
}

TEST(Config, MessagesNameTheField) {
  auto r = Parse(R"({"cniVersion":"1.0.0","name":"n","runtimeConfig":{"bandwidth":{"egressRate":"1"}}})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("\"egressRate\""), std::string::npos) << r.error().ToString();
  auto g = Parse(R"({"cniVersion":"1.1.0","name":"n","cni.dev/attachments":5})");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().ToString().find("cni.dev/attachments"), std::string::npos) << g.error().ToString();
}

TEST(Config, ParsesPrevResultOfEachShape) {
  auto c = Parse(R"({"cniVersion":"0.4.0","name":"n","prevResult":{
      "cniVersion":"0.4.0",
      "interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/x"}],
      "ips":[{"version":"4","address":"198.18.0.5/32","gateway":"169.254.1.1","interface":0}],
      "routes":[{"dst":"0.0.0.0/0","gw":"169.254.1.1"}],
      "dns":{"nameservers":["198.18.0.2"]}}})");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_TRUE(c->prev_result.has_value());
  EXPECT_EQ(c->prev_result->ips.at(0).address, "198.18.0.5/32");
  EXPECT_EQ(c->prev_result->ips.at(0).interface, 0);
  EXPECT_EQ(c->prev_result->dns.nameservers, std::vector<std::string>{"198.18.0.2"});
}

TEST(Config, GcAttachmentsFromBothKeysDeduplicated) {
  auto c = Parse(R"({"cniVersion":"1.1.0","name":"n",
      "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"},{"containerID":"b","ifname":"eth0"}],
      "cni.dev/attachments":[{"containerID":"b","ifname":"eth0"},{"containerID":"c","ifname":"eth1"}]})");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_TRUE(c->has_valid_attachments);
  EXPECT_EQ(c->valid_attachments,
            (std::vector<Attachment>{{"a", "eth0"}, {"b", "eth0"}, {"c", "eth1"}}));
  auto none = Parse(R"({"cniVersion":"1.1.0","name":"n"})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_valid_attachments);
}

}  // namespace
}  // namespace terway::cni
