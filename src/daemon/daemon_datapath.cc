// terwayd's pod datapath: which one wires this node's pods (CreateDatapath:
// shared ENI with or without the eBPF programs, exclusive ENI, or none), the
// sweep of an earlier run's eBPF filters, and the node-wide tables each pod
// GC round puts back (MaintainNodeTables).
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "common/log.h"
#include "common/strings.h"
#include "daemon/daemon.h"
#include "datapath/anti_spoof.h"
#include "datapath/ebpf_eni.h"
#include "datapath/exclusive_eni.h"
#include "datapath/shared_eni.h"
#include "ebpf/attach.h"
#include "ebpf/detect.h"

namespace terway::daemon {

namespace {
// The ENI's gateway and vSwitch, as the metadata service reports them for
// its MAC (the same source the ENI's own configuration comes from on ECS).
// Cached per ENI and MAC: an ENI never changes vSwitch, and asking the
// metadata service on every ADD put two HTTP round trips into pod start.
// Bounded because exclusive mode churns one ENI per pod.
datapath::EniNetworkLookup CachedEniNetworkLookup(cloud::InstanceMetadata* md) {
  struct EniNetworkCache {
    std::mutex mu;
    std::map<std::string, datapath::EniNetwork> by_eni;
  };
  auto cache = std::make_shared<EniNetworkCache>();
  return [md, cache](const std::string& eni_id, const MacAddr& mac) -> Result<datapath::EniNetwork> {
    std::string m = mac.ToString();
    const std::string key = eni_id + "/" + m;
    {
      std::lock_guard<std::mutex> l(cache->mu);
      if (auto it = cache->by_eni.find(key); it != cache->by_eni.end()) return it->second;
    }
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string gw, md->EniGateway(m), "gateway of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string cidr, md->EniVSwitchCidrBlock(m), "vSwitch CIDR of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Addr g, Ipv4Addr::Parse(gw), "gateway of " + eni_id);
    TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Cidr c, Ipv4Cidr::Parse(cidr, true), "vSwitch of " + eni_id);
    std::lock_guard<std::mutex> l(cache->mu);
    if (cache->by_eni.size() >= 256) cache->by_eni.clear();
    cache->by_eni[key] = datapath::EniNetwork{g, c};
    return datapath::EniNetwork{g, c};
  };
}

// The host-stack destinations known at start: eni_conf's Service CIDR, the
// node's primary IP and the host-stack prefixes recorded with its pods.
datapath::NodeStackFacts StackFactsAtStart(const std::optional<Ipv4Cidr>& service_cidr, cloud::InstanceMetadata* md,
                                           store::StateStore* store) {
  datapath::NodeStackFacts stack;
  stack.service_cidr = service_cidr;
  if (auto ip = md->PrivateIpv4(); ip.ok()) {
    if (auto a = Ipv4Addr::Parse(*ip); a.ok()) stack.node_ips.push_back(*a);
  }
  // Only the node's primary IP: a secondary ENI's primary IP is handed to
  // a pod like its other addresses (the node configures none on it).
  if (auto allocs = store->ListAllocations(); allocs.ok()) {
    for (const auto& a : *allocs) {
      for (const auto& c : datapath::ParseRecordedHostStackCidrs(a.host_stack_cidrs)) {
        stack.host_stack_cidrs.push_back(c);
      }
    }
  }
  return stack;
}
}  // namespace

Status Daemon::CreateDatapath() {
  cloud::InstanceMetadata* md = cloud_->metadata();
  datapath::EniNetworkLookup eni_network = CachedEniNetworkLookup(md);
  if (datapath_choice_ == "shared") {
    datapath::SharedEniOptions so;
    so.eni_network = eni_network;
    return CreateSharedEniDatapath(so);
  }
  if (datapath_choice_ == "exclusive") {
    datapath::ExclusiveEniOptions eo;
    eo.eni_network = eni_network;
    eo.service_cidr = config_.service_cidr;
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string node_ip, md->PrivateIpv4(), "reading the node's primary IP");
    TERWAY_ASSIGN_OR_RETURN_CTX(eo.node_ip, Ipv4Addr::Parse(node_ip), "the node's primary IP (private-ipv4)");
    datapath_ = std::make_unique<datapath::ExclusiveEniDatapath>(eo);
  }
  return Ok();
}

// Veth pods, and with the eBPF datapath available also pods whose network
// asks for it; without it, an earlier run's filters are swept all the same.
Status Daemon::CreateSharedEniDatapath(const datapath::SharedEniOptions& so) {
  ebpf_off_ = EbpfUnavailable();
  if (!ebpf_off_.empty()) {
    log::Info("networks asking eniip_virtual_type IPVlan or datapathv2 are served with veth: {}", ebpf_off_);
    DetachEarlierEbpfFilters(nullptr);
    datapath_ = std::make_unique<datapath::SharedEniDatapath>(so);
    return Ok();
  }
  return CreateEbpfEniDatapath(so);
}

std::string Daemon::EbpfUnavailable() {
  if (!opts_.ebpf_datapath) return "the eBPF datapath is off (terwayd --ebpf-datapath=off)";
  if (Status st = ebpf::DetectSupport(); !st.ok()) {
    return "this kernel cannot run the eBPF datapath: " + st.error().message;
  }
  return "";
}

Status Daemon::CreateEbpfEniDatapath(const datapath::SharedEniOptions& so) {
  datapath::EbpfEniOptions eo;
  eo.shared = so;
  ebpf::LoaderOptions lo;
  lo.bpffs = opts_.bpffs;
  eo.load = [lo] { return ebpf::DatapathPrograms::Load(lo); };
  HookPolicyMapWriter(&eo);
  eo.stack = StackFactsAtStart(config_.service_cidr, cloud_->metadata(), store_.get());
  auto dp = std::make_unique<datapath::EbpfEniDatapath>(eo);
  // Loaded at the first pod asking for the mode; now when an earlier run
  // left pins (it served such pods: restart repair must see their entries).
  if (std::error_code ec; std::filesystem::exists(lo.PinDir(), ec)) {
    TERWAY_TRY_CTX(dp->LoadPrograms(), "loading the eBPF datapath (" + lo.PinDir() +
                                           " holds the maps of an earlier run; remove it to start afresh)");
  } else {
    log::Info("eBPF datapath available: loaded (maps pinned in {}) at the first pod whose network asks "
              "eniip_virtual_type IPVlan or datapathv2",
              lo.PinDir());
  }
  DetachEarlierEbpfFilters(dp->Loaded());
  ebpf_datapath_ = dp.get();
  datapath_ = std::move(dp);
  return Ok();
}

void Daemon::HookPolicyMapWriter(datapath::EbpfEniOptions* eo) {
  // The policy map's writer is the policy controller (CreatePolicy wires
  // it), or with policy off this daemon. A fresh map is not synced (every
  // pod policed) until written; the first load asks for that. At start,
  // before CreatePolicy, neither is set: the pins of an earlier run stay
  // as they were, in step with its table, until the first apply.
  eo->loaded = [this] {
    if (ebpf_policy_off_) {
      ebpf_policy_off_->SyncIfDue();
    } else if (PolicyController* policy = policy_view_.load()) {
      policy->SyncDatapath();
    }
  };
  // A pod a chain isolates gets the fast path only while the policy map
  // polices it (the controller's view; none before it exists or with
  // policy off).
  eo->may_isolate = [this](Ipv4Addr ip) {
    PolicyController* policy = policy_view_.load();
    return policy != nullptr && policy->MayIsolate(ip);
  };
}

// Before policy starts: an earlier run's eBPF filters that this run's
// programs and maps are not (eBPF now off or unsupported, or its pins gone)
// would keep fast-pathing pods with maps nobody writes (a frozen policy
// map). Removed, their pods take the host stack; repair re-attaches ours. A
// failure is told and the node serves on (the filters then stay as they
// were).
void Daemon::DetachEarlierEbpfFilters(const ebpf::DatapathPrograms* current) {
  // An earlier run's filter left on a link reads maps this run never
  // writes (its pods' policy state frozen): until it is gone the node may
  // fast-path a pod a policy now isolates. So what could not be removed is
  // counted (terway_ebpf_datapath_foreign_filters_left), told on the Node,
  // and swept again every pod GC round (MaintainNodeTables) until none is.
  std::string failure;
  std::vector<std::string> left;
  auto h = netlink::Handle::Open();
  if (!h.ok()) {
    failure = h.error().ToString();
  } else if (auto sweep = ebpf::DetachForeign(*h, current); !sweep.ok()) {
    failure = sweep.error().ToString();
  } else {
    for (const auto& r : sweep->removed) {
      log::Warn("eBPF datapath: removed an earlier run's filter {} (not this run's programs and maps); its pod "
                "takes the host stack until repair re-attaches ours",
                r);
    }
    left = std::move(sweep->left);
    if (!left.empty()) failure = Join(left, "; ");
  }
  // -1: the links could not even be listed (unknown how many are left).
  const int count = failure.empty() ? 0 : left.empty() ? -1 : int(left.size());
  metrics_.Set("terway_ebpf_datapath_foreign_filters_left", {}, count);
  const bool was_clean = foreign_filters_left_.exchange(count) == 0;
  if (count == 0) return;
  const std::string message = fmt::format(
      "an earlier terwayd's eBPF filters could not all be removed ({}): their links may bypass NetworkPolicy "
      "applied since; terwayd retries every pod GC round (metric terway_ebpf_datapath_foreign_filters_left); to "
      "remove one by hand: tc filter del dev <link> ingress pref {}",
      failure, ebpf::kDatapathFilterPriority);
  log::Error("eBPF datapath: {}", message);
  if (was_clean && kube_) {
    kube_->ObjectWarning(k8s::ObjectReference{"Node", "", opts_.node_name, opts_.node_name, "v1"},
                         kForeignFiltersEventReason, message);
  }
}

void Daemon::MaintainNodeTables() {
  if (!datapath_) return;
  if (foreign_filters_left_.load() != 0) {
    if (ebpf_datapath_ != nullptr) {
      // No first load may attach this run's programs between the sweep
      // reading "none loaded" and removing every filter of ours.
      ebpf_datapath_->WithoutConcurrentLoad(
          [this](const ebpf::DatapathPrograms* current) { DetachEarlierEbpfFilters(current); });
    } else {
      DetachEarlierEbpfFilters(nullptr);
    }
  }
  // Policy off: a failed write of the eBPF policy map is retried here.
  if (ebpf_policy_off_) ebpf_policy_off_->SyncIfDue();
  // An ENI's filter deleted behind our back (its clsact left) is then put
  // back by the first ADD of the next GC period, not only by repair.
  if (ebpf_datapath_ != nullptr) ebpf_datapath_->RecheckEniPrograms();
  // Our pods from their veths' aliases, adopted ones from the store.
  datapath::AntiSpoofSeed aliases = datapath::SeedFromPodLinkAliases("");
  store::StateStore* store = store_.get();
  datapath::AntiSpoofSeed seed = [aliases, store]() -> Result<std::set<datapath::AntiSpoofElement>> {
    TERWAY_ASSIGN_OR_RETURN(auto elements, aliases());
    TERWAY_ASSIGN_OR_RETURN(auto allocs, store->ListAllocations());
    for (const auto& a : allocs) {
      if (a.host_veth.empty()) continue;
      if (auto ip = netlink::InetAddr::Parse(a.ip); ip.ok()) elements.insert({a.host_veth, *ip});
    }
    return elements;
  };
  Status st = datapath::AntiSpoofTable("", seed).Ensure();
  if (!st.ok()) log::Warn("anti-spoofing table check: {}", st.error().ToString());
}

}  // namespace terway::daemon
