/* The eBPF datapath's decisions, apart from packets and helpers: given what
 * the maps said about a packet, where does it go. Pure, so the same header
 * compiles into the BPF objects and into C++ unit tests
 * (tests/unit/ebpf/dp_decide_test.cc). */
#ifndef TERWAY_BPF_LIB_DP_DECIDE_H
#define TERWAY_BPF_LIB_DP_DECIDE_H

#include <linux/types.h>

#include "../include/datapath_abi.h"

enum terway_dp_verdict {
  TERWAY_DP_TO_STACK = 0, /* the host stack routes it, as in veth mode (pod program: TC_ACT_UNSPEC, so a
                           * later filter -- qos's IFB redirect -- still sees it; ENI program: TC_ACT_OK) */
  TERWAY_DP_DROP_SPOOF,   /* TC_ACT_SHOT */
  TERWAY_DP_TO_POD,       /* bpf_redirect_peer into the destination pod */
  TERWAY_DP_TO_ENI,       /* bpf_redirect_neigh out of the source pod's ENI */
};

/* What the host's conntrack knows of a packet's flow (lib/dp_ct.h asks). */
enum terway_dp_ct {
  TERWAY_DP_CT_UNTRACKED = 0, /* TCP/UDP, no entry: the flow never crossed the stack */
  TERWAY_DP_CT_TRACKED,       /* an entry exists: the stack NATs or polices this flow */
  TERWAY_DP_CT_CANNOT_ASK,    /* not TCP/UDP, a fragment, or the lookup failed */
};

/* 224.0.0.0/4 and 255.255.255.255 are never sent to one pod or the gateway.
 * `daddr` is in network order, so its first byte in memory is the first
 * octet whatever the host's byte order. */
static inline int terway_dp_is_group_address(__u32 daddr) {
  const __u8 *b = (const __u8 *)&daddr;
  return b[0] >= 224;
}

/* Whether the pod of endpoint `ep` must have all its traffic cross the host
 * stack (nftables policy with conntrack, the IFB/TBF shaping): it has a
 * bandwidth limit (SHAPED, Ensure's flag), or the policy map is not
 * authoritative (`policy_synced` 0: before the policy controller's first
 * full sync, or after a failed one -- every pod, fail closed), or a policy
 * chain may isolate it (`policy_isolates`: its address is in the policy
 * map; asked only when synced). */
static inline int terway_dp_policed(const struct terway_dp_endpoint *ep, int policy_synced, int policy_isolates) {
  return (ep->flags & TERWAY_DP_EP_SHAPED) || !policy_synced || policy_isolates;
}

/* The stages of terway_dp_from_pod_decide, in its order, so that the
 * program looks up only what can still change the verdict (each map lookup
 * is ~10 ns of a packet's time; a spoofed packet needs one, a packet for a
 * Service or the node two): the source first (anti-spoofing, every pod),
 * then the destinations that are the stack's whoever sends (group
 * addresses, the stack prefixes), then the source's policing and the TTL;
 * only a packet none of these sent to the stack needs its destination's
 * endpoint and policing. tests/unit/ebpf/dp_decide_test.cc checks that the
 * inputs a stage leaves unread cannot change the verdict. */
static inline int terway_dp_from_pod_source_ok(const struct terway_dp_endpoint *src, __u32 ifindex) {
  return src && src->host_ifindex == ifindex;
}

/* For a packet whose source is ok: the stack takes it whatever its
 * destination's endpoint. */
static inline int terway_dp_from_pod_stack_bound(int src_policed, int dst_in_stack, __u32 daddr, __u8 ttl) {
  if (dst_in_stack || terway_dp_is_group_address(daddr)) return 1;
  if (src_policed) return 1;
  /* The stack answers an expiring TTL with ICMP time exceeded, as a router. */
  return ttl <= 1;
}

/* An IPv4 packet that left a pod through its host veth `ifindex`.
 * src: the endpoint owning the packet's source address (NULL: none);
 * dst: the endpoint owning its destination (NULL: not a pod of this node);
 * src_policed, dst_policed: terway_dp_policed() of each (0 when NULL);
 * dst_in_stack: the destination is in the stack prefixes (Service CIDR,
 * node addresses, metadata, host_stack_cidrs).
 * Order matters: anti-spoofing first, for every pod, policed or not. */
static inline enum terway_dp_verdict terway_dp_from_pod_decide(const struct terway_dp_endpoint *src,
                                                               int src_policed, __u32 ifindex,
                                                               const struct terway_dp_endpoint *dst,
                                                               int dst_policed, int dst_in_stack, __u32 daddr,
                                                               __u8 ttl) {
  if (!terway_dp_from_pod_source_ok(src, ifindex)) return TERWAY_DP_DROP_SPOOF;
  if (terway_dp_from_pod_stack_bound(src_policed, dst_in_stack, daddr, ttl)) return TERWAY_DP_TO_STACK;
  if (dst) {
    if (dst_policed) return TERWAY_DP_TO_STACK;
    /* A pod sending to its own address from eth0 never gets here (lo);
     * one sending to itself through the host is left to the stack. */
    if (dst->host_ifindex == ifindex) return TERWAY_DP_TO_STACK;
    return TERWAY_DP_TO_POD;
  }
  if (src->eni_ifindex == 0 || src->gateway == 0) return TERWAY_DP_TO_STACK;
  return TERWAY_DP_TO_ENI;
}

/* An IPv4 packet that arrived on ENI `ifindex`; dst: the endpoint owning
 * its destination (NULL: none), dst_policed: terway_dp_policed() of it. Only a pod of this very ENI is served: a
 * packet for a pod whose IP the VPC hands in on another ENI (while an IP
 * moves) takes the stack, which routes it as before. */
static inline enum terway_dp_verdict terway_dp_from_eni_decide(const struct terway_dp_endpoint *dst,
                                                               int dst_policed, __u32 ifindex, __u8 ttl) {
  if (!dst) return TERWAY_DP_TO_STACK;
  if (dst_policed) return TERWAY_DP_TO_STACK;
  if (dst->eni_ifindex != ifindex) return TERWAY_DP_TO_STACK;
  if (ttl <= 1) return TERWAY_DP_TO_STACK;
  return TERWAY_DP_TO_POD;
}

/* The last word on a redirect: a packet of a flow the stack tracks (its
 * NAT must be undone, its policy applied) or one we could not ask about
 * takes the stack; only a flow conntrack never saw is moved past it. The
 * programs ask conntrack only when `v` is a redirect, so packets bound for
 * the stack anyway pay no lookup. */
static inline enum terway_dp_verdict terway_dp_after_conntrack(enum terway_dp_verdict v, enum terway_dp_ct ct) {
  if (v != TERWAY_DP_TO_POD && v != TERWAY_DP_TO_ENI) return v;
  return ct == TERWAY_DP_CT_UNTRACKED ? v : TERWAY_DP_TO_STACK;
}

#endif
