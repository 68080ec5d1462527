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
#include <chrono>
#include <string>
#include <thread>
#include <vector>

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
    // Wait until it listens (bounded poll, not a fixed sleep).
    for (int i = 0; i < 200; ++i) {
      std::string out = Capture("ip netns exec " + netns + " ss -Hltn 'sport = :" + p + "' 2>/dev/null");
      if (out.find(":" + p) != std::string::npos) return Ok();
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return MakeError(ErrorCode::kUnavailable, "iperf3 server exited at start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return MakeError(ErrorCode::kTimeout, "iperf3 server did not listen within 5 s");
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  std::string netns_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One TCP sample from a client in `client_netns` to the server at
// server_ip:port. reverse: the server sends (iperf3 -R). Returns what the
// receiver got, in bits/s.
inline Result<double> IperfSample(const std::string& client_netns, const std::string& server_ip, int port,
                                  bool reverse, int seconds = 4) {
  // iperf3's server takes a moment to finish the previous test and answers
  // "busy" meanwhile; Debian's 3.12-1+deb12u2 also closes and reopens its
  // listening socket between tests, so a client that comes right after a
  // shaped test can find nobody listening ("Connection refused"). Both are
  // retried a bounded number of times.
  for (int attempt = 0;; ++attempt) {
  std::string cmd = "ip netns exec " + client_netns + " iperf3 -J -c " + server_ip + " -p " +
                    std::to_string(port) + " -t " + std::to_string(seconds) + " -O 1" + (reverse ? " -R" : "") +
                    " 2>&1";
  std::string out = Capture(cmd);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) return Errorf(ErrorCode::kInternal, "iperf3 output is not JSON: {}", out.substr(0, 300));
  if (j.contains("error")) {
    std::string e = j["error"].dump();
    const bool between_tests = e.find("busy") != std::string::npos || e.find("Connection refused") != std::string::npos;
    if (between_tests && attempt < 50) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    return Errorf(ErrorCode::kUnavailable, "iperf3: {}", e);
  }
  try {
    return j.at("end").at("sum_received").at("bits_per_second").get<double>();
  } catch (const nlohmann::json::exception& e) {
    return Errorf(ErrorCode::kInternal, "iperf3 output lacks end.sum_received: {}", e.what());
  }
  }
}

// Median of `n` samples.
inline Result<double> IperfMedian(const std::string& client_netns, const std::string& server_ip, int port,
                                  bool reverse, int n = 3) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    auto r = IperfSample(client_netns, server_ip, port, reverse);
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
inline Result<double> IperfShapedRate(const std::string& client_netns, const std::string& server_ip, int port,
                                      bool reverse, double limit_bps, int samples = 3, double tolerance = 0.10,
                                      int attempts = 3) {
  double best = 0;
  for (int i = 0; i < attempts; ++i) {
    auto r = IperfMedian(client_netns, server_ip, port, reverse, samples);
    if (!r.ok()) return r;
    if (*r >= limit_bps * (1 - tolerance)) return *r;
    best = std::max(best, *r);
  }
  return best;
}

}  // namespace terway::testing
