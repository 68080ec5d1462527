// Child processes for e2e tests: the real binaries, optionally started inside
// a network namespace (setns in the child before exec, as `ip netns exec`
// does), with stdout/stderr to a log file. The destructor stops the process
// (SIGTERM, then SIGKILL after a grace period), so a failing test never leaves
// one behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace terway::testing {

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is the path of the binary
  std::string netns;              // named namespace to run in; empty: ours
  std::string log_path;           // stdout+stderr; empty: /dev/null
  std::map<std::string, std::string> env;  // added to our environment
};

class Process {
 public:
  static Result<Process> Start(ProcessOptions opts);
  Process() = default;
  Process(Process&& o) noexcept { *this = std::move(o); }
  Process& operator=(Process&& o) noexcept;
  ~Process() { Stop(); }

  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, wait up to grace, then SIGKILL. Returns the exit status (as
  // waitpid reports it) or -1 if it was not running.
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // kill -9 without any grace: the crash tests.
  void Kill9();
  std::string Log() const;
  const std::string& log_path() const { return opts_.log_path; }

 private:
  ProcessOptions opts_;
  pid_t pid_ = -1;
};

// Runs a command to completion and returns its exit code and output
// (stdout+stderr), with a timeout. For CLIs (vpcsim describe, terway-cli ...).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& netns = "",
                         std::chrono::milliseconds timeout = std::chrono::seconds(60),
                         const std::string& stdin_data = "");

// Polls cond every interval until it holds or the deadline passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds deadline,
             std::chrono::milliseconds interval = std::chrono::milliseconds(50));

std::string ReadFile(const std::string& path);
Status WriteFile(const std::string& path, const std::string& content);

// A temporary directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace terway::testing
