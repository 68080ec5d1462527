#include "ebpf/detect.h"

#include <unistd.h>

#include <cerrno>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "netlink/handle.h"
#include "netlink/netns.h"

namespace terway::ebpf {

namespace {

Status ProbeHelper(bpf_func_id helper, const char* name) {
  int rc = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SCHED_CLS, helper, nullptr);
  if (rc == 1) return Ok();
  if (rc == 0) {
    return Errorf(ErrorCode::kUnsupported, "kernel lacks the BPF helper {} for tc programs (needs Linux 5.10+)",
                  name);
  }
  return SysError(fmt::format("probing the BPF helper {}", name), -rc);
}

// The programs ask conntrack before redirecting (bpf/lib/dp_ct.h) with the
// nf_conntrack kfuncs; without them the load fails with a bare EINVAL, so we
// look first and say why. The kernel declares them in vmlinux's BTF when
// nf_conntrack is built in, in the module's when it is a module (loaded).
bool BtfHasFunc(const btf* b, const char* name) {
  return b != nullptr && btf__find_by_name_kind(b, name, BTF_KIND_FUNC) > 0;
}

Status ProbeConntrackKfuncs() {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    return Errorf(ErrorCode::kUnsupported,
                  "kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): the eBPF datapath needs it to "
                  "call the conntrack kfunc bpf_skb_ct_lookup");
  }
  btf* mod = nullptr;
  if (access("/sys/kernel/btf/nf_conntrack", F_OK) == 0) mod = btf__load_module_btf("nf_conntrack", vmlinux);
  Status st = CheckConntrackKfuncs(vmlinux, mod);
  btf__free(mod);
  btf__free(vmlinux);
  return st;
}

}  // namespace

Status CheckConntrackKfuncs(const btf* vmlinux, const btf* nf_conntrack) {
  for (const btf* b : {vmlinux, nf_conntrack}) {
    if (BtfHasFunc(b, "bpf_skb_ct_lookup") && BtfHasFunc(b, "bpf_ct_release")) return Ok();
  }
  return Errorf(ErrorCode::kUnsupported,
                "kernel lacks the conntrack kfuncs bpf_skb_ct_lookup/bpf_ct_release (Linux 6.0+ with "
                "CONFIG_NF_CONNTRACK and CONFIG_DEBUG_INFO_BTF; load nf_conntrack if it is a module): without them "
                "the fast path would bypass the NAT of flows the host stack tracks");
}

namespace {

Status ProbeClsact() {
  const std::string ns = fmt::format("twbpfprobe{}", getpid());
  TERWAY_TRY_CTX(netlink::CreateNamedNetns(ns), "creating a scratch namespace to probe the clsact qdisc");
  Status st = [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN(netlink::Handle h, netlink::Handle::OpenIn(ns));
    Status s = h.EnsureClsact(1);  // loopback: every namespace has it, at index 1
    if (!s.ok()) {
      Error e = std::move(s).error();
      if (e.code == ErrorCode::kUnsupported || e.sys_errno == ENOENT) {
        e.code = ErrorCode::kUnsupported;
        e.message = "kernel lacks the clsact qdisc (CONFIG_NET_SCH_INGRESS): " + e.message;
      }
      return e;
    }
    return Ok();
  }();
  Status del = netlink::DeleteNamedNetns(ns);
  TERWAY_TRY(std::move(st));
  TERWAY_TRY_CTX(std::move(del), "removing scratch namespace " + ns);
  return Ok();
}

}  // namespace

Status DetectSupport() {
  int rc = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nullptr);
  if (rc < 0) {
    int err = -rc;
    if (err == EPERM) {
      return MakeError(ErrorCode::kPermission,
                       "bpf(2) refused: the eBPF datapath needs CAP_BPF and CAP_NET_ADMIN (or root)");
    }
    return SysError("probing tc BPF programs (BPF_PROG_TYPE_SCHED_CLS)", err).Wrap("detecting the eBPF datapath");
  }
  if (rc == 0) {
    return MakeError(ErrorCode::kUnsupported, "kernel lacks tc BPF programs (CONFIG_NET_CLS_BPF, sched_cls)");
  }
  TERWAY_TRY(ProbeHelper(BPF_FUNC_redirect_peer, "bpf_redirect_peer"));
  TERWAY_TRY(ProbeHelper(BPF_FUNC_redirect_neigh, "bpf_redirect_neigh"));
  TERWAY_TRY_CTX(ProbeConntrackKfuncs(), "detecting the eBPF datapath");
  TERWAY_TRY_CTX(ProbeClsact(), "detecting the eBPF datapath");
  return Ok();
}

}  // namespace terway::ebpf
