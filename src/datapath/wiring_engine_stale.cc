#include "datapath/wiring_engine_stale.h"

#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "datapath/wiring_planner.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetPrefix;

namespace {

bool SingleAddress(const InetPrefix& p) { return p.prefix_len == p.addr.max_prefix_len(); }

bool KernelLinkLocal(const netlink::InetAddr& a) { return !a.is_v4() && IsLinkLocal(a.v6()); }

bool PlanRoutes(const NamespacePlan& ns, const std::string& dev, const InetPrefix& dst) {
  return std::any_of(ns.routes.begin(), ns.routes.end(), [&](const RoutePlan& r) {
    return r.dev == dev && r.table == netlink::kMainTable && r.dst == dst;
  });
}

// Whether a kernel rule is ours for `ip`: at one of our priorities, with the
// address alone as its selector ("from ip" or "to ip", nothing else).
bool RuleFor(const netlink::Rule& k, const std::set<uint32_t>& priorities, const InetPrefix& ip) {
  if (!priorities.count(k.priority) || !k.iif.empty() || !k.oif.empty() || k.fwmark != 0) return false;
  return (k.src == ip && !k.dst) || (k.dst == ip && !k.src);
}

}  // namespace

std::string DescribeVethRoute(const VethRoute& r) { return "route " + r.route.dst.ToString() + " dev " + r.veth; }

Result<std::vector<VethRoute>> FindStaleVethRoutes(Handle& h, const NamespacePlan& ns) {
  std::vector<VethRoute> out;
  std::optional<std::vector<netlink::Route>> main;  // read once, when some owned veth exists
  for (const auto& lp : ns.links) {
    if (lp.kind != LinkKind::kVeth || !lp.owned) continue;
    auto link = h.GetLink(lp.name);
    if (!link.ok()) {
      if (link.error().code == ErrorCode::kNotFound) continue;  // nothing routed through it
      return std::move(link).error().Wrap("finding veth " + lp.name + " in the " + ns.label);
    }
    if (!main) {
      TERWAY_ASSIGN_OR_RETURN_CTX(main, h.ListRoutes(0, netlink::kMainTable),
                                  "listing the routes of the " + ns.label);
    }
    for (const auto& k : *main) {
      if (k.oif != link->index || k.type != netlink::RouteType::kUnicast || k.gateway || !SingleAddress(k.dst) ||
          KernelLinkLocal(k.dst.addr)) {
        continue;
      }
      if (PlanRoutes(ns, lp.name, k.dst)) continue;
      out.push_back({lp.name, k});
    }
  }
  return out;
}

Status ForgetVethAddress(Handle& h, const NamespacePlan& ns, const VethRoute& r) {
  const std::string what = DescribeVethRoute(r) + " in the " + ns.label;
  TERWAY_TRY_CTX(h.DeleteRouteIfExists(r.route), "removing " + what);
  const InetPrefix& ip = r.route.dst;
  // What the node learnt of the address on this veth (a neighbour entry
  // from earlier traffic): the veth's own, whoever holds the address now.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto neighbours, h.ListNeighbors(r.route.oif, ip.family()),
                              "listing the neighbours on " + r.veth + " in the " + ns.label);
  for (const auto& n : neighbours) {
    if (n.ip != ip.addr) continue;
    TERWAY_TRY_CTX(h.DeleteNeighborIfExists(n), "removing neighbour " + n.ip.ToString() + " on " + r.veth +
                                                    " (an address this pod no longer has) in the " + ns.label);
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto main, h.ListRoutes(ip.family(), netlink::kMainTable), "after removing " + what);
  for (const auto& k : main) {
    // Another pod of the node holds the address now: what is left is its own.
    if (k.dst == ip && k.type == netlink::RouteType::kUnicast) return Ok();
  }
  std::set<uint32_t> priorities;
  for (const auto& rule : ns.rules) {
    if (rule.owned) priorities.insert(rule.priority);
  }
  if (!priorities.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto rules, h.ListRules(ip.family()), "listing the rules of the " + ns.label);
    for (const auto& k : rules) {
      if (!RuleFor(k, priorities, ip)) continue;
      TERWAY_TRY_CTX(h.DeleteRuleIfExists(k), fmt::format("removing rule priority {} for {} (an address this pod "
                                                          "no longer has) in the {}",
                                                          k.priority, ip.addr.ToString(), ns.label));
    }
  }
  if (ip.addr.is_v4()) return Ok();  // proxy entries are IPv6's (proxy NDP)
  TERWAY_ASSIGN_OR_RETURN_CTX(auto proxies, h.ListProxyNeighbors(0, AF_INET6),
                              "listing the proxy neighbours of the " + ns.label);
  for (const auto& p : proxies) {
    if (p.ip != ip.addr) continue;
    TERWAY_TRY_CTX(h.DeleteProxyNeighborIfExists(p), "removing proxy neighbour " + p.ip.ToString() +
                                                         " (an address this pod no longer has) in the " + ns.label);
  }
  return Ok();
}

Result<std::vector<netlink::Address>> FindStalePeerAddresses(Handle& h, const NamespacePlan& peer_ns,
                                                             const std::string& dev) {
  auto link = h.GetLink(dev);
  if (!link.ok()) {
    if (link.error().code == ErrorCode::kNotFound) return std::vector<netlink::Address>{};
    return std::move(link).error().Wrap("finding " + dev + " in the " + peer_ns.label);
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto addrs, h.ListAddresses(link->index, 0),
                              "listing the addresses of " + dev + " in the " + peer_ns.label);
  std::vector<netlink::Address> out;
  for (const auto& a : addrs) {
    if (!SingleAddress(a.local) || KernelLinkLocal(a.local.addr)) continue;
    bool planned = std::any_of(peer_ns.addresses.begin(), peer_ns.addresses.end(),
                               [&](const AddressPlan& p) { return p.dev == dev && p.local == a.local; });
    if (!planned) out.push_back(a);
  }
  return out;
}

}  // namespace terway::datapath
