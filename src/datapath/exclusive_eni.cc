#include "datapath/exclusive_eni.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "datapath/pod_shaping.h"
#include "datapath/wiring_engine.h"
#include "datapath/wiring_planner.h"
#include "netlink/handle.h"
#include "netlink/names.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetAddr;
using netlink::InetPrefix;

namespace {

std::string Who(const PodNetwork& pod) {
  return fmt::format("pod {}/{} (container {}, IP {}, exclusive ENI {})", pod.pod_namespace, pod.pod_name,
                     pod.container_id, pod.ip.ip, pod.ip.eni_id);
}

Status ValidateExclusive(const PodNetwork& pod, const std::string& pod_veth) {
  TERWAY_TRY(ValidatePodNetwork(pod));
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

}  // namespace

ExclusiveEniDatapath::ExclusiveEniDatapath(ExclusiveEniOptions options)
    : opt_(std::move(options)), anti_spoof_(opt_.host_netns, SeedFromPodLinkAliases(opt_.host_netns)) {}

ExclusiveEniFacts ExclusiveEniDatapath::Facts() const {
  ExclusiveEniFacts f;
  f.host_netns = opt_.host_netns;
  f.mtu = opt_.mtu;
  f.node_ip = opt_.node_ip;
  f.service_cidr = opt_.service_cidr;
  f.metadata_ip = opt_.metadata_ip;
  f.pod_veth_name = opt_.pod_veth_name;
  return f;
}

// The plan with the ENI's vSwitch (gateway and CIDR, which must hold the pod
// IP: the ENI's address takes the vSwitch prefix).
Result<WiringPlan> ExclusiveEniDatapath::Plan(const PodNetwork& pod, const PodAddrs& a) {
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
  ExclusiveEniFacts f = Facts();
  f.vswitch = ExclusiveEniFacts::Vswitch{net.gateway, net.vswitch_cidr};
  return PlanExclusiveEniPod(pod, a, f);
}

Result<cni::CniResult> ExclusiveEniDatapath::Ensure(const PodNetwork& pod) {
  TERWAY_TRY(ValidateExclusive(pod, opt_.pod_veth_name));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "exclusive-ENI"));
  const std::string who = Who(pod);
  TERWAY_ASSIGN_OR_RETURN(WiringPlan plan, Plan(pod, a));
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "opening the network namespace of " + who);
  const std::string veth = HostVethName(pod.container_id);

  // What this call did is undone if a later step fails: an ENI it moved
  // into the pod goes back to the node (where the allocator's release finds
  // it) with the veth; a veth it created for a pod that already had its ENI
  // (a repair) is deleted, and the ENI stays with the pod.
  ApplyReport rep;
  auto wire = [&]() -> Result<cni::CniResult> {
    // Before either end of the veth is up, after it exists: as in the
    // shared-ENI datapath (shared_eni.cc).
    TERWAY_TRY(ApplyPlan(plan, rep, [&]() -> Status {
      TERWAY_TRY_CTX(anti_spoof_.Allow(veth, {InetAddr(a.ip)}), "anti-spoofing element of " + veth);
      return Ok();
    }));
    // The pod's bandwidth, on both of its paths: the host veth (node and
    // Service traffic, as for shared pods) and its own ENI (VPC traffic,
    // which bypasses the node).
    TERWAY_TRY(EnsurePodShaping(*shaper_, host, pod, a.ip, rep.created_link));
    if (HasBandwidthLimit(pod)) {
      TERWAY_TRY_CTX(shaper_->Apply(ph, EniShapingLinks(pod), AsSeenByTheEni(*pod.bandwidth)),
                     "shaping the VPC traffic of " + who + " on its ENI (directions as the ENI sees them)");
    } else if (rep.moved_link) {
      // Moving a link between namespaces resets its qdiscs: only an IFB an
      // interrupted earlier ADD left in the pod could be there (ADD's fast
      // path, as for a fresh veth).
      TERWAY_TRY_CTX(ph.DeleteLinkIfExists(EniShapingLinks(pod).ifb), "removing a leftover IFB of " + who);
    } else {
      TERWAY_TRY_CTX(shaper_->Remove(ph, EniShapingLinks(pod)), "removing the ENI shaping of " + who);
    }
    return CniResultFromPlan(plan, rep.report_macs);
  };
  auto result = wire();
  if (!result.ok()) {
    Status undo = Ok();
    if (rep.moved_link) {
      undo = Remove(pod);
    } else if (rep.created_link) {
      undo = host.DeleteLinkIfExists(veth);
      if (undo.ok()) undo = anti_spoof_.Forget(veth);
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
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
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
    // Its shaping: the IFB would stay in the pod's namespace (the ENI's own
    // qdiscs go with the move).
    if (ph.ok() && ph->GetLinkByMac(*mac).ok()) {
      TERWAY_TRY_CTX(shaper_->Remove(*ph, EniShapingLinks(pod)), "removing the ENI shaping of " + who);
    }
  }
  // The plan without the vSwitch (removal needs none): the ENI parked back
  // on the node under a name of its own (its name in the pod, eth0, would
  // clash there), then the veth (the pair, the pod's veth1 and the host
  // route go together).
  WiringPlan plan = PlanExclusiveEniPod(pod, PodAddrs{ip.ok() ? *ip : Ipv4Addr(), mac.ok() ? *mac : MacAddr()},
                                        Facts());
  if (!mac.ok()) {
    auto& links = plan.namespaces[kPodNs].links;
    std::erase_if(links, [](const LinkPlan& l) { return l.kind == LinkKind::kMovedByMac; });
  }
  TERWAY_TRY_CTX(RemovePlan(plan), "removing the wiring of " + who);
  const std::string veth = HostVethName(pod.container_id);
  TERWAY_TRY_CTX(anti_spoof_.Forget(veth), "removing the anti-spoofing element of " + who);
  TERWAY_TRY(RemovePodShaping(*shaper_, host, pod.container_id, pod.ip.ip));
  return Ok();
}

Result<cni::CniResult> ExclusiveEniDatapath::Check(const PodNetwork& pod) {
  TERWAY_TRY(ValidateExclusive(pod, opt_.pod_veth_name));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "exclusive-ENI"));
  const std::string who = Who(pod);
  auto fail = [&](std::string what) {
    return Error(ErrorCode::kNotFound, std::move(what) + "; the daemon's repair (Ensure) rebuilds it")
        .Wrap("checking " + who);
  };
  TERWAY_ASSIGN_OR_RETURN(WiringPlan plan, Plan(pod, a));
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  std::vector<MacAddr> macs;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto diffs, DiffPlan(plan, &macs), "checking " + who);
  std::vector<std::string> problems;
  if (!diffs.empty()) problems.push_back(JoinDifferences(diffs));
  const std::string veth = HostVethName(pod.container_id);
  Status guard = anti_spoof_.Check(veth, InetAddr(a.ip));
  if (!guard.ok()) problems.push_back(guard.error().message);
  Status shaping = shaper_->Check(host, PodShapingLinksFor(host, pod, a.ip), pod.bandwidth);
  if (!shaping.ok()) problems.push_back("bandwidth: " + shaping.error().ToString());
  if (netlink::NetnsExists(pod.netns)) {
    TERWAY_ASSIGN_OR_RETURN_CTX(Handle ph, Handle::OpenIn(pod.netns), "checking " + who);
    std::optional<cni::Bandwidth> on_eni;
    if (pod.bandwidth) on_eni = AsSeenByTheEni(*pod.bandwidth);
    Status eni_shaping = shaper_->Check(ph, EniShapingLinks(pod), on_eni);
    if (!eni_shaping.ok()) {
      problems.push_back("bandwidth on the ENI (as the ENI sees it): " + eni_shaping.error().ToString());
    }
  }
  if (!problems.empty()) return fail(Join(problems, "; "));
  return CniResultFromPlan(plan, macs);
}

Status ExclusiveEniDatapath::GuardAdopted(const PodNetwork& pod) { return GuardAdoptedPod(anti_spoof_, pod); }

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
