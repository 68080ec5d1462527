// Whether this kernel can run the eBPF datapath, and if not, why (said once
// by the caller, which then serves the network with veth + policy routing).
#pragma once

#include "common/result.h"

struct btf;  // libbpf's

namespace terway::ebpf {

// Ok when the kernel has: tc programs (BPF_PROG_TYPE_SCHED_CLS) with the
// helpers bpf_redirect_peer (Linux 5.10) and bpf_redirect_neigh (5.10), the
// conntrack kfuncs bpf_skb_ct_lookup and bpf_ct_release (6.0, in vmlinux's
// or nf_conntrack's BTF: the programs leave flows the stack tracks to it),
// and the clsact qdisc (probed on the loopback of a throwaway namespace, so no
// link of the node is touched). kUnsupported naming the missing piece
// otherwise; kPermission when we may not use bpf(2) at all.
Status DetectSupport();

// The kfunc part of DetectSupport, over BTF already loaded (either may be
// null): Ok when vmlinux's or the nf_conntrack module's BTF declares both
// bpf_skb_ct_lookup and bpf_ct_release, kUnsupported saying what is missing
// otherwise.
Status CheckConntrackKfuncs(const btf* vmlinux, const btf* nf_conntrack);

}  // namespace terway::ebpf
