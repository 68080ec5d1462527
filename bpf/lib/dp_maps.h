/* The eBPF datapath's maps, declared once for every program that uses them.
 * Each is pinned by name (LIBBPF_PIN_BY_NAME): the loader points libbpf at
 * terwayd's bpffs directory, the first object loaded creates the pins and
 * every later load (the other program, a restarted terwayd) reuses them. */
#ifndef TERWAY_BPF_LIB_DP_MAPS_H
#define TERWAY_BPF_LIB_DP_MAPS_H

#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "../include/datapath_abi.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, TERWAY_DP_MAX_ENDPOINTS);
  __type(key, __u32);
  __type(value, struct terway_dp_endpoint);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} terway_dp_ep SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, TERWAY_DP_MAX_STACK_PREFIXES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct terway_dp_stack_key);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} terway_dp_stack SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, TERWAY_DP_MAX_POLICY_PODS);
  __type(key, __u32);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} terway_dp_policy SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} terway_dp_policy_state SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TERWAY_DP_CNT_MAX);
  __type(key, __u32);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} terway_dp_cnt SEC(".maps");

/* What terway_dp_policed() (lib/dp_decide.h) is told: whether the policy
 * map is authoritative, and whether it holds `addr` (network order). */
static __always_inline int terway_dp_policy_synced(void) {
  __u32 zero = 0;
  const __u32 *s = bpf_map_lookup_elem(&terway_dp_policy_state, &zero);
  return s && *s == TERWAY_DP_POLICY_SYNCED;
}

static __always_inline int terway_dp_policy_isolates(__u32 addr) {
  return bpf_map_lookup_elem(&terway_dp_policy, &addr) != NULL;
}

static __always_inline void terway_dp_count(__u32 counter) {
  __u64 *c = bpf_map_lookup_elem(&terway_dp_cnt, &counter);
  if (c) *c += 1; /* per-CPU: no other CPU writes this slot */
}

#endif
