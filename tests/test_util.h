// Helpers shared by tests.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace terway::testing {

// Root-only tests call this first: they skip, naming the reason, instead of
// failing or passing vacuously when not root.
#define TERWAY_REQUIRE_ROOT()                                                   \
  do {                                                                          \
    if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, netlink, nftables)"; \
  } while (0)

// Asserts a Status/Result is ok, printing the expression and the error.
#define ASSERT_OK(expr)                                             \
  do {                                                              \
    auto&& r_ = (expr);                                             \
    ASSERT_TRUE(r_.ok()) << #expr << ": " << r_.error().ToString(); \
  } while (0)

// Runs a shell command (tests inspect the kernel with `ip`, `nft`) and
// returns its stdout.
inline std::string Capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Directory holding the built binaries (cmd/<name>/<name> under the build dir).
#ifndef TERWAY_DEFAULT_BINARY_DIR
#define TERWAY_DEFAULT_BINARY_DIR "."
#endif
#ifndef TERWAY_DEFAULT_SOURCE_DIR
#define TERWAY_DEFAULT_SOURCE_DIR "."
#endif
inline std::string BinaryDir() {
  const char* d = std::getenv("TERWAY_BINARY_DIR");
  return d ? d : TERWAY_DEFAULT_BINARY_DIR;
}
inline std::string SourceDir() {
  const char* d = std::getenv("TERWAY_SOURCE_DIR");
  return d ? d : TERWAY_DEFAULT_SOURCE_DIR;
}
inline std::string BinaryPath(const std::string& name) {
  return BinaryDir() + "/cmd/" + name + "/" + name;
}

// A short unique token for names of namespaces/links made by one test run, so
// parallel runs never collide and leftovers are attributable.
inline std::string UniqueSuffix() {
  static int counter = 0;
  return std::to_string(getpid() % 100000) + "x" + std::to_string(counter++);
}

}  // namespace terway::testing
