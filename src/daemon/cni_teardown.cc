// The CNI service's one teardown (see cni_service.h): every path that frees
// an address -- DEL, CNI GC, pod GC, restart repair, an address the cloud
// took away, a new sandbox superseding an adopted address -- removes the
// pod's wiring, stops its policy and metadata exemption, then releases the
// address, and keeps the address when the wiring cannot be removed.
#include <set>

#include "common/log.h"
#include "daemon/cni_service.h"
#include "netlink/netns.h"

namespace terway::daemon {

namespace proto = cni::protocol;

namespace {
std::string PodName(const proto::Request& req) { return req.pod.namespace_ + "/" + req.pod.name; }
}  // namespace

const char* TeardownCauseName(TeardownCause c) {
  switch (c) {
    case TeardownCause::kDel: return "del";
    case TeardownCause::kCniGc: return "cni_gc";
    case TeardownCause::kPodGc: return "pod_gc";
    case TeardownCause::kRestartRepair: return "restart_repair";
    case TeardownCause::kAddressLost: return "address_lost";
    case TeardownCause::kSuperseded: return "superseded";
  }
  return "unknown";
}

std::vector<std::string> PodIps(const ipam::IpAllocation& ip) {
  std::vector<std::string> out{ip.ip};
  if (!ip.ipv6.empty()) out.push_back(ip.ipv6);
  return out;
}

PodNetwork PodNetworkFromRecord(const store::AllocationRecord& rec, const ipam::IpAllocation& ip) {
  PodNetwork pn;
  pn.container_id = rec.container_id;
  pn.netns = rec.netns;
  pn.ifname = rec.ifname.empty() ? "eth0" : rec.ifname;
  pn.pod_namespace = rec.pod_namespace;
  pn.pod_name = rec.pod_name;
  pn.ip = ip;
  if (pn.ip.ip.empty()) pn.ip.ip = rec.ip;
  if (pn.ip.eni_id.empty()) pn.ip.eni_id = rec.eni_id;
  if (pn.ip.ipv6.empty()) pn.ip.ipv6 = rec.ipv6;
  // The gateway is the ENI's (CniService::FillIpv6Gateway looks it up for
  // wiring and checking); removal needs only the address.
  if (!pn.ip.ipv6.empty()) pn.ipv6 = datapath::PodIpv6{pn.ip.ipv6, ""};
  pn.host_stack_cidrs = ParseRecordedHostStackCidrs(rec.host_stack_cidrs);
  pn.host_veth = rec.host_veth;
  return pn;
}

void CniService::CountTeardown(TeardownCause cause, const char* result) {
  metrics_->Inc("terway_address_teardowns_total", {{"cause", TeardownCauseName(cause)}, {"result", result}});
}

Status CniService::RemoveWiring(const PodNetwork& pn) {
  if (datapath_ == nullptr) return Ok();
  TERWAY_TRY_CTX(datapath_->Remove(pn), fmt::format("removing the network of pod {}/{}", pn.pod_namespace,
                                                    pn.pod_name));
  return Ok();
}

Status CniService::StopEnforcing(const std::string& ns, const std::string& name, const std::string& ip) {
  auto addr = Ipv4Addr::Parse(ip);
  if (!addr.ok()) return Ok();  // nothing could have been enforced for it
  // The pod's rules go before its address does: the address may be handed
  // to the next pod at once.
  if (policy_ != nullptr) policy_->PodStopped(ns, name, *addr);
  if (metadata_guard_ != nullptr) {
    TERWAY_TRY_CTX(metadata_guard_->PodStopped(*addr),
                   fmt::format("withdrawing the metadata exemption of pod {}/{} ({})", ns, name, ip));
  }
  return Ok();
}

Status CniService::ReleaseAddress(const std::string& container_id) {
  return addresses_->Release(container_id);
}

Status CniService::Teardown(const store::AllocationRecord& seen, TeardownCause cause) {
  std::lock_guard container_lock(ContainerLock(seen.container_id));
  return TeardownLocked(seen, cause);
}

Status CniService::TeardownLocked(const store::AllocationRecord& seen, TeardownCause cause) {
  const std::string who = fmt::format("pod {}/{} (container {}, IP {})", seen.pod_namespace, seen.pod_name,
                                      seen.container_id, seen.ip);
  // Re-read under the container's lock: the caller's view may be stale.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto now, store_->FindByContainer(seen.container_id), "tearing down " + who);
  if (cause != TeardownCause::kAddressLost && (!now || now->ip != seen.ip)) {
    CountTeardown(cause, "skipped");
    return Ok();  // already freed (a concurrent DEL) or re-allocated
  }
  store::AllocationRecord rec = now ? *now : seen;
  if (!seen.netns.empty()) rec.netns = seen.netns;  // the DEL's own view of the sandbox
  ipam::IpAllocation ip;
  if (auto held = addresses_->Get(rec.container_id); held.ok() && held->has_value()) ip = **held;
  PodNetwork pn = RecordedNetwork(rec, ip);
  Status removed = RemoveWiring(pn);
  if (!removed.ok()) {
    CountTeardown(cause, "kept");
    // A sandbox may still be wired with the address: it is not freed.
    return std::move(removed).error().Wrap(fmt::format("{} of {} (its address stays allocated until the wiring "
                                                       "is gone; retried by the next DEL or GC round)",
                                                       TeardownCauseName(cause), who));
  }
  if (Status stopped = StopEnforcing(rec.pod_namespace, rec.pod_name, rec.ip); !stopped.ok()) {
    CountTeardown(cause, "kept");
    return std::move(stopped).error().Wrap(fmt::format("{} of {} (its address stays allocated; retried by the next "
                                                       "DEL or GC round)",
                                                       TeardownCauseName(cause), who));
  }
  Status released = ReleaseAddress(rec.container_id);
  if (!released.ok()) {
    CountTeardown(cause, "failed");
    return std::move(released).error().Wrap(fmt::format("{} of {}", TeardownCauseName(cause), who));
  }
  if (directory_ != nullptr) directory_->Released(rec.pod_namespace, rec.pod_name);
  CountTeardown(cause, "ok");
  if (cause != TeardownCause::kDel) log::Info("teardown cause={} {}: wiring removed, address released",
                                              TeardownCauseName(cause), who);
  return Ok();
}

void CniService::AddressesLost(const std::vector<store::AllocationRecord>& lost) {
  for (const auto& rec : lost) {
    Status st = Teardown(rec, TeardownCause::kAddressLost);
    if (!st.ok()) log::Warn("address lost: {}", st.error().ToString());
  }
}

proto::Reply CniService::Release(const proto::Request& req) {
  std::lock_guard container_lock(ContainerLock(req.container_id));
  auto rec = store_->FindByContainer(req.container_id);
  if (!rec.ok()) return proto::Reply::FromError(rec.error());
  if (!rec->has_value()) return ReleaseRebuilt(req);
  store::AllocationRecord seen = **rec;
  // DEL's own view of the sandbox wins where it has one (DEL without
  // CNI_NETNS, allowed once the sandbox is gone, and CNI GC name none: the
  // recorded one is used, so an exclusive ENI still in a live namespace is
  // taken back before it is detached).
  if (!req.netns.empty() && datapath_ != nullptr) seen.netns = req.netns;
  Status st = TeardownLocked(seen, TeardownCause::kDel);
  if (!st.ok()) return proto::Reply::FromError(st.error());
  return proto::Reply{};
}

proto::Reply CniService::ReleaseRebuilt(const proto::Request& req) {
  // Only a DEL naming its pod can match; and the rebuilt record must be for
  // this very sandbox when both sides know the netns (a runtime's DEL of a
  // failed ADD's sandbox must not take a live pod's address).
  if (!req.pod.namespace_.empty() && !req.pod.name.empty()) {
    auto recs = store_->FindByPod(store::PodKey{req.pod.namespace_, req.pod.name});
    if (!recs.ok()) return proto::Reply::FromError(recs.error());
    for (const auto& rec : *recs) {
      if (rec.origin != store::kOriginRebuilt) continue;
      if (!req.netns.empty() && !rec.netns.empty() && !netlink::SameNetns(req.netns, rec.netns)) continue;
      log::Info("cni del container={} pod={}: the sandbox adopted at start as {}", req.container_id, PodName(req),
                rec.container_id);
      Status st = Teardown(rec, TeardownCause::kDel);
      if (!st.ok()) return proto::Reply::FromError(st.error());
      return proto::Reply{};
    }
  }
  // Nothing held: DEL is idempotent. There is no wiring to undo either:
  // ADD commits the allocation before it wires the pod, so wiring without
  // an allocation cannot exist (and the restart GC collects by container).
  return proto::Reply::Fail(proto::ErrorClass::kNotFound, "no allocation for container " + req.container_id);
}

// A pod's new sandbox means its old one is gone (the kubelet stops a
// sandbox, DEL included, before it starts the next). An address adopted at
// start for the pod with no live sandbox found is freed here, in case the
// old sandbox's DEL came while terwayd was down. Runs before this ADD takes
// its container lock: a teardown takes the other container's lock, and two
// ADDs holding one each and waiting for the other's would deadlock.
void CniService::SupersedeRebuilt(const proto::Request& req) {
  if (req.pod.namespace_.empty() || req.pod.name.empty()) return;
  auto recs = store_->FindByPod(store::PodKey{req.pod.namespace_, req.pod.name});
  if (!recs.ok()) return;
  for (const auto& rec : *recs) {
    if (rec.origin != store::kOriginRebuilt || rec.container_id == req.container_id) continue;
    if (!rec.netns.empty() && netlink::NetnsExists(rec.netns)) continue;  // its DEL will come
    Status st = Teardown(rec, TeardownCause::kSuperseded);
    if (!st.ok()) log::Warn("cni add pod={}: freeing the address adopted at start: {}", PodName(req), st.error().ToString());
  }
}

proto::Reply CniService::Gc(const proto::Request& req) {
  std::set<std::string> valid;
  for (const auto& a : req.valid_attachments) valid.insert(a.container_id);
  auto all = store_->ListAllocations();
  if (!all.ok()) return proto::Reply::FromError(all.error());
  int freed = 0;
  for (const auto& rec : *all) {
    if (valid.count(rec.container_id)) continue;
    // Rebuilt records carry no runtime container id: the runtime cannot
    // list them, so its GC says nothing about them (pod GC does).
    if (rec.origin == store::kOriginRebuilt) continue;
    Status st = Teardown(rec, TeardownCause::kCniGc);
    if (!st.ok()) return proto::Reply::FromError(st.error());
    freed++;
  }
  log::Info("cni gc kept={} freed={}", valid.size(), freed);
  return proto::Reply{};
}

}  // namespace terway::daemon
