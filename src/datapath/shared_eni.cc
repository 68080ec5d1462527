#include "datapath/shared_eni.h"

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <set>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "datapath/pod_shaping.h"
#include "datapath/wiring_engine.h"
#include "datapath/wiring_planner.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetAddr;
using netlink::InetPrefix;

namespace {

Result<Handle> OpenHost(const std::string& netns) {
  if (netns.empty()) return Handle::Open();
  return Handle::OpenIn(netns);
}

// A rule at one of our priorities for a single IPv6 address: the IP it is for.
std::optional<Ipv6Addr> PodRuleIpv6(const netlink::Rule& r) {
  if (r.priority == kToPodRulePriority && r.dst && !r.src && r.dst->prefix_len == 128 && !r.dst->addr.is_v4()) {
    return r.dst->addr.v6();
  }
  if (r.priority == kFromPodRulePriority && r.src && !r.dst && r.src->prefix_len == 128 &&
      !r.src->addr.is_v4()) {
    return r.src->addr.v6();
  }
  return std::nullopt;
}

// The sources a pod may send with from its host veth: its addresses.
std::vector<InetAddr> PodSources(const PodAddrs& a) {
  std::vector<InetAddr> out{InetAddr(a.ip)};
  if (a.ipv6) out.push_back(InetAddr(a.ipv6->ip));
  return out;
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

// A dual-stack pod's IPv6 rules and proxy entry outlive it like its IPv4
// rules. Its host route (<IPv6>/128 dev <its veth>, main) does not: the
// kernel deletes it with the veth. So an IPv6 of our rules that no /128
// route of the main table leads to any more belongs to no pod on this node
// (adopted pods' routes count too, whatever their veth's name). Proxy
// entries are collected only for such IPs: others may be an operator's.
Result<std::vector<std::string>> CollectIpv6Rules(Handle& host) {
  TERWAY_ASSIGN_OR_RETURN(auto routes, host.ListRoutes(AF_INET6, netlink::kMainTable));
  std::set<Ipv6Addr> routed;
  for (const auto& r : routes) {
    if (r.dst.prefix_len == 128 && !r.dst.addr.is_v4() && r.oif) routed.insert(r.dst.addr.v6());
  }
  TERWAY_ASSIGN_OR_RETURN(auto rules, host.ListRules(AF_INET6));
  std::vector<std::string> removed;
  std::set<Ipv6Addr> gone;
  for (const auto& r : rules) {
    auto ip = PodRuleIpv6(r);
    if (!ip || routed.count(*ip)) continue;
    TERWAY_TRY_CTX(host.DeleteRuleIfExists(r), "removing rule of vanished pod IPv6 " + ip->ToString());
    removed.push_back(fmt::format("rule priority {} for {} (table {})", r.priority, ip->ToString(), r.table));
    gone.insert(*ip);
  }
  if (gone.empty()) return removed;
  TERWAY_ASSIGN_OR_RETURN(auto proxies, host.ListProxyNeighbors(0, AF_INET6));
  for (const auto& p : proxies) {
    if (!gone.count(p.ip.v6())) continue;
    TERWAY_TRY_CTX(host.DeleteProxyNeighborIfExists(p), "removing proxy neighbour of vanished pod IPv6 " +
                                                             p.ip.ToString());
    removed.push_back(fmt::format("proxy neighbour {} on link #{}", p.ip.ToString(), p.link_index));
  }
  return removed;
}

}  // namespace

SharedEniDatapath::SharedEniDatapath(SharedEniOptions options)
    : opt_(std::move(options)), anti_spoof_(opt_.host_netns, SeedFromPodLinkAliases(opt_.host_netns)) {}

// The facts the plan needs: the ENI's host link (by MAC) and its vSwitch
// gateway, validated against the vSwitch CIDR when the lookup knows it.
Result<SharedEniFacts> SharedEniDatapath::LookUpFacts(const PodNetwork& pod, const PodAddrs& a, Handle& h) {
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
  auto link = EniLink(h, a.eni_mac);
  if (!link.ok()) {
    return std::move(link).error().Wrap(fmt::format(
        "finding the host link of ENI {} (MAC {}): is the ENI attached to this instance? "
        "(an attached ENI shows up as a link with its MAC)",
        pod.ip.eni_id, a.eni_mac.ToString()));
  }
  SharedEniFacts f;
  f.host_netns = opt_.host_netns;
  f.mtu = opt_.mtu;
  f.eni = SharedEniFacts::Eni{link->name, link->index, net.gateway};
  return f;
}

Result<cni::CniResult> SharedEniDatapath::Ensure(const PodNetwork& pod) {
  TERWAY_ASSIGN_OR_RETURN(WiredPod wired, EnsureWired(pod));
  return std::move(wired.result);
}

Result<WiredPod> SharedEniDatapath::EnsureWired(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "shared-ENI"));
  const std::string who = DescribePod(pod);
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(SharedEniFacts facts, LookUpFacts(pod, a, host), "setting up " + who);
  const WiringPlan plan = PlanSharedEniPod(pod, a, facts);
  const std::string veth = HostVethName(pod.container_id);

  ApplyReport rep;
  auto wire = [&]() -> Result<cni::CniResult> {
    // The element before either end is up, so the veth never carries a
    // packet the table has no element for (the table drops those anyway:
    // "tw*" is guarded without one); after the link exists, so garbage
    // collection, which drops elements of missing links, cannot take it.
    TERWAY_TRY(ApplyPlan(plan, rep, [&]() -> Status {
      TERWAY_TRY_CTX(anti_spoof_.Allow(veth, PodSources(a)), "anti-spoofing element of " + veth);
      return Ok();
    }));
    TERWAY_TRY(EnsurePodShaping(*shaper_, host, pod, a.ip, rep.created_link));
    return CniResultFromPlan(plan, rep.report_macs);
  };
  auto result = wire();
  if (!result.ok()) {
    // A failed ADD leaves nothing half-wired (the runtime retries afresh).
    if (rep.created_link) {
      Status undo = Remove(pod);
      if (!undo.ok()) log::Warn("undoing partial setup of {}: {}", who, undo.error().ToString());
    }
    return std::move(result).error().Wrap("wiring " + who);
  }
  // The plan reports the host veth first (PlanSharedEniPod).
  const auto& report = plan.report.interfaces;
  if (report.empty() || report[0].ns != kHostNs || report[0].name != veth || rep.report_indexes.empty()) {
    return MakeError(ErrorCode::kInternal, "the wiring of " + who + " reported no host veth");
  }
  return WiredPod{std::move(*result), std::move(host), rep.report_indexes[0], rep.report_macs[0],
                  facts.eni->ifindex, facts.eni->gateway};
}

Status SharedEniDatapath::Remove(const PodNetwork& pod) {
  // DEL must succeed when the pod is already gone: the runtime calls it again
  // after a crash, after the netns was destroyed (which destroys the veth
  // pair and its host route with it), and a failing DEL blocks the pod's
  // cleanup forever. So the plan is made without the ENI's facts (the ENI
  // may be gone too), and the engine never opens a gone netns.
  if (pod.container_id.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "removing a pod network without container id");
  }
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  SharedEniFacts facts;
  facts.host_netns = opt_.host_netns;
  PodAddrs addrs{ip.ok() ? *ip : Ipv4Addr(), MacAddr()};
  if (pod.ipv6) {
    // Only the address matters for removal (its rules and proxy entry).
    if (auto v6 = Ipv6Addr::Parse(pod.ipv6->ip); v6.ok()) {
      addrs.ipv6 = PodAddrs::Ipv6{*v6, Ipv6Addr()};
    } else {
      log::Warn("container {}: ignoring unparsable IPv6 '{}' on remove", pod.container_id, pod.ipv6->ip);
    }
  }
  WiringPlan plan = PlanSharedEniPod(pod, addrs, facts);
  NamespacePlan& host_plan = plan.namespaces[kHostNs];
  if (!ip.ok()) {
    // Without an IP there are no rules we could have made for it.
    if (!pod.ip.ip.empty()) {
      log::Warn("container {}: ignoring unparsable IP '{}' on remove", pod.container_id, pod.ip.ip);
    }
    std::erase_if(host_plan.rules, [](const RulePlan& r) {
      return (r.from && r.from->addr.is_v4()) || (r.to && r.to->addr.is_v4());
    });
  }
  // An adopted pod's host veth has another plugin's name.
  std::string veth = HostVethName(pod.container_id);
  if (!pod.host_veth.empty()) {
    for (auto& l : host_plan.links) {
      if (l.kind == LinkKind::kVeth) l.name = veth = pod.host_veth;
    }
  }
  // The ENI's table (one default route) is not the pod's: other pods may use
  // the ENI, and telling that safely would race a concurrent Ensure for
  // another pod on the same ENI, which installs the table route before its
  // rule. An unused table is harmless (no rule points to it) and vanishes
  // with the ENI's link when the ENI is detached.
  TERWAY_TRY_CTX(RemovePlan(plan), "removing the wiring of container " + pod.container_id);
  // After the veth: it never exists without its element (a veth without
  // one drops everything, but a live pod should not notice its DEL early).
  TERWAY_TRY_CTX(anti_spoof_.Forget(veth), "removing the anti-spoofing element of container " + pod.container_id);
  TERWAY_TRY(RemovePodShaping(*shaper_, host, pod.container_id, pod.ip.ip));
  return Ok();
}

Result<cni::CniResult> SharedEniDatapath::Check(const PodNetwork& pod) {
  TERWAY_TRY(ValidatePodNetwork(pod));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "shared-ENI"));
  const std::string who = DescribePod(pod);
  auto fail = [&](std::string what) {
    return Error(ErrorCode::kNotFound, std::move(what) + "; the daemon's repair (Ensure) rebuilds it")
        .Wrap("checking " + who);
  };
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.host_netns));
  auto facts = LookUpFacts(pod, a, host);
  if (!facts.ok()) {
    if (facts.error().code == ErrorCode::kNotFound) return fail(facts.error().ToString());
    return std::move(facts).error().Wrap("checking " + who);
  }
  const WiringPlan plan = PlanSharedEniPod(pod, a, *facts);
  std::vector<MacAddr> macs;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto diffs, DiffPlan(plan, &macs), "checking " + who);
  std::vector<std::string> problems;
  if (!diffs.empty()) problems.push_back(JoinDifferences(diffs));
  const std::string veth = HostVethName(pod.container_id);
  for (const auto& src : PodSources(a)) {
    Status guard = anti_spoof_.Check(veth, src);
    if (!guard.ok()) problems.push_back(guard.error().message);
  }
  Status shaping = shaper_->Check(host, PodShapingLinksFor(host, pod, a.ip), pod.bandwidth);
  if (!shaping.ok()) problems.push_back("bandwidth: " + shaping.error().ToString());
  if (!problems.empty()) return fail(Join(problems, "; "));
  return CniResultFromPlan(plan, macs);
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

Status SharedEniDatapath::GuardAdopted(const PodNetwork& pod) { return GuardAdoptedPod(anti_spoof_, pod); }

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
  TERWAY_ASSIGN_OR_RETURN(auto v6, CollectIpv6Rules(host));
  removed.insert(removed.end(), v6.begin(), v6.end());
  TERWAY_ASSIGN_OR_RETURN(auto ifbs, CollectPodIfbs(host, live_container_ids));
  removed.insert(removed.end(), ifbs.begin(), ifbs.end());
  TERWAY_ASSIGN_OR_RETURN(auto edt, shaper_->CollectGarbage(live_ips));
  removed.insert(removed.end(), edt.begin(), edt.end());
  TERWAY_ASSIGN_OR_RETURN(auto elems, anti_spoof_.CollectGarbage());
  removed.insert(removed.end(), elems.begin(), elems.end());
  return removed;
}

}  // namespace terway::datapath
