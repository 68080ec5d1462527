/* tc program on the ingress hook of a pod's host veth: every packet the pod
 * sends. IPv4 only; ARP, IPv6 and anything else go to the host stack as in
 * veth mode (the nftables anti-spoofing table judges IPv6 and ARP there).
 *
 *   1. Anti-spoofing, for every pod: the source must be the address of the
 *      endpoint whose host veth this is; otherwise drop and count.
 *   2. Destinations of the host stack (Service CIDR, node addresses,
 *      metadata, host_stack_cidrs; multicast/broadcast), and every packet of
 *      a policed pod: the stack (kube-proxy, the metadata guard, nftables
 *      policy with conntrack).
 *   3. Another pod of this node, not policed: bpf_redirect_peer into it.
 *   4. Anything else: out of the pod's ENI to the vSwitch gateway with
 *      bpf_redirect_neigh (the VPC routes it on, as the ENI's policy-routing
 *      table does in veth mode).
 *   Before 3 and 4, conntrack is asked (lib/dp_ct.h): a packet of a flow
 *   the stack tracks (a backend's reply to a Service client the stack
 *   DNATed, a policed flow) or not TCP/UDP takes the stack.
 * The decisions are lib/dp_decide.h; the packet work lib/dp_packet.h.
 *
 * "The stack" is TC_ACT_UNSPEC, not TC_ACT_OK: with direct action, cls_bpf
 * goes on to the next filter on UNSPEC and ends the chain on OK. A later
 * filter on this hook (qos's IFB redirect of a bandwidth-limited pod,
 * priority 0xC000 after ours) must still see the packet; with none, the
 * packet goes on into the stack exactly as with OK. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/dp_ct.h"
#include "lib/dp_decide.h"
#include "lib/dp_maps.h"
#include "lib/dp_packet.h"

SEC("tc")
int terway_from_pod(struct __sk_buff *skb) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) {
    terway_dp_count(TERWAY_DP_CNT_POD_TO_STACK);
    return TC_ACT_UNSPEC;
  }
  struct terway_dp_ipv4 ip;
  if (terway_dp_read_ipv4(skb, &ip) < 0) {
    terway_dp_count(TERWAY_DP_CNT_POD_TO_STACK);
    return TC_ACT_UNSPEC;
  }
  /* Lookups in terway_dp_from_pod_decide's order, each only if the verdict
   * can still depend on it (lib/dp_decide.h); what is not looked up keeps
   * a value decide does not read. */
  const struct terway_dp_endpoint *src = bpf_map_lookup_elem(&terway_dp_ep, &ip.saddr);
  const struct terway_dp_endpoint *dst = NULL;
  int in_stack = 0, src_policed = 0, dst_policed = 0;
  if (terway_dp_from_pod_source_ok(src, skb->ifindex) && !terway_dp_is_group_address(ip.daddr)) {
    struct terway_dp_stack_key key = {.prefixlen = 32, .addr = ip.daddr};
    in_stack = bpf_map_lookup_elem(&terway_dp_stack, &key) != NULL;
    if (!in_stack) {
      int synced = terway_dp_policy_synced();
      src_policed = terway_dp_policed(src, synced, synced && terway_dp_policy_isolates(ip.saddr));
      if (!terway_dp_from_pod_stack_bound(src_policed, in_stack, ip.daddr, ip.ttl)) {
        dst = bpf_map_lookup_elem(&terway_dp_ep, &ip.daddr);
        dst_policed = dst && terway_dp_policed(dst, synced, synced && terway_dp_policy_isolates(ip.daddr));
      }
    }
  }
  enum terway_dp_verdict v =
      terway_dp_from_pod_decide(src, src_policed, skb->ifindex, dst, dst_policed, in_stack, ip.daddr, ip.ttl);
  switch (terway_dp_check_conntrack(skb, v)) {
    case TERWAY_DP_DROP_SPOOF:
      terway_dp_count(TERWAY_DP_CNT_DROP_SPOOF);
      return TC_ACT_SHOT;
    case TERWAY_DP_TO_POD:
      terway_dp_count(TERWAY_DP_CNT_POD_TO_POD);
      return terway_dp_redirect_to_pod(skb, dst, ip.ttl);
    case TERWAY_DP_TO_ENI:
      terway_dp_count(TERWAY_DP_CNT_POD_TO_ENI);
      return terway_dp_redirect_to_eni(skb, src, ip.ttl);
    case TERWAY_DP_TO_STACK:
      break;
  }
  terway_dp_count(TERWAY_DP_CNT_POD_TO_STACK);
  return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
