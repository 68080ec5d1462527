// netlink::Handle: traffic control (qdiscs, clsact, tbf, filters).
#include "netlink/handle.h"

#include <linux/rtnetlink.h>

#include <cstring>
#include <functional>

#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "netlink/handle_internal.h"
#include "netlink/tc_message.h"

namespace terway::netlink {

using namespace internal;

// ---- traffic control -------------------------------------------------------

namespace {
constexpr uint32_t kTcRoot = 0xFFFFFFFFu;    // TC_H_ROOT
constexpr uint32_t kTcClsact = 0xFFFFFFF1u;  // TC_H_CLSACT (== TC_H_INGRESS)
constexpr uint32_t kClsactHandle = 0xFFFF0000u;

Result<QdiscPtr> MakeQdisc(int index, const char* kind, uint32_t parent, uint32_t handle) {
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return OutOfMemory();
  rtnl_tc_set_ifindex(TC_CAST(q.get()), index);
  rtnl_tc_set_parent(TC_CAST(q.get()), parent);
  rtnl_tc_set_handle(TC_CAST(q.get()), handle);
  if (kind && rtnl_tc_set_kind(TC_CAST(q.get()), kind) < 0) {
    return Errorf(ErrorCode::kUnsupported, "libnl does not know qdisc kind {}", kind);
  }
  return q;
}

Status SendQdisc(Handle::Socket& s, rtnl_qdisc* q, bool add, int flags, const std::string& what) {
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_qdisc_build_add_request(q, flags, &raw) : rtnl_qdisc_build_delete_request(q, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{}: {}", what, nl_geterror(rc));
  return Transact(s, msg.get(), what);
}
}  // namespace

Status Handle::EnsureClsact(int index) {
  TERWAY_TRY(AddClsactIfMissing(index));
  return Ok();
}

Result<bool> Handle::AddClsactIfMissing(int index) {
  TERWAY_ASSIGN_OR_RETURN(QdiscPtr q, MakeQdisc(index, "clsact", kTcClsact, kClsactHandle));
  Status s = SendQdisc(*s_, q.get(), true, NLM_F_CREATE | NLM_F_EXCL,
                       "adding clsact qdisc on link #" + std::to_string(index));
  if (!s.ok() && s.error().code == ErrorCode::kAlreadyExists) return false;
  if (!s.ok()) return std::move(s).error();
  return true;
}

Status Handle::DeleteClsactIfExists(int index) {
  TERWAY_ASSIGN_OR_RETURN(QdiscPtr q, MakeQdisc(index, "clsact", kTcClsact, kClsactHandle));
  Status s = SendQdisc(*s_, q.get(), false, 0, "deleting clsact qdisc on link #" + std::to_string(index));
  // The kernel answers EINVAL ("cannot find specified qdisc") or ENOENT.
  if (!s.ok() && (s.error().code == ErrorCode::kNotFound || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Status Handle::ReplaceRootTbf(int index, const TokenBucket& tb) {
  std::string what = fmt::format("setting tbf rate {} B/s burst {} B on link #{}", tb.rate_bytes_per_sec,
                                 tb.burst_bytes, index);
  auto msg = BuildRootTbfReplace(index, tb);
  if (!msg.ok()) return std::move(msg).error().Wrap(what);
  return Transact(*s_, msg->get(), what);
}

Status Handle::DeleteRootQdiscIfExists(int index) {
  TERWAY_ASSIGN_OR_RETURN(auto qdiscs, ListQdiscs(index));
  for (const auto& q : qdiscs) {
    // Handle 0 is the kernel's default qdisc: nothing of ours to remove.
    if (q.parent != kTcRoot || q.handle == 0) continue;
    TERWAY_ASSIGN_OR_RETURN(QdiscPtr del, MakeQdisc(index, nullptr, kTcRoot, q.handle));
    Status s = SendQdisc(*s_, del.get(), false, 0,
                         "deleting root qdisc " + q.kind + " on link #" + std::to_string(index));
    if (!s.ok() && !IsNotFound(s)) return s;
  }
  return Ok();
}

Result<std::vector<Qdisc>> Handle::ListQdiscs(int link_index) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing qdiscs", [&](nl_cache** c) {
                            return rtnl_qdisc_alloc_cache(s_->sk, c);
                          }));
  std::vector<Qdisc> out;
  ForEach<rtnl_qdisc>(cache.get(), [&](rtnl_qdisc* q) {
    Qdisc x;
    x.link_index = rtnl_tc_get_ifindex(TC_CAST(q));
    if (link_index && x.link_index != link_index) return;
    if (const char* k = rtnl_tc_get_kind(TC_CAST(q))) x.kind = k;
    x.handle = rtnl_tc_get_handle(TC_CAST(q));
    x.parent = rtnl_tc_get_parent(TC_CAST(q));
    out.push_back(x);
  });
  return out;
}

// ---- traffic shaping --------------------------------------------------------


Status Handle::AddQdisc(int index, const std::string& kind, uint32_t parent, uint32_t handle) {
  std::string what = fmt::format("adding {} qdisc on link #{}", kind, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildQdiscAdd(index, kind, parent, handle));
  Status s = Transact(*s_, msg.get(), what);
  // An unknown kind: the kernel tries to load sch_<kind> and answers ENOENT.
  if (!s.ok() && (s.error().sys_errno == ENOENT || s.error().sys_errno == EOPNOTSUPP)) {
    return Errorf(ErrorCode::kUnsupported, "{}: this kernel has no {} qdisc ({})", what, kind,
                  std::strerror(s.error().sys_errno));
  }
  return s;
}

Status Handle::DeleteQdiscIfExists(int index, uint32_t parent, uint32_t handle) {
  std::string what = fmt::format("deleting qdisc {:x}: on link #{}", handle >> 16, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildQdiscDelete(index, parent, handle));
  Status s = Transact(*s_, msg.get(), what);
  // "Cannot find specified qdisc" is ENOENT; deleting the default root is EINVAL.
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Result<std::optional<TbfInfo>> Handle::GetRootTbf(int index) {
  std::optional<TbfInfo> out;
  TERWAY_TRY(RawDump(
      *s_, [] { return BuildQdiscDump(); }, "listing qdiscs of link #" + std::to_string(index),
      [&](const nlmsghdr* h) {
        auto t = ParseTbf(h);
        if (t && t->link_index == index && t->parent == kTcHandleRoot) out = t;
      }));
  return out;
}

Status Handle::AddRedirectFilter(const RedirectFilter& f) {
  std::string what = fmt::format("redirecting link #{} to link #{} (u32 + mirred)", f.link_index, f.target_index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildRedirectFilterAdd(f));
  return Transact(*s_, msg.get(), what);
}

Status Handle::AddBpfFilter(const BpfFilter& f) {
  std::string what = fmt::format("attaching bpf program {} to link #{}", f.name, f.link_index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildBpfFilterAdd(f));
  return Transact(*s_, msg.get(), what);
}

Status Handle::ReplaceRootQdisc(int index, const std::string& kind) {
  std::string what = fmt::format("setting the root qdisc of link #{} to {}", index, kind);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildRootQdiscReplace(index, kind));
  Status s = Transact(*s_, msg.get(), what);
  if (!s.ok() && (s.error().sys_errno == ENOENT || s.error().sys_errno == EOPNOTSUPP)) {
    return Errorf(ErrorCode::kUnsupported, "{}: this kernel has no {} qdisc ({})", what, kind,
                  std::strerror(s.error().sys_errno));
  }
  return s;
}

Status Handle::DeleteFiltersIfExist(int index, uint32_t parent, uint16_t priority) {
  std::string what = fmt::format("deleting filters of priority {} on link #{}", priority, index);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, BuildFilterDelete(index, parent, priority));
  Status s = Transact(*s_, msg.get(), what);
  // No such priority: ENOENT; no clsact/ingress qdisc at all: EINVAL.
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return Ok();
  return s;
}

Result<std::vector<FilterInfo>> Handle::ListFilters(int index, uint32_t parent) {
  std::vector<FilterInfo> out;
  Status s = RawDump(
      *s_, [&] { return BuildFilterDump(index, parent); }, "listing filters of link #" + std::to_string(index),
      [&](const nlmsghdr* h) {
        auto f = ParseFilter(h);
        // A dump also reports one header per priority chain without a
        // handle, and for u32 its hash tables (node bits 0: 800:).
        if (!f || f->handle == 0) return;
        if (f->kind == "u32" && (f->handle & 0xFFFu) == 0) return;
        out.push_back(*f);
      });
  if (!s.ok() && (IsNotFound(s) || s.error().sys_errno == EINVAL)) return out;  // no qdisc on that hook
  if (!s.ok()) return std::move(s).error();
  return out;
}

}  // namespace terway::netlink
