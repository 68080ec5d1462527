// Small helpers shared by the benchmarks.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "e2e/harness/process.h"
#include "e2e/harness/world.h"
#include "netlink/netns.h"

namespace terway::bench {

// Nearest-rank percentile of the samples (p in [0, 1]); 0 when empty.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

// OpenAPI calls the emulated cloud has answered so far, by action.
inline std::map<std::string, int64_t> ApiCallsByAction(testing::VpcsimWorld* w) {
  std::map<std::string, int64_t> out;
  auto s = w->Admin("GET", "/admin/stats");
  if (!s.ok()) return out;
  // {"actions": {"AssignPrivateIpAddresses": {"calls": N, ...}, ...}} or a flat map.
  const auto& actions = s->contains("actions") ? (*s)["actions"] : *s;
  for (const auto& [name, v] : actions.items()) {
    if (v.is_object() && v.contains("calls")) out[name] = v["calls"].get<int64_t>();
  }
  return out;
}

using Clock = std::chrono::steady_clock;
using testing::Process;
using testing::RunCommand;
using testing::WaitFor;

inline nlohmann::json Summary(const std::vector<double>& v) {
  return {{"p50", Percentile(v, 0.5)}, {"p99", Percentile(v, 0.99)}, {"n", v.size()}};
}

// Named namespaces this run created; removed on every exit path.
class Namespaces {
 public:
  ~Namespaces() {
    for (const auto& n : names_) (void)netlink::DeleteNamedNetns(n);
  }
  Status Create(const std::string& name) {
    TERWAY_TRY(netlink::CreateNamedNetns(name));
    names_.push_back(name);
    // Loopback up: iperf3 and friends expect it.
    auto r = RunCommand({"/usr/sbin/ip", "link", "set", "lo", "up"}, name);
    if (r.exit_code != 0) return Errorf(ErrorCode::kInternal, "lo up in {}: {}", name, r.output);
    return Ok();
  }

 private:
  std::vector<std::string> names_;
};

// iperf3 from client_ns to server_ip (served in server_ns): bits/s received.
// reverse: the server sends (iperf3 -R); omit: seconds left out at the start
// (slow start, a full token bucket).
inline Result<double> Iperf(const std::string& server_ns, const std::string& client_ns, const std::string& server_ip,
                     int seconds, bool reverse = false, int omit = 0) {
  auto server = Process::Start({{"/usr/bin/iperf3", "-s", "-1", "-p", "5201"}, server_ns, "", {}});
  if (!server.ok()) return std::move(server).error();
  bool listening = WaitFor(
      [&] {
        auto r = RunCommand({"/usr/bin/ss", "-Hltn", "sport", "= :5201"}, server_ns, std::chrono::seconds(5));
        return r.output.find("5201") != std::string::npos;
      },
      std::chrono::seconds(10));
  if (!listening) return Errorf(ErrorCode::kInternal, "iperf3 server in {} never listened", server_ns);
  std::vector<std::string> argv = {"/usr/bin/iperf3", "-c", server_ip, "-p", "5201", "-t", std::to_string(seconds),
                                   "-J", "-O", std::to_string(omit)};
  if (reverse) argv.push_back("-R");
  auto r = RunCommand(argv, client_ns, std::chrono::seconds(seconds + omit + 30));
  if (r.exit_code != 0) return Errorf(ErrorCode::kInternal, "iperf3 {} -> {}: {}", client_ns, server_ip, r.output);
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (j.is_discarded()) return Errorf(ErrorCode::kInternal, "iperf3 output is not JSON: {}", r.output);
  try {
    return j.at("end").at("sum_received").at("bits_per_second").get<double>();
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInternal, "iperf3 JSON without end.sum_received: {}", e.what());
  }
}

// TCP connection rate (transactions of the kind a short RPC makes): connect,
// 1-byte request, 1-byte reply, close, one after another from one client
// thread in client_ns. The client closes with an RST (linger 0) so neither
// side piles up TIME_WAIT and the figure is not bounded by the port range.
inline Result<double> ConnectRate(const std::string& server_ns, const std::string& client_ns,
                           const std::string& server_ip, double seconds) {
  constexpr uint16_t kPort = 5301;
  int lfd = -1;
  TERWAY_TRY_CTX(netlink::RunInNetns(server_ns,
                                     [&]() -> Status {
                                       lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                                       int one = 1;
                                       setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                                       sockaddr_in a{};
                                       a.sin_family = AF_INET;
                                       a.sin_port = htons(kPort);
                                       if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
                                           listen(lfd, 1024) != 0) {
                                         int err = errno;
                                         if (lfd >= 0) close(lfd);
                                         lfd = -1;
                                         return Errorf(ErrorCode::kKernel, "listen: {}", strerror(err));
                                       }
                                       return Ok();
                                     }),
                 "connection-rate server in " + server_ns);
  std::atomic<bool> stop{false};
  std::thread server([&] {
    while (!stop) {
      pollfd p{lfd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      char b;
      if (read(c, &b, 1) == 1 && write(c, &b, 1) != 1) {
      }
      close(c);
    }
  });
  std::atomic<long> done{0};
  std::string failure;
  auto client = netlink::SpawnInNetns(client_ns, [&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    inet_pton(AF_INET, server_ip.c_str(), &a.sin_addr);
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      char b = 'x';
      bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && write(fd, &b, 1) == 1 &&
                read(fd, &b, 1) == 1;
      if (fd >= 0) {
        linger l{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
      }
      if (!ok) {
        failure = fmt::format("connection {} to {}: {}", done.load(), server_ip, strerror(errno));
        break;
      }
      done++;
    }
  });
  if (client.ok()) client->join();
  stop = true;
  server.join();
  close(lfd);
  if (!client.ok()) return std::move(client).error();
  if (!failure.empty()) return Errorf(ErrorCode::kInternal, "{}", failure);
  return static_cast<double>(done.load()) / seconds;
}

// Request/response rate over one persistent TCP connection (what netperf
// calls TCP_RR): the client sends one byte, waits for the one-byte answer,
// and again, for `seconds`. Transactions per second; latency-bound, so it
// shows what each hop of a path costs.
inline Result<double> RequestRate(const std::string& server_ns, const std::string& client_ns,
                                  const std::string& server_ip, double seconds) {
  constexpr uint16_t kPort = 5401;
  int lfd = -1;
  TERWAY_TRY_CTX(netlink::RunInNetns(server_ns,
                                     [&]() -> Status {
                                       lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                                       int one = 1;
                                       setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                                       sockaddr_in a{};
                                       a.sin_family = AF_INET;
                                       a.sin_port = htons(kPort);
                                       if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
                                           listen(lfd, 4) != 0) {
                                         int err = errno;
                                         if (lfd >= 0) close(lfd);
                                         lfd = -1;
                                         return Errorf(ErrorCode::kKernel, "listen: {}", strerror(err));
                                       }
                                       return Ok();
                                     }),
                 "request-rate server in " + server_ns);
  std::thread server([&] {
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return;
    int c = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b;
    while (read(c, &b, 1) == 1) {
      if (write(c, &b, 1) != 1) break;
    }
    close(c);
  });
  long done = 0;
  std::string failure;
  auto client = netlink::SpawnInNetns(client_ns, [&] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    inet_pton(AF_INET, server_ip.c_str(), &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      failure = fmt::format("connecting to {}: {}", server_ip, strerror(errno));
      if (fd >= 0) close(fd);
      return;
    }
    auto end = Clock::now() + std::chrono::duration<double>(seconds);
    char b = 'x';
    while (Clock::now() < end) {
      if (write(fd, &b, 1) != 1 || read(fd, &b, 1) != 1) {
        failure = fmt::format("transaction {} with {}: {}", done, server_ip, strerror(errno));
        break;
      }
      done++;
    }
    close(fd);  // the server's read ends
  });
  if (client.ok()) client->join();
  server.join();
  close(lfd);
  if (!client.ok()) return std::move(client).error();
  if (!failure.empty()) return Errorf(ErrorCode::kInternal, "{}", failure);
  return static_cast<double>(done) / seconds;
}

inline int64_t TotalApiCalls(testing::VpcsimWorld* w) {
  int64_t total = 0;
  for (const auto& [action, n] : ApiCallsByAction(w)) total += n;
  return total;
}

}  // namespace terway::bench
