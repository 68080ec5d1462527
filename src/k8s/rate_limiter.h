// Client-side request rate limit: a token bucket (qps refill, burst size),
// as client-go applies to every request, so a misbehaving loop in the daemon
// cannot flood the API server of a large cluster.
#pragma once

#include <chrono>
#include <mutex>

#include "common/clock.h"

namespace terway::k8s {

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Blocks until a request may go.
  virtual void Wait() = 0;
};

class TokenBucket : public RateLimiter {
 public:
  // qps <= 0 disables limiting.
  TokenBucket(double qps, int burst, const Clock& clock = RealClock::Instance());
  // Takes a token and returns how long the caller must wait before using it
  // (zero when one was available). Tokens may go negative: waiters queue up
  // in order instead of racing.
  std::chrono::nanoseconds Reserve();
  void Wait() override;

 private:
  const double qps_;
  const double burst_;
  const Clock& clock_;
  std::mutex mu_;
  double tokens_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace terway::k8s
