// Go's time.ParseDuration syntax, which Terway's eni_conf uses for every
// duration ("30m", "1h30m", "500ms", "0").
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"

namespace terway::config {

// Rounded down to whole seconds; negative durations are refused.
Result<std::chrono::seconds> ParseGoDuration(const std::string& text);
// To the nanosecond (backoff waits are often below a second).
Result<std::chrono::nanoseconds> ParseGoDurationNanos(const std::string& text);

}  // namespace terway::config
