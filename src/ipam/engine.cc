#include "ipam/engine.h"

#include <algorithm>
#include <map>
#include <random>

#include "common/strings.h"

namespace terway::ipam {

int SlotsPerEni(const InstanceLimits& limits, IpStack stack) {
  const int v4 = std::max(0, limits.ips_per_eni);
  if (stack == IpStack::kIpv4) return v4;
  return std::min(v4, std::max(0, limits.ipv6_per_eni));
}

int MaxPods(const InstanceLimits& limits, EniMode mode, IpStack stack) {
  int secondary_enis = std::max(0, limits.eni_quantity - 1);
  if (mode == EniMode::kExclusive) return secondary_enis;
  return secondary_enis * SlotsPerEni(limits, stack);
}

PoolBounds PoolBoundsFor(const PoolConfig& c, const InstanceLimits& limits) {
  PoolBounds b;
  const int secondary = std::max(0, limits.eni_quantity - 1);
  // int() truncates toward zero, as Go's int(float64) conversion does.
  int enis = static_cast<int>(static_cast<double>(limits.eni_quantity) * c.eni_cap_ratio) + c.eni_cap_shift - 1;
  if (c.max_eni > 0 && c.max_eni < enis) enis = c.max_eni;
  b.max_enis = std::clamp(enis, 0, secondary);
  const int ips = SlotsPerEni(limits, c.ip_stack);
  if (c.eni_mode == EniMode::kExclusive) {
    b.capacity = b.max_enis;
    return b;
  }
  b.capacity = b.max_enis * ips;
  b.max_idle = std::clamp(c.max_pool_size, 0, b.capacity);
  b.min_idle = std::clamp(c.min_eni > 0 ? c.min_eni * ips : c.min_pool_size, 0, b.max_idle);
  return b;
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

// Complete slots in `use` on schedulable ENIs (an unschedulable ENI's idle
// addresses serve nobody, nor does an unpaired dual-stack IPv4).
int CountUse(const PoolSnapshot& s, IpUse use) {
  int n = 0;
  for (const auto& e : s.enis) {
    if (e.unschedulable) continue;
    for (const auto& ip : e.ips) n += ip.use == use && Complete(ip, s.settings.ip_stack) ? 1 : 0;
  }
  return n;
}

int Unpaired(const EniView& e, IpStack stack) {
  int n = 0;
  for (const auto& ip : e.ips) n += Complete(ip, stack) ? 0 : 1;
  return n;
}

// Unpaired slots that may get an IPv6 now: idle or reserved (a slot in use
// keeps what its pod was given; one being released is on its way out).
int Pairable(const EniView& e, IpStack stack) {
  int n = 0;
  for (const auto& ip : e.ips) {
    n += !Complete(ip, stack) && (ip.use == IpUse::kIdle || ip.use == IpUse::kReserved) ? 1 : 0;
  }
  return n;
}

// How much of the ENI's quota is taken: its IPv4s; in dual stack also its
// IPv6s (paired and spare), whichever is more.
int EniLoad(const EniView& e, IpStack stack) {
  const int v4 = static_cast<int>(e.ips.size());
  if (stack == IpStack::kIpv4) return v4;
  return std::max(v4, v4 - Unpaired(e, stack) + static_cast<int>(e.spare_ipv6.size()));
}

int EniCap(const PoolSnapshot& s) {
  int cap = std::max(0, s.limits.eni_quantity - 1);
  if (s.settings.max_enis >= 0) cap = std::min(cap, s.settings.max_enis);
  return cap;
}

int IpCount(const EniView& e) { return static_cast<int>(e.ips.size()); }

// ENIs in the order eni_selection prefers them for new pods: kMostIps the
// fullest first, kLeastIps the emptiest first; ties by id (stable plans).
std::vector<const EniView*> ByPreference(const std::vector<EniView>& enis, EniSelectionPolicy policy) {
  std::vector<const EniView*> order;
  for (const auto& e : enis) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [policy](const EniView* a, const EniView* b) {
    if (IpCount(*a) != IpCount(*b)) {
      return policy == EniSelectionPolicy::kMostIps ? IpCount(*a) > IpCount(*b) : IpCount(*a) < IpCount(*b);
    }
    return a->eni_id < b->eni_id;
  });
  return order;
}

Error Exhausted(std::string msg) {
  Error e(ErrorCode::kExhausted, std::move(msg));
  e.retryable = false;
  return e;
}

}  // namespace

int IdleSlots(const PoolSnapshot& s) { return CountUse(s, IpUse::kIdle); }

RefillPlan PlanRefill(const PoolSnapshot& s) {
  RefillPlan plan;
  const IpStack stack = s.settings.ip_stack;
  const bool dual = stack == IpStack::kDual;
  const int ips_per_eni = SlotsPerEni(s.limits, stack);
  int total = 0;
  for (const auto& e : s.enis) total += EniLoad(e, stack);
  // Dual stack: unpaired IPv4s get their IPv6 first (no new quota taken);
  // once paired they are idle slots like any other.
  int pairing = 0;
  if (dual) {
    for (const auto& e : s.enis) {
      if (e.unschedulable) continue;
      // IPv6s come from the ENI's vSwitch: not from one that just ran out.
      auto vsw = std::find_if(s.vswitches.begin(), s.vswitches.end(),
                              [&](const VSwitchView& v) { return v.vswitch_id == e.vswitch_id; });
      if (vsw != s.vswitches.end() && vsw->exhausted) continue;
      // The ENI's IPv6 quota: what it holds (paired and spare) is taken.
      const int v6_held = static_cast<int>(e.ips.size()) - Unpaired(e, stack) + static_cast<int>(e.spare_ipv6.size());
      const int v6_room = std::max(0, s.limits.ipv6_per_eni - v6_held);
      for (int left = std::min(Pairable(e, stack), v6_room); left > 0;) {
        int n = std::min(left, kMaxIpsPerCall);
        plan.assigns.push_back({e.eni_id, 0, n});
        pairing += n;
        left -= n;
      }
    }
  }
  const int idle = CountUse(s, IpUse::kIdle) + pairing;
  const int eni_cap = EniCap(s);
  const int capacity = eni_cap * ips_per_eni;

  const int unserved = std::max(0, s.demand - idle);
  int want = std::max({0, s.demand + s.settings.min_pool_size - idle, unserved + s.settings.warm_up});
  if (unserved > 0) {
    // Batch: while pods wait, ask in whole calls' worth (10 IPs), but never
    // leave more than max_pool_size idle once the waiting pods are served.
    int whole_calls = (unserved + kMaxIpsPerCall - 1) / kMaxIpsPerCall * kMaxIpsPerCall;
    want = std::max(want, std::min(whole_calls, unserved + s.settings.max_pool_size));
  }
  want = std::max(0, std::min(want, capacity - total));

  int enis = static_cast<int>(s.enis.size());
  std::vector<VSwitchView> vs = s.vswitches;
  // New ENIs (each takes at most one call's worth at creation).
  auto create_enis = [&] {
    while (want > 0 && enis < eni_cap && !s.eni_creation_blocked) {
      auto ordered = OrderVSwitches(vs, s.policy, s.seed + plan.creates.size());
      if (ordered.empty()) break;
      auto it = std::find_if(vs.begin(), vs.end(),
                             [&](const VSwitchView& v) { return v.vswitch_id == ordered.front(); });
      int n = std::min<int64_t>({want, ips_per_eni, kMaxIpsPerCall, it->available_ips});
      plan.creates.push_back({it->vswitch_id, n, dual ? n : 0});
      it->available_ips -= n;
      want -= n;
      ++enis;
    }
  };
  // kLeastIps spreads pods over as many ENIs as allowed: new ENIs first.
  if (s.settings.eni_selection == EniSelectionPolicy::kLeastIps) create_enis();

  // Existing ENIs with room, in preference order (kMostIps: fullest first,
  // which packs pods onto few ENIs so the rest can be freed whole later).
  for (const EniView* e : ByPreference(s.enis, s.settings.eni_selection)) {
    if (e->unschedulable) continue;
    // An ENI's secondary IPs come from its own vSwitch: skip it while that
    // vSwitch is out of addresses.
    auto vsw = std::find_if(s.vswitches.begin(), s.vswitches.end(),
                            [&](const VSwitchView& v) { return v.vswitch_id == e->vswitch_id; });
    if (vsw != s.vswitches.end() && (vsw->exhausted || vsw->available_ips <= 0)) continue;
    int room = ips_per_eni - EniLoad(*e, stack);
    // New IPv4s pair with the ENI's spare IPv6s before new IPv6s are asked.
    int spare = dual ? static_cast<int>(e->spare_ipv6.size()) : 0;
    while (want > 0 && room > 0) {
      int n = std::min({want, room, kMaxIpsPerCall});
      int v6 = dual ? std::max(0, n - spare) : 0;
      spare = std::max(0, spare - n);
      plan.assigns.push_back({e->eni_id, n, v6});
      want -= n;
      room -= n;
    }
  }

  create_enis();

  // What the node could still reach (this plan and later rounds together):
  // one round may not get there, since a new ENI takes at most 10 IPs in
  // its create call and the rest comes from assigns once it exists.
  int room_existing = 0;
  for (const auto& e : s.enis) {
    if (e.unschedulable) continue;
    auto vsw = std::find_if(s.vswitches.begin(), s.vswitches.end(),
                            [&](const VSwitchView& v) { return v.vswitch_id == e.vswitch_id; });
    if (vsw != s.vswitches.end() && (vsw->exhausted || vsw->available_ips <= 0)) continue;
    room_existing += std::max(0, ips_per_eni - EniLoad(e, stack));
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
          eni_cap < std::max(0, s.limits.eni_quantity - 1)
              ? " as eni_conf allows (max_eni, eni_cap_ratio, eni_cap_shift)"
              : ""));
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

std::string PickIdleIp(const std::vector<EniView>& enis, EniSelectionPolicy policy, IpStack stack) {
  for (const EniView* e : ByPreference(enis, policy)) {
    if (e->unschedulable) continue;
    const IpView* best = nullptr;
    for (const auto& ip : e->ips) {
      if (!Complete(ip, stack)) continue;
      if (ip.use == IpUse::kIdle && (best == nullptr || ip.idle_since < best->idle_since)) best = &ip;
    }
    if (best != nullptr) return best->ip;
  }
  return "";
}

int IdleAddressesToRelease(const IdleReclaimSettings& r, int idle, int min_idle, int max_idle,
                           IdleReclaimClock* clock, Clock::TimePoint now, double random01) {
  int to_release = std::max(0, idle - max_idle);
  if (r.after.count() <= 0 || r.batch_size <= 0) return to_release;
  if (clock->last_modified + r.after > now) {
    clock->next_reclaim = {};  // busy: start over once it has been quiet for `after`
    return to_release;
  }
  // wait.Jitter(d, f) in upstream: d + random * f * d.
  const double factor = r.jitter_factor > 0 ? r.jitter_factor : 0.1;
  auto jittered = std::chrono::duration_cast<Clock::TimePoint::duration>(
      std::chrono::duration<double>(static_cast<double>(r.interval.count()) * (1.0 + random01 * factor)));
  if (clock->next_reclaim == Clock::TimePoint{}) {
    clock->next_reclaim = now + jittered;
    return to_release;
  }
  if (clock->next_reclaim > now) return to_release;
  clock->next_reclaim = now + jittered;
  return to_release + std::min(r.batch_size, std::max(0, idle - to_release - min_idle));
}

ReclaimPlan PlanReclaim(const PoolSnapshot& s, int count) {
  ReclaimPlan plan;
  const IpStack stack = s.settings.ip_stack;
  int budget = std::min(count, CountUse(s, IpUse::kIdle));
  const auto releasable = [](const IpView& ip) { return ip.use == IpUse::kIdle; };
  const auto complete = [stack](const IpView& ip) { return Complete(ip, stack); };

  // Whole ENIs first, the longest-idle first: one Detach+Delete frees the
  // most and leaves the remaining ENIs fuller.
  struct Candidate {
    const EniView* eni;
    Clock::TimePoint newest_idle;
  };
  std::vector<Candidate> whole;
  if (budget > 0) {
    for (const auto& e : s.enis) {
      if (e.unschedulable || e.ips.empty() || !std::all_of(e.ips.begin(), e.ips.end(), releasable)) continue;
      Clock::TimePoint newest{};
      for (const auto& ip : e.ips) newest = std::max(newest, ip.idle_since);
      whole.push_back({&e, newest});
    }
  }
  std::stable_sort(whole.begin(), whole.end(),
                   [](const Candidate& a, const Candidate& b) { return a.newest_idle < b.newest_idle; });
  std::vector<std::string> deleted;
  for (const auto& c : whole) {
    int n = static_cast<int>(std::count_if(c.eni->ips.begin(), c.eni->ips.end(), complete));
    if (n > budget) continue;
    plan.delete_enis.push_back(c.eni->eni_id);
    deleted.push_back(c.eni->eni_id);
    budget -= n;
  }

  // Then single slots (both addresses of a pair): ENIs in the reverse of the
  // order pods are served from, oldest idle first within each. Dual stack:
  // besides, every address that serves no pod (an idle unpaired IPv4, a
  // spare IPv6).
  std::vector<const EniView*> order = ByPreference(s.enis, s.settings.eni_selection);
  std::reverse(order.begin(), order.end());
  // Per ENI: idle unpaired IPv4s, spare IPv6s, and slots (IPv4, IPv6). A
  // slot's two addresses always travel in the same action (IPv6 first, then
  // IPv4), so a failed call never leaves half a slot given back while the
  // other half is handed to a pod; addresses of no slot get actions of
  // their own.
  struct Release {
    std::vector<std::string> unpaired, spares, slot_v4, slot_v6;
  };
  std::map<std::string, Release> per_eni;
  for (const EniView* e : order) {
    if (e->unschedulable || std::find(deleted.begin(), deleted.end(), e->eni_id) != deleted.end()) continue;
    std::vector<const IpView*> idle;
    for (const auto& ip : e->ips) {
      if (!releasable(ip) || ip.eni_primary_ip) continue;
      if (complete(ip)) {
        idle.push_back(&ip);
      } else {
        per_eni[e->eni_id].unpaired.push_back(ip.ip);
      }
    }
    if (stack == IpStack::kDual) {
      for (const auto& v6 : e->spare_ipv6) per_eni[e->eni_id].spares.push_back(v6);
    }
    std::stable_sort(idle.begin(), idle.end(),
                     [](const IpView* a, const IpView* b) { return a->idle_since < b->idle_since; });
    for (const IpView* ip : idle) {
      if (budget <= 0) break;
      per_eni[e->eni_id].slot_v4.push_back(ip->ip);
      if (stack == IpStack::kDual) per_eni[e->eni_id].slot_v6.push_back(ip->ipv6);
      --budget;
    }
  }
  const auto chunk = [](const std::vector<std::string>& v, size_t i) {
    if (i >= v.size()) return std::vector<std::string>{};
    return std::vector<std::string>(v.begin() + i, v.begin() + std::min(v.size(), i + kMaxIpsPerCall));
  };
  for (auto& [eni, r] : per_eni) {
    // Either unassign call takes at most 10 addresses.
    for (size_t i = 0; i < r.unpaired.size(); i += kMaxIpsPerCall) {
      plan.unassigns.push_back({eni, chunk(r.unpaired, i), {}});
    }
    for (size_t i = 0; i < r.spares.size(); i += kMaxIpsPerCall) {
      plan.unassigns.push_back({eni, {}, chunk(r.spares, i)});
    }
    for (size_t i = 0; i < r.slot_v4.size(); i += kMaxIpsPerCall) {
      plan.unassigns.push_back({eni, chunk(r.slot_v4, i), chunk(r.slot_v6, i)});
    }
  }
  return plan;
}

}  // namespace terway::ipam
