#include "qos/shaper.h"

#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "common/log.h"
#include "netlink/tc_message.h"

namespace terway::qos {

namespace {

constexpr int kEthernetHeader = 14;

bool IsNotFound(const Status& s) { return !s.ok() && s.error().code == ErrorCode::kNotFound; }

std::string Mbit(uint64_t bits) { return fmt::format("{:.3f} Mbit/s", static_cast<double>(bits) / 1e6); }

}  // namespace

netlink::TokenBucket TokenBucketFor(uint64_t rate_bits_per_sec, uint64_t burst_bits, int mtu) {
  netlink::TokenBucket tb;
  tb.rate_bytes_per_sec = (rate_bits_per_sec + 7) / 8;
  uint64_t burst = burst_bits / 8;
  uint64_t frame = static_cast<uint64_t>(std::max(mtu, 68) + kEthernetHeader);
  burst = std::clamp<uint64_t>(burst, frame, UINT32_MAX);
  tb.burst_bytes = static_cast<uint32_t>(burst);
  tb.latency_ms = kQueueLatencyMs;
  return tb;
}

Status ProbeFqQdisc(netlink::Handle& host, const std::string& scratch_ifb) {
  // A scratch link of our own: probing on a pod's link would briefly replace
  // its root qdisc, and this kernel has no dummy links.
  TERWAY_TRY(host.DeleteLinkIfExists(scratch_ifb));
  TERWAY_TRY_CTX(host.CreateIfb(scratch_ifb), "probing for the fq qdisc");
  Status result = Ok();
  auto link = host.GetLink(scratch_ifb);
  if (!link.ok()) {
    result = std::move(link).error();
  } else {
    result = host.AddQdisc(link->index, "fq", netlink::kTcHandleRoot, 0x00010000u);
  }
  Status del = host.DeleteLinkIfExists(scratch_ifb);
  if (!result.ok()) return result;
  return del;
}

ShapingBackend BandwidthShaper::Backend(netlink::Handle& host) {
  std::lock_guard<std::mutex> lock(mu_);
  if (backend_) return *backend_;
  Status fq = ProbeFqQdisc(host, fmt::format("twfq{}", getpid() % 100000));
  if (!fq.ok()) {
    backend_ = ShapingBackend::kTbf;
    backend_reason_ = fmt::format("fq qdisc unavailable ({}); using TBF (an IFB for traffic out of pods)",
                                  fq.error().ToString());
  } else if (auto edt = EdtProgram::Load(); !edt.ok()) {
    backend_ = ShapingBackend::kTbf;
    backend_reason_ = fmt::format("fq qdisc available but the EDT program did not load ({}); using TBF",
                                  edt.error().ToString());
  } else {
    edt_ = std::move(edt).value();
    backend_ = ShapingBackend::kEdt;
    backend_reason_ = "fq qdisc available: EDT (eBPF departure times + fq) for traffic out of pods, TBF into them";
  }
  log::Info("qos_backend {}", backend_reason_);
  return *backend_;
}

std::string BandwidthShaper::BackendReason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return backend_reason_;
}

Status BandwidthShaper::ApplyIngress(netlink::Handle& host, const netlink::Link& veth, uint64_t rate,
                                     uint64_t burst) {
  if (rate == 0) return host.DeleteRootQdiscIfExists(veth.index);
  netlink::TokenBucket tb = TokenBucketFor(rate, burst, veth.mtu);
  // An unchanged TBF is left alone: replacing it would reset its bucket.
  TERWAY_ASSIGN_OR_RETURN(auto cur, host.GetRootTbf(veth.index));
  if (cur && cur->rate_bytes_per_sec == tb.rate_bytes_per_sec && cur->limit_bytes == netlink::TbfQueueLimitBytes(tb))
    return Ok();
  return host.ReplaceRootTbf(veth.index, tb);
}

bool BandwidthShaper::UsesEdt(const PodShapingLinks& links) {
  std::lock_guard<std::mutex> lock(mu_);
  return backend_ == ShapingBackend::kEdt && edt_ && !links.egress_device.empty() && links.pod_ip.has_value();
}

bool BandwidthShaper::EdtLoaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return edt_ != nullptr;
}

Status BandwidthShaper::ForgetAddress(Ipv4Addr pod_ip) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!edt_) return Ok();
  return edt_->Clear(pod_ip);
}

Result<std::vector<std::string>> BandwidthShaper::CollectGarbage(const std::set<Ipv4Addr>& live_pod_ips) {
  std::vector<std::string> removed;
  std::lock_guard<std::mutex> lock(mu_);
  if (!edt_) return removed;
  TERWAY_ASSIGN_OR_RETURN(auto addresses, edt_->Addresses());
  for (const auto& ip : addresses) {
    if (live_pod_ips.count(ip)) continue;
    TERWAY_TRY(edt_->Clear(ip));
    removed.push_back(fmt::format("EDT rate of {} (no live pod holds it)", ip.ToString()));
  }
  return removed;
}

namespace {

// The root qdisc's kind on a link, "" when the kernel's default is there.
Result<std::string> RootQdiscKind(netlink::Handle& host, int index) {
  TERWAY_ASSIGN_OR_RETURN(auto qdiscs, host.ListQdiscs(index));
  for (const auto& q : qdiscs) {
    // The defaults (noqueue on virtual links, pfifo_fast / mq on NICs) sit
    // at handle 0; anything configured has a handle of its own.
    if (q.parent == netlink::kTcHandleRoot) return q.handle == 0 ? std::string() : q.kind;
  }
  return std::string();
}

}  // namespace

Status BandwidthShaper::ApplyEdtEgress(netlink::Handle& host, const PodShapingLinks& links, uint64_t rate) {
  TERWAY_ASSIGN_OR_RETURN(auto dev, host.GetLink(links.egress_device));
  // fq at the root of the ENI holds each packet until its departure time.
  // An ENI whose root an operator configured is left alone.
  TERWAY_ASSIGN_OR_RETURN(std::string root, RootQdiscKind(host, dev.index));
  if (root.empty()) {
    TERWAY_TRY(host.ReplaceRootQdisc(dev.index, "fq"));
  } else if (root != "fq") {
    return Errorf(ErrorCode::kUnsupported, "ENI link {} has a {} root qdisc, not fq", links.egress_device, root);
  }
  int fd = 0;
  uint32_t id = 0;
  {
    // The rate before the program: no moment with a program and no rate.
    std::lock_guard<std::mutex> lock(mu_);
    TERWAY_TRY(edt_->SetRate(*links.pod_ip, (rate + 7) / 8));
    fd = edt_->prog_fd();
    id = edt_->prog_id();
  }
  TERWAY_TRY(host.EnsureClsact(dev.index));
  TERWAY_ASSIGN_OR_RETURN(auto filters, host.ListFilters(dev.index, netlink::kTcClsactEgress));
  int ours = 0;
  bool right = true;
  for (const auto& f : filters) {
    if (f.priority != kEdtFilterPriority) continue;
    ++ours;
    right = right && f.kind == "bpf" && f.bpf_id == id;
  }
  if (ours != 1 || !right) {
    // Ours from an earlier terwayd (another program, another map) or
    // duplicates: replace. The new filter first would not work (same
    // priority), so there is a moment without pacing on this ENI.
    TERWAY_TRY(host.DeleteFiltersIfExist(dev.index, netlink::kTcClsactEgress, kEdtFilterPriority));
    TERWAY_TRY(host.AddBpfFilter({dev.index, netlink::kTcClsactEgress, kEdtFilterPriority, fd, EdtProgram::kName}));
  }
  return Ok();
}

Status BandwidthShaper::CheckEdtEgress(netlink::Handle& host, const PodShapingLinks& links, uint64_t rate) {
  std::optional<terway_edt_state> st;
  uint32_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TERWAY_ASSIGN_OR_RETURN(st, edt_->Get(*links.pod_ip));
    id = edt_->prog_id();
  }
  if (!st || st->bytes_per_sec != (rate + 7) / 8)
    return Errorf(ErrorCode::kConflict, "{}: EDT rate is {}, want {}", links.pod_ip->ToString(),
                  st ? Mbit(st->bytes_per_sec * 8) : std::string("unset"), Mbit(rate));
  TERWAY_ASSIGN_OR_RETURN(auto dev, host.GetLink(links.egress_device));
  TERWAY_ASSIGN_OR_RETURN(auto filters, host.ListFilters(dev.index, netlink::kTcClsactEgress));
  bool attached = false;
  for (const auto& f : filters) attached = attached || (f.priority == kEdtFilterPriority && f.bpf_id == id);
  if (!attached)
    return Errorf(ErrorCode::kNotFound, "ENI link {}: terwayd's EDT program is not attached", links.egress_device);
  TERWAY_ASSIGN_OR_RETURN(std::string root, RootQdiscKind(host, dev.index));
  if (root != "fq")
    return Errorf(ErrorCode::kNotFound, "ENI link {}: no fq at its root to enforce EDT", links.egress_device);
  return Ok();
}

Status BandwidthShaper::ApplyEgress(netlink::Handle& host, const netlink::Link& veth, const PodShapingLinks& links,
                                    uint64_t rate, uint64_t burst) {
  if (rate == 0) {
    TERWAY_TRY(RemoveEgress(host, veth.index, links.ifb));
    return links.pod_ip ? ForgetAddress(*links.pod_ip) : Ok();
  }
  if (UsesEdt(links)) {
    Status edt = ApplyEdtEgress(host, links, rate);
    if (edt.ok()) {
      // Paced now: the IFB path (from a TBF kernel, or this pod's ENI
      // before its root was freed) can go without a gap.
      return RemoveEgress(host, veth.index, links.ifb);
    }
    if (edt.error().code != ErrorCode::kUnsupported) return edt;
    log::Warn("qos: {}: {}; shaping its egress with an IFB", links.host_veth, edt.error().message);
  }
  TERWAY_TRY(ApplyIfbEgress(host, veth, links, rate, burst));
  // Shaped by the IFB now: an EDT rate of this address can go.
  return links.pod_ip ? ForgetAddress(*links.pod_ip) : Ok();
}

Status BandwidthShaper::ApplyIfbEgress(netlink::Handle& host, const netlink::Link& veth,
                                       const PodShapingLinks& links, uint64_t rate, uint64_t burst) {
  auto ifb = host.GetLink(links.ifb);
  if (!ifb.ok()) {
    if (ifb.error().code != ErrorCode::kNotFound) return std::move(ifb).error();
    Status c = host.CreateIfb(links.ifb);
    if (!c.ok() && c.error().code != ErrorCode::kAlreadyExists) return c;
    ifb = host.GetLink(links.ifb);
    if (!ifb.ok()) return std::move(ifb).error();
  }
  if (ifb->kind != "ifb")
    return Errorf(ErrorCode::kConflict, "link {} exists and is a {}, not an ifb; delete it", links.ifb, ifb->kind);
  if (ifb->alias != links.ifb_alias) TERWAY_TRY(host.SetAlias(ifb->index, links.ifb_alias));
  if (ifb->mtu != veth.mtu && veth.mtu > 0) TERWAY_TRY(host.SetMtu(ifb->index, veth.mtu));
  if (!ifb->admin_up) TERWAY_TRY(host.SetLinkUp(ifb->index));

  // The IFB's shaper first, then the redirect: no moment with an unshaped
  // redirect.
  netlink::TokenBucket tb = TokenBucketFor(rate, burst, veth.mtu);
  TERWAY_ASSIGN_OR_RETURN(auto cur, host.GetRootTbf(ifb->index));
  if (!cur || cur->rate_bytes_per_sec != tb.rate_bytes_per_sec || cur->limit_bytes != netlink::TbfQueueLimitBytes(tb))
    TERWAY_TRY(host.ReplaceRootTbf(ifb->index, tb));

  TERWAY_TRY(host.EnsureClsact(veth.index));
  TERWAY_ASSIGN_OR_RETURN(auto filters, host.ListFilters(veth.index, netlink::kTcClsactIngress));
  int ours = 0;
  bool right = true;
  for (const auto& f : filters) {
    if (f.priority != kRedirectFilterPriority) continue;
    ++ours;
    right = right && f.kind == "u32" && f.redirect_index == ifb->index;
  }
  if (ours == 1 && right) return Ok();
  // A stale redirect (to an IFB that was recreated) or duplicates: start over.
  TERWAY_TRY(host.DeleteFiltersIfExist(veth.index, netlink::kTcClsactIngress, kRedirectFilterPriority));
  return host.AddRedirectFilter({veth.index, netlink::kTcClsactIngress, kRedirectFilterPriority, ifb->index});
}

Status BandwidthShaper::RemoveEgress(netlink::Handle& host, int veth_index, const std::string& ifb) {
  if (veth_index > 0) {
    TERWAY_TRY(host.DeleteFiltersIfExist(veth_index, netlink::kTcClsactIngress, kRedirectFilterPriority));
    // clsact goes only when nothing else hangs on it.
    TERWAY_ASSIGN_OR_RETURN(auto in, host.ListFilters(veth_index, netlink::kTcClsactIngress));
    TERWAY_ASSIGN_OR_RETURN(auto out, host.ListFilters(veth_index, netlink::kTcClsactEgress));
    if (in.empty() && out.empty()) TERWAY_TRY(host.DeleteClsactIfExists(veth_index));
  }
  return host.DeleteLinkIfExists(ifb);
}

Status BandwidthShaper::Apply(netlink::Handle& host, const PodShapingLinks& links, const cni::Bandwidth& bw) {
  std::string what = "shaping pod link " + links.host_veth;
  auto veth = host.GetLink(links.host_veth);
  if (!veth.ok()) return std::move(veth).error().Wrap(what);
  if (bw.ingress_rate || bw.egress_rate) Backend(host);
  Status s = ApplyIngress(host, *veth, bw.ingress_rate, bw.ingress_burst);
  if (!s.ok()) return std::move(s).error().Wrap(what + ": ingress (to the pod) " + Mbit(bw.ingress_rate));
  s = ApplyEgress(host, *veth, links, bw.egress_rate, bw.egress_burst);
  if (!s.ok()) return std::move(s).error().Wrap(what + ": egress (from the pod) " + Mbit(bw.egress_rate));
  return Ok();
}

Status BandwidthShaper::Remove(netlink::Handle& host, const PodShapingLinks& links) {
  auto veth = host.GetLink(links.host_veth);
  int index = 0;
  if (veth.ok()) {
    index = veth->index;
  } else if (veth.error().code != ErrorCode::kNotFound) {
    return std::move(veth).error();
  }
  if (index > 0) {
    Status s = host.DeleteRootQdiscIfExists(index);
    if (!s.ok() && !IsNotFound(s)) return std::move(s).error().Wrap("removing shaping of " + links.host_veth);
  }
  Status s = RemoveEgress(host, index, links.ifb);
  if (!s.ok() && !IsNotFound(s)) return std::move(s).error().Wrap("removing shaping of " + links.host_veth);
  if (links.pod_ip) TERWAY_TRY(ForgetAddress(*links.pod_ip));
  return Ok();
}

Status BandwidthShaper::Check(netlink::Handle& host, const PodShapingLinks& links,
                              const std::optional<cni::Bandwidth>& bw) {
  cni::Bandwidth want = bw.value_or(cni::Bandwidth{});
  TERWAY_ASSIGN_OR_RETURN(auto veth, host.GetLink(links.host_veth));
  TERWAY_ASSIGN_OR_RETURN(auto in_tbf, host.GetRootTbf(veth.index));
  if (want.ingress_rate) {
    uint64_t rate = TokenBucketFor(want.ingress_rate, want.ingress_burst, veth.mtu).rate_bytes_per_sec;
    if (!in_tbf)
      return Errorf(ErrorCode::kNotFound, "{}: no tbf for the ingress limit {}", links.host_veth,
                    Mbit(want.ingress_rate));
    if (in_tbf->rate_bytes_per_sec != rate)
      return Errorf(ErrorCode::kConflict, "{}: ingress tbf rate is {}, want {}", links.host_veth,
                    Mbit(in_tbf->rate_bytes_per_sec * 8), Mbit(want.ingress_rate));
  } else if (in_tbf) {
    return Errorf(ErrorCode::kConflict, "{}: shaped to {} but the pod has no ingress limit", links.host_veth,
                  Mbit(in_tbf->rate_bytes_per_sec * 8));
  }

  auto ifb = host.GetLink(links.ifb);
  if (!ifb.ok() && ifb.error().code != ErrorCode::kNotFound) return std::move(ifb).error();
  TERWAY_ASSIGN_OR_RETURN(auto filters, host.ListFilters(veth.index, netlink::kTcClsactIngress));
  std::optional<netlink::FilterInfo> redirect;
  for (const auto& f : filters) {
    if (f.priority == kRedirectFilterPriority) redirect = f;
  }
  if (want.egress_rate) Backend(host);
  if (want.egress_rate && UsesEdt(links) && !redirect && !ifb.ok()) {
    return CheckEdtEgress(host, links, want.egress_rate);
  }
  if (links.pod_ip && EdtLoaded()) {
    std::optional<terway_edt_state> st;
    {
      std::lock_guard<std::mutex> lock(mu_);
      TERWAY_ASSIGN_OR_RETURN(st, edt_->Get(*links.pod_ip));
    }
    if (st) {
      return Errorf(ErrorCode::kConflict, "{}: an EDT rate is set but the pod's egress is {}", links.host_veth,
                    want.egress_rate ? "shaped by an IFB" : "not limited");
    }
  }
  if (!want.egress_rate) {
    if (ifb.ok()) return Errorf(ErrorCode::kConflict, "{}: ifb {} exists but the pod has no egress limit",
                                links.host_veth, links.ifb);
    if (redirect) return Errorf(ErrorCode::kConflict, "{}: redirect filter exists but the pod has no egress limit",
                                links.host_veth);
    return Ok();
  }
  if (!ifb.ok()) return Errorf(ErrorCode::kNotFound, "{}: ifb {} for the egress limit {} is missing",
                               links.host_veth, links.ifb, Mbit(want.egress_rate));
  if (!ifb->admin_up) return Errorf(ErrorCode::kConflict, "ifb {} is down", links.ifb);
  if (!redirect || redirect->redirect_index != ifb->index)
    return Errorf(ErrorCode::kNotFound, "{}: no redirect of its ingress to ifb {}", links.host_veth, links.ifb);
  TERWAY_ASSIGN_OR_RETURN(auto out_tbf, host.GetRootTbf(ifb->index));
  uint64_t rate = TokenBucketFor(want.egress_rate, want.egress_burst, veth.mtu).rate_bytes_per_sec;
  if (!out_tbf) return Errorf(ErrorCode::kNotFound, "ifb {}: no tbf for the egress limit {}", links.ifb,
                              Mbit(want.egress_rate));
  if (out_tbf->rate_bytes_per_sec != rate)
    return Errorf(ErrorCode::kConflict, "ifb {}: egress tbf rate is {}, want {}", links.ifb,
                  Mbit(out_tbf->rate_bytes_per_sec * 8), Mbit(want.egress_rate));
  return Ok();
}

}  // namespace terway::qos
