// netlink::Handle: permanent neighbours and static bridge FDB entries.
#include "netlink/handle.h"

#include <linux/neighbour.h>

#include "netlink/handle_internal.h"
#include "netlink/message.h"

namespace terway::netlink {

using namespace internal;

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

// ---- proxy neighbours ------------------------------------------------------

namespace {
std::string DescribeProxy(const ProxyNeighbor& n) {
  return "proxy neighbour " + n.ip.ToString() + " on link #" + std::to_string(n.link_index);
}
}  // namespace

Status Handle::ReplaceProxyNeighbor(const ProxyNeighbor& n) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildProxyNeighbor(true, n));
  return Transact(*s_, msg.get(), "adding " + DescribeProxy(n));
}

Status Handle::DeleteProxyNeighborIfExists(const ProxyNeighbor& n) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildProxyNeighbor(false, n));
  Status s = Transact(*s_, msg.get(), "deleting " + DescribeProxy(n));
  if (IsNotFound(s)) return Ok();
  return s;
}

Result<std::vector<ProxyNeighbor>> Handle::ListProxyNeighbors(int link_index, int family) {
  std::vector<ProxyNeighbor> out;
  TERWAY_TRY(RawDump(
      *s_, [&] { return BuildProxyNeighborDump(family); }, "listing proxy neighbours", [&](const nlmsghdr* h) {
        auto n = ParseProxyNeighbor(h);
        if (!n || (link_index && n->link_index != link_index)) return;
        if (family && n->ip.family() != family) return;
        out.push_back(*n);
      }));
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

}  // namespace terway::netlink
