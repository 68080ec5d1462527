// Processes of the lab: commands run to completion (optionally inside a named
// network namespace, with extra environment and stdin), and daemons that
// outlive the terway-lab invocation that started them.
//
// A daemon is identified by its pid and its start time (field 22 of
// /proc/<pid>/stat): a later invocation stops it by pid, and the start time
// makes sure a recycled pid of an unrelated process is never signalled.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace terway::lab {

struct CommandSpec {
  std::vector<std::string> argv;  // argv[0] is the path of the binary
  std::string netns;              // named namespace to run in; empty: ours
  std::map<std::string, std::string> env;  // added to our environment
  std::string stdin_data;
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
};

struct CommandOutput {
  int exit_code = -1;  // 128+signal when killed
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs the command to completion. Fails only when it could not be started
// (missing binary, namespace); a non-zero exit is reported in the output.
Result<CommandOutput> RunCommand(const CommandSpec& spec);
// The common case: no extra environment, no stdin.
Result<CommandOutput> RunCommand(std::vector<std::string> argv, std::string netns = "",
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));

struct DaemonId {
  pid_t pid = 0;
  long long start_time = 0;  // clock ticks since boot, from /proc/<pid>/stat
};

struct DaemonSpec {
  std::vector<std::string> argv;
  std::string netns;
  std::string log_path;  // stdout+stderr, appended
};

// Starts a daemon in its own session (it survives our exit and our terminal),
// and returns once it has exec'd (or reports why it could not).
Result<DaemonId> StartDaemon(const DaemonSpec& spec);

// True while the daemon identified by id runs (a zombie or a recycled pid is
// not it).
bool DaemonAlive(const DaemonId& id);

// SIGTERM, then SIGKILL after grace; success when it is gone (also when it
// was already gone).
Status StopDaemon(const DaemonId& id, std::chrono::milliseconds grace = std::chrono::seconds(10));

// Start time of a running pid (0 when it does not exist).
long long ProcessStartTime(pid_t pid);

// Polls cond every interval until it holds or the deadline passes.
bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds deadline,
               std::chrono::milliseconds interval = std::chrono::milliseconds(100));

std::string ReadTextFile(const std::string& path);
// Writes via a temp file and rename, so a reader never sees half a file.
Status WriteTextFileAtomic(const std::string& path, const std::string& content);

}  // namespace terway::lab
