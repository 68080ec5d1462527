// Injectable time and randomness so pool, backoff and expiry logic is tested
// without sleeping (hermetic tests, as Envoy does).
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

namespace terway {

class Clock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  // Monotonic time for durations and deadlines.
  virtual std::chrono::steady_clock::time_point Steady() const = 0;
};

class RealClock : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::now();
  }
  static RealClock& Instance();
};

// A clock tests move by hand.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start = TimePoint(std::chrono::seconds(1700000000)))
      : now_(start) {}
  TimePoint Now() const override {
    std::lock_guard l(mu_);
    return now_;
  }
  std::chrono::steady_clock::time_point Steady() const override {
    std::lock_guard l(mu_);
    return std::chrono::steady_clock::time_point(now_.time_since_epoch());
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard l(mu_);
    now_ += std::chrono::duration_cast<TimePoint::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_;
};

// ISO 8601 UTC, "2016-02-23T12:46:24Z" (the form Alibaba Cloud's APIs use).
std::string FormatIso8601(Clock::TimePoint t);
// Parses "YYYY-MM-DDTHH:MM:SSZ"; returns false on malformed text.
bool ParseIso8601(const std::string& text, Clock::TimePoint* out);

// 128 random bits as a UUID-looking string (nonces, request ids, client tokens).
std::string RandomUuid();

}  // namespace terway
