// netlink::Handle: the socket, opening it in a namespace, and the helpers the
// per-object files (handle_link.cc, handle_addr.cc, ...) share.
#include "netlink/handle.h"

#include <arpa/inet.h>
#include <linux/netlink.h>

#include <vector>

#include "netlink/handle_internal.h"
#include "netlink/netns.h"

namespace terway::netlink {

using namespace internal;

namespace internal {

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

Error OutOfMemory() { return Errorf(ErrorCode::kInternal, "out of memory building netlink object"); }

bool IsNotFound(const Status& s) { return !s.ok() && s.error().code == ErrorCode::kNotFound; }

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

}  // namespace internal

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

}  // namespace terway::netlink
