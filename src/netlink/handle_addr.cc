// netlink::Handle: addresses.
#include "netlink/handle.h"

#include <linux/if_addr.h>

#include "netlink/handle_internal.h"

namespace terway::netlink {

using namespace internal;

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
  unsigned flags = 0;
  if (a.noprefixroute) flags |= IFA_F_NOPREFIXROUTE;
  if (a.nodad) flags |= IFA_F_NODAD;
  if (flags) rtnl_addr_set_flags(addr.get(), flags);
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
    x.nodad = rtnl_addr_get_flags(a) & IFA_F_NODAD;
    x.scope = rtnl_addr_get_scope(a);
    out.push_back(x);
  });
  return out;
}

}  // namespace terway::netlink
