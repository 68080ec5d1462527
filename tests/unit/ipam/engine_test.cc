#include "ipam/engine.h"

#include <functional>
#include <set>

#include <gtest/gtest.h>

namespace terway::ipam {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const Clock::TimePoint kNow = Clock::TimePoint(seconds(1700000000));

// Builds an ENI: `in_use` IPs in use, then `idle` idle IPs idle since
// kNow - idle_for; the first IP is the ENI's primary IP.
EniView Eni(const std::string& id, int in_use, int idle, seconds idle_for = seconds(0),
            int reserved = 0) {
  EniView e{id, "vsw-a", {}};
  int n = 0;
  auto add = [&](IpUse use, Clock::TimePoint since) {
    e.ips.push_back({fmt::format("{}-ip{}", id, n), use, since, n == 0});
    ++n;
  };
  for (int i = 0; i < in_use; ++i) add(IpUse::kInUse, {});
  for (int i = 0; i < reserved; ++i) add(IpUse::kReserved, {});
  for (int i = 0; i < idle; ++i) add(IpUse::kIdle, kNow - idle_for);
  return e;
}

PoolSnapshot Base() {
  PoolSnapshot s;
  s.limits = {4, 10};  // 3 secondary ENIs x 10 IPs = 30 pods
  s.settings.min_pool_size = 0;
  s.settings.max_pool_size = 5;
  s.vswitches = {{"vsw-a", 100, false}, {"vsw-b", 500, false}};
  s.policy = VSwitchSelectionPolicy::kListOrder;
  s.now = kNow;
  return s;
}

TEST(MaxPods, SharedAndExclusive) {
  struct Row {
    InstanceLimits limits;
    EniMode mode;
    int want;
  } rows[] = {
      {{3, 6}, EniMode::kShared, 12},      // ecs.g6.large: (3-1) x 6
      {{4, 15}, EniMode::kShared, 45},     // ecs.g7.xlarge: (4-1) x 15
      {{3, 6}, EniMode::kExclusive, 2},
      {{1, 10}, EniMode::kShared, 0},      // only the primary ENI: no pods
      {{0, 0}, EniMode::kExclusive, 0},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(MaxPods(r.limits, r.mode), r.want) << r.limits.eni_quantity << "x" << r.limits.ips_per_eni;
  }
}

TEST(OrderVSwitches, ByPolicy) {
  std::vector<VSwitchView> vs = {{"a", 10, false}, {"b", 50, false}, {"c", 0, false}, {"d", 99, true},
                                 {"e", 20, false}};
  EXPECT_EQ(OrderVSwitches(vs, VSwitchSelectionPolicy::kListOrder, 0),
            (std::vector<std::string>{"a", "b", "e"}));
  EXPECT_EQ(OrderVSwitches(vs, VSwitchSelectionPolicy::kMost, 0),
            (std::vector<std::string>{"b", "e", "a"}));
  // Random: a permutation of the usable ones, deterministic per seed, and
  // different seeds reach different first choices.
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    auto r = OrderVSwitches(vs, VSwitchSelectionPolicy::kRandom, seed);
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(std::set<std::string>(r.begin(), r.end()), (std::set<std::string>{"a", "b", "e"}));
    EXPECT_EQ(r, OrderVSwitches(vs, VSwitchSelectionPolicy::kRandom, seed));
    firsts.insert(r.front());
  }
  EXPECT_GT(firsts.size(), 1u);
}

struct RefillRow {
  const char* name;
  std::vector<EniView> enis;
  int demand;
  int min_pool;
  int max_pool;
  int max_eni;
  bool eni_blocked;
  std::vector<VSwitchView> vswitches;
  std::vector<AssignAction> assigns;
  std::vector<CreateAction> creates;
  int unmet;
  const char* reason_contains;  // "" when no reason expected
};

TEST(PlanRefill, Table) {
  const std::vector<VSwitchView> two = {{"vsw-a", 100, false}, {"vsw-b", 500, false}};
  RefillRow rows[] = {
      {"nothing to do: idle covers demand and min", {Eni("eni-1", 2, 3)}, 2, 1, 5, 0, false, two,
       {}, {}, 0, ""},
      {"warm up to min_pool_size on the existing ENI", {Eni("eni-1", 2, 0)}, 0, 3, 5, 0, false, two,
       {{"eni-1", 3}}, {}, 0, ""},
      {"empty node, one waiting pod: create an ENI, batch up to max_pool idle", {}, 1, 0, 5, 0,
       false, two, {}, {{"vsw-a", 6}}, 0, ""},
      {"burst of 25 on an empty node: 10-IP creates, no call above 10", {}, 25, 0, 5, 0, false,
       two, {}, {{"vsw-a", 10}, {"vsw-a", 10}, {"vsw-a", 10}}, 0, ""},
      {"fill the fullest ENI first, in calls of at most 10",
       {Eni("eni-1", 2, 0), Eni("eni-2", 5, 0)}, 12, 0, 0, 0, false, two,
       {{"eni-2", 5}, {"eni-1", 7}}, {}, 0, ""},
      {"exhausted vSwitch skipped", {}, 1, 0, 0, 0, false,
       {{"vsw-a", 100, true}, {"vsw-b", 500, false}}, {}, {{"vsw-b", 1}}, 0, ""},
      {"all vSwitches exhausted: error names them", {}, 2, 0, 0, 0, false,
       {{"vsw-a", 100, true}, {"vsw-b", 0, false}}, {}, {}, 2, "vsw-a (InvalidVSwitchId.IpNotEnough)"},
      {"ENI quota hit: assign only on room left, rest unmet", {Eni("eni-1", 8, 0)}, 4, 0, 0, 0,
       true, two, {{"eni-1", 2}}, {}, 2, "EniPerInstanceLimitExceeded"},
      {"max pods reached: never more than (EniQuantity-1) x IPs",
       {Eni("eni-1", 10, 0), Eni("eni-2", 10, 0), Eni("eni-3", 9, 0)}, 3, 0, 5, 0, false, two,
       {{"eni-3", 1}}, {}, 2, "maximum of 30 pod IPs"},
      {"max_eni caps ENI creation", {Eni("eni-1", 10, 0)}, 1, 0, 0, 1, false, two, {}, {}, 1,
       "as eni_conf allows (max_eni, eni_cap_ratio, eni_cap_shift)"},
      {"vSwitch with few IPs gets a smaller ENI, next vSwitch takes the rest", {}, 8, 0, 0, 0,
       false, {{"vsw-a", 3, false}, {"vsw-b", 500, false}}, {}, {{"vsw-a", 3}, {"vsw-b", 5}}, 0,
       ""},
      {"ENI on an exhausted vSwitch gets no more IPs; a new ENI elsewhere does",
       {Eni("eni-1", 2, 0)}, 1, 0, 0, 0, false, {{"vsw-a", 100, true}, {"vsw-b", 500, false}}, {},
       {{"vsw-b", 1}}, 0, ""},
      {"reserved IPs do not count as idle", {Eni("eni-1", 0, 0, seconds(0), 3)}, 1, 0, 0, 0, false,
       two, {{"eni-1", 1}}, {}, 0, ""},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    PoolSnapshot s = Base();
    s.enis = r.enis;
    s.demand = r.demand;
    s.settings.min_pool_size = r.min_pool;
    s.settings.max_pool_size = r.max_pool;
    s.settings.max_enis = r.max_eni > 0 ? r.max_eni : -1;
    s.eni_creation_blocked = r.eni_blocked;
    s.vswitches = r.vswitches;
    auto plan = PlanRefill(s);
    EXPECT_EQ(plan.assigns, r.assigns);
    EXPECT_EQ(plan.creates, r.creates);
    EXPECT_EQ(plan.unmet_demand, r.unmet);
    if (*r.reason_contains) {
      ASSERT_TRUE(plan.unmet_reason.has_value());
      EXPECT_EQ(plan.unmet_reason->code, ErrorCode::kExhausted);
      EXPECT_NE(plan.unmet_reason->message.find(r.reason_contains), std::string::npos)
          << plan.unmet_reason->message;
    } else {
      EXPECT_FALSE(plan.unmet_reason.has_value())
          << plan.unmet_reason->message;
    }
    for (const auto& a : plan.assigns) EXPECT_LE(a.count, kMaxIpsPerCall);
    for (const auto& c : plan.creates) EXPECT_LE(c.ip_count, kMaxIpsPerCall);
  }
}

// Upstream Terway's getPoolConfig, row by row.
TEST(PoolBoundsFor, AsUpstreamResolvesThem) {
  struct Row {
    const char* name;
    InstanceLimits limits;
    std::function<void(PoolConfig&)> set;
    PoolBounds want;
  } rows[] = {
      {"defaults: every secondary ENI", {4, 10}, [](PoolConfig& c) { c.max_pool_size = 5; }, {3, 30, 0, 5}},
      {"max_pool_size above capacity is capped", {2, 6}, [](PoolConfig& c) { c.max_pool_size = 50; }, {1, 6, 0, 6}},
      {"min_pool_size above max is capped", {4, 10},
       [](PoolConfig& c) {
         c.max_pool_size = 5;
         c.min_pool_size = 8;
       },
       {3, 30, 5, 5}},
      {"max_eni limits the ENIs", {8, 10},
       [](PoolConfig& c) {
         c.max_eni = 2;
         c.max_pool_size = 5;
       },
       {2, 20, 0, 5}},
      {"max_eni above the quota changes nothing", {4, 10}, [](PoolConfig& c) { c.max_eni = 9; }, {3, 30, 0, 0}},
      {"eni_cap_ratio 0.5 of 8 ENIs, minus the primary", {8, 10}, [](PoolConfig& c) { c.eni_cap_ratio = 0.5; },
       {3, 30, 0, 0}},
      {"eni_cap_shift -2", {8, 10}, [](PoolConfig& c) { c.eni_cap_shift = -2; }, {5, 50, 0, 0}},
      {"eni_cap_shift beyond the quota stays at the quota", {4, 10}, [](PoolConfig& c) { c.eni_cap_shift = 3; },
       {3, 30, 0, 0}},
      {"ratio and shift never below zero ENIs", {4, 10}, [](PoolConfig& c) { c.eni_cap_ratio = 0.1; }, {0, 0, 0, 0}},
      {"min_eni = min_eni x IPs per ENI idle, at most max", {4, 10},
       [](PoolConfig& c) {
         c.min_eni = 1;
         c.min_pool_size = 2;
         c.max_pool_size = 15;
       },
       {3, 30, 10, 15}},
      {"min_eni capped by max_pool_size", {4, 10},
       [](PoolConfig& c) {
         c.min_eni = 2;
         c.max_pool_size = 5;
       },
       {3, 30, 5, 5}},
      {"exclusive: capacity is the ENIs, no pool", {4, 10},
       [](PoolConfig& c) {
         c.eni_mode = EniMode::kExclusive;
         c.max_pool_size = 5;
         c.min_pool_size = 2;
       },
       {3, 3, 0, 0}},
      {"exclusive with max_eni", {8, 10},
       [](PoolConfig& c) {
         c.eni_mode = EniMode::kExclusive;
         c.max_eni = 4;
       },
       {4, 4, 0, 0}},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    PoolConfig c;
    r.set(c);
    PoolBounds b = PoolBoundsFor(c, r.limits);
    EXPECT_EQ(b.max_enis, r.want.max_enis);
    EXPECT_EQ(b.capacity, r.want.capacity);
    EXPECT_EQ(b.min_idle, r.want.min_idle);
    EXPECT_EQ(b.max_idle, r.want.max_idle);
  }
}

TEST(PlanRefill, WarmUpAddsOnTopOfWaitingPods) {
  PoolSnapshot s = Base();
  s.settings.warm_up = 15;
  auto plan = PlanRefill(s);
  EXPECT_EQ(plan.PlannedIps(), 15);
  s.demand = 2;
  plan = PlanRefill(s);
  EXPECT_EQ(plan.PlannedIps(), 17);
  // Never past the node's capacity (3 ENIs x 10).
  s.settings.warm_up = 100;
  plan = PlanRefill(s);
  EXPECT_EQ(plan.PlannedIps(), 30);
}

TEST(PlanRefill, LeastIpsCreatesEnisBeforeFillingExistingOnes) {
  PoolSnapshot s = Base();
  s.enis = {Eni("eni-1", 5, 0), Eni("eni-2", 2, 0)};
  s.demand = 3;
  s.settings.max_pool_size = 0;
  s.settings.eni_selection = EniSelectionPolicy::kLeastIps;
  auto plan = PlanRefill(s);
  EXPECT_EQ(plan.creates, (std::vector<CreateAction>{{"vsw-a", 3}}));
  EXPECT_TRUE(plan.assigns.empty());
  // At the ENI limit, the emptiest existing ENI is filled first.
  s.enis.push_back(Eni("eni-3", 4, 0));
  plan = PlanRefill(s);
  EXPECT_TRUE(plan.creates.empty());
  EXPECT_EQ(plan.assigns, (std::vector<AssignAction>{{"eni-2", 3}}));
  // most_ips (the default) packs onto the fullest.
  s.settings.eni_selection = EniSelectionPolicy::kMostIps;
  plan = PlanRefill(s);
  EXPECT_EQ(plan.assigns, (std::vector<AssignAction>{{"eni-1", 3}}));
}

TEST(PlanRefill, UnschedulableEniGetsNoAddressesButHoldsItsSlot) {
  PoolSnapshot s = Base();
  s.limits = {3, 10};  // 2 secondary ENIs
  EniView blocked = Eni("eni-1", 1, 4);
  blocked.unschedulable = true;
  s.enis = {blocked};
  s.demand = 1;
  s.settings.max_pool_size = 0;
  auto plan = PlanRefill(s);
  // Its 4 idle IPs serve nobody: a new ENI is made, none assigned on eni-1.
  EXPECT_TRUE(plan.assigns.empty());
  EXPECT_EQ(plan.creates, (std::vector<CreateAction>{{"vsw-a", 1}}));
  s.enis.push_back(Eni("eni-2", 10, 0));
  plan = PlanRefill(s);
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(plan.unmet_demand, 1);
}

TEST(PickIdleIp, ByEniSelectionPolicyThenLongestIdle) {
  EniView small = Eni("eni-small", 1, 2, minutes(5));
  EniView big = Eni("eni-big", 4, 2, minutes(1));
  big.ips.back().idle_since = kNow - minutes(9);  // the longest idle on the big ENI
  EXPECT_EQ(PickIdleIp({small, big}, EniSelectionPolicy::kMostIps), big.ips.back().ip);
  EXPECT_EQ(PickIdleIp({small, big}, EniSelectionPolicy::kLeastIps), "eni-small-ip1");
  // An unschedulable ENI is skipped; nothing idle: "".
  big.unschedulable = true;
  EXPECT_EQ(PickIdleIp({small, big}, EniSelectionPolicy::kMostIps), "eni-small-ip1");
  EXPECT_EQ(PickIdleIp({Eni("eni-full", 3, 0)}, EniSelectionPolicy::kMostIps), "");
}

// Upstream's calculateToDel, step by step: excess above max always goes; the
// batch toward min_idle only after `after` without allocations or releases,
// once per (jittered) interval.
TEST(IdleAddressesToRelease, UpstreamsReclaimClock) {
  IdleReclaimSettings r{minutes(30), minutes(10), 3, 0.1};
  IdleReclaimClock c;
  c.last_modified = kNow;
  // Off (after 0): only the excess.
  EXPECT_EQ(IdleAddressesToRelease({seconds(0), minutes(10), 3, 0.1}, 12, 2, 10, &c, kNow + minutes(99), 0), 2);
  // Busy: excess only, and the timer is not armed.
  EXPECT_EQ(IdleAddressesToRelease(r, 12, 2, 10, &c, kNow + minutes(29), 0.5), 2);
  EXPECT_EQ(c.next_reclaim, Clock::TimePoint{});
  // Quiet for `after`: the timer is armed at interval x (1 + 0.5 x 0.1).
  auto t = kNow + minutes(30);
  EXPECT_EQ(IdleAddressesToRelease(r, 8, 2, 10, &c, t, 0.5), 0);
  EXPECT_EQ(c.next_reclaim, t + seconds(630));
  EXPECT_EQ(IdleAddressesToRelease(r, 8, 2, 10, &c, t + seconds(629), 0.5), 0);
  // Due: one batch, then re-armed.
  EXPECT_EQ(IdleAddressesToRelease(r, 8, 2, 10, &c, t + seconds(630), 0), 3);
  EXPECT_EQ(c.next_reclaim, t + seconds(630) + minutes(10));
  // Never below min_idle: 4 idle, min 2 -> 2.
  EXPECT_EQ(IdleAddressesToRelease(r, 4, 2, 10, &c, t + seconds(630) + minutes(10), 0), 2);
  // A pod comes or goes: back to busy, the timer disarmed.
  c.last_modified = t + minutes(25);
  EXPECT_EQ(IdleAddressesToRelease(r, 8, 2, 10, &c, t + minutes(26), 0), 0);
  EXPECT_EQ(c.next_reclaim, Clock::TimePoint{});
}

struct ReclaimRow {
  const char* name;
  std::vector<EniView> enis;
  int count;
  std::vector<UnassignAction> unassigns;
  std::vector<std::string> deletes;
};

TEST(PlanReclaim, Table) {
  // Secondary IPs of ENI x are named "x-ip1", "x-ip2", ...; "x-ip0" is its primary.
  ReclaimRow rows[] = {
      {"nothing asked: keep", {Eni("eni-1", 1, 5, minutes(60))}, 0, {}, {}},
      {"two asked: the two oldest secondary IPs", {Eni("eni-1", 1, 7, minutes(60))}, 2,
       {{"eni-1", {"eni-1-ip1", "eni-1-ip2"}}}, {}},
      {"young idle IPs go too (upstream has no age limit)", {Eni("eni-1", 1, 7, seconds(1))}, 1,
       {{"eni-1", {"eni-1-ip1"}}}, {}},
      {"count above idle: everything idle", {Eni("eni-1", 1, 3, minutes(60))}, 9,
       {{"eni-1", {"eni-1-ip1", "eni-1-ip2", "eni-1-ip3"}}}, {}},
      {"fully idle ENI is deleted whole", {Eni("eni-1", 1, 2, minutes(60)), Eni("eni-2", 0, 3, minutes(60))}, 5,
       {{"eni-1", {"eni-1-ip1", "eni-1-ip2"}}}, {"eni-2"}},
      {"ENI with a reserved IP is not deleted", {Eni("eni-2", 0, 2, minutes(60), 1)}, 10,
       {{"eni-2", {"eni-2-ip1", "eni-2-ip2"}}}, {}},
      {"most_ips gives back from the emptiest ENI first",
       {Eni("eni-1", 4, 2, minutes(60)), Eni("eni-2", 1, 2, minutes(60))}, 2, {{"eni-2", {"eni-2-ip1", "eni-2-ip2"}}},
       {}},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    PoolSnapshot s = Base();
    s.enis = r.enis;
    auto plan = PlanReclaim(s, r.count);
    EXPECT_EQ(plan.unassigns, r.unassigns);
    EXPECT_EQ(plan.delete_enis, r.deletes);
  }
}

TEST(PlanReclaim, UnschedulableEniIsLeftAlone) {
  PoolSnapshot s = Base();
  EniView blocked = Eni("eni-1", 0, 3, minutes(60));
  blocked.unschedulable = true;
  s.enis = {blocked};
  EXPECT_TRUE(PlanReclaim(s, 10).empty());
}

TEST(PlanReclaim, NeverUnassignsAnEniPrimaryIp) {
  PoolSnapshot s = Base();
  EniView e{"eni-1", "vsw-a", {}};
  e.ips.push_back({"primary", IpUse::kIdle, kNow - minutes(90), true});
  e.ips.push_back({"busy", IpUse::kInUse, {}, false});
  e.ips.push_back({"second", IpUse::kIdle, kNow - minutes(10), false});
  s.enis = {e};
  auto plan = PlanReclaim(s, 2);
  EXPECT_EQ(plan.unassigns, (std::vector<UnassignAction>{{"eni-1", {"second"}}}));
  EXPECT_TRUE(plan.delete_enis.empty());
}

TEST(PlanReclaim, OldestIdleFirst) {
  PoolSnapshot s = Base();
  EniView e{"eni-1", "vsw-a", {}};
  e.ips.push_back({"p", IpUse::kInUse, {}, true});
  e.ips.push_back({"young", IpUse::kIdle, kNow - minutes(1), false});
  e.ips.push_back({"old", IpUse::kIdle, kNow - minutes(50), false});
  e.ips.push_back({"mid", IpUse::kIdle, kNow - minutes(20), false});
  s.enis = {e};
  auto plan = PlanReclaim(s, 2);
  EXPECT_EQ(plan.unassigns, (std::vector<UnassignAction>{{"eni-1", {"old", "mid"}}}));
}

// ---------------------------------------------------------------------------
// Dual stack: a slot is an IPv4 and an IPv6 of one ENI.

// An ENI whose IPs are all paired (ipv6 "<ip>-v6"), except the last
// `unpaired` idle ones; `spare` IPv6s with no IPv4.
EniView DualEni(const std::string& id, int in_use, int idle, int unpaired = 0, int spare = 0) {
  EniView e = Eni(id, in_use, idle + unpaired);
  for (size_t i = 0; i < e.ips.size(); ++i) {
    if (static_cast<int>(i) < in_use + idle) e.ips[i].ipv6 = e.ips[i].ip + "-v6";
  }
  for (int i = 0; i < spare; ++i) e.spare_ipv6.push_back(fmt::format("{}-spare{}", id, i));
  return e;
}

PoolSnapshot DualBase(int ips_per_eni = 10, int ipv6_per_eni = 10) {
  PoolSnapshot s = Base();
  s.limits = {4, ips_per_eni, ipv6_per_eni};
  s.settings.ip_stack = IpStack::kDual;
  return s;
}

TEST(MaxPods, DualStackUsesTheSmallerQuotaPerEni) {
  struct Row {
    InstanceLimits limits;
    IpStack stack;
    int want;
  } rows[] = {
      {{4, 15, 10}, IpStack::kDual, 30},  // IPv6 is the smaller: 3 x 10
      {{4, 10, 15}, IpStack::kDual, 30},  // IPv4 is the smaller
      {{4, 15, 10}, IpStack::kIpv4, 45},  // IPv4 only: the IPv6 quota does not matter
      {{4, 15, 0}, IpStack::kDual, 0},    // no IPv6 on this type: no dual-stack pod
  };
  for (const auto& r : rows) {
    EXPECT_EQ(MaxPods(r.limits, EniMode::kShared, r.stack), r.want)
        << r.limits.ips_per_eni << "/" << r.limits.ipv6_per_eni << " " << IpStackName(r.stack);
  }
  EXPECT_EQ(MaxPods({4, 15, 10}, EniMode::kExclusive, IpStack::kDual), 3);
}

TEST(PoolBoundsFor, DualStackSizesByTheSmallerQuota) {
  PoolConfig c;
  c.max_pool_size = 100;
  c.min_eni = 1;
  c.ip_stack = IpStack::kDual;
  PoolBounds b = PoolBoundsFor(c, {4, 15, 10});
  EXPECT_EQ(b.capacity, 30);
  EXPECT_EQ(b.max_idle, 30);
  EXPECT_EQ(b.min_idle, 10);  // min_eni x slots per ENI
  c.ip_stack = IpStack::kIpv4;
  EXPECT_EQ(PoolBoundsFor(c, {4, 15, 10}).capacity, 45);
}

TEST(PlanRefill, DualStackTable) {
  struct Row {
    const char* name;
    std::vector<EniView> enis;
    int demand;
    int min_pool;
    InstanceLimits limits;
    std::vector<AssignAction> assigns;
    std::vector<CreateAction> creates;
    int unmet;
  } rows[] = {
      {"new ENI carries as many IPv6s as IPv4s", {}, 3, 0, {4, 10, 10}, {}, {{"vsw-a", 8, 8}}, 0},
      {"assign on an ENI asks both families", {DualEni("eni-1", 2, 0)}, 0, 3, {4, 10, 10},
       {{"eni-1", 3, 3}}, {}, 0},
      {"unpaired IPv4s get their IPv6 first and count as coming idle",
       {DualEni("eni-1", 2, 0, 3)}, 0, 3, {4, 10, 10}, {{"eni-1", 0, 3}}, {}, 0},
      {"spare IPv6s pair with new IPv4s before new IPv6s are asked", {DualEni("eni-1", 2, 0, 0, 2)}, 0,
       3, {4, 10, 10}, {{"eni-1", 3, 1}}, {}, 0},
      {"room per ENI is the smaller quota (IPv6 6 of IPv4 10)", {DualEni("eni-1", 4, 0)}, 0, 4,
       {4, 10, 6}, {{"eni-1", 2, 2}}, {{"vsw-a", 2, 2}}, 0},
      {"spare IPv6s take room: 4 paired + 2 spare of 6", {DualEni("eni-1", 4, 0, 0, 2)}, 0, 2,
       {2, 10, 6}, {}, {}, 0},
      {"pairing stops at the IPv6 quota: 5 paired + 0 spare of 6, 3 unpaired",
       {DualEni("eni-1", 5, 0, 3)}, 0, 0, {3, 10, 6}, {{"eni-1", 0, 1}}, {}, 0},
      {"spare IPv6s count against the IPv6 quota when pairing",
       {DualEni("eni-1", 4, 0, 3, 1)}, 0, 0, {3, 10, 6}, {{"eni-1", 0, 1}}, {}, 0},
      {"node full by the IPv6 quota: demand unmet",
       {DualEni("eni-1", 6, 0), DualEni("eni-2", 6, 0), DualEni("eni-3", 6, 0)}, 1, 0, {4, 10, 6}, {},
       {}, 1},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    PoolSnapshot s = DualBase();
    s.limits = r.limits;
    s.enis = r.enis;
    s.demand = r.demand;
    s.settings.min_pool_size = r.min_pool;
    s.settings.max_pool_size = 5;
    auto plan = PlanRefill(s);
    EXPECT_EQ(plan.assigns, r.assigns);
    EXPECT_EQ(plan.creates, r.creates);
    EXPECT_EQ(plan.unmet_demand, r.unmet);
  }
}

// An exhausted vSwitch gives no IPv6 either: its ENIs' unpaired IPv4s wait.
TEST(PlanRefill, DualStackPairsNothingOnAnExhaustedVSwitch) {
  PoolSnapshot s = DualBase();
  s.enis = {DualEni("eni-1", 2, 0, 3)};
  s.vswitches = {{"vsw-a", 100, true}};
  auto plan = PlanRefill(s);
  for (const auto& a : plan.assigns) EXPECT_NE(a.eni_id, "eni-1") << "pairing on an exhausted vSwitch";
}

TEST(PickIdleIp, DualStackNeverPicksAnUnpairedIpv4) {
  // eni-1 holds the most addresses but its idle IPv4s are unpaired.
  std::vector<EniView> enis = {DualEni("eni-1", 3, 0, 4), DualEni("eni-2", 1, 1)};
  EXPECT_EQ(PickIdleIp(enis, EniSelectionPolicy::kMostIps, IpStack::kDual), "eni-2-ip1");
  enis = {DualEni("eni-1", 3, 0, 4)};
  EXPECT_EQ(PickIdleIp(enis, EniSelectionPolicy::kMostIps, IpStack::kDual), "");
  // IPv4 only: the same addresses are all usable.
  EXPECT_NE(PickIdleIp(enis, EniSelectionPolicy::kMostIps, IpStack::kIpv4), "");
}

TEST(PlanReclaim, DualStackGivesBackBothAddressesOfASlot) {
  PoolSnapshot s = DualBase();
  s.enis = {DualEni("eni-1", 1, 3)};
  // Two slots: the longest idle are ip1, ip2 (same age: id order kept).
  auto plan = PlanReclaim(s, 2);
  ASSERT_EQ(plan.unassigns.size(), 1u);
  EXPECT_EQ(plan.unassigns[0].ips, (std::vector<std::string>{"eni-1-ip1", "eni-1-ip2"}));
  EXPECT_EQ(plan.unassigns[0].ipv6s, (std::vector<std::string>{"eni-1-ip1-v6", "eni-1-ip2-v6"}));
  EXPECT_TRUE(plan.delete_enis.empty());
}

TEST(PlanReclaim, DualStackAlwaysGivesBackWhatServesNoPod) {
  PoolSnapshot s = DualBase();
  // In use 2, idle pairs 1, unpaired idle IPv4s 2, spare IPv6s 1.
  s.enis = {DualEni("eni-1", 2, 1, 2, 1)};
  auto plan = PlanReclaim(s, 0);  // the sizes want nothing back
  ASSERT_EQ(plan.unassigns.size(), 2u);  // each in an action of its own
  EXPECT_EQ(plan.unassigns[0], (UnassignAction{"eni-1", {"eni-1-ip3", "eni-1-ip4"}, {}}));
  EXPECT_EQ(plan.unassigns[1], (UnassignAction{"eni-1", {}, {"eni-1-spare0"}}));
  // The idle pair counts, the unpaired IPv4s do not.
  EXPECT_EQ(IdleSlots(s), 1);
  // The same ENI on an IPv4-only node: nothing is unpaired, nothing goes.
  s.settings.ip_stack = IpStack::kIpv4;
  EXPECT_TRUE(PlanReclaim(s, 0).empty());
  EXPECT_EQ(IdleSlots(s), 3);
}

// A slot's IPv4 and IPv6 are given back in the same action whatever the
// batch boundaries: a failed call must not return half a slot to the pool
// (a pod would take it, the next call would unassign its other half).
// Unpaired IPv4s and spare IPv6s travel in actions of their own.
TEST(PlanReclaim, DualStackNeverSplitsASlotAcrossActions) {
  struct Row {
    const char* name;
    int idle, unpaired, spare, budget;
  };
  for (const Row& r : std::vector<Row>{
           {"unpaired and spares shift the batch boundaries", 12, 5, 3, 12},
           {"more than a call of each", 14, 11, 12, 14},
           {"slots only, two calls", 13, 0, 0, 13},
           {"budget takes part of the slots", 9, 2, 7, 4},
       }) {
    SCOPED_TRACE(r.name);
    PoolSnapshot s = DualBase(40, 40);
    s.enis = {DualEni("eni-1", 1, r.idle, r.unpaired, r.spare)};
    auto plan = PlanReclaim(s, r.budget);
    int slots = 0, unpaired = 0, spares = 0;
    for (const auto& u : plan.unassigns) {
      EXPECT_LE(u.ips.size(), 10u);
      EXPECT_LE(u.ipv6s.size(), 10u);
      const std::set<std::string> v4(u.ips.begin(), u.ips.end());
      const std::set<std::string> v6(u.ipv6s.begin(), u.ipv6s.end());
      int action_slots = 0;
      for (const auto& ip : u.ips) {
        if (s.enis[0].ips[std::stoi(ip.substr(ip.rfind("ip") + 2))].ipv6.empty()) {
          ++unpaired;
          EXPECT_TRUE(u.ipv6s.empty()) << "unpaired " << ip << " shares an action with IPv6s";
        } else {
          ++action_slots;
          EXPECT_EQ(v6.count(ip + "-v6"), 1u) << ip << " without its IPv6";
        }
      }
      for (const auto& ip : u.ipv6s) {
        if (ip.find("spare") != std::string::npos) {
          ++spares;
          EXPECT_TRUE(u.ips.empty()) << "spare " << ip << " shares an action with IPv4s";
        } else {
          EXPECT_EQ(v4.count(ip.substr(0, ip.size() - 3)), 1u) << ip << " without its IPv4";
        }
      }
      slots += action_slots;
    }
    EXPECT_EQ(slots, std::min(r.idle, r.budget));
    EXPECT_EQ(unpaired, r.unpaired);
    EXPECT_EQ(spares, r.spare);
  }
}

TEST(PlanReclaim, DualStackWholeEniCountsItsPairs) {
  PoolSnapshot s = DualBase();
  // eni-1: 2 idle pairs + 1 unpaired idle: deleting it frees 2 slots.
  s.enis = {DualEni("eni-1", 0, 2, 1), DualEni("eni-2", 1, 0)};
  auto plan = PlanReclaim(s, 2);
  EXPECT_EQ(plan.delete_enis, (std::vector<std::string>{"eni-1"}));
  EXPECT_TRUE(plan.unassigns.empty());
}
}  // namespace
}  // namespace terway::ipam
