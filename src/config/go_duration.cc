#include "config/go_duration.h"

#include <cctype>

namespace terway::config {

Result<std::chrono::seconds> ParseGoDuration(const std::string& text) {
  TERWAY_ASSIGN_OR_RETURN(auto ns, ParseGoDurationNanos(text));
  return std::chrono::duration_cast<std::chrono::seconds>(ns);
}

Result<std::chrono::nanoseconds> ParseGoDurationNanos(const std::string& text) {
  if (text.empty()) return Errorf(ErrorCode::kInvalidArgument, "empty duration");
  if (text == "0") return std::chrono::nanoseconds(0);
  size_t i = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    i = 1;
  }
  long double total_ns = 0;
  bool any = false;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (start == i) return Errorf(ErrorCode::kInvalidArgument, "invalid duration \"{}\"", text);
    long double num = 0;
    try {
      num = std::stold(text.substr(start, i - start));
    } catch (const std::exception&) {
      return Errorf(ErrorCode::kInvalidArgument, "invalid duration \"{}\"", text);
    }
    size_t ustart = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') ++i;
    std::string unit = text.substr(ustart, i - ustart);
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else if (unit.empty())
      return Errorf(ErrorCode::kInvalidArgument, "missing unit in duration \"{}\"", text);
    else
      return Errorf(ErrorCode::kInvalidArgument, "unknown unit \"{}\" in duration \"{}\"", unit, text);
    total_ns += num * scale;
    any = true;
  }
  if (!any || negative) {
    return Errorf(ErrorCode::kInvalidArgument, "invalid duration \"{}\" (must be >= 0)", text);
  }
  // Go's limit (about 290 years) also keeps the conversion in range.
  if (total_ns > 9.2e18L) return Errorf(ErrorCode::kInvalidArgument, "duration \"{}\" is too long", text);
  return std::chrono::nanoseconds(static_cast<int64_t>(total_ns));
}

}  // namespace terway::config
