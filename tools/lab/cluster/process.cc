#include "tools/lab/cluster/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

namespace terway::lab {

namespace {

// Between fork and exec, only async-signal-safe calls: the child reports why
// it could not exec by writing errno (and which step) to a close-on-exec pipe
// that the parent reads; a successful exec closes the pipe with nothing in it.
struct ExecFailure {
  int step = 0;  // 1 netns, 2 exec, 3 log
  int err = 0;
};

[[noreturn]] void ExecChild(const std::vector<std::string>& argv, const std::string& netns,
                            int in_fd, int out_fd, int err_fd,
                            const std::map<std::string, std::string>& env, int report_fd,
                            bool new_session) {
  auto fail = [&](int step) {
    ExecFailure f{step, errno};
    ssize_t ignored = write(report_fd, &f, sizeof f);
    (void)ignored;
    _exit(127);
  };
  if (!netns.empty()) {
    std::string path = "/var/run/netns/" + netns;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) fail(1);
  }
  if (in_fd >= 0) dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  if (new_session) {
    setsid();
  } else {
    setpgid(0, 0);  // so a timeout can kill helpers the command spawned
  }
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
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
  int fd = mkstemp(tmpl);
  if (fd >= 0) unlink(tmpl);
  return fd;
}

}  // namespace

Result<CommandOutput> RunCommand(const CommandSpec& spec) {
  if (spec.argv.empty()) return Errorf(ErrorCode::kInvalidArgument, "no command to run");
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
  if (pid == 0) {
    close(in_pipe[1]);
    close(report[0]);
    ExecChild(spec.argv, spec.netns, in_pipe[0], out, err, spec.env, report[1], false);
  }
  close(in_pipe[0]);
  close(report[1]);
  // Large stdin is written while the child runs; SIGPIPE would kill us if it
  // exits without reading, so it is ignored for the write.
  auto old = signal(SIGPIPE, SIG_IGN);
  size_t off = 0;
  while (off < spec.stdin_data.size()) {
    ssize_t n = write(in_pipe[1], spec.stdin_data.data() + off, spec.stdin_data.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(in_pipe[1]);
  signal(SIGPIPE, old);
  Status started = ReadExecReport(report[0], spec.argv[0], spec.netns);
  CommandOutput res;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + spec.timeout;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      res.timed_out = true;
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
  int log = open(spec.log_path.empty() ? "/dev/null" : spec.log_path.c_str(),
                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return SysError("opening log " + spec.log_path);
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
  if (pid == 0) {
    close(report[0]);
    ExecChild(spec.argv, spec.netns, devnull, log, log, {}, report[1], true);
  }
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

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteTextFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return SysError("writing " + tmp);
    out << content;
    if (!out.flush()) return SysError("writing " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return SysError("renaming " + tmp + " to " + path);
  return Ok();
}

}  // namespace terway::lab
