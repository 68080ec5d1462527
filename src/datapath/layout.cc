#include "datapath/layout.h"

#include "netlink/names.h"

namespace terway::datapath {

uint32_t EniTableId(int eni_ifindex) { return kEniTableBase + static_cast<uint32_t>(eni_ifindex); }

std::string HostVethName(std::string_view container_id) {
  return netlink::HashedLinkName(kHostVethPrefix, container_id);
}

std::string PodLinkAlias(const Ipv4Addr& pod_ip, std::string_view container_id) {
  return std::string(kPodAliasPrefix) + pod_ip.ToString() + ":" + std::string(container_id);
}

namespace {
std::optional<PodLinkOwner> ParseOwnerAlias(std::string_view alias, std::string_view prefix) {
  if (alias.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = alias.substr(prefix.size());
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon + 1 >= rest.size()) return std::nullopt;
  auto ip = Ipv4Addr::Parse(rest.substr(0, colon));
  if (!ip.ok()) return std::nullopt;
  return PodLinkOwner{*ip, std::string(rest.substr(colon + 1))};
}
}  // namespace

std::optional<PodLinkOwner> ParsePodLinkAlias(std::string_view alias) {
  return ParseOwnerAlias(alias, kPodAliasPrefix);
}

std::string ParkedEniLinkName(const std::string& eni_id) { return netlink::HashedLinkName("eni", eni_id); }

std::string PodIfbName(std::string_view container_id) { return netlink::HashedLinkName("tb", container_id); }

std::string PodIfbAlias(const Ipv4Addr& pod_ip, std::string_view container_id) {
  return std::string(kPodIfbAliasPrefix) + pod_ip.ToString() + ":" + std::string(container_id);
}

std::optional<PodLinkOwner> ParsePodIfbAlias(std::string_view alias) {
  return ParseOwnerAlias(alias, kPodIfbAliasPrefix);
}

cni::CniResult BuildCniResult(const PodWiring& w) {
  cni::CniResult r;
  cni::Interface host{w.host_veth, w.host_mac.ToString(), "", std::nullopt};
  cni::Interface pod{w.pod_ifname, w.pod_mac.ToString(), w.netns, std::nullopt};
  r.interfaces = {host, pod};
  r.ips.push_back({w.pod_ip.ToString() + "/32", kPodGateway, 1});
  cni::Route def;
  def.dst = "0.0.0.0/0";
  def.gw = kPodGateway;
  r.routes.push_back(def);
  return r;
}

}  // namespace terway::datapath
