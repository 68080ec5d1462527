#include "common/ip.h"

#include <gtest/gtest.h>

namespace terway {
namespace {

TEST(Ipv4, ParseAndFormat) {
  auto a = Ipv4Addr::Parse("198.18.0.1");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->value(), 0xc6120001u);
  EXPECT_EQ(a->ToString(), "198.18.0.1");
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4 ", "::1"}) {
    EXPECT_FALSE(Ipv4Addr::Parse(bad).ok()) << bad;
  }
}

TEST(Ipv4Cidr, ParseContainsAt) {
  auto c = Ipv4Cidr::Parse("198.18.1.0/24");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->size(), 256u);
  EXPECT_TRUE(c->Contains(*Ipv4Addr::Parse("198.18.1.77")));
  EXPECT_FALSE(c->Contains(*Ipv4Addr::Parse("198.18.2.1")));
  EXPECT_EQ(c->At(253).ToString(), "198.18.1.253");
  EXPECT_EQ(c->Broadcast().ToString(), "198.18.1.255");
  EXPECT_EQ(c->netmask().ToString(), "255.255.255.0");
  EXPECT_TRUE(Ipv4Cidr::Parse("198.18.0.0/15")->Contains(*c));
  EXPECT_TRUE(c->Overlaps(*Ipv4Cidr::Parse("198.18.0.0/16")));
  EXPECT_FALSE(c->Overlaps(*Ipv4Cidr::Parse("198.18.2.0/24")));
}

TEST(Ipv4Cidr, RejectsMalformed) {
  auto r = Ipv4Cidr::Parse("198.18.1.5/24");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("did you mean 198.18.1.0/24"), std::string::npos);
  EXPECT_TRUE(Ipv4Cidr::Parse("198.18.1.5/24", true).ok());
  for (const char* bad : {"198.18.0.0", "198.18.0.0/33", "198.18.0.0/-1", "198.18.0.0/2x", "/24"}) {
    EXPECT_FALSE(Ipv4Cidr::Parse(bad).ok()) << bad;
  }
}

TEST(Ipv6, ParseCidrAt) {
  auto c = Ipv6Cidr::Parse("2001:db8:1::/64");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->At(5).ToString(), "2001:db8:1::5");
  EXPECT_TRUE(c->Contains(*Ipv6Addr::Parse("2001:db8:1::ff")));
  EXPECT_FALSE(c->Contains(*Ipv6Addr::Parse("2001:db8:2::ff")));
  EXPECT_FALSE(Ipv6Addr::Parse("1.2.3.4").ok());
}

TEST(Mac, ParseFormat) {
  auto m = MacAddr::Parse("00:16:3E:0a:0b:0c");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->ToString(), "00:16:3e:0a:0b:0c");
  EXPECT_FALSE(MacAddr::Parse("00:16:3e:0a:0b").ok());
  EXPECT_FALSE(MacAddr::Parse("00:16:3e:0a:0b:0c:0d").ok());
}

}  // namespace
}  // namespace terway
