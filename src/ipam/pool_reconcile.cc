#include "ipam/pool.h"

#include <algorithm>
#include <random>
#include <utility>

#include "common/log.h"
#include "common/strings.h"
#include "ipam/pool_internal.h"

namespace terway::ipam {

using std::chrono::seconds;
using pool_detail::EniIps;
using pool_detail::IsThrottling;
using pool_detail::TagValue;

// ---------------------------------------------------------------------------
// Reconcile: store vs cloud vs live pods

Status IpPool::Reconcile() {
  std::lock_guard ops(ops_mu_);
  return ReconcileOpsLocked();
}

Status IpPool::ReconcileOpsLocked() {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto cloud_enis, provider_->ListEnis(opts_.instance_id),
                              fmt::format("listing the ENIs of {}", opts_.instance_id));
  std::vector<std::string> leaked;
  std::map<std::string, std::vector<std::string>> listed_ipv6;  // ip_stack ipv4: IPv6s left on our ENIs
  LeftoverIpv6Plan leftover;
  {
    std::lock_guard l(mu_);
    const auto now = clock_->Now();
    std::set<std::string> listed;
    for (const auto& eni : cloud_enis) {
      const std::string& id = eni.network_interface_id;
      const bool ours = TagValue(eni, "creator") == "terway";
      if (eni.type == "Primary") continue;  // the node's own interface: never pod IPs
      if (eni.status == cloud::kEniInUse && eni.instance_id == opts_.instance_id) {
        if (!ours) continue;  // someone else's ENI on this node: not ours to manage
        const bool schedulable = EniSchedulable(eni.tags, opts_.config);
        if (!schedulable && !enis_.count(id)) continue;  // another controller's: never adopted
        if (!schedulable && !enis_[id].unschedulable) {
          // Tagged away after we adopted it: its pods keep their addresses
          // (upstream marks such an ENI unschedulable, too), no new pod is
          // served from it.
          log::Warn("eni_unschedulable eni={} reason=\"eni_tag_block_list/eni_tag_filter\"", id);
        }
        listed.insert(id);
        leak_first_seen_.erase(id);
        std::string primary;
        auto ips = EniIps(eni, &primary);
        if (!enis_.count(id)) log::Info("eni_adopted eni={} ips={}", id, ips.size());
        TERWAY_TRY(AddEniLocked({id, eni.mac_address, eni.vswitch_id, primary, !schedulable}));
        std::set<std::string> cloud_ips(ips.begin(), ips.end());
        std::vector<std::string> gone;
        for (const auto& [ip, e] : ips_) {
          if (e.eni_id == id && !cloud_ips.count(ip)) gone.push_back(ip);
        }
        for (const auto& ip : gone) TERWAY_TRY(DropIpLocked(ip, "the cloud no longer lists it"));
        TERWAY_TRY(AddIpsLocked(id, ips, primary));
        // Dual stack: the same rules for the ENI's IPv6s (a lost one ends
        // its pod's allocation, an unknown one is adopted and paired).
        TERWAY_TRY(ReconcileIpv6Locked(id, eni.ipv6_sets));
        if (!Dual() && schedulable && !eni.ipv6_sets.empty()) listed_ipv6[id] = eni.ipv6_sets;
        for (auto& [ip, e] : ips_) {
          if (e.eni_id != id) continue;
          e.eni_primary_ip = ip == primary;
          if (e.release_in_doubt) {
            // The failed release did not happen: the cloud still lists the
            // IP on an attached ENI. Back in service.
            e.release_in_doubt = false;
            e.use = IpUse::kIdle;
            e.idle_since = now;
            log::Info("ip_release_not_applied ip={} eni={}: back in the pool", ip, id);
          }
        }
        TERWAY_TRY(PairLocked(id));  // slots back from a doubtful release may lack their IPv6
      } else if (eni.status == cloud::kEniAvailable && ours &&
                 TagValue(eni, kInstanceTagKey) == opts_.instance_id) {
        // Made for this node but not attached: a crash between create and
        // attach, or a failed undo. Collect after the grace period (an
        // in-flight create of a second daemon generation must not race us).
        auto [it, fresh] = leak_first_seen_.emplace(id, now);
        if (!fresh && now - it->second >= opts_.config.leaked_eni_grace_period) leaked.push_back(id);
      } else if (enis_.count(id)) {
        listed.insert(id);  // Attaching/Detaching: leave it to the next round
      }
    }
    std::vector<std::string> vanished;
    for (const auto& [id, e] : enis_) {
      if (!listed.count(id)) vanished.push_back(id);
    }
    for (const auto& id : vanished) {
      log::Warn("eni_vanished eni={}", id);
      TERWAY_TRY(DropEniLocked(id, "its ENI is no longer attached"));
    }
    // Allocations whose IP the node does not own (any more).
    TERWAY_ASSIGN_OR_RETURN(auto allocs, store_->ListAllocations());
    for (const auto& a : allocs) {
      auto ip = ips_.find(a.ip);
      if (ip == ips_.end()) {
        log::Error("allocation_dropped pod={}/{} ip={} reason=\"IP not owned by the node\"",
                   a.pod_namespace, a.pod_name, a.ip);
        TERWAY_ASSIGN_OR_RETURN(auto rec, store_->Release(a.container_id, Unix(now), std::nullopt));
        if (rec) lost_.push_back(*rec);
        continue;
      }
      ip->second.use = IpUse::kInUse;
      ip->second.container_id = a.container_id;
      ip->second.release_in_doubt = false;
    }
    if (!Dual()) leftover = PlanLeftoverIpv6Locked(listed_ipv6, allocs);
    NotifyWaitersLocked();
  }
  // A failed give-back leaves the node serving and does not fail the
  // reconcile: start-up waits for a reconcile to succeed.
  ReturnLeftoverIpv6(leftover);
  Status result = Ok();
  for (const auto& id : leaked) {
    Status st = provider_->DeleteEni(id);
    if (!st.ok()) {
      result = std::move(st).error().Wrap(fmt::format("deleting leaked ENI {}", id));
      continue;
    }
    std::lock_guard l(mu_);
    leak_first_seen_.erase(id);
    eni_blocked_until_ = {};
    log::Info("eni_deleted eni={} reason=leaked", id);
  }
  return result;
}

// ---------------------------------------------------------------------------
// ip_stack ipv4 after dual: the IPv6s the node's ENIs still hold

LeftoverIpv6Plan IpPool::PlanLeftoverIpv6Locked(const std::map<std::string, std::vector<std::string>>& listed,
                                                const std::vector<store::AllocationRecord>& allocs) {
  // Held: the IPv6 a pod's allocation records (its sandbox is wired with
  // it; its teardown releases the allocation), and that of a pod whose
  // address the cloud just took away (wired until on_address_lost has
  // torn it down; the worker does so before the next reconcile).
  std::set<std::string> held, deferred, allocated;
  for (const auto& a : allocs) {
    allocated.insert(a.ip);
    if (!a.ipv6.empty()) held.insert(a.ipv6);
  }
  for (const auto& r : lost_) {
    if (!r.ipv6.empty()) held.insert(r.ipv6);
  }
  // Stored pairings from the dual-stack period are cleared before their
  // IPv6 goes (a crash after the call must leave no row naming an address
  // the cloud took back). The row of an IPv4 a pod took since holds no
  // address of that pod (its allocation records no IPv6) and the store
  // keeps a pod's row as it is: cleared after that pod's release.
  auto rows = store_->ListIps();
  if (!rows.ok()) {
    log::Warn("leftover_ipv6_deferred reason=\"reading the stored pairings: {}\"", rows.error().ToString());
    for (const auto& [eni, ipv6s] : listed) deferred.insert(ipv6s.begin(), ipv6s.end());
  } else {
    for (const auto& r : *rows) {
      if (r.ipv6.empty() || held.count(r.ipv6) || allocated.count(r.ip)) continue;
      if (Status st = store_->SetIpv6(r.ip, ""); !st.ok()) {
        log::Warn("leftover_ipv6_deferred ipv6={} error=\"{}\": given back once the store takes the write", r.ipv6,
                  st.error().ToString());
        deferred.insert(r.ipv6);
      }
    }
  }
  LeftoverIpv6Plan plan = PlanLeftoverIpv6(listed, held, deferred);
  size_t going = 0;
  for (const auto& a : plan.returns) going += a.ipv6s.size();
  if (going > 0 || plan.held != leftover_ipv6_.held) {
    log::Warn("ip_stack_changed ip_stack=ipv4 ipv6_to_return={} ipv6_held_by_pods={} reason=\"this node's ENIs hold "
              "IPv6s from ip_stack dual: those no pod holds go back to the cloud; a pod started under dual stack "
              "keeps its IPv6 until its teardown\"",
              going, plan.held);
  }
  leftover_ipv6_.held = plan.held;
  leftover_ipv6_.pending = plan.deferred;
  return plan;
}

void IpPool::ReturnLeftoverIpv6(const LeftoverIpv6Plan& plan) {
  uint64_t returned = 0, failed = 0;
  for (const auto& a : plan.returns) {
    Status st = provider_->UnassignIpv6(a.eni_id, a.ipv6s);
    if (!st.ok() && st.error().cloud_code == "InvalidIp.IpUnassigned") {
      // One of them went meanwhile (by hand?): the next round lists the rest.
      log::Info("ipv6_return_skipped eni={} error=\"{}\"", a.eni_id, st.error().ToString());
      continue;
    }
    if (!st.ok()) {
      failed += a.ipv6s.size();
      log::Warn("ipv6_return_failed eni={} count={} error=\"{}\": retried at the next reconcile", a.eni_id,
                a.ipv6s.size(), st.error().ToString());
      continue;
    }
    returned += a.ipv6s.size();
    log::Info("ipv6_returned eni={} ipv6s={} reason=\"ip_stack is ipv4\"", a.eni_id, Join(a.ipv6s, ","));
  }
  std::lock_guard l(mu_);
  leftover_ipv6_.returned_total += returned;
  leftover_ipv6_.return_failures_total += failed;
  leftover_ipv6_.pending += static_cast<int>(failed);
}

std::vector<store::AllocationRecord> IpPool::TakeLostAllocations() {
  // The caller takes the teardown over (tests without a worker): what the
  // allocations held is back in service at once.
  std::lock_guard l(mu_);
  auto lost = std::exchange(lost_, {});
  ReturnTornDownLocked(lost);
  return lost;
}

void IpPool::DeliverLostAllocations() {
  std::vector<store::AllocationRecord> lost;
  {
    std::lock_guard l(mu_);
    lost = std::exchange(lost_, {});
  }
  if (lost.empty()) return;
  if (opts_.on_address_lost) opts_.on_address_lost(lost);  // no pool lock held: the daemon calls the kernel
  std::lock_guard l(mu_);
  ReturnTornDownLocked(lost);
}

void IpPool::ReturnTornDownLocked(const std::vector<store::AllocationRecord>& torn_down) {
  std::set<std::string> enis;
  for (const auto& rec : torn_down) {
    auto it = ips_.find(rec.ip);
    if (it != ips_.end() && it->second.awaiting_teardown) {
      it->second.awaiting_teardown = false;
      if (it->second.use == IpUse::kReleasing) {
        it->second.use = IpUse::kIdle;
        it->second.idle_since = clock_->Now();
      }
      enis.insert(it->second.eni_id);
    }
    if (rec.ipv6.empty()) continue;
    for (auto& [id, eni] : enis_) {
      if (eni.held_ipv6.erase(rec.ipv6) > 0) {
        // Reconcile keeps the spares in step with the cloud.
        eni.spare_ipv6.push_back(rec.ipv6);
        enis.insert(id);
      }
    }
  }
  for (const auto& id : enis) {
    Status st = PairLocked(id);
    if (!st.ok()) log::Warn("pairing_failed eni={} error=\"{}\": the next refill pairs", id, st.error().ToString());
  }
  NotifyWaitersLocked();
}

// ---------------------------------------------------------------------------
// Background worker

void IpPool::Start() {
  std::lock_guard l(mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  refill_requested_ = true;  // warm up to min_pool_size right away
  worker_ = std::thread([this] { WorkerLoop(); });
}

void IpPool::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void IpPool::WorkerLoop() {
  // Loop timers run on real time (they pace real cloud calls); what the
  // jobs decide (idle ages, reservation expiry) reads the injected clock.
  using steady = std::chrono::steady_clock;
  const auto& c = opts_.config;
  // Reclaim is checked at the pool's sync period, as upstream checks it, or
  // at idle_ip_reclaim_interval when that is shorter; IdleAddressesToRelease
  // decides what a check gives back.
  const auto reclaim_check = std::max<seconds>(std::min(c.idle_ip_reclaim_interval, c.ip_pool_sync_period), seconds(1));
  auto next_reclaim = steady::now() + reclaim_check;
  auto next_sync = steady::now() + std::max<seconds>(c.ip_pool_sync_period, seconds(1));
  auto backoff = std::chrono::milliseconds(0);
  std::mt19937_64 jitter(opts_.seed ^ 0x9e3779b97f4a7c15ULL);
  DeliverLostAllocations();  // what the reconcile at Create found
  std::unique_lock l(mu_);
  while (!stop_) {
    if (backoff.count() > 0) {
      // After a failed refill: wait out the backoff even if pods keep asking.
      worker_cv_.wait_until(l, steady::now() + backoff, [&] { return stop_; });
    } else {
      // Wake for a pod that found no idle IP, or at the next timer, or once a
      // second to keep min_pool_size warm.
      auto wake = std::min({next_reclaim, next_sync, steady::now() + std::chrono::seconds(1)});
      worker_cv_.wait_until(l, wake, [&] { return stop_ || refill_requested_; });
    }
    if (stop_) break;
    const int idle = IdleSlotsLocked();
    const bool want_refill = refill_requested_ || waiting_ > 0 || idle < bounds_.min_idle || warm_up_left_ > 0;
    refill_requested_ = false;
    l.unlock();
    if (want_refill) {
      Status st = RefillOnce();
      if (!st.ok()) {
        // Throttling and 5xx: back off with jitter so a node storm does not
        // hammer the API; waiting pods keep waiting until their deadline.
        auto base = backoff.count() == 0 ? std::chrono::milliseconds(100)
                                         : std::min(backoff * 2, std::chrono::milliseconds(5000));
        backoff = base / 2 + std::chrono::milliseconds(jitter() % (base.count() / 2 + 1));
        log::Warn("pool_refill_failed retry_in_ms={} throttled={} error=\"{}\"", backoff.count(),
                  IsThrottling(st.error()), st.error().ToString());
      } else {
        backoff = std::chrono::milliseconds(0);
      }
    }
    if (steady::now() >= next_reclaim) {
      Status st = ReclaimOnce();
      if (!st.ok()) log::Warn("pool_reclaim_failed error=\"{}\"", st.error().ToString());
      next_reclaim = steady::now() + reclaim_check;
    }
    if (steady::now() >= next_sync) {
      Status st = Reconcile();
      if (!st.ok()) log::Warn("pool_reconcile_failed error=\"{}\"", st.error().ToString());
      next_sync = steady::now() + std::max<seconds>(c.ip_pool_sync_period, seconds(1));
    }
    // Before the next refill can ask the cloud for addresses: a lost
    // address could come back to us while its old sandbox still has it.
    DeliverLostAllocations();
    l.lock();
  }
}

}  // namespace terway::ipam
