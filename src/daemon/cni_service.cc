#include "daemon/cni_service.h"

#include <set>

#include "common/log.h"
#include "qos/annotations.h"

namespace terway::daemon {

namespace proto = cni::protocol;

namespace {
std::string PodName(const proto::Request& req) {
  return req.pod.namespace_ + "/" + req.pod.name;
}
}  // namespace

CniService::CniService(CniServiceOptions opts, ipam::PodAddressSource* addresses, store::StateStore* store,
                       PodDatapath* datapath, Metrics* metrics)
    : opts_(std::move(opts)), addresses_(addresses), store_(store), datapath_(datapath), metrics_(metrics) {
  metrics_->DeclareCounter("terway_cni_requests_total", "CNI requests by operation and result");
  metrics_->DeclareHistogram("terway_cni_request_duration_seconds",
                             "Time to serve a CNI request, by operation", LatencyBuckets());
}

void CniService::SetReady(bool ready, std::string why) {
  std::lock_guard l(why_mu_);
  ready_ = ready;
  not_ready_why_ = std::move(why);
}

proto::Reply CniService::Handle(const proto::Request& req) {
  auto start = std::chrono::steady_clock::now();
  proto::Reply reply;
  switch (req.op) {
    case proto::Op::kAllocate: reply = Allocate(req); break;
    case proto::Op::kRelease: reply = Release(req); break;
    case proto::Op::kGet: reply = Get(req); break;
    case proto::Op::kStatus: reply = Status(); break;
    case proto::Op::kGc: reply = Gc(req); break;
    case proto::Op::kPolicyExplain: return PolicyExplain(req);  // operator requests: not CNI metrics
    case proto::Op::kPolicyShow: return PolicyShow();
  }
  std::string op(proto::OpName(req.op));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Observe("terway_cni_request_duration_seconds", {{"op", op}}, secs);
  std::string result = reply.ok() ? "ok" : std::string(proto::ErrorClassName(reply.error->cls));
  metrics_->Inc("terway_cni_requests_total", {{"op", op}, {"result", result}});
  if (!reply.ok() && req.op != proto::Op::kStatus) {
    log::Warn("cni {} container={} pod={} failed: {}", op, req.container_id, PodName(req),
              reply.error->message);
  } else if (req.op == proto::Op::kAllocate || req.op == proto::Op::kRelease) {
    log::Info("cni {} container={} pod={} ok in {:.1f}ms", op, req.container_id, PodName(req),
              secs * 1000);
  }
  return reply;
}

std::mutex& CniService::ContainerLock(const std::string& container_id) {
  return container_locks_[std::hash<std::string>{}(container_id) % container_locks_.size()];
}

PodNetwork CniService::MakePodNetwork(const proto::Request& req, const ipam::IpAllocation& ip) const {
  PodNetwork p;
  p.container_id = req.container_id;
  p.netns = req.netns;
  p.ifname = req.ifname.empty() ? "eth0" : req.ifname;
  p.pod_namespace = req.pod.namespace_;
  p.pod_name = req.pod.name;
  p.ip = ip;
  p.mtu = req.network.mtu;
  p.host_stack_cidrs = ParseHostStackCidrs(req.network.host_stack_cidrs);
  if (req.bandwidth) p.bandwidth = qos::NormalizeRuntimeBandwidth(*req.bandwidth);
  return p;
}

cni::CniResult CniService::IpamResult(const ipam::IpAllocation& ip) const {
  cni::CniResult r;
  cni::IpConfig c;
  c.address = ip.ip + "/32";
  c.gateway = opts_.pod_gateway;
  r.ips.push_back(c);
  return r;
}

proto::Reply CniService::Allocate(const proto::Request& req) {
  if (!ready_) {
    std::lock_guard l(why_mu_);
    return proto::Reply::Fail(proto::ErrorClass::kUnavailable,
                              "terwayd is not ready: " + not_ready_why_);
  }
  if (req.container_id.empty()) {
    return proto::Reply::Fail(proto::ErrorClass::kInvalid, "allocate without a container id");
  }
  std::optional<std::map<std::string, std::string>> annotations_used;
  proto::Reply reply;
  {
    std::lock_guard container_lock(ContainerLock(req.container_id));
    reply = AllocateLocked(req, &annotations_used);
  }
  // A bandwidth annotation changed after this ADD read the pod but before
  // its allocation was recorded: the listener found nothing to update then.
  // The cache has the change by now (the listener runs after the cache is
  // updated), so the pod gets it here; an update that did find the
  // allocation compares with the recorded limit and does nothing twice.
  if (reply.ok() && directory_ != nullptr && annotations_used) {
    if (auto now = directory_->Cached(req.pod.namespace_, req.pod.name);
        now && qos::BandwidthAnnotationsDiffer(now->annotations, *annotations_used)) {
      log::Info("cni add pod={}: its bandwidth annotations changed during the ADD; applying the current ones",
                PodName(req));
      UpdatePodBandwidth(req.pod.namespace_, req.pod.name, now->annotations);
    }
  }
  return reply;
}

proto::Reply CniService::AllocateLocked(const proto::Request& req,
                                        std::optional<std::map<std::string, std::string>>* annotations_used) {
  if (const std::string& vt = req.network.eniip_virtual_type; vt == "ipvlan" || vt == "datapathv2") {
    std::call_once(ipvlan_warned_, [&] {
      log::Warn("network {} asks eniip_virtual_type {}: {}; its pods are wired with veth + policy routing "
                "(Terway falls back the same way); write \"veth\" to silence this",
                req.network.name, vt, opts_.ipvlan_fallback_reason);
    });
  }
  ipam::PodIdentity pod;
  pod.namespace_ = req.pod.namespace_;
  pod.name = req.pod.name;
  pod.uid = req.pod.uid;
  pod.container_id = req.container_id;
  pod.ifname = req.ifname.empty() ? "eth0" : req.ifname;
  if (datapath_ != nullptr) {
    pod.netns = req.netns;
    pod.datapath_mode = opts_.datapath_mode;
    pod.host_stack_cidrs = Join(req.network.host_stack_cidrs, ",");
  }
  std::optional<cni::Bandwidth> bandwidth_from_annotations;
  bool in_api = false;
  if (directory_ != nullptr) {
    if (std::string why = directory_->NodeRefusal(); !why.empty()) {
      return proto::Reply::Fail(proto::ErrorClass::kInvalid, "pod " + PodName(req) + ": " + why);
    }
    auto meta = directory_->Lookup(req.pod.namespace_, req.pod.name);
    if (!meta.ok()) {
      // The API is unreachable: without the pod's labels we could hand a
      // sticky pod a fresh IP or serve an ignored pod; the runtime retries.
      Error e = std::move(meta).error();
      return proto::Reply::Fail(proto::ErrorClass::kUnavailable,
                                "pod " + PodName(req) + ": cannot read it from the Kubernetes API (retry): " +
                                    e.ToString());
    }
    if (!meta->has_value()) {
      // A sandbox of no Kubernetes pod (podman on the node, a static test):
      // served with what CNI_ARGS carries. Pod GC frees it once it sees the
      // address held by a pod the API does not list.
      log::Warn("cni add pod={}: not in the Kubernetes API; served without labels and annotations",
                PodName(req));
    } else {
      in_api = true;
      const PodMetadata& m = **meta;
      if (IgnoredByTerway(m.labels)) {
        return proto::Reply::Fail(proto::ErrorClass::kInvalid,
                                  fmt::format("pod {} is labelled {}=true: terway does not serve it; remove the "
                                              "label or give the pod another network",
                                              PodName(req), kIgnoreByTerwayLabel));
      }
      if (pod.uid.empty()) pod.uid = m.uid;
      pod.owner_kind = m.owner_kind;
      pod.annotations = m.annotations;
      *annotations_used = m.annotations;
      // The runtime's bandwidth capability wins; else the pod's annotations
      // (kubernetes.io/* or Terway's k8s.aliyun.com/*). A bad value refuses
      // the pod unless the operator chose to serve such pods unlimited.
      auto bw = qos::ParseBandwidthAnnotations(m.annotations);
      if (!bw.ok()) {
        Error e = std::move(bw).error();
        if (opts_.refuse_bad_bandwidth_annotation) {
          return proto::Reply::Fail(proto::ErrorClass::kInvalid,
                                    "pod " + PodName(req) + ": " + e.ToString() +
                                        "; fix the annotation and recreate the pod (or set eni_conf "
                                        "bandwidth_annotation_error to \"ignore\" to run such pods unlimited)");
        }
        const std::string why = e.ToString() + "; the pod runs without a bandwidth limit "
                                               "(eni_conf bandwidth_annotation_error is \"ignore\")";
        log::Warn("cni add pod={}: {}", PodName(req), why);
        directory_->PodWarning(req.pod.namespace_, req.pod.name, m.uid, "BandwidthAnnotationInvalid", why);
      } else {
        bandwidth_from_annotations = *bw;
      }
    }
    directory_->AllocationStarted(req.pod.namespace_, req.pod.name);
  }
  auto timeout = req.deadline_ms ? std::chrono::milliseconds(req.deadline_ms) : opts_.default_deadline;
  // A repeated ADD of a container that is already wired must not tear a
  // live pod down when a later step fails: only what this call created is
  // undone.
  bool existed = false;
  if (auto before = store_->FindByContainer(req.container_id); before.ok() && before->has_value()) existed = true;
  auto ip = addresses_->Allocate(pod, timeout);
  if (!ip.ok()) {
    // The address source's error already names the pod and container.
    Error e = std::move(ip).error();
    if (directory_ != nullptr) directory_->AllocationFailed(req.pod.namespace_, req.pod.name, pod.uid, e);
    return proto::Reply::FromError(e);
  }
  proto::Reply reply;
  reply.eni = proto::EniInfo{ip->eni_id, ip->eni_mac, ip->vswitch_id, ""};
  if (datapath_ == nullptr) {
    reply.result = IpamResult(*ip);
    if (directory_ != nullptr) directory_->Allocated(req.pod.namespace_, req.pod.name, ip->ip, in_api);
    return reply;
  }
  // Policy before wiring: from the first packet the pod can send, the
  // rules that select it are in the kernel (no unprotected window).
  if (policy_ != nullptr) {
    terway::Status enforced = Ok();
    auto addr = Ipv4Addr::Parse(ip->ip);
    if (!addr.ok()) {
      enforced = std::move(addr).error();
    } else {
      enforced = policy_->PodStarting(req.pod.namespace_, req.pod.name, *addr);
    }
    if (!enforced.ok()) {
      if (!existed) {
        if (addr.ok()) policy_->PodStopped(req.pod.namespace_, req.pod.name, *addr);
        auto rel = addresses_->Release(req.container_id);
        if (!rel.ok()) log::Warn("undoing allocation of {}: {}", req.container_id, rel.error().ToString());
      }
      Error e = std::move(enforced).error();
      e.Wrap("enforcing network policy for pod " + PodName(req));
      if (directory_ != nullptr) directory_->AllocationFailed(req.pod.namespace_, req.pod.name, pod.uid, e);
      return proto::Reply::FromError(e);
    }
  }
  PodNetwork wiring = MakePodNetwork(req, *ip);
  wiring.annotations = pod.annotations;
  if (!wiring.bandwidth && bandwidth_from_annotations) wiring.bandwidth = *bandwidth_from_annotations;
  // Recorded before the wiring: a restart repairs the pod to exactly this,
  // and CHECK verifies it (the runtime's CHECK may not carry the limit).
  // (A read first: most pods have no limit, and a commit per ADD for an
  // unchanged empty column is what the pod start would pay for nothing.)
  const std::string bw_text = qos::EncodeBandwidth(wiring.bandwidth);
  auto current = store_->FindByContainer(req.container_id);
  if (!current.ok() || !current->has_value() || (*current)->bandwidth != bw_text) {
    if (terway::Status rec = store_->SetBandwidth(req.container_id, bw_text); !rec.ok()) {
      log::Warn("cni add pod={}: recording its bandwidth: {}", PodName(req), rec.error().ToString());
    }
  }
  auto net = datapath_->Ensure(wiring);
  if (!net.ok() && !existed) {
    // Undo: a failed ADD must not keep the address (the runtime will DEL, but
    // nothing guarantees it, and the IP would leak until GC).
    if (policy_ != nullptr) {
      if (auto addr = Ipv4Addr::Parse(ip->ip); addr.ok()) policy_->PodStopped(req.pod.namespace_, req.pod.name, *addr);
    }
    PodNetwork pn = MakePodNetwork(req, *ip);
    auto rm = datapath_->Remove(pn);
    if (!rm.ok()) log::Warn("undoing datapath of {}: {}", req.container_id, rm.error().ToString());
    auto rel = addresses_->Release(req.container_id);
    if (!rel.ok()) log::Warn("undoing allocation of {}: {}", req.container_id, rel.error().ToString());
  }
  if (!net.ok()) {
    Error e = std::move(net).error();
    e.Wrap("setting up the network of pod " + PodName(req));
    if (directory_ != nullptr) directory_->AllocationFailed(req.pod.namespace_, req.pod.name, pod.uid, e);
    return proto::Reply::FromError(e);
  }
  reply.result = *net;
  if (directory_ != nullptr) directory_->Allocated(req.pod.namespace_, req.pod.name, ip->ip, in_api);
  return reply;
}

proto::Reply CniService::Release(const proto::Request& req) {
  std::lock_guard container_lock(ContainerLock(req.container_id));
  auto held = addresses_->Get(req.container_id);
  if (!held.ok()) return proto::Reply::FromError(held.error());
  if (!held->has_value()) {
    // Nothing held: DEL is idempotent. There is no wiring to undo either:
    // ADD commits the allocation before it wires the pod, so wiring without
    // an allocation cannot exist (and the restart GC collects by container).
    return proto::Reply::Fail(proto::ErrorClass::kNotFound,
                              "no allocation for container " + req.container_id);
  }
  if (datapath_ != nullptr) {
    PodNetwork pn = MakePodNetwork(req, **held);
    if (pn.netns.empty()) {
      // DEL without CNI_NETNS (allowed once the sandbox is gone) and CNI GC
      // name no netns: use the one recorded at ADD, so an exclusive ENI
      // still in a live namespace is taken back before it is detached.
      auto rec = store_->FindByContainer(req.container_id);
      if (rec.ok() && rec->has_value()) pn.netns = (*rec)->netns;
    }
    auto rm = datapath_->Remove(pn);
    if (!rm.ok()) {
      Error e = std::move(rm).error();
      e.Wrap("removing the network of pod " + PodName(req));
      return proto::Reply::FromError(e);
    }
  }
  // The pod's rules go before its address does: the address may be handed
  // to the next pod at once.
  if (policy_ != nullptr) {
    if (auto addr = Ipv4Addr::Parse((*held)->ip); addr.ok()) {
      policy_->PodStopped(req.pod.namespace_, req.pod.name, *addr);
    }
  }
  auto rel = addresses_->Release(req.container_id);
  if (!rel.ok()) return proto::Reply::FromError(rel.error());
  if (directory_ != nullptr) directory_->Released(req.pod.namespace_, req.pod.name);
  return proto::Reply{};
}

proto::Reply CniService::PolicyExplain(const proto::Request& req) {
  if (policy_ == nullptr) return proto::Reply::Fail(proto::ErrorClass::kUnsupported, opts_.policy_off_reason);
  const proto::PolicyQuery& q = *req.policy_query;
  auto protocol = policy::ParseProtocol(q.protocol);
  if (!protocol.ok()) return proto::Reply::FromError(protocol.error());
  auto e = policy_->Explain(q.from, q.to, *protocol, q.port);
  if (!e.ok()) return proto::Reply::FromError(e.error());
  proto::Reply reply;
  reply.allowed = e->allowed;
  reply.text = e->ToString();
  return reply;
}

proto::Reply CniService::PolicyShow() {
  if (policy_ == nullptr) return proto::Reply::Fail(proto::ErrorClass::kUnsupported, opts_.policy_off_reason);
  auto text = policy_->Show();
  if (!text.ok()) return proto::Reply::FromError(text.error());
  proto::Reply reply;
  reply.text = std::move(text).value();
  return reply;
}

proto::Reply CniService::Get(const proto::Request& req) {
  auto held = addresses_->Get(req.container_id);
  if (!held.ok()) return proto::Reply::FromError(held.error());
  if (!held->has_value()) {
    return proto::Reply::Fail(proto::ErrorClass::kNotFound,
                              "terwayd holds no address for container " + req.container_id);
  }
  proto::Reply reply;
  const auto& ip = **held;
  reply.eni = proto::EniInfo{ip.eni_id, ip.eni_mac, ip.vswitch_id, ""};
  if (datapath_ == nullptr) {
    reply.result = IpamResult(ip);
    return reply;
  }
  // The wiring as it is, in the shape ADD reported it (the plugin compares
  // the addresses with the runtime's prevResult), with the limit ADD (or a
  // later annotation change) applied.
  PodNetwork pn = MakePodNetwork(req, ip);
  if (auto rec = store_->FindByContainer(req.container_id); rec.ok() && rec->has_value()) {
    auto bw = qos::DecodeBandwidth((*rec)->bandwidth);
    if (bw.ok()) pn.bandwidth = *bw;
  }
  auto c = datapath_->Check(pn);
  if (!c.ok()) return proto::Reply::FromError(c.error());
  reply.result = *c;
  return reply;
}

void CniService::UpdatePodBandwidth(const std::string& ns, const std::string& name,
                                    const std::map<std::string, std::string>& annotations) {
  if (datapath_ == nullptr) return;
  const std::string pod = ns + "/" + name;
  auto wanted = qos::ParseBandwidthAnnotations(annotations);
  auto allocs = store_->FindByPod(store::PodKey{ns, name});
  if (!allocs.ok()) {
    log::Warn("bandwidth update of pod {}: reading its allocations: {}", pod, allocs.error().ToString());
    return;
  }
  for (const auto& rec : *allocs) {
    if (!wanted.ok()) {
      const std::string why = wanted.error().ToString() + "; the pod keeps its current bandwidth limit";
      log::Warn("bandwidth update of pod {}: {}", pod, why);
      if (directory_ != nullptr) directory_->PodWarning(ns, name, rec.pod_uid, "BandwidthAnnotationInvalid", why);
      return;
    }
    std::lock_guard container_lock(ContainerLock(rec.container_id));
    // Re-read under the lock: a DEL may have released it meanwhile.
    auto now = store_->FindByContainer(rec.container_id);
    auto held = addresses_->Get(rec.container_id);
    if (!now.ok() || !now->has_value() || !held.ok() || !held->has_value()) continue;
    if ((*now)->netns.empty()) continue;  // wired by an older terwayd: nothing to update against
    if ((*now)->bandwidth == qos::EncodeBandwidth(*wanted)) continue;
    PodNetwork pn;
    pn.container_id = rec.container_id;
    pn.netns = (*now)->netns;
    pn.ifname = (*now)->ifname.empty() ? "eth0" : (*now)->ifname;
    pn.pod_namespace = ns;
    pn.pod_name = name;
    pn.ip = **held;
    pn.bandwidth = *wanted;
    pn.annotations = annotations;
    pn.host_stack_cidrs = ParseRecordedHostStackCidrs((*now)->host_stack_cidrs);
    auto ensured = datapath_->Ensure(pn);
    if (!ensured.ok()) {
      log::Warn("bandwidth update of pod {} (container {}): {}", pod, rec.container_id, ensured.error().ToString());
      continue;
    }
    if (terway::Status st = store_->SetBandwidth(rec.container_id, qos::EncodeBandwidth(*wanted)); !st.ok()) {
      log::Warn("bandwidth update of pod {}: recording it: {}", pod, st.error().ToString());
    }
    log::Info("bandwidth of pod {} is now {}", pod,
              *wanted ? fmt::format("ingress {} bit/s, egress {} bit/s (0 = unlimited)", (*wanted)->ingress_rate,
                                    (*wanted)->egress_rate)
                      : std::string("unlimited"));
  }
}

proto::Reply CniService::Status() {
  proto::Reply reply;
  proto::DaemonStatus st;
  st.ready = ready_;
  if (!st.ready) {
    std::lock_guard l(why_mu_);
    st.message = not_ready_why_;
  }
  reply.status = st;
  return reply;
}

proto::Reply CniService::Gc(const proto::Request& req) {
  std::set<std::string> valid;
  for (const auto& a : req.valid_attachments) valid.insert(a.container_id);
  auto all = store_->ListAllocations();
  if (!all.ok()) return proto::Reply::FromError(all.error());
  int freed = 0;
  for (const auto& rec : *all) {
    if (valid.count(rec.container_id)) continue;
    proto::Request del = req;
    del.op = proto::Op::kRelease;
    del.container_id = rec.container_id;
    del.ifname = rec.ifname;
    del.netns.clear();
    del.pod.namespace_ = rec.pod_namespace;
    del.pod.name = rec.pod_name;
    auto r = Release(del);
    if (!r.ok() && r.error->cls != proto::ErrorClass::kNotFound) return r;
    freed++;
  }
  log::Info("cni gc kept={} freed={}", valid.size(), freed);
  return proto::Reply{};
}

}  // namespace terway::daemon
