// ExclusiveEniDatapath: Terway's exclusive-ENI mode ("eniOnly" node pools).
// The pod owns a whole ENI: its link is moved from the node's namespace into
// the pod and becomes the pod's eth0, configured as the ENI itself would be
// on a VM. A veth pair carries what must not leave through the VPC: traffic
// to the node (kubelet probes, hostNetwork pods) and to Services (the node's
// kube-proxy rules live in the node's namespace).
//
//   pod netns:  eth0 = the ENI (its MAC), podIP/<vSwitch prefix>, up
//               default via <vSwitch gateway> dev eth0
//               veth1: 169.254.1.1 dev veth1 scope link,
//                      permanent neigh 169.254.1.1 -> host veth MAC,
//                      <node IP>/32 via 169.254.1.1 dev veth1 src podIP,
//                      <service CIDR> via 169.254.1.1 dev veth1 src podIP
//   host:       podIP/32 dev tw<hash> scope link (table main)
//
// No policy routing is needed: the pod's traffic leaves through its own ENI,
// which holds the pod IP as its primary address, so the VPC's anti-spoofing
// accepts it. What the pod sends through the veth is checked on the node
// (anti_spoof.h): the VPC never sees it.
//
// Thread-safety as SharedEniDatapath: each call opens its own netlink
// sockets; calls for the same pod are serialised by the caller.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "datapath/pod_datapath.h"
#include "datapath/anti_spoof.h"
#include "datapath/layout.h"
#include "datapath/shared_eni.h"
#include "datapath/wiring_planner.h"
#include "qos/shaper.h"

namespace terway::datapath {

struct ExclusiveEniOptions {
  // The namespace holding the node's ENIs (name or path); empty: the calling
  // thread's namespace.
  std::string host_netns;
  // MTU of the ENI and the veth; 0 leaves the ENI's MTU alone, 1500 for the veth.
  int mtu = 1500;
  // The node's primary IP: reached through the veth, not the VPC.
  Ipv4Addr node_ip;
  // Services (eni_conf service_cidr): reached through the veth as well.
  std::optional<Ipv4Cidr> service_cidr;
  // The ECS metadata service: routed through the veth (and the node's
  // metadata guard) for pods with PodNetwork::metadata_via_node.
  Ipv4Addr metadata_ip{0x646464c8};  // 100.100.100.200
  // Pod-side name of the veth (eth0 is the ENI).
  std::string pod_veth_name = "veth1";
  // Gateway and vSwitch CIDR of the ENI (the daemon asks the metadata
  // service). The vSwitch prefix is required: it is the ENI address's prefix.
  EniNetworkLookup eni_network;
};

class ExclusiveEniDatapath : public PodDatapath {
 public:
  explicit ExclusiveEniDatapath(ExclusiveEniOptions options);

  Result<cni::CniResult> Ensure(const PodNetwork& pod) override;
  // Moves the ENI back to the node's namespace (under a name derived from
  // the ENI id, as the pod's ifname may clash with the node's own links) and
  // deletes the veth. The caller then detaches and deletes the ENI. When the
  // pod's netns is gone the ENI link went with it (or back to the initial
  // namespace, for a physical device): that is success.
  Status Remove(const PodNetwork& pod) override;
  Result<cni::CniResult> Check(const PodNetwork& pod) override;
  // Anti-spoofing for an adopted pod's foreign host veth; its wiring stays as it is.
  Status GuardAdopted(const PodNetwork& pod) override;
  // Host veths (alias terway-pod:...) of containers not in the live set,
  // and anti-spoofing elements of interfaces that no longer exist.
  Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>& live_container_ids,
                                                  const std::set<Ipv4Addr>& adopted_ips = {}) override;

 private:
  // The facts of the node the plan needs, without the ENI's vSwitch.
  ExclusiveEniFacts Facts() const;
  // The pod's plan, with its ENI's vSwitch looked up.
  Result<WiringPlan> Plan(const PodNetwork& pod, const PodAddrs& a);

  ExclusiveEniOptions opt_;
  // Per-pod bandwidth on the host veth (shared_ptr: the shaper holds a
  // mutex and the datapath stays movable).
  std::shared_ptr<qos::BandwidthShaper> shaper_ = std::make_shared<qos::BandwidthShaper>();
  // The host veth's (veth, pod IP) element: node and Service traffic from
  // the pod carries only its own address (anti_spoof.h). Its VPC traffic
  // leaves through its own ENI, where the VPC checks the source.
  AntiSpoofTable anti_spoof_;
};

}  // namespace terway::datapath
