// Client-side rate limit per API action: one token bucket per action, sized
// in calls per minute like Terway's `rate_limit` config map. Alibaba Cloud
// throttles per account and action; staying under that on our side turns a
// burst of pods into a short queue instead of a storm of Throttling errors.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "cloud/backoff.h"
#include "common/clock.h"
#include "common/result.h"

namespace terway::cloud {

// action -> calls per minute. The empty action "" is the limit for actions
// not listed. A value <= 0 means unlimited.
using RateLimitConfig = std::map<std::string, int>;

class RateLimiter {
 public:
  // Built-in defaults, overridden entry by entry by `overrides`.
  RateLimiter(const RateLimitConfig& overrides, const Clock* clock, Sleeper* sleeper);

  // The per-minute defaults: the same order of magnitude as Terway's, below
  // the account-level quotas of the ECS API.
  static RateLimitConfig Defaults();

  // Takes one token for `action`, sleeping until one is free. Fails with
  // kTimeout (retryable) when the wait would pass `deadline`; then no token
  // is taken.
  Status Acquire(const std::string& action, std::chrono::steady_clock::time_point deadline);

  // The per-minute limit in force for an action (tests, metrics).
  int LimitFor(const std::string& action) const;

 private:
  struct Bucket {
    double capacity = 0;  // burst = one minute's worth, as Terway does
    double tokens = 0;    // may go negative: reserved by waiting callers
    double per_second = 0;
    std::chrono::steady_clock::time_point last{};
    bool unlimited = false;
  };
  Bucket& BucketFor(const std::string& action);

  RateLimitConfig limits_;
  const Clock* clock_;
  Sleeper* sleeper_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace terway::cloud
