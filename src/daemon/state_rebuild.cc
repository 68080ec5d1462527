#include "daemon/state_rebuild.h"

#include <dirent.h>
#include <openssl/sha.h>
#include <sys/socket.h>

#include <map>

#include "common/ip.h"
#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "k8s/reporter.h"
#include "netlink/handle.h"
#include "netlink/netns.h"

namespace terway::daemon {

std::string RebuiltContainerId(const std::string& ip) { return "rebuilt-" + ip; }

std::string UpstreamHostVethName(const std::string& ns, const std::string& name, const std::string& ifname) {
  const std::string input = ns + "." + name + (ifname == "eth0" ? "" : ifname);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "cali";
  for (int i = 0; out.size() < 15; ++i) {
    out.push_back(kHex[digest[i / 2] >> ((i % 2) ? 0 : 4) & 0xf]);
  }
  return out;
}

std::vector<ApiPodAddress> ApiPodAddresses(const std::vector<k8s::Pod>& pods, const std::string& node_name) {
  std::vector<ApiPodAddress> out;
  for (const auto& p : pods) {
    if (p.node_name != node_name || p.host_network) continue;
    // A finished pod's sandbox is gone or going: its address is no longer
    // held (the kubelet's DEL, or pod GC, returns it).
    if (p.phase == "Succeeded" || p.phase == "Failed") continue;
    std::set<std::string> ips;
    auto add = [&](const std::string& s) {
      for (const auto& part : Split(s, ',', /*skip_empty=*/true)) {
        std::string ip(Trim(part));
        if (Ipv4Addr::Parse(ip).ok()) ips.insert(ip);
      }
    };
    add(p.pod_ip);
    for (const auto& ip : p.pod_ips) add(ip);
    if (auto a = p.metadata.annotations.find(k8s::kPodIpsAnnotation); a != p.metadata.annotations.end()) {
      add(a->second);
    }
    for (const auto& ip : ips) out.push_back({p.metadata.namespace_, p.metadata.name, p.metadata.uid, ip});
  }
  return out;
}

std::vector<Adoption> PlanRebuild(const std::vector<store::AllocationRecord>& allocations,
                                  const std::vector<HostSandbox>& sandboxes,
                                  const std::vector<ApiPodAddress>& api_pods, const std::string& datapath_mode,
                                  std::vector<std::string>* conflicts) {
  std::set<std::string> known;
  std::set<std::string> known_containers;
  for (const auto& a : allocations) {
    known.insert(a.ip);
    known_containers.insert(a.container_id);
  }
  std::map<std::string, const ApiPodAddress*> api_by_ip;
  for (const auto& p : api_pods) {
    auto [it, fresh] = api_by_ip.emplace(p.ip, &p);
    if (!fresh && (it->second->namespace_ != p.namespace_ || it->second->name != p.name) && conflicts) {
      conflicts->push_back(fmt::format("pods {}/{} and {}/{} both report address {}", it->second->namespace_,
                                       it->second->name, p.namespace_, p.name, p.ip));
    }
  }
  std::vector<Adoption> out;
  std::set<std::string> adopted;
  for (const auto& s : sandboxes) {
    if (known.count(s.ip)) continue;
    if (!s.container_id.empty() && known_containers.count(s.container_id)) continue;
    if (!adopted.insert(s.ip).second) {
      if (conflicts) conflicts->push_back(fmt::format("address {} is configured in two sandboxes (host veth {})",
                                                      s.ip, s.host_veth));
      continue;
    }
    Adoption a;
    a.ip = s.ip;
    ipam::PodIdentity& pod = a.pod;
    pod.ifname = "eth0";
    pod.netns = s.netns;
    const ApiPodAddress* api = nullptr;
    if (auto it = api_by_ip.find(s.ip); it != api_by_ip.end()) api = it->second;
    if (api != nullptr) {
      pod.namespace_ = api->namespace_;
      pod.name = api->name;
      pod.uid = api->uid;
    }
    if (!s.container_id.empty()) {
      // Our own wiring: the runtime's container id is in the veth's alias,
      // so its DEL and GC find the record as if the ADD had written it.
      pod.container_id = s.container_id;
      pod.datapath_mode = datapath_mode;
      pod.origin = api != nullptr ? store::kOriginApi : store::kOriginRuntime;
      if (pod.name.empty()) pod.name = s.container_id;  // a sandbox the API never had
    } else {
      // Another plugin's wiring (upstream Terway): not ours to verify or
      // redo; removed as it is (its host veth) when the pod goes.
      pod.container_id = RebuiltContainerId(s.ip);
      pod.origin = store::kOriginRebuilt;
      pod.host_veth = s.host_veth;
      if (pod.name.empty()) pod.name = s.host_veth;
    }
    a.found_by = api != nullptr ? "kernel+api" : "kernel";
    out.push_back(std::move(a));
  }
  for (const auto& p : api_pods) {
    if (known.count(p.ip) || !adopted.insert(p.ip).second) continue;
    // A live pod says it holds the address but no wiring of it was found
    // here (its sandbox is being re-created, or lives where we cannot see):
    // the address stays its own until the pod is gone.
    Adoption a;
    a.ip = p.ip;
    a.pod.namespace_ = p.namespace_;
    a.pod.name = p.name;
    a.pod.uid = p.uid;
    a.pod.ifname = "eth0";
    a.pod.container_id = RebuiltContainerId(p.ip);
    a.pod.origin = store::kOriginRebuilt;
    a.found_by = "api";
    out.push_back(std::move(a));
  }
  return out;
}

namespace {

bool IsCandidateHostVeth(const netlink::Link& l) {
  if (l.kind != "veth" || !l.peer_in_other_netns) return false;
  if (datapath::ParsePodLinkAlias(l.alias)) return true;
  return l.name.rfind("cali", 0) == 0 && l.name.size() == 15;
}

std::vector<std::string> NamedNetnsPaths(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    out.push_back(dir + "/" + name);
  }
  closedir(d);
  return out;
}

}  // namespace

Result<std::vector<HostSandbox>> DiscoverHostSandboxes(const std::string& netns_dir) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto h, netlink::Handle::Open(), "discovering pod wiring on the node");
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, h.ListLinks(), "listing the node's links");
  TERWAY_ASSIGN_OR_RETURN_CTX(auto routes, h.ListRoutes(AF_INET), "listing the node's routes");
  std::map<int, HostSandbox> by_index;  // host veth ifindex -> sandbox
  std::map<int, netlink::Link> veth_of;  // host veth ifindex -> the veth
  for (const auto& l : links) {
    if (!IsCandidateHostVeth(l)) continue;
    HostSandbox s;
    s.host_veth = l.name;
    if (auto owner = datapath::ParsePodLinkAlias(l.alias)) {
      s.ip = owner->pod_ip.ToString();
      s.container_id = owner->container_id;
    }
    by_index[l.index] = s;
    veth_of[l.index] = l;
  }
  // Another plugin's veth names its pod only by the /32 route through it.
  for (const auto& r : routes) {
    auto it = by_index.find(r.oif);
    if (it == by_index.end() || !r.dst.addr.is_v4() || r.dst.prefix_len != 32) continue;
    if (it->second.ip.empty()) it->second.ip = r.dst.addr.ToString();
  }
  // The pod's namespace: the named one holding the veth's peer. Indexes
  // repeat across namespaces (every fresh pod namespace has eth0 at 2, and
  // a namespace wired to another node or bridge namespace has peers at the
  // same numbers as ours), so the namespace must be the one our veth's
  // IFLA_LINK_NETNSID names; the indexes must then match both ways. (Once,
  // without the id, a node adopted its pod into another node's sandbox
  // whose indexes coincided, and its repair put the address there.)
  std::map<int, std::string> netns_of;
  for (const auto& path : NamedNetnsPaths(netns_dir)) {
    if (!netlink::NetnsExists(path)) continue;
    auto id = h.NetnsIdOf(path);
    if (!id.ok() || *id < 0) continue;  // none of our links has its peer there
    auto ph = netlink::Handle::OpenIn(path);
    if (!ph.ok()) continue;
    auto plinks = ph->ListLinks();
    if (!plinks.ok()) continue;
    for (const auto& pl : *plinks) {
      if (pl.kind != "veth" || !pl.peer_in_other_netns) continue;
      for (const auto& [host_index, veth] : veth_of) {
        if (veth.peer_netnsid == *id && veth.peer_index == pl.index && pl.peer_index == host_index) {
          netns_of[host_index] = path;
        }
      }
    }
  }
  std::vector<HostSandbox> out;
  for (auto& [index, s] : by_index) {
    if (s.ip.empty()) continue;  // a veth we cannot attribute to any address
    if (auto n = netns_of.find(index); n != netns_of.end()) s.netns = n->second;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace terway::daemon
