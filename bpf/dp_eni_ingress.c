/* tc program on the ingress hook of an ENI: packets the VPC delivers to the
 * node. One for a fast-path pod of this ENI goes straight into the pod with
 * bpf_redirect_peer (MACs rewritten to host veth -> pod eth0, TTL one
 * less); everything else (the node's own traffic, policed pods, ARP, IPv6)
 * goes to the host stack, which routes it as in veth mode. So does a packet
 * of a flow the stack's conntrack tracks (the reply to a pod whose request
 * the node DNATed or masqueraded: only the stack can undo that) and one
 * conntrack cannot be asked about (not TCP/UDP): lib/dp_ct.h. */
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
int terway_from_eni(struct __sk_buff *skb) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) {
    terway_dp_count(TERWAY_DP_CNT_ENI_TO_STACK);
    return TC_ACT_OK;
  }
  struct terway_dp_ipv4 ip;
  if (terway_dp_read_ipv4(skb, &ip) < 0) {
    terway_dp_count(TERWAY_DP_CNT_ENI_TO_STACK);
    return TC_ACT_OK;
  }
  const struct terway_dp_endpoint *dst = bpf_map_lookup_elem(&terway_dp_ep, &ip.daddr);
  int synced = terway_dp_policy_synced();
  int dst_policed = dst && terway_dp_policed(dst, synced, synced && terway_dp_policy_isolates(ip.daddr));
  enum terway_dp_verdict v =
      terway_dp_check_conntrack(skb, terway_dp_from_eni_decide(dst, dst_policed, skb->ifindex, ip.ttl));
  if (v == TERWAY_DP_TO_POD && dst) {
    terway_dp_count(TERWAY_DP_CNT_ENI_TO_POD);
    return terway_dp_redirect_to_pod(skb, dst, ip.ttl);
  }
  terway_dp_count(TERWAY_DP_CNT_ENI_TO_STACK);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
