// The planners: a pod's wiring per mode as a WiringPlan (wiring_plan.h),
// computed from the pod and the facts looked up about its node. Pure: no
// kernel, no clock, so each is unit-tested with exact expected plans.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cni/result.h"
#include "common/ip.h"
#include "common/result.h"
#include "datapath/pod_datapath.h"
#include "datapath/wiring_plan.h"

namespace terway::datapath {

// Index of the namespaces in a pod's plan.
inline constexpr size_t kHostNs = 0;
inline constexpr size_t kPodNs = 1;

// The pod's IPv4 address and its ENI's MAC, parsed from its allocation; a
// clear error naming the pod when either is malformed.
struct PodAddrs {
  Ipv4Addr ip;
  MacAddr eni_mac;
  // Dual stack: the pod's IPv6 and its ENI's vSwitch IPv6 gateway.
  struct Ipv6 {
    Ipv6Addr ip;
    Ipv6Addr gateway;
  };
  std::optional<Ipv6> ipv6 = std::nullopt;
};
Result<PodAddrs> ParsePodAddrs(const PodNetwork& pod, const std::string& mode);
// fe80::/10.
bool IsLinkLocal(const Ipv6Addr& a);
// Container id, netns and ifname present and well-formed.
Status ValidatePodNetwork(const PodNetwork& pod);
// "pod ns/name (container id, IP ip)".
std::string DescribePod(const PodNetwork& pod);

// What the shared-ENI plan needs from the node: where the host namespace is,
// the ENI's host link (found by MAC) and its vSwitch gateway. eni unset: DEL
// of a pod whose ENI is gone; the plan then only serves Remove.
struct SharedEniFacts {
  std::string host_netns;
  int mtu = 1500;  // 0: ENI's MTU left alone, 1500 for the veth
  struct Eni {
    std::string link_name;
    int ifindex = 0;
    Ipv4Addr gateway;
  };
  std::optional<Eni> eni;
};
WiringPlan PlanSharedEniPod(const PodNetwork& pod, const PodAddrs& a, const SharedEniFacts& facts);

struct ExclusiveEniFacts {
  std::string host_netns;
  int mtu = 1500;
  Ipv4Addr node_ip;
  std::optional<Ipv4Cidr> service_cidr;
  Ipv4Addr metadata_ip;
  std::string pod_veth_name = "veth1";
  // The ENI's vSwitch (gateway and CIDR); unset for removal only.
  struct Vswitch {
    Ipv4Addr gateway;
    Ipv4Cidr cidr;
  };
  std::optional<Vswitch> vswitch;
};
WiringPlan PlanExclusiveEniPod(const PodNetwork& pod, const PodAddrs& a, const ExclusiveEniFacts& facts);

// The CNI result a plan reports, given the MACs its links have in the kernel
// (indexed as plan.report.interfaces).
cni::CniResult CniResultFromPlan(const WiringPlan& plan, const std::vector<MacAddr>& macs);

}  // namespace terway::datapath
