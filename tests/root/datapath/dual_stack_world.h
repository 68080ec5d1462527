// IPv6 behind the SharedEniRoot world's vSwitch (shared_eni_root_fixture.h),
// for the dual-stack root tests of both datapaths:
//
//   pods ──veth── node (eth1 = ENI) ──── vsw0 vswitch netns vsw1 ──── host0 VPC host netns
//                                        2001:db8:1::fffd/64       2001:db8:2::1/64  2001:db8:2::10/64
//
// The vSwitch routes IPv6 between its two links and resolves pod IPv6s with
// neighbour solicitations on vsw0 (no permanent entries): only the node's
// proxy NDP makes a shared-ENI pod's address answer there. Real ICMPv6, TCP
// and UDP over IPv6: socat clients with bounded timeouts, in-process servers
// that answer with the peer's address, so the source is checked too.
#pragma once

#include <arpa/inet.h>
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

#include "common/result.h"
#include "netlink/netns.h"
#include "root/datapath/shared_eni_root_fixture.h"

namespace terway::datapath::shared_eni_world {

constexpr const char* kVpcHost6 = "2001:db8:2::10";

// The VPC host's namespace `host` (created here; the caller owns its
// removal) behind the vSwitch namespace `vsw`.
inline Status AddVpcHost6(const std::string& vsw, const std::string& host) {
  TERWAY_TRY(netlink::CreateNamedNetns(host));
  const std::string v = "ip -n " + vsw + " ", h = "ip -n " + host + " ";
  if (Sh(v + "link add vsw1 type veth peer name host0 netns " + host) != 0 ||
      Sh(v + "link set vsw1 up && " + v + "-6 addr add 2001:db8:2::1/64 dev vsw1 nodad") != 0 ||
      Sh(h + "link set lo up && " + h + "link set host0 up && " + h + "-6 addr add " + kVpcHost6 +
         "/64 dev host0 nodad && " + h + "-6 route add default via 2001:db8:2::1 dev host0") != 0) {
    return Errorf(ErrorCode::kKernel, "wiring the IPv6 VPC host {} behind {}", host, vsw);
  }
  return Ok();
}

// TCP [::]:80 and UDP [::]:81 in a namespace, each answering "ok <peer>\n".
class EchoServers6 {
 public:
  ~EchoServers6() {
    stop_ = true;
    if (t_.joinable()) t_.join();
  }
  Status Start(const std::string& netns) {
    auto bound = std::make_shared<std::promise<bool>>();
    auto ready = bound->get_future();
    TERWAY_ASSIGN_OR_RETURN(t_, netlink::SpawnInNetns(netns, [this, bound] { Serve(*bound); }));
    if (ready.wait_for(std::chrono::seconds(5)) != std::future_status::ready || !ready.get()) {
      return Errorf(ErrorCode::kKernel, "IPv6 echo servers in {} did not bind", netns);
    }
    return Ok();
  }

 private:
  static int Bound(int type, uint16_t port) {
    int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    if (type == SOCK_STREAM && listen(fd, 8) != 0) return -1;
    return fd;
  }
  static std::string Reply(const sockaddr_in6& peer) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
    return std::string("ok ") + text + "\n";
  }
  void Serve(std::promise<bool>& bound) {
    int tcp = Bound(SOCK_STREAM, 80), udp = Bound(SOCK_DGRAM, 81);
    bound.set_value(tcp >= 0 && udp >= 0);
    while (tcp >= 0 && udp >= 0 && !stop_) {
      pollfd p[2] = {{tcp, POLLIN, 0}, {udp, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      sockaddr_in6 peer{};
      socklen_t len = sizeof peer;
      if (p[0].revents & POLLIN) {
        int c = accept4(tcp, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (c >= 0) {
          std::string r = Reply(peer);
          (void)!write(c, r.data(), r.size());
          close(c);
        }
      }
      len = sizeof peer;
      char buf[512];
      if ((p[1].revents & POLLIN) && recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) >= 0) {
        std::string r = Reply(peer);
        (void)sendto(udp, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
      }
    }
    if (tcp >= 0) close(tcp);
    if (udp >= 0) close(udp);
  }
  std::atomic<bool> stop_{false};
  std::thread t_;
};

inline bool Ping6Once(const std::string& ns, const std::string& dst) {
  return Sh("ip netns exec " + ns + " ping -6 -n -q -c 1 -W 1 " + dst) == 0;
}
// Waits up to 8 s for a reply: the first packets also resolve neighbours,
// and a fresh link's link-local may still be tentative.
inline bool Ping6(const std::string& ns, const std::string& dst) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  do {
    if (Ping6Once(ns, dst)) return true;
  } while (std::chrono::steady_clock::now() < end);
  return false;
}
// What the server answered ("ok <source the server saw>\n"), "" when nothing
// came back within socat's 2 s timeouts.
inline std::string Tcp6(const std::string& ns, const std::string& dst) {
  return Capture("ip netns exec " + ns + " timeout 6 socat -t 2 -T 2 - TCP6:[" + dst +
                 "]:80,connect-timeout=2 </dev/null 2>/dev/null");
}
inline std::string Udp6(const std::string& ns, const std::string& dst) {
  return Capture("echo ping | ip netns exec " + ns + " timeout 6 socat -t 2 -T 2 - UDP6:[" + dst + "]:81 2>/dev/null");
}

}  // namespace terway::datapath::shared_eni_world
