// The pool's decisions as pure functions: a snapshot of the node in, a plan
// out. No I/O, no clock reads, no randomness except the seed passed in, so
// every rule is a row in a table test (tests/unit/ipam/engine_test.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "ipam/pool_config.h"
#include "ipam/provider.h"

namespace terway::ipam {

// One AssignPrivateIpAddresses or CreateNetworkInterface call carries at
// most 10 IPs (the API's per-call limit), so larger needs take several calls.
inline constexpr int kMaxIpsPerCall = 10;

// Max pods the node can run. Shared ENI: the primary ENI is the node's own
// interface and carries no pod IPs, every other ENI contributes all of its
// IPs (its primary IP included); exclusive ENI: one ENI per pod.
int MaxPods(const InstanceLimits& limits, EniMode mode);

enum class IpUse {
  kInUse,      // allocated to a pod
  kIdle,       // warm in the pool
  kReserved,   // held for a sticky pod until its reservation expires
  kReleasing,  // being unassigned / its ENI deleted right now
};

struct IpView {
  std::string ip;
  IpUse use = IpUse::kIdle;
  Clock::TimePoint idle_since{};
  bool eni_primary_ip = false;  // an ENI's primary IP cannot be unassigned
};

struct EniView {
  std::string eni_id;
  std::string vswitch_id;
  std::vector<IpView> ips;
};

struct VSwitchView {
  std::string vswitch_id;
  int64_t available_ips = 0;  // AvailableIpAddressCount
  bool exhausted = false;     // recently answered InvalidVSwitchId.IpNotEnough
};

struct PoolSettings {
  int min_pool_size = 0;
  int max_pool_size = 5;
  int max_eni = 0;  // 0: the instance's quota only
  int min_eni = 0;
  std::chrono::seconds reclaim_after{0};
  int reclaim_batch_size = 5;
};

// The node as the engine sees it. `enis` are the pool's secondary ENIs only
// (the instance's primary ENI never appears).
struct PoolSnapshot {
  std::vector<EniView> enis;
  InstanceLimits limits;
  PoolSettings settings;
  std::vector<VSwitchView> vswitches;  // candidates, in configuration order
  VSwitchSelectionPolicy policy = VSwitchSelectionPolicy::kRandom;
  uint64_t seed = 0;                   // for kRandom
  int demand = 0;                      // pods waiting for an IP right now
  bool eni_creation_blocked = false;   // EniPerInstanceLimitExceeded seen
  Clock::TimePoint now{};
};

struct AssignAction {
  std::string eni_id;
  int count = 0;
  bool operator==(const AssignAction&) const = default;
};
struct CreateAction {
  std::string vswitch_id;
  int ip_count = 0;  // total, the ENI's primary IP included
  bool operator==(const CreateAction&) const = default;
};

struct RefillPlan {
  std::vector<AssignAction> assigns;
  std::vector<CreateAction> creates;
  // Waiting pods this plan cannot serve, and why (kExhausted error naming the
  // cause: max pods, ENI quota, vSwitches out of IPs).
  int unmet_demand = 0;
  std::optional<Error> unmet_reason;
  bool empty() const { return assigns.empty() && creates.empty(); }
  int PlannedIps() const;
};

// How many IPs to add and where: fill existing ENIs first (fewest calls, no
// attach wait), then new ENIs on vSwitches chosen by policy. Target: serve
// the demand and keep min_pool_size idle; when pods are waiting, round the
// request up (at most to max_pool_size idle afterwards) so a burst of N pods
// costs about N/10 calls.
RefillPlan PlanRefill(const PoolSnapshot& s);

struct UnassignAction {
  std::string eni_id;
  std::vector<std::string> ips;
  bool operator==(const UnassignAction&) const = default;
};

struct ReclaimPlan {
  std::vector<UnassignAction> unassigns;
  std::vector<std::string> delete_enis;  // detach + delete: no IP in use or reserved
  bool empty() const { return unassigns.empty() && delete_enis.empty(); }
};

// What to give back: idle IPs above max_pool_size that have been idle for at
// least reclaim_after, oldest first, at most reclaim_batch_size per round. An
// ENI whose every IP is being given back is deleted instead (never below
// min_eni ENIs).
ReclaimPlan PlanReclaim(const PoolSnapshot& s);

// vSwitch ids usable for a new ENI (not exhausted, some IPs available), in
// the order the policy prefers.
std::vector<std::string> OrderVSwitches(const std::vector<VSwitchView>& vs,
                                        VSwitchSelectionPolicy policy, uint64_t seed);

}  // namespace terway::ipam
