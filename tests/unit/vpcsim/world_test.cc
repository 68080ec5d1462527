// World definition: the default world loads; bad worlds give clear errors.
#include "tools/vpcsim/world.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim {
namespace {

std::string ErrorOf(const std::string& yaml) {
  auto w = ParseWorld(yaml);
  return w.ok() ? "" : w.error().ToString();
}

TEST(World, DefaultWorldLoads) {
  auto w = LoadWorld(terway::testing::SourceDir() + "/tools/vpcsim/worlds/default.yaml");
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  EXPECT_EQ(w->region, "cn-hangzhou");
  ASSERT_EQ(w->vswitches.size(), 2u);
  EXPECT_EQ(w->vswitches[0].gateway.ToString(), "198.18.0.253");
  EXPECT_EQ(w->instances.size(), 1u);
  EXPECT_NE(w->FindAccessKey("LTAIvpcsimDefault"), nullptr);
}

TEST(World, GatewayAndUsableRange) {
  auto c = *Ipv4Cidr::Parse("198.18.4.0/22");
  EXPECT_EQ(VSwitchGateway(c).ToString(), "198.18.7.253");
  EXPECT_EQ(FirstUsable(c).ToString(), "198.18.4.1");
  EXPECT_EQ(LastUsable(c).ToString(), "198.18.7.252");
  EXPECT_EQ(UsableCount(c), 1020u);
}

TEST(World, ClearErrors) {
  std::string base = testing::kTestWorld;
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    auto p = s.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    return s.replace(p, from.size(), to);
  };
  EXPECT_EQ(ErrorOf(base), "");
  EXPECT_NE(ErrorOf(replaced("cidr: 198.18.0.0/16", "cidr: 10.0.0.0/16")).find("198.18.0.0/15"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("198.18.1.0/29", "198.18.0.128/25")).find("overlaps"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("ecs.vpcsim.tiny", "ecs.nope")).find("unknown instance type 'ecs.nope'"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("vswitch: vsw-a}", "vswitch: vsw-z}")).find("unknown vswitch 'vsw-z'"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("198.18.2.0/24", "198.18.2.0/33")).find("bad cidr"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("access_keys:\n  - {id: LTAItestkey, secret: test-secret}", "")).find("access_keys"),
            std::string::npos);
  EXPECT_NE(ErrorOf("region: [unclosed").find("YAML"), std::string::npos);
  EXPECT_NE(ErrorOf("- a list").find("mapping"), std::string::npos);
  EXPECT_NE(ErrorOf(replaced("name: ut", "name: waytoolongname")).find("1-8 characters"), std::string::npos);
  EXPECT_FALSE(LoadWorld("/nonexistent/world.yaml").ok());
}

}  // namespace
}  // namespace terway::vpcsim
