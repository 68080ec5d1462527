/* Earliest Departure Time: the pacing arithmetic, apart from any attach
 * point. A flow of packets at `bytes_per_sec` leaves one packet every
 * len / rate; a packet is stamped with the time it may leave, and the fq
 * qdisc of the device it leaves through holds it until then. Nothing is
 * queued here, so there is no lock and no per-pod qdisc: the per-packet cost
 * is one map lookup and a division. */
#ifndef TERWAY_BPF_LIB_EDT_H
#define TERWAY_BPF_LIB_EDT_H

#include <linux/types.h>

#include "../include/edt_abi.h"

#define TERWAY_NSEC_PER_SEC 1000000000ULL

enum terway_edt_verdict { TERWAY_EDT_SEND_NOW, TERWAY_EDT_DELAY, TERWAY_EDT_DROP };

/* Decides one packet of `len` bytes. `now` is the clock; `earliest` is when
 * the packet could leave anyway (now, or a later departure time its sender
 * already gave it). On TERWAY_EDT_DELAY, *departure is when it may leave.
 * Updates st->t_last (the caller's map value; concurrent updates from two
 * CPUs can only make a burst slightly larger, never stall the flow). */
static __always_inline enum terway_edt_verdict terway_edt_decide(struct terway_edt_state *st, __u64 len,
                                                                 __u64 now, __u64 earliest, __u64 *departure) {
  __u64 delay = len * TERWAY_NSEC_PER_SEC / st->bytes_per_sec;
  __u64 next = st->t_last + delay;
  if (next <= earliest) {
    /* Below the rate: the packet keeps its time and the pace restarts from
     * there (no credit builds up while the pod is idle). */
    st->t_last = earliest;
    return TERWAY_EDT_SEND_NOW;
  }
  if (next - now >= st->horizon_ns) {
    __sync_fetch_and_add(&st->drops, 1);
    return TERWAY_EDT_DROP;
  }
  st->t_last = next;
  *departure = next;
  return TERWAY_EDT_DELAY;
}

#endif
