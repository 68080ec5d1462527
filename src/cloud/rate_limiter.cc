#include "cloud/rate_limiter.h"

#include <algorithm>

namespace terway::cloud {

RateLimitConfig RateLimiter::Defaults() {
  return {
      {"", 500},
      {"CreateNetworkInterface", 500},
      {"AttachNetworkInterface", 500},
      {"DetachNetworkInterface", 400},
      {"DeleteNetworkInterface", 500},
      {"DescribeNetworkInterfaces", 800},
      {"AssignPrivateIpAddresses", 400},
      {"UnassignPrivateIpAddresses", 400},
      {"AssignIpv6Addresses", 400},
      {"UnassignIpv6Addresses", 400},
      {"DescribeInstanceTypes", 400},
      {"DescribeVSwitches", 300},
      {"DescribeInstances", 300},
  };
}

RateLimiter::RateLimiter(const RateLimitConfig& overrides, const Clock* clock, Sleeper* sleeper)
    : limits_(Defaults()), clock_(clock), sleeper_(sleeper) {
  for (const auto& [action, per_minute] : overrides) limits_[action] = per_minute;
}

int RateLimiter::LimitFor(const std::string& action) const {
  auto it = limits_.find(action);
  if (it == limits_.end()) it = limits_.find("");
  return it == limits_.end() ? 0 : it->second;
}

RateLimiter::Bucket& RateLimiter::BucketFor(const std::string& action) {
  // Unlisted actions each get their own bucket of the default size, so one
  // chatty action cannot starve another.
  auto it = buckets_.find(action);
  if (it != buckets_.end()) return it->second;
  Bucket b;
  int per_minute = LimitFor(action);
  b.unlimited = per_minute <= 0;
  b.capacity = std::max(1, per_minute);
  b.tokens = b.capacity;
  b.per_second = per_minute / 60.0;
  b.last = clock_->Steady();
  return buckets_.emplace(action, b).first->second;
}

Status RateLimiter::Acquire(const std::string& action,
                            std::chrono::steady_clock::time_point deadline) {
  std::chrono::nanoseconds wait{0};
  {
    std::lock_guard l(mu_);
    Bucket& b = BucketFor(action);
    if (b.unlimited) return Ok();
    auto now = clock_->Steady();
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    if (elapsed > 0) {
      b.tokens = std::min(b.capacity, b.tokens + elapsed * b.per_second);
      b.last = now;
    }
    if (b.tokens < 1.0) {
      wait = std::chrono::nanoseconds(
          static_cast<int64_t>((1.0 - b.tokens) / b.per_second * 1e9));
      if (now + wait > deadline) {
        Error e = Errorf(ErrorCode::kTimeout,
                         "client-side rate limit of {} calls/minute for {} would delay the "
                         "call past its deadline (raise rate_limit.{} if the cloud quota allows)",
                         LimitFor(action), action, action);
        e.retryable = true;
        return e;
      }
    }
    // Reserve the token now (possibly going negative) so concurrent callers
    // queue behind us instead of all waking at the same moment.
    b.tokens -= 1.0;
  }
  if (wait > std::chrono::nanoseconds::zero()) sleeper_->SleepFor(wait);
  return Ok();
}

}  // namespace terway::cloud
