#include "ipam/engine.h"

#include <algorithm>
#include <map>
#include <random>

#include "common/strings.h"

namespace terway::ipam {

int MaxPods(const InstanceLimits& limits, EniMode mode) {
  int secondary_enis = std::max(0, limits.eni_quantity - 1);
  if (mode == EniMode::kExclusive) return secondary_enis;
  return secondary_enis * std::max(0, limits.ips_per_eni);
}

int RefillPlan::PlannedIps() const {
  int n = 0;
  for (const auto& a : assigns) n += a.count;
  for (const auto& c : creates) n += c.ip_count;
  return n;
}

std::vector<std::string> OrderVSwitches(const std::vector<VSwitchView>& vs,
                                        VSwitchSelectionPolicy policy, uint64_t seed) {
  std::vector<VSwitchView> usable;
  for (const auto& v : vs) {
    if (!v.exhausted && v.available_ips > 0) usable.push_back(v);
  }
  switch (policy) {
    case VSwitchSelectionPolicy::kListOrder:
      break;
    case VSwitchSelectionPolicy::kMost:
      std::stable_sort(usable.begin(), usable.end(), [](const VSwitchView& a, const VSwitchView& b) {
        return a.available_ips > b.available_ips;
      });
      break;
    case VSwitchSelectionPolicy::kRandom: {
      std::mt19937_64 rng(seed);
      std::shuffle(usable.begin(), usable.end(), rng);
      break;
    }
  }
  std::vector<std::string> out;
  for (const auto& v : usable) out.push_back(v.vswitch_id);
  return out;
}

namespace {

int CountUse(const PoolSnapshot& s, IpUse use) {
  int n = 0;
  for (const auto& e : s.enis) {
    for (const auto& ip : e.ips) n += ip.use == use ? 1 : 0;
  }
  return n;
}

int EniCap(const PoolSnapshot& s) {
  int cap = std::max(0, s.limits.eni_quantity - 1);
  if (s.settings.max_eni > 0) cap = std::min(cap, s.settings.max_eni);
  return cap;
}

Error Exhausted(std::string msg) {
  Error e(ErrorCode::kExhausted, std::move(msg));
  e.retryable = false;
  return e;
}

}  // namespace

RefillPlan PlanRefill(const PoolSnapshot& s) {
  RefillPlan plan;
  const int idle = CountUse(s, IpUse::kIdle);
  const int ips_per_eni = s.limits.ips_per_eni;
  int total = 0;
  for (const auto& e : s.enis) total += static_cast<int>(e.ips.size());
  const int eni_cap = EniCap(s);
  const int capacity = eni_cap * ips_per_eni;

  const int unserved = std::max(0, s.demand - idle);
  int want = std::max(0, s.demand + s.settings.min_pool_size - idle);
  if (unserved > 0) {
    // Batch: while pods wait, ask in whole calls' worth (10 IPs), but never
    // leave more than max_pool_size idle once the waiting pods are served.
    int whole_calls = (unserved + kMaxIpsPerCall - 1) / kMaxIpsPerCall * kMaxIpsPerCall;
    want = std::max(want, std::min(whole_calls, unserved + s.settings.max_pool_size));
  }
  want = std::max(0, std::min(want, capacity - total));

  // 1. Existing ENIs with room, fullest first: packs pods onto few ENIs so
  //    the rest can be freed whole later.
  std::vector<const EniView*> order;
  for (const auto& e : s.enis) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const EniView* a, const EniView* b) {
    return a->ips.size() > b->ips.size();
  });
  for (const EniView* e : order) {
    // An ENI's secondary IPs come from its own vSwitch: skip it while that
    // vSwitch is out of addresses.
    auto vsw = std::find_if(s.vswitches.begin(), s.vswitches.end(),
                            [&](const VSwitchView& v) { return v.vswitch_id == e->vswitch_id; });
    if (vsw != s.vswitches.end() && (vsw->exhausted || vsw->available_ips <= 0)) continue;
    int room = ips_per_eni - static_cast<int>(e->ips.size());
    while (want > 0 && room > 0) {
      int n = std::min({want, room, kMaxIpsPerCall});
      plan.assigns.push_back({e->eni_id, n});
      want -= n;
      room -= n;
    }
  }

  // 2. New ENIs.
  int enis = static_cast<int>(s.enis.size());
  std::vector<VSwitchView> vs = s.vswitches;
  while (want > 0 && enis < eni_cap && !s.eni_creation_blocked) {
    auto ordered = OrderVSwitches(vs, s.policy, s.seed + plan.creates.size());
    if (ordered.empty()) break;
    auto it = std::find_if(vs.begin(), vs.end(),
                           [&](const VSwitchView& v) { return v.vswitch_id == ordered.front(); });
    int n = std::min<int64_t>({want, ips_per_eni, kMaxIpsPerCall, it->available_ips});
    plan.creates.push_back({it->vswitch_id, n});
    it->available_ips -= n;
    want -= n;
    ++enis;
  }

  // min_eni: keep that many ENIs attached even with an empty pool, each
  // with just its primary IP.
  while (enis < std::min(s.settings.min_eni, eni_cap) && !s.eni_creation_blocked) {
    auto ordered = OrderVSwitches(vs, s.policy, s.seed + plan.creates.size());
    if (ordered.empty()) break;
    auto it = std::find_if(vs.begin(), vs.end(),
                           [&](const VSwitchView& v) { return v.vswitch_id == ordered.front(); });
    plan.creates.push_back({it->vswitch_id, 1});
    it->available_ips -= 1;
    ++enis;
  }

  // What the node could still reach (this plan and later rounds together):
  // one round may not get there, since a new ENI takes at most 10 IPs in
  // its create call and the rest comes from assigns once it exists.
  int room_existing = 0;
  for (const auto& e : s.enis) {
    auto vsw = std::find_if(s.vswitches.begin(), s.vswitches.end(),
                            [&](const VSwitchView& v) { return v.vswitch_id == e.vswitch_id; });
    if (vsw != s.vswitches.end() && (vsw->exhausted || vsw->available_ips <= 0)) continue;
    room_existing += std::max(0, ips_per_eni - static_cast<int>(e.ips.size()));
  }
  int64_t vswitch_room = 0;
  for (const auto& v : s.vswitches) {
    if (!v.exhausted && v.available_ips > 0) vswitch_room += v.available_ips;
  }
  const int creatable = s.eni_creation_blocked ? 0 : std::max(0, eni_cap - static_cast<int>(s.enis.size()));
  const int64_t new_room = std::min<int64_t>(int64_t{creatable} * ips_per_eni, vswitch_room);
  const int64_t potential = std::min<int64_t>(room_existing + new_room, capacity - total);
  plan.unmet_demand = static_cast<int>(std::max<int64_t>(0, unserved - potential));
  if (plan.unmet_demand > 0) {
    if (capacity - total < unserved) {
      plan.unmet_reason = Exhausted(fmt::format(
          "node is at its maximum of {} pod IPs ({} ENIs x {} IPs{}); delete pods or use a larger "
          "instance type",
          capacity, eni_cap, ips_per_eni,
          s.settings.max_eni > 0 ? fmt::format(", max_eni {}", s.settings.max_eni) : ""));
    } else if (s.eni_creation_blocked) {
      plan.unmet_reason = Exhausted(
          "the instance cannot attach more ENIs (EniPerInstanceLimitExceeded) and its ENIs are "
          "full; delete pods or use a larger instance type");
    } else {
      std::vector<std::string> why;
      for (const auto& v : s.vswitches) {
        why.push_back(v.exhausted ? fmt::format("{} (InvalidVSwitchId.IpNotEnough)", v.vswitch_id)
                                  : fmt::format("{} ({} available)", v.vswitch_id, v.available_ips));
      }
      plan.unmet_reason = Exhausted(
          why.empty() ? std::string("no vSwitch is configured for this node's zone; add one to "
                                    "eni_conf \"vswitches\"")
                      : fmt::format("every vSwitch of the node is out of IPs: {}; add a vSwitch "
                                    "with free addresses to eni_conf \"vswitches\"",
                                    Join(why, ", ")));
    }
  }
  return plan;
}

ReclaimPlan PlanReclaim(const PoolSnapshot& s) {
  ReclaimPlan plan;
  const int idle = CountUse(s, IpUse::kIdle);
  int excess = idle - s.settings.max_pool_size;
  int budget = std::min(excess, s.settings.reclaim_batch_size);
  if (budget <= 0) return plan;
  const auto ripe = [&](const IpView& ip) {
    return ip.use == IpUse::kIdle && ip.idle_since + s.settings.reclaim_after <= s.now;
  };

  // Whole ENIs first, the longest-idle first: one Detach+Delete frees the
  // most and leaves the remaining ENIs fuller.
  struct Candidate {
    const EniView* eni;
    Clock::TimePoint newest_idle;
  };
  std::vector<Candidate> whole;
  for (const auto& e : s.enis) {
    if (e.ips.empty() || !std::all_of(e.ips.begin(), e.ips.end(), ripe)) continue;
    Clock::TimePoint newest{};
    for (const auto& ip : e.ips) newest = std::max(newest, ip.idle_since);
    whole.push_back({&e, newest});
  }
  std::stable_sort(whole.begin(), whole.end(),
                   [](const Candidate& a, const Candidate& b) { return a.newest_idle < b.newest_idle; });
  int enis_left = static_cast<int>(s.enis.size());
  std::vector<std::string> deleted;
  for (const auto& c : whole) {
    int n = static_cast<int>(c.eni->ips.size());
    if (n > budget || enis_left <= s.settings.min_eni) continue;
    plan.delete_enis.push_back(c.eni->eni_id);
    deleted.push_back(c.eni->eni_id);
    budget -= n;
    --enis_left;
  }

  // Then single secondary IPs, oldest idle first.
  struct Single {
    std::string eni_id;
    const IpView* ip;
  };
  std::vector<Single> singles;
  for (const auto& e : s.enis) {
    if (std::find(deleted.begin(), deleted.end(), e.eni_id) != deleted.end()) continue;
    for (const auto& ip : e.ips) {
      if (ripe(ip) && !ip.eni_primary_ip) singles.push_back({e.eni_id, &ip});
    }
  }
  std::stable_sort(singles.begin(), singles.end(), [](const Single& a, const Single& b) {
    return a.ip->idle_since < b.ip->idle_since;
  });
  std::map<std::string, std::vector<std::string>> per_eni;
  for (const auto& sgl : singles) {
    if (budget <= 0) break;
    per_eni[sgl.eni_id].push_back(sgl.ip->ip);
    --budget;
  }
  for (auto& [eni, ips] : per_eni) {
    // UnassignPrivateIpAddresses also takes at most 10 addresses per call.
    for (size_t i = 0; i < ips.size(); i += kMaxIpsPerCall) {
      auto end = std::min(ips.size(), i + kMaxIpsPerCall);
      plan.unassigns.push_back({eni, std::vector<std::string>(ips.begin() + i, ips.begin() + end)});
    }
  }
  return plan;
}

}  // namespace terway::ipam
