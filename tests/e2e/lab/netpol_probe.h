// Servers and probes for NetworkPolicy tests, in-process: each runs on a
// thread inside a pod's network namespace (SpawnInNetns), so a matrix of
// hundreds of probes runs in parallel in about one probe timeout, and no
// helper process can outlive the test.
//
// A server answers "ok\n" to every TCP/SCTP connection and UDP datagram; a
// probe is allowed when that answer comes back (the request passed and so
// did the reply: stateful policy), denied when nothing arrives in time.
// ICMP probes are echo or timestamp queries from a raw socket, which the
// destination's kernel answers. IPv6 too: servers that listen on IPv6
// (Listen::ipv6), probes to an IPv6 address (ProbeSpec::ip6, Probe6), ICMPv6
// echo (128). Every probe is a new flow for conntrack: a
// source port (ICMP identifier) not used before in this process, unless the
// caller pins one.
#pragma once

#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/ip.h"
#include "common/result.h"
#include "netlink/netns.h"

namespace terway::testing {

// kIcmp: a query (echo or timestamp) the destination's kernel answers; no
// server needed.
enum class L4 { kTcp, kUdp, kSctp, kIcmp };

inline const char* L4Name(L4 p) {
  switch (p) {
    case L4::kTcp: return "TCP";
    case L4::kUdp: return "UDP";
    case L4::kSctp: return "SCTP";
    case L4::kIcmp: return "ICMP";
  }
  return "?";
}

// A socket for a server or a TCP/UDP/SCTP probe (ICMP probes open their
// own), IPv4 or IPv6.
inline int SocketFor(L4 p, bool ipv6 = false) {
  const int family = ipv6 ? AF_INET6 : AF_INET;
  switch (p) {
    case L4::kTcp: return socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    case L4::kUdp: return socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    case L4::kSctp: return socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_SCTP);
    case L4::kIcmp: break;
  }
  errno = EPROTONOSUPPORT;
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

inline sockaddr_in6 SockAddr6(const Ipv6Addr& ip, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  std::memcpy(a.sin6_addr.s6_addr, ip.bytes().data(), 16);
  return a;
}

// An IPv4 or IPv6 socket address, as bind/connect/sendto take it.
struct AnySockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }

  static AnySockAddr V4(uint32_t ip_host_order, uint16_t port) {
    AnySockAddr out;
    sockaddr_in a = SockAddr(ip_host_order, port);
    std::memcpy(&out.storage, &a, sizeof a);
    out.len = sizeof a;
    return out;
  }
  static AnySockAddr V6(const Ipv6Addr& ip, uint16_t port) {
    AnySockAddr out;
    sockaddr_in6 a = SockAddr6(ip, port);
    std::memcpy(&out.storage, &a, sizeof a);
    out.len = sizeof a;
    return out;
  }
};

// Servers on the given ports in one namespace until destroyed.
class PodServers {
 public:
  struct Listen {
    L4 proto;
    uint16_t port;
    // An IPv6-only socket on [::] (beside an IPv4 one on the same port).
    bool ipv6 = false;
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
        return Errorf(ErrorCode::kTimeout, "{} server on {}{} in {} did not start", L4Name(l.proto), l.port,
                      l.ipv6 ? " (IPv6)" : "", netns);
      }
      TERWAY_TRY_CTX(ready.get(), fmt::format("{} server on port {}{} in {}", L4Name(l.proto), l.port,
                                              l.ipv6 ? " (IPv6)" : "", netns));
    }
    return Ok();
  }

 private:
  void Serve(Listen l, std::promise<Status>* bound) {
    int fd = SocketFor(l.proto, l.ipv6);
    int one = 1;
    AnySockAddr any = l.ipv6 ? AnySockAddr::V6(Ipv6Addr(), l.port) : AnySockAddr::V4(INADDR_ANY, l.port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (l.ipv6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
        bind(fd, any.get(), any.len) != 0 ||
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
        sockaddr_storage peer{};
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

// --- Fresh flows. The node's conntrack remembers a flow after it ends (a
// UDP exchange 30 s, an ICMP query 30 s, TCP in TIME_WAIT 120 s), and an
// entry of an earlier, allowed probe answers a later probe of the same tuple
// as "established" whatever the policy now says. So every probe takes a
// source port (an ICMP identifier) not handed out before in this process:
// from the kernel's default ephemeral range unless the caller pins one.
// Callers that pin ports pick them below 32768, so pinned and fresh ports
// never collide.
inline constexpr uint16_t kFreshPortFirst = 32768;
inline constexpr uint16_t kFreshPortLast = 60999;

// A port of [first, last] not handed out before in this process; when the
// range is used up it starts over. 28,232 fresh ports last over 45 s at the
// fastest matrix rounds (~600 probes/s), past the 30 s of a UDP exchange's
// entry; a TCP SYN that meets its tuple in TIME_WAIT is a new flow anyway.
inline uint16_t FreshPortIn(uint16_t first, uint16_t last) {
  static std::mutex mu;
  static std::vector<bool> used(65536, false);
  static std::map<std::pair<uint16_t, uint16_t>, uint32_t> cursor;
  std::lock_guard<std::mutex> lock(mu);
  const uint32_t span = uint32_t{last} - first + 1;
  uint32_t& at = cursor[{first, last}];
  for (int pass = 0; pass < 2; pass++) {
    for (uint32_t i = 0; i < span; i++) {
      const auto port = static_cast<uint16_t>(first + (at + i) % span);
      if (!used[port]) {
        used[port] = true;
        at = (at + i + 1) % span;
        return port;
      }
    }
    for (uint32_t p = first; p <= last; p++) used[p] = false;  // used up: start over
  }
  return first;  // not reached: the second pass finds a port
}

inline uint16_t FreshSourcePort() { return FreshPortIn(kFreshPortFirst, kFreshPortLast); }

// ICMP echo and timestamp flows are keyed by their identifier.
inline uint16_t FreshIcmpId() {
  static std::atomic<uint32_t> next{static_cast<uint32_t>(getpid()) * 7919u};
  return static_cast<uint16_t>(next.fetch_add(1));
}

// The reply Linux sends to an ICMP query of this type: echo (8) -> echo
// reply (0), timestamp (13) -> timestamp reply (14); ICMPv6 echo (128) ->
// echo reply (129), the one ICMPv6 query it answers. Other types get none,
// so they cannot tell allowed from denied; -1.
inline int IcmpReplyType(uint8_t type, bool ipv6 = false) {
  if (ipv6) return type == ICMP6_ECHO_REQUEST ? ICMP6_ECHO_REPLY : -1;
  return type == 8 ? 0 : type == 13 ? 14 : -1;
}

// What a probe sends, from where, to where.
struct ProbeSpec {
  std::string netns;
  L4 proto;
  Ipv4Addr ip;
  uint16_t port = 0;      // TCP/UDP/SCTP destination port
  uint16_t src_port = 0;  // 0: a fresh one (see FreshSourcePort)
  uint8_t icmp_type = 8;  // ICMP: 8 (echo) or 13 (timestamp), the queries Linux answers; ICMPv6: 128
  uint8_t icmp_code = 0;  // Linux answers an echo of any code, with that code
  // Set: the probe goes over IPv6 to this address (`ip` is not used).
  std::optional<Ipv6Addr> ip6 = std::nullopt;

  std::string Destination() const { return ip6 ? "[" + ip6->ToString() + "]" : ip.ToString(); }
};

// A probe to an IPv6 address; ICMP means ICMPv6 echo.
inline ProbeSpec Probe6(const std::string& netns, L4 proto, const Ipv6Addr& ip, uint16_t port = 0) {
  ProbeSpec s{netns, proto, Ipv4Addr(), port};
  s.ip6 = ip;
  if (proto == L4::kIcmp) s.icmp_type = ICMP6_ECHO_REQUEST;
  return s;
}

// allowed: the answer came back in time. error: the probe could not be made
// (a socket or bind failed), which is neither allowed nor denied.
struct ProbeResult {
  bool allowed = false;
  std::string error;
  uint16_t src_port = 0;  // the source port (ICMP: identifier) it used
};

namespace probe_detail {

inline uint16_t InetChecksum(const unsigned char* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len % 2) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline int MsLeft(std::chrono::steady_clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, ms.count()));
}

// An ICMP query from a raw socket; allowed when its reply (same identifier,
// from the target) arrives. A raw socket sees every ICMP packet of the
// namespace, so parallel probes each pick out their own reply.
inline ProbeResult ProbeIcmp(const ProbeSpec& s, std::chrono::steady_clock::time_point deadline) {
  ProbeResult out;
  const int reply_type = IcmpReplyType(s.icmp_type);
  if (reply_type < 0) {
    out.error =
        fmt::format("ICMP type {} gets no reply from Linux; probe with 8 (echo) or 13 (timestamp)", s.icmp_type);
    return out;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (fd < 0) {
    out.error = fmt::format("raw ICMP socket: {}", strerror(errno));
    return out;
  }
  const uint16_t id = FreshIcmpId();
  out.src_port = id;
  // Header (type, code, checksum, identifier, sequence) and 12 bytes: the
  // three timestamps of a timestamp request, any payload for an echo.
  unsigned char pkt[20] = {};
  pkt[0] = s.icmp_type;
  pkt[1] = s.icmp_code;
  pkt[4] = static_cast<unsigned char>(id >> 8);
  pkt[5] = static_cast<unsigned char>(id & 0xff);
  pkt[7] = 1;
  const uint16_t sum = InetChecksum(pkt, sizeof pkt);
  pkt[2] = static_cast<unsigned char>(sum >> 8);
  pkt[3] = static_cast<unsigned char>(sum & 0xff);
  sockaddr_in to = SockAddr(s.ip.value(), 0);
  if (sendto(fd, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != static_cast<ssize_t>(sizeof pkt)) {
    out.error = fmt::format("sending ICMP type {} to {}: {}", s.icmp_type, s.ip.ToString(), strerror(errno));
    close(fd);
    return out;
  }
  while (!out.allowed) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, MsLeft(deadline)) != 1) break;
    unsigned char buf[1500];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 20) continue;
    const size_t ihl = static_cast<size_t>(buf[0] & 0x0f) * 4;
    if (static_cast<size_t>(n) < ihl + 8) continue;
    uint32_t from = static_cast<uint32_t>(buf[12]) << 24 | static_cast<uint32_t>(buf[13]) << 16 |
                    static_cast<uint32_t>(buf[14]) << 8 | buf[15];
    const unsigned char* icmp = buf + ihl;
    out.allowed = from == s.ip.value() && icmp[0] == reply_type && (icmp[4] << 8 | icmp[5]) == id;
  }
  close(fd);
  return out;
}

// An ICMPv6 echo from a raw socket (the kernel fills in the checksum over
// the pseudo-header); allowed when the echo reply with our identifier comes
// back from the target. The socket's filter passes echo replies only, so
// the namespace's neighbour discovery is not read.
inline ProbeResult ProbeIcmp6(const ProbeSpec& s, std::chrono::steady_clock::time_point deadline) {
  ProbeResult out;
  const int reply_type = IcmpReplyType(s.icmp_type, /*ipv6=*/true);
  if (reply_type < 0) {
    out.error = fmt::format("ICMPv6 type {} gets no reply from Linux; probe with 128 (echo)", s.icmp_type);
    return out;
  }
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6);
  if (fd < 0) {
    out.error = fmt::format("raw ICMPv6 socket: {}", strerror(errno));
    return out;
  }
  icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  ICMP6_FILTER_SETPASS(reply_type, &filter);
  setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter);
  const uint16_t id = FreshIcmpId();
  out.src_port = id;
  unsigned char pkt[20] = {};  // type, code, checksum (the kernel's), identifier, sequence, payload
  pkt[0] = s.icmp_type;
  pkt[1] = s.icmp_code;
  pkt[4] = static_cast<unsigned char>(id >> 8);
  pkt[5] = static_cast<unsigned char>(id & 0xff);
  pkt[7] = 1;
  AnySockAddr to = AnySockAddr::V6(*s.ip6, 0);
  if (sendto(fd, pkt, sizeof pkt, 0, to.get(), to.len) != static_cast<ssize_t>(sizeof pkt)) {
    out.error = fmt::format("sending ICMPv6 type {} to {}: {}", s.icmp_type, s.ip6->ToString(), strerror(errno));
    close(fd);
    return out;
  }
  while (!out.allowed) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, MsLeft(deadline)) != 1) break;
    unsigned char buf[1500];
    sockaddr_in6 from{};
    socklen_t len = sizeof from;
    // A raw ICMPv6 socket reads from the ICMPv6 header on (no IPv6 header).
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 8) continue;
    out.allowed = std::memcmp(from.sin6_addr.s6_addr, s.ip6->bytes().data(), 16) == 0 && buf[0] == reply_type &&
                  (buf[4] << 8 | buf[5]) == id;
  }
  close(fd);
  return out;
}

}  // namespace probe_detail

// One probe from the calling thread's namespace. TCP/SCTP: allowed when the
// server's "ok" arrives (the SYN passed and so did the replies); UDP: the
// answer datagram; ICMP: the query's reply.
inline ProbeResult ProbeFromHere(const ProbeSpec& s, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (s.proto == L4::kIcmp) return s.ip6 ? probe_detail::ProbeIcmp6(s, deadline) : probe_detail::ProbeIcmp(s, deadline);
  const bool v6 = s.ip6.has_value();
  ProbeResult out;
  int fd = -1;
  // A fresh port can be taken by a socket of someone else in the namespace:
  // then the next one. A pinned port that cannot be bound is an error.
  for (int attempt = 0; attempt < 16 && fd < 0; attempt++) {
    out.src_port = s.src_port != 0 ? s.src_port : FreshSourcePort();
    fd = SocketFor(s.proto, v6);
    if (fd < 0) {
      out.error = fmt::format("{} socket: {}", L4Name(s.proto), strerror(errno));
      return out;
    }
    int one = 1;
    // TIME_WAIT of a pinned port's last connection must not block its reuse.
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    AnySockAddr from = v6 ? AnySockAddr::V6(Ipv6Addr(), out.src_port) : AnySockAddr::V4(INADDR_ANY, out.src_port);
    if (bind(fd, from.get(), from.len) != 0) {
      out.error = fmt::format("binding {} source port {}: {}", L4Name(s.proto), out.src_port, strerror(errno));
      close(fd);
      fd = -1;
      if (s.src_port != 0) return out;
    }
  }
  if (fd < 0) return out;
  out.error.clear();
  fcntl(fd, F_SETFL, O_NONBLOCK);
  AnySockAddr to = v6 ? AnySockAddr::V6(*s.ip6, s.port) : AnySockAddr::V4(s.ip.value(), s.port);
  char buf[16];
  pollfd pfd{fd, POLLIN, 0};
  if (s.proto == L4::kUdp) {
    if (sendto(fd, "hi\n", 3, 0, to.get(), to.len) == 3) {
      out.allowed = poll(&pfd, 1, probe_detail::MsLeft(deadline)) == 1 && recv(fd, buf, sizeof buf, 0) == 3 &&
                    std::string(buf, 3) == "ok\n";
    }
  } else {
    int rc = connect(fd, to.get(), to.len);
    if (rc == 0 || errno == EINPROGRESS) {
      // Readable means the server's answer (or a reset, which reads -1).
      out.allowed = poll(&pfd, 1, probe_detail::MsLeft(deadline)) == 1 && recv(fd, buf, sizeof buf, 0) == 3 &&
                    std::string(buf, 3) == "ok\n";
    } else {
      out.error = fmt::format("connect from source port {}: {}", out.src_port, strerror(errno));
    }
  }
  close(fd);
  return out;
}

// Runs probes in parallel, each from its namespace; results in order.
inline std::vector<ProbeResult> ProbeAllResults(const std::vector<ProbeSpec>& specs,
                                                std::chrono::milliseconds timeout) {
  std::vector<ProbeResult> results(specs.size());
  std::vector<std::thread> threads;
  threads.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); i++) {
    auto t = netlink::SpawnInNetns(specs[i].netns, [&, i] { results[i] = ProbeFromHere(specs[i], timeout); });
    if (t.ok()) {
      threads.push_back(std::move(*t));
    } else {
      results[i].error = t.error().ToString();
    }
  }
  for (auto& t : threads) t.join();
  return results;
}

// As ProbeAllResults, allowed or not (an error counts as not allowed).
inline std::vector<bool> ProbeAll(const std::vector<ProbeSpec>& specs, std::chrono::milliseconds timeout) {
  std::vector<bool> out;
  for (const auto& r : ProbeAllResults(specs, timeout)) out.push_back(r.allowed);
  return out;
}

// One probe, as a plain bool. (ProbeAll(...)[0] in a lambda with a deduced
// return type would return std::vector<bool>'s proxy into a destroyed
// temporary: a dangling reference that reads as a random verdict.)
inline bool ProbeOne(const ProbeSpec& spec, std::chrono::milliseconds timeout) {
  return ProbeAll({spec}, timeout)[0];
}

// A probe and the verdict it must get; `what` names it in a failure.
struct ProbeCheck {
  std::string what;
  ProbeSpec spec;
  bool allow = false;
};

// Probes every check in rounds until each verdict equals its expectation at
// one moment (policy reaches every node at its own pace) or `deadline`
// passes. "" when they did; else the checks that differed in the last round.
// Each round is new flows (ProbeSpec's fresh ports), so no conntrack entry
// of an earlier round decides a later one; a probe that could not be made
// never counts as a verdict.
inline std::string ProbeUntilExpected(const std::vector<ProbeCheck>& checks, std::chrono::milliseconds deadline,
                                      std::chrono::milliseconds timeout = std::chrono::milliseconds(1500)) {
  std::vector<ProbeSpec> specs;
  for (const auto& c : checks) specs.push_back(c.spec);
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string diff;
  for (int round = 1;; round++) {
    auto got = ProbeAllResults(specs, timeout);
    diff.clear();
    for (size_t i = 0; i < checks.size(); i++) {
      const ProbeCheck& c = checks[i];
      if (!got[i].error.empty()) {
        diff += fmt::format("  {}: probe failed: {}\n", c.what, got[i].error);
      } else if (got[i].allowed != c.allow) {
        diff += fmt::format("  {} (source port/id {}): got {}, want {}\n", c.what, got[i].src_port,
                            got[i].allowed ? "allowed" : "denied", c.allow ? "allowed" : "denied");
      }
    }
    if (diff.empty()) return "";
    if (std::chrono::steady_clock::now() > until) {
      return fmt::format("after {} rounds in {} ms:\n{}", round,
                         std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count(), diff);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a round with drops already waited `timeout`
  }
}

}  // namespace terway::testing
