#include "daemon/cni_service.h"

#include <set>

#include "common/log.h"
#include "daemon/upstream_metrics.h"
#include "datapath/ebpf_eni.h"
#include "netlink/netns.h"
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
  DeclareUpstreamRpcLatency(*metrics_);
  metrics_->DeclareCounter("terway_address_teardowns_total",
                           "Pods torn down (wiring removed, policy stopped, address released) by cause and result "
                           "(ok, kept: the wiring could not be removed so the address stays allocated, skipped, "
                           "failed)");
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
    case proto::Op::kStatus: reply = StatusReply(); break;
    case proto::Op::kGc: reply = Gc(req); break;
    case proto::Op::kPolicyExplain: return PolicyExplain(req);  // operator requests: not CNI metrics
    case proto::Op::kPolicyShow: return PolicyShow();
    // terwayd answers it before the CNI service (OperatorViews, cli_requests.h).
    case proto::Op::kInspect:
      return proto::Reply::Fail(proto::ErrorClass::kUnsupported, "inspect is not a CNI request");
  }
  std::string op(proto::OpName(req.op));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Observe("terway_cni_request_duration_seconds", {{"op", op}}, secs);
  ObserveUpstreamRpcLatency(*metrics_, req.op, !reply.ok(), secs);
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
  p.metadata_via_node = MetadataViaNode(ip.ip);
  // Upstream's spellings, any case; the plugin refused others at ADD.
  p.virtual_type = datapath::ParseVirtualType(req.network.eniip_virtual_type).value_or(datapath::VirtualType::kVeth);
  if (!opts_.ebpf_datapath) p.virtual_type = datapath::VirtualType::kVeth;
  if (auto c = Ipv4Cidr::Parse(req.network.service_cidr); c.ok()) p.service_cidr = *c;
  // The gateway is looked up by whoever wires or checks (FillIpv6Gateway);
  // removal needs only the address.
  if (!ip.ipv6.empty()) p.ipv6 = datapath::PodIpv6{ip.ipv6, ""};
  return p;
}

Status CniService::FillIpv6Gateway(PodNetwork& pn) const {
  if (!pn.ipv6 || !pn.ipv6->gateway.empty() || !opts_.ipv6_gateway) return Ok();
  auto gw = opts_.ipv6_gateway(pn.ip.eni_id, pn.ip.eni_mac);
  if (!gw.ok()) {
    return std::move(gw).error().Wrap(fmt::format(
        "reading the vSwitch IPv6 gateway of ENI {} (metadata network/interfaces/macs/{}/ipv6-gateway) for the "
        "pod's IPv6 {}",
        pn.ip.eni_id, pn.ip.eni_mac, pn.ipv6->ip));
  }
  pn.ipv6->gateway = *gw;
  return Ok();
}

bool CniService::MetadataViaNode(const std::string& ip) const {
  if (metadata_guard_ == nullptr || !metadata_guard_->enabled()) return false;
  auto addr = Ipv4Addr::Parse(ip);
  return addr.ok() && !metadata_guard_->Exempt(*addr);
}

PodNetwork CniService::RecordedNetwork(const store::AllocationRecord& rec, const ipam::IpAllocation& ip) const {
  PodNetwork pn = PodNetworkFromRecord(rec, ip);
  pn.metadata_via_node = MetadataViaNode(pn.ip.ip);
  return pn;
}

cni::CniResult CniService::IpamResult(const ipam::IpAllocation& ip) const {
  cni::CniResult r;
  cni::IpConfig c;
  c.address = ip.ip + "/32";
  c.gateway = opts_.pod_gateway;
  r.ips.push_back(c);
  if (!ip.ipv6.empty()) {
    cni::IpConfig c6;
    c6.address = ip.ipv6 + "/128";
    r.ips.push_back(c6);
  }
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
  SupersedeRebuilt(req);
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

Result<CniService::Admission> CniService::Admit(const proto::Request& req) {
  if (const std::string& vt = req.network.eniip_virtual_type;
      !opts_.ebpf_datapath && datapath::ParseVirtualType(vt).value_or(datapath::VirtualType::kVeth) == datapath::VirtualType::kEbpf) {
    std::call_once(ipvlan_warned_, [&] {
      log::Warn("network {} asks eniip_virtual_type {}: {}; its pods are wired with veth + policy routing "
                "(Terway falls back the same way); write \"veth\" to silence this",
                req.network.name, vt, opts_.ipvlan_fallback_reason);
    });
  }
  Admission adm;
  ipam::PodIdentity& pod = adm.pod;
  pod.namespace_ = req.pod.namespace_;
  pod.name = req.pod.name;
  pod.uid = req.pod.uid;
  pod.container_id = req.container_id;
  pod.ifname = req.ifname.empty() ? "eth0" : req.ifname;
  pod.origin = store::kOriginRuntime;
  if (datapath_ != nullptr) {
    pod.netns = req.netns;
    pod.datapath_mode = opts_.datapath_mode;
    pod.host_stack_cidrs = Join(req.network.host_stack_cidrs, ",");
  }
  if (directory_ == nullptr) return adm;
  if (std::string why = directory_->NodeRefusal(); !why.empty()) {
    return Error(ErrorCode::kInvalidArgument, "pod " + PodName(req) + ": " + why);
  }
  auto meta = directory_->Lookup(req.pod.namespace_, req.pod.name);
  if (!meta.ok()) {
    // The API is unreachable: without the pod's labels we could hand a
    // sticky pod a fresh IP or serve an ignored pod; the runtime retries.
    return Error(ErrorCode::kUnavailable, "pod " + PodName(req) +
                                              ": cannot read it from the Kubernetes API (retry): " +
                                              meta.error().ToString());
  }
  if (!meta->has_value()) {
    // A sandbox of no Kubernetes pod (podman on the node, a static test):
    // served with what CNI_ARGS carries. Pod GC frees it once its netns is
    // gone (never while it lives: the API not knowing it says nothing).
    log::Warn("cni add pod={}: not in the Kubernetes API; served without labels and annotations", PodName(req));
  } else {
    TERWAY_TRY(AdmitApiPod(req, **meta, adm));
  }
  directory_->AllocationStarted(req.pod.namespace_, req.pod.name);
  return adm;
}

// What the API says about the pod: whether terway serves it, its owner (for
// sticky IPs), annotations and the bandwidth they ask for.
Status CniService::AdmitApiPod(const proto::Request& req, const PodMetadata& m, Admission& adm) {
  ipam::PodIdentity& pod = adm.pod;
  adm.in_api = true;
  pod.origin = store::kOriginApi;
  if (IgnoredByTerway(m.labels)) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "pod {} is labelled {}=true: terway does not serve it; remove the label or give the pod "
                  "another network",
                  PodName(req), kIgnoreByTerwayLabel);
  }
  if (pod.uid.empty()) pod.uid = m.uid;
  pod.owner_kind = m.owner_kind;
  pod.annotations = m.annotations;
  adm.annotations_used = m.annotations;
  // The runtime's bandwidth capability wins; else the pod's annotations
  // (kubernetes.io/* or Terway's k8s.aliyun.com/*). A bad value refuses the
  // pod unless the operator chose to serve such pods unlimited.
  auto bw = qos::ParseBandwidthAnnotations(m.annotations);
  if (bw.ok()) {
    adm.bandwidth_from_annotations = *bw;
    return Ok();
  }
  Error e = std::move(bw).error();
  if (opts_.refuse_bad_bandwidth_annotation) {
    return Error(ErrorCode::kInvalidArgument,
                 "pod " + PodName(req) + ": " + e.ToString() +
                     "; fix the annotation and recreate the pod (or set eni_conf bandwidth_annotation_error to "
                     "\"ignore\" to run such pods unlimited)");
  }
  const std::string why = e.ToString() + "; the pod runs without a bandwidth limit "
                                         "(eni_conf bandwidth_annotation_error is \"ignore\")";
  log::Warn("cni add pod={}: {}", PodName(req), why);
  directory_->PodWarning(req.pod.namespace_, req.pod.name, m.uid, "BandwidthAnnotationInvalid", why);
  return Ok();
}

Result<ipam::IpAllocation> CniService::AllocateAddress(const proto::Request& req, const Admission& adm,
                                                      UndoStack& undo) {
  // A repeated ADD of a container that is already wired must not tear a
  // live pod down when a later step fails: only what this call created is
  // undone.
  bool existed = false;
  if (auto before = store_->FindByContainer(req.container_id); before.ok() && before->has_value()) existed = true;
  auto timeout = req.deadline_ms ? std::chrono::milliseconds(req.deadline_ms) : opts_.default_deadline;
  // The address source's error already names the pod and container.
  TERWAY_ASSIGN_OR_RETURN(ipam::IpAllocation ip, addresses_->Allocate(adm.pod, timeout));
  if (!existed) {
    undo.Push("address " + ip.ip, [this, cid = req.container_id] { return ReleaseAddress(cid); });
  }
  return ip;
}

Status CniService::Enforce(const proto::Request& req, const Admission& adm, const ipam::IpAllocation& ip,
                           UndoStack& undo) {
  if (policy_ == nullptr && metadata_guard_ == nullptr) return Ok();
  const std::string what = "enforcing network policy for pod " + PodName(req);
  TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Addr addr, Ipv4Addr::Parse(ip.ip), what);
  // Undone even when a step fails half-way: the controller's ledger (or the
  // guard's record) may already hold the pod.
  undo.Push("policy of pod " + PodName(req), [this, ns = req.pod.namespace_, name = req.pod.name, a = ip.ip] {
    return StopEnforcing(ns, name, a);
  });
  // Policy before wiring: from the first packet the pod can send, the
  // rules that select it are in the kernel (no unprotected window).
  if (policy_ != nullptr) {
    // A dual-stack pod's IPv6 is policed by the same chains, from its first
    // packet too (not only once status.podIPs reaches the controller).
    std::optional<Ipv6Addr> addr6;
    if (!ip.ipv6.empty()) {
      TERWAY_ASSIGN_OR_RETURN_CTX(addr6, Ipv6Addr::Parse(ip.ipv6), what);
    }
    TERWAY_TRY_CTX(policy_->PodStarting(req.pod.namespace_, req.pod.name, addr, addr6), what);
  }
  // Likewise whether it may reach the node's cloud credentials; this also
  // clears an exemption a previous holder of the address had.
  if (metadata_guard_ != nullptr) {
    TERWAY_TRY_CTX(metadata_guard_->PodStarted(addr, PodName(req), adm.pod.annotations),
                   "guarding the node's cloud credentials from pod " + PodName(req));
  }
  return Ok();
}

Result<cni::CniResult> CniService::Wire(const proto::Request& req, const Admission& adm,
                                        const ipam::IpAllocation& ip, UndoStack& undo) {
  PodNetwork wiring = MakePodNetwork(req, ip);
  TERWAY_TRY_CTX(FillIpv6Gateway(wiring), "setting up the network of pod " + PodName(req));
  wiring.annotations = adm.pod.annotations;
  if (!wiring.bandwidth && adm.bandwidth_from_annotations) wiring.bandwidth = *adm.bandwidth_from_annotations;
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
  // Pushed before Ensure: a half-done Ensure leaves links behind too.
  // (The same network as wired; removal needs no more than that.)
  undo.Push("wiring of pod " + PodName(req), [this, pn = wiring] { return RemoveWiring(pn); });
  TERWAY_ASSIGN_OR_RETURN_CTX(cni::CniResult net, datapath_->Ensure(wiring),
                              "setting up the network of pod " + PodName(req));
  return net;
}

proto::Reply CniService::AllocateLocked(const proto::Request& req,
                                        std::optional<std::map<std::string, std::string>>* annotations_used) {
  auto admitted = Admit(req);
  if (!admitted.ok()) return proto::Reply::FromError(admitted.error());
  Admission& adm = *admitted;
  *annotations_used = adm.annotations_used;
  auto fail = [&](Error e) {
    if (directory_ != nullptr) directory_->AllocationFailed(req.pod.namespace_, req.pod.name, adm.pod.uid, e);
    return proto::Reply::FromError(e);
  };
  UndoStack undo("ADD of pod " + PodName(req) + " (container " + req.container_id + ")");
  auto ip = AllocateAddress(req, adm, undo);
  if (!ip.ok()) return fail(std::move(ip).error());
  const bool repeated = undo.size() == 0;  // an ADD of a pod already wired: nothing to undo
  proto::Reply reply;
  reply.eni = proto::EniInfo{ip->eni_id, ip->eni_mac, ip->vswitch_id, ""};
  if (datapath_ == nullptr) {
    reply.result = IpamResult(*ip);
    undo.Commit();
    if (directory_ != nullptr) directory_->Allocated(req.pod.namespace_, req.pod.name, PodIps(*ip), adm.in_api);
    return reply;
  }
  if (Status st = Enforce(req, adm, *ip, undo); !st.ok()) {
    if (repeated) undo.Commit();
    return fail(std::move(st).error());
  }
  auto net = Wire(req, adm, *ip, undo);
  if (!net.ok()) {
    if (repeated) undo.Commit();  // the pod was wired before this ADD: keep it
    return fail(std::move(net).error());
  }
  undo.Commit();
  reply.result = *net;
  if (directory_ != nullptr) directory_->Allocated(req.pod.namespace_, req.pod.name, PodIps(*ip), adm.in_api);
  return reply;
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
  if (Status gw = FillIpv6Gateway(pn); !gw.ok()) return proto::Reply::FromError(gw.error());
  if (auto rec = store_->FindByContainer(req.container_id); rec.ok() && rec->has_value()) {
    auto bw = qos::DecodeBandwidth((*rec)->bandwidth);
    if (bw.ok()) pn.bandwidth = *bw;
    pn.host_veth = (*rec)->host_veth;
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
    if (!(*now)->host_veth.empty()) continue;  // adopted wiring: not ours to redo
    PodNetwork pn = RecordedNetwork(**now, **held);
    if (Status gw = FillIpv6Gateway(pn); !gw.ok()) {
      log::Warn("bandwidth update of pod {} (container {}) postponed: {}", pod, rec.container_id,
                gw.error().ToString());
      continue;
    }
    pn.bandwidth = *wanted;
    pn.annotations = annotations;
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

proto::Reply CniService::StatusReply() {
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

}  // namespace terway::daemon
