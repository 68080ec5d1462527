/* Packet work of the eBPF datapath: reading the IPv4 header and doing to a
 * packet what a router does before handing it to the next link (new
 * Ethernet addresses, TTL one less). */
#ifndef TERWAY_BPF_LIB_DP_PACKET_H
#define TERWAY_BPF_LIB_DP_PACKET_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <stddef.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../include/datapath_abi.h"

#define TERWAY_DP_AF_INET 2 /* <sys/socket.h>'s, which BPF C cannot include */

/* What the programs read from an IPv4 packet. */
struct terway_dp_ipv4 {
  __u32 saddr; /* network order */
  __u32 daddr;
  __u8 ttl;
};

/* 0 and *out filled for a well-formed IPv4 header behind the Ethernet
 * header; -1 for anything else (the caller hands it to the stack, which
 * judges malformed packets as it always has). */
static __always_inline int terway_dp_read_ipv4(struct __sk_buff *skb, struct terway_dp_ipv4 *out) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  if ((void *)(ip + 1) > data_end) return -1;
  if (ip->version != 4 || ip->ihl < 5) return -1;
  out->saddr = ip->saddr;
  out->daddr = ip->daddr;
  out->ttl = ip->ttl;
  return 0;
}

/* One hop less: TTL - 1 with the header checksum patched incrementally
 * (RFC 1624: HC' = ~(~HC + ~m + m'), over the 16-bit word the TTL shares
 * with the protocol), written straight into the packet. The caller made
 * sure ttl > 1. 0 on success.
 *
 * Direct packet access, not bpf_l3_csum_replace + bpf_skb_store_bytes:
 * each helper call makes the head writable and bounds-checks again
 * (skb_ensure_writable), which measured ~15% of a redirect
 * (bench/ebpf_dp_bench under perf). With a direct write the verifier
 * prepends one check to the program: a cloned skb (TCP's, whose data its
 * retransmit queue shares) has its head made writable once
 * (bpf_skb_pull_data), as the first helper call did before, but for every
 * packet of the program, not only the redirected ones: cheap unless the
 * header itself is shared (a packet socket holding a clone), and if it
 * fails (no memory) the kernel drops the packet, where before only a
 * redirect's rewrite could fail and drop. The data
 * pointers are fetched again here because that is the only way the
 * verifier lets a program write after a helper call (which may move the
 * data). A checksum-complete skb stays right: the IP header's
 * ones-complement sum does not change when TTL and checksum change
 * together. */
static __always_inline int terway_dp_decrement_ttl(struct __sk_buff *skb, __u8 ttl) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  if ((void *)(ip + 1) > data_end) return -1;
  __u8 new_ttl = ttl - 1;
  __u32 sum = (__u16)~bpf_ntohs(ip->check);
  sum += (__u16)~((__u16)ttl << 8);
  sum += (__u16)((__u16)new_ttl << 8);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  ip->ttl = new_ttl;
  ip->check = bpf_htons((__u16)~sum);
  return 0;
}

/* Routes the packet into the pod `dst` as the host would: from the host
 * veth's MAC to the pod's eth0 MAC, one hop less, and through the veth's
 * peer straight into the pod's namespace (bpf_redirect_peer skips the
 * host veth's transmit and the backlog queue). The MACs are written
 * directly, as the TTL (see terway_dp_decrement_ttl). */
static __always_inline int terway_dp_redirect_to_pod(struct __sk_buff *skb, const struct terway_dp_endpoint *dst,
                                                     __u8 ttl) {
  if (terway_dp_decrement_ttl(skb, ttl) < 0) return TC_ACT_SHOT;
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return TC_ACT_SHOT;
  __builtin_memcpy(eth->h_dest, dst->pod_mac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, dst->host_mac, ETH_ALEN);
  return bpf_redirect_peer(dst->host_ifindex, 0);
}

/* Sends the pod's packet out of its ENI to the vSwitch gateway. The
 * neighbour subsystem of the ENI fills both MACs (resolving the gateway by
 * ARP if it has to, queueing the packet meanwhile), so the program needs
 * no MAC of the ENI or the gateway. */
static __always_inline int terway_dp_redirect_to_eni(struct __sk_buff *skb, const struct terway_dp_endpoint *src,
                                                     __u8 ttl) {
  if (terway_dp_decrement_ttl(skb, ttl) < 0) return TC_ACT_SHOT;
  struct bpf_redir_neigh nh = {};
  nh.nh_family = TERWAY_DP_AF_INET;
  nh.ipv4_nh = src->gateway;
  return bpf_redirect_neigh(src->eni_ifindex, &nh, sizeof(nh), 0);
}

#endif
