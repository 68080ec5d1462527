// Structured logging on stderr (stdout belongs to CNI results and CLI output).
// Messages are "event key=value ..." so they grep and parse.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace terway::log {

// Sets up the process-wide logger. level: trace|debug|info|warn|error|off.
// component prefixes every line ("terwayd", "vpcsim", ...).
void Init(std::string_view component, std::string_view level = "info");
void SetLevel(std::string_view level);

template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::debug(f, std::forward<Args>(args)...);
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::info(f, std::forward<Args>(args)...);
}
template <typename... Args>
void Warn(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::warn(f, std::forward<Args>(args)...);
}
template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::error(f, std::forward<Args>(args)...);
}

}  // namespace terway::log
