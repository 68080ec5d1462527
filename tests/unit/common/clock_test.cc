#include "common/clock.h"

#include <gtest/gtest.h>

namespace terway {
namespace {

TEST(Clock, Iso8601RoundTrip) {
  Clock::TimePoint t;
  ASSERT_TRUE(ParseIso8601("2016-02-23T12:46:24Z", &t));
  EXPECT_EQ(FormatIso8601(t), "2016-02-23T12:46:24Z");
  EXPECT_FALSE(ParseIso8601("2016-02-23 12:46:24", &t));
  EXPECT_FALSE(ParseIso8601("2016-02-23T12:46:24Zjunk", &t));
}

TEST(Clock, FakeClockAdvances) {
  FakeClock c;
  auto t0 = c.Now();
  c.Advance(std::chrono::seconds(90));
  EXPECT_EQ(c.Now() - t0, std::chrono::seconds(90));
}

TEST(Clock, UuidsDiffer) {
  auto a = RandomUuid(), b = RandomUuid();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 36u);
}

}  // namespace
}  // namespace terway
