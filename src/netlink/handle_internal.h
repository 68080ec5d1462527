// Internals shared by the handle_*.cc files (one per kernel object): the
// libnl socket, RAII pointers for libnl objects, address conversions and the
// request/dump helpers. Private to src/netlink: callers never see libnl.
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <netlink/route/rule.h>

#include "netlink/handle.h"
#include "netlink/message.h"

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

namespace internal {

// The kernel errno behind a libnl NLE_* code (for replies without NLMSG_ERROR).
int NleToErrno(int nle);
// Error callback installed on every socket: keeps the kernel's errno.
int OnNetlinkError(sockaddr_nl*, nlmsgerr* err, void* arg);

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

NlAddrPtr ToNlAddr(const InetAddr& a, int prefix_len);
NlAddrPtr ToNlMac(const MacAddr& mac);
// A libnl address as an InetAddr; a zero-length address (the default route's
// destination) is the family's zero address.
std::optional<InetAddr> FromNlAddr(nl_addr* a, int family_hint);
MacAddr FromNlMac(nl_addr* a);

Error OutOfMemory();
bool IsNotFound(const Status& s);

// Sends one request and waits for the kernel's ACK.
Status Transact(Handle::Socket& s, nl_msg* msg, const std::string& what);

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

// A dump whose replies libnl has no cache type for (or parses lossily):
// collects each reply message and hands it to `each` once the dump finished
// without interruption. The request is rebuilt per attempt (fresh sequence).
Status RawDump(Handle::Socket& s, const std::function<Result<NlMsgPtr>()>& request, const std::string& what,
               const std::function<void(const nlmsghdr*)>& each);

template <typename T, typename F>
void ForEach(nl_cache* cache, F f) {
  for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) f(reinterpret_cast<T*>(o));
}

}  // namespace internal
}  // namespace terway::netlink
