// Real traffic for the anti-spoofing tests: a pod that forges its source with
// a raw socket (IP_HDRINCL: the kernel sends whatever source the header
// says, no address of the pod needed), and receivers that count datagrams by
// source with a UDP socket opened inside their namespace (a socket keeps the
// namespace it was created in). Everything stays inside the test's
// namespaces.
#pragma once

#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>

#include "common/ip.h"
#include "common/result.h"
#include "netlink/netns.h"

namespace terway::testing {

// Sends `count` UDP datagrams from `src` (whatever the pod's address is) to
// dst:port, from inside `netns`. Checksum 0: "none" for UDP over IPv4.
inline Status SendForgedUdp(const std::string& netns, Ipv4Addr src, Ipv4Addr dst, uint16_t port, int count) {
  return netlink::RunInNetns(netns, [&]() -> Status {
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);  // IPPROTO_RAW implies IP_HDRINCL
    if (fd < 0) return Errorf(ErrorCode::kKernel, "raw socket in {}: {}", netns, strerror(errno));
    struct Packet {
      iphdr ip;
      udphdr udp;
      char payload[8];
    } p{};
    p.ip.version = 4;
    p.ip.ihl = 5;
    p.ip.ttl = 64;
    p.ip.protocol = IPPROTO_UDP;
    p.ip.tot_len = htons(sizeof p);
    p.ip.saddr = src.network_order();
    p.ip.daddr = dst.network_order();
    p.udp.source = htons(40000);
    p.udp.dest = htons(port);
    p.udp.len = htons(sizeof p.udp + sizeof p.payload);
    memcpy(p.payload, "terway!", 8);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = dst.network_order();
    for (int i = 0; i < count; ++i) {
      if (sendto(fd, &p, sizeof p, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != static_cast<ssize_t>(sizeof p)) {
        int e = errno;
        close(fd);
        return Errorf(ErrorCode::kKernel, "sending from {} to {} in {}: {}", src.ToString(), dst.ToString(), netns,
                      strerror(e));
      }
    }
    close(fd);
    return Ok();
  });
}

// The same over IPv6 (IPPROTO_RAW on AF_INET6 takes the whole header too).
// The UDP checksum is mandatory over IPv6, but the receiver is the node's
// guard, which drops before anyone checks it.
inline Status SendForgedUdp6(const std::string& netns, const std::string& src, const std::string& dst, uint16_t port,
                             int count) {
  return netlink::RunInNetns(netns, [&]() -> Status {
    int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);
    if (fd < 0) return Errorf(ErrorCode::kKernel, "raw IPv6 socket in {}: {}", netns, strerror(errno));
    struct Packet {
      ip6_hdr ip;
      udphdr udp;
      char payload[8];
    } p{};
    p.ip.ip6_flow = htonl(6u << 28);
    p.ip.ip6_plen = htons(sizeof p.udp + sizeof p.payload);
    p.ip.ip6_nxt = IPPROTO_UDP;
    p.ip.ip6_hlim = 64;
    inet_pton(AF_INET6, src.c_str(), &p.ip.ip6_src);
    inet_pton(AF_INET6, dst.c_str(), &p.ip.ip6_dst);
    p.udp.source = htons(40000);
    p.udp.dest = htons(port);
    p.udp.len = p.ip.ip6_plen;
    memcpy(p.payload, "terway!", 8);
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_addr = p.ip.ip6_dst;
    for (int i = 0; i < count; ++i) {
      if (sendto(fd, &p, sizeof p, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != static_cast<ssize_t>(sizeof p)) {
        int e = errno;
        close(fd);
        return Errorf(ErrorCode::kKernel, "sending IPv6 from {} to {} in {}: {}", src, dst, netns, strerror(e));
      }
    }
    close(fd);
    return Ok();
  });
}

// A UDP socket bound to port in `netns` that counts what arrives by source.
class UdpReceiver {
 public:
  UdpReceiver() = default;
  UdpReceiver(const UdpReceiver&) = delete;
  UdpReceiver& operator=(const UdpReceiver&) = delete;
  ~UdpReceiver() {
    if (fd_ >= 0) close(fd_);
  }

  Status Open(const std::string& netns, uint16_t port) {
    return netlink::RunInNetns(netns, [&]() -> Status {
      fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return Errorf(ErrorCode::kKernel, "UDP socket in {}: {}", netns, strerror(errno));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port);
      if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return Errorf(ErrorCode::kKernel, "binding UDP port {} in {}: {}", port, netns, strerror(errno));
      }
      return Ok();
    });
  }

  // Reads whatever is queued.
  void Drain() {
    char buf[256];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    while (recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len) >= 0) {
      ++by_source_[Ipv4Addr(ntohl(from.sin_addr.s_addr)).ToString()];
      len = sizeof from;
    }
  }

  // Waits until `count` datagrams from `source` have arrived, or the
  // deadline passes; returns how many did.
  int WaitFor(Ipv4Addr source, int count, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      Drain();
      int have = From(source);
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (have >= count || left.count() <= 0) return have;
      pollfd p{fd_, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left.count()));
    }
  }

  int From(Ipv4Addr source) {
    Drain();
    auto it = by_source_.find(source.ToString());
    return it == by_source_.end() ? 0 : it->second;
  }

 private:
  int fd_ = -1;
  std::map<std::string, int> by_source_;
};

}  // namespace terway::testing
