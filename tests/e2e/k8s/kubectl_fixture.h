// The kubectl harness of the e2e tests: the lab's API stand-in in-process on
// 127.0.0.1:0, a generated kubeconfig, and kubectl run as a child process
// that is killed and reaped also when a test fails halfway.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/types.h"
#include "tools/lab/apiserver/server.h"

namespace terway::lab {

using namespace std::chrono_literals;
using Json = nlohmann::json;

inline std::string FindKubectl() {
  if (const char* env = std::getenv("KUBECTL")) return env;
  for (const char* p : {"/usr/bin/kubectl", "/usr/local/bin/kubectl"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kubectl-e2e-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ + "/" + name) << content;
    return path_ + "/" + name;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process with stdout+stderr on a pipe; killed and reaped when the
// guard goes away, also when a test fails halfway.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      std::vector<char*> args, envp;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Reads what is available within `wait`; false at end of output.
  bool ReadSome(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    out_.append(buf, static_cast<size_t>(n));
    return true;
  }
  // Waits for exit (killing it at the deadline); returns the exit code.
  int Wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && ReadSome(50ms)) {
    }
    if (std::chrono::steady_clock::now() >= deadline) kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    reaped_ = true;
    while (ReadSome(0ms)) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool WaitForOutput(const std::string& needle, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      if (!ReadSome(50ms)) break;
    }
    return out_.find(needle) != std::string::npos;
  }
  const std::string& output() const { return out_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool reaped_ = false;
  std::string out_;
};

struct KubectlRun {
  int code;
  std::string out;
};

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubectl_ = FindKubectl();
    if (kubectl_.empty()) GTEST_SKIP() << "kubectl not installed (looked in $KUBECTL, /usr/bin, /usr/local/bin)";
    server_ = std::make_unique<ApiServer>(NewDefaultStore());
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = dir_.path() + "/kubeconfig";
    ASSERT_TRUE(server_->WriteKubeconfig(kubeconfig_).ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::vector<std::string> Argv(std::vector<std::string> args) {
    std::vector<std::string> argv = {kubectl_, "--kubeconfig", kubeconfig_, "--cache-dir", dir_.path() + "/cache",
                                     "--request-timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<std::string> Env() { return {"HOME=" + dir_.path(), "PATH=/usr/bin:/bin"}; }
  KubectlRun Kubectl(std::vector<std::string> args) {
    Child c(Argv(args), Env());
    int code = c.Wait(60s);
    return {code, c.output()};
  }
  Json Object(const std::string& plural, const std::string& ns, const std::string& name) {
    const ResourceType* t = server_->store().Find(plural == "networkpolicies" ? "networking.k8s.io" : "", "v1", plural);
    auto o = server_->store().Get(*t, ns, name);
    return o.ok() ? *o : Json();
  }

  TempDir dir_;
  std::string kubectl_;
  std::string kubeconfig_;
  std::unique_ptr<ApiServer> server_;
};

}  // namespace terway::lab
