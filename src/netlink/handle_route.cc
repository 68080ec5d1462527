// netlink::Handle: routes.
#include "netlink/handle.h"

#include <linux/rtnetlink.h>

#include "netlink/handle_internal.h"

namespace terway::netlink {

using namespace internal;

namespace {

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

}  // namespace

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

}  // namespace terway::netlink
