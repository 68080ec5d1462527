// Servers and probes for NetworkPolicy tests, in-process: each runs on a
// thread inside a pod's network namespace (SpawnInNetns), so a matrix of
// hundreds of probes runs in parallel in about one probe timeout, and no
// helper process can outlive the test.
//
// A server answers "ok\n" to every TCP/SCTP connection and UDP datagram; a
// probe is allowed when that answer comes back (the request passed and so
// did the reply: stateful policy), denied when nothing arrives in time.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "common/ip.h"
#include "common/result.h"
#include "netlink/netns.h"

namespace terway::testing {

enum class L4 { kTcp, kUdp, kSctp };

inline const char* L4Name(L4 p) { return p == L4::kTcp ? "TCP" : p == L4::kUdp ? "UDP" : "SCTP"; }

inline int SocketFor(L4 p) {
  switch (p) {
    case L4::kTcp: return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    case L4::kUdp: return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    case L4::kSctp: return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP);
  }
  return -1;
}

// Whether this kernel can open SCTP sockets (the module may be absent).
inline bool KernelHasSctp() {
  int fd = SocketFor(L4::kSctp);
  if (fd < 0) return false;
  close(fd);
  return true;
}

inline sockaddr_in SockAddr(uint32_t ip_host_order, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(ip_host_order);
  return a;
}

// Servers on the given ports in one namespace until destroyed.
class PodServers {
 public:
  struct Listen {
    L4 proto;
    uint16_t port;
  };

  ~PodServers() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

  // Binds every listener before returning; an error names the one that failed.
  Status Start(const std::string& netns, const std::vector<Listen>& listens) {
    for (const auto& l : listens) {
      auto bound = std::make_shared<std::promise<Status>>();
      auto ready = bound->get_future();
      auto t = netlink::SpawnInNetns(netns, [this, l, bound] { Serve(l, bound.get()); });
      if (!t.ok()) return t.error();
      threads_.push_back(std::move(*t));
      if (ready.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
        return Errorf(ErrorCode::kTimeout, "{} server on {} in {} did not start", L4Name(l.proto), l.port, netns);
      }
      TERWAY_TRY_CTX(ready.get(), fmt::format("{} server on port {} in {}", L4Name(l.proto), l.port, netns));
    }
    return Ok();
  }

 private:
  void Serve(Listen l, std::promise<Status>* bound) {
    int fd = SocketFor(l.proto);
    int one = 1;
    sockaddr_in any = SockAddr(INADDR_ANY, l.port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
        (l.proto != L4::kUdp && listen(fd, 128) != 0)) {
      bound->set_value(SysError("binding"));
      if (fd >= 0) close(fd);
      return;
    }
    bound->set_value(Ok());
    while (!stop_) {
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      if (l.proto == L4::kUdp) {
        char buf[256];
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        if (recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) >= 0) {
          (void)sendto(fd, "ok\n", 3, 0, reinterpret_cast<sockaddr*>(&peer), len);
        }
      } else {
        int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        (void)send(c, "ok\n", 3, MSG_NOSIGNAL);
        close(c);
      }
    }
    close(fd);
  }

  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// One probe from inside `netns`: true when "ok" came back within timeout.
// src_port 0: an ephemeral port. A fixed one matters when a flow must be
// new: a reused ephemeral port can hit a live conntrack entry of an earlier,
// allowed probe and pass as "established" whatever the policy now says.
inline bool ProbeOnce(L4 proto, uint32_t ip_host_order, uint16_t port, std::chrono::milliseconds timeout,
                      uint16_t src_port = 0) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, ms.count()));
  };
  int fd = SocketFor(proto);
  if (fd < 0) return false;
  fcntl(fd, F_SETFL, O_NONBLOCK);
  if (src_port != 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in from = SockAddr(INADDR_ANY, src_port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      close(fd);
      return false;
    }
  }
  sockaddr_in to = SockAddr(ip_host_order, port);
  bool ok = false;
  if (proto == L4::kUdp) {
    if (sendto(fd, "hi\n", 3, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 3) {
      pollfd pfd{fd, POLLIN, 0};
      char buf[16];
      ok = poll(&pfd, 1, left()) == 1 && recv(fd, buf, sizeof buf, 0) == 3 && std::string(buf, 3) == "ok\n";
    }
  } else {
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (rc == 0 || errno == EINPROGRESS) {
      pollfd pfd{fd, POLLIN, 0};
      char buf[16];
      // Readable means the server's answer (or a reset, which reads -1).
      ok = poll(&pfd, 1, left()) == 1 && recv(fd, buf, sizeof buf, 0) == 3 && std::string(buf, 3) == "ok\n";
    }
  }
  close(fd);
  return ok;
}

// Runs probes in parallel, each from its namespace; results in order.
struct ProbeSpec {
  std::string netns;
  L4 proto;
  Ipv4Addr ip;
  uint16_t port;
  uint16_t src_port = 0;  // see ProbeOnce
};

inline std::vector<bool> ProbeAll(const std::vector<ProbeSpec>& specs, std::chrono::milliseconds timeout) {
  std::vector<std::atomic<int>> results(specs.size());
  std::vector<std::thread> threads;
  threads.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); i++) {
    results[i] = -1;
    auto t = netlink::SpawnInNetns(specs[i].netns, [&, i] {
      results[i] = ProbeOnce(specs[i].proto, specs[i].ip.value(), specs[i].port, timeout, specs[i].src_port) ? 1 : 0;
    });
    if (t.ok()) threads.push_back(std::move(*t));
  }
  for (auto& t : threads) t.join();
  std::vector<bool> out;
  for (auto& r : results) out.push_back(r.load() == 1);
  return out;
}

// One probe, as a plain bool. (ProbeAll(...)[0] in a lambda with a deduced
// return type would return std::vector<bool>'s proxy into a destroyed
// temporary: a dangling reference that reads as a random verdict.)
inline bool ProbeOne(const ProbeSpec& spec, std::chrono::milliseconds timeout) {
  return ProbeAll({spec}, timeout)[0];
}

}  // namespace terway::testing
