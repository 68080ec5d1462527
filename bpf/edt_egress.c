/* tc program on the ingress hook of a pod's host-side veth: traffic out of
 * the pod. Stamps each packet with its earliest departure time (see
 * lib/edt.h) as a mono delivery time, which survives forwarding, so the fq
 * qdisc of the device the packet leaves through (the pod's ENI) paces the
 * pod at its egress rate. Pods without an entry pass untouched. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

#include "lib/edt.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, TERWAY_EDT_MAP_ENTRIES);
  __type(key, __u32);
  __type(value, struct terway_edt_state);
} terway_edt SEC(".maps");

SEC("tc")
int terway_edt_egress(struct __sk_buff *skb) {
  __u32 ifindex = skb->ifindex;
  struct terway_edt_state *st = bpf_map_lookup_elem(&terway_edt, &ifindex);
  if (!st || st->bytes_per_sec == 0) return TC_ACT_OK;
  __u64 departure = 0;
  switch (terway_edt_decide(st, skb->len, bpf_ktime_get_ns(), &departure)) {
    case TERWAY_EDT_SEND_NOW:
      return TC_ACT_OK;
    case TERWAY_EDT_DROP:
      return TC_ACT_SHOT;
    case TERWAY_EDT_DELAY:
      /* Not IPv4/IPv6 (ARP): nothing to pace, let it go. */
      bpf_skb_set_tstamp(skb, departure, BPF_SKB_TSTAMP_DELIVERY_MONO);
      return TC_ACT_OK;
  }
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
