#include "policy/ip_ranges.h"

#include <gtest/gtest.h>

namespace terway::policy {
namespace {

Ipv4Cidr C(const char* s) { return Ipv4Cidr::Parse(s).value(); }
Ipv4Addr A(const char* s) { return Ipv4Addr::Parse(s).value(); }

TEST(IpRangeSet, MergesAdjacentAndOverlapping) {
  IpRangeSet s;
  s.Add(A("198.18.0.2"));
  s.Add(A("198.18.0.1"));
  s.Add(C("198.18.0.4/31"));
  EXPECT_EQ(s.ToString(), "198.18.0.1-198.18.0.2, 198.18.0.4-198.18.0.5");
  s.Add(A("198.18.0.3"));
  EXPECT_EQ(s.ToString(), "198.18.0.1-198.18.0.5");
  s.Add(C("198.18.0.0/24"));
  EXPECT_EQ(s.ranges().size(), 1u);
}

TEST(IpRangeSet, SubtractCutsHolesAndEdges) {
  IpRangeSet s;
  s.Add(C("198.18.0.0/24"));
  IpRangeSet cut;
  cut.Add(C("198.18.0.0/30"));
  cut.Add(A("198.18.0.10"));
  cut.Add(C("198.18.0.128/25"));
  s.Subtract(cut);
  EXPECT_EQ(s.ToString(), "198.18.0.4-198.18.0.9, 198.18.0.11-198.18.0.127");
  EXPECT_TRUE(s.Contains(A("198.18.0.4")));
  EXPECT_FALSE(s.Contains(A("198.18.0.10")));
  EXPECT_FALSE(s.Contains(A("198.18.0.3")));
  EXPECT_FALSE(s.Contains(A("198.18.0.200")));
}

TEST(IpRangeSet, WholeSpaceMinusAHole) {
  IpRangeSet s = IpRangeSet::All();
  IpRangeSet cut;
  cut.Add(C("0.0.0.0/1"));
  s.Subtract(cut);
  // Every address is both families: what is left of IPv4, and all of IPv6
  // around the IPv4-mapped block (which stands for IPv4).
  EXPECT_EQ(s.ToString(), "128.0.0.0-255.255.255.255, ::-::fffe:ffff:ffff, ::1:0:0:0-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_TRUE(s.Contains(A("255.255.255.255")));
  s.Add(A("0.0.0.0"));
  EXPECT_TRUE(s.Contains(A("0.0.0.0")));
  EXPECT_FALSE(s.Contains(A("0.0.0.1")));
}

TEST(IpRangeSet, Ipv6CidrsExceptionsAndTheMappedBlock) {
  auto c6 = [](const char* t) { return *Ipv6Cidr::Parse(t); };
  IpRangeSet s;
  s.Add(c6("fd00::/64"));
  IpRangeSet cut;
  cut.Add(c6("fd00::8/125"));
  s.Subtract(cut);
  EXPECT_EQ(s.ToString(), "fd00::-fd00::7, fd00::10-fd00::ffff:ffff:ffff:ffff");
  EXPECT_TRUE(s.Contains(*Ipv6Addr::Parse("fd00::7")));
  EXPECT_FALSE(s.Contains(*Ipv6Addr::Parse("fd00::8")));
  EXPECT_FALSE(s.Contains(A("0.0.0.0")));  // no IPv4 address is in an IPv6 CIDR
  // ::/0 is all of IPv6 but not IPv4: its IPv4-mapped block is left out.
  IpRangeSet all6;
  all6.Add(c6("::/0"));
  EXPECT_FALSE(all6.Contains(A("198.18.1.1")));
  EXPECT_TRUE(all6.Contains(*Ipv6Addr::Parse("::1")));
  IpRangeSet both = all6;
  both.Add(C("0.0.0.0/0"));
  EXPECT_EQ(both, IpRangeSet::All());
  // Host bits in a CIDR: its network.
  IpRangeSet host;
  host.Add(Ipv6Cidr(*Ipv6Addr::Parse("fd00::1:5"), 112));
  EXPECT_EQ(host.ToString(), "fd00::1:0-fd00::1:ffff");
  EXPECT_EQ(KeyToString(*ParseIpKey("FD00::1")), "fd00::1");
  EXPECT_FALSE(ParseIpKey("fd00::1/64").ok());
}

}  // namespace
}  // namespace terway::policy
