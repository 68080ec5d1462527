// The value types shared by the address sources (IpPool, ExclusiveEniAllocator)
// and their callers: who asks, what they get, what the pool holds.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace terway::ipam {

inline constexpr const char* kPodIpReservationAnnotation = "k8s.aliyun.com/pod-ip-reservation";

// Who asks for an IP (from CNI_ARGS today, the Kubernetes cache later).
struct PodIdentity {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string container_id;  // idempotency key of allocate/release
  std::string ifname = "eth0";
  // Where the pod's network lives (CNI_NETNS) and which datapath wires it:
  // recorded with the allocation so a restarted daemon can verify and repair
  // the pod (or release it when the netns is gone). Empty: not wired.
  std::string netns;
  std::string datapath_mode;
  // The network's host_stack_cidrs, comma-separated, recorded for repair.
  std::string host_stack_cidrs;
  std::string owner_kind;    // "StatefulSet", "ReplicaSet", ...; "" if unknown
  // Recorded with the allocation: store::kOriginApi / kOriginRuntime /
  // kOriginRebuilt, and a host veth that is not derived from the container
  // id (adopted pods). Pod GC and teardown read them.
  std::string origin;
  std::string host_veth;
  std::map<std::string, std::string> annotations;
};

struct LivePod {
  std::string namespace_;
  std::string name;
  std::string uid;  // "" if unknown: then namespace/name alone identify it
};

struct IpAllocation {
  std::string ip;
  // Dual stack (ip_stack dual): the pod's IPv6, of the same ENI as `ip`;
  // "" on an IPv4-only node.
  std::string ipv6;
  std::string eni_id;
  std::string eni_mac;
  std::string eni_primary_ip;
  std::string vswitch_id;
  bool reused_reservation = false;  // the sticky IP came back
};

// ip_stack ipv4 on ENIs that hold IPv6s from an earlier ip_stack dual
// (see leftover_ipv6.h): what reconcile keeps and gives back.
struct LeftoverIpv6Stats {
  int held = 0;     // held by pods started under dual stack (each goes after its teardown)
  int pending = 0;  // no pod holds them; their give-back failed or waits for the store
  uint64_t returned_total = 0;
  uint64_t return_failures_total = 0;  // IPv6s whose UnassignIpv6Addresses failed (retried)
};

struct PoolStats {
  int idle = 0;
  int in_use = 0;
  int reserved = 0;
  int releasing = 0;
  // Dual stack: IPv4s waiting for their IPv6 (they serve no pod).
  int unpaired = 0;
  // Dual stack: IPv6s of the ENIs paired with no IPv4 (they serve no pod;
  // the next refill pairs them or reclaim gives them back).
  int spare_ipv6 = 0;
  int enis = 0;
  int max_pods = 0;
  int waiting = 0;
  // Counters since start (for metrics).
  uint64_t allocations_total = 0;
  uint64_t allocation_failures_total = 0;
  uint64_t releases_total = 0;
  LeftoverIpv6Stats leftover_ipv6;
};

}  // namespace terway::ipam
