#include "datapath/exclusive_eni.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "datapath/pod_shaping.h"
#include "netlink/handle.h"
#include "netlink/names.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetAddr;
using netlink::InetPrefix;

namespace {

constexpr int kDefaultVethMtu = 1500;
constexpr int kScopeLink = 253;  // RT_SCOPE_LINK

struct PodAddrs {
  Ipv4Addr ip;
  MacAddr eni_mac;
};

std::string Who(const PodNetwork& pod) {
  return fmt::format("pod {}/{} (container {}, IP {}, exclusive ENI {})", pod.pod_namespace, pod.pod_name,
                     pod.container_id, pod.ip.ip, pod.ip.eni_id);
}

Result<PodAddrs> ParsePod(const PodNetwork& pod) {
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  if (!ip.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{}: IP '{}' is not IPv4: the exclusive-ENI datapath wires IPv4 only; check the "
                  "allocation in the daemon's state",
                  Who(pod), pod.ip.ip);
  }
  auto mac = MacAddr::Parse(pod.ip.eni_mac);
  if (!mac.ok()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{}: ENI has no valid MAC ('{}'): its link is found by MAC; check the allocation in "
                  "the daemon's state",
                  Who(pod), pod.ip.eni_mac);
  }
  return PodAddrs{*ip, *mac};
}

Status ValidatePodNetwork(const PodNetwork& pod, const std::string& pod_veth) {
  if (pod.container_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "pod network without container id");
  if (pod.netns.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "container {}: no network namespace path given", pod.container_id);
  }
  TERWAY_TRY_CTX(netlink::ValidateLinkName(pod.ifname), "interface name of container " + pod.container_id);
  if (pod.ifname == pod_veth) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "container {}: interface name '{}' is the pod side of the node veth in exclusive-ENI "
                  "mode; use another CNI_IFNAME (eth0)",
                  pod.container_id, pod.ifname);
  }
  return Ok();
}

Result<Handle> OpenHost(const std::string& netns) {
  if (netns.empty()) return Handle::Open();
  return Handle::OpenIn(netns);
}

// Where a link goes back to: the configured host namespace, or the calling
// thread's own (a path opened by the calling thread names its namespace).
std::string HostNetnsPath(const std::string& netns) {
  return netns.empty() ? std::string("/proc/thread-self/ns/net") : netns;
}

Ipv4Addr PodGateway() { return Ipv4Addr::Parse(kPodGateway).value(); }

netlink::Route LinkRoute(Ipv4Addr dst, int oif) {
  netlink::Route r;
  r.dst = InetPrefix::Host(InetAddr(dst));
  r.oif = oif;
  r.scope = kScopeLink;
  return r;
}

netlink::Route ViaVeth(const InetPrefix& dst, int veth, Ipv4Addr pod_ip) {
  netlink::Route r;
  r.dst = dst;
  r.oif = veth;
  r.gateway = InetAddr(PodGateway());
  // The pod IP lives on eth0 (the ENI), not on the veth: say which source
  // the pod uses towards the node, so replies come back to the pod.
  r.src = InetAddr(pod_ip);
  return r;
}

netlink::Route EniDefault(int eni, Ipv4Addr gw) {
  netlink::Route r;
  r.dst = InetPrefix(InetAddr(Ipv4Addr()), 0);
  r.oif = eni;
  r.gateway = InetAddr(gw);
  return r;
}

bool HasRoute(const std::vector<netlink::Route>& routes, const netlink::Route& want) {
  return std::any_of(routes.begin(), routes.end(), [&](const netlink::Route& r) {
    return r.dst == want.dst && r.oif == want.oif && r.gateway == want.gateway &&
           r.type == netlink::RouteType::kUnicast;
  });
}

// What the pod reaches through its veth and the node: the node itself,
// Services, the network's host_stack_cidrs (as Terway's ENI-only mode), and
// the metadata service when the node's guard filters it for this pod.
std::vector<InetPrefix> VethDestinations(const ExclusiveEniOptions& o, const PodNetwork& pod) {
  std::vector<InetPrefix> out;
  auto add = [&](InetPrefix p) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  if (o.node_ip != Ipv4Addr()) add(InetPrefix::Host(InetAddr(o.node_ip)));
  if (o.service_cidr) add(InetPrefix(*o.service_cidr));
  for (const auto& c : pod.host_stack_cidrs) add(InetPrefix(c));
  // Else the pod would reach the metadata service through its own ENI, whose
  // address the service attributes to the node, and read the node's role.
  if (pod.metadata_via_node) add(InetPrefix::Host(InetAddr(o.metadata_ip)));
  return out;
}

// The pod's VPC traffic never crosses the node: it leaves and arrives on the
// pod's own ENI, inside the pod's namespace, so it is shaped there. The
// directions turn around against the host veth's: the ENI's root qdisc sees
// what the pod sends (its egress limit), its ingress hook what the pod
// receives (the ingress limit, through an IFB in the pod's namespace). No
// EDT: the ENI is not a node link. The host veth keeps shaping node and
// Service traffic.
qos::PodShapingLinks EniShapingLinks(const PodNetwork& pod) {
  qos::PodShapingLinks l;
  l.host_veth = pod.ifname;  // the ENI, in the pod
  l.ifb = PodIfbName(pod.container_id);
  l.ifb_alias = PodIfbAlias(Ipv4Addr(), pod.container_id);
  return l;
}

cni::Bandwidth AsSeenByTheEni(const cni::Bandwidth& bw) {
  cni::Bandwidth eni = bw;
  eni.ingress_rate = bw.egress_rate;
  eni.ingress_burst = bw.egress_burst;
  eni.egress_rate = bw.ingress_rate;
  eni.egress_burst = bw.ingress_burst;
  return eni;
}

// What the runtime is told: interfaces [host veth, the ENI as ifname, the
// pod's veth], the pod IP with its vSwitch prefix on the ENI, default route
// via the vSwitch gateway.
cni::CniResult PodResult(const PodNetwork& pod, Ipv4Addr ip, const EniNetwork& net,
                         const netlink::Link& host_veth, const netlink::Link& eni, const netlink::Link& pod_veth) {
  cni::CniResult r;
  r.interfaces = {{host_veth.name, host_veth.mac.ToString(), "", std::nullopt},
                  {eni.name, eni.mac.ToString(), pod.netns, std::nullopt},
                  {pod_veth.name, pod_veth.mac.ToString(), pod.netns, std::nullopt}};
  r.ips.push_back({fmt::format("{}/{}", ip.ToString(), net.vswitch_cidr.prefix_len()), net.gateway.ToString(), 1});
  cni::Route def;
  def.dst = "0.0.0.0/0";
  def.gw = net.gateway.ToString();
  r.routes.push_back(def);
  return r;
}

}  // namespace

std::string ParkedEniLinkName(const std::string& eni_id) { return netlink::HashedLinkName("eni", eni_id); }

ExclusiveEniDatapath::ExclusiveEniDatapath(ExclusiveEniOptions options)
    : opt_(std::move(options)), anti_spoof_(opt_.host_netns, SeedFromPodLinkAliases(opt_.host_netns)) {}

Result<cni::CniResult> ExclusiveEniDatapath::Ensure(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod, opt_.pod_veth_name));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePod(pod));
  const std::string who = Who(pod);
  if (!opt_.eni_network) {
    return MakeError(ErrorCode::kInternal, "exclusive-ENI datapath built without a vSwitch lookup (EniNetworkLookup)");
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(EniNetwork net, opt_.eni_network(pod.ip.eni_id, a.eni_mac),
                              "looking up the vSwitch of " + who);
  if (net.vswitch_cidr.prefix_len() == 0 || !net.vswitch_cidr.Contains(net.gateway) ||
      !net.vswitch_cidr.Contains(a.ip)) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{}: vSwitch CIDR '{}' with gateway {} does not hold the pod IP: the ENI's address "
                  "needs its vSwitch prefix; check the metadata service's network/interfaces/macs/{}/",
                  who, net.vswitch_cidr.ToString(), net.gateway.ToString(), a.eni_mac.ToString());
  }
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "opening the network namespace of " + who);

  // What this call created is undone if a later step fails: an ENI it moved
  // into the pod goes back to the node (where the allocator's release finds
  // it) with the veth; a veth it created for a pod that already had its ENI
  // (a repair) is deleted, and the ENI stays with the pod.
  bool moved_eni = false;
  bool created_veth = false;
  auto wire = [&]() -> Result<cni::CniResult> {
    // 1. The ENI's link into the pod, named as the runtime asked.
    auto eni = ph.GetLinkByMac(a.eni_mac);
    if (!eni.ok()) {
      if (eni.error().code != ErrorCode::kNotFound) return std::move(eni).error();
      auto on_host = host.GetLinkByMac(a.eni_mac);
      if (!on_host.ok()) {
        return std::move(on_host).error().Wrap(fmt::format(
            "finding the link of ENI {} (MAC {}) on the node: is the ENI attached to this instance? (an "
            "attached ENI shows up as a link with its MAC)",
            pod.ip.eni_id, a.eni_mac.ToString()));
      }
      moved_eni = true;
      Status moved = host.MoveToNetns(on_host->index, pod.netns);
      if (!moved.ok() && moved.error().code == ErrorCode::kAlreadyExists) {
        // The pod already has a link of the ENI's node-side name: park the
        // ENI under its own name first (renaming needs the link down).
        if (on_host->admin_up) TERWAY_TRY(host.SetLinkDown(on_host->index));
        TERWAY_TRY(host.SetName(on_host->index, ParkedEniLinkName(pod.ip.eni_id)));
        moved = host.MoveToNetns(on_host->index, pod.netns);
      }
      TERWAY_TRY_CTX(std::move(moved), fmt::format("moving ENI link {} into the pod", on_host->name));
      eni = ph.GetLinkByMac(a.eni_mac);
      if (!eni.ok()) return std::move(eni).error().Wrap("finding the ENI in the pod after moving it");
    }
    if (eni->name != pod.ifname) {
      auto other = ph.GetLink(pod.ifname);
      if (other.ok() && other->index != eni->index) {
        // A leftover of an interrupted ADD (or an earlier sandbox with the
        // same container id): the pod's ifname belongs to its ENI.
        TERWAY_TRY_CTX(ph.DeleteLink(other->index), "removing leftover " + pod.ifname + " in the pod");
      }
      if (eni->admin_up) TERWAY_TRY(ph.SetLinkDown(eni->index));
      TERWAY_TRY_CTX(ph.SetName(eni->index, pod.ifname), "renaming ENI link " + eni->name + " to " + pod.ifname);
      eni = ph.GetLink(pod.ifname);
      if (!eni.ok()) return std::move(eni).error();
    }
    if (opt_.mtu > 0 && eni->mtu != opt_.mtu) TERWAY_TRY(ph.SetMtu(eni->index, opt_.mtu));
    TERWAY_ASSIGN_OR_RETURN(netlink::Link lo, ph.GetLink("lo"));
    if (!lo.admin_up) TERWAY_TRY_CTX(ph.SetLinkUp(lo.index), "bringing up lo in the pod");
    netlink::Address addr;
    addr.link_index = eni->index;
    addr.local = InetPrefix(InetAddr(a.ip), net.vswitch_cidr.prefix_len());
    TERWAY_TRY_CTX(ph.EnsureAddress(addr), "addressing the ENI in the pod");
    if (!eni->admin_up) TERWAY_TRY(ph.SetLinkUp(eni->index));
    // The gateway is on the ENI's connected subnet (address above), so a
    // plain default route works, as on a VM with this ENI.
    TERWAY_TRY_CTX(ph.ReplaceRoute(EniDefault(eni->index, net.gateway)),
                   "default route via the vSwitch gateway " + net.gateway.ToString());

    // 2. The veth for node and Service traffic.
    const int mtu = opt_.mtu > 0 ? opt_.mtu : kDefaultVethMtu;
    const std::string veth = HostVethName(pod.container_id);
    const std::string alias = PodLinkAlias(a.ip, pod.container_id);
    auto hl = host.GetLink(veth);
    if (hl.ok()) {
      auto pl = ph.GetLink(opt_.pod_veth_name);
      bool ours = hl->alias == alias && hl->peer_in_other_netns && pl.ok() && pl->index == hl->peer_index &&
                  pl->kind == "veth";
      if (!ours) {
        TERWAY_TRY_CTX(host.DeleteLinkIfExists(veth), "replacing stale host veth " + veth);
        hl = Errorf(ErrorCode::kNotFound, "{} replaced", veth);
      }
    }
    if (!hl.ok()) {
      if (hl.error().code != ErrorCode::kNotFound) return std::move(hl).error();
      created_veth = true;
      TERWAY_TRY_CTX(ph.DeleteLinkIfExists(opt_.pod_veth_name), "removing leftover " + opt_.pod_veth_name);
      netlink::VethSpec spec;
      spec.name = veth;
      spec.peer_name = opt_.pod_veth_name;
      spec.peer_netns = pod.netns;
      spec.mtu = mtu;
      TERWAY_TRY_CTX(host.CreateVeth(spec), "creating veth " + veth);
      hl = host.GetLink(veth);
      if (!hl.ok()) return std::move(hl).error();
    }
    // Before either end is up, after the link exists: as in the shared-ENI
    // datapath (shared_eni.cc).
    TERWAY_TRY_CTX(anti_spoof_.Allow(veth, {InetAddr(a.ip)}), "anti-spoofing element of " + veth);
    if (hl->alias != alias) TERWAY_TRY(host.SetAlias(hl->index, alias));
    if (hl->mtu != mtu) TERWAY_TRY(host.SetMtu(hl->index, mtu));
    if (!hl->admin_up) TERWAY_TRY(host.SetLinkUp(hl->index));
    TERWAY_ASSIGN_OR_RETURN_CTX(netlink::Link pv, ph.GetLink(opt_.pod_veth_name), "finding the pod's veth");
    if (pv.mtu != mtu) TERWAY_TRY(ph.SetMtu(pv.index, mtu));
    if (!pv.admin_up) TERWAY_TRY(ph.SetLinkUp(pv.index));
    TERWAY_TRY(ph.ReplaceRoute(LinkRoute(PodGateway(), pv.index)));
    netlink::Neighbor n;
    n.link_index = pv.index;
    n.ip = InetAddr(PodGateway());
    n.mac = hl->mac;
    TERWAY_TRY(ph.ReplaceNeighbor(n));
    for (const auto& dst : VethDestinations(opt_, pod)) {
      TERWAY_TRY_CTX(ph.ReplaceRoute(ViaVeth(dst, pv.index, a.ip)), "pod route to " + dst.ToString() + " via the veth");
    }
    TERWAY_TRY(host.ReplaceRoute(LinkRoute(a.ip, hl->index)));
    // Service traffic DNATed by the node's kube-proxy to a pod elsewhere is
    // forwarded by the node.
    TERWAY_TRY_CTX(netlink::SetSysctl(opt_.host_netns, "net/ipv4/ip_forward", "1"),
                   "enabling IPv4 forwarding (net.ipv4.ip_forward)");
    // The pod's bandwidth, on both of its paths: the host veth (node and
    // Service traffic, as for shared pods) and its own ENI (VPC traffic,
    // which bypasses the node).
    TERWAY_TRY(EnsurePodShaping(*shaper_, host, pod, a.ip, created_veth));
    if (HasBandwidthLimit(pod)) {
      TERWAY_TRY_CTX(shaper_->Apply(ph, EniShapingLinks(pod), AsSeenByTheEni(*pod.bandwidth)),
                     "shaping the VPC traffic of " + who + " on its ENI (directions as the ENI sees them)");
    } else if (moved_eni) {
      // Moving a link between namespaces resets its qdiscs: only an IFB an
      // interrupted earlier ADD left in the pod could be there (ADD's fast
      // path, as for a fresh veth).
      TERWAY_TRY_CTX(ph.DeleteLinkIfExists(EniShapingLinks(pod).ifb), "removing a leftover IFB of " + who);
    } else {
      TERWAY_TRY_CTX(shaper_->Remove(ph, EniShapingLinks(pod)), "removing the ENI shaping of " + who);
    }

    return PodResult(pod, a.ip, net, *hl, *eni, pv);
  };
  auto result = wire();
  if (!result.ok()) {
    Status undo = Ok();
    if (moved_eni) {
      undo = Remove(pod);
    } else if (created_veth) {
      undo = host.DeleteLinkIfExists(HostVethName(pod.container_id));
      if (undo.ok()) undo = anti_spoof_.Forget(HostVethName(pod.container_id));
      if (undo.ok()) undo = RemovePodShaping(*shaper_, host, pod.container_id, pod.ip.ip);
    }
    if (!undo.ok()) log::Warn("undoing partial setup of {}: {}", who, undo.error().ToString());
    return std::move(result).error().Wrap("wiring " + who);
  }
  return result;
}

Status ExclusiveEniDatapath::Remove(const PodNetwork& pod) {
  if (pod.container_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "removing a pod network without container id");
  }
  const std::string who = Who(pod);
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  auto mac = MacAddr::Parse(pod.ip.eni_mac);
  // DEL must succeed when the pod is already gone (a runtime calls it again
  // after a crash, after the netns was destroyed). Destroying the netns
  // destroyed the ENI's link with it (a veth, as in vpcsim's fabric) or sent
  // it back to the initial namespace (a physical device): either way there is
  // nothing of ours left to move, and the allocator's detach finishes it.
  if (mac.ok() && !pod.netns.empty() && netlink::NetnsExists(pod.netns)) {
    auto ph = Handle::OpenIn(pod.netns);
    if (!ph.ok() && ph.error().code != ErrorCode::kNotFound) {
      return std::move(ph).error().Wrap("opening the network namespace of " + who + " to take its ENI back");
    }
    if (ph.ok()) {
      auto eni = ph->GetLinkByMac(*mac);
      if (!eni.ok() && eni.error().code != ErrorCode::kNotFound) return std::move(eni).error().Wrap(who);
      if (eni.ok()) {
        // Its shaping: the IFB would stay in the pod's namespace (the ENI's
        // own qdiscs go with the move).
        TERWAY_TRY_CTX(shaper_->Remove(*ph, EniShapingLinks(pod)), "removing the ENI shaping of " + who);
        // Down first: the pod must not send through it once it is ours, and
        // a rename needs it. Renamed in the pod, because its name there
        // (eth0) is taken on the node.
        const std::string parked = ParkedEniLinkName(pod.ip.eni_id);
        if (eni->admin_up) TERWAY_TRY_CTX(ph->SetLinkDown(eni->index), "taking the ENI down in " + who);
        if (eni->name != parked) TERWAY_TRY_CTX(ph->SetName(eni->index, parked), "renaming the ENI of " + who);
        TERWAY_TRY_CTX(ph->MoveToNetns(eni->index, HostNetnsPath(opt_.host_netns)),
                       "moving the ENI of " + who + " back to the node");
      }
    }
  }
  const std::string veth = HostVethName(pod.container_id);
  // The pair, the pod's veth1 and the host route go together.
  TERWAY_TRY_CTX(host.DeleteLinkIfExists(veth), "removing host veth " + veth + " of " + who);
  TERWAY_TRY_CTX(anti_spoof_.Forget(veth), "removing the anti-spoofing element of " + who);
  TERWAY_TRY(RemovePodShaping(*shaper_, host, pod.container_id, pod.ip.ip));
  return Ok();
}

Result<cni::CniResult> ExclusiveEniDatapath::Check(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod, opt_.pod_veth_name));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePod(pod));
  const std::string who = Who(pod);
  auto fail = [&](std::string what) {
    return Error(ErrorCode::kNotFound, std::move(what) + "; the daemon's repair (Ensure) rebuilds it")
        .Wrap("checking " + who);
  };
  if (!opt_.eni_network) return MakeError(ErrorCode::kInternal, "exclusive-ENI datapath without a vSwitch lookup");
  TERWAY_ASSIGN_OR_RETURN_CTX(EniNetwork net, opt_.eni_network(pod.ip.eni_id, a.eni_mac),
                              "looking up the vSwitch of " + who);
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));

  // The node side.
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
  if (!HasRoute(main_routes, LinkRoute(a.ip, hl->index))) {
    return fail(fmt::format("host route {}/32 dev {} is missing", a.ip.ToString(), veth));
  }
  Status shaping = shaper_->Check(host, PodShapingLinksFor(host, pod, a.ip), pod.bandwidth);
  if (!shaping.ok()) return fail("bandwidth: " + shaping.error().ToString());

  // The pod side: its ENI.
  if (!netlink::NetnsExists(pod.netns)) return fail("network namespace " + pod.netns + " is gone");
  TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "checking " + who);
  auto eni = ph.GetLinkByMac(a.eni_mac);
  if (!eni.ok()) return fail(fmt::format("the pod has no link with the ENI's MAC {}", a.eni_mac.ToString()));
  if (eni->name != pod.ifname) return fail(fmt::format("the ENI is '{}' in the pod, not {}", eni->name, pod.ifname));
  if (!eni->admin_up) return fail(pod.ifname + " (the ENI) is down in the pod");
  TERWAY_ASSIGN_OR_RETURN(auto addrs, ph.ListAddresses(eni->index, AF_INET));
  const InetPrefix want_addr(InetAddr(a.ip), net.vswitch_cidr.prefix_len());
  if (std::none_of(addrs.begin(), addrs.end(), [&](const netlink::Address& x) { return x.local == want_addr; })) {
    return fail(fmt::format("{} in the pod lacks {}", pod.ifname, want_addr.ToString()));
  }
  TERWAY_ASSIGN_OR_RETURN(auto pod_routes, ph.ListRoutes(AF_INET, netlink::kMainTable));
  if (!HasRoute(pod_routes, EniDefault(eni->index, net.gateway))) {
    return fail(fmt::format("pod default route via {} dev {} is missing", net.gateway.ToString(), pod.ifname));
  }
  // Its veth.
  auto pv = ph.GetLink(opt_.pod_veth_name);
  if (!pv.ok()) return fail(opt_.pod_veth_name + " is missing in the pod");
  if (!pv->admin_up) return fail(opt_.pod_veth_name + " is down in the pod");
  if (hl->peer_index != pv->index) {
    return fail(fmt::format("{} in the pod is not the peer of host veth {}", opt_.pod_veth_name, veth));
  }
  if (!HasRoute(pod_routes, LinkRoute(PodGateway(), pv->index))) {
    return fail(fmt::format("pod route {} dev {} scope link is missing", kPodGateway, opt_.pod_veth_name));
  }
  for (const auto& dst : VethDestinations(opt_, pod)) {
    if (!HasRoute(pod_routes, ViaVeth(dst, pv->index, a.ip))) {
      return fail(fmt::format("pod route {} via {} dev {} is missing", dst.ToString(), kPodGateway, opt_.pod_veth_name));
    }
  }
  TERWAY_ASSIGN_OR_RETURN(auto neighs, ph.ListNeighbors(pv->index, AF_INET));
  bool neigh = std::any_of(neighs.begin(), neighs.end(), [&](const netlink::Neighbor& n) {
    return n.ip == InetAddr(PodGateway()) && n.permanent && n.mac == hl->mac;
  });
  if (!neigh) {
    return fail(fmt::format("permanent neighbour {} -> {} (host veth MAC) is missing in the pod", kPodGateway,
                            hl->mac.ToString()));
  }
  std::optional<cni::Bandwidth> on_eni;
  if (pod.bandwidth) on_eni = AsSeenByTheEni(*pod.bandwidth);
  Status eni_shaping = shaper_->Check(ph, EniShapingLinks(pod), on_eni);
  if (!eni_shaping.ok()) return fail("bandwidth on the ENI (as the ENI sees it): " + eni_shaping.error().ToString());
  return PodResult(pod, a.ip, net, *hl, *eni, *pv);
}

Status ExclusiveEniDatapath::GuardAdopted(const PodNetwork& pod) {
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

Result<std::vector<std::string>> ExclusiveEniDatapath::CollectGarbage(const std::set<std::string>& live_container_ids,
                                                                      const std::set<Ipv4Addr>& /*adopted_ips*/) {
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, host.ListLinks(), "collecting pod datapath garbage");
  std::vector<std::string> removed;
  std::set<Ipv4Addr> live_ips;
  for (const auto& l : links) {
    auto owner = ParsePodLinkAlias(l.alias);
    if (owner && live_container_ids.count(owner->container_id)) live_ips.insert(owner->pod_ip);
    if (!owner || live_container_ids.count(owner->container_id)) continue;
    TERWAY_TRY_CTX(host.DeleteLinkIfExists(l.name),
                   "removing host veth " + l.name + " of vanished container " + owner->container_id);
    removed.push_back(
        fmt::format("link {} (container {}, IP {})", l.name, owner->container_id, owner->pod_ip.ToString()));
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
