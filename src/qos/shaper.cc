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
  return backend_ == ShapingBackend::kEdt && edt_ && !links.egress_device.empty();
}

bool BandwidthShaper::EdtLoaded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return edt_ != nullptr;
}

Status BandwidthShaper::ForgetLink(int ifindex) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!edt_) return Ok();
  return edt_->Clear(ifindex);
}

Result<std::vector<std::string>> BandwidthShaper::CollectGarbage(netlink::Handle& host) {
  std::vector<std::string> removed;
  std::lock_guard<std::mutex> lock(mu_);
  if (!edt_) return removed;
  TERWAY_ASSIGN_OR_RETURN(auto links, edt_->Links());
  for (int index : links) {
    bool ours = false;
    if (host.GetLinkByIndex(index).ok()) {
      auto filters = host.ListFilters(index, netlink::kTcClsactIngress);
      if (filters.ok()) {
        for (const auto& f : *filters) ours = ours || (f.priority == kEdtFilterPriority && f.kind == "bpf");
      }
    }
    if (ours) continue;
    TERWAY_TRY(edt_->Clear(index));
    removed.push_back(fmt::format("EDT rate of link #{} (no pod link carries it)", index));
  }
  return removed;
}

Status BandwidthShaper::ApplyEdtEgress(netlink::Handle& host, const netlink::Link& veth,
                                       const PodShapingLinks& links, uint64_t rate) {
  // fq at the root of the device the pod's packets leave through: it holds
  // each one until its stamped departure time.
  TERWAY_ASSIGN_OR_RETURN(auto dev, host.GetLink(links.egress_device));
  TERWAY_ASSIGN_OR_RETURN(auto qdiscs, host.ListQdiscs(dev.index));
  bool fq = false;
  for (const auto& q : qdiscs) fq = fq || (q.parent == netlink::kTcHandleRoot && q.kind == "fq");
  if (!fq) TERWAY_TRY(host.ReplaceRootQdisc(dev.index, "fq"));
  // The rate before the program: no moment with a program and no rate.
  {
    std::lock_guard<std::mutex> lock(mu_);
    TERWAY_TRY(edt_->SetRate(veth.index, (rate + 7) / 8));
  }
  // An IFB path of this pod (from before a restart on a TBF kernel) goes.
  TERWAY_TRY(host.DeleteFiltersIfExist(veth.index, netlink::kTcClsactIngress, kRedirectFilterPriority));
  TERWAY_TRY(host.DeleteLinkIfExists(links.ifb));
  TERWAY_TRY(host.EnsureClsact(veth.index));
  TERWAY_ASSIGN_OR_RETURN(auto filters, host.ListFilters(veth.index, netlink::kTcClsactIngress));
  int ours = 0;
  bool right = true;
  for (const auto& f : filters) {
    if (f.priority != kEdtFilterPriority) continue;
    ++ours;
    right = right && f.kind == "bpf" && f.bpf_name.rfind(EdtProgram::kName, 0) == 0;
  }
  if (ours == 1 && right) return Ok();
  TERWAY_TRY(host.DeleteFiltersIfExist(veth.index, netlink::kTcClsactIngress, kEdtFilterPriority));
  int fd = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fd = edt_->prog_fd();
  }
  return host.AddBpfFilter({veth.index, netlink::kTcClsactIngress, kEdtFilterPriority, fd, EdtProgram::kName});
}

Status BandwidthShaper::ApplyEgress(netlink::Handle& host, const netlink::Link& veth, const PodShapingLinks& links,
                                    uint64_t rate, uint64_t burst) {
  if (rate == 0) return RemoveEgress(host, veth.index, links.ifb);
  if (UsesEdt(links)) return ApplyEdtEgress(host, veth, links, rate);
  // TBF path: no EDT filter or rate of this pod may remain.
  TERWAY_TRY(host.DeleteFiltersIfExist(veth.index, netlink::kTcClsactIngress, kEdtFilterPriority));
  TERWAY_TRY(ForgetLink(veth.index));
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
    TERWAY_TRY(host.DeleteFiltersIfExist(veth_index, netlink::kTcClsactIngress, kEdtFilterPriority));
    TERWAY_TRY(ForgetLink(veth_index));
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
  std::optional<netlink::FilterInfo> redirect, edt_filter;
  for (const auto& f : filters) {
    if (f.priority == kRedirectFilterPriority) redirect = f;
    if (f.priority == kEdtFilterPriority) edt_filter = f;
  }
  if (want.egress_rate && UsesEdt(links)) {
    if (!edt_filter || edt_filter->kind != "bpf")
      return Errorf(ErrorCode::kNotFound, "{}: the EDT program is not attached for the egress limit {}",
                    links.host_veth, Mbit(want.egress_rate));
    std::optional<terway_edt_state> st;
    {
      std::lock_guard<std::mutex> lock(mu_);
      TERWAY_ASSIGN_OR_RETURN(st, edt_->Get(veth.index));
    }
    if (!st || st->bytes_per_sec != (want.egress_rate + 7) / 8)
      return Errorf(ErrorCode::kConflict, "{}: EDT rate is {}, want {}", links.host_veth,
                    st ? Mbit(st->bytes_per_sec * 8) : std::string("unset"), Mbit(want.egress_rate));
    TERWAY_ASSIGN_OR_RETURN(auto dev, host.GetLink(links.egress_device));
    TERWAY_ASSIGN_OR_RETURN(auto qdiscs, host.ListQdiscs(dev.index));
    bool fq = false;
    for (const auto& q : qdiscs) fq = fq || (q.parent == netlink::kTcHandleRoot && q.kind == "fq");
    if (!fq) return Errorf(ErrorCode::kNotFound, "{}: no fq at the root of {} to enforce EDT", links.host_veth,
                           links.egress_device);
    return Ok();
  }
  if (edt_filter) {
    return Errorf(ErrorCode::kConflict, "{}: an EDT program is attached but the pod's egress is {}", links.host_veth,
                  want.egress_rate ? "shaped by an IFB" : "not limited");
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
