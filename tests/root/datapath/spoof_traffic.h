// Real traffic for the anti-spoofing tests: a pod that forges its source with
// a raw socket (IP_HDRINCL: the kernel sends whatever source the header
// says, no address of the pod needed), and receivers that count datagrams by
// source with a UDP socket opened inside their namespace (a socket keeps the
// namespace it was created in). Everything stays inside the test's
// namespaces.
#pragma once

#include <arpa/inet.h>
#include <linux/ip.h>  // struct iphdr, as the eBPF tests' headers have it (netinet/ip.h's clashes)
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

// The UDP checksum over IPv6's pseudo-header (mandatory over IPv6: a
// receiving socket drops a datagram without it).
inline uint16_t Udp6Checksum(const in6_addr& src, const in6_addr& dst, const void* udp, size_t len) {
  uint32_t sum = 0;
  auto add = [&](const void* data, size_t n) {
    const auto* b = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i + 1 < n; i += 2) sum += (b[i] << 8) | b[i + 1];
    if (n % 2) sum += b[n - 1] << 8;
  };
  add(&src, 16);
  add(&dst, 16);
  sum += static_cast<uint32_t>(len);
  sum += IPPROTO_UDP;
  add(udp, len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = static_cast<uint16_t>(~sum);
  return htons(c == 0 ? 0xffff : c);
}

// The same over IPv6 (IPPROTO_RAW on AF_INET6 takes the whole header too),
// with a valid checksum: a datagram that passes the node's guard reaches a
// socket.
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
    p.udp.check = Udp6Checksum(p.ip.ip6_src, p.ip.ip6_dst, &p.udp, sizeof p.udp + sizeof p.payload);
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

  // family AF_INET6: an IPv6-only socket ([::]:port).
  Status Open(const std::string& netns, uint16_t port, int family = AF_INET) {
    return netlink::RunInNetns(netns, [&]() -> Status {
      fd_ = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return Errorf(ErrorCode::kKernel, "UDP socket in {}: {}", netns, strerror(errno));
      sockaddr_storage ss{};
      socklen_t len = sizeof(sockaddr_in);
      if (family == AF_INET6) {
        int one = 1;
        setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
      } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
      }
      if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        return Errorf(ErrorCode::kKernel, "binding UDP port {} in {}: {}", port, netns, strerror(errno));
      }
      return Ok();
    });
  }

  // Reads whatever is queued.
  void Drain() {
    char buf[256];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    while (recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len) >= 0) {
      char text[INET6_ADDRSTRLEN] = {};
      if (from.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&from)->sin6_addr, text, sizeof text);
      } else {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&from)->sin_addr, text, sizeof text);
      }
      ++by_source_[text];
      len = sizeof from;
    }
  }

  // Waits until `count` datagrams from `source` have arrived, or the
  // deadline passes; returns how many did.
  int WaitFor(Ipv4Addr source, int count, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    return WaitFor(source.ToString(), count, deadline);
  }
  // source as inet_ntop writes it ("2001:db8:1::10").
  int WaitFor(const std::string& source, int count, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
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

  int From(Ipv4Addr source) { return From(source.ToString()); }
  int From(const std::string& source) {
    Drain();
    auto it = by_source_.find(source);
    return it == by_source_.end() ? 0 : it->second;
  }

 private:
  int fd_ = -1;
  std::map<std::string, int> by_source_;
};

}  // namespace terway::testing
