// A named wait around a cloud call, in the shape of Kubernetes' wait.Backoff
// (Duration, Factor, Jitter, Steps, Cap) plus upstream Terway's InitialDelay,
// because that is the shape eni_conf's `backoff_override` gives it in
// (src/config/README.md). Header-only: src/config builds these values and
// does not link the cloud clients.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace terway::cloud {

struct StepBackoff {
  // Waited once before the first attempt (upstream's ExtendedBackoff).
  std::chrono::nanoseconds initial_delay{0};
  // The wait after the first failed attempt; later waits grow by `factor`.
  std::chrono::nanoseconds duration{0};
  double factor = 1;  // >= 1; Kubernetes reads 0 as "no growth", so do we
  // Each wait is stretched by a random share of itself, up to `jitter` (so
  // 0.5 means 1x..1.5x), spreading nodes that failed at the same moment.
  double jitter = 0;
  int steps = 1;  // attempts in all, the first included
  // Bound on one wait; 0: none. (Kubernetes also ends the whole wait once the
  // bound is reached; we keep going to `steps`, so a cap never shortens the
  // operator's budget of attempts.)
  std::chrono::nanoseconds cap{0};

  bool operator==(const StepBackoff&) const = default;
};

// The wait after failed attempt number `attempt` (0 = after the first), for a
// random draw u01 in [0, 1). Pure: the caller owns the clock and the random
// source.
inline std::chrono::nanoseconds StepBackoffDelay(const StepBackoff& b, int attempt, double u01) {
  double factor = b.factor == 0 ? 1.0 : b.factor;
  double d = static_cast<double>(b.duration.count()) * std::pow(factor, std::max(0, attempt));
  if (b.cap.count() > 0) d = std::min(d, static_cast<double>(b.cap.count()));
  if (b.jitter > 0) d += d * b.jitter * std::clamp(u01, 0.0, 1.0);
  // A day is far beyond any wait the cloud needs; the bound keeps a large
  // factor or step count from overflowing the conversion.
  constexpr double kMaxNs = 86400e9;
  return std::chrono::nanoseconds(static_cast<int64_t>(std::min(d, kMaxNs)));
}

// The longest the whole schedule can wait (jitter at its maximum), used to
// size a call deadline so it never cuts an operator's schedule short.
inline std::chrono::nanoseconds StepBackoffMaxTotal(const StepBackoff& b) {
  std::chrono::nanoseconds total = b.initial_delay;
  for (int i = 0; i + 1 < b.steps && total < std::chrono::hours(24); i++) {
    total += StepBackoffDelay(b, i, 1.0);
  }
  return total;
}

// The default poll: 0.5 s doubling to 5 s, 27 polls, about two minutes in
// all -- longer than an attach or detach takes on ECS, short enough that a
// stuck ENI surfaces as an error. eni_conf's backoff_override replaces it
// (`eni_ops` for the attach wait, `wait_eni_status` for the detach wait).
inline constexpr StepBackoff kDefaultEniStatusWait{
    .initial_delay = std::chrono::nanoseconds(0),
    .duration = std::chrono::milliseconds(500),
    .factor = 2.0,
    .jitter = 0,
    .steps = 27,
    .cap = std::chrono::seconds(5),
};

}  // namespace terway::cloud
