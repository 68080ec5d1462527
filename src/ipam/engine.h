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

// Pod addresses one ENI can hold: its IPv4 quota; in dual stack a pod takes
// one IPv4 and one IPv6 of the same ENI, so the smaller of the two quotas (as
// upstream Terway sizes a dual-stack node).
int SlotsPerEni(const InstanceLimits& limits, IpStack stack);

// Max pods an instance type can run. Shared ENI: the primary ENI is the
// node's own interface and carries no pod IPs, every other ENI contributes
// all of its slots (its primary IP included); exclusive ENI: one ENI per pod.
int MaxPods(const InstanceLimits& limits, EniMode mode, IpStack stack = IpStack::kIpv4);

// What the configuration allows on this instance, resolved as upstream
// Terway resolves it (its daemon's getPoolConfig):
//   max_enis = int(EniQuantity x eni_cap_ratio) + eni_cap_shift - 1, at most
//              max_eni when that is set (and never beyond the instance's
//              secondary ENIs: the cloud would refuse them)
//   capacity = max_enis x slots per ENI (shared), max_enis (exclusive);
//              slots per ENI = IPs per ENI, in dual stack the smaller of the
//              IPv4 and IPv6 quotas
//   max_idle = min(max_pool_size, capacity)
//   min_idle = min_eni x IPs per ENI if min_eni > 0, else min_pool_size;
//              at most max_idle
// Exclusive ENI keeps no pool: min_idle = max_idle = 0.
struct PoolBounds {
  int max_enis = 0;
  int capacity = 0;
  int min_idle = 0;
  int max_idle = 0;
  bool operator==(const PoolBounds&) const = default;
};
PoolBounds PoolBoundsFor(const PoolConfig& c, const InstanceLimits& limits);

enum class IpUse {
  kInUse,      // allocated to a pod
  kIdle,       // warm in the pool
  kReserved,   // held for a sticky pod until its reservation expires
  kReleasing,  // being unassigned / its ENI deleted right now
};

// One address slot: an IPv4 and, in dual stack, the IPv6 of the same ENI
// paired with it. A dual-stack slot without its IPv6 ("unpaired": the IPv6
// assignment failed, or the cloud lost it) serves no pod: refill pairs it,
// reclaim gives it back, and it is never counted as idle.
struct IpView {
  std::string ip;
  IpUse use = IpUse::kIdle;
  Clock::TimePoint idle_since{};
  bool eni_primary_ip = false;  // an ENI's primary IP cannot be unassigned
  std::string ipv6 = "";        // dual stack: the paired IPv6 ("" = unpaired)
};

struct EniView {
  std::string eni_id;
  std::string vswitch_id;
  std::vector<IpView> ips;
  // Tagged for another controller (eni_tag_block_list) or outside
  // eni_tag_filter after it was adopted: it keeps its pods and its slot, but
  // no address is added to, handed out from or given back from it.
  bool unschedulable = false;
  // Dual stack: IPv6 addresses of the ENI paired with no IPv4 (an IPv4
  // unassign failed after its IPv6 went, or the cloud lists one we did not
  // ask for). They serve no pod; refill pairs them with new IPv4s, reclaim
  // gives them back.
  std::vector<std::string> spare_ipv6 = {};
};

struct VSwitchView {
  std::string vswitch_id;
  int64_t available_ips = 0;  // AvailableIpAddressCount
  bool exhausted = false;     // recently answered InvalidVSwitchId.IpNotEnough
};

// The engine's share of the settings, resolved for this instance (see
// PoolBounds).
struct PoolSettings {
  int min_pool_size = 0;  // idle addresses to keep (min_idle)
  int max_pool_size = 5;  // idle addresses to keep at most (max_idle)
  int max_enis = -1;      // secondary ENIs this node may hold; < 0: the instance's quota
  // Addresses still to obtain for the node's one-time warm-up
  // (ip_warm_up_size), on top of what waiting pods need.
  int warm_up = 0;
  EniSelectionPolicy eni_selection = EniSelectionPolicy::kMostIps;
  IpStack ip_stack = IpStack::kIpv4;
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

// AssignPrivateIpAddresses of `count` IPv4s, then (dual stack)
// AssignIpv6Addresses of `ipv6_count` IPv6s on the same ENI. ipv6_count
// covers the new IPv4s (less the ENI's spare IPv6s) and the ENI's unpaired
// IPv4s; count = 0 is an action that only pairs.
struct AssignAction {
  std::string eni_id;
  int count = 0;
  int ipv6_count = 0;
  bool operator==(const AssignAction&) const = default;
};
struct CreateAction {
  std::string vswitch_id;
  int ip_count = 0;    // total, the ENI's primary IP included
  int ipv6_count = 0;  // dual stack: as many as ip_count
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

// How many IPs to add and where. Target: serve the demand and keep
// min_pool_size idle (and the warm-up's addresses); when pods are waiting,
// round the request up (at most to max_pool_size idle afterwards) so a burst
// of N pods costs about N/10 calls. Where, by eni_selection: kMostIps fills
// existing ENIs first, fullest first (fewest calls, no attach wait), then
// new ENIs; kLeastIps creates new ENIs first (up to max_enis), then fills
// the emptiest existing ones.
RefillPlan PlanRefill(const PoolSnapshot& s);

// The idle address a pod gets: from the ENI eni_selection prefers (kMostIps:
// the one holding the most addresses; kLeastIps: the fewest), the one idle
// longest there (the longest cool-down before an address reappears on
// another pod). Unschedulable ENIs are skipped; "" when nothing is idle.
// In dual stack an unpaired IPv4 is never picked.
std::string PickIdleIp(const std::vector<EniView>& enis, EniSelectionPolicy policy,
                       IpStack stack = IpStack::kIpv4);

// Whether the slot can serve a pod: in dual stack only a pair.
inline bool Complete(const IpView& ip, IpStack stack) { return stack == IpStack::kIpv4 || !ip.ipv6.empty(); }
// Idle slots on schedulable ENIs (what the pool sizes count).
int IdleSlots(const PoolSnapshot& s);

// Upstream Terway's idle reclaim clock. The pool is "modified" by every
// allocation and release.
struct IdleReclaimClock {
  Clock::TimePoint last_modified{};
  Clock::TimePoint next_reclaim{};  // zero: not armed
};
struct IdleReclaimSettings {
  std::chrono::seconds after{0};     // 0: off
  std::chrono::seconds interval{600};
  int batch_size = 5;
  double jitter_factor = 0.1;
};
// How many idle addresses to give back now, as upstream's daemon decides at
// each pool check: everything above max_idle; besides, once the pool has
// not been modified for `after`, every `interval` (stretched by up to
// jitter_factor x interval, `random01` in [0, 1) choosing how much) up to
// batch_size more, never below min_idle. Updates the clock.
int IdleAddressesToRelease(const IdleReclaimSettings& r, int idle, int min_idle, int max_idle,
                           IdleReclaimClock* clock, Clock::TimePoint now, double random01);

// UnassignIpv6Addresses of `ipv6s`, then UnassignPrivateIpAddresses of
// `ips`, on one ENI (either may be empty).
struct UnassignAction {
  std::string eni_id;
  std::vector<std::string> ips;
  std::vector<std::string> ipv6s = {};
  bool operator==(const UnassignAction&) const = default;
};

struct ReclaimPlan {
  std::vector<UnassignAction> unassigns;
  std::vector<std::string> delete_enis;  // detach + delete: no IP in use or reserved
  bool empty() const { return unassigns.empty() && delete_enis.empty(); }
};

// Which `count` idle IPs to give back (see IdleAddressesToRelease for how
// many): whole ENIs first (every IP idle, none reserved; one Detach+Delete
// frees the most), then single secondary IPs, taken from ENIs in the order
// eni_selection lets go of them (kMostIps: the emptiest ENIs first, as
// upstream disposes; kLeastIps: the fullest), oldest idle first within an
// ENI. An ENI's primary IP is never unassigned. A slot goes with both its
// addresses. Dual stack, besides `count`: idle unpaired IPv4s (not the
// ENI's primary) and spare IPv6s are always given back -- they serve no pod.
ReclaimPlan PlanReclaim(const PoolSnapshot& s, int count);

// vSwitch ids usable for a new ENI (not exhausted, some IPs available), in
// the order the policy prefers.
std::vector<std::string> OrderVSwitches(const std::vector<VSwitchView>& vs,
                                        VSwitchSelectionPolicy policy, uint64_t seed);

}  // namespace terway::ipam
