/* What terwayd and the EDT program share: the map's key and value, defined
 * once for both sides (C for the BPF object, C++ for the loader). */
#ifndef TERWAY_BPF_EDT_ABI_H
#define TERWAY_BPF_EDT_ABI_H

#include <linux/types.h>

/* Map "terway_edt": key = a limited pod's IPv4 address (__u32, network byte
 * order, as in the IP header), value: */
struct terway_edt_state {
  __u64 bytes_per_sec; /* the pod's egress rate; 0 = not limited */
  __u64 horizon_ns;    /* a packet that would leave later than now + this is dropped */
  __u64 t_last;        /* departure time given to the previous packet (ns, CLOCK_MONOTONIC) */
  __u64 drops;         /* packets dropped at the horizon */
};

#define TERWAY_EDT_MAP_ENTRIES 65536

#endif
