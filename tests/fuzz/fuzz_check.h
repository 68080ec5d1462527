// Shared by the libFuzzer targets of tests/fuzz: the check that turns a
// broken invariant into a crash libFuzzer records (with the input that
// caused it), and the JSON checks every target applies to what it renders.
//
// Checks must hold in a release build too (the fuzz build is -O2 with
// NDEBUG), so they are not assert(). A check's message goes to a copy of
// stderr taken at start-up: the runs close the targets' own stderr
// (-close_fd_mask=2) because the plugin logs every refused input there.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace terway::fuzz {

inline int& ReportFd() {
  static int fd = dup(STDERR_FILENO);
  return fd;
}

[[noreturn]] inline void Fail(const char* file, int line, const char* cond, const std::string& detail) {
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": fuzz check failed: " + cond;
  if (!detail.empty()) msg += ": " + detail;
  msg += "\n";
  if (ReportFd() >= 0) (void)!write(ReportFd(), msg.data(), msg.size());
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                         \
  do {                                                                   \
    if (!(cond)) ::terway::fuzz::Fail(__FILE__, __LINE__, #cond, detail); \
  } while (0)

// Whatever the plugin prints or sends must be JSON a strict reader accepts:
// UTF-8 throughout (the strict parser refuses anything else) and one value.
inline nlohmann::json MustParse(std::string_view text, const char* what) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!j.is_discarded(), std::string(what) + " is not valid JSON: " + std::string(text.substr(0, 512)));
  return j;
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace terway::fuzz
