#include "daemon/state_rebuild.h"

#include <dirent.h>
#include <openssl/sha.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>

#include "common/ip.h"
#include "common/log.h"
#include "daemon/metrics.h"
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

namespace {

// "" when text is not an IPv6 address; its canonical form otherwise (the
// API, the kernel and the cloud may spell one address differently).
std::string CanonicalIpv6(std::string_view text) {
  auto a = Ipv6Addr::Parse(Trim(text));
  return a.ok() ? a->ToString() : std::string();
}

}  // namespace

std::vector<ApiPodAddress> ApiPodAddresses(const std::vector<k8s::Pod>& pods, const std::string& node_name) {
  std::vector<ApiPodAddress> out;
  for (const auto& p : pods) {
    if (p.node_name != node_name || p.host_network) continue;
    // A finished pod's sandbox is gone or going: its address is no longer
    // held (the kubelet's DEL, or pod GC, returns it).
    if (p.phase == "Succeeded" || p.phase == "Failed") continue;
    // In the order reported: status first (what the kubelet got from the
    // CNI ADD), then Terway's annotation ("v4,v6").
    std::vector<std::string> v4s;
    std::string v6;
    auto add = [&](const std::string& s) {
      for (const auto& part : Split(s, ',', /*skip_empty=*/true)) {
        std::string ip(Trim(part));
        if (Ipv4Addr::Parse(ip).ok()) {
          if (std::find(v4s.begin(), v4s.end(), ip) == v4s.end()) v4s.push_back(ip);
        } else if (v6.empty()) {
          v6 = CanonicalIpv6(ip);
        }
      }
    };
    add(p.pod_ip);
    for (const auto& ip : p.pod_ips) add(ip);
    if (auto a = p.metadata.annotations.find(k8s::kPodIpsAnnotation); a != p.metadata.annotations.end()) {
      add(a->second);
    }
    for (size_t i = 0; i < v4s.size(); ++i) {
      out.push_back({p.metadata.namespace_, p.metadata.name, p.metadata.uid, v4s[i], i == 0 ? v6 : ""});
    }
  }
  return out;
}

std::vector<Adoption> PlanRebuild(const std::vector<store::AllocationRecord>& allocations,
                                  const std::vector<HostSandbox>& sandboxes,
                                  const std::vector<ApiPodAddress>& api_pods, const std::string& datapath_mode,
                                  std::vector<std::string>* conflicts) {
  auto report = [&](std::string line) {
    if (conflicts) conflicts->push_back(std::move(line));
  };
  std::set<std::string> known;
  std::set<std::string> known_containers;
  std::map<std::string, const store::AllocationRecord*> known_v6;
  for (const auto& a : allocations) {
    known.insert(a.ip);
    known_containers.insert(a.container_id);
    if (std::string v6 = CanonicalIpv6(a.ipv6); !v6.empty()) known_v6[v6] = &a;
  }
  std::map<std::string, const ApiPodAddress*> api_by_ip;
  for (const auto& p : api_pods) {
    auto [it, fresh] = api_by_ip.emplace(p.ip, &p);
    if (!fresh && (it->second->namespace_ != p.namespace_ || it->second->name != p.name)) {
      report(fmt::format("pods {}/{} and {}/{} both report address {}", it->second->namespace_, it->second->name,
                         p.namespace_, p.name, p.ip));
    }
  }
  // An IPv6 goes to its first claimant; a later one is adopted without it
  // (its IPv4 stays its own), and the operator is told.
  std::map<std::string, std::string> ipv6_claimed_by;
  auto claim_ipv6 = [&](Adoption& a, const std::string& ipv6, const std::string& who) {
    if (ipv6.empty()) return;
    if (auto k = known_v6.find(ipv6); k != known_v6.end()) {
      report(fmt::format("IPv6 {} held by {} is recorded for container {} (IPv4 {}); {} is adopted without it", ipv6,
                         who, k->second->container_id, k->second->ip, a.ip));
      return;
    }
    auto [it, fresh] = ipv6_claimed_by.emplace(ipv6, who);
    if (!fresh) {
      report(fmt::format("IPv6 {} is held by {} and by {}; adopted for the first, {} without it", ipv6, it->second,
                         who, a.ip));
      return;
    }
    a.ipv6 = ipv6;
  };
  std::vector<Adoption> out;
  std::set<std::string> adopted;
  for (const auto& s : sandboxes) {
    if (known.count(s.ip)) continue;
    if (!s.container_id.empty() && known_containers.count(s.container_id)) continue;
    if (!adopted.insert(s.ip).second) {
      report(fmt::format("address {} is configured in two sandboxes (host veth {})", s.ip, s.host_veth));
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
    // The sandbox's IPv6 is the one its pod uses; the API's stands in when
    // the kernel shows none (a sandbox whose IPv6 route is gone).
    const std::string kernel_v6 = CanonicalIpv6(s.ipv6);
    const std::string api_v6 = api != nullptr ? CanonicalIpv6(api->ipv6) : "";
    if (!kernel_v6.empty() && !api_v6.empty() && kernel_v6 != api_v6) {
      report(fmt::format("pod {}/{} reports IPv6 {} but its sandbox (host veth {}) has {}; the sandbox's is adopted",
                         api->namespace_, api->name, api_v6, s.host_veth, kernel_v6));
    }
    claim_ipv6(a, kernel_v6.empty() ? api_v6 : kernel_v6,
               fmt::format("the sandbox of {} (host veth {})", s.ip, s.host_veth));
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
    claim_ipv6(a, CanonicalIpv6(p.ipv6), fmt::format("pod {}/{} ({})", p.namespace_, p.name, p.ip));
    out.push_back(std::move(a));
  }
  // Adoptions with a known IPv6 first: one without records its slot's pair
  // as the pool holds it, which must not be an IPv6 that a sandbox still
  // to be adopted holds (by then every such IPv6 sits in its own slot).
  std::stable_partition(out.begin(), out.end(), [](const Adoption& a) { return !a.ipv6.empty(); });
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

// The one global IPv6 /128 in a pod's namespace (a shared-ENI pod's eth0,
// an exclusive ENI): "" when there is none, or more than one to choose from.
std::string SandboxGlobalIpv6(const std::string& netns) {
  auto h = netlink::Handle::OpenIn(netns);
  if (!h.ok()) return "";  // gone meanwhile: the kernel shows no IPv6 for it
  auto addrs = h->ListAddresses(0, AF_INET6);
  if (!addrs.ok()) return "";
  std::string found;
  for (const auto& a : *addrs) {
    if (a.local.addr.is_v4() || a.scope != 0 || a.local.prefix_len != 128) continue;  // link-local, host
    if (!found.empty()) return "";
    found = a.local.addr.ToString();
  }
  return found;
}

}  // namespace

Result<std::vector<HostSandbox>> DiscoverHostSandboxes(const std::string& netns_dir, bool ipv6) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto h, netlink::Handle::Open(), "discovering pod wiring on the node");
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, h.ListLinks(), "listing the node's links");
  TERWAY_ASSIGN_OR_RETURN_CTX(auto routes, h.ListRoutes(AF_INET), "listing the node's routes");
  std::map<int, HostSandbox> by_index;  // host veth ifindex -> sandbox
  for (const auto& l : links) {
    if (!IsCandidateHostVeth(l)) continue;
    HostSandbox s;
    s.host_veth = l.name;
    if (auto owner = datapath::ParsePodLinkAlias(l.alias)) {
      s.ip = owner->pod_ip.ToString();
      s.container_id = owner->container_id;
    }
    by_index[l.index] = s;
  }
  // Another plugin's veth names its pod only by the /32 route through it.
  for (const auto& r : routes) {
    auto it = by_index.find(r.oif);
    if (it == by_index.end() || !r.dst.addr.is_v4() || r.dst.prefix_len != 32) continue;
    if (it->second.ip.empty()) it->second.ip = r.dst.addr.ToString();
  }
  // The pod's namespace: the named one this namespace knows by the id the
  // veth names for its peer (indexes alone repeat across namespaces: every
  // pod's eth0 is index 2, and other nodes' veths reuse our numbers).
  std::map<int, std::string> netns_of;
  std::map<int, int> nsid_of;  // host veth index -> its peer's namespace id
  for (const auto& l : links) {
    if (by_index.count(l.index) && l.peer_netnsid >= 0) nsid_of[l.index] = l.peer_netnsid;
  }
  for (const auto& path : NamedNetnsPaths(netns_dir)) {
    if (!netlink::NetnsExists(path)) continue;
    auto id = h.NetnsIdOf(path);
    if (!id.ok() || *id < 0) continue;
    for (const auto& [host_index, nsid] : nsid_of) {
      if (nsid == *id) netns_of[host_index] = path;
    }
  }
  if (ipv6) {
    // The pod's IPv6: the /128 route through its host veth (the datapath's
    // and upstream Terway's way to reach it; read here, in the node's
    // namespace, so it is found also when the pod's namespace is not).
    TERWAY_ASSIGN_OR_RETURN_CTX(auto routes6, h.ListRoutes(AF_INET6), "listing the node's IPv6 routes");
    for (const auto& r : routes6) {
      auto it = by_index.find(r.oif);
      if (it == by_index.end() || r.dst.addr.is_v4() || r.dst.prefix_len != 128) continue;
      if (it->second.ipv6.empty()) it->second.ipv6 = r.dst.addr.ToString();
    }
  }
  std::vector<HostSandbox> out;
  for (auto& [index, s] : by_index) {
    if (s.ip.empty()) continue;  // a veth we cannot attribute to any address
    if (auto n = netns_of.find(index); n != netns_of.end()) s.netns = n->second;
    // No route (an exclusive ENI pod's IPv6 lives on its ENI, in the pod's
    // namespace; or the route was lost): the pod's own address.
    if (ipv6 && s.ipv6.empty() && !s.netns.empty()) s.ipv6 = SandboxGlobalIpv6(s.netns);
    out.push_back(std::move(s));
  }
  return out;
}

void AdoptPlan(ipam::PodAddressSource* addresses, const std::vector<Adoption>& plan, Metrics* metrics) {
  std::vector<Adoption> without_ipv6;
  auto adopt = [&](const Adoption& a) {
    auto adopted = addresses->Adopt(a.pod, a.ip, a.ipv6);
    const std::string who =
        fmt::format("{}{} held by pod {}/{} (container {}, found in {})", a.ip, a.ipv6.empty() ? "" : "/" + a.ipv6,
                    a.pod.namespace_, a.pod.name, a.pod.container_id, a.found_by);
    if (!adopted.ok() && !a.ipv6.empty()) {
      if (adopted.error().code == ErrorCode::kConflict) {
        log::Error("state rebuild: cannot adopt {} with its IPv6: {}; its IPv4 is adopted with the pair the pool "
                   "holds; fix it by hand (delete one of the pods)",
                   who, adopted.error().ToString());
      } else {
        log::Warn("state rebuild: cannot adopt {} with its IPv6: {}; trying its IPv4 alone", who,
                  adopted.error().ToString());
      }
      Adoption v4 = a;
      v4.ipv6.clear();
      without_ipv6.push_back(std::move(v4));
      return;
    }
    if (!adopted.ok()) {
      metrics->Inc("terway_state_rebuild_adoptions_total", {{"source", a.found_by}, {"result", "failed"}});
      // Not an address of our ENIs: the pool cannot hand it out anyway.
      log::Warn("state rebuild: cannot adopt {}: {}", who, adopted.error().ToString());
      return;
    }
    metrics->Inc("terway_state_rebuild_adoptions_total", {{"source", a.found_by}, {"result", "ok"}});
    log::Info("state rebuild: adopted {}{}", who,
              adopted->ipv6.empty() || adopted->ipv6 == a.ipv6 ? "" : " with IPv6 " + adopted->ipv6);
  };
  for (const auto& a : plan) {
    if (!a.ipv6.empty()) adopt(a);
  }
  for (const auto& a : without_ipv6) adopt(a);
  for (const auto& a : plan) {
    if (a.ipv6.empty()) adopt(a);
  }
}

}  // namespace terway::daemon
