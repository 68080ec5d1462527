// Builders and parsers for the tc (traffic control) messages that libnl-route
// 3.7 cannot express or read back fully: TBF with 64-bit rates
// (TCA_TBF_RATE64, above 32 Gbit/s) and an explicit burst (TCA_TBF_BURST),
// a u32 match-all filter with a mirred redirect action, IFB links, and bare
// qdiscs (the fq probe). Pure: they allocate or read messages and never touch
// the kernel, so unit tests check the exact attributes by parsing what was
// built.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <linux/netlink.h>

#include "common/result.h"
#include "netlink/message.h"
#include "netlink/types.h"

namespace terway::netlink {

// TBF's queue limit in bytes, as `tc ... tbf latency L` computes it: what
// the rate drains in `latency_ms`, plus the bucket.
uint64_t TbfQueueLimitBytes(const TokenBucket& tb);

// RTM_NEWQDISC (NLM_F_CREATE | NLM_F_REPLACE) for a TBF at the root of the
// link, handle 1:. Rates of 2^32 B/s and more go in TCA_TBF_RATE64.
Result<NlMsgPtr> BuildRootTbfReplace(int link_index, const TokenBucket& tb);
// RTM_NEWQDISC (NLM_F_CREATE | NLM_F_EXCL) of `kind` with no options.
Result<NlMsgPtr> BuildQdiscAdd(int link_index, const std::string& kind, uint32_t parent, uint32_t handle);
Result<NlMsgPtr> BuildQdiscDelete(int link_index, uint32_t parent, uint32_t handle);
// RTM_NEWLINK for an IFB device (kind "ifb").
Result<NlMsgPtr> BuildIfbCreate(const std::string& name);
// RTM_NEWLINK of a link of `kind` on a parent link (ipvlan, macvlan, ...).
Result<NlMsgPtr> BuildChildLinkCreate(const std::string& name, const std::string& kind, int parent_index);

// RTM_NEWTFILTER (NLM_F_CREATE | NLM_F_EXCL) of the RedirectFilter
// (types.h) as a u32 filter: one key with mask 0 matches every packet. The
// kernel picks the handle: a fixed one could clash with another u32 filter's
// hash table on the same hook.
Result<NlMsgPtr> BuildRedirectFilterAdd(const RedirectFilter& f);
// RTM_NEWTFILTER (NLM_F_CREATE | NLM_F_EXCL) of a direct-action cls_bpf filter.
Result<NlMsgPtr> BuildBpfFilterAdd(const BpfFilter& f);
// RTM_NEWQDISC (NLM_F_CREATE | NLM_F_REPLACE) of `kind` at the root, no options.
Result<NlMsgPtr> BuildRootQdiscReplace(int link_index, const std::string& kind);
// RTM_DELTFILTER of every filter at (parent, priority), any protocol.
Result<NlMsgPtr> BuildFilterDelete(int link_index, uint32_t parent, uint16_t priority);
// RTM_GETQDISC / RTM_GETTFILTER dump requests.
Result<NlMsgPtr> BuildQdiscDump();
Result<NlMsgPtr> BuildFilterDump(int link_index, uint32_t parent);

// A TBF read back from an RTM_NEWQDISC message (dump reply or the request
// above); nullopt for other kinds.
std::optional<TbfInfo> ParseTbf(const nlmsghdr* h);

// A filter read back from an RTM_NEWTFILTER message.
std::optional<FilterInfo> ParseFilter(const nlmsghdr* h);

}  // namespace terway::netlink
