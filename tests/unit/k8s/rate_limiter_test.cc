#include "k8s/rate_limiter.h"

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// Waits are computed in floating point; compare them at millisecond grain.
milliseconds Ms(nanoseconds d) { return std::chrono::round<milliseconds>(d); }

TEST(TokenBucket, BurstThenQpsPacing) {
  FakeClock clock;
  TokenBucket bucket(/*qps=*/5, /*burst=*/3, clock);
  for (int i = 0; i < 3; i++) EXPECT_EQ(bucket.Reserve(), nanoseconds(0)) << i;
  // Out of tokens: the next caller waits 1/qps, the one after 2/qps.
  EXPECT_EQ(Ms(bucket.Reserve()), milliseconds(200));
  EXPECT_EQ(Ms(bucket.Reserve()), milliseconds(400));
  // After 400ms the debt is paid; one more token needs another 200ms.
  clock.Advance(milliseconds(400));
  EXPECT_EQ(Ms(bucket.Reserve()), milliseconds(200));
}

TEST(TokenBucket, RefillsUpToBurstOnly) {
  FakeClock clock;
  TokenBucket bucket(10, 2, clock);
  bucket.Reserve();
  bucket.Reserve();
  clock.Advance(std::chrono::seconds(60));  // far more than needed to refill
  EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
  EXPECT_EQ(Ms(bucket.Reserve()), milliseconds(100));
}

TEST(TokenBucket, ZeroQpsDisablesLimiting) {
  FakeClock clock;
  TokenBucket bucket(0, 1, clock);
  for (int i = 0; i < 100; i++) EXPECT_EQ(bucket.Reserve(), nanoseconds(0));
}

}  // namespace
}  // namespace terway::k8s
