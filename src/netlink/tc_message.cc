#include "netlink/tc_message.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>

#include <cstring>
#include <vector>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include "netlink/names.h"

namespace terway::netlink {

namespace {

Error BuildError(const std::string& what) {
  return Errorf(ErrorCode::kInternal, "building tc message: {} does not fit", what);
}

Result<NlMsgPtr> NewTcMsg(int type, int flags, int link_index, uint32_t parent, uint32_t handle, uint32_t info) {
  NlMsgPtr msg(nlmsg_alloc_simple(type, flags));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = link_index;
  t.tcm_parent = parent;
  t.tcm_handle = handle;
  t.tcm_info = info;
  if (nlmsg_append(msg.get(), &t, sizeof(t), NLMSG_ALIGNTO) < 0) return BuildError("tcmsg");
  return msg;
}

// The kernel's scheduler clock: PSCHED_TICKS2NS(x) = x << 6.
constexpr int kPschedShift = 6;

uint32_t BurstToTicks(uint64_t burst_bytes, uint64_t rate_bytes_per_sec) {
  // Time to send the burst at the rate, in ticks (only informative: the
  // kernel recomputes it from TCA_TBF_BURST).
  unsigned __int128 ns = static_cast<unsigned __int128>(burst_bytes) * 1'000'000'000u / rate_bytes_per_sec;
  unsigned __int128 ticks = ns >> kPschedShift;
  return ticks > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(ticks);
}

}  // namespace

uint64_t TbfQueueLimitBytes(const TokenBucket& tb) {
  return tb.rate_bytes_per_sec * tb.latency_ms / 1000 + tb.burst_bytes;
}

Result<NlMsgPtr> BuildRootTbfReplace(int link_index, const TokenBucket& tb) {
  if (tb.rate_bytes_per_sec == 0 || tb.burst_bytes == 0)
    return MakeError(ErrorCode::kInvalidArgument, "tbf needs a rate and a burst above zero");
  uint64_t limit = TbfQueueLimitBytes(tb);
  if (limit > UINT32_MAX) limit = UINT32_MAX;
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewTcMsg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, link_index,
                                                 kTcHandleRoot, 0x00010000u, 0));
  nl_msg* m = msg.get();
  if (nla_put_string(m, TCA_KIND, "tbf") < 0) return BuildError("TCA_KIND");
  nlattr* opts = nla_nest_start(m, TCA_OPTIONS);
  if (!opts) return BuildError("TCA_OPTIONS");
  tc_tbf_qopt q{};
  // An Ethernet-aware rate spec: the kernel computes transmission times
  // itself and needs no rate table (TCA_TBF_RTAB) from us.
  q.rate.linklayer = TC_LINKLAYER_ETHERNET;
  q.rate.rate = tb.rate_bytes_per_sec >= (1ull << 32) ? UINT32_MAX : static_cast<uint32_t>(tb.rate_bytes_per_sec);
  q.limit = static_cast<uint32_t>(limit);
  q.buffer = BurstToTicks(tb.burst_bytes, tb.rate_bytes_per_sec);
  if (nla_put(m, TCA_TBF_PARMS, sizeof(q), &q) < 0) return BuildError("TCA_TBF_PARMS");
  if (tb.rate_bytes_per_sec >= (1ull << 32) && nla_put_u64(m, TCA_TBF_RATE64, tb.rate_bytes_per_sec) < 0)
    return BuildError("TCA_TBF_RATE64");
  if (nla_put_u32(m, TCA_TBF_BURST, tb.burst_bytes) < 0) return BuildError("TCA_TBF_BURST");
  nla_nest_end(m, opts);
  return msg;
}

Result<NlMsgPtr> BuildQdiscAdd(int link_index, const std::string& kind, uint32_t parent, uint32_t handle) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg,
                          NewTcMsg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, link_index, parent, handle, 0));
  if (nla_put_string(msg.get(), TCA_KIND, kind.c_str()) < 0) return BuildError("TCA_KIND");
  return msg;
}

Result<NlMsgPtr> BuildQdiscDelete(int link_index, uint32_t parent, uint32_t handle) {
  return NewTcMsg(RTM_DELQDISC, 0, link_index, parent, handle, 0);
}

Result<NlMsgPtr> BuildChildLinkCreate(const std::string& name, const std::string& kind, int parent_index) {
  TERWAY_TRY(ValidateLinkName(name));
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  nl_msg* m = msg.get();
  if (nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) return BuildError("ifinfomsg");
  if (nla_put_string(m, IFLA_IFNAME, name.c_str()) < 0) return BuildError("IFLA_IFNAME");
  if (nla_put_u32(m, IFLA_LINK, static_cast<uint32_t>(parent_index)) < 0) return BuildError("IFLA_LINK");
  nlattr* linkinfo = nla_nest_start(m, IFLA_LINKINFO);
  if (!linkinfo || nla_put_string(m, IFLA_INFO_KIND, kind.c_str()) < 0) return BuildError("IFLA_LINKINFO");
  nla_nest_end(m, linkinfo);
  return msg;
}

Result<NlMsgPtr> BuildIfbCreate(const std::string& name) {
  TERWAY_TRY(ValidateLinkName(name));
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  nl_msg* m = msg.get();
  if (nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) return BuildError("ifinfomsg");
  if (nla_put_string(m, IFLA_IFNAME, name.c_str()) < 0) return BuildError("IFLA_IFNAME");
  nlattr* linkinfo = nla_nest_start(m, IFLA_LINKINFO);
  if (!linkinfo || nla_put_string(m, IFLA_INFO_KIND, "ifb") < 0) return BuildError("IFLA_LINKINFO");
  nla_nest_end(m, linkinfo);
  return msg;
}

Result<NlMsgPtr> BuildRedirectFilterAdd(const RedirectFilter& f) {
  if (f.target_index <= 0 || f.link_index <= 0 || f.priority == 0)
    return MakeError(ErrorCode::kInvalidArgument, "redirect filter needs a link, a target and a priority");
  uint32_t info = (static_cast<uint32_t>(f.priority) << 16) | htons(ETH_P_ALL);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewTcMsg(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, f.link_index,
                                                 f.parent, 0, info));
  nl_msg* m = msg.get();
  if (nla_put_string(m, TCA_KIND, "u32") < 0) return BuildError("TCA_KIND");
  nlattr* opts = nla_nest_start(m, TCA_OPTIONS);
  if (!opts) return BuildError("TCA_OPTIONS");
  // One key with mask 0 matches every packet; TERMINAL ends the lookup.
  std::vector<uint8_t> sel(sizeof(tc_u32_sel) + sizeof(tc_u32_key), 0);
  auto* s = reinterpret_cast<tc_u32_sel*>(sel.data());
  s->flags = TC_U32_TERMINAL;
  s->nkeys = 1;
  if (nla_put(m, TCA_U32_SEL, static_cast<int>(sel.size()), sel.data()) < 0) return BuildError("TCA_U32_SEL");
  nlattr* acts = nla_nest_start(m, TCA_U32_ACT);
  nlattr* first = acts ? nla_nest_start(m, 1) : nullptr;  // action order 1
  if (!first || nla_put_string(m, TCA_ACT_KIND, "mirred") < 0) return BuildError("TCA_U32_ACT");
  nlattr* aopts = nla_nest_start(m, TCA_ACT_OPTIONS);
  if (!aopts) return BuildError("TCA_ACT_OPTIONS");
  tc_mirred p{};
  p.action = TC_ACT_STOLEN;  // the packet now belongs to the IFB
  p.eaction = TCA_EGRESS_REDIR;
  p.ifindex = static_cast<uint32_t>(f.target_index);
  if (nla_put(m, TCA_MIRRED_PARMS, sizeof(p), &p) < 0) return BuildError("TCA_MIRRED_PARMS");
  nla_nest_end(m, aopts);
  nla_nest_end(m, first);
  nla_nest_end(m, acts);
  nla_nest_end(m, opts);
  return msg;
}

Result<NlMsgPtr> BuildBpfFilterAdd(const BpfFilter& f) {
  if (f.link_index <= 0 || f.prog_fd < 0 || f.priority == 0)
    return MakeError(ErrorCode::kInvalidArgument, "bpf filter needs a link, a program and a priority");
  uint32_t info = (static_cast<uint32_t>(f.priority) << 16) | htons(ETH_P_ALL);
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewTcMsg(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, f.link_index,
                                                 f.parent, 0, info));
  nl_msg* m = msg.get();
  if (nla_put_string(m, TCA_KIND, "bpf") < 0) return BuildError("TCA_KIND");
  nlattr* opts = nla_nest_start(m, TCA_OPTIONS);
  if (!opts) return BuildError("TCA_OPTIONS");
  if (nla_put_u32(m, TCA_BPF_FD, static_cast<uint32_t>(f.prog_fd)) < 0) return BuildError("TCA_BPF_FD");
  if (!f.name.empty() && nla_put_string(m, TCA_BPF_NAME, f.name.c_str()) < 0) return BuildError("TCA_BPF_NAME");
  if (nla_put_u32(m, TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT) < 0) return BuildError("TCA_BPF_FLAGS");
  nla_nest_end(m, opts);
  return msg;
}

Result<NlMsgPtr> BuildRootQdiscReplace(int link_index, const std::string& kind) {
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewTcMsg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, link_index,
                                                 kTcHandleRoot, 0x00010000u, 0));
  if (nla_put_string(msg.get(), TCA_KIND, kind.c_str()) < 0) return BuildError("TCA_KIND");
  return msg;
}

Result<NlMsgPtr> BuildFilterDelete(int link_index, uint32_t parent, uint16_t priority) {
  uint32_t info = static_cast<uint32_t>(priority) << 16;  // protocol 0: any
  return NewTcMsg(RTM_DELTFILTER, 0, link_index, parent, 0, info);
}

Result<NlMsgPtr> BuildQdiscDump() { return NewTcMsg(RTM_GETQDISC, NLM_F_DUMP, 0, 0, 0, 0); }

Result<NlMsgPtr> BuildFilterDump(int link_index, uint32_t parent) {
  return NewTcMsg(RTM_GETTFILTER, NLM_F_DUMP, link_index, parent, 0, 0);
}

namespace {

const tcmsg* TcHeader(const nlmsghdr* h) {
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(tcmsg))) return nullptr;
  return static_cast<const tcmsg*>(NLMSG_DATA(h));
}

// Parses the attributes after the tcmsg into tb[0..max].
bool ParseTcAttrs(const nlmsghdr* h, nlattr** tb, int max) {
  return nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(tcmsg), tb, max, nullptr) == 0;
}

std::string Kind(nlattr* a) {
  if (!a) return "";
  return std::string(static_cast<const char*>(nla_data(a)), strnlen(static_cast<const char*>(nla_data(a)),
                                                                    static_cast<size_t>(nla_len(a))));
}

}  // namespace

std::optional<TbfInfo> ParseTbf(const nlmsghdr* h) {
  const tcmsg* t = TcHeader(h);
  if (!t) return std::nullopt;
  nlattr* tb[TCA_MAX + 1] = {};
  if (!ParseTcAttrs(h, tb, TCA_MAX) || Kind(tb[TCA_KIND]) != "tbf" || !tb[TCA_OPTIONS]) return std::nullopt;
  nlattr* o[TCA_TBF_MAX + 1] = {};
  if (nla_parse_nested(o, TCA_TBF_MAX, tb[TCA_OPTIONS], nullptr) < 0 || !o[TCA_TBF_PARMS]) return std::nullopt;
  if (static_cast<size_t>(nla_len(o[TCA_TBF_PARMS])) < sizeof(tc_tbf_qopt)) return std::nullopt;
  tc_tbf_qopt q;
  std::memcpy(&q, nla_data(o[TCA_TBF_PARMS]), sizeof(q));
  TbfInfo out;
  out.link_index = t->tcm_ifindex;
  out.parent = t->tcm_parent;
  out.handle = t->tcm_handle;
  out.rate_bytes_per_sec = q.rate.rate;
  if (o[TCA_TBF_RATE64]) out.rate_bytes_per_sec = nla_get_u64(o[TCA_TBF_RATE64]);
  out.limit_bytes = q.limit;
  if (o[TCA_TBF_BURST]) {
    out.burst_bytes = nla_get_u32(o[TCA_TBF_BURST]);
  } else {
    // Dumps carry the bucket as time: bytes = rate * ticks * 64 ns.
    unsigned __int128 ns = static_cast<unsigned __int128>(q.buffer) << kPschedShift;
    out.burst_bytes = static_cast<uint64_t>(ns * out.rate_bytes_per_sec / 1'000'000'000u);
  }
  return out;
}

std::optional<FilterInfo> ParseFilter(const nlmsghdr* h) {
  const tcmsg* t = TcHeader(h);
  if (!t) return std::nullopt;
  nlattr* tb[TCA_MAX + 1] = {};
  if (!ParseTcAttrs(h, tb, TCA_MAX)) return std::nullopt;
  FilterInfo f;
  f.link_index = t->tcm_ifindex;
  f.parent = t->tcm_parent;
  f.priority = static_cast<uint16_t>(t->tcm_info >> 16);
  f.protocol = ntohs(static_cast<uint16_t>(t->tcm_info & 0xFFFF));
  f.handle = t->tcm_handle;
  f.kind = Kind(tb[TCA_KIND]);
  if (f.kind == "bpf" && tb[TCA_OPTIONS]) {
    nlattr* b[TCA_BPF_MAX + 1] = {};
    if (nla_parse_nested(b, TCA_BPF_MAX, tb[TCA_OPTIONS], nullptr) >= 0) {
      if (b[TCA_BPF_NAME]) f.bpf_name = nla_get_string(b[TCA_BPF_NAME]);
      if (b[TCA_BPF_ID]) f.bpf_id = nla_get_u32(b[TCA_BPF_ID]);
    }
    return f;
  }
  if (f.kind != "u32" || !tb[TCA_OPTIONS]) return f;
  nlattr* u[TCA_U32_MAX + 1] = {};
  if (nla_parse_nested(u, TCA_U32_MAX, tb[TCA_OPTIONS], nullptr) < 0 || !u[TCA_U32_ACT]) return f;
  nlattr* acts[TCA_ACT_MAX_PRIO + 1] = {};
  if (nla_parse_nested(acts, TCA_ACT_MAX_PRIO, u[TCA_U32_ACT], nullptr) < 0 || !acts[1]) return f;
  nlattr* a[TCA_ACT_MAX + 1] = {};
  if (nla_parse_nested(a, TCA_ACT_MAX, acts[1], nullptr) < 0 || Kind(a[TCA_ACT_KIND]) != "mirred" ||
      !a[TCA_ACT_OPTIONS])
    return f;
  nlattr* mo[TCA_MIRRED_MAX + 1] = {};
  if (nla_parse_nested(mo, TCA_MIRRED_MAX, a[TCA_ACT_OPTIONS], nullptr) < 0 || !mo[TCA_MIRRED_PARMS] ||
      static_cast<size_t>(nla_len(mo[TCA_MIRRED_PARMS])) < sizeof(tc_mirred))
    return f;
  tc_mirred p;
  std::memcpy(&p, nla_data(mo[TCA_MIRRED_PARMS]), sizeof(p));
  f.redirect_index = static_cast<int>(p.ifindex);
  f.mirred_eaction = p.eaction;
  return f;
}

}  // namespace terway::netlink
