// Per-pod bandwidth on the host veth, shared by both datapaths (src/qos does
// the tc work; this file names the links and decides when to apply, clear,
// check or collect).
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "datapath/pod_datapath.h"
#include "netlink/handle.h"
#include "qos/shaper.h"

namespace terway::datapath {

qos::PodShapingLinks PodShapingLinksFor(std::string_view container_id, const Ipv4Addr& pod_ip);
// The same, plus the host link of the pod's ENI (found by its MAC), where
// EDT paces the pod's egress; left "" when the ENI is not a host link
// (exclusive ENI: it lives in the pod) or the pod is dual-stack (EDT paces
// IPv4 only; the IFB path shapes both families).
qos::PodShapingLinks PodShapingLinksFor(netlink::Handle& host, const PodNetwork& pod, const Ipv4Addr& pod_ip);

// True when the pod asks for a limit in at least one direction.
bool HasBandwidthLimit(const PodNetwork& pod);

// Makes the pod's shaping match pod.bandwidth: applies it, or removes any
// shaping when the pod has none (so a re-Ensure after the limit was dropped
// frees the pod). fresh_veth: the host veth was created by this Ensure, so
// without a limit there is nothing to clear (saves the ADD fast path the
// netlink round trips).
Status EnsurePodShaping(qos::BandwidthShaper& shaper, netlink::Handle& host, const PodNetwork& pod,
                        const Ipv4Addr& pod_ip, bool fresh_veth);

// Deletes the pod's IFB (the veth's qdiscs and filter go with the veth) and
// its EDT rate, if any.
Status RemovePodShaping(qos::BandwidthShaper& shaper, netlink::Handle& host, std::string_view container_id,
                        const std::string& pod_ip);

// Deletes IFBs (recognised by their alias) of containers not in `live`;
// returns one line per removed link.
Result<std::vector<std::string>> CollectPodIfbs(netlink::Handle& host, const std::set<std::string>& live);

}  // namespace terway::datapath
