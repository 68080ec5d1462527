// Throughput measurement with iperf3 between namespaces the test created.
// Shared by the qos root test and the bandwidth e2e test. Rates, not times:
// each sample runs a few seconds (first second omitted: TCP slow start and a
// full token bucket), and callers take the median of several samples so one
// disturbed sample on a busy 2-core machine does not decide.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/result.h"
#include "test_util.h"

extern char** environ;

namespace terway::testing {

// An iperf3 server in a namespace; killed (and reaped) by the destructor.
class IperfServer {
 public:
  IperfServer() = default;
  IperfServer(const IperfServer&) = delete;
  IperfServer& operator=(const IperfServer&) = delete;
  ~IperfServer() { Stop(); }

  Status Start(const std::string& netns, int port) {
    netns_ = netns;
    port_ = port;
    std::string p = std::to_string(port);
    std::vector<std::string> args = {"ip", "netns", "exec", netns, "iperf3", "-s", "-p", p};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid_, "ip", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return SysError("starting iperf3 server", rc);
    return WaitReady(std::chrono::seconds(5));
  }

  // Until the server can take a test: it listens, and no test is still
  // open on its side (one is served at a time; a client that comes earlier
  // is told "busy"). Debian's iperf3 3.12-1+deb12u2 also closes and reopens
  // its listening socket between tests, so a client that comes right after
  // a test can find nobody listening ("Connection refused"). A condition
  // polled up to `timeout`, not a fixed pause.
  Status WaitReady(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) return MakeError(ErrorCode::kInternal, "iperf3 server not started");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string sockets;
    while (true) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Errorf(ErrorCode::kUnavailable, "iperf3 server in {} on port {} exited (wait status {})", netns_,
                      port_, status);
      }
      sockets = Capture("ip netns exec " + netns_ + " ss -Htan '( sport = :" + std::to_string(port_) + " )' 2>&1");
      if (ServerIdle(sockets)) return Ok();
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return Errorf(ErrorCode::kTimeout, "iperf3 server in {} on port {} not ready within {} ms; its sockets: {}",
                  netns_, port_, timeout.count(), sockets.empty() ? "none" : sockets);
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  const std::string& netns() const { return netns_; }
  int port() const { return port_; }

 private:
  // `ss -Htan` lines of the server's port: a listener, and no connection a
  // test still holds open (the first column is the state).
  static bool ServerIdle(const std::string& sockets) {
    bool listening = false;
    size_t at = 0;
    while (at < sockets.size()) {
      size_t end = sockets.find('\n', at);
      if (end == std::string::npos) end = sockets.size();
      const std::string line = sockets.substr(at, end - at);
      at = end + 1;
      const std::string state = line.substr(0, line.find(' '));
      if (state == "LISTEN") listening = true;
      if (state == "ESTAB" || state == "SYN-RECV" || state == "CLOSE-WAIT") return false;
    }
    return listening;
  }

  std::string netns_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// How many times one sample runs iperf3 before its failure counts.
inline constexpr int kIperfTries = 3;

// One iperf3 client run's outcome: the receiver's rate, or iperf3's own
// error text (its JSON "error", else what it printed) with why it failed.
inline Result<double> IperfRunOnce(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return SysError("running iperf3", errno);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  const int exit_code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    return Errorf(ErrorCode::kUnavailable, "iperf3 (exit {}): {}", exit_code,
                  j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump());
  }
  if (j.is_discarded()) {
    return Errorf(ErrorCode::kUnavailable, "iperf3 (exit {}) printed no JSON: {}", exit_code, out.substr(0, 300));
  }
  if (exit_code != 0) {
    return Errorf(ErrorCode::kUnavailable, "iperf3 exited {} without an error field: {}", exit_code,
                  out.substr(0, 300));
  }
  const auto* rate = j.contains("end") && j["end"].contains("sum_received")
                         ? &j["end"]["sum_received"]
                         : nullptr;
  if (!rate || !rate->contains("bits_per_second") || !(*rate)["bits_per_second"].is_number()) {
    return MakeError(ErrorCode::kUnavailable, "iperf3's report has no end summary (end.sum_received.bits_per_second)");
  }
  return (*rate)["bits_per_second"].get<double>();
}

// One TCP sample from a client in `client_netns` to `server` (reached at
// server_ip). reverse: the server sends (iperf3 -R). Returns what the
// receiver got, in bits/s. A run that fails (exit status, an "error" in its
// JSON, no end summary) is said with iperf3's own words and run again, up to
// kIperfTries in all, each after the server is ready again; the last
// failure is the result when none succeeds.
inline Result<double> IperfSample(const std::string& client_netns, const std::string& server_ip,
                                  IperfServer& server, bool reverse, int seconds = 4) {
  const std::string cmd = "ip netns exec " + client_netns + " iperf3 -J -c " + server_ip + " -p " +
                          std::to_string(server.port()) + " -t " + std::to_string(seconds) + " -O 1" +
                          (reverse ? " -R" : "") + " 2>&1";
  Status last = Ok();
  for (int attempt = 1; attempt <= kIperfTries; ++attempt) {
    TERWAY_TRY_CTX(server.WaitReady(std::chrono::seconds(10)),
                   fmt::format("iperf3 to {} from {}, try {}/{}", server_ip, client_netns, attempt, kIperfTries));
    Result<double> r = IperfRunOnce(cmd);
    if (r.ok()) return r;
    last = std::move(r).error();
    std::fprintf(stderr, "[ iperf3   ] %s -> %s%s: try %d/%d failed: %s\n", client_netns.c_str(), server_ip.c_str(),
                 reverse ? " (reverse)" : "", attempt, kIperfTries, last.error().ToString().c_str());
  }
  return std::move(last).error().Wrap(
      fmt::format("iperf3 from {} to {}:{} failed {} times in a row", client_netns, server_ip, server.port(),
                  kIperfTries));
}

// Median of `n` samples.
inline Result<double> IperfMedian(const std::string& client_netns, const std::string& server_ip,
                                  IperfServer& server, bool reverse, int n = 3) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    auto r = IperfSample(client_netns, server_ip, server, reverse);
    if (!r.ok()) return r;
    v.push_back(*r);
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The rate of a shaped path, judged against its limit: a measurement above
// limit * (1 + tolerance) is a limit not enforced and decides at once. One
// below limit * (1 - tolerance) may be a sender starved on a loaded machine
// rather than the shaping, so such a measurement is taken again, up to
// `attempts` in all. Returns the deciding measurement: the first within the
// band or above it, else the highest of the attempts.
inline Result<double> IperfShapedRate(const std::string& client_netns, const std::string& server_ip,
                                      IperfServer& server, bool reverse, double limit_bps, int samples = 3,
                                      double tolerance = 0.10, int attempts = 3) {
  double best = 0;
  for (int i = 0; i < attempts; ++i) {
    auto r = IperfMedian(client_netns, server_ip, server, reverse, samples);
    if (!r.ok()) return r;
    if (*r >= limit_bps * (1 - tolerance)) return *r;
    best = std::max(best, *r);
  }
  return best;
}

}  // namespace terway::testing
