#include "e2e/harness/process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace terway::testing {

namespace {

// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(const std::vector<std::string>& argv, const std::string& netns,
                            int out_fd, int in_fd, const std::map<std::string, std::string>& env) {
  if (!netns.empty()) {
    std::string path = "/var/run/netns/" + netns;
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(126);
  }
  if (in_fd >= 0) dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  // A fresh process group so Stop() can signal helpers it spawned too.
  setpgid(0, 0);
  // And gone with the test or benchmark that started it, even when that is
  // killed outright (no destructor runs then): a daemon left behind would
  // hold its namespaces and ports.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

}  // namespace

Result<Process> Process::Start(ProcessOptions opts) {
  if (opts.argv.empty()) return Errorf(ErrorCode::kInvalidArgument, "no command");
  std::string log = opts.log_path.empty() ? "/dev/null" : opts.log_path;
  int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return SysError("opening log " + log);
  pid_t pid = fork();
  if (pid < 0) {
    close(out);
    return SysError("fork");
  }
  if (pid == 0) ExecChild(opts.argv, opts.netns, out, -1, opts.env);
  close(out);
  Process p;
  p.opts_ = std::move(opts);
  p.pid_ = pid;
  return p;
}

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    Stop();
    opts_ = std::move(o.opts_);
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int Process::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);  // anything it left in its group
  pid_ = -1;
  return status;
}

void Process::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string Process::Log() const { return opts_.log_path.empty() ? "" : ReadFile(opts_.log_path); }

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& netns,
                         std::chrono::milliseconds timeout, const std::string& stdin_data) {
  CommandResult res;
  char out_tmpl[] = "/tmp/terway-cmd-XXXXXX";
  int out = mkstemp(out_tmpl);
  if (out < 0) return res;
  unlink(out_tmpl);
  int in_pipe[2] = {-1, -1};
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    close(out);
    return res;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(in_pipe[1]);
    ExecChild(argv, netns, out, in_pipe[0], {});
  }
  close(in_pipe[0]);
  if (!stdin_data.empty()) {
    ssize_t ignored = write(in_pipe[1], stdin_data.data(), stdin_data.size());
    (void)ignored;
  }
  close(in_pipe[1]);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      res.output = "(timed out)\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  lseek(out, 0, SEEK_SET);
  char buf[4096];
  ssize_t n;
  while ((n = read(out, buf, sizeof(buf))) > 0) res.output.append(buf, static_cast<size_t>(n));
  close(out);
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds deadline,
             std::chrono::milliseconds interval) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return SysError("writing " + path);
  out << content;
  return out ? Ok() : SysError("writing " + path);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/terway-test-XXXXXX";
  const char* p = mkdtemp(tmpl);
  path_ = p ? p : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
}

}  // namespace terway::testing
