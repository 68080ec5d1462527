#include "datapath/ebpf_eni.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "datapath/pod_shaping.h"
#include "datapath/wiring_planner.h"
#include "ebpf/attach.h"
#include "netlink/handle.h"

namespace terway::datapath {

using netlink::Handle;

// ---- pure parts ----

Result<VirtualType> ParseVirtualType(std::string_view text) {
  std::string t(text);
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t.empty() || t == "veth") return VirtualType::kVeth;
  if (t == "ipvlan" || t == "datapathv2") return VirtualType::kEbpf;
  return Errorf(ErrorCode::kInvalidArgument,
                "eniip_virtual_type {:?} is not supported: use Veth, IPVlan or Datapathv2", std::string(text));
}

const char* VirtualTypeName(VirtualType t) {
  switch (t) {
    case VirtualType::kVeth: return "veth";
    case VirtualType::kEbpf: return "ebpf";
    case VirtualType::kUnknown: break;
  }
  return "unknown";
}

ebpf::Endpoint EndpointFor(Ipv4Addr pod_ip, const EndpointFacts& f, bool shaped) {
  ebpf::Endpoint ep;
  ep.ip = pod_ip;
  ep.host_ifindex = f.host_ifindex;
  ep.eni_ifindex = f.eni_ifindex;
  ep.gateway = f.gateway;
  ep.pod_mac = f.pod_mac;
  ep.host_mac = f.host_mac;
  ep.shaped = shaped;
  return ep;
}

std::string DescribeEndpointDifference(const ebpf::Endpoint& have, const ebpf::Endpoint& want) {
  std::vector<std::string> d;
  auto field = [&](const char* name, const std::string& h, const std::string& w) {
    if (h != w) d.push_back(fmt::format("{} {}, want {}", name, h, w));
  };
  field("ip", have.ip.ToString(), want.ip.ToString());
  field("host_ifindex", std::to_string(have.host_ifindex), std::to_string(want.host_ifindex));
  field("eni_ifindex", std::to_string(have.eni_ifindex), std::to_string(want.eni_ifindex));
  field("gateway", have.gateway.ToString(), want.gateway.ToString());
  field("pod_mac", have.pod_mac.ToString(), want.pod_mac.ToString());
  field("host_mac", have.host_mac.ToString(), want.host_mac.ToString());
  field("shaped", have.shaped ? "true" : "false", want.shaped ? "true" : "false");
  return Join(d, "; ");
}

std::vector<ebpf::StackPrefix> NodeStackPrefixes(const NodeStackFacts& f) {
  std::vector<ebpf::StackPrefix> out;
  if (f.service_cidr) out.push_back({*f.service_cidr, ebpf::StackPrefixKind::kService});
  for (const auto& c : f.host_stack_cidrs) out.push_back({c, ebpf::StackPrefixKind::kHostCidr});
  for (const auto& ip : f.node_ips) out.push_back({Ipv4Cidr(ip, 32), ebpf::StackPrefixKind::kNode});
  std::sort(out.begin(), out.end());
  // One entry per prefix (the LPM trie has one value per key): the first
  // kind in sort order wins, which is deterministic.
  out.erase(std::unique(out.begin(), out.end(),
                        [](const ebpf::StackPrefix& a, const ebpf::StackPrefix& b) { return a.prefix == b.prefix; }),
            out.end());
  return out;
}

// ---- the datapath ----

namespace {

Result<Handle> OpenHost(const std::string& netns) {
  if (netns.empty()) return Handle::Open();
  return Handle::OpenIn(netns);
}

}  // namespace

NodeStackFacts KeepLearnedStackPrefixes(NodeStackFacts configured, const std::vector<ebpf::StackPrefix>& in_map) {
  for (const auto& p : in_map) {
    if (p.kind == ebpf::StackPrefixKind::kService && !configured.service_cidr) {
      configured.service_cidr = p.prefix;
    } else if (p.kind == ebpf::StackPrefixKind::kHostCidr &&
               std::find(configured.host_stack_cidrs.begin(), configured.host_stack_cidrs.end(), p.prefix) ==
                   configured.host_stack_cidrs.end()) {
      configured.host_stack_cidrs.push_back(p.prefix);
    }
  }
  return configured;
}

NodeStackFacts WithPodStackPrefixes(NodeStackFacts known, const PodNetwork& pod) {
  if (pod.service_cidr && !known.service_cidr) known.service_cidr = pod.service_cidr;
  for (const auto& c : pod.host_stack_cidrs) {
    if (std::find(known.host_stack_cidrs.begin(), known.host_stack_cidrs.end(), c) == known.host_stack_cidrs.end()) {
      known.host_stack_cidrs.push_back(c);
    }
  }
  return known;
}

EbpfEniDatapath::EbpfEniDatapath(EbpfEniOptions options)
    : opt_(std::move(options)), stack_(opt_.stack), veth_(opt_.shared) {}

Status EbpfEniDatapath::LoadPrograms() {
  {
    std::lock_guard l(load_mu_);
    if (programs_.load() != nullptr) return Ok();
    TERWAY_TRY(LoadProgramsLocked());
  }
  // Outside the load lock: the hook may ask others (the policy controller)
  // for work that ends in calls into us.
  if (opt_.loaded) opt_.loaded();
  return Ok();
}

Status EbpfEniDatapath::LoadProgramsLocked() {
  ebpf::DatapathPrograms* p = opt_.programs;
  if (p == nullptr) {
    if (!opt_.load) return MakeError(ErrorCode::kInternal, "eBPF datapath built without programs or a loader");
    TERWAY_ASSIGN_OR_RETURN_CTX(owned_, opt_.load(), "loading the eBPF datapath's programs");
    p = owned_.get();
    for (const auto& pin : p->replaced_pins()) {
      log::Warn("eBPF datapath: pinned map {} had another layout and was replaced by an empty one; the pods' "
                "Ensure refills it",
                pin);
    }
    log::Info("eBPF datapath loaded, maps pinned in {}", p->pin_dir());
  }
  // What must reach the stack is in the map before any entry can send a
  // packet past it. The only deletion of stale prefixes: nobody else writes
  // the map before the programs are published (Ensure waits for the load).
  // Pins an earlier run left hold what it learned from pods' networks.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto in_map, p->ListStackPrefixes(), "reading the eBPF datapath's host-stack prefixes");
  NodeStackFacts known;
  {
    std::lock_guard sl(stack_mu_);
    known = stack_ = KeepLearnedStackPrefixes(std::move(stack_), in_map);
  }
  auto want = NodeStackPrefixes(known);
  TERWAY_TRY_CTX(p->SyncStackPrefixes(want), "writing the eBPF datapath's host-stack prefixes");
  {
    std::lock_guard sl(stack_mu_);
    stack_in_map_.insert(want.begin(), want.end());
  }
  // Entries an earlier run wrote, by veth: Ensure finds a pod's former
  // addresses through them (ebpf_entry_index.h).
  TERWAY_ASSIGN_OR_RETURN_CTX(auto entries, p->ListEndpoints(), "reading the eBPF datapath's endpoint entries");
  std::map<int, std::string> veth_of_ifindex;
  if (!entries.empty()) {
    TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.shared.host_netns));
    TERWAY_ASSIGN_OR_RETURN_CTX(auto links, host.ListLinks(), "listing the node's links for the eBPF entries");
    for (const auto& l : links) veth_of_ifindex[l.index] = l.name;
  }
  entries_.Reset(entries, veth_of_ifindex);
  programs_.store(p);
  return Ok();
}

Result<ebpf::DatapathPrograms*> EbpfEniDatapath::Programs() {
  TERWAY_TRY(LoadPrograms());
  return programs_.load();
}

Status EbpfEniDatapath::LearnStackPrefixes(ebpf::DatapathPrograms& programs, const PodNetwork& pod) {
  // Not the pod's ENI's primary IP: on a secondary ENI that address is
  // handed to a pod like the others (the node configures none on the ENI),
  // so it is no node address; the primary ENI's is the node's primary IP.
  std::vector<ebpf::StackPrefix> missing;
  {
    std::lock_guard l(stack_mu_);
    stack_ = WithPodStackPrefixes(std::move(stack_), pod);
    for (const auto& p : NodeStackPrefixes(stack_)) {
      if (!stack_in_map_.count(p)) missing.push_back(p);
    }
  }
  // Add-only, idempotent, no lock: a concurrent Ensure that finds a prefix
  // not yet marked writes it too, so neither writes its entry before the
  // prefixes it needs are in the map.
  for (const auto& p : missing) {
    TERWAY_TRY_CTX(programs.AddStackPrefix(p), "writing the eBPF datapath's host-stack prefixes");
  }
  if (!missing.empty()) {
    std::lock_guard l(stack_mu_);
    stack_in_map_.insert(missing.begin(), missing.end());
  }
  return Ok();
}

Result<VirtualType> EbpfEniDatapath::FlavourOf(const PodNetwork& pod) {
  if (pod.virtual_type != VirtualType::kUnknown) return pod.virtual_type;
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  ebpf::DatapathPrograms* programs = Loaded();
  // Not loaded: no map of ours holds an entry (terwayd loads at start when
  // an earlier run left pins).
  if (!ip.ok() || programs == nullptr) return VirtualType::kVeth;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto ep, programs->GetEndpoint(*ip),
                              "reading the eBPF endpoint entry of " + DescribePod(pod));
  return ep ? VirtualType::kEbpf : VirtualType::kVeth;
}

Result<ebpf::Endpoint> EbpfEniDatapath::WantedEndpoint(const PodNetwork& pod, const cni::CniResult& wired,
                                                       Handle& host) {
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "eBPF"));
  // The CNI result of the veth wiring: [0] the host veth, [1] the pod's eth0.
  if (wired.interfaces.size() < 2) {
    return MakeError(ErrorCode::kInternal, "the veth wiring reported no pod interface for " + DescribePod(pod));
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(MacAddr pod_mac, MacAddr::Parse(wired.interfaces[1].mac),
                              "the MAC of the pod's " + pod.ifname);
  const std::string veth = HostVethName(pod.container_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(netlink::Link host_link, host.GetLink(veth), "the host veth " + veth);
  TERWAY_ASSIGN_OR_RETURN_CTX(netlink::Link eni, veth_.EniLink(host, a.eni_mac),
                              "the host link of ENI " + pod.ip.eni_id + " (MAC " + a.eni_mac.ToString() + ")");
  TERWAY_ASSIGN_OR_RETURN_CTX(EniNetwork net, opt_.shared.eni_network(pod.ip.eni_id, a.eni_mac),
                              "looking up the vSwitch gateway of ENI " + pod.ip.eni_id);
  EndpointFacts f{host_link.index, host_link.mac, pod_mac, eni.index, net.gateway};
  return EndpointFor(a.ip, f, HasBandwidthLimit(pod));
}

Result<ebpf::Endpoint> EbpfEniDatapath::EndpointOfWiring(const PodNetwork& pod, const WiredPod& wired) {
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "eBPF"));
  // The CNI result of the veth wiring: [0] the host veth, [1] the pod's eth0.
  if (wired.result.interfaces.size() < 2) {
    return MakeError(ErrorCode::kInternal, "the veth wiring reported no pod interface for " + DescribePod(pod));
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(MacAddr pod_mac, MacAddr::Parse(wired.result.interfaces[1].mac),
                              "the MAC of the pod's " + pod.ifname);
  EndpointFacts f{wired.host_veth_index, wired.host_veth_mac, pod_mac, wired.eni_index, wired.gateway};
  return EndpointFor(a.ip, f, HasBandwidthLimit(pod));
}

Result<cni::CniResult> EbpfEniDatapath::Ensure(const PodNetwork& pod) {
  TERWAY_ASSIGN_OR_RETURN(VirtualType flavour, FlavourOf(pod));
  // The veth wiring first, in both flavours: it is what carries the pod's
  // traffic whenever the programs do not (policed pods, Services, a
  // detached program).
  auto veth_wired = veth_.EnsureWired(pod);
  if (!veth_wired.ok() && flavour == VirtualType::kEbpf) FallBackToTheStack(pod);
  TERWAY_ASSIGN_OR_RETURN(WiredPod wired, std::move(veth_wired));
  if (flavour != VirtualType::kEbpf) return std::move(wired.result);
  const std::string who = DescribePod(pod);
  auto fast = [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN(ebpf::DatapathPrograms * programs, Programs());
    // What the wiring found (host veth, ENI link, gateway) and its handle
    // into the host namespace: no second lookup of any.
    TERWAY_ASSIGN_OR_RETURN(ebpf::Endpoint ep, EndpointOfWiring(pod, wired));
    Handle& host = wired.host;
    // Before anything gives it the fast path: a pod a chain isolates must be
    // policed (in the policy map, or the map not authoritative). Once so it
    // stays so while isolated: the map's writer drops only pods no chain
    // isolates, and marks the map authoritative only after writing them all.
    TERWAY_TRY(AdmitToFastPath(*programs, pod, ep.ip));
    // What must reach the stack is in the map before the pod's entry can
    // send anything past it.
    TERWAY_TRY(LearnStackPrefixes(*programs, pod));
    // The entry before the pod's program: without it the program drops the
    // pod's packets as spoofed. The entry is Ensure's alone (its SHAPED flag
    // too); whether policy isolates the pod is another map's.
    TERWAY_TRY_CTX(programs->UpsertEndpoint(ep), "writing its eBPF endpoint entry");
    TERWAY_TRY(DropFormerEntries(*programs, HostVethName(pod.container_id), ep, who));
    // The ENI's program stays attached once there (see Remove); every pod
    // of the ENI asks again, so the record spares them reading its filters.
    TERWAY_TRY_CTX(eni_attached_.Attach(host, ep.eni_ifindex, ebpf::Hook::kEni, *programs),
                   "attaching terway_from_eni to ENI " + pod.ip.eni_id);
    // Also on a bandwidth-limited pod: its SHAPED entry sends all its
    // packets to the stack with TC_ACT_UNSPEC, which lets qos's IFB redirect
    // (a later filter on this hook) see them, after anti-spoofing here.
    TERWAY_TRY_CTX(ebpf::Attach(host, ep.host_ifindex, ebpf::Hook::kPodVeth, *programs),
                   "attaching terway_from_pod to " + HostVethName(pod.container_id));
    return Ok();
  };
  Status st = fast();
  if (!st.ok()) {
    // The pod is left wired for the stack only (works, slower); the caller
    // decides whether that is a failed ADD (it is: it undoes) or a repair
    // to retry.
    FallBackToTheStack(pod);
    return std::move(st).error().Wrap("eBPF datapath of " + who);
  }
  return std::move(wired.result);
}

Status EbpfEniDatapath::DropFormerEntries(ebpf::DatapathPrograms& programs, const std::string& veth,
                                          const ebpf::Endpoint& ep, const std::string& who) {
  for (const FormerEntry& former : entries_.Record(veth, ep.host_ifindex, ep.ip)) {
    const std::string what =
        fmt::format("the eBPF endpoint entry of {}, a former address of {}", former.ip.ToString(), who);
    TERWAY_ASSIGN_OR_RETURN_CTX(auto have, programs.GetEndpoint(former.ip), "reading " + what);
    // Pointing at the pod's veth, or at the one it had when recorded (since
    // rebuilt: a changed address changes the veth's alias). Anything else
    // was written since for another pod (its own veth): not this pod's to
    // delete. No Ensure of that pod runs between the read and the delete:
    // the pool gives an address to one pod at a time, and restart repair
    // (where a recorded address can differ from the wired one) runs its
    // pods one after another.
    if (have && (have->host_ifindex == ep.host_ifindex || have->host_ifindex == former.host_ifindex)) {
      TERWAY_TRY_CTX(programs.DeleteEndpoint(former.ip), "deleting " + what);
      log::Info("eBPF datapath: deleted {} (it now has {})", what, ep.ip.ToString());
    }
    entries_.Forget(former.ip);
  }
  return Ok();
}

void EbpfEniDatapath::FallBackToTheStack(const PodNetwork& pod) {
  // Fail closed: an entry or program of an earlier Ensure could carry a
  // stale SHAPED flag past the stack's shaping. The program goes first (a
  // program without its entry drops the pod's packets as spoofed), then the
  // entry (without it the ENI's program hands the pod's packets to the
  // stack). Best effort: what fails is logged, and Check reports it.
  if (auto host = OpenHost(opt_.shared.host_netns); host.ok()) {
    if (auto link = host->GetLink(HostVethName(pod.container_id)); link.ok()) {
      if (Status d = ebpf::Detach(*host, link->index); !d.ok()) {
        log::Error("eBPF datapath: detaching the program of {} after a failed Ensure: {}", DescribePod(pod),
                   d.error().ToString());
      }
    }
  }
  ebpf::DatapathPrograms* programs = Loaded();
  auto ip = Ipv4Addr::Parse(pod.ip.ip);
  if (programs == nullptr || !ip.ok()) return;
  if (Status d = programs->DeleteEndpoint(*ip); !d.ok()) {
    log::Error("eBPF datapath: deleting the entry of {} after a failed Ensure: {}", DescribePod(pod),
               d.error().ToString());
  } else {
    entries_.Forget(*ip);
  }
}

Status EbpfEniDatapath::Remove(const PodNetwork& pod) {
  // Whatever the flavour: an entry for the address must not outlive the
  // pod (its next holder may be a veth pod). Its host veth's filter goes
  // with the veth. The ENI's program stays: other pods may use the ENI, and
  // telling would race a concurrent Ensure; on an ENI without eBPF pods it
  // hands every packet to the stack (eni_to_stack), as if absent.
  if (auto ip = Ipv4Addr::Parse(pod.ip.ip); ip.ok() && Loaded() != nullptr) {
    TERWAY_TRY_CTX(Loaded()->DeleteEndpoint(*ip),
                   "deleting the eBPF endpoint entry of container " + pod.container_id);
    entries_.Forget(*ip);
  }
  return veth_.Remove(pod);
}

Result<cni::CniResult> EbpfEniDatapath::Check(const PodNetwork& pod) {
  TERWAY_ASSIGN_OR_RETURN(VirtualType flavour, FlavourOf(pod));
  if (flavour != VirtualType::kEbpf) return veth_.Check(pod);
  TERWAY_TRY(ValidatePodNetwork(pod));
  TERWAY_ASSIGN_OR_RETURN(PodAddrs a, ParsePodAddrs(pod, "eBPF"));
  const std::string who = DescribePod(pod);
  std::vector<std::string> problems;
  auto wired = veth_.Check(pod);
  if (!wired.ok() && wired.error().code != ErrorCode::kNotFound) return wired;  // not damage: as it is
  if (!wired.ok()) problems.push_back(wired.error().ToString());
  TERWAY_ASSIGN_OR_RETURN_CTX(ebpf::DatapathPrograms * programs, Programs(), "checking " + who);
  TERWAY_ASSIGN_OR_RETURN(Handle host, OpenHost(opt_.shared.host_netns));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto have, programs->GetEndpoint(a.ip), "checking " + who);
  if (!have) {
    problems.push_back("its eBPF endpoint entry (" + a.ip.ToString() + ") is missing");
  } else if (wired.ok()) {
    auto want = WantedEndpoint(pod, *wired, host);
    if (!want.ok()) {
      problems.push_back(want.error().ToString());
    } else if (std::string d = DescribeEndpointDifference(*have, *want); !d.empty()) {
      problems.push_back("its eBPF endpoint entry differs: " + d);
    }
  }
  // Every eBPF pod has both programs, a bandwidth-limited one too.
  auto inspect = [&](int ifindex, ebpf::Hook hook, const std::string& link) {
    auto s = ebpf::Inspect(host, ifindex, hook, *programs);
    // Repair's Ensure must attach again what is not there, not trust the record.
    if (hook == ebpf::Hook::kEni && !(s.ok() && s->state == ebpf::AttachState::kCurrent)) {
      eni_attached_.Forget(ifindex);
    }
    if (!s.ok()) {
      problems.push_back("inspecting " + link + ": " + s.error().ToString());
    } else if (s->state != ebpf::AttachState::kCurrent) {
      problems.push_back(fmt::format("{} on {} is {}{}", ebpf::HookName(hook), link,
                                     s->state == ebpf::AttachState::kMissing ? "not attached" : "stale",
                                     s->detail.empty() ? "" : " (" + s->detail + ")"));
    }
  };
  const std::string veth = HostVethName(pod.container_id);
  if (auto l = host.GetLink(veth); l.ok()) inspect(l->index, ebpf::Hook::kPodVeth, veth);
  if (auto eni = veth_.EniLink(host, a.eni_mac); eni.ok()) inspect(eni->index, ebpf::Hook::kEni, "ENI " + pod.ip.eni_id);
  if (!problems.empty()) {
    return Error(ErrorCode::kNotFound, Join(problems, "; ") + "; the daemon's repair (Ensure) rebuilds it")
        .Wrap("checking " + who);
  }
  return wired;
}

Status EbpfEniDatapath::GuardAdopted(const PodNetwork& pod) { return veth_.GuardAdopted(pod); }

Result<std::vector<std::string>> EbpfEniDatapath::CollectGarbage(const std::set<std::string>& live_container_ids,
                                                                 const std::set<Ipv4Addr>& adopted_ips) {
  TERWAY_ASSIGN_OR_RETURN(auto removed, veth_.CollectGarbage(live_container_ids, adopted_ips));
  ebpf::DatapathPrograms* programs = Loaded();
  if (programs == nullptr) return removed;
  // After the veth GC: the pod links left are the live pods'.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, veth_.ListPodLinks(), "collecting eBPF endpoint entries");
  std::set<Ipv4Addr> live = adopted_ips;
  for (const auto& l : links) {
    if (live_container_ids.count(l.container_id)) live.insert(l.pod_ip);
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto entries, programs->ListEndpoints(), "collecting eBPF endpoint entries");
  for (const auto& ep : entries) {
    if (live.count(ep.ip)) continue;
    TERWAY_TRY_CTX(programs->DeleteEndpoint(ep.ip), "deleting the eBPF endpoint entry of " + ep.ip.ToString());
    entries_.Forget(ep.ip);
    removed.push_back(fmt::format("eBPF endpoint entry {} (host ifindex {})", ep.ip.ToString(), ep.host_ifindex));
  }
  return removed;
}

}  // namespace terway::datapath
