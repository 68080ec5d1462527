#include "ebpf/detect.h"

#include <unistd.h>

#include <cerrno>

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
  TERWAY_TRY_CTX(ProbeClsact(), "detecting the eBPF datapath");
  return Ok();
}

}  // namespace terway::ebpf
