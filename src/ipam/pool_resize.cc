#include "ipam/pool.h"

#include <algorithm>
#include <random>
#include <utility>

#include "common/log.h"
#include "ipam/pool_internal.h"

namespace terway::ipam {

using pool_detail::EniIps;
using pool_detail::MaybeApplied;

// ---------------------------------------------------------------------------
// Growing the pool

PoolSnapshot IpPool::SnapshotLocked(int demand) const {
  PoolSnapshot s;
  const auto now = clock_->Now();
  std::map<std::string, EniView> views;
  for (const auto& [id, e] : enis_) views[id] = EniView{id, e.vswitch_id, {}, e.unschedulable, e.spare_ipv6};
  for (const auto& [ip, e] : ips_) {
    auto it = views.find(e.eni_id);
    if (it == views.end()) continue;
    it->second.ips.push_back({ip, e.use, e.idle_since, e.eni_primary_ip, e.ipv6});
  }
  for (auto& [id, v] : views) s.enis.push_back(std::move(v));
  s.limits = limits_;
  const auto& c = opts_.config;
  s.settings.min_pool_size = bounds_.min_idle;
  s.settings.max_pool_size = bounds_.max_idle;
  s.settings.max_enis = bounds_.max_enis;
  s.settings.warm_up = warm_up_left_;
  s.settings.eni_selection = c.eni_selection_policy;
  s.settings.ip_stack = c.ip_stack;
  s.vswitches = vswitches_.Views(now);
  s.policy = c.vswitch_selection_policy;
  s.seed = opts_.seed + plan_counter_;
  s.demand = demand;
  s.eni_creation_blocked = eni_blocked_until_ > now;
  s.now = now;
  return s;
}

void IpPool::RefreshVSwitches() {
  RefreshLedger(vswitches_, mu_, *provider_, *clock_, opts_.config.ip_pool_sync_period);
}

bool IpPool::NoteCloudError(const Error& e, const std::string& vswitch_id) {
  std::lock_guard l(mu_);
  return NoteCloudErrorLocked(e, vswitch_id);
}

// Callers that already hold mu_ (the reclaim loop) call this one: mu_ is not
// recursive, and locking it again here once wedged every ADD and DEL of the
// node for good after a single failed UnassignPrivateIpAddresses.
bool IpPool::NoteCloudErrorLocked(const Error& e, const std::string& vswitch_id) {
  last_cloud_error_ = e;
  const auto now = clock_->Now();
  if (e.cloud_code == kCodeIpNotEnough && !vswitch_id.empty()) {
    vswitches_.MarkExhausted(vswitch_id, now + opts_.vswitch_exhausted_for);
    log::Warn("vswitch_exhausted vswitch={} for={}s", vswitch_id, opts_.vswitch_exhausted_for.count());
    return true;
  }
  if (e.cloud_code == kCodeEniLimit) {
    eni_blocked_until_ = now + opts_.eni_limit_pause;
    log::Warn("eni_creation_paused reason={} for={}s", e.cloud_code, opts_.eni_limit_pause.count());
    return true;
  }
  return false;
}

Status IpPool::AddEniLocked(const EniEntry& eni) {
  TERWAY_TRY(store_->UpsertEni({eni.eni_id, eni.mac, eni.vswitch_id, eni.primary_ip, false,
                                Unix(clock_->Now())}));
  enis_[eni.eni_id] = eni;
  return Ok();
}

Status IpPool::AddIpsLocked(const std::string& eni_id, const std::vector<std::string>& ips,
                            const std::string& eni_primary_ip) {
  const auto now = clock_->Now();
  std::vector<store::IpRecord> recs;
  for (const auto& ip : ips) {
    if (!ips_.count(ip)) recs.push_back({ip, eni_id, Unix(now), ""});
  }
  TERWAY_TRY(store_->AddIps(recs));
  for (const auto& r : recs) {
    IpEntry e;
    e.eni_id = eni_id;
    e.idle_since = now;
    e.eni_primary_ip = r.ip == eni_primary_ip;
    ips_[r.ip] = e;
  }
  NotifyWaitersLocked();
  return PairLocked(eni_id);  // dual stack: with the ENI's spare IPv6s
}

Status IpPool::CreateEni(const CreateAction& a) {
  CreateEniRequest req;
  req.vswitch_id = a.vswitch_id;
  TERWAY_ASSIGN_OR_RETURN(req.security_group_ids, security_groups_.Get());
  req.resource_group_id = opts_.config.resource_group_id;
  req.tags = opts_.config.eni_tags;
  req.tags[kInstanceTagKey] = opts_.instance_id;
  req.secondary_ip_count = std::max(0, a.ip_count - 1);
  req.ipv6_count = a.ipv6_count;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto eni, provider_->CreateEni(req),
                              fmt::format("creating an ENI on {}", a.vswitch_id));
  Status attached = provider_->AttachEni(eni.network_interface_id, opts_.instance_id);
  if (!attached.ok()) {
    // Undo, so a failed attach does not leak an ENI. If the delete fails
    // too, leak collection in Reconcile finds it by its tags.
    Status undo = provider_->DeleteEni(eni.network_interface_id);
    if (!undo.ok()) {
      log::Warn("eni_undo_failed eni={} error=\"{}\"", eni.network_interface_id,
                undo.error().ToString());
    }
    return std::move(attached).error().Wrap(
        fmt::format("attaching ENI {} to {}", eni.network_interface_id, opts_.instance_id));
  }
  std::string primary;
  auto ips = EniIps(eni, &primary);
  std::lock_guard l(mu_);
  TERWAY_TRY(AddEniLocked({eni.network_interface_id, eni.mac_address,
                           eni.vswitch_id.empty() ? a.vswitch_id : eni.vswitch_id, primary}));
  TERWAY_TRY(AddIpsLocked(eni.network_interface_id, ips, primary));
  // Fewer IPv6s than asked leave unpaired IPv4s: the next refill pairs them.
  TERWAY_TRY(AddIpv6Locked(eni.network_interface_id, eni.ipv6_sets));
  warm_up_left_ = std::max(0, warm_up_left_ - static_cast<int>(ips.size()));
  vswitches_.Consume(a.vswitch_id, static_cast<int64_t>(ips.size()));
  log::Info("eni_created eni={} vswitch={} ips={}", eni.network_interface_id, a.vswitch_id, ips.size());
  return Ok();
}

void IpPool::PairSpares() {
  // An ENI's spare IPv6s pair with its unpaired IPv4s without the cloud.
  // They are paired the moment both exist, unless the store write failed:
  // retried here, since the plan would otherwise ask the cloud for IPv6s
  // for those IPv4s while the ENI holds some already.
  std::lock_guard l(mu_);
  for (const auto& [id, e] : enis_) {
    if (e.spare_ipv6.empty()) continue;
    if (Status st = PairLocked(id); !st.ok()) {
      log::Warn("pairing_failed eni={} error=\"{}\": retried at the next refill", id, st.error().ToString());
    }
  }
}

Status IpPool::RefillOnce() {
  std::lock_guard ops(ops_mu_);
  RefreshVSwitches();
  PairSpares();
  // Each round plans with everything learnt so far (an exhausted vSwitch,
  // the ENI quota); a handful of rounds covers every vSwitch falling over.
  bool read_cloud_enis = false;
  for (int round = 0; round < 8; ++round) {
    RefillPlan plan;
    std::map<std::string, std::string> eni_vswitch;
    {
      std::lock_guard l(mu_);
      ++plan_counter_;
      plan = PlanRefill(SnapshotLocked(waiting_));
      for (const auto& [id, e] : enis_) eni_vswitch[id] = e.vswitch_id;
      if (plan.empty()) {
        if (warm_up_left_ > 0) {
          // Nothing more to obtain now (the node's capacity, its vSwitches):
          // the warm-up ends here rather than holding reclaim off for good.
          log::Info("pool_warm_up_done left={} reason=\"nothing more to obtain\"", warm_up_left_);
          warm_up_left_ = 0;
        }
        if (plan.unmet_reason) {
          shortfall_ = *plan.unmet_reason;
          ++shortfall_gen_;
          NotifyWaitersLocked();
        }
        return Ok();
      }
    }
    bool replan = false;
    std::optional<Error> pairing_failed;
    for (const auto& a : plan.assigns) {
      std::vector<std::string> new_ips;
      if (a.count > 0) {
        auto ips = provider_->AssignIps(a.eni_id, a.count);
        if (!ips.ok()) {
          if (NoteCloudError(ips.error(), eni_vswitch[a.eni_id])) {
            replan = true;
            break;
          }
          return std::move(ips).error().Wrap(fmt::format("assigning {} IPs on {}", a.count, a.eni_id));
        }
        new_ips = *ips;
        std::lock_guard l(mu_);
        if (!enis_.count(a.eni_id)) continue;
        TERWAY_TRY(AddIpsLocked(a.eni_id, new_ips, ""));
        if (!Dual()) warm_up_left_ = std::max(0, warm_up_left_ - static_cast<int>(new_ips.size()));
        log::Info("ips_assigned eni={} count={}", a.eni_id, new_ips.size());
      }
      if (a.ipv6_count > 0) {
        auto v6 = provider_->AssignIpv6(a.eni_id, a.ipv6_count);
        if (!v6.ok()) {
          if (a.count == 0) {
            // Pairing only (the IPv4s are held already): one ENI whose IPv6s
            // fail must not hold back the creates and assigns that serve
            // the waiting pods; the next round tries to pair again.
            (void)NoteCloudError(v6.error(), eni_vswitch[a.eni_id]);
            pairing_failed = std::move(v6).error().Wrap(fmt::format("pairing {} IPv4s on {}", a.ipv6_count, a.eni_id));
            continue;
          }
          GiveBackUnpaired(a.eni_id, new_ips);
          if (NoteCloudError(v6.error(), eni_vswitch[a.eni_id])) {
            replan = true;
            break;
          }
          return std::move(v6).error().Wrap(fmt::format("assigning {} IPv6s on {}", a.ipv6_count, a.eni_id));
        }
        std::lock_guard l(mu_);
        if (!enis_.count(a.eni_id)) continue;
        TERWAY_TRY(AddIpv6Locked(a.eni_id, *v6));
        log::Info("ipv6s_assigned eni={} count={}", a.eni_id, v6->size());
      }
      if (Dual()) {
        std::lock_guard l(mu_);
        warm_up_left_ = std::max(0, warm_up_left_ - a.count);
      }
    }
    if (replan) continue;
    for (const auto& c : plan.creates) {
      Status st = CreateEni(c);
      if (!st.ok()) {
        if (NoteCloudError(st.error(), c.vswitch_id)) {
          // The instance holds more ENIs than we know: one of them may be
          // ours, attached by a daemon killed before it recorded it (the
          // ENI was still attaching when we read the cloud at start). Read
          // the cloud now rather than at the next sync period, so its IPs
          // serve the pods waiting here.
          if (st.error().cloud_code == kCodeEniLimit && !read_cloud_enis) {
            read_cloud_enis = true;
            if (Status r = ReconcileOpsLocked(); !r.ok()) {
              log::Warn("pool_reconcile_failed after {}: error=\"{}\"", kCodeEniLimit, r.error().ToString());
            }
            // What it found lost is torn down before this refill can hand
            // an address out again (as the worker does after its reconcile).
            DeliverLostAllocations();
          }
          replan = true;
          break;
        }
        return st;
      }
    }
    if (replan) continue;
    if (pairing_failed) return *pairing_failed;  // the worker backs off and retries
    std::lock_guard l(mu_);
    last_cloud_error_.reset();
    if (plan.unmet_reason) {
      shortfall_ = *plan.unmet_reason;
      ++shortfall_gen_;
      NotifyWaitersLocked();
      return Ok();
    }
    // More pods waiting than idle IPs (a new ENI got only its first 10):
    // plan again right away.
    if (waiting_ <= IdleSlotsLocked()) return Ok();
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// Shrinking the pool

Status IpPool::ReclaimOnce() {
  std::lock_guard ops(ops_mu_);
  ReclaimPlan plan;
  std::map<std::string, std::vector<std::string>> eni_ips;
  {
    std::lock_guard l(mu_);
    TERWAY_TRY_CTX(ExpireReservationsLocked(), "expiring IP reservations");
    PoolSnapshot snap = SnapshotLocked(waiting_);
    // Idle addresses that pods waiting right now are about to take are not
    // the pool's to give back; nor is anything during the warm-up, which
    // fills the pool past its sizes on purpose.
    const int idle = std::max(0, IdleSlots(snap) - waiting_);
    const auto& c = opts_.config;
    IdleReclaimSettings r{c.idle_ip_reclaim_after, c.idle_ip_reclaim_interval, c.idle_ip_reclaim_batch_size,
                          c.idle_ip_reclaim_jitter_factor};
    const double random01 = std::uniform_real_distribution<double>(0, 1)(jitter_);
    int count = IdleAddressesToRelease(r, idle, bounds_.min_idle, bounds_.max_idle, &reclaim_clock_,
                                       clock_->Now(), random01);
    if (warm_up_left_ > 0) count = 0;
    plan = PlanReclaim(snap, count);
    // Take the chosen IPs out of service before the cloud call so no pod can
    // be handed an address that is being unassigned.
    for (const auto& u : plan.unassigns) {
      for (const auto& ip : u.ips) ips_[ip].use = IpUse::kReleasing;
    }
    // (Spare IPv6s need no marking: nothing takes one outside ops_mu_.)
    for (const auto& id : plan.delete_enis) {
      for (auto& [ip, e] : ips_) {
        if (e.eni_id == id) {
          e.use = IpUse::kReleasing;
          eni_ips[id].push_back(ip);
        }
      }
    }
  }
  Status result = Ok();
  for (const auto& u : plan.unassigns) {
    Status st = ExecuteUnassign(u);
    if (!st.ok()) result = std::move(st);
  }
  for (const auto& id : plan.delete_enis) {
    Status st = provider_->DetachEni(id, opts_.instance_id);
    const bool detached = st.ok();
    if (st.ok()) st = provider_->DeleteEni(id);
    std::lock_guard l(mu_);
    if (!st.ok() && st.error().code != ErrorCode::kNotFound &&
        st.error().cloud_code != "InvalidEniId.NotFound") {
      (void)NoteCloudErrorLocked(st.error(), "");
      result = std::move(st).error().Wrap(fmt::format("deleting idle ENI {}", id));
      if (detached) {
        // Off the node already: its addresses can serve no pod. The ENI,
        // tagged for this node, is deleted by leak collection.
        TERWAY_TRY(DropEniLocked(id, "detached; deleting it failed"));
        eni_blocked_until_ = {};
        continue;
      }
      RestoreAfterFailedReleaseLocked(eni_ips[id], st.error());
      continue;
    }
    TERWAY_TRY(DropEniLocked(id, "idle ENI deleted"));
    eni_blocked_until_ = {};  // a slot is free again
    log::Info("eni_deleted eni={} reason=idle", id);
  }
  return result;
}

void IpPool::RestoreAfterFailedReleaseLocked(const std::vector<std::string>& ips, const Error& e) {
  const bool doubt = MaybeApplied(e);
  for (const auto& ip : ips) {
    auto it = ips_.find(ip);
    if (it == ips_.end() || it->second.use != IpUse::kReleasing) continue;
    if (doubt) {
      it->second.release_in_doubt = true;  // Reconcile decides
    } else {
      it->second.use = IpUse::kIdle;
    }
  }
  if (doubt) {
    log::Warn("ip_release_in_doubt ips={} error=\"{}\": kept out of service until the cloud is read again",
              ips.size(), e.ToString());
  }
  NotifyWaitersLocked();
}

Status IpPool::DropIpLocked(const std::string& ip, const std::string& why) {
  auto it = ips_.find(ip);
  if (it != ips_.end() && !it->second.container_id.empty()) {
    // The address is gone from under a pod: the pod's network is broken and
    // its sandbox must be re-created; keeping the record would hand the
    // address out twice once the cloud reuses it. The daemon tears the
    // pod's wiring down (on_address_lost) before the worker can refill.
    log::Error("ip_lost_under_pod ip={} container={} reason=\"{}\"", ip, it->second.container_id, why);
    TERWAY_ASSIGN_OR_RETURN(auto rec, store_->Release(it->second.container_id, Unix(clock_->Now()), std::nullopt));
    if (rec) lost_.push_back(*rec);
    // Dual stack: its IPv6 is still assigned and still wired in the old
    // sandbox: held (not adopted as a spare) until the teardown.
    auto eni = enis_.find(it->second.eni_id);
    if (!it->second.ipv6.empty() && eni != enis_.end()) eni->second.held_ipv6.insert(it->second.ipv6);
  }
  for (auto r = reservations_.begin(); r != reservations_.end();) {
    if (r->second.ip == ip) {
      TERWAY_TRY(store_->DeleteReservation({r->first.first, r->first.second}));
      r = reservations_.erase(r);
    } else {
      ++r;
    }
  }
  TERWAY_TRY(store_->RemoveIps({ip}));
  ips_.erase(ip);
  return Ok();
}

Status IpPool::DropEniLocked(const std::string& eni_id, const std::string& why) {
  std::vector<std::string> ips;
  for (const auto& [ip, e] : ips_) {
    if (e.eni_id == eni_id) ips.push_back(ip);
  }
  for (const auto& ip : ips) TERWAY_TRY(DropIpLocked(ip, why));
  TERWAY_TRY(store_->DeleteEni(eni_id));
  enis_.erase(eni_id);
  return Ok();
}

}  // namespace terway::ipam
