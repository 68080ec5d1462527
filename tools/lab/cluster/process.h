// Processes of the lab: commands run to completion (optionally inside a named
// network namespace, with extra environment and stdin), and daemons that
// outlive the terway-lab invocation that started them.
//
// A daemon is identified by its pid and its start time (field 22 of
// /proc/<pid>/stat): a later invocation stops it by pid, and the start time
// makes sure a recycled pid of an unrelated process is never signalled.
//
// A child inherits no descriptor but stdin, stdout and stderr: everything
// above stderr is made close-on-exec in the child before exec (close_range),
// whatever flags its opener forgot. The control plane runs the CNI plugin
// from threads while its API server and clients hold sockets; a plugin, a
// daemon or a command in a pod must never hold those.
//
// Safe to call from several threads at once (the control plane runs plugins
// of different pods in parallel).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
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
  // When set and it turns true, the command is killed as at its timeout
  // (the control plane stopping while a plugin runs).
  const std::atomic<bool>* cancel = nullptr;
  // The child's umask; unset: ours.
  std::optional<mode_t> umask;
};

struct CommandOutput {
  int exit_code = -1;  // 128+signal when killed
  bool timed_out = false;
  bool cancelled = false;
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
  DaemonSpec(std::vector<std::string> argv_, std::string netns_, std::string log_path_,
             std::optional<mode_t> umask_ = std::nullopt)
      : argv(std::move(argv_)), netns(std::move(netns_)), log_path(std::move(log_path_)), umask(umask_) {}
  std::vector<std::string> argv;
  std::string netns;
  std::string log_path;  // stdout+stderr, appended; created 0600
  std::optional<mode_t> umask;  // the daemon's umask; unset: ours
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

// Marks every descriptor above stderr close-on-exec, for an exec of our own
// (`terway-lab exec`): the command gets stdin, stdout and stderr only.
void CloseOnExecAboveStderr();

// Start time of a running pid (0 when it does not exist).
long long ProcessStartTime(pid_t pid);

// Polls cond every interval until it holds or the deadline passes.
bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds deadline,
               std::chrono::milliseconds interval = std::chrono::milliseconds(100));

}  // namespace terway::lab
