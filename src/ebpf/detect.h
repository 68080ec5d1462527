// Whether this kernel can run the eBPF datapath, and if not, why (said once
// by the caller, which then serves the network with veth + policy routing).
#pragma once

#include "common/result.h"

namespace terway::ebpf {

// Ok when the kernel has: tc programs (BPF_PROG_TYPE_SCHED_CLS) with the
// helpers bpf_redirect_peer (Linux 5.10) and bpf_redirect_neigh (5.10), and
// the clsact qdisc (probed on the loopback of a throwaway namespace, so no
// link of the node is touched). kUnsupported naming the missing piece
// otherwise; kPermission when we may not use bpf(2) at all.
Status DetectSupport();

}  // namespace terway::ebpf
