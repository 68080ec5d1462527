#include "datapath/shared_eni.h"

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "datapath/pod_shaping.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetAddr;
using netlink::InetPrefix;

namespace {

constexpr int kDefaultVethMtu = 1500;

struct PodAddrs {
  Ipv4Addr ip;
  MacAddr eni_mac;
};

Result<PodAddrs> ParsePod(const PodNetwork& pod) {
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  if (!ip.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "pod {}/{} (container {}): IP '{}' is not IPv4: the shared-ENI datapath wires "
                  "IPv4 only; check the allocation in the daemon's state",
                  pod.pod_namespace, pod.pod_name, pod.container_id, pod.ip.ip);
  }
  auto mac = MacAddr::Parse(pod.ip.eni_mac);
  if (!mac.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "pod {}/{} (container {}): ENI {} has no valid MAC ('{}'): the ENI's host link "
                  "is found by MAC; check the allocation in the daemon's state",
                  pod.pod_namespace, pod.pod_name, pod.container_id, pod.ip.eni_id, pod.ip.eni_mac);
  }
  return PodAddrs{*ip, *mac};
}

Status ValidatePodNetwork(const PodNetwork& pod) {
  if (pod.container_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "pod network without container id");
  }
  if (pod.netns.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "container {}: no network namespace path given",
                  pod.container_id);
  }
  if (pod.ifname.empty() || pod.ifname.size() > 15) {
    return Errorf(ErrorCode::kInvalidArgument, "container {}: interface name '{}' must be 1..15 bytes",
                  pod.container_id, pod.ifname);
  }
  return Ok();
}

Result<Handle> OpenHost(const std::string& netns) {
  if (netns.empty()) return Handle::Open();
  return Handle::OpenIn(netns);
}

InetPrefix Host32(Ipv4Addr a) { return InetPrefix::Host(InetAddr(a)); }

netlink::Rule ToPodRule(Ipv4Addr ip) {
  netlink::Rule r;
  r.family = AF_INET;
  r.priority = kToPodRulePriority;
  r.dst = Host32(ip);
  r.table = netlink::kMainTable;
  return r;
}

netlink::Rule FromPodRule(Ipv4Addr ip, uint32_t table) {
  netlink::Rule r;
  r.family = AF_INET;
  r.priority = kFromPodRulePriority;
  r.src = Host32(ip);
  r.table = table;
  return r;
}

bool IsToPodRule(const netlink::Rule& r, Ipv4Addr ip) {
  return r.priority == kToPodRulePriority && r.dst && *r.dst == Host32(ip) && !r.src;
}
bool IsFromPodRule(const netlink::Rule& r, Ipv4Addr ip) {
  return r.priority == kFromPodRulePriority && r.src && *r.src == Host32(ip) && !r.dst;
}

// A rule at one of our priorities for a single IPv4 address: the IP it is for.
std::optional<Ipv4Addr> PodRuleIp(const netlink::Rule& r) {
  if (r.priority == kToPodRulePriority && r.dst && !r.src && r.dst->prefix_len == 32 && r.dst->addr.is_v4()) {
    return r.dst->addr.v4();
  }
  if (r.priority == kFromPodRulePriority && r.src && !r.dst && r.src->prefix_len == 32 &&
      r.src->addr.is_v4()) {
    return r.src->addr.v4();
  }
  return std::nullopt;
}

netlink::Route PodHostRoute(Ipv4Addr ip, int veth_index) {
  netlink::Route r;
  r.dst = Host32(ip);
  r.oif = veth_index;
  r.scope = 253;  // RT_SCOPE_LINK: the pod is directly on the veth
  return r;
}

netlink::Route GatewayLinkRoute(int pod_link) {
  netlink::Route r;
  r.dst = Host32(Ipv4Addr::Parse(kPodGateway).value());
  r.oif = pod_link;
  r.scope = 253;
  return r;
}

netlink::Route PodDefaultRoute(int pod_link) {
  netlink::Route r;
  r.dst = InetPrefix(InetAddr(Ipv4Addr()), 0);
  r.oif = pod_link;
  r.gateway = InetAddr(Ipv4Addr::Parse(kPodGateway).value());
  return r;
}

netlink::Route EniDefaultRoute(int eni_index, uint32_t table, Ipv4Addr gw) {
  netlink::Route r;
  r.dst = InetPrefix(InetAddr(Ipv4Addr()), 0);
  r.table = table;
  r.oif = eni_index;
  r.gateway = InetAddr(gw);
  // onlink: the ENI carries no address, so the kernel has no connected route
  // saying the gateway is reachable on it; onlink says "it is, ARP for it".
  r.onlink = true;
  return r;
}

bool HasRoute(const std::vector<netlink::Route>& routes, const netlink::Route& want) {
  return std::any_of(routes.begin(), routes.end(), [&](const netlink::Route& r) {
    return r.dst == want.dst && r.oif == want.oif && r.gateway == want.gateway &&
           r.type == netlink::RouteType::kUnicast;
  });
}

std::string Trimmed(const Result<std::string>& r) { return r.ok() ? std::string(Trim(*r)) : ""; }

// Sysctls of the host namespace. Each says why it is needed:
//  - net.ipv4.ip_forward=1: the host routes every pod packet between its veth
//    and an ENI; without forwarding they are dropped on arrival.
//  - rp_filter=2 (loose) on the ENI: the VPC may hand a pod's packets to
//    another ENI of the node than the one that owns the IP (while an IP moves
//    between ENIs); strict filtering would drop those silently, loose still
//    drops sources with no route at all.
//  - conf/all/rp_filter: the kernel filters with max(all, dev), so a strict
//    (1) `all` would make the ENI strict too; we lower it to 2 only when it
//    is 1. Not to 0: that would turn filtering off on every link whose own
//    value is 0, where 2 keeps each at least loose. The price: with `all` at
//    2 (ours, or systemd's default) no link of the node is strict, host
//    veths included. So rp_filter is not what stops a pod from forging its
//    source: the anti-spoofing table (anti_spoof.h) is, whatever `all` says,
//    and for IPv6 too.
//  - No proxy_arp: the pod reaches 169.254.1.1 through a permanent neighbour
//    (it never ARPs), and the VPC delivers pod IPs to the ENI by its MAC (the
//    vSwitch router keeps permanent neighbours per IP; it does not ARP for
//    pod IPs), so nobody asks the host to answer ARP on others' behalf.
Status EnsureHostSysctls(const std::string& netns, const std::string& eni_name) {
  TERWAY_TRY_CTX(netlink::SetSysctl(netns, "net/ipv4/ip_forward", "1"),
                 "enabling IPv4 forwarding for pods (net.ipv4.ip_forward)");
  if (Trimmed(netlink::GetSysctl(netns, "net/ipv4/conf/all/rp_filter")) == "1") {
    TERWAY_TRY_CTX(netlink::SetSysctl(netns, "net/ipv4/conf/all/rp_filter", "2"),
                   "relaxing net.ipv4.conf.all.rp_filter to loose");
  }
  TERWAY_TRY_CTX(netlink::SetSysctl(netns, "net/ipv4/conf/" + eni_name + "/rp_filter", "2"),
                 "setting loose rp_filter on ENI link " + eni_name);
  return Ok();
}

}  // namespace

struct SharedEniDatapath::Eni {
  netlink::Link link;
  uint32_t table = 0;
  Ipv4Addr gateway;
};

SharedEniDatapath::SharedEniDatapath(SharedEniOptions options)
    : opt_(std::move(options)), anti_spoof_(opt_.host_netns, SeedFromPodLinkAliases(opt_.host_netns)) {}

Result<SharedEniDatapath::Eni> SharedEniDatapath::EnsureEni(const PodNetwork& pod, Handle& h) {
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePod(pod));
  if (!opt_.eni_network) {
    return MakeError(ErrorCode::kInternal,
                     "shared-ENI datapath built without a vSwitch gateway lookup (EniNetworkLookup)");
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(EniNetwork net, opt_.eni_network(pod.ip.eni_id, a.eni_mac),
                              "looking up the vSwitch gateway of ENI " + pod.ip.eni_id);
  if (net.vswitch_cidr.prefix_len() > 0 && !net.vswitch_cidr.Contains(net.gateway)) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "ENI {}: gateway {} is outside its vSwitch CIDR {}: check the metadata service's "
                  "network/interfaces/macs/{}/gateway",
                  pod.ip.eni_id, net.gateway.ToString(), net.vswitch_cidr.ToString(), a.eni_mac.ToString());
  }
  auto link = h.GetLinkByMac(a.eni_mac);
  if (!link.ok()) {
    return std::move(link).error().Wrap(fmt::format(
        "finding the host link of ENI {} (MAC {}): is the ENI attached to this instance? "
        "(an attached ENI shows up as a link with its MAC)",
        pod.ip.eni_id, a.eni_mac.ToString()));
  }
  Eni eni{*link, EniTableId(link->index), net.gateway};
  const std::string what = fmt::format("ENI {} (link {})", pod.ip.eni_id, link->name);
  if (opt_.mtu > 0 && link->mtu != opt_.mtu) TERWAY_TRY_CTX(h.SetMtu(link->index, opt_.mtu), "setting MTU of " + what);
  if (!link->admin_up) TERWAY_TRY_CTX(h.SetLinkUp(link->index), "bringing up " + what);
  TERWAY_TRY_CTX(EnsureHostSysctls(opt_.host_netns, link->name), what);
  Status rt = h.ReplaceRoute(EniDefaultRoute(link->index, eni.table, net.gateway));
  if (!rt.ok()) {
    Error e = std::move(rt).error();
    if (e.sys_errno == EINVAL) {
      // Seen in bare namespaces: the kernel checks an onlink gateway against
      // the local table, which does not exist while no address is up (not
      // even lo's), and answers "invalid gateway".
      e.message += " (is lo up in the host namespace? the kernel validates an onlink gateway against the "
                   "local table)";
    }
    return std::move(e).Wrap(
        fmt::format("routing table {} of {} via gateway {}", eni.table, what, net.gateway.ToString()));
  }
  return eni;
}

Result<cni::CniResult> SharedEniDatapath::Ensure(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePod(pod));
  const std::string who = fmt::format("pod {}/{} (container {}, IP {})", pod.pod_namespace, pod.pod_name,
                                      pod.container_id, a.ip.ToString());
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(Eni eni, EnsureEni(pod, host), "setting up " + who);

  const int mtu = opt_.mtu > 0 ? opt_.mtu : kDefaultVethMtu;
  const std::string veth = HostVethName(pod.container_id);
  const std::string alias = PodLinkAlias(a.ip, pod.container_id);

  TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "opening the network namespace of " + who);
  bool created = false;
  auto hl = host.GetLink(veth);
  if (hl.ok()) {
    // Trust an existing pair only if it is this pod's: our alias, and its
    // peer is the pod's ifname in this netns. Anything else is a leftover
    // (an earlier sandbox of the same container id, an interrupted ADD):
    // rebuild rather than report a pod that cannot work.
    auto pl = ph.GetLink(pod.ifname);
    bool ours = hl->alias == alias && hl->peer_in_other_netns && pl.ok() && pl->index == hl->peer_index &&
                pl->kind == "veth";
    if (!ours) {
      TERWAY_TRY_CTX(host.DeleteLinkIfExists(veth), "replacing stale host veth " + veth + " of " + who);
      hl = Errorf(ErrorCode::kNotFound, "{} replaced", veth);
    }
  }
  if (!hl.ok()) {
    if (hl.error().code != ErrorCode::kNotFound) return std::move(hl).error().Wrap(who);
    // An interface of that name in the pod is a leftover of an interrupted
    // ADD (its host side is gone); the pod's ifname belongs to us.
    TERWAY_TRY_CTX(ph.DeleteLinkIfExists(pod.ifname), "removing leftover " + pod.ifname + " of " + who);
    netlink::VethSpec spec;
    spec.name = veth;
    spec.peer_name = pod.ifname;
    spec.peer_netns = pod.netns;
    spec.mtu = mtu;
    TERWAY_TRY_CTX(host.CreateVeth(spec), "creating veth " + veth + " for " + who);
    created = true;
    hl = host.GetLink(veth);
    if (!hl.ok()) return std::move(hl).error().Wrap(who);
  }

  // Everything after the veth exists: on failure, undo a pair we created so a
  // failed ADD leaves nothing half-wired (the runtime retries ADD afresh).
  auto wire = [&]() -> Result<cni::CniResult> {
    netlink::Link h = *hl;
    // Before either end is up, so the veth never carries a packet the
    // table has no element for (the table drops those anyway: "tw*" is
    // guarded without one). After the link exists, so garbage collection,
    // which drops elements of missing links, cannot take it meanwhile.
    TERWAY_TRY_CTX(anti_spoof_.Allow(veth, {InetAddr(a.ip)}), "anti-spoofing element of " + veth);
    if (h.alias != alias) TERWAY_TRY(host.SetAlias(h.index, alias));
    if (h.mtu != mtu) TERWAY_TRY(host.SetMtu(h.index, mtu));
    if (!h.admin_up) TERWAY_TRY(host.SetLinkUp(h.index));

    MacAddr pod_mac;
    {
      TERWAY_ASSIGN_OR_RETURN_CTX(netlink::Link pl, ph.GetLink(pod.ifname), "finding the pod's " + pod.ifname);
      pod_mac = pl.mac;
      if (pl.mtu != mtu) TERWAY_TRY(ph.SetMtu(pl.index, mtu));
      if (!pl.admin_up) TERWAY_TRY(ph.SetLinkUp(pl.index));
      TERWAY_ASSIGN_OR_RETURN(netlink::Link lo, ph.GetLink("lo"));
      if (!lo.admin_up) TERWAY_TRY_CTX(ph.SetLinkUp(lo.index), "bringing up lo in the pod");
      netlink::Address addr;
      addr.link_index = pl.index;
      addr.local = Host32(a.ip);
      TERWAY_TRY(ph.EnsureAddress(addr));
      // The gateway's link route first: the default route's next hop must be
      // reachable when it is added.
      TERWAY_TRY(ph.ReplaceRoute(GatewayLinkRoute(pl.index)));
      TERWAY_TRY(ph.ReplaceRoute(PodDefaultRoute(pl.index)));
      netlink::Neighbor n;
      n.link_index = pl.index;
      n.ip = InetAddr(Ipv4Addr::Parse(kPodGateway).value());
      n.mac = h.mac;
      TERWAY_TRY(ph.ReplaceNeighbor(n));
    }

    TERWAY_TRY(host.ReplaceRoute(PodHostRoute(a.ip, h.index)));
    TERWAY_TRY(host.EnsureRule(ToPodRule(a.ip)));
    // A from-rule to another table is stale (the ENI was re-attached with a
    // new ifindex, or the IP moved to another ENI): two would both match.
    TERWAY_ASSIGN_OR_RETURN(auto rules, host.ListRules(AF_INET));
    for (const auto& r : rules) {
      if (IsFromPodRule(r, a.ip) && r.table != eni.table) TERWAY_TRY(host.DeleteRuleIfExists(r));
    }
    TERWAY_TRY(host.EnsureRule(FromPodRule(a.ip, eni.table)));
    TERWAY_TRY(EnsurePodShaping(*shaper_, host, pod, a.ip, created));
    return BuildCniResult({veth, h.mac, pod.ifname, pod_mac, pod.netns, a.ip});
  };
  auto result = wire();
  if (!result.ok()) {
    if (created) {
      Status undo = Remove(pod);
      if (!undo.ok()) log::Warn("undoing partial setup of {}: {}", who, undo.error().ToString());
    }
    return std::move(result).error().Wrap("wiring " + who);
  }
  return result;
}

Status SharedEniDatapath::Remove(const PodNetwork& pod) {
  // DEL must succeed when the pod is already gone: the runtime calls it again
  // after a crash, after the netns was destroyed (which destroys the veth
  // pair and its host route with it), and a failing DEL blocks the pod's
  // cleanup forever. So nothing here opens the pod's netns, and "not found"
  // is success everywhere.
  if (pod.container_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "removing a pod network without container id");
  }
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  // An adopted pod's host veth has another plugin's name.
  const std::string veth = pod.host_veth.empty() ? HostVethName(pod.container_id) : pod.host_veth;
  // Deleting the host end deletes the pair and every route through it.
  TERWAY_TRY_CTX(host.DeleteLinkIfExists(veth), "removing host veth " + veth + " of container " + pod.container_id);
  // After the veth: it never exists without its element (a veth without
  // one drops everything, but a live pod should not notice its DEL early).
  TERWAY_TRY_CTX(anti_spoof_.Forget(veth), "removing the anti-spoofing element of container " + pod.container_id);
  TERWAY_TRY(RemovePodShaping(*shaper_, host, pod.container_id, pod.ip.ip));

  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  if (!ip.ok()) {
    // Without an IP there are no rules we could have made for it.
    if (!pod.ip.ip.empty()) {
      log::Warn("container {}: ignoring unparsable IP '{}' on remove", pod.container_id, pod.ip.ip);
    }
    return Ok();
  }
  TERWAY_ASSIGN_OR_RETURN(auto rules, host.ListRules(AF_INET));
  for (const auto& r : rules) {
    if (IsToPodRule(r, *ip) || IsFromPodRule(r, *ip)) {
      TERWAY_TRY_CTX(host.DeleteRuleIfExists(r),
                     fmt::format("removing rule of pod IP {} (container {})", ip->ToString(), pod.container_id));
    }
  }
  // The ENI's table (one default route) stays: other pods may use the ENI,
  // and telling that safely would race a concurrent Ensure for another pod
  // on the same ENI, which installs the table route before its rule. An
  // unused table is harmless (no rule points to it) and is rewritten by the
  // next Ensure; it disappears with the ENI's link when the ENI is detached.
  return Ok();
}

Result<cni::CniResult> SharedEniDatapath::Check(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePod(pod));
  const std::string who = fmt::format("pod {}/{} (container {}, IP {})", pod.pod_namespace, pod.pod_name,
                                      pod.container_id, a.ip.ToString());
  auto fail = [&](std::string what) {
    return Error(ErrorCode::kNotFound, std::move(what) + "; the daemon's repair (Ensure) rebuilds it")
        .Wrap("checking " + who);
  };
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));

  // The ENI and its table.
  auto eni = host.GetLinkByMac(a.eni_mac);
  if (!eni.ok()) return fail(fmt::format("ENI {} has no host link with MAC {}", pod.ip.eni_id, a.eni_mac.ToString()));
  if (!eni->admin_up) return fail(fmt::format("ENI link {} is down", eni->name));
  const uint32_t table = EniTableId(eni->index);
  TERWAY_ASSIGN_OR_RETURN(auto eni_routes, host.ListRoutes(AF_INET, table));
  bool eni_default = std::any_of(eni_routes.begin(), eni_routes.end(), [&](const netlink::Route& r) {
    return r.dst.prefix_len == 0 && r.oif == eni->index && r.gateway.has_value();
  });
  if (!eni_default) return fail(fmt::format("table {} has no default route via ENI link {}", table, eni->name));
  if (Trimmed(netlink::GetSysctl(opt_.host_netns, "net/ipv4/ip_forward")) != "1") {
    return fail("net.ipv4.ip_forward is off on the host");
  }

  // The host side.
  const std::string veth = HostVethName(pod.container_id);
  auto hl = host.GetLink(veth);
  if (!hl.ok()) return fail("host veth " + veth + " is missing");
  if (!hl->admin_up) return fail("host veth " + veth + " is down");
  if (hl->alias != PodLinkAlias(a.ip, pod.container_id)) {
    return fail(fmt::format("host veth {} belongs to '{}', not to this pod", veth, hl->alias));
  }
  Status guard = anti_spoof_.Check(veth, InetAddr(a.ip));
  if (!guard.ok()) return fail(guard.error().message);
  TERWAY_ASSIGN_OR_RETURN(auto main_routes, host.ListRoutes(AF_INET, netlink::kMainTable));
  if (!HasRoute(main_routes, PodHostRoute(a.ip, hl->index))) {
    return fail(fmt::format("host route {}/32 dev {} is missing", a.ip.ToString(), veth));
  }
  TERWAY_ASSIGN_OR_RETURN(auto rules, host.ListRules(AF_INET));
  bool to_rule = false, from_rule = false;
  for (const auto& r : rules) {
    if (IsToPodRule(r, a.ip) && r.table == netlink::kMainTable) to_rule = true;
    if (IsFromPodRule(r, a.ip)) {
      if (r.table != table) {
        return fail(fmt::format("rule 'from {} lookup {}' points to the wrong table (ENI {} uses table {})",
                                a.ip.ToString(), r.table, pod.ip.eni_id, table));
      }
      from_rule = true;
    }
  }
  if (!to_rule) {
    return fail(fmt::format("rule 'to {} lookup main' (priority {}) is missing", a.ip.ToString(), kToPodRulePriority));
  }
  if (!from_rule) {
    return fail(fmt::format("rule 'from {} lookup {}' (priority {}) is missing", a.ip.ToString(), table,
                            kFromPodRulePriority));
  }
  Status shaping = shaper_->Check(host, PodShapingLinksFor(host, pod, a.ip), pod.bandwidth);
  if (!shaping.ok()) return fail("bandwidth: " + shaping.error().ToString());

  // The pod side.
  if (!netlink::NetnsExists(pod.netns)) return fail("network namespace " + pod.netns + " is gone");
  TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "checking " + who);
  auto pl = ph.GetLink(pod.ifname);
  if (!pl.ok()) return fail(pod.ifname + " is missing in the pod");
  if (!pl->admin_up) return fail(pod.ifname + " is down in the pod");
  if (hl->peer_index != pl->index) {
    return fail(fmt::format("{} in the pod is not the peer of host veth {}", pod.ifname, veth));
  }
  TERWAY_ASSIGN_OR_RETURN(auto addrs, ph.ListAddresses(pl->index, AF_INET));
  bool has_ip = std::any_of(addrs.begin(), addrs.end(), [&](const netlink::Address& x) {
    return x.local.addr == InetAddr(a.ip) && x.local.prefix_len == 32;
  });
  if (!has_ip) return fail(fmt::format("{} in the pod lacks {}/32", pod.ifname, a.ip.ToString()));
  TERWAY_ASSIGN_OR_RETURN(auto pod_routes, ph.ListRoutes(AF_INET, netlink::kMainTable));
  if (!HasRoute(pod_routes, GatewayLinkRoute(pl->index))) {
    return fail(fmt::format("pod route {} dev {} scope link is missing", kPodGateway, pod.ifname));
  }
  if (!HasRoute(pod_routes, PodDefaultRoute(pl->index))) {
    return fail(fmt::format("pod default route via {} dev {} is missing", kPodGateway, pod.ifname));
  }
  TERWAY_ASSIGN_OR_RETURN(auto neighs, ph.ListNeighbors(pl->index, AF_INET));
  bool neigh = std::any_of(neighs.begin(), neighs.end(), [&](const netlink::Neighbor& n) {
    return n.ip == InetAddr(Ipv4Addr::Parse(kPodGateway).value()) && n.permanent && n.mac == hl->mac;
  });
  if (!neigh) {
    return fail(fmt::format("permanent neighbour {} -> {} (host veth MAC) is missing in the pod", kPodGateway,
                            hl->mac.ToString()));
  }
  return BuildCniResult({veth, hl->mac, pod.ifname, pl->mac, pod.netns, a.ip});
}

Result<std::vector<PodLink>> SharedEniDatapath::ListPodLinks() {
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN(auto links, host.ListLinks());
  std::vector<PodLink> out;
  for (const auto& l : links) {
    auto owner = ParsePodLinkAlias(l.alias);
    if (!owner) continue;
    out.push_back({l.name, l.index, owner->pod_ip, owner->container_id});
  }
  return out;
}

Status SharedEniDatapath::GuardAdopted(const PodNetwork& pod) {
  if (pod.host_veth.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "guarding an adopted pod without its host veth");
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto ip, netlink::InetAddr::Parse(pod.ip.ip),
                              "the address of adopted pod " + pod.pod_namespace + "/" + pod.pod_name);
  TERWAY_TRY_CTX(anti_spoof_.Allow(pod.host_veth, {ip}),
                 fmt::format("guarding host veth {} of adopted pod {}/{}", pod.host_veth, pod.pod_namespace,
                             pod.pod_name));
  return Ok();
}

Result<std::vector<std::string>> SharedEniDatapath::CollectGarbage(
    const std::set<std::string>& live_container_ids, const std::set<Ipv4Addr>& adopted_ips) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, ListPodLinks(), "collecting pod datapath garbage");
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  std::vector<std::string> removed;
  // Adopted pods' rules are theirs: their from-rule is what routes them out
  // of their ENI.
  std::set<Ipv4Addr> live_ips = adopted_ips;
  for (const auto& l : links) {
    if (live_container_ids.count(l.container_id)) {
      live_ips.insert(l.pod_ip);
      continue;
    }
    TERWAY_TRY_CTX(host.DeleteLinkIfExists(l.host_veth),
                   "removing host veth " + l.host_veth + " of vanished container " + l.container_id);
    removed.push_back(fmt::format("link {} (container {}, IP {})", l.host_veth, l.container_id, l.pod_ip.ToString()));
  }
  // Rules outlive their pod when its netns is destroyed without a DEL (the
  // veth pair goes with the netns, the rules do not): collect every pod rule
  // whose IP no live pod link carries.
  TERWAY_ASSIGN_OR_RETURN(auto rules, host.ListRules(AF_INET));
  for (const auto& r : rules) {
    auto ip = PodRuleIp(r);
    if (!ip || live_ips.count(*ip)) continue;
    TERWAY_TRY_CTX(host.DeleteRuleIfExists(r), "removing rule of vanished pod IP " + ip->ToString());
    removed.push_back(fmt::format("rule priority {} for {} (table {})", r.priority, ip->ToString(), r.table));
  }
  TERWAY_ASSIGN_OR_RETURN(auto ifbs, CollectPodIfbs(host, live_container_ids));
  removed.insert(removed.end(), ifbs.begin(), ifbs.end());
  TERWAY_ASSIGN_OR_RETURN(auto edt, shaper_->CollectGarbage(live_ips));
  removed.insert(removed.end(), edt.begin(), edt.end());
  TERWAY_ASSIGN_OR_RETURN(auto elems, anti_spoof_.CollectGarbage());
  removed.insert(removed.end(), elems.begin(), elems.end());
  return removed;
}

}  // namespace terway::datapath
