// BandwidthShaper: per-pod rate limits with tc on the pod's host-side veth.
//
//   traffic INTO the pod   -> TBF at the root of the host veth (its egress
//                             is the pod's ingress)
//   traffic OUT of the pod -> clsact on the host veth; its ingress hook
//                             redirects every packet (u32 match-all + mirred)
//                             to an IFB device whose root is a TBF; the IFB
//                             hands the shaped packets back to the stack as
//                             if received on the veth
//
// Why an IFB and not a TBF on the pod-side veth: everything stays in the host
// namespace, out of reach of a pod with CAP_NET_ADMIN, and the daemon never
// has to enter the pod's namespace to update or verify a limit.
//
// EDT, where the kernel has the fq qdisc (probed once at run time, and the
// finding logged): traffic OUT of the pod is paced where it leaves the node.
// An eBPF program on the egress hook of the pod's ENI (bpf/edt_eni_egress.c,
// direct action) stamps each packet from a limited pod's address with its
// earliest departure time, and fq at the root of that ENI holds it until
// then: no IFB, no per-pod queue, no lock. Traffic to pods of the same node
// never reaches the ENI and is not limited (as with Cilium's bandwidth
// manager). Pods whose ENI is not a host link (exclusive ENI: it is inside
// the pod), and ENIs whose root qdisc is one an operator chose, keep the IFB
// path. This project's kernel lacks fq: the shaper says so and uses TBF.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cni/config.h"
#include "common/ip.h"
#include "common/result.h"
#include "netlink/handle.h"
#include "netlink/types.h"
#include "qos/edt.h"

namespace terway::qos {

// The links one pod's shaping lives on, named by the datapath.
struct PodShapingLinks {
  std::string host_veth;  // must exist for Apply and Check
  std::string ifb;        // created by Apply when egress is limited (TBF backend)
  std::string ifb_alias;  // the IFB's owner record (for garbage collection)
  // The host link the pod's traffic leaves through (its ENI), where fq
  // enforces EDT; "" when unknown (then the IFB path is used).
  std::string egress_device;
  // The pod's address: EDT's key.
  std::optional<Ipv4Addr> pod_ip;
};

// Priority of our redirect filter on the veth's clsact ingress hook. High
// (late) so programs attached at the usual low priorities run first.
inline constexpr uint16_t kRedirectFilterPriority = 0xC000;
// Priority of the EDT program's filter on an ENI's egress hook.
inline constexpr uint16_t kEdtFilterPriority = 0xC001;

// How long a packet may wait in a TBF queue. Sets the queue limit (rate x
// latency + burst): long enough that a TCP flow is not cut back by drops at
// every burst (the measured rate then stays within a few percent of the
// limit), short enough not to add latency anybody notices.
inline constexpr uint32_t kQueueLatencyMs = 50;

// The TBF for a CNI rate (bits/s) and burst (bits) on a link of `mtu`:
// rate rounded up to whole bytes; burst at least one full frame (MTU +
// Ethernet header, or TBF could never send a full-size packet) and at most
// 4 GiB - 1 (the kernel's u32).
netlink::TokenBucket TokenBucketFor(uint64_t rate_bits_per_sec, uint64_t burst_bits, int mtu);

enum class ShapingBackend { kTbf, kEdt };

class BandwidthShaper {
 public:
  // Makes the pod's shaping exactly `bw` (a rate of 0 = that direction
  // unlimited): installs, changes or removes qdiscs, filter and IFB as
  // needed. Idempotent.
  Status Apply(netlink::Handle& host, const PodShapingLinks& links, const cni::Bandwidth& bw);
  // Removes all shaping of the pod: the IFB, and qdiscs/filter on the host
  // veth if it still exists. Success when already gone.
  Status Remove(netlink::Handle& host, const PodShapingLinks& links);
  // Verifies without changing anything that the kernel shapes exactly `bw`
  // (nullopt or zero rates: no shaping). The error names what differs.
  Status Check(netlink::Handle& host, const PodShapingLinks& links, const std::optional<cni::Bandwidth>& bw);

  // Which backend this kernel allows (probed once, logged once): kEdt when
  // the fq qdisc can be created and the EDT program loads.
  ShapingBackend Backend(netlink::Handle& host);
  // The address left its pod (DEL), or its new pod has no limit: forgets
  // whatever the EDT map holds for it (no-op without EDT).
  Status ForgetAddress(Ipv4Addr pod_ip);
  bool EdtLoaded() const;
  // EDT map entries of addresses no live pod holds; one line per removal.
  Result<std::vector<std::string>> CollectGarbage(const std::set<Ipv4Addr>& live_pod_ips);
  // The probe's finding, for logs and tests ("" before the first probe).
  std::string BackendReason() const;

 private:
  Status ApplyIngress(netlink::Handle& host, const netlink::Link& veth, uint64_t rate, uint64_t burst);
  Status ApplyEgress(netlink::Handle& host, const netlink::Link& veth, const PodShapingLinks& links,
                     uint64_t rate, uint64_t burst);
  // Ok: EDT shapes the pod. kUnsupported: it cannot here (the caller uses
  // the IFB path instead); other errors are failures.
  Status ApplyEdtEgress(netlink::Handle& host, const PodShapingLinks& links, uint64_t rate);
  Status CheckEdtEgress(netlink::Handle& host, const PodShapingLinks& links, uint64_t rate);
  Status ApplyIfbEgress(netlink::Handle& host, const netlink::Link& veth, const PodShapingLinks& links,
                        uint64_t rate, uint64_t burst);
  Status RemoveEgress(netlink::Handle& host, int veth_index, const std::string& ifb);
  // EDT applies to this pod: the backend is EDT and its egress device known.
  bool UsesEdt(const PodShapingLinks& links);

  mutable std::mutex mu_;
  std::optional<ShapingBackend> backend_;
  std::string backend_reason_;
  std::unique_ptr<EdtProgram> edt_;  // loaded when the backend is EDT
};

// Tries to create an fq qdisc on a scratch IFB link named `scratch_ifb`
// (deleted again). Ok when fq exists; kUnsupported naming the kernel's answer
// when not.
Status ProbeFqQdisc(netlink::Handle& host, const std::string& scratch_ifb);

}  // namespace terway::qos
