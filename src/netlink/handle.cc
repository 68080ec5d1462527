#include "netlink/handle.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fib_rules.h>
#include <linux/neighbour.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/if.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>
#include <netlink/socket.h>

#include "netlink/message.h"
#include "netlink/names.h"
#include "netlink/netns.h"
#include "netlink/tc_message.h"

namespace terway::netlink {

// ---------------------------------------------------------------------------
// Socket: the libnl socket plus the raw errno of the last NLMSG_ERROR.
//
// libnl folds kernel errnos into its own NLE_* codes, losing detail (ENETUNREACH
// and friends all become NLE_FAILURE). An error callback on the socket keeps
// the kernel's errno so errors can say exactly what the kernel said.
struct Handle::Socket {
  nl_sock* sk = nullptr;
  int last_errno = 0;
  ~Socket() {
    if (sk) nl_socket_free(sk);
  }
};

namespace {

int OnNetlinkError(sockaddr_nl*, nlmsgerr* err, void* arg) {
  static_cast<int*>(arg)[0] = -err->error;
  return NL_STOP;
}

int NleToErrno(int nle) {
  switch (nle < 0 ? -nle : nle) {
    case NLE_EXIST: return EEXIST;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NODEV: return ENODEV;
    case NLE_INVAL: return EINVAL;
    case NLE_PERM: return EPERM;
    case NLE_NOACCESS: return EACCES;
    case NLE_OPNOTSUPP: return EOPNOTSUPP;
    case NLE_BUSY: return EBUSY;
    case NLE_NOMEM: return ENOMEM;
    case NLE_AGAIN: return EAGAIN;
    case NLE_RANGE: return ERANGE;
    case NLE_AF_NOSUPPORT: return EAFNOSUPPORT;
    case NLE_NOADDR: return EADDRNOTAVAIL;
    case NLE_MSGSIZE: return EMSGSIZE;
    default: return EIO;
  }
}

struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;
struct NlCacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using NlCachePtr = std::unique_ptr<nl_cache, NlCacheDeleter>;
template <typename T, void (*F)(T*)>
struct ObjDeleter {
  void operator()(T* p) const { F(p); }
};
using LinkPtr = std::unique_ptr<rtnl_link, ObjDeleter<rtnl_link, rtnl_link_put>>;
using AddrPtr = std::unique_ptr<rtnl_addr, ObjDeleter<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, ObjDeleter<rtnl_route, rtnl_route_put>>;
using RulePtr = std::unique_ptr<rtnl_rule, ObjDeleter<rtnl_rule, rtnl_rule_put>>;
using QdiscPtr = std::unique_ptr<rtnl_qdisc, ObjDeleter<rtnl_qdisc, rtnl_qdisc_put>>;
using NeighPtr = std::unique_ptr<rtnl_neigh, ObjDeleter<rtnl_neigh, rtnl_neigh_put>>;

NlAddrPtr ToNlAddr(const InetAddr& a, int prefix_len) {
  nl_addr* out = nullptr;
  if (a.is_v4()) {
    uint32_t n = a.v4().network_order();
    out = nl_addr_build(AF_INET, &n, 4);
  } else {
    out = nl_addr_build(AF_INET6, a.v6().bytes().data(), 16);
  }
  if (out) nl_addr_set_prefixlen(out, prefix_len);
  return NlAddrPtr(out);
}

NlAddrPtr ToNlMac(const MacAddr& mac) {
  return NlAddrPtr(nl_addr_build(AF_LLC, mac.bytes().data(), 6));
}

// A libnl address as an InetAddr; a zero-length address (the default route's
// destination) is the family's zero address.
std::optional<InetAddr> FromNlAddr(nl_addr* a, int family_hint) {
  int family = a ? nl_addr_get_family(a) : family_hint;
  size_t len = a ? nl_addr_get_len(a) : 0;
  const auto* bytes = a ? static_cast<const uint8_t*>(nl_addr_get_binary_addr(a)) : nullptr;
  if (family == AF_INET) {
    uint32_t n = 0;
    if (len == 4) std::memcpy(&n, bytes, 4);
    return InetAddr(Ipv4Addr(ntohl(n)));
  }
  if (family == AF_INET6) {
    std::array<uint8_t, 16> b{};
    if (len == 16) std::memcpy(b.data(), bytes, 16);
    return InetAddr(Ipv6Addr(b));
  }
  return std::nullopt;
}

MacAddr FromNlMac(nl_addr* a) {
  std::array<uint8_t, 6> b{};
  if (a && nl_addr_get_len(a) == 6) std::memcpy(b.data(), nl_addr_get_binary_addr(a), 6);
  return MacAddr(b);
}

Link ToLink(rtnl_link* l) {
  Link out;
  out.index = rtnl_link_get_ifindex(l);
  if (const char* n = rtnl_link_get_name(l)) out.name = n;
  if (const char* k = rtnl_link_get_type(l)) out.kind = k;
  out.mac = FromNlMac(rtnl_link_get_addr(l));
  out.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  unsigned flags = rtnl_link_get_flags(l);
  out.admin_up = flags & IFF_UP;
  out.lower_up = flags & IFF_LOWER_UP;
  out.master_index = rtnl_link_get_master(l);
  if (const char* a = rtnl_link_get_ifalias(l)) out.alias = a;
  out.peer_index = rtnl_link_get_link(l);
  int32_t netnsid = -1;
  out.peer_in_other_netns = rtnl_link_get_link_netnsid(l, &netnsid) == 0 && netnsid >= 0;
  out.peer_netnsid = out.peer_in_other_netns ? netnsid : -1;
  return out;
}

uint8_t RouteTypeToKernel(RouteType t) {
  switch (t) {
    case RouteType::kUnicast: return RTN_UNICAST;
    case RouteType::kBlackhole: return RTN_BLACKHOLE;
    case RouteType::kUnreachable: return RTN_UNREACHABLE;
    case RouteType::kProhibit: return RTN_PROHIBIT;
    case RouteType::kLocal: return RTN_LOCAL;
  }
  return RTN_UNICAST;
}

std::optional<RouteType> RouteTypeFromKernel(uint8_t t) {
  switch (t) {
    case RTN_UNICAST: return RouteType::kUnicast;
    case RTN_BLACKHOLE: return RouteType::kBlackhole;
    case RTN_UNREACHABLE: return RouteType::kUnreachable;
    case RTN_PROHIBIT: return RouteType::kProhibit;
    case RTN_LOCAL: return RouteType::kLocal;
    default: return std::nullopt;  // broadcast, multicast, anycast: not ours
  }
}

// Scope as `ip route add` derives it, so add and delete agree.
uint8_t EffectiveScope(const Route& r) {
  if (r.scope >= 0) return static_cast<uint8_t>(r.scope);
  if (r.type == RouteType::kLocal) return RT_SCOPE_HOST;
  if (r.type == RouteType::kUnicast && !r.gateway) return RT_SCOPE_LINK;
  return RT_SCOPE_UNIVERSE;
}

std::string Describe(const Route& r) {
  std::string s;
  switch (r.type) {
    case RouteType::kBlackhole: s = "blackhole "; break;
    case RouteType::kUnreachable: s = "unreachable "; break;
    case RouteType::kProhibit: s = "prohibit "; break;
    case RouteType::kLocal: s = "local "; break;
    case RouteType::kUnicast: break;
  }
  s += r.dst.ToString();
  if (r.gateway) s += " via " + r.gateway->ToString();
  if (r.oif) s += " dev #" + std::to_string(r.oif);
  s += " table " + std::to_string(r.table);
  return s;
}

std::string Describe(const Rule& r) {
  std::string s = "rule";
  if (r.priority) s += " pref " + std::to_string(r.priority);
  if (r.src) s += " from " + r.src->ToString();
  if (r.dst) s += " to " + r.dst->ToString();
  if (!r.iif.empty()) s += " iif " + r.iif;
  if (!r.oif.empty()) s += " oif " + r.oif;
  if (r.fwmark) s += " fwmark " + std::to_string(r.fwmark);
  s += " lookup " + std::to_string(r.table);
  return s;
}

Error OutOfMemory() { return Errorf(ErrorCode::kInternal, "out of memory building netlink object"); }

bool IsNotFound(const Status& s) { return !s.ok() && s.error().code == ErrorCode::kNotFound; }

// Opens a namespace file for IFLA_NET_NS_FD; closed by the guard.
struct NetnsFd {
  int fd = -1;
  ~NetnsFd() {
    if (fd >= 0) close(fd);
  }
};
Status OpenNetnsFd(const std::string& netns, NetnsFd& out) {
  std::string path = NetnsPath(netns);
  out.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (out.fd < 0) return SysError("opening network namespace " + path);
  return Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// Private helpers that need the socket. Free functions taking Socket& keep
// libnl out of the header.
namespace {

Status Transact(Handle::Socket& s, nl_msg* msg, const std::string& what);

}  // namespace

Handle::Handle(std::unique_ptr<Socket> s, std::string netns) : s_(std::move(s)), netns_(std::move(netns)) {}
Handle::Handle(Handle&&) noexcept = default;
Handle& Handle::operator=(Handle&&) noexcept = default;
Handle::~Handle() = default;

Result<Handle> Handle::OpenHere(const std::string& label) {
  auto s = std::make_unique<Socket>();
  s->sk = nl_socket_alloc();
  if (!s->sk) return Errorf(ErrorCode::kInternal, "allocating netlink socket");
  int rc = nl_connect(s->sk, NETLINK_ROUTE);
  if (rc < 0) {
    return SysError("connecting rtnetlink socket" + (label.empty() ? "" : " in " + label), NleToErrno(rc));
  }
  nl_socket_modify_err_cb(s->sk, NL_CB_CUSTOM, OnNetlinkError, &s->last_errno);
  // Large dumps (many routes or neighbours) need room.
  nl_socket_set_buffer_size(s->sk, 1 << 20, 1 << 20);
  nl_socket_set_msg_buf_size(s->sk, 64 * 1024);
  return Handle(std::move(s), label);
}

Result<Handle> Handle::Open() { return OpenHere(""); }

Result<Handle> Handle::OpenIn(const std::string& netns) {
  std::optional<Result<Handle>> out;
  Status s = RunInNetns(netns, [&]() -> Status {
    out.emplace(OpenHere(netns));
    return Ok();
  });
  if (!s.ok()) return std::move(s).error().Wrap("opening netlink in namespace " + netns);
  return std::move(*out);
}

namespace {

Status Transact(Handle::Socket& s, nl_msg* msg, const std::string& what) {
  s.last_errno = 0;
  int rc = nl_send_auto(s.sk, msg);
  if (rc >= 0) rc = nl_wait_for_ack(s.sk);
  if (rc < 0) {
    int err = s.last_errno ? s.last_errno : NleToErrno(rc);
    return SysError(what, err);
  }
  return Ok();
}

// Dumps can be interrupted (NLM_F_DUMP_INTR) when the table changes while the
// kernel walks it; the only correct answer is to dump again.
template <typename Fill>
Result<NlCachePtr> DumpWithRetry(Handle::Socket& s, const std::string& what, Fill fill) {
  constexpr int kAttempts = 8;
  int rc = 0;
  for (int i = 0; i < kAttempts; ++i) {
    nl_cache* cache = nullptr;
    s.last_errno = 0;
    rc = fill(&cache);
    if (rc >= 0) return NlCachePtr(cache);
    if (cache) nl_cache_free(cache);
    if (rc != -NLE_DUMP_INTR) break;
  }
  if (rc == -NLE_DUMP_INTR) {
    return Errorf(ErrorCode::kConflict, "{}: dump interrupted {} times by concurrent changes", what, kAttempts);
  }
  return SysError(what, s.last_errno ? s.last_errno : NleToErrno(rc));
}

template <typename T, typename F>
void ForEach(nl_cache* cache, F f) {
  for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) f(reinterpret_cast<T*>(o));
}

}  // namespace

// ---- links ----------------------------------------------------------------

Result<Link> Handle::GetLink(const std::string& name) {
  TERWAY_TRY(ValidateLinkName(name));
  rtnl_link* raw = nullptr;
  s_->last_errno = 0;
  int rc = rtnl_link_get_kernel(s_->sk, 0, name.c_str(), &raw);
  LinkPtr l(raw);
  if (rc < 0 || !l) return SysError("getting link " + name, s_->last_errno ? s_->last_errno : NleToErrno(rc));
  return ToLink(l.get());
}

Result<Link> Handle::GetLinkByIndex(int index) {
  rtnl_link* raw = nullptr;
  s_->last_errno = 0;
  int rc = rtnl_link_get_kernel(s_->sk, index, nullptr, &raw);
  LinkPtr l(raw);
  if (rc < 0 || !l) {
    return SysError("getting link #" + std::to_string(index), s_->last_errno ? s_->last_errno : NleToErrno(rc));
  }
  return ToLink(l.get());
}

Result<std::vector<Link>> Handle::ListLinks() {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing links", [&](nl_cache** c) {
                            return rtnl_link_alloc_cache(s_->sk, AF_UNSPEC, c);
                          }));
  std::vector<Link> out;
  ForEach<rtnl_link>(cache.get(), [&](rtnl_link* l) { out.push_back(ToLink(l)); });
  return out;
}

Result<Link> Handle::GetLinkByMac(const MacAddr& mac) {
  TERWAY_ASSIGN_OR_RETURN(auto links, ListLinks());
  for (auto& l : links) {
    if (l.mac == mac) return l;
  }
  return Errorf(ErrorCode::kNotFound, "no link with MAC {}", mac.ToString());
}

bool Handle::LinkExists(const std::string& name) { return GetLink(name).ok(); }

Status Handle::CreateVeth(const VethSpec& spec) {
  NetnsFd ns;
  if (!spec.peer_netns.empty()) TERWAY_TRY(OpenNetnsFd(spec.peer_netns, ns));
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildVethCreate(spec, ns.fd));
  std::string what = "creating veth " + spec.name + " with peer " + spec.peer_name;
  if (!spec.peer_netns.empty()) what += " in namespace " + spec.peer_netns;
  return Transact(*s_, msg.get(), what);
}

Status Handle::CreateBridge(const std::string& name, const std::optional<MacAddr>& mac) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildBridgeCreate(name, mac));
  return Transact(*s_, msg.get(), "creating bridge " + name);
}

namespace {
template <typename M, typename V>
LinkChange Change(int index, M LinkChange::*field, V value) {
  LinkChange c;
  c.index = index;
  c.*field = value;
  return c;
}

Status ChangeLink(Handle::Socket& s, const LinkChange& c, const std::string& what) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildLinkChange(c));
  return Transact(s, msg.get(), what + " on link #" + std::to_string(c.index));
}
}  // namespace

Status Handle::SetLinkUp(int index) {
  return ChangeLink(*s_, Change(index, &LinkChange::up, true), "setting up");
}
Status Handle::SetLinkDown(int index) {
  return ChangeLink(*s_, Change(index, &LinkChange::up, false), "setting down");
}
Status Handle::SetMtu(int index, int mtu) {
  return ChangeLink(*s_, Change(index, &LinkChange::mtu, mtu), "setting MTU " + std::to_string(mtu));
}
Status Handle::SetMac(int index, const MacAddr& mac) {
  return ChangeLink(*s_, Change(index, &LinkChange::mac, mac), "setting MAC " + mac.ToString());
}
Status Handle::SetName(int index, const std::string& name) {
  return ChangeLink(*s_, Change(index, &LinkChange::name, name), "renaming to " + name);
}
Status Handle::SetMaster(int index, int master_index) {
  return ChangeLink(*s_, Change(index, &LinkChange::master_index, master_index),
                    "setting master #" + std::to_string(master_index));
}
Status Handle::SetAlias(int index, const std::string& alias) {
  return ChangeLink(*s_, Change(index, &LinkChange::alias, alias), "setting alias '" + alias + "'");
}
Status Handle::SetBridgePortIsolated(int index, bool isolated) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildBridgePortIsolated(index, isolated));
  return Transact(*s_, msg.get(),
                  std::string("setting bridge port isolated ") + (isolated ? "on" : "off") + " on link #" +
                      std::to_string(index));
}
Status Handle::MoveToNetns(int index, const std::string& netns) {
  NetnsFd ns;
  TERWAY_TRY(OpenNetnsFd(netns, ns));
  return ChangeLink(*s_, Change(index, &LinkChange::netns_fd, ns.fd), "moving to namespace " + netns);
}
Status Handle::DeleteLink(int index) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildLinkDelete(index));
  return Transact(*s_, msg.get(), "deleting link #" + std::to_string(index));
}
Status Handle::DeleteLinkIfExists(const std::string& name) {
  auto l = GetLink(name);
  if (!l.ok()) {
    if (l.error().code == ErrorCode::kNotFound) return Ok();
    return std::move(l).error();
  }
  Status s = DeleteLink(l->index);
  // Gone in between (e.g. its veth peer's namespace was just destroyed).
  if (IsNotFound(s)) return Ok();
  if (!s.ok()) return std::move(s).error().Wrap("deleting link " + name);
  return Ok();
}

// ---- addresses ------------------------------------------------------------

namespace {
Result<AddrPtr> MakeAddr(const Address& a) {
  AddrPtr addr(rtnl_addr_alloc());
  NlAddrPtr local = ToNlAddr(a.local.addr, a.local.prefix_len);
  if (!addr || !local) return OutOfMemory();
  rtnl_addr_set_ifindex(addr.get(), a.link_index);
  rtnl_addr_set_family(addr.get(), a.local.family());
  if (rtnl_addr_set_local(addr.get(), local.get()) < 0) return OutOfMemory();
  rtnl_addr_set_prefixlen(addr.get(), a.local.prefix_len);
  rtnl_addr_set_scope(addr.get(), a.scope);
  if (a.noprefixroute) rtnl_addr_set_flags(addr.get(), IFA_F_NOPREFIXROUTE);
  return addr;
}

std::string Describe(const Address& a) {
  return a.local.ToString() + " on link #" + std::to_string(a.link_index);
}

Status SendAddr(Handle::Socket& s, const Address& a, bool add, int flags, const std::string& what) {
  TERWAY_ASSIGN_OR_RETURN(AddrPtr addr, MakeAddr(a));
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_addr_build_add_request(addr.get(), flags, &raw)
               : rtnl_addr_build_delete_request(addr.get(), flags, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{} {}: {}", what, Describe(a), nl_geterror(rc));
  return Transact(s, msg.get(), what + " " + Describe(a));
}
}  // namespace

Status Handle::AddAddress(const Address& a) {
  return SendAddr(*s_, a, true, NLM_F_CREATE | NLM_F_EXCL, "adding address");
}
Status Handle::EnsureAddress(const Address& a) {
  return SendAddr(*s_, a, true, NLM_F_CREATE | NLM_F_REPLACE, "ensuring address");
}
Status Handle::DeleteAddress(const Address& a) { return SendAddr(*s_, a, false, 0, "deleting address"); }
Status Handle::DeleteAddressIfExists(const Address& a) {
  Status s = DeleteAddress(a);
  // The kernel answers EADDRNOTAVAIL for an address that is not there.
  if (!s.ok() && (s.error().code == ErrorCode::kNotFound || s.error().sys_errno == EADDRNOTAVAIL)) return Ok();
  return s;
}

Result<std::vector<Address>> Handle::ListAddresses(int link_index, int family) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing addresses", [&](nl_cache** c) {
                            return rtnl_addr_alloc_cache(s_->sk, c);
                          }));
  std::vector<Address> out;
  ForEach<rtnl_addr>(cache.get(), [&](rtnl_addr* a) {
    if (link_index && rtnl_addr_get_ifindex(a) != link_index) return;
    int fam = rtnl_addr_get_family(a);
    if (family && fam != family) return;
    auto local = FromNlAddr(rtnl_addr_get_local(a), fam);
    if (!local) return;
    Address x;
    x.link_index = rtnl_addr_get_ifindex(a);
    x.local = InetPrefix(*local, rtnl_addr_get_prefixlen(a));
    x.noprefixroute = rtnl_addr_get_flags(a) & IFA_F_NOPREFIXROUTE;
    x.scope = rtnl_addr_get_scope(a);
    out.push_back(x);
  });
  return out;
}

// ---- routes ---------------------------------------------------------------

namespace {
Result<RoutePtr> MakeRoute(const Route& r) {
  RoutePtr route(rtnl_route_alloc());
  NlAddrPtr dst = ToNlAddr(r.dst.addr, r.dst.prefix_len);
  if (!route || !dst) return OutOfMemory();
  rtnl_route_set_family(route.get(), r.family());
  if (rtnl_route_set_dst(route.get(), dst.get()) < 0) return OutOfMemory();
  rtnl_route_set_table(route.get(), r.table);
  rtnl_route_set_type(route.get(), RouteTypeToKernel(r.type));
  rtnl_route_set_scope(route.get(), EffectiveScope(r));
  rtnl_route_set_protocol(route.get(), static_cast<uint8_t>(r.protocol));
  if (r.metric) rtnl_route_set_priority(route.get(), r.metric);
  if (r.src) {
    if (r.src->family() != r.family()) {
      return Errorf(ErrorCode::kInvalidArgument, "route {}: src {} is of another family", Describe(r),
                    r.src->ToString());
    }
    NlAddrPtr src = ToNlAddr(*r.src, r.src->max_prefix_len());
    if (!src || rtnl_route_set_pref_src(route.get(), src.get()) < 0) return OutOfMemory();
  }
  if (r.oif || r.gateway) {
    if (r.type != RouteType::kUnicast) {
      return Errorf(ErrorCode::kInvalidArgument, "route {}: only unicast routes take a device or gateway",
                    Describe(r));
    }
    rtnl_nexthop* nh = rtnl_route_nh_alloc();
    if (!nh) return OutOfMemory();
    if (r.oif) rtnl_route_nh_set_ifindex(nh, r.oif);
    if (r.gateway) {
      if (r.gateway->family() != r.family()) {
        rtnl_route_nh_free(nh);
        return Errorf(ErrorCode::kInvalidArgument, "route {}: gateway of another family", Describe(r));
      }
      NlAddrPtr gw = ToNlAddr(*r.gateway, r.gateway->max_prefix_len());
      rtnl_route_nh_set_gateway(nh, gw.get());
    }
    if (r.onlink) rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
    rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  }
  return route;
}

Status SendRoute(Handle::Socket& s, const Route& r, bool add, int flags, const std::string& what) {
  TERWAY_ASSIGN_OR_RETURN(RoutePtr route, MakeRoute(r));
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_route_build_add_request(route.get(), flags, &raw)
               : rtnl_route_build_del_request(route.get(), flags, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{} {}: {}", what, Describe(r), nl_geterror(rc));
  return Transact(s, msg.get(), what + " " + Describe(r));
}
}  // namespace

Status Handle::AddRoute(const Route& r) {
  return SendRoute(*s_, r, true, NLM_F_CREATE | NLM_F_EXCL, "adding route");
}
Status Handle::ReplaceRoute(const Route& r) {
  return SendRoute(*s_, r, true, NLM_F_CREATE | NLM_F_REPLACE, "replacing route");
}
Status Handle::DeleteRoute(const Route& r) { return SendRoute(*s_, r, false, 0, "deleting route"); }
Status Handle::DeleteRouteIfExists(const Route& r) {
  Status s = DeleteRoute(r);
  // ESRCH for IPv4 (mapped to kNotFound), ENOENT for IPv6.
  if (IsNotFound(s)) return Ok();
  return s;
}

Result<std::vector<Route>> Handle::ListRoutes(int family, uint32_t table) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing routes", [&](nl_cache** c) {
                            return rtnl_route_alloc_cache(s_->sk, family ? family : AF_UNSPEC, 0, c);
                          }));
  std::vector<Route> out;
  ForEach<rtnl_route>(cache.get(), [&](rtnl_route* rt) {
    if (table && rtnl_route_get_table(rt) != table) return;
    auto type = RouteTypeFromKernel(rtnl_route_get_type(rt));
    if (!type) return;
    int fam = rtnl_route_get_family(rt);
    if (fam != AF_INET && fam != AF_INET6) return;
    nl_addr* dst = rtnl_route_get_dst(rt);
    auto dst_addr = FromNlAddr(dst, fam);
    if (!dst_addr) return;
    Route r;
    r.dst = InetPrefix(*dst_addr, dst ? nl_addr_get_prefixlen(dst) : 0);
    r.table = rtnl_route_get_table(rt);
    r.type = *type;
    r.scope = rtnl_route_get_scope(rt);
    r.metric = rtnl_route_get_priority(rt);
    r.protocol = rtnl_route_get_protocol(rt);
    if (nl_addr* src = rtnl_route_get_pref_src(rt)) r.src = FromNlAddr(src, fam);
    if (rtnl_route_get_nnexthops(rt) > 0) {
      rtnl_nexthop* nh = rtnl_route_nexthop_n(rt, 0);
      r.oif = rtnl_route_nh_get_ifindex(nh);
      if (nl_addr* gw = rtnl_route_nh_get_gateway(nh)) r.gateway = FromNlAddr(gw, fam);
      r.onlink = rtnl_route_nh_get_flags(nh) & RTNH_F_ONLINK;
    }
    out.push_back(r);
  });
  return out;
}

// ---- rules ----------------------------------------------------------------

namespace {
Result<RulePtr> MakeRule(const Rule& r) {
  RulePtr rule(rtnl_rule_alloc());
  if (!rule) return OutOfMemory();
  int family = r.EffectiveFamily();
  rtnl_rule_set_family(rule.get(), family);
  if (r.priority) rtnl_rule_set_prio(rule.get(), r.priority);
  for (auto [p, setter] : {std::pair{&r.src, &rtnl_rule_set_src}, std::pair{&r.dst, &rtnl_rule_set_dst}}) {
    if (!*p) continue;
    if ((*p)->family() != family) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: addresses of two families", Describe(r));
    }
    NlAddrPtr a = ToNlAddr((*p)->addr, (*p)->prefix_len);
    if (!a || setter(rule.get(), a.get()) < 0) return OutOfMemory();
  }
  rtnl_rule_set_table(rule.get(), r.table);
  rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
  if (!r.iif.empty()) rtnl_rule_set_iif(rule.get(), r.iif.c_str());
  if (!r.oif.empty()) rtnl_rule_set_oif(rule.get(), r.oif.c_str());
  if (r.fwmark) rtnl_rule_set_mark(rule.get(), r.fwmark);
  if (r.fwmask) rtnl_rule_set_mask(rule.get(), r.fwmask);
  return rule;
}

Status SendRule(Handle::Socket& s, const Rule& r, bool add, int flags, const std::string& what) {
  TERWAY_ASSIGN_OR_RETURN(RulePtr rule, MakeRule(r));
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_rule_build_add_request(rule.get(), flags, &raw)
               : rtnl_rule_build_delete_request(rule.get(), flags, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{} {}: {}", what, Describe(r), nl_geterror(rc));
  return Transact(s, msg.get(), what + " " + Describe(r));
}
}  // namespace

// NLM_F_EXCL makes the kernel refuse an identical rule with EEXIST (it would
// otherwise happily stack duplicates), which is what EnsureRule relies on.
Status Handle::AddRule(const Rule& r) { return SendRule(*s_, r, true, NLM_F_EXCL, "adding"); }
Status Handle::EnsureRule(const Rule& r) {
  Status s = AddRule(r);
  if (!s.ok() && s.error().code == ErrorCode::kAlreadyExists) return Ok();
  return s;
}
Status Handle::DeleteRule(const Rule& r) { return SendRule(*s_, r, false, 0, "deleting"); }
Status Handle::DeleteRuleIfExists(const Rule& r) {
  Status s = DeleteRule(r);
  if (IsNotFound(s)) return Ok();
  return s;
}

Result<std::vector<Rule>> Handle::ListRules(int family) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing rules", [&](nl_cache** c) {
                            return rtnl_rule_alloc_cache(s_->sk, family ? family : AF_UNSPEC, c);
                          }));
  std::vector<Rule> out;
  ForEach<rtnl_rule>(cache.get(), [&](rtnl_rule* rr) {
    Rule r;
    r.family = rtnl_rule_get_family(rr);
    if (family && r.family != family) return;
    r.priority = rtnl_rule_get_prio(rr);
    if (nl_addr* a = rtnl_rule_get_src(rr)) {
      if (auto ip = FromNlAddr(a, r.family)) r.src = InetPrefix(*ip, nl_addr_get_prefixlen(a));
    }
    if (nl_addr* a = rtnl_rule_get_dst(rr)) {
      if (auto ip = FromNlAddr(a, r.family)) r.dst = InetPrefix(*ip, nl_addr_get_prefixlen(a));
    }
    r.table = rtnl_rule_get_table(rr);
    if (const char* i = rtnl_rule_get_iif(rr)) r.iif = i;
    if (const char* o = rtnl_rule_get_oif(rr)) r.oif = o;
    r.fwmark = rtnl_rule_get_mark(rr);
    r.fwmask = rtnl_rule_get_mask(rr);
    out.push_back(r);
  });
  return out;
}

// ---- neighbours -----------------------------------------------------------

namespace {
Status SendNeigh(Handle::Socket& s, const Neighbor& n, bool add, int flags, const std::string& what) {
  NeighPtr neigh(rtnl_neigh_alloc());
  NlAddrPtr dst = ToNlAddr(n.ip, n.ip.max_prefix_len());
  NlAddrPtr ll = ToNlMac(n.mac);
  if (!neigh || !dst || !ll) return OutOfMemory();
  rtnl_neigh_set_ifindex(neigh.get(), n.link_index);
  rtnl_neigh_set_family(neigh.get(), n.ip.family());
  rtnl_neigh_set_dst(neigh.get(), dst.get());
  if (add) {
    rtnl_neigh_set_lladdr(neigh.get(), ll.get());
    rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  }
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_neigh_build_add_request(neigh.get(), flags, &raw)
               : rtnl_neigh_build_delete_request(neigh.get(), flags, &raw);
  NlMsgPtr msg(raw);
  std::string desc = n.ip.ToString() + " lladdr " + n.mac.ToString() + " on link #" + std::to_string(n.link_index);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{} neighbour {}: {}", what, desc, nl_geterror(rc));
  return Transact(s, msg.get(), what + " neighbour " + desc);
}
}  // namespace

Status Handle::AddNeighbor(const Neighbor& n) {
  return SendNeigh(*s_, n, true, NLM_F_CREATE | NLM_F_EXCL, "adding");
}
Status Handle::ReplaceNeighbor(const Neighbor& n) {
  return SendNeigh(*s_, n, true, NLM_F_CREATE | NLM_F_REPLACE, "replacing");
}
Status Handle::DeleteNeighbor(const Neighbor& n) { return SendNeigh(*s_, n, false, 0, "deleting"); }
Status Handle::DeleteNeighborIfExists(const Neighbor& n) {
  Status s = DeleteNeighbor(n);
  if (IsNotFound(s)) return Ok();
  return s;
}

Result<std::vector<Neighbor>> Handle::ListNeighbors(int link_index, int family) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing neighbours", [&](nl_cache** c) {
                            return rtnl_neigh_alloc_cache(s_->sk, c);
                          }));
  std::vector<Neighbor> out;
  ForEach<rtnl_neigh>(cache.get(), [&](rtnl_neigh* nb) {
    int fam = rtnl_neigh_get_family(nb);
    if (fam != AF_INET && fam != AF_INET6) return;
    if (family && fam != family) return;
    if (link_index && rtnl_neigh_get_ifindex(nb) != link_index) return;
    auto ip = FromNlAddr(rtnl_neigh_get_dst(nb), fam);
    if (!ip) return;
    Neighbor n;
    n.link_index = rtnl_neigh_get_ifindex(nb);
    n.ip = *ip;
    n.mac = FromNlMac(rtnl_neigh_get_lladdr(nb));
    int state = rtnl_neigh_get_state(nb);
    n.state = static_cast<uint16_t>(state < 0 ? 0 : state);
    n.permanent = n.state & NUD_PERMANENT;
    out.push_back(n);
  });
  return out;
}

// ---- fdb ------------------------------------------------------------------

Status Handle::ReplaceFdb(const FdbEntry& e) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildFdb(true, e));
  return Transact(*s_, msg.get(),
                  "adding fdb entry " + e.mac.ToString() + " on port #" + std::to_string(e.port_index));
}

Status Handle::DeleteFdbIfExists(const FdbEntry& e) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildFdb(false, e));
  Status s = Transact(*s_, msg.get(),
                      "deleting fdb entry " + e.mac.ToString() + " on port #" + std::to_string(e.port_index));
  if (IsNotFound(s)) return Ok();
  return s;
}

// ---- traffic control -------------------------------------------------------

namespace {
constexpr uint32_t kTcRoot = 0xFFFFFFFFu;    // TC_H_ROOT
constexpr uint32_t kTcClsact = 0xFFFFFFF1u;  // TC_H_CLSACT (== TC_H_INGRESS)
constexpr uint32_t kClsactHandle = 0xFFFF0000u;

Result<QdiscPtr> MakeQdisc(int index, const char* kind, uint32_t parent, uint32_t handle) {
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return OutOfMemory();
  rtnl_tc_set_ifindex(TC_CAST(q.get()), index);
  rtnl_tc_set_parent(TC_CAST(q.get()), parent);
  rtnl_tc_set_handle(TC_CAST(q.get()), handle);
  if (kind && rtnl_tc_set_kind(TC_CAST(q.get()), kind) < 0) {
    return Errorf(ErrorCode::kUnsupported, "libnl does not know qdisc kind {}", kind);
  }
  return q;
}

Status SendQdisc(Handle::Socket& s, rtnl_qdisc* q, bool add, int flags, const std::string& what) {
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_qdisc_build_add_request(q, flags, &raw) : rtnl_qdisc_build_delete_request(q, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{}: {}", what, nl_geterror(rc));
  return Transact(s, msg.get(), what);
}
}  // namespace

Status Handle::EnsureClsact(int index) {
  TERWAY_ASSIGN_OR_RETURN(QdiscPtr q, MakeQdisc(index, "clsact", kTcClsact, kClsactHandle));
  Status s = SendQdisc(*s_, q.get(), true, NLM_F_CREATE | NLM_F_EXCL,
                       "adding clsact qdisc on link #" + std::to_string(index));
  if (!s.ok() && s.error().code == ErrorCode::kAlreadyExists) return Ok();
  return s;
}

Status Handle::DeleteClsactIfExists(int index) {
  TERWAY_ASSIGN_OR_RETURN(QdiscPtr q, MakeQdisc(index, "clsact", kTcClsact, kClsactHandle));
  Status s = SendQdisc(*s_, q.get(), false, 0, "deleting clsact qdisc on link #" + std::to_string(index));
  // The kernel answers EINVAL ("cannot find specified qdisc") or ENOENT.
  if (!s.ok() && (s.error().code == ErrorCode::kNotFound || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Status Handle::ReplaceRootTbf(int index, const TokenBucket& tb) {
  std::string what = fmt::format("setting tbf rate {} B/s burst {} B on link #{}", tb.rate_bytes_per_sec,
                                 tb.burst_bytes, index);
  auto msg = BuildRootTbfReplace(index, tb);
  if (!msg.ok()) return std::move(msg).error().Wrap(what);
  return Transact(*s_, msg->get(), what);
}

Status Handle::DeleteRootQdiscIfExists(int index) {
  TERWAY_ASSIGN_OR_RETURN(auto qdiscs, ListQdiscs(index));
  for (const auto& q : qdiscs) {
    // Handle 0 is the kernel's default qdisc: nothing of ours to remove.
    if (q.parent != kTcRoot || q.handle == 0) continue;
    TERWAY_ASSIGN_OR_RETURN(QdiscPtr del, MakeQdisc(index, nullptr, kTcRoot, q.handle));
    Status s = SendQdisc(*s_, del.get(), false, 0,
                         "deleting root qdisc " + q.kind + " on link #" + std::to_string(index));
    if (!s.ok() && !IsNotFound(s)) return s;
  }
  return Ok();
}

Result<std::vector<Qdisc>> Handle::ListQdiscs(int link_index) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing qdiscs", [&](nl_cache** c) {
                            return rtnl_qdisc_alloc_cache(s_->sk, c);
                          }));
  std::vector<Qdisc> out;
  ForEach<rtnl_qdisc>(cache.get(), [&](rtnl_qdisc* q) {
    Qdisc x;
    x.link_index = rtnl_tc_get_ifindex(TC_CAST(q));
    if (link_index && x.link_index != link_index) return;
    if (const char* k = rtnl_tc_get_kind(TC_CAST(q))) x.kind = k;
    x.handle = rtnl_tc_get_handle(TC_CAST(q));
    x.parent = rtnl_tc_get_parent(TC_CAST(q));
    out.push_back(x);
  });
  return out;
}

// ---- traffic shaping --------------------------------------------------------

namespace {

// A dump whose replies libnl has no cache type for (or parses lossily):
// collects each reply message and hands it to `each` once the dump finished
// without interruption. The request is rebuilt per attempt (fresh sequence).
Status RawDump(Handle::Socket& s, const std::function<Result<NlMsgPtr>()>& request, const std::string& what,
               const std::function<void(const nlmsghdr*)>& each) {
  constexpr int kAttempts = 8;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    TERWAY_ASSIGN_OR_RETURN(NlMsgPtr req, request());
    std::vector<std::vector<uint8_t>> replies;
    s.last_errno = 0;
    int rc = nl_send_auto(s.sk, req.get());
    if (rc < 0) return SysError(what, NleToErrno(rc));
    nl_cb* base = nl_socket_get_cb(s.sk);
    nl_cb* cb = nl_cb_clone(base);
    nl_cb_put(base);
    if (!cb) return OutOfMemory();
    nl_cb_set(
        cb, NL_CB_VALID, NL_CB_CUSTOM,
        [](nl_msg* m, void* arg) -> int {
          nlmsghdr* h = nlmsg_hdr(m);
          auto* out = static_cast<std::vector<std::vector<uint8_t>>*>(arg);
          const auto* b = reinterpret_cast<const uint8_t*>(h);
          out->emplace_back(b, b + h->nlmsg_len);
          return NL_OK;
        },
        &replies);
    rc = nl_recvmsgs(s.sk, cb);
    nl_cb_put(cb);
    if (rc == -NLE_DUMP_INTR) continue;
    if (rc < 0) return SysError(what, s.last_errno ? s.last_errno : NleToErrno(rc));
    for (const auto& r : replies) each(reinterpret_cast<const nlmsghdr*>(r.data()));
    return Ok();
  }
  return Errorf(ErrorCode::kConflict, "{}: dump interrupted {} times by concurrent changes", what, kAttempts);
}

}  // namespace

Result<int> Handle::NetnsIdOf(const std::string& netns) {
  const std::string path = NetnsPath(netns);
  const std::string what = "asking the namespace id of " + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError(what);
  nl_msg* raw = nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST);
  if (!raw) {
    close(fd);
    return OutOfMemory();
  }
  NlMsgPtr msg(raw);
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  int rc = nlmsg_append(raw, &g, sizeof(g), NLMSG_ALIGNTO);
  if (rc >= 0) rc = nla_put_u32(raw, NETNSA_FD, static_cast<uint32_t>(fd));
  s_->last_errno = 0;
  if (rc >= 0) rc = nl_send_auto(s_->sk, raw);
  close(fd);
  if (rc < 0) return SysError(what, NleToErrno(rc));
  // The answer, then the ACK (read too: libnl matches the next request's
  // replies by sequence, counting ACKs).
  struct Answer {
    int nsid = -1;
    bool answered = false;
    bool acked = false;
  } answer;
  nl_cb* base = nl_socket_get_cb(s_->sk);
  nl_cb* cb = nl_cb_clone(base);
  nl_cb_put(base);
  if (!cb) return OutOfMemory();
  nl_cb_set(
      cb, NL_CB_VALID, NL_CB_CUSTOM,
      [](nl_msg* m, void* arg) -> int {
        auto* a = static_cast<Answer*>(arg);
        nlattr* tb[NETNSA_MAX + 1] = {};
        if (nlmsg_hdr(m)->nlmsg_type == RTM_NEWNSID &&
            nlmsg_parse(nlmsg_hdr(m), sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) >= 0 && tb[NETNSA_NSID]) {
          a->nsid = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
          a->answered = true;
        }
        return NL_OK;
      },
      &answer);
  nl_cb_set(
      cb, NL_CB_ACK, NL_CB_CUSTOM,
      [](nl_msg*, void* arg) -> int {
        static_cast<Answer*>(arg)->acked = true;
        return NL_STOP;
      },
      &answer);
  rc = 0;
  for (int reads = 0; rc >= 0 && !answer.acked && reads < 4; ++reads) rc = nl_recvmsgs(s_->sk, cb);
  nl_cb_put(cb);
  if (rc < 0) return SysError(what, s_->last_errno ? s_->last_errno : NleToErrno(rc));
  if (!answer.answered) return Errorf(ErrorCode::kInternal, "{}: the kernel answered without an id", what);
  return answer.nsid < 0 ? -1 : answer.nsid;
}

Status Handle::CreateIfb(const std::string& name) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildIfbCreate(name));
  return Transact(*s_, msg.get(), "creating ifb " + name);
}

Status Handle::CreateChildLink(const std::string& name, const std::string& kind, int parent_index) {
  std::string what = fmt::format("creating {} link {} on link #{}", kind, name, parent_index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildChildLinkCreate(name, kind, parent_index));
  Status s = Transact(*s_, msg.get(), what);
  // An unknown kind: the kernel finds no rtnl_link_ops (and no module to
  // load) and answers EOPNOTSUPP.
  if (!s.ok() && s.error().sys_errno == EOPNOTSUPP) {
    return Errorf(ErrorCode::kUnsupported, "{}: kernel lacks {} (CONFIG_{} is not set)", what, kind,
                  [&] {
                    std::string up;
                    for (char c : kind) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                    return up;
                  }());
  }
  return s;
}

Status Handle::AddQdisc(int index, const std::string& kind, uint32_t parent, uint32_t handle) {
  std::string what = fmt::format("adding {} qdisc on link #{}", kind, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildQdiscAdd(index, kind, parent, handle));
  Status s = Transact(*s_, msg.get(), what);
  // An unknown kind: the kernel tries to load sch_<kind> and answers ENOENT.
  if (!s.ok() && (s.error().sys_errno == ENOENT || s.error().sys_errno == EOPNOTSUPP)) {
    return Errorf(ErrorCode::kUnsupported, "{}: this kernel has no {} qdisc ({})", what, kind,
                  std::strerror(s.error().sys_errno));
  }
  return s;
}

Status Handle::DeleteQdiscIfExists(int index, uint32_t parent, uint32_t handle) {
  std::string what = fmt::format("deleting qdisc {:x}: on link #{}", handle >> 16, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildQdiscDelete(index, parent, handle));
  Status s = Transact(*s_, msg.get(), what);
  // "Cannot find specified qdisc" is ENOENT; deleting the default root is EINVAL.
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Result<std::optional<TbfInfo>> Handle::GetRootTbf(int index) {
  std::optional<TbfInfo> out;
  TERWAY_TRY(RawDump(
      *s_, [] { return BuildQdiscDump(); }, "listing qdiscs of link #" + std::to_string(index),
      [&](const nlmsghdr* h) {
        auto t = ParseTbf(h);
        if (t && t->link_index == index && t->parent == kTcHandleRoot) out = t;
      }));
  return out;
}

Status Handle::AddRedirectFilter(const RedirectFilter& f) {
  std::string what = fmt::format("redirecting link #{} to link #{} (u32 + mirred)", f.link_index, f.target_index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildRedirectFilterAdd(f));
  return Transact(*s_, msg.get(), what);
}

Status Handle::AddBpfFilter(const BpfFilter& f) {
  std::string what = fmt::format("attaching bpf program {} to link #{}", f.name, f.link_index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildBpfFilterAdd(f));
  return Transact(*s_, msg.get(), what);
}

Status Handle::ReplaceRootQdisc(int index, const std::string& kind) {
  std::string what = fmt::format("setting the root qdisc of link #{} to {}", index, kind);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildRootQdiscReplace(index, kind));
  Status s = Transact(*s_, msg.get(), what);
  if (!s.ok() && (s.error().sys_errno == ENOENT || s.error().sys_errno == EOPNOTSUPP)) {
    return Errorf(ErrorCode::kUnsupported, "{}: this kernel has no {} qdisc ({})", what, kind,
                  std::strerror(s.error().sys_errno));
  }
  return s;
}

Status Handle::DeleteFiltersIfExist(int index, uint32_t parent, uint16_t priority) {
  std::string what = fmt::format("deleting filters of priority {} on link #{}", priority, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildFilterDelete(index, parent, priority));
  Status s = Transact(*s_, msg.get(), what);
  // No such priority: ENOENT; no clsact/ingress qdisc at all: EINVAL.
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Result<std::vector<FilterInfo>> Handle::ListFilters(int index, uint32_t parent) {
  std::vector<FilterInfo> out;
  Status s = RawDump(
      *s_, [&] { return BuildFilterDump(index, parent); }, "listing filters of link #" + std::to_string(index),
      [&](const nlmsghdr* h) {
        auto f = ParseFilter(h);
        // A dump also reports one header per priority chain without a
        // handle, and for u32 its hash tables (node bits 0: 800:).
        if (!f || f->handle == 0) return;
        if (f->kind == "u32" && (f->handle & 0xFFFu) == 0) return;
        out.push_back(*f);
      });
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return out;  // no qdisc on that hook
  if (!s.ok()) return std::move(s).error();
  return out;
}

}  // namespace terway::netlink
