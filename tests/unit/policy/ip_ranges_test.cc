#include "policy/ip_ranges.h"

#include <gtest/gtest.h>

namespace terway::policy {
namespace {

Ipv4Cidr C(const char* s) { return Ipv4Cidr::Parse(s).value(); }
Ipv4Addr A(const char* s) { return Ipv4Addr::Parse(s).value(); }

TEST(Ipv4RangeSet, MergesAdjacentAndOverlapping) {
  Ipv4RangeSet s;
  s.Add(A("198.18.0.2"));
  s.Add(A("198.18.0.1"));
  s.Add(C("198.18.0.4/31"));
  EXPECT_EQ(s.ToString(), "198.18.0.1-198.18.0.2, 198.18.0.4-198.18.0.5");
  s.Add(A("198.18.0.3"));
  EXPECT_EQ(s.ToString(), "198.18.0.1-198.18.0.5");
  s.Add(C("198.18.0.0/24"));
  EXPECT_EQ(s.ranges().size(), 1u);
}

TEST(Ipv4RangeSet, SubtractCutsHolesAndEdges) {
  Ipv4RangeSet s;
  s.Add(C("198.18.0.0/24"));
  Ipv4RangeSet cut;
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

TEST(Ipv4RangeSet, WholeSpaceMinusAHole) {
  Ipv4RangeSet s = Ipv4RangeSet::All();
  Ipv4RangeSet cut;
  cut.Add(C("0.0.0.0/1"));
  s.Subtract(cut);
  EXPECT_EQ(s.ToString(), "128.0.0.0-255.255.255.255");
  EXPECT_TRUE(s.Contains(A("255.255.255.255")));
  s.AddRange(0, 0);
  EXPECT_TRUE(s.Contains(A("0.0.0.0")));
  EXPECT_FALSE(s.Contains(A("0.0.0.1")));
}

}  // namespace
}  // namespace terway::policy
