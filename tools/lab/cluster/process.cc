#include "tools/lab/cluster/process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "tools/lab/cluster/lab_files.h"

namespace terway::lab {

namespace {

// Between fork and exec only async-signal-safe calls: the control plane is
// multi-threaded, so everything the child needs (argv, envp, the namespace's
// path) is built before fork. The child reports why it could not exec by
// writing errno (and which step) to a close-on-exec pipe that the parent
// reads; a successful exec closes the pipe with nothing in it.
struct ExecFailure {
  int step = 0;  // 1 netns, 2 exec
  int err = 0;
};

struct ChildPlan {
  std::vector<std::string> argv;
  std::vector<std::string> envp;
  std::string netns_path;  // empty: stay in ours
  std::optional<mode_t> umask;
  bool new_session = false;
};

// Our environment with the additions applied (theirs win).
std::vector<std::string> MergedEnvironment(const std::map<std::string, std::string>& add) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; e++) {
    std::string kv = *e;
    if (!add.count(kv.substr(0, kv.find('=')))) out.push_back(std::move(kv));
  }
  for (const auto& [k, v] : add) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

[[noreturn]] void ExecChild(char* const* argv, char* const* envp, const ChildPlan& plan, int in_fd,
                            int out_fd, int err_fd, int report_fd) {
  auto fail = [&](int step) {
    ExecFailure f{step, errno};
    ssize_t ignored = write(report_fd, &f, sizeof f);
    (void)ignored;
    _exit(127);
  };
  if (!plan.netns_path.empty()) {
    int fd = open(plan.netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) fail(1);
  }
  if (in_fd >= 0) dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  CloseOnExecAboveStderr();
  if (plan.new_session) {
    setsid();
  } else {
    setpgid(0, 0);  // so a timeout can kill helpers the command spawned
  }
  if (plan.umask) ::umask(*plan.umask);
  // Signals the parent thread blocked (the control plane blocks SIGTERM and
  // SIGINT for its sigwait) must not stay blocked in the command.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);  // the child has one thread
  execve(argv[0], argv, envp);
  fail(2);
  _exit(127);  // fail() does not return; the compiler cannot see it
}

Status ReadExecReport(int report_fd, const std::string& what, const std::string& netns) {
  ExecFailure f;
  ssize_t n;
  do {
    n = read(report_fd, &f, sizeof f);
  } while (n < 0 && errno == EINTR);
  close(report_fd);
  if (n != static_cast<ssize_t>(sizeof f)) return Ok();
  if (f.step == 1) {
    return Errorf(ErrorCode::kNotFound, "cannot enter network namespace {} to run {}: {}", netns,
                  what, strerror(f.err));
  }
  return Errorf(ErrorCode::kNotFound, "cannot execute {}: {}", what, strerror(f.err));
}

std::string ReadAll(int fd) {
  std::string s;
  lseek(fd, 0, SEEK_SET);
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

int TempFile() {
  char tmpl[] = "/tmp/terway-lab-XXXXXX";
  int fd = mkostemp(tmpl, O_CLOEXEC);
  if (fd >= 0) unlink(tmpl);
  return fd;
}

// Writes all of data to a pipe without letting a reader that exited early
// raise SIGPIPE: the signal is blocked for this thread only (a process-wide
// SIG_IGN would race with other threads doing the same) and a pending one is
// consumed before the mask is restored.
void WriteToPipe(int fd, const std::string& data) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (!sigismember(&old, SIGPIPE)) {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

ChildPlan PlanChild(const std::vector<std::string>& argv, const std::string& netns,
                    const std::map<std::string, std::string>& env, std::optional<mode_t> umask,
                    bool new_session) {
  ChildPlan plan;
  plan.argv = argv;
  plan.envp = MergedEnvironment(env);
  if (!netns.empty()) plan.netns_path = "/var/run/netns/" + netns;
  plan.umask = umask;
  plan.new_session = new_session;
  return plan;
}

}  // namespace

Result<CommandOutput> RunCommand(const CommandSpec& spec) {
  if (spec.argv.empty()) return Errorf(ErrorCode::kInvalidArgument, "no command to run");
  ChildPlan plan = PlanChild(spec.argv, spec.netns, spec.env, spec.umask, false);
  std::vector<char*> argv = CStrings(plan.argv);
  std::vector<char*> envp = CStrings(plan.envp);
  // Output goes to unlinked temp files, not pipes: a chatty command can never
  // block on a full pipe while we wait for it.
  int out = TempFile();
  int err = TempFile();
  int in_pipe[2] = {-1, -1};
  int report[2] = {-1, -1};
  if (out < 0 || err < 0 || pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0) {
    Error e = SysError("preparing to run " + spec.argv[0]);
    for (int fd : {out, err, in_pipe[0], in_pipe[1], report[0], report[1]}) {
      if (fd >= 0) close(fd);
    }
    return e;
  }
  pid_t pid = fork();
  if (pid < 0) {
    Error e = SysError("fork");
    for (int fd : {out, err, in_pipe[0], in_pipe[1], report[0], report[1]}) close(fd);
    return e;
  }
  if (pid == 0) ExecChild(argv.data(), envp.data(), plan, in_pipe[0], out, err, report[1]);
  close(in_pipe[0]);
  close(report[1]);
  // Large stdin is written while the child runs.
  WriteToPipe(in_pipe[1], spec.stdin_data);
  close(in_pipe[1]);
  Status started = ReadExecReport(report[0], spec.argv[0], spec.netns);
  CommandOutput res;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    bool cancelled = spec.cancel && spec.cancel->load();
    if (cancelled || std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      res.timed_out = !cancelled;
      res.cancelled = cancelled;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  res.out = ReadAll(out);
  res.err = ReadAll(err);
  close(out);
  close(err);
  if (!started.ok()) return std::move(started).error();
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

Result<CommandOutput> RunCommand(std::vector<std::string> argv, std::string netns,
                                 std::chrono::milliseconds timeout) {
  CommandSpec spec;
  spec.argv = std::move(argv);
  spec.netns = std::move(netns);
  spec.timeout = timeout;
  return RunCommand(spec);
}

Result<DaemonId> StartDaemon(const DaemonSpec& spec) {
  if (spec.argv.empty()) return Errorf(ErrorCode::kInvalidArgument, "no daemon to start");
  ChildPlan plan = PlanChild(spec.argv, spec.netns, {}, spec.umask, true);
  std::vector<char*> argv = CStrings(plan.argv);
  std::vector<char*> envp = CStrings(plan.envp);
  TERWAY_ASSIGN_OR_RETURN(int log, OpenPrivateLog(spec.log_path.empty() ? "/dev/null" : spec.log_path));
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int report[2] = {-1, -1};
  if (devnull < 0 || pipe2(report, O_CLOEXEC) != 0) {
    Error e = SysError("preparing to start " + spec.argv[0]);
    close(log);
    if (devnull >= 0) close(devnull);
    return e;
  }
  pid_t pid = fork();
  if (pid < 0) {
    Error e = SysError("fork");
    for (int fd : {log, devnull, report[0], report[1]}) close(fd);
    return e;
  }
  if (pid == 0) ExecChild(argv.data(), envp.data(), plan, devnull, log, log, report[1]);
  close(log);
  close(devnull);
  close(report[1]);
  Status started = ReadExecReport(report[0], spec.argv[0], spec.netns);
  if (!started.ok()) {
    int st;
    waitpid(pid, &st, 0);
    return std::move(started).error();
  }
  DaemonId id{pid, ProcessStartTime(pid)};
  return id;
}

// Every descriptor above stderr becomes close-on-exec, so exec closes it
// (in ExecChild the report pipe stays usable until then). Async-signal-safe.
// close_range needs Linux 5.11; before that, each possible descriptor is
// flagged in turn.
void CloseOnExecAboveStderr() {
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  struct rlimit rl {};
  rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  if (max == RLIM_INFINITY || max > (1u << 20)) max = 1u << 20;
  for (int fd = 3; static_cast<rlim_t>(fd) < max; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

long long ProcessStartTime(pid_t pid) {
  std::string stat = ReadTextFile("/proc/" + std::to_string(pid) + "/stat");
  // The command name (field 2) may hold spaces and parentheses: fields are
  // counted from the last ')'.
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(close_paren + 2));
  std::string field;
  char state = 0;
  in >> state;
  if (state == 'Z' || state == 'X') return 0;  // exited, not yet reaped
  // Fields 4..21, then 22 (starttime).
  for (int i = 4; i <= 21 && in >> field; i++) {
  }
  long long start = 0;
  in >> start;
  return start;
}

bool DaemonAlive(const DaemonId& id) {
  if (id.pid <= 0) return false;
  // Reap it if it is our own child that exited (same invocation that started it).
  int st;
  waitpid(id.pid, &st, WNOHANG);
  long long start = ProcessStartTime(id.pid);
  return start != 0 && start == id.start_time;
}

Status StopDaemon(const DaemonId& id, std::chrono::milliseconds grace) {
  if (!DaemonAlive(id)) return Ok();
  kill(id.pid, SIGTERM);
  if (WaitUntil([&] { return !DaemonAlive(id); }, grace, std::chrono::milliseconds(20))) return Ok();
  // A process that ignores SIGTERM for the whole grace period is stuck; the
  // lab is disposable, so it is killed with whatever it started.
  kill(-id.pid, SIGKILL);
  kill(id.pid, SIGKILL);
  if (WaitUntil([&] { return !DaemonAlive(id); }, std::chrono::seconds(5),
                std::chrono::milliseconds(20))) {
    return Ok();
  }
  return Errorf(ErrorCode::kTimeout, "process {} survived SIGKILL for 5 s", id.pid);
}

bool WaitUntil(const std::function<bool()>& cond, std::chrono::milliseconds deadline,
               std::chrono::milliseconds interval) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(interval);
  }
}

}  // namespace terway::lab
