/* What terwayd and the eBPF datapath programs (dp_pod_veth_ingress.c,
 * dp_eni_ingress.c) share: the maps' keys and values and the counters,
 * defined once for both sides (C for the BPF objects, C++ for the loader in
 * src/ebpf). Every map is pinned by name under terwayd's bpffs directory, so
 * a restarted terwayd finds the same maps the attached programs still use.
 *
 * Changing a layout here changes the maps' key or value size: a loader then
 * finds the old pins incompatible and replaces them (src/ebpf says how). */
#ifndef TERWAY_BPF_DATAPATH_ABI_H
#define TERWAY_BPF_DATAPATH_ABI_H

#include <linux/types.h>

/* ---- map "terway_dp_ep": the node's eBPF-mode pods ----
 * key = the pod's IPv4 address (__u32, network byte order, as in the IP
 * header), value: */
struct terway_dp_endpoint {
  __u32 host_ifindex; /* the pod's host-side veth (tw...) in the host namespace */
  __u32 eni_ifindex;  /* the ENI whose secondary IP the pod holds */
  __u32 gateway;      /* the vSwitch gateway behind that ENI (network order): the pod's next hop out */
  __u32 flags;        /* TERWAY_DP_EP_* */
  __u8 pod_mac[6];    /* the pod's eth0 */
  __u8 host_mac[6];   /* the host veth's: the pod's permanent neighbour for 169.254.1.1 */
};

/* The pod has a bandwidth limit only the stack's qdiscs (IFB, TBF on the
 * host veth) enforce: its traffic, both ways, crosses the host stack.
 * Written by terwayd's Ensure only (the flags are Ensure's alone; policy
 * isolation is in terway_dp_policy, which has another writer). The same bit
 * as an earlier build's POLICED, which it read the same way. Anti-spoofing
 * still happens in the program. */
#define TERWAY_DP_EP_SHAPED (1U << 0)

#define TERWAY_DP_MAX_ENDPOINTS 16384

/* ---- map "terway_dp_stack": destinations that belong to the host stack ----
 * An LPM trie of IPv4 prefixes a pod's packet must not bypass: the Service
 * CIDR (kube-proxy), the node's own addresses, the metadata address (the
 * metadata guard's DNAT) and the configured host_stack_cidrs. */
struct terway_dp_stack_key {
  __u32 prefixlen; /* LPM tries want the prefix length first */
  __u32 addr;      /* network order */
};

/* Value: why the prefix is there (for people reading the map). */
enum terway_dp_stack_kind {
  TERWAY_DP_STACK_SERVICE = 1,
  TERWAY_DP_STACK_NODE = 2,
  TERWAY_DP_STACK_METADATA = 3,
  TERWAY_DP_STACK_HOST_CIDR = 4,
};

#define TERWAY_DP_MAX_STACK_PREFIXES 1024

/* ---- map "terway_dp_policy": pods a NetworkPolicy chain may isolate ----
 * key = the pod's IPv4 address (network order), value = a __u8 (1; the key's
 * presence is what counts). Written only on the policy controller's path:
 * a superset of the isolated pods before the kernel gets their chains,
 * exactly them after. Such a pod's traffic, both ways, crosses the host
 * stack, where the nftables policy table (which relies on conntrack)
 * decides. */
#define TERWAY_DP_MAX_POLICY_PODS TERWAY_DP_MAX_ENDPOINTS

/* ---- map "terway_dp_policy_state": one __u32 at key 0 ----
 * Whether terway_dp_policy is authoritative. Anything but SYNCED (a fresh
 * map is 0; a failed write sets 0) makes every pod policed: fail closed
 * until the controller's first full sync, and after a failed one. */
#define TERWAY_DP_POLICY_NOT_SYNCED 0
#define TERWAY_DP_POLICY_SYNCED 1

/* ---- map "terway_dp_cnt": per-CPU packet counters, indexed by: ---- */
enum terway_dp_counter {
  TERWAY_DP_CNT_POD_TO_POD = 0,   /* pod -> pod on this node: bpf_redirect_peer */
  TERWAY_DP_CNT_POD_TO_ENI = 1,   /* pod -> out of its ENI: bpf_redirect_neigh to the gateway */
  TERWAY_DP_CNT_ENI_TO_POD = 2,   /* ENI -> pod: bpf_redirect_peer */
  TERWAY_DP_CNT_POD_TO_STACK = 3, /* a pod's packet handed to the host stack */
  TERWAY_DP_CNT_ENI_TO_STACK = 4, /* a packet on the ENI not for a fast-path pod */
  TERWAY_DP_CNT_DROP_SPOOF = 5,   /* a pod's IPv4 packet with a source not its own */
  /* Packets a program would have redirected but handed to the stack after
   * asking conntrack (lib/dp_ct.h); each is also counted in POD_TO_STACK or
   * ENI_TO_STACK: */
  TERWAY_DP_CNT_CT_TO_STACK = 6,         /* conntrack tracks its flow (the stack NATs or polices it) */
  TERWAY_DP_CNT_CT_UNKNOWN_TO_STACK = 7, /* conntrack cannot be asked: not TCP/UDP (ICMP...), a fragment */
  TERWAY_DP_CNT_MAX = 8,
};

#endif
