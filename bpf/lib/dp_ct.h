/* Asking the host's conntrack whether a packet belongs to a flow it tracks,
 * before a program moves the packet past the stack.
 *
 * Why: the stack NATs (kube-proxy's Service DNAT, masquerade, the metadata
 * guard's DNAT) and polices (nftables with conntrack) flows whose first
 * packet it saw. The replies of such a flow carry the translated addresses
 * (backend -> client); if a program redirected them, conntrack would never
 * undo the translation and the client would get an answer from an address
 * it never talked to. A flow with a conntrack entry therefore stays on the
 * stack, both ways; a flow that started on the fast path never created one
 * and stays fast.
 *
 * With the kfuncs bpf_skb_ct_lookup / bpf_ct_release (Linux 6.0+, the
 * nf_conntrack BPF kfuncs; src/ebpf/detect.cc checks the kernel has them,
 * the load fails without them). They answer for TCP and UDP only; every
 * other protocol (ICMP, whose errors conntrack relates to and translates;
 * SCTP; ...) and every fragment (no ports to ask with) is left to the
 * stack, which knows. */
#ifndef TERWAY_BPF_LIB_DP_CT_H
#define TERWAY_BPF_LIB_DP_CT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "dp_decide.h"
#include "dp_maps.h"

/* The kfuncs' options in their first form (12 bytes, Linux 6.0). Linux 6.1
 * grew the struct to 16 bytes for conntrack zones and accepts both sizes
 * since (it tells them apart by opts__sz). We look up in the default zone
 * only, so the 12-byte form is right on every kernel that has the kfunc and
 * the program needs no size detection; bytes 10-11 (ct_zone_id in the new
 * form, reserved in the old) stay zero, as both forms require. */
struct bpf_ct_opts___terway {
  __s32 netns_id; /* BPF_F_CURRENT_NETNS: the namespace of the skb's device */
  __s32 error;    /* out: -ENOENT when no entry, -EPROTO for other protocols */
  __u8 l4proto;
  __u8 dir; /* out: IP_CT_DIR_ORIGINAL or IP_CT_DIR_REPLY */
  __u8 reserved[2];
};
#define TERWAY_DP_CT_OPTS_SZ 12

/* Opaque to us: the program only hands it back to bpf_ct_release. Defined
 * (not merely declared) because libbpf matches a kfunc's prototype with the
 * kernel's by kind, and a forward declaration is not a struct to it; the
 * member is never read. */
struct nf_conn {
  __u64 opaque;
};
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *bpf_tuple, __u32 tuple__sz,
                                         struct bpf_ct_opts___terway *opts, __u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#define TERWAY_DP_IP_MF 0x2000     /* more fragments */
#define TERWAY_DP_IP_OFFSET 0x1fff /* fragment offset */

/* Conntrack's answer for this IPv4 packet (its header behind the Ethernet
 * header was read already). */
static __always_inline enum terway_dp_ct terway_dp_ct_state(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct iphdr *ip = data + sizeof(struct ethhdr);
  if ((void *)(ip + 1) > data_end) return TERWAY_DP_CT_CANNOT_ASK;
  if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP) return TERWAY_DP_CT_CANNOT_ASK;
  if (ip->frag_off & bpf_htons(TERWAY_DP_IP_MF | TERWAY_DP_IP_OFFSET)) return TERWAY_DP_CT_CANNOT_ASK;
  /* Read what we need now: the calls below may move the packet's data. */
  __u8 l4proto = ip->protocol;
  struct bpf_sock_tuple t = {};
  t.ipv4.saddr = ip->saddr;
  t.ipv4.daddr = ip->daddr;
  /* Source and destination port lead both the TCP and the UDP header; read
   * in place (a bpf_skb_load_bytes call costs more than the bounds check),
   * or, when a driver left them out of the linear data, with the helper. */
  __u32 ihl_bytes = ((__u32)ip->ihl & 0xf) << 2;
  __be16 *ports = (void *)ip + ihl_bytes;
  if ((void *)(ports + 2) <= data_end) {
    t.ipv4.sport = ports[0];
    t.ipv4.dport = ports[1];
  } else if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + ihl_bytes, &t.ipv4.sport, 2 * sizeof(__be16)) < 0) {
    return TERWAY_DP_CT_CANNOT_ASK;
  }
  struct bpf_ct_opts___terway opts = {};
  opts.netns_id = BPF_F_CURRENT_NETNS;
  opts.l4proto = l4proto;
  struct nf_conn *ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv4), &opts, TERWAY_DP_CT_OPTS_SZ);
  if (ct) {
    bpf_ct_release(ct);
    return TERWAY_DP_CT_TRACKED;
  }
  /* -ENOENT: no entry, the flow is ours. Any other error (a kernel that
   * refuses the options, no namespace): we could not ask, the stack decides. */
  return opts.error == -2 /* ENOENT */ ? TERWAY_DP_CT_UNTRACKED : TERWAY_DP_CT_CANNOT_ASK;
}

/* Applies terway_dp_after_conntrack to a program's verdict, asking only
 * when the verdict is a redirect, and counts what conntrack changed. */
static __always_inline enum terway_dp_verdict terway_dp_check_conntrack(struct __sk_buff *skb,
                                                                        enum terway_dp_verdict v) {
  if (v != TERWAY_DP_TO_POD && v != TERWAY_DP_TO_ENI) return v;
  enum terway_dp_ct ct = terway_dp_ct_state(skb);
  enum terway_dp_verdict after = terway_dp_after_conntrack(v, ct);
  if (after == TERWAY_DP_TO_STACK) {
    terway_dp_count(ct == TERWAY_DP_CT_TRACKED ? TERWAY_DP_CNT_CT_TO_STACK : TERWAY_DP_CNT_CT_UNKNOWN_TO_STACK);
  }
  return after;
}

#endif
