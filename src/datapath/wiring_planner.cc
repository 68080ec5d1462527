#include "datapath/wiring_planner.h"

#include <algorithm>

#include "datapath/layout.h"
#include "netlink/names.h"

namespace terway::datapath {

using netlink::InetAddr;
using netlink::InetPrefix;

namespace {

constexpr int kDefaultVethMtu = 1500;
constexpr int kScopeLink = 253;  // RT_SCOPE_LINK

Ipv4Addr PodGateway() { return Ipv4Addr::Parse(kPodGateway).value(); }
Ipv6Addr PodGatewayV6() { return Ipv6Addr::Parse(kPodGatewayV6).value(); }
InetPrefix Host32(Ipv4Addr a) { return InetPrefix::Host(InetAddr(a)); }
InetPrefix Host128(Ipv6Addr a) { return InetPrefix::Host(InetAddr(a)); }
InetPrefix Default4() { return InetPrefix(InetAddr(Ipv4Addr()), 0); }
InetPrefix Default6() { return InetPrefix(InetAddr(Ipv6Addr()), 0); }

RoutePlan LinkRoute(Ipv4Addr dst, const std::string& dev) {
  RoutePlan r;
  r.dst = Host32(dst);
  r.dev = dev;
  r.scope = kScopeLink;  // directly on the link: no next hop
  return r;
}

// IPv6 has no route scope of its own (the kernel reports every route as
// universe): a route without next hop is on its link by construction.
RoutePlan LinkRoute6(Ipv6Addr dst, const std::string& dev) {
  RoutePlan r;
  r.dst = Host128(dst);
  r.dev = dev;
  return r;
}

// A default route via an IPv6 gateway on dev. onlink only for a global
// gateway: the link carries no global prefix, so the kernel would find no
// connected route to it (a link-local next hop is on its link by definition).
RoutePlan DefaultVia6(Ipv6Addr gw, const std::string& dev, uint32_t table) {
  RoutePlan r;
  r.dst = Default6();
  r.table = table;
  r.dev = dev;
  r.via = InetAddr(gw);
  r.onlink = !IsLinkLocal(gw);
  return r;
}

SysctlPlan Ipv6Conf(const std::string& dev, const std::string& key, const std::string& value) {
  return {"net/ipv6/conf/" + dev + "/" + key, value, std::nullopt};
}

// A link that carries a pod's IPv6: IPv6 on (a runtime or the node's default
// may have switched it off), and no duplicate address detection for its
// link-local -- while tentative the kernel neither sends neighbour
// solicitations from it nor uses it, and the first packets of a new pod
// would wait a second for nothing (nobody else is on a veth, nor on an ENI's
// link but the VPC's router, which never holds a pod's address). Set before the
// link comes up (the engine writes sysctls first), so DAD never starts.
void EnableIpv6(std::vector<SysctlPlan>& out, const std::string& dev) {
  out.push_back(Ipv6Conf(dev, "disable_ipv6", "0"));
  out.push_back(Ipv6Conf(dev, "accept_dad", "0"));
}

LinkPlan Loopback() {
  LinkPlan lo;
  lo.name = "lo";
  return lo;
}

// The pod's veth pair: created from the host, its peer directly in the pod.
// The alias names the owner, so GC after a restart knows whose it is.
LinkPlan HostVeth(const PodNetwork& pod, Ipv4Addr ip, const std::string& peer_name, int mtu) {
  LinkPlan l;
  l.kind = LinkKind::kVeth;
  l.name = HostVethName(pod.container_id);
  l.mtu = mtu;
  l.alias = PodLinkAlias(ip, pod.container_id);
  l.peer_name = peer_name;
  l.peer_ns = kPodNs;
  l.owned = true;
  return l;
}

LinkPlan VethPeer(const std::string& name, int mtu) {
  LinkPlan l;
  l.kind = LinkKind::kVethPeer;
  l.name = name;
  l.mtu = mtu;
  return l;
}

// The pod reaches 169.254.1.1 (fe80::1) only through this permanent entry (it
// never ARPs or solicits for it): the host veth's MAC, read once the veth exists.
NeighborPlan GatewayNeighbor(const std::string& dev, const std::string& host_veth,
                             InetAddr gateway = InetAddr(PodGateway())) {
  NeighborPlan n;
  n.dev = dev;
  n.ip = gateway;
  n.mac_of = host_veth;
  n.mac_of_ns = kHostNs;
  return n;
}

WiringPlan TwoNamespaces(const std::string& host_netns, const std::string& pod_netns) {
  WiringPlan p;
  p.namespaces.resize(2);
  p.namespaces[kHostNs].netns = host_netns;
  p.namespaces[kHostNs].label = "host";
  p.namespaces[kPodNs].netns = pod_netns;
  p.namespaces[kPodNs].label = "pod";
  return p;
}

// What an exclusive-ENI pod reaches through its veth and the node: the node
// itself, Services, the network's host_stack_cidrs (as Terway's ENI-only
// mode), and the metadata service when the node's guard filters it for this
// pod (else the pod would reach it through its own ENI, whose address the
// service attributes to the node, and read the node's role).
std::vector<InetPrefix> VethDestinations(const ExclusiveEniFacts& f, const PodNetwork& pod) {
  std::vector<InetPrefix> out;
  auto add = [&](InetPrefix p) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  if (f.node_ip != Ipv4Addr()) add(Host32(f.node_ip));
  if (f.service_cidr) add(InetPrefix(*f.service_cidr));
  for (const auto& c : pod.host_stack_cidrs) add(InetPrefix(c));
  if (pod.metadata_via_node) add(Host32(f.metadata_ip));
  return out;
}

// A dual-stack shared-ENI pod's IPv6, the twin of its IPv4 wiring: the same
// veth, a /128, a default route via fe80::1 (permanent neighbour), the host's
// /128 route, rules per family (rules are per family in the kernel), and an
// IPv6 default in the ENI's table.
void AddSharedIpv6(WiringPlan& p, const PodNetwork& pod, const PodAddrs::Ipv6& v6, const SharedEniFacts& f,
                   uint32_t table) {
  const std::string veth = HostVethName(pod.container_id);
  NamespacePlan& host = p.namespaces[kHostNs];
  NamespacePlan& ns = p.namespaces[kPodNs];
  // IPv6 forwards only with the global switch on (the kernel has no
  // per-link IPv6 forwarding): every pod packet crosses the node.
  host.sysctls.push_back(Ipv6Conf("all", "forwarding", "1"));
  EnableIpv6(host.sysctls, veth);
  ProxyNeighborPlan proxy;
  proxy.ip = InetAddr(v6.ip);
  proxy.owned = true;
  if (f.eni) {
    const std::string& eni = f.eni->link_name;
    // The ENI needs IPv6 (a link-local to solicit the gateway from) and
    // answers the VPC's neighbour solicitations for the pod's address with
    // its own MAC: proxy_ndp plus one proxy entry per pod below (Linux has
    // no "proxy every routed address" mode for IPv6, unlike proxy_arp).
    // The VPC delivers an address to the ENI that holds it (as for IPv4);
    // proxying makes it work also where the vSwitch resolves it with NDP,
    // and the entry goes with the pod. proxy_delay 0: the kernel would
    // otherwise hold a proxied answer to a multicast solicitation for a
    // random time up to 0.8 s.
    host.sysctls.push_back(Ipv6Conf(eni, "disable_ipv6", "0"));
    host.sysctls.push_back(Ipv6Conf(eni, "proxy_ndp", "1"));
    host.sysctls.push_back({"net/ipv6/neigh/" + eni + "/proxy_delay", "0", std::nullopt});
    host.routes.push_back(DefaultVia6(v6.gateway, eni, table));
    proxy.dev = eni;
  }
  host.routes.push_back(LinkRoute6(v6.ip, veth));
  host.rules.push_back({kToPodRulePriority, std::nullopt, Host128(v6.ip), netlink::kMainTable, true});
  host.rules.push_back({kFromPodRulePriority, Host128(v6.ip), std::nullopt, table, true});
  host.proxy_neighbors.push_back(proxy);

  // lo too: the pod's packets to its own address loop through it, and a
  // device with IPv6 off drops them.
  ns.sysctls.push_back(Ipv6Conf("lo", "disable_ipv6", "0"));
  EnableIpv6(ns.sysctls, pod.ifname);
  ns.addresses.push_back({pod.ifname, Host128(v6.ip), /*nodad=*/true});
  ns.routes.push_back(DefaultVia6(PodGatewayV6(), pod.ifname, netlink::kMainTable));
  ns.neighbors.push_back(GatewayNeighbor(pod.ifname, veth, InetAddr(PodGatewayV6())));
  p.report.ipv6 = CniReportPlan::Ipv6{Host128(v6.ip), InetAddr(PodGatewayV6())};
}

// A dual-stack exclusive-ENI pod's IPv6 lives on its ENI alone: a /128 and a
// default route via the vSwitch's IPv6 gateway. /128 rather than the
// vSwitch prefix: the VPC routes every packet through its gateway anyway, so
// the pod never needs to solicit other addresses of the prefix, and its
// address does not depend on knowing the vSwitch's IPv6 CIDR. Nothing IPv6
// goes through the veth (the node's IPv6 is reached through the VPC), so the
// host is unchanged and the veth carries only link-local IPv6.
void AddExclusiveIpv6(WiringPlan& p, const PodNetwork& pod, const PodAddrs::Ipv6& v6) {
  NamespacePlan& ns = p.namespaces[kPodNs];
  ns.sysctls.push_back(Ipv6Conf("lo", "disable_ipv6", "0"));
  EnableIpv6(ns.sysctls, pod.ifname);
  // Our default route is the pod's only IPv6 route: router advertisements
  // on the ENI must not add another (or SLAAC addresses the VPC never gave).
  ns.sysctls.push_back(Ipv6Conf(pod.ifname, "accept_ra", "0"));
  ns.addresses.push_back({pod.ifname, Host128(v6.ip), /*nodad=*/true});
  ns.routes.push_back(DefaultVia6(v6.gateway, pod.ifname, netlink::kMainTable));
  p.report.ipv6 = CniReportPlan::Ipv6{Host128(v6.ip), InetAddr(v6.gateway)};
}

}  // namespace

std::string DescribePod(const PodNetwork& pod) {
  return fmt::format("pod {}/{} (container {}, IP {})", pod.pod_namespace, pod.pod_name, pod.container_id,
                     pod.ip.ip);
}

Result<PodAddrs> ParsePodAddrs(const PodNetwork& pod, const std::string& mode) {
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  if (!ip.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{}: IP '{}' is not IPv4: the {} datapath wires IPv4 only; check the allocation in the "
                  "daemon's state",
                  DescribePod(pod), pod.ip.ip, mode);
  }
  auto mac = MacAddr::Parse(pod.ip.eni_mac);
  if (!mac.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{}: ENI {} has no valid MAC ('{}'): the ENI's link is found by MAC; check the allocation "
                  "in the daemon's state",
                  DescribePod(pod), pod.ip.eni_id, pod.ip.eni_mac);
  }
  PodAddrs out{*ip, *mac};
  if (pod.ipv6) {
    auto v6 = Ipv6Addr::Parse(pod.ipv6->ip);
    if (!v6.ok() || *v6 == Ipv6Addr() || IsLinkLocal(*v6) || v6->bytes()[0] == 0xff ||
        *v6 == Ipv6Addr::Parse("::1").value()) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "{}: IPv6 '{}' is not a unicast address of the VPC (a pod's IPv6 comes from its ENI's "
                    "vSwitch IPv6 CIDR); check the allocation in the daemon's state",
                    DescribePod(pod), pod.ipv6->ip);
    }
    auto gw = Ipv6Addr::Parse(pod.ipv6->gateway);
    if (!gw.ok() || *gw == Ipv6Addr() || gw->bytes()[0] == 0xff) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "{}: ENI {} has no valid IPv6 gateway ('{}'); check the metadata service's "
                    "network/interfaces/macs/{}/ipv6-gateway",
                    DescribePod(pod), pod.ip.eni_id, pod.ipv6->gateway, pod.ip.eni_mac);
    }
    out.ipv6 = PodAddrs::Ipv6{*v6, *gw};
  }
  return out;
}

bool IsLinkLocal(const Ipv6Addr& a) { return a.bytes()[0] == 0xfe && (a.bytes()[1] & 0xc0) == 0x80; }

Status ValidatePodNetwork(const PodNetwork& pod) {
  if (pod.container_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "pod network without container id");
  if (pod.netns.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "container {}: no network namespace path given", pod.container_id);
  }
  TERWAY_TRY_CTX(netlink::ValidateLinkName(pod.ifname), "interface name of container " + pod.container_id);
  return Ok();
}

WiringPlan PlanSharedEniPod(const PodNetwork& pod, const PodAddrs& a, const SharedEniFacts& f) {
  const int mtu = f.mtu > 0 ? f.mtu : kDefaultVethMtu;
  const std::string veth = HostVethName(pod.container_id);
  WiringPlan p = TwoNamespaces(f.host_netns, pod.netns);
  NamespacePlan& host = p.namespaces[kHostNs];
  NamespacePlan& ns = p.namespaces[kPodNs];
  const uint32_t table = f.eni ? EniTableId(f.eni->ifindex) : 0;

  // The host: the ENI, its table, forwarding, the pod's veth, route and rules.
  host.sysctls.push_back({"net/ipv4/ip_forward", "1", std::nullopt});
  if (f.eni) {
    LinkPlan eni;
    eni.name = f.eni->link_name;
    eni.mtu = f.mtu > 0 ? f.mtu : 0;
    host.links.push_back(eni);
    // - ip_forward (above): the host routes every pod packet between its
    //   veth and an ENI; without forwarding they are dropped on arrival.
    // - rp_filter=2 (loose) on the ENI: the VPC may hand a pod's packets to
    //   another ENI of the node than the one that owns the IP (while an IP
    //   moves); strict filtering would drop those silently.
    // - conf/all/rp_filter: the kernel filters with max(all, dev), so a
    //   strict (1) `all` would make the ENI strict too: lowered to 2 only
    //   when it is 1. Not 0, which would switch filtering off on every link
    //   whose own value is 0. So no link of the node is strict: the
    //   anti-spoofing table (anti_spoof.h) is what stops a pod forging its
    //   source, not rp_filter.
    // - No proxy_arp: the pod reaches 169.254.1.1 through a permanent
    //   neighbour, and the VPC delivers pod IPs to the ENI by its MAC.
    host.sysctls.push_back({"net/ipv4/conf/all/rp_filter", "2", std::string("1")});
    host.sysctls.push_back({"net/ipv4/conf/" + f.eni->link_name + "/rp_filter", "2", std::nullopt});
    RoutePlan def;
    def.dst = Default4();
    def.table = table;
    def.dev = f.eni->link_name;
    def.via = InetAddr(f.eni->gateway);
    // onlink: the ENI carries no address, so the kernel has no connected
    // route saying the gateway is reachable on it; onlink says "it is".
    def.onlink = true;
    host.routes.push_back(def);
  } else {
    p.complete = false;
  }
  host.links.push_back(HostVeth(pod, a.ip, pod.ifname, mtu));
  host.routes.push_back(LinkRoute(a.ip, veth));
  // "to pod lookup main" before every "from pod lookup <ENI table>": traffic
  // between two pods of the node matches both and must stay on the node.
  host.rules.push_back({kToPodRulePriority, std::nullopt, Host32(a.ip), netlink::kMainTable, true});
  host.rules.push_back({kFromPodRulePriority, Host32(a.ip), std::nullopt, table, true});

  // The pod: its end of the veth, its /32, the gateway behind a permanent
  // neighbour, the default route via it (the link route first: the next hop
  // must be reachable when the default route is added).
  ns.links.push_back(Loopback());
  ns.links.push_back(VethPeer(pod.ifname, mtu));
  ns.addresses.push_back({pod.ifname, Host32(a.ip), false});
  ns.routes.push_back(LinkRoute(PodGateway(), pod.ifname));
  RoutePlan def;
  def.dst = Default4();
  def.dev = pod.ifname;
  def.via = InetAddr(PodGateway());
  ns.routes.push_back(def);
  ns.neighbors.push_back(GatewayNeighbor(pod.ifname, veth));

  p.report.interfaces = {{kHostNs, veth, false}, {kPodNs, pod.ifname, true}};
  p.report.ip = Host32(a.ip);
  p.report.gateway = InetAddr(PodGateway());
  p.report.ip_interface = 1;
  if (a.ipv6) AddSharedIpv6(p, pod, *a.ipv6, f, table);
  return p;
}

WiringPlan PlanExclusiveEniPod(const PodNetwork& pod, const PodAddrs& a, const ExclusiveEniFacts& f) {
  const int mtu = f.mtu > 0 ? f.mtu : kDefaultVethMtu;
  const std::string veth = HostVethName(pod.container_id);
  WiringPlan p = TwoNamespaces(f.host_netns, pod.netns);
  NamespacePlan& host = p.namespaces[kHostNs];
  NamespacePlan& ns = p.namespaces[kPodNs];

  // The host: the veth for node and Service traffic, the route to the pod,
  // forwarding (Service traffic DNATed by kube-proxy to a pod elsewhere).
  host.links.push_back(HostVeth(pod, a.ip, f.pod_veth_name, mtu));
  host.sysctls.push_back({"net/ipv4/ip_forward", "1", std::nullopt});
  host.routes.push_back(LinkRoute(a.ip, veth));

  // The pod: its ENI as ifname, configured as on a VM with this ENI.
  LinkPlan eni;
  eni.kind = LinkKind::kMovedByMac;
  eni.name = pod.ifname;
  eni.mac = a.eni_mac;
  eni.home_ns = kHostNs;
  eni.parked_name = ParkedEniLinkName(pod.ip.eni_id);
  eni.mtu = f.mtu > 0 ? f.mtu : 0;
  eni.owned = true;
  ns.links.push_back(eni);
  ns.links.push_back(Loopback());
  ns.links.push_back(VethPeer(f.pod_veth_name, mtu));
  if (f.vswitch) {
    ns.addresses.push_back({pod.ifname, InetPrefix(InetAddr(a.ip), f.vswitch->cidr.prefix_len()), false});
    // The gateway is on the ENI's connected subnet: a plain default route.
    RoutePlan def;
    def.dst = Default4();
    def.dev = pod.ifname;
    def.via = InetAddr(f.vswitch->gateway);
    ns.routes.push_back(def);
  } else {
    p.complete = false;
  }
  ns.routes.push_back(LinkRoute(PodGateway(), f.pod_veth_name));
  for (const auto& dst : VethDestinations(f, pod)) {
    RoutePlan r;
    r.dst = dst;
    r.dev = f.pod_veth_name;
    r.via = InetAddr(PodGateway());
    // The pod IP lives on the ENI, not on the veth: say which source the pod
    // uses towards the node, so replies come back to the pod.
    r.src = InetAddr(a.ip);
    ns.routes.push_back(r);
  }
  ns.neighbors.push_back(GatewayNeighbor(f.pod_veth_name, veth));

  p.report.interfaces = {{kHostNs, veth, false}, {kPodNs, pod.ifname, true}, {kPodNs, f.pod_veth_name, true}};
  p.report.ip = f.vswitch ? InetPrefix(InetAddr(a.ip), f.vswitch->cidr.prefix_len()) : Host32(a.ip);
  p.report.gateway = f.vswitch ? InetAddr(f.vswitch->gateway) : InetAddr(Ipv4Addr());
  p.report.ip_interface = 1;
  if (a.ipv6) AddExclusiveIpv6(p, pod, *a.ipv6);
  return p;
}

cni::CniResult CniResultFromPlan(const WiringPlan& plan, const std::vector<MacAddr>& macs) {
  cni::CniResult r;
  for (size_t i = 0; i < plan.report.interfaces.size(); ++i) {
    const auto& itf = plan.report.interfaces[i];
    std::string sandbox = itf.in_sandbox ? plan.namespaces[itf.ns].netns : "";
    r.interfaces.push_back({itf.name, i < macs.size() ? macs[i].ToString() : "", sandbox, std::nullopt});
  }
  r.ips.push_back({plan.report.ip.ToString(), plan.report.gateway.ToString(), plan.report.ip_interface});
  cni::Route def;
  def.dst = "0.0.0.0/0";
  def.gw = plan.report.gateway.ToString();
  r.routes.push_back(def);
  if (const auto& v6 = plan.report.ipv6) {
    r.ips.push_back({v6->ip.ToString(), v6->gateway.ToString(), plan.report.ip_interface});
    cni::Route def6;
    def6.dst = "::/0";
    def6.gw = v6->gateway.ToString();
    r.routes.push_back(def6);
  }
  return r;
}

}  // namespace terway::datapath
