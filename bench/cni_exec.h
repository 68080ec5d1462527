// A CNI plugin exec'd as a container runtime execs it, timed: what the
// CNI/datapath benchmark (bench/cni_datapath_bench.cc) measures ADD and DEL
// with, for terway and the reference plugins alike.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "test_util.h"

namespace terway::bench {

struct CniCall {
  double ms = 0;
  testing::CommandResult result;
};

// One plugin exec as a runtime makes it: fork, exec with the CNI
// environment, config on stdin, result read from stdout until EOF, blocking
// wait. The child enters the node's namespace first (the runtime lives
// there); the namespace is opened before the clock starts.
inline CniCall ExecPlugin(const std::string& plugin, const std::string& cni_path, const std::string& command,
                          const std::string& container_id, const std::string& pod_netns, const std::string& pod_name,
                          const std::string& node_netns, const std::string& conf) {
  CniCall c;
  int node_fd = open(("/var/run/netns/" + node_netns).c_str(), O_RDONLY | O_CLOEXEC);
  int in[2], out[2];
  if (node_fd < 0 || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    c.result.output = fmt::format("bench: cannot prepare the exec of {}: {}", plugin, strerror(errno));
    if (node_fd >= 0) close(node_fd);
    return c;
  }
  std::vector<std::string> env = {"CNI_COMMAND=" + command,
                                  "CNI_CONTAINERID=" + container_id,
                                  "CNI_NETNS=/var/run/netns/" + pod_netns,
                                  "CNI_IFNAME=eth0",
                                  "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=" + pod_name,
                                  "CNI_PATH=" + cni_path,
                                  "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string path = plugin;
  char* argv[] = {path.data(), nullptr};
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    if (setns(node_fd, CLONE_NEWNET) != 0) _exit(126);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  ssize_t ignored = write(in[1], conf.data(), conf.size());
  (void)ignored;
  close(in[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) c.result.output.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  c.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  close(node_fd);
  c.result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return c;
}

inline Result<std::string> FirstIp(const std::string& add_output) {
  auto j = nlohmann::json::parse(add_output, nullptr, false);
  if (j.is_discarded() || !j.contains("ips") || j["ips"].empty())
    return Errorf(ErrorCode::kInternal, "no IP in the ADD result: {}", add_output);
  std::string addr = j["ips"][0]["address"];
  return addr.substr(0, addr.find('/'));
}


}  // namespace terway::bench
