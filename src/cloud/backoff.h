// Waiting, injected: exponential backoff with full jitter, a Sleeper seam and
// a random source, so retry and polling logic is tested without sleeping.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

#include "common/clock.h"

namespace terway::cloud {

class Sleeper {
 public:
  virtual ~Sleeper() = default;
  virtual void SleepFor(std::chrono::nanoseconds d) = 0;
};

class RealSleeper : public Sleeper {
 public:
  void SleepFor(std::chrono::nanoseconds d) override;
  static RealSleeper& Instance();
};

// Advances a FakeClock instead of sleeping and records every wait.
class FakeSleeper : public Sleeper {
 public:
  explicit FakeSleeper(FakeClock* clock) : clock_(clock) {}
  void SleepFor(std::chrono::nanoseconds d) override {
    {
      std::lock_guard l(mu_);
      sleeps_.push_back(d);
    }
    clock_->Advance(d);
  }
  std::vector<std::chrono::nanoseconds> sleeps() const {
    std::lock_guard l(mu_);
    return sleeps_;
  }

 private:
  FakeClock* clock_;
  mutable std::mutex mu_;
  std::vector<std::chrono::nanoseconds> sleeps_;
};

// A uniform random number in [0, 1).
using Uniform01 = std::function<double()>;
// Thread-safe, seeded from std::random_device.
Uniform01 DefaultUniform01();

struct BackoffPolicy {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{10000};
  double multiplier = 2.0;
};

// "Full jitter" (AWS architecture blog): a delay drawn uniformly from
// [0, min(max, initial * multiplier^attempt)). Spreads a crowd of clients that
// were throttled at the same moment, where equal delays would make them
// collide again. attempt counts from 0.
std::chrono::nanoseconds FullJitterDelay(const BackoffPolicy& policy, int attempt, double u01);
// The upper bound of FullJitterDelay for this attempt.
std::chrono::nanoseconds BackoffCeiling(const BackoffPolicy& policy, int attempt);

}  // namespace terway::cloud
