#include "netlink/types.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

namespace terway::netlink {
namespace {

TEST(InetAddr, ParsesBothFamilies) {
  auto v4 = InetAddr::Parse("198.18.0.1");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->ToString(), "198.18.0.1");
  auto v6 = InetAddr::Parse("fd00::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->max_prefix_len(), 128);
  EXPECT_FALSE(InetAddr::Parse("198.18.0.256").ok());
  EXPECT_FALSE(InetAddr::Parse("fd00:::1:").ok());
}

TEST(InetPrefix, ParsesAndPrints) {
  auto p = InetPrefix::Parse("198.18.1.10/24");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->prefix_len, 24);
  EXPECT_EQ(p->ToString(), "198.18.1.10/24");  // host bits kept: interface address
  auto host = InetPrefix::Parse("fd00::5");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->prefix_len, 128);
  for (const char* bad : {"198.18.0.0/33", "198.18.0.0/", "198.18.0.0/-1", "fd00::/129", "x/8", "1.2.3.4/8x"}) {
    EXPECT_FALSE(InetPrefix::Parse(bad).ok()) << bad;
  }
  InetPrefix from_cidr = Ipv4Cidr::Parse("198.18.0.0/15").value();
  EXPECT_EQ(from_cidr.ToString(), "198.18.0.0/15");
}

TEST(Rule, FamilyFollowsItsAddresses) {
  Rule r;
  EXPECT_EQ(r.EffectiveFamily(), AF_INET);
  r.src = InetPrefix::Parse("fd00::/64").value();
  EXPECT_EQ(r.EffectiveFamily(), AF_INET6);
  r.family = AF_INET;
  EXPECT_EQ(r.EffectiveFamily(), AF_INET);
}

}  // namespace
}  // namespace terway::netlink
