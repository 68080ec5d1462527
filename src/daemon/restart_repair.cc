// terwayd's start-up before it serves: the database is completed from what
// the node, the API and the cloud show (RebuildState), then every recorded
// pod is verified, repaired or freed (RepairPods). One owner of kernel state
// means this is the one place it is put right after a crash.
#include <set>

#include "common/log.h"
#include "daemon/daemon.h"
#include "daemon/state_rebuild.h"
#include "netlink/netns.h"
#include "qos/annotations.h"

namespace terway::daemon {

Status Daemon::RebuildState() {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "rebuilding state: reading allocations");
  std::vector<HostSandbox> sandboxes;
  const bool dual = config_.ip_stack == ipam::IpStack::kDual;
  if (datapath_) {
    auto found = DiscoverHostSandboxes("/var/run/netns", /*ipv6=*/dual);
    if (!found.ok()) {
      // Serving without knowing what the node's sandboxes hold could hand
      // out a live address: refuse to start, the DaemonSet restarts us.
      return std::move(found).error().Wrap("rebuilding state: reading the pods' wiring from the kernel");
    }
    sandboxes = std::move(found).value();
  }
  std::vector<ApiPodAddress> api_pods;
  if (kube_) api_pods = ApiPodAddresses(kube_->Pods(), opts_.node_name);
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild(allocs, sandboxes, api_pods, datapath_mode_, &conflicts);
  for (const auto& c : conflicts) log::Error("state rebuild: {}; fix it by hand (delete one of the pods)", c);
  if (plan.empty()) return Ok();
  log::Warn("state rebuild: {} address(es) are held on this node without a record in {} (a lost or new "
            "database, or a node taken over from another Terway); adopting them before serving",
            plan.size(), opts_.state_path);
  // Only an address the pool knows from the cloud can be adopted, and one it
  // does not know now it would learn (as idle) at its next reconcile: so the
  // cloud must have been read before anything is served.
  TERWAY_TRY_CTX(WaitOut("reading this node's ENIs from the cloud to adopt running pods' addresses",
                         [&] { return addresses_->Reconcile(); }),
                 "rebuilding state");
  // Nothing can take a sandbox's IPv6 before these adoptions: the pool's
  // worker (refill, reclaim, its periodic reconcile) and the CNI socket
  // start in Start(), after this. The reconciles so far only paired the
  // IPv6s the cloud lists with slots in their own order, which Adopt
  // re-pairs.
  AdoptPlan(addresses_.get(), plan, &metrics_);
  return Ok();
}

void Daemon::RepairPods() {
  auto allocs = store_->ListAllocations();
  if (!allocs.ok()) {
    log::Warn("restart repair skipped, state unreadable: {}", allocs.error().ToString());
    return;
  }
  std::set<std::string> live;
  std::set<Ipv4Addr> adopted_ips;
  for (const auto& rec : *allocs) {
    const char* outcome = RepairPod(rec, &live, &adopted_ips);
    metrics_.Inc("terway_restart_repairs_total", {{"outcome", outcome}});
  }
  // Links and rules of containers the store no longer knows.
  auto removed = datapath_->CollectGarbage(live, adopted_ips);
  if (!removed.ok()) {
    log::Warn("datapath garbage collection: {}", removed.error().ToString());
  } else {
    for (const auto& r : *removed) log::Info("datapath gc removed {}", r);
  }
}

const char* Daemon::RepairPod(const store::AllocationRecord& rec, std::set<std::string>* live,
                              std::set<Ipv4Addr>* adopted_ips) {
  const std::string who = fmt::format("pod {}/{} (container {}, IP {})", rec.pod_namespace, rec.pod_name,
                                      rec.container_id, rec.ip);
  if (!rec.netns.empty() && !netlink::NetnsExists(rec.netns)) {
    // The pod vanished while we were down (its sandbox was destroyed
    // without a DEL reaching us): the one teardown frees it.
    Status st = service_->Teardown(rec, TeardownCause::kRestartRepair);
    if (!st.ok()) {
      log::Warn("restart repair: releasing {} whose netns {} is gone failed (retried by pod GC): {}", who,
                rec.netns, st.error().ToString());
      live->insert(rec.container_id);
      return "failed";
    }
    log::Info("restart repair: {} netns {} is gone: released its address and wiring", who, rec.netns);
    return "released";
  }
  live->insert(rec.container_id);
  if (!rec.host_veth.empty()) {
    // Adopted from another plugin's wiring: it keeps working as it is, and
    // is removed as it is when the pod goes; never rebuilt our way. Its
    // host veth is guarded against spoofing like ours.
    if (auto ip = Ipv4Addr::Parse(rec.ip); ip.ok()) adopted_ips->insert(*ip);
    PodNetwork pod = PodNetworkFromRecord(rec, ipam::IpAllocation{});
    if (Status g = datapath_->GuardAdopted(pod); !g.ok()) log::Warn("restart repair: {}: {}", who, g.error().ToString());
    return "unknown";
  }
  if (rec.netns.empty() || (!rec.datapath_mode.empty() && rec.datapath_mode != datapath_mode_)) {
    // Recorded by an older terwayd (schema 1), adopted without a sandbox,
    // or wired by another mode: nothing to verify against; its DEL (or pod
    // GC) frees it.
    log::Warn("restart repair: {} has no netns recorded for the {} datapath (was '{}'); left to its DEL", who,
              datapath_mode_, rec.datapath_mode);
    if (auto ip = Ipv4Addr::Parse(rec.ip); ip.ok()) adopted_ips->insert(*ip);
    return "unknown";
  }
  auto held = addresses_->Get(rec.container_id);
  if (!held.ok() || !held->has_value()) {
    log::Warn("restart repair: {}: address not found: {}", who, held.ok() ? "none" : held.error().ToString());
    return "failed";
  }
  PodNetwork pod = service_->RecordedNetwork(rec, **held);
  if (Status gw = service_->FillIpv6Gateway(pod); !gw.ok()) {
    // Unknown is not broken: a repair now would take a healthy pod's IPv6
    // (and its eBPF fast path) down. Left as it is; CHECK and the next
    // restart verify it.
    log::Warn("restart repair: {} left unverified: {}", who, gw.error().ToString());
    return "failed";
  }
  if (auto bw = qos::DecodeBandwidth(rec.bandwidth); bw.ok()) {
    pod.bandwidth = *bw;
  } else {
    log::Warn("restart repair: {}: {}; repaired without a limit", who, bw.error().ToString());
  }
  auto check = datapath_->Check(pod);
  if (check.ok()) return "ok";
  auto fixed = datapath_->Ensure(pod);
  if (!fixed.ok()) {
    log::Warn("restart repair: {} is broken ({}) and could not be repaired: {}", who, check.error().ToString(),
              fixed.error().ToString());
    return "failed";
  }
  log::Info("restart repair: repaired {}: {}", who, check.error().ToString());
  return "repaired";
}

}  // namespace terway::daemon
