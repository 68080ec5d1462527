// What the address sources (IpPool, ExclusiveEniAllocator) are told by the
// operator: the pool's settings, already resolved from eni_conf by
// src/config (PoolConfigOf). Deliberately no credentials, endpoints or
// paths: the pool talks to the cloud only through its EniProvider.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace terway::ipam {

// How a new ENI's vSwitch is chosen among the node's candidates.
enum class VSwitchSelectionPolicy {
  kListOrder,  // configuration order (our addition, eni_conf "list")
  kRandom,     // Terway's default
  kMost,       // most available IPs first (eni_conf "ordered" or "most", as upstream Terway)
};
inline const char* VSwitchSelectionPolicyName(VSwitchSelectionPolicy p) {
  switch (p) {
    case VSwitchSelectionPolicy::kListOrder: return "list";
    case VSwitchSelectionPolicy::kRandom: return "random";
    case VSwitchSelectionPolicy::kMost: return "most";
  }
  return "?";
}

// Which ENI a pod's address comes from (eni_conf `eni_selection_policy`, as
// upstream Terway): kMostIps packs pods onto the ENIs holding the most
// addresses (fewer ENIs, the rest can be freed whole); kLeastIps spreads them,
// creating ENIs up to the limit before filling existing ones.
enum class EniSelectionPolicy { kMostIps, kLeastIps };
inline const char* EniSelectionPolicyName(EniSelectionPolicy p) {
  return p == EniSelectionPolicy::kLeastIps ? "least_ips" : "most_ips";
}

enum class EniMode { kShared, kExclusive };

// Which address families a pod gets (eni_conf `ip_stack`, upstream's names).
// kDual: one IPv4 and one IPv6 of the same ENI per pod.
enum class IpStack { kIpv4, kDual };
inline const char* IpStackName(IpStack s) { return s == IpStack::kDual ? "dual" : "ipv4"; }
inline const char* EniModeName(EniMode m) { return m == EniMode::kExclusive ? "exclusive" : "shared"; }

// One (key, value) pair of an ENI's tags.
struct EniTag {
  std::string key;
  std::string value;
  bool operator==(const EniTag&) const = default;
  auto operator<=>(const EniTag&) const = default;
};

struct PoolConfig {
  int max_pool_size = 0;
  int min_pool_size = 0;
  // One-time fill of a new node: the pool obtains this many addresses from
  // the cloud once, before min/max_pool_size take over (0: off).
  int ip_warm_up_size = 0;
  // Secondary ENIs this node may hold: int(EniQuantity x eni_cap_ratio) +
  // eni_cap_shift - 1 (the primary), at most max_eni when max_eni > 0.
  int max_eni = 0;
  double eni_cap_ratio = 1;
  int eni_cap_shift = 0;
  // > 0: keep min_eni x (IPs per ENI) addresses idle (replaces min_pool_size,
  // still at most max_pool_size).
  int min_eni = 0;
  VSwitchSelectionPolicy vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
  EniSelectionPolicy eni_selection_policy = EniSelectionPolicy::kMostIps;
  // Joined by every ENI we create. Empty: the groups of the instance's
  // primary ENI, read from the cloud when the first ENI is created.
  std::vector<std::string> security_groups;
  // Put on every ENI we create; always holds creator=terway.
  std::map<std::string, std::string> eni_tags;
  // Resource group of the ENIs we create ("": the account's default).
  std::string resource_group_id;
  // An attached ENI carrying any of these tags is not ours to use (another
  // controller owns it); includes upstream Terway's built-in entries.
  std::vector<EniTag> eni_tag_block_list;
  // Non-empty: only ENIs carrying all of these tags are managed.
  std::map<std::string, std::string> eni_tag_filter;
  // Idle reclaim (upstream Terway's meaning): idle addresses above
  // max_pool_size are given back at every check; besides, when
  // idle_ip_reclaim_after > 0 and the pool has seen no allocation or release
  // for that long, every idle_ip_reclaim_interval (stretched by up to
  // jitter_factor) another idle_ip_reclaim_batch_size go, down to
  // min_pool_size.
  std::chrono::seconds idle_ip_reclaim_after{0};
  std::chrono::seconds idle_ip_reclaim_interval{600};
  int idle_ip_reclaim_batch_size = 5;
  double idle_ip_reclaim_jitter_factor = 0.1;
  std::chrono::seconds ip_pool_sync_period{120};
  // Owner kinds whose pods keep their IP, besides StatefulSet.
  std::vector<std::string> custom_stateful_workload_kinds;
  std::chrono::seconds ip_reservation_window{300};
  std::chrono::seconds leaked_eni_grace_period{600};
  EniMode eni_mode = EniMode::kShared;
  IpStack ip_stack = IpStack::kIpv4;
};

}  // namespace terway::ipam
