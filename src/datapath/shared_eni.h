// SharedEniDatapath: the default Terway mode ("ENIMultiIP"). Pods take
// secondary private IPs of the node's ENIs and are wired with a veth pair and
// policy routing, no encapsulation:
//
//   pod netns:  eth0 podIP/32; 169.254.1.1 dev eth0 scope link;
//               default via 169.254.1.1; permanent neigh 169.254.1.1 -> host veth MAC
//   host:       podIP/32 dev tw<hash> scope link            (table main)
//               rule 512:  to podIP lookup main             (traffic to the pod)
//               rule 2048: from podIP lookup 1000+ENI ifindex (traffic from the pod)
//               table 1000+ifindex: default via <vSwitch gw> dev <ENI> onlink
//
// The VPC drops packets whose source IP is not assigned to the ENI they leave
// through, so the from-rule must send each pod out through the ENI that owns
// its IP, never through the node's default route.
//
// Every operation opens its own netlink sockets (a Handle is not thread-safe
// and namespaces belong to threads, see src/netlink/README.md), so one
// SharedEniDatapath may serve concurrent calls for different pods. Calls for
// the same pod must be serialised by the caller (the daemon does, per pod).
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "datapath/pod_datapath.h"
#include "datapath/anti_spoof.h"
#include "datapath/eni_link_cache.h"
#include "datapath/wiring_planner.h"
#include "netlink/handle.h"
#include "qos/shaper.h"

namespace terway::datapath {

// Where an ENI's traffic goes: its vSwitch's gateway and CIDR. The daemon
// fills this from the metadata service
// (network/interfaces/macs/<mac>/gateway and .../vswitch-cidr-block).
struct EniNetwork {
  Ipv4Addr gateway;
  Ipv4Cidr vswitch_cidr;  // prefix 0 = unknown: the gateway is not validated
};
using EniNetworkLookup =
    std::function<Result<EniNetwork>(const std::string& eni_id, const MacAddr& eni_mac)>;

struct SharedEniOptions {
  // The namespace holding the node's ENIs (a name under /var/run/netns or a
  // path); empty: the namespace of the calling thread.
  std::string host_netns;
  // MTU of ENIs and veths; 0 leaves the ENI's MTU alone and uses 1500 for veths.
  int mtu = 1500;
  EniNetworkLookup eni_network;
};

// A pod's host-side link as found in the kernel.
struct PodLink {
  std::string host_veth;
  int index = 0;
  Ipv4Addr pod_ip;
  std::string container_id;
};

// What Ensure wired, for a datapath adding to it (the eBPF datapath): the
// facts it found on the way, so that it need not look them up again.
struct WiredPod {
  cni::CniResult result;
  netlink::Handle host;  // open in the host namespace (SharedEniOptions::host_netns)
  int host_veth_index = 0;
  MacAddr host_veth_mac;
  int eni_index = 0;
  Ipv4Addr gateway;  // the ENI's vSwitch gateway
};

class SharedEniDatapath : public PodDatapath {
 public:
  explicit SharedEniDatapath(SharedEniOptions options);

  Result<cni::CniResult> Ensure(const PodNetwork& pod) override;
  // Ensure, returning what it found on the way.
  Result<WiredPod> EnsureWired(const PodNetwork& pod);
  Status Remove(const PodNetwork& pod) override;
  Result<cni::CniResult> Check(const PodNetwork& pod) override;
  // Anti-spoofing for an adopted pod's foreign host veth; its wiring stays as it is.
  Status GuardAdopted(const PodNetwork& pod) override;

  // Host veths made by this datapath (recognised by their alias).
  Result<std::vector<PodLink>> ListPodLinks();

  // The host link of the ENI with `mac` (host: a handle in opt_.host_netns),
  // through the datapath's EniLinkCache: no link dump per pod.
  Result<netlink::Link> EniLink(netlink::Handle& host, const MacAddr& mac) { return eni_links_->Find(host, mac); }

  // Removes what vanished pods left behind: host veths whose container is
  // not in live_container_ids, pod rules (priorities 512/2048, a /32) whose
  // IP no remaining pod link carries -- a pod whose netns was destroyed
  // loses its veth pair and host route with it, but its rules stay -- and
  // anti-spoofing elements of interfaces that no longer exist. Returns
  // what was removed, one line per object, for the daemon's log. Call it
  // while no Ensure runs (after a restart, before serving): a concurrent
  // Ensure's rules could look orphaned between creating the veth and its
  // alias.
  Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>& live_container_ids,
                                                  const std::set<Ipv4Addr>& adopted_ips = {}) override;

 private:
  // host: a handle in opt_.host_netns (one socket per call).
  Result<SharedEniFacts> LookUpFacts(const PodNetwork& pod, const PodAddrs& a, netlink::Handle& host);

  SharedEniOptions opt_;
  // Per-pod bandwidth on the host veths (shared_ptr: the shaper holds a
  // mutex and the datapath stays movable).
  std::shared_ptr<qos::BandwidthShaper> shaper_ = std::make_shared<qos::BandwidthShaper>();
  // Each pod's (host veth, pod IP) element: its packets leave its veth only
  // with its own address (anti_spoof.h).
  AntiSpoofTable anti_spoof_;
  std::shared_ptr<EniLinkCache> eni_links_ = std::make_shared<EniLinkCache>();
};

}  // namespace terway::datapath
