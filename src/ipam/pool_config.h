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

enum class EniMode { kShared, kExclusive };
inline const char* EniModeName(EniMode m) { return m == EniMode::kExclusive ? "exclusive" : "shared"; }

struct PoolConfig {
  int max_pool_size = 5;
  int min_pool_size = 0;
  int max_eni = 0;  // 0: no limit below the instance's quota
  int min_eni = 0;
  VSwitchSelectionPolicy vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
  // Joined by every ENI we create.
  std::vector<std::string> security_groups;
  // Put on every ENI we create; always holds creator=terway.
  std::map<std::string, std::string> eni_tags;
  std::chrono::seconds idle_ip_reclaim_after{0};
  std::chrono::seconds idle_ip_reclaim_interval{60};
  int idle_ip_reclaim_batch_size = 5;
  std::chrono::seconds ip_pool_sync_period{120};
  // Owner kinds whose pods keep their IP, besides StatefulSet.
  std::vector<std::string> custom_stateful_workload_kinds;
  std::chrono::seconds ip_reservation_window{300};
  std::chrono::seconds leaked_eni_grace_period{600};
  EniMode eni_mode = EniMode::kShared;
};

}  // namespace terway::ipam
