#include "cloud/backoff.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

namespace terway::cloud {

void RealSleeper::SleepFor(std::chrono::nanoseconds d) {
  if (d > std::chrono::nanoseconds::zero()) std::this_thread::sleep_for(d);
}

RealSleeper& RealSleeper::Instance() {
  static RealSleeper s;
  return s;
}

Uniform01 DefaultUniform01() {
  return [] {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  };
}

std::chrono::nanoseconds BackoffCeiling(const BackoffPolicy& policy, int attempt) {
  using std::chrono::nanoseconds;
  double ceiling = static_cast<double>(nanoseconds(policy.initial).count()) *
                   std::pow(policy.multiplier, std::max(0, attempt));
  double cap = static_cast<double>(nanoseconds(policy.max).count());
  return nanoseconds(static_cast<int64_t>(std::min(ceiling, cap)));
}

std::chrono::nanoseconds FullJitterDelay(const BackoffPolicy& policy, int attempt, double u01) {
  u01 = std::clamp(u01, 0.0, 1.0);
  auto ceiling = BackoffCeiling(policy, attempt);
  return std::chrono::nanoseconds(
      static_cast<int64_t>(static_cast<double>(ceiling.count()) * u01));
}

}  // namespace terway::cloud
