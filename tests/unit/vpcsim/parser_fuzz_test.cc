// The request parser and the whole OpenAPI front end never crash on hostile
// input: a randomized property test (seeded, so failures reproduce).
#include <random>

#include "tools/vpcsim/query.h"
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

TEST(FormParser, Basics) {
  auto p = ParseFormEncoded("a=1&b=x%20y&c=&d&e=a+b");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->at("a"), "1");
  EXPECT_EQ(p->at("b"), "x y");
  EXPECT_EQ(p->at("c"), "");
  EXPECT_EQ(p->at("d"), "");
  EXPECT_EQ(p->at("e"), "a b");
  EXPECT_FALSE(ParseFormEncoded("a=1&a=2").ok());
  EXPECT_FALSE(ParseFormEncoded("a=%zz").ok());
  EXPECT_FALSE(ParseFormEncoded("a=%4").ok());
  EXPECT_FALSE(ParseFormEncoded("=1").ok());
  EXPECT_TRUE(ParseFormEncoded("").ok());
  EXPECT_TRUE(ParseFormEncoded("&&&").ok());
}

TEST(FormParser, RepeatList) {
  cloud::QueryParams p = {{"X.2", "b"}, {"X.1", "a"}, {"X.10", "c"}, {"Y.1", "z"}};
  auto l = RepeatList(p, "X");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(RepeatList({{"X.0", "a"}}, "X").ok());
  EXPECT_FALSE(RepeatList({{"X.a", "a"}}, "X").ok());
  EXPECT_FALSE(RepeatList({{"X.5", "a"}}, "X", 4).ok());
}

TEST(FormParser, RoundTripsArbitraryBytes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; i++) {
    cloud::QueryParams in;
    int n = static_cast<int>(rng() % 6);
    for (int k = 0; k < n; k++) {
      std::string key(1 + rng() % 8, 'k'), val(rng() % 12, 'v');
      for (auto& c : key) c = static_cast<char>(rng() % 256);
      for (auto& c : val) c = static_cast<char>(rng() % 256);
      in[key] = val;
    }
    auto out = ParseFormEncoded(cloud::CanonicalizedQuery(in));
    ASSERT_TRUE(out.ok()) << i;
    EXPECT_EQ(*out, in);
  }
}

class FuzzTest : public CloudFixture {};

TEST_F(FuzzTest, RandomAndMutatedRequestsGetAnErrorBodyNeverACrash) {
  std::mt19937 rng(12345);
  const std::string alphabet = "=&%+.0123456789ABCDEFabcdef-_~ \x01\xff[]\"{}";
  const std::vector<std::string> actions = {"CreateNetworkInterface", "AttachNetworkInterface",
      "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "DescribeNetworkInterfaces",
      "AssignIpv6Addresses", "DescribeInstances", "DeleteNetworkInterface"};
  const std::vector<std::string> keys = {"NetworkInterfaceId", "InstanceId", "VSwitchId",
      "SecondaryPrivateIpAddressCount", "PrivateIpAddress.1", "PrivateIpAddress.99999",
      "Ipv6AddressCount", "Tag.1.Key", "Tag.1.Value", "MaxResults", "NextToken", "PageSize",
      "PageNumber", "InstanceIds", "ClientToken", "SecurityGroupId"};
  int ok = 0;
  for (int i = 0; i < 3000; i++) {
    HttpReply r;
    if (i % 3 == 0) {
      std::string junk(rng() % 200, ' ');
      for (auto& c : junk) c = alphabet[rng() % alphabet.size()];
      r = api_->HandleRaw(i % 2 ? "GET" : "POST", junk, junk);
    } else {
      // Well-signed requests with hostile values reach the actions themselves.
      cloud::QueryParams p;
      int n = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < n; k++) {
        std::string v(rng() % 24, ' ');
        for (auto& c : v) c = alphabet[rng() % alphabet.size()];
        if (rng() % 3 == 0) v = std::to_string(static_cast<int>(rng() % 200) - 50);
        p[keys[rng() % keys.size()]] = v;
      }
      r = Raw(actions[rng() % actions.size()], p);
    }
    ASSERT_TRUE(r.status == 200 || (r.status >= 400 && r.status < 600)) << r.status;
    json j = json::parse(r.body);  // always JSON
    if (r.status == 200) {
      ok++;
    } else {
      EXPECT_FALSE(j.value("Code", "").empty()) << r.body;
      EXPECT_NE(j.value("Code", ""), "InternalError") << r.body;
    }
  }
  EXPECT_GT(ok, 0);  // the generator does reach success paths
}

}  // namespace
}  // namespace terway::vpcsim::testing
