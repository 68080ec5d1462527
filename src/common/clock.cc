#include "common/clock.h"

#include <ctime>

#include <fmt/format.h>

namespace terway {

RealClock& RealClock::Instance() {
  static RealClock c;
  return c;
}

std::string FormatIso8601(Clock::TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool ParseIso8601(const std::string& text, Clock::TimePoint* out) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') return false;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::string RandomUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff,
                     a & 0xfff, (b >> 48 & 0x3fff) | 0x8000, b & 0xffffffffffffULL);
}

}  // namespace terway
