// Value types of the netlink library: what a link, address, route, rule or
// neighbour looks like to callers. No libnl type leaks out of this header, so
// callers (datapath, fabric, tests) never include libnl.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/ip.h"
#include "common/result.h"

namespace terway::netlink {

// An IPv4 or IPv6 address. Routes, rules and neighbours are the same objects
// for both families; only the address differs.
class InetAddr {
 public:
  InetAddr() = default;
  InetAddr(Ipv4Addr a) : v_(a) {}  // NOLINT: implicit on purpose
  InetAddr(Ipv6Addr a) : v_(a) {}  // NOLINT
  static Result<InetAddr> Parse(std::string_view text);

  int family() const;  // AF_INET or AF_INET6
  bool is_v4() const { return v_.index() == 0; }
  Ipv4Addr v4() const { return std::get<0>(v_); }
  Ipv6Addr v6() const { return std::get<1>(v_); }
  int max_prefix_len() const { return is_v4() ? 32 : 128; }
  std::string ToString() const;
  auto operator<=>(const InetAddr&) const = default;

 private:
  std::variant<Ipv4Addr, Ipv6Addr> v_;
};

// An address with a prefix length. For interface addresses the host bits may
// be set ("198.18.0.10/24"); for route destinations they are not.
struct InetPrefix {
  InetAddr addr;
  int prefix_len = 0;

  InetPrefix() = default;
  InetPrefix(InetAddr a, int len) : addr(a), prefix_len(len) {}
  InetPrefix(const Ipv4Cidr& c) : addr(c.network()), prefix_len(c.prefix_len()) {}  // NOLINT
  InetPrefix(const Ipv6Cidr& c) : addr(c.network()), prefix_len(c.prefix_len()) {}  // NOLINT
  static InetPrefix Host(InetAddr a) { return {a, a.max_prefix_len()}; }
  // "10.0.0.1/24", "fd00::/64"; a bare address means a host prefix.
  static Result<InetPrefix> Parse(std::string_view text);
  int family() const { return addr.family(); }
  std::string ToString() const;
  auto operator<=>(const InetPrefix&) const = default;
};

struct Link {
  int index = 0;
  std::string name;
  std::string kind;        // "veth", "bridge", ... empty for physical/loopback
  MacAddr mac;
  int mtu = 0;
  bool admin_up = false;   // IFF_UP
  bool lower_up = false;   // IFF_LOWER_UP: carrier
  int master_index = 0;    // bridge (or other master) this link is enslaved to
  std::string alias;       // IFLA_IFALIAS
  // IFLA_LINK: for a veth, its peer's index, counted in the peer's namespace
  // (which differs from ours when peer_in_other_netns).
  int peer_index = 0;
  bool peer_in_other_netns = false;  // IFLA_LINK_NETNSID present
  // That namespace's id as this one knows it (Handle::NetnsIdOf of the
  // namespace gives the same id); -1 when the peer is here.
  int peer_netnsid = -1;
};

struct VethSpec {
  std::string name;                  // created in the handle's namespace
  std::string peer_name;
  // Namespace (name or path) the peer is created in directly, so it never
  // appears, even briefly, in the handle's namespace. Empty: same namespace.
  std::string peer_netns;
  std::optional<MacAddr> mac;
  std::optional<MacAddr> peer_mac;
  int mtu = 0;                       // 0: kernel default
};

struct Address {
  int link_index = 0;
  InetPrefix local;                  // address and prefix length
  // IFA_F_NOPREFIXROUTE: no connected route for the prefix (the caller owns
  // routing, e.g. a gateway address on a bridge that must not attract the
  // whole subnet).
  bool noprefixroute = false;
  // IFA_F_NODAD (IPv6): valid at once, no duplicate address detection. For
  // an address that is ours alone by construction (a pod's /128 on its
  // veth, assigned by the VPC): DAD would only hold it tentative for a
  // second, during which the kernel does not use it as a source.
  bool nodad = false;
  int scope = 0;                     // RT_SCOPE_UNIVERSE
};

enum class RouteType { kUnicast, kBlackhole, kUnreachable, kProhibit, kLocal };

inline constexpr uint32_t kMainTable = 254;   // RT_TABLE_MAIN
inline constexpr uint32_t kLocalTable = 255;  // RT_TABLE_LOCAL

struct Route {
  InetPrefix dst;                    // 0.0.0.0/0 for the default route
  uint32_t table = kMainTable;
  RouteType type = RouteType::kUnicast;
  int oif = 0;                       // output link index; 0 = none
  std::optional<InetAddr> gateway;
  std::optional<InetAddr> src;       // preferred source
  // -1: derived as the kernel tools do (link scope for a unicast route
  // without gateway, universe otherwise; host for local).
  int scope = -1;
  bool onlink = false;               // RTNH_F_ONLINK: gateway need not be on a subnet
  uint32_t metric = 0;               // RTA_PRIORITY
  int protocol = 4;                  // RTPROT_STATIC, as `ip route add`

  int family() const { return dst.family(); }
};

struct Rule {
  int family = 0;                    // AF_INET or AF_INET6 (0: from src/dst, else AF_INET)
  uint32_t priority = 0;             // 0: kernel picks (but two identical rules need one)
  std::optional<InetPrefix> src;     // "from"
  std::optional<InetPrefix> dst;     // "to"
  uint32_t table = kMainTable;
  std::string iif;
  std::string oif;
  uint32_t fwmark = 0;
  uint32_t fwmask = 0;

  int EffectiveFamily() const;
};

// A permanent IP neighbour (ARP/NDP entry): the kernel never ages or
// overwrites it from received ARP.
struct Neighbor {
  int link_index = 0;
  InetAddr ip;
  MacAddr mac;
  bool permanent = true;             // false on entries read back that are dynamic
  uint16_t state = 0;                // NUD_* as read back (0 when building)
};

// A proxy neighbour (`ip -6 neigh add proxy <ip> dev <link>`, NTF_PROXY):
// with proxy_ndp on the link (and IPv6 forwarding), the kernel answers
// neighbour solicitations for ip arriving on it with the link's own MAC.
struct ProxyNeighbor {
  int link_index = 0;
  InetAddr ip;
  bool operator==(const ProxyNeighbor&) const = default;
};

// A static bridge forwarding entry: frames to mac leave through port_index.
struct FdbEntry {
  int port_index = 0;
  MacAddr mac;
};

// A queueing discipline as read back from the kernel.
struct Qdisc {
  int link_index = 0;
  std::string kind;     // "tbf", "clsact", "noqueue", ...
  uint32_t handle = 0;  // major:minor packed, as the kernel reports it
  uint32_t parent = 0;  // 0xffffffff = root; 0xfffffff1 = clsact/ingress
};

// Token bucket shaping of a link's egress (TBF root qdisc).
struct TokenBucket {
  uint64_t rate_bytes_per_sec = 0;
  uint32_t burst_bytes = 0;   // bucket size; at least one MTU
  uint32_t latency_ms = 25;   // how long a packet may wait: sets the queue limit
};

// tc handles and parents (linux/pkt_sched.h values, so callers need no
// kernel headers).
inline constexpr uint32_t kTcHandleRoot = 0xFFFFFFFFu;     // TC_H_ROOT
inline constexpr uint32_t kTcHandleClsact = 0xFFFFFFF1u;   // TC_H_CLSACT
inline constexpr uint32_t kTcClsactIngress = 0xFFFFFFF2u;  // clsact's ingress hook
inline constexpr uint32_t kTcClsactEgress = 0xFFFFFFF3u;   // clsact's egress hook

// A TBF qdisc as read back from the kernel.
struct TbfInfo {
  int link_index = 0;
  uint32_t parent = 0;
  uint32_t handle = 0;
  uint64_t rate_bytes_per_sec = 0;
  uint64_t burst_bytes = 0;  // from the kernel's bucket time: may differ from the request by rounding
  uint32_t limit_bytes = 0;
};

// A u32 match-all filter whose action is `mirred egress redirect dev
// <target>`: every packet arriving on the link's hook goes to the target
// (an IFB) instead.
struct RedirectFilter {
  int link_index = 0;
  uint32_t parent = kTcClsactIngress;
  uint16_t priority = 1;
  int target_index = 0;
};

// A cls_bpf filter in direct-action mode: the program's return code is the
// verdict (TC_ACT_OK, TC_ACT_SHOT, ...).
struct BpfFilter {
  int link_index = 0;
  uint32_t parent = kTcClsactIngress;
  uint16_t priority = 1;
  int prog_fd = -1;
  std::string name;  // shown by tc and ListFilters' bpf_name
};

// A tc filter as read back. For a u32 filter whose first action is mirred,
// redirect_index is its target link.
struct FilterInfo {
  int link_index = 0;
  uint32_t parent = 0;
  uint16_t priority = 0;
  uint16_t protocol = 0;   // host order (ETH_P_ALL = 3)
  uint32_t handle = 0;
  std::string kind;
  int redirect_index = 0;
  int mirred_eaction = 0;  // TCA_EGRESS_REDIR = 1
  std::string bpf_name;    // a cls_bpf filter's program name
  uint32_t bpf_id = 0;     // ... and the kernel's id of its program
};

}  // namespace terway::netlink
