// netlink::Handle: links (veth, bridge, ifb, child links; attributes; namespaces).
#include "netlink/handle.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include <cctype>

#include "netlink/handle_internal.h"
#include "netlink/message.h"
#include "netlink/netns.h"
#include "netlink/tc_message.h"
#include "netlink/names.h"

namespace terway::netlink {

using namespace internal;

namespace {

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
  if (out.peer_in_other_netns) out.peer_netnsid = netnsid;
  return out;
}

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

Result<int> Handle::NetnsIdOf(const std::string& netns) {
  const std::string path = NetnsPath(netns);
  const std::string what = "asking the id this namespace gives to namespace " + path;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError(what);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  NlMsgPtr m(nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST));
  if (!m) return OutOfMemory();
  rtgenmsg g{};
  g.rtgen_family = AF_UNSPEC;
  if (nlmsg_append(m.get(), &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
      nla_put_u32(m.get(), NETNSA_FD, static_cast<uint32_t>(fd)) < 0) {
    return OutOfMemory();
  }
  s_->last_errno = 0;
  int rc = nl_send_auto(s_->sk, m.get());
  if (rc < 0) return SysError(what, NleToErrno(rc));
  // The answer (RTM_NEWNSID) comes first, then the kernel's ACK (libnl asks
  // for one on every request): both are read here, or the ACK would be
  // taken for the answer of the next request on this socket.
  nl_cb* base = nl_socket_get_cb(s_->sk);
  nl_cb* cb = nl_cb_clone(base);
  nl_cb_put(base);
  if (!cb) return OutOfMemory();
  int nsid = -1;
  nl_cb_set(
      cb, NL_CB_VALID, NL_CB_CUSTOM,
      [](nl_msg* msg, void* arg) -> int {
        nlmsghdr* h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWNSID) return NL_OK;
        nlattr* tb[NETNSA_MAX + 1] = {};
        if (nlmsg_parse(h, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) >= 0 && tb[NETNSA_NSID]) {
          *static_cast<int*>(arg) = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
        }
        return NL_OK;
      },
      &nsid);
  rc = nl_recvmsgs(s_->sk, cb);
  nl_cb_put(cb);
  if (rc >= 0) rc = nl_wait_for_ack(s_->sk);
  if (rc < 0) return SysError(what, s_->last_errno ? s_->last_errno : NleToErrno(rc));
  return nsid;
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

}  // namespace terway::netlink
