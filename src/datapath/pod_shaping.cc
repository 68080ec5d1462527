#include "datapath/pod_shaping.h"

#include <fmt/format.h>

#include "datapath/layout.h"

namespace terway::datapath {

qos::PodShapingLinks PodShapingLinksFor(std::string_view container_id, const Ipv4Addr& pod_ip) {
  return {HostVethName(container_id), PodIfbName(container_id), PodIfbAlias(pod_ip, container_id), "", pod_ip};
}

qos::PodShapingLinks PodShapingLinksFor(netlink::Handle& host, const PodNetwork& pod, const Ipv4Addr& pod_ip) {
  qos::PodShapingLinks links = PodShapingLinksFor(pod.container_id, pod_ip);
  // EDT's program keys its rates by IPv4 source (bpf/edt_eni_egress.c) and
  // lets IPv6 pass unpaced: a dual-stack pod keeps the IFB path, whose
  // match-all filter and TBF limit every protocol.
  if (pod.ipv6) return links;
  if (!pod.ip.eni_mac.empty()) {
    if (auto mac = MacAddr::Parse(pod.ip.eni_mac); mac.ok()) {
      if (auto eni = host.GetLinkByMac(*mac); eni.ok()) links.egress_device = eni->name;
    }
  }
  return links;
}

bool HasBandwidthLimit(const PodNetwork& pod) {
  return pod.bandwidth && (pod.bandwidth->ingress_rate || pod.bandwidth->egress_rate);
}

Status EnsurePodShaping(qos::BandwidthShaper& shaper, netlink::Handle& host, const PodNetwork& pod,
                        const Ipv4Addr& pod_ip, bool fresh_veth) {
  if (HasBandwidthLimit(pod)) return shaper.Apply(host, PodShapingLinksFor(host, pod, pod_ip), *pod.bandwidth);
  const qos::PodShapingLinks links = PodShapingLinksFor(pod.container_id, pod_ip);
  if (fresh_veth) {
    // A new veth has no qdiscs; only a leftover IFB of an earlier sandbox
    // with this container id could exist, and an EDT rate a departed pod
    // left on this address.
    TERWAY_TRY(shaper.ForgetAddress(pod_ip));
    return host.DeleteLinkIfExists(links.ifb);
  }
  return shaper.Remove(host, links);
}

Status RemovePodShaping(qos::BandwidthShaper& shaper, netlink::Handle& host, std::string_view container_id,
                        const std::string& pod_ip) {
  const std::string ifb = PodIfbName(container_id);
  Status s = host.DeleteLinkIfExists(ifb);
  if (!s.ok()) return std::move(s).error().Wrap("removing ifb " + ifb + " of container " + std::string(container_id));
  if (auto ip = Ipv4Addr::Parse(pod_ip); ip.ok()) TERWAY_TRY(shaper.ForgetAddress(*ip));
  return Ok();
}

Result<std::vector<std::string>> CollectPodIfbs(netlink::Handle& host, const std::set<std::string>& live) {
  TERWAY_ASSIGN_OR_RETURN(auto links, host.ListLinks());
  std::vector<std::string> removed;
  for (const auto& l : links) {
    auto owner = ParsePodIfbAlias(l.alias);
    if (!owner || live.count(owner->container_id)) continue;
    TERWAY_TRY_CTX(host.DeleteLinkIfExists(l.name),
                   "removing ifb " + l.name + " of vanished container " + owner->container_id);
    removed.push_back(fmt::format("ifb {} (container {}, IP {})", l.name, owner->container_id,
                                  owner->pod_ip.ToString()));
  }
  return removed;
}

}  // namespace terway::datapath
