/* tc program on the egress hook of an ENI: pods' traffic leaving the node.
 * Each IPv4 packet whose source is a limited pod is stamped with its
 * earliest departure time (see lib/edt.h); the fq qdisc at the root of the
 * same ENI holds it until then, so the pod leaves at its egress rate. Only
 * traffic that leaves through the ENI is paced: a pod's traffic to pods of
 * its own node never meets fq and is not touched (as with Cilium's
 * bandwidth manager). Other packets (ARP, IPv6, unlimited pods) pass. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/edt.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, TERWAY_EDT_MAP_ENTRIES);
  __type(key, __u32);
  __type(value, struct terway_edt_state);
} terway_edt SEC(".maps");

SEC("tc")
int terway_edt_eni_egress(struct __sk_buff *skb) {
  if (skb->protocol != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  if ((void *)(ip + 1) > data_end) return TC_ACT_OK;
  __u32 saddr = ip->saddr;
  struct terway_edt_state *st = bpf_map_lookup_elem(&terway_edt, &saddr);
  if (!st || st->bytes_per_sec == 0) return TC_ACT_OK;
  __u64 now = bpf_ktime_get_ns();
  /* A departure time the sender (the pod's TCP stack, pacing itself) gave
   * the packet is kept when it is later than ours would be; anything else in
   * tstamp (a receive timestamp of a forwarded packet) is not a time to
   * leave. */
  __u64 earliest = now;
  if (skb->tstamp_type == BPF_SKB_TSTAMP_DELIVERY_MONO && skb->tstamp > now) earliest = skb->tstamp;
  __u64 departure = 0;
  switch (terway_edt_decide(st, skb->len, now, earliest, &departure)) {
    case TERWAY_EDT_SEND_NOW:
      return TC_ACT_OK;
    case TERWAY_EDT_DROP:
      return TC_ACT_SHOT;
    case TERWAY_EDT_DELAY:
      bpf_skb_set_tstamp(skb, departure, BPF_SKB_TSTAMP_DELIVERY_MONO);
      return TC_ACT_OK;
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
