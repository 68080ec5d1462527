#include "ipam/pool.h"

#include <algorithm>
#include <random>
#include <utility>

#include "common/ip.h"
#include "common/log.h"
#include "ipam/pool_internal.h"

namespace terway::ipam {

using std::chrono::duration_cast;
using std::chrono::seconds;
using pool_detail::IsThrottling;

bool EniSchedulable(const std::vector<cloud::Tag>& tags, const PoolConfig& c) {
  for (const auto& rule : c.eni_tag_block_list) {
    for (const auto& t : tags) {
      if (t.key == rule.key && t.value == rule.value) return false;
    }
  }
  for (const auto& [k, v] : c.eni_tag_filter) {
    bool has = false;
    for (const auto& t : tags) has = has || (t.key == k && t.value == v);
    if (!has) return false;
  }
  return true;
}

Result<std::unique_ptr<IpPool>> IpPool::Create(PoolOptions opts, EniProvider* provider,
                                               store::StateStore* store, Clock* clock) {
  TERWAY_ASSIGN_OR_RETURN_CTX(
      InstanceLimits limits, provider->GetInstanceLimits(opts.instance_type),
      fmt::format("reading ENI quotas of instance type {}", opts.instance_type));
  if (limits.eni_quantity <= 0 || limits.ips_per_eni <= 0) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "instance type {} reports EniQuantity {} and EniPrivateIpAddressQuantity {}: "
                  "it cannot host pods with ENI IPs",
                  opts.instance_type, limits.eni_quantity, limits.ips_per_eni);
  }
  if (opts.config.ip_stack == IpStack::kDual && limits.ipv6_per_eni <= 0) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "ip_stack is dual but instance type {} has no IPv6 on its ENIs (EniIpv6AddressQuantity 0); "
                  "use ip_stack ipv4 or an instance type with IPv6",
                  opts.instance_type);
  }
  std::unique_ptr<IpPool> pool(new IpPool(std::move(opts), provider, store, clock));
  pool->limits_ = limits;
  pool->bounds_ = PoolBoundsFor(pool->opts_.config, limits);
  pool->jitter_.seed(pool->opts_.seed ^ 0x5851f42d4c957f2dULL);
  pool->reclaim_clock_.last_modified = clock->Now();
  TERWAY_TRY_CTX(pool->LoadFromStore(), "loading pool state");
  Status st = pool->Reconcile();
  if (!st.ok()) {
    log::Warn("pool_reconcile_failed phase=start error=\"{}\"", st.error().ToString());
  }
  const int warm_up = pool->opts_.config.ip_warm_up_size;
  std::lock_guard l(pool->mu_);
  if (warm_up > 0 && st.ok() && pool->ips_.empty()) {
    // A node that holds no address yet -- neither in its database nor in
    // the cloud -- is new: it warms up once, as upstream Terway warms up a
    // node when it joins. Progress is kept in memory only: a restart during
    // the warm-up finds addresses and does not start it again (upstream
    // too never repeats it).
    pool->warm_up_left_ = std::min(warm_up, pool->bounds_.capacity);
    log::Info("pool_warm_up addresses={}", warm_up);
  }
  log::Info("pool_bounds max_enis={} capacity={} min_idle={} max_idle={}", pool->bounds_.max_enis,
            pool->bounds_.capacity, pool->bounds_.min_idle, pool->bounds_.max_idle);
  return pool;
}

IpPool::~IpPool() { Stop(); }

int64_t IpPool::Unix(Clock::TimePoint t) const {
  return duration_cast<seconds>(t.time_since_epoch()).count();
}

Status IpPool::LoadFromStore() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto enis, store_->ListEnis());
  for (const auto& e : enis) enis_[e.eni_id] = {e.eni_id, e.mac, e.vswitch_id, e.primary_ip};
  TERWAY_ASSIGN_OR_RETURN(auto ips, store_->ListIps());
  for (const auto& ip : ips) {
    auto eni = enis_.find(ip.eni_id);
    IpEntry entry;
    entry.eni_id = ip.eni_id;
    entry.idle_since = Clock::TimePoint(seconds(ip.idle_since_unix));
    entry.eni_primary_ip = eni != enis_.end() && eni->second.primary_ip == ip.ip;
    if (Dual()) entry.ipv6 = ip.ipv6;  // the pair as it was stored
    ips_[ip.ip] = entry;
  }
  TERWAY_ASSIGN_OR_RETURN(auto allocs, store_->ListAllocations());
  for (const auto& a : allocs) {
    auto it = ips_.find(a.ip);
    if (it == ips_.end()) continue;  // reconcile decides about it
    it->second.use = IpUse::kInUse;
    it->second.container_id = a.container_id;
  }
  TERWAY_ASSIGN_OR_RETURN(auto res, store_->ListReservations());
  for (const auto& r : res) {
    reservations_[{r.pod_namespace, r.pod_name}] = {r.ip, Clock::TimePoint(seconds(r.expires_unix))};
    auto it = ips_.find(r.ip);
    if (it != ips_.end() && it->second.use == IpUse::kIdle) it->second.use = IpUse::kReserved;
  }
  return Ok();
}

// ---------------------------------------------------------------------------
// Serving pods

bool IpPool::IsSticky(const PodIdentity& pod) const {
  auto a = pod.annotations.find(kPodIpReservationAnnotation);
  if (a != pod.annotations.end() && a->second == "true") return true;
  if (pod.owner_kind == "StatefulSet") return true;
  const auto& kinds = opts_.config.custom_stateful_workload_kinds;
  return !pod.owner_kind.empty() &&
         std::find(kinds.begin(), kinds.end(), pod.owner_kind) != kinds.end();
}

IpAllocation IpPool::MakeAllocationLocked(const std::string& ip) const {
  IpAllocation out;
  out.ip = ip;
  auto it = ips_.find(ip);
  if (it == ips_.end()) return out;
  out.ipv6 = it->second.ipv6;
  out.eni_id = it->second.eni_id;
  auto eni = enis_.find(out.eni_id);
  if (eni != enis_.end()) {
    out.eni_mac = eni->second.mac;
    out.eni_primary_ip = eni->second.primary_ip;
    out.vswitch_id = eni->second.vswitch_id;
  }
  return out;
}

void IpPool::NotifyWaitersLocked() { waiters_cv_.notify_all(); }

Result<IpAllocation> IpPool::TryAllocateLocked(const PodIdentity& pod) {
  const PodName key{pod.namespace_, pod.name};
  const auto now = clock_->Now();
  std::string chosen;
  bool from_reservation = false;

  auto res = reservations_.find(key);
  if (res != reservations_.end()) {
    auto ip = ips_.find(res->second.ip);
    // A reserved slot that lost its IPv6 cannot serve the pod whole: it
    // gets another slot, the reservation runs out.
    if (res->second.expires > now && ip != ips_.end() && ip->second.use == IpUse::kReserved &&
        CompleteLocked(ip->second)) {
      chosen = res->second.ip;
      from_reservation = true;
    }
  }
  if (chosen.empty()) {
    // From the ENI eni_selection_policy prefers, its least recently used
    // idle IP: the longest cool-down before an address reappears on another
    // pod (stale conntrack / ARP entries elsewhere).
    chosen = PickIdleIp(SnapshotLocked(0).enis, opts_.config.eni_selection_policy, opts_.config.ip_stack);
  }
  if (chosen.empty()) return Error(ErrorCode::kNotFound, "no idle IP");

  int in_use = 0;
  for (const auto& [ip, e] : ips_) in_use += e.use == IpUse::kInUse ? 1 : 0;
  if (in_use >= MaxPodCount()) {
    return Errorf(ErrorCode::kExhausted, "node is at its maximum of {} pods", MaxPodCount());
  }

  IpEntry& entry = ips_[chosen];
  store::AllocationRecord rec;
  rec.container_id = pod.container_id;
  rec.pod_namespace = pod.namespace_;
  rec.pod_name = pod.name;
  rec.pod_uid = pod.uid;
  rec.ip = chosen;
  rec.ipv6 = entry.ipv6;
  rec.eni_id = entry.eni_id;
  rec.ifname = pod.ifname;
  rec.netns = pod.netns;
  rec.datapath_mode = pod.datapath_mode;
  rec.host_stack_cidrs = pod.host_stack_cidrs;
  rec.origin = pod.origin;
  rec.host_veth = pod.host_veth;
  rec.created_unix = Unix(now);
  rec.sticky = IsSticky(pod);
  TERWAY_ASSIGN_OR_RETURN(auto stored, store_->Allocate(rec, from_reservation));
  if (stored.ip != chosen) {
    // Lost a race with an earlier ADD of the same container (cannot happen
    // while in_flight_ guards the pod, but the store is the authority).
    return MakeAllocationLocked(stored.ip);
  }
  entry.use = IpUse::kInUse;
  entry.container_id = pod.container_id;
  reclaim_clock_.last_modified = now;
  if (from_reservation) reservations_.erase(key);
  IpAllocation out = MakeAllocationLocked(chosen);
  out.reused_reservation = from_reservation;
  return out;
}

Result<IpAllocation> IpPool::Allocate(const PodIdentity& pod, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const std::string what = fmt::format("allocating an IP for pod {}/{} (container {})",
                                       pod.namespace_, pod.name, pod.container_id);
  if (pod.container_id.empty() || pod.name.empty()) {
    return Error(ErrorCode::kInvalidArgument, "pod name and container id are required").Wrap(what);
  }
  std::unique_lock l(mu_);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto existing, store_->FindByContainer(pod.container_id), what);
  if (existing) {  // retried ADD
    IpAllocation out = MakeAllocationLocked(existing->ip);
    out.ipv6 = existing->ipv6;  // what the pod was given, whatever the slot holds now
    return out;
  }

  const PodName key{pod.namespace_, pod.name};
  if (!in_flight_.insert(key).second) {
    Error e(ErrorCode::kConflict, "another request for this pod is in progress; retry");
    e.retryable = true;
    return std::move(e).Wrap(what);
  }
  struct InFlight {
    IpPool* p;
    PodName k;
    ~InFlight() { p->in_flight_.erase(k); }  // runs with mu_ held (declared after the lock)
  } guard{this, key};

  bool waiting = false;
  uint64_t gen_at_wait = 0;
  while (true) {
    auto got = TryAllocateLocked(pod);
    if (got.ok() || got.error().code != ErrorCode::kNotFound) {
      if (waiting) --waiting_;
      if (!got.ok()) {
        ++allocation_failures_total_;
        return std::move(got).error().Wrap(what);
      }
      ++allocations_total_;
      log::Info("ip_allocated pod={}/{} container={} ip={} eni={} sticky_reuse={}", pod.namespace_,
                pod.name, pod.container_id, got->ip, got->eni_id, got->reused_reservation);
      return got;
    }
    // Expired reservations may free an IP right now.
    (void)ExpireReservationsLocked();
    if (!waiting) {
      waiting = true;
      ++waiting_;
      gen_at_wait = shortfall_gen_;
    } else if (shortfall_gen_ != gen_at_wait) {
      --waiting_;
      ++allocation_failures_total_;
      return Error(shortfall_).Wrap(what);
    }
    refill_requested_ = true;
    worker_cv_.notify_one();
    if (waiters_cv_.wait_until(l, deadline) == std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      auto retry = TryAllocateLocked(pod);
      --waiting_;
      if (retry.ok()) {
        ++allocations_total_;
        return retry;
      }
      ++allocation_failures_total_;
      Error e(ErrorCode::kTimeout,
              fmt::format("no IP within {} ms{}", timeout.count(),
                          last_cloud_error_ ? "; last cloud error: " + last_cloud_error_->ToString()
                                            : std::string("; the pool is still growing")));
      e.retryable = true;
      return std::move(e).Wrap(what);
    }
  }
}

Status IpPool::ReleaseLocked(const store::AllocationRecord& rec) {
  const auto now = clock_->Now();
  std::optional<store::ReservationRecord> reservation;
  auto ip = ips_.find(rec.ip);
  if (rec.sticky && ip != ips_.end()) {
    reservation = store::ReservationRecord{rec.pod_namespace, rec.pod_name, rec.ip, rec.eni_id,
                                           Unix(now + opts_.config.ip_reservation_window)};
  }
  TERWAY_ASSIGN_OR_RETURN(auto released, store_->Release(rec.container_id, Unix(now), reservation));
  if (!released) return Ok();
  ++releases_total_;
  reclaim_clock_.last_modified = now;
  if (ip != ips_.end() && ip->second.container_id == rec.container_id) {
    ip->second.container_id.clear();
    ip->second.idle_since = now;
    ip->second.use = reservation ? IpUse::kReserved : IpUse::kIdle;
    if (reservation) {
      reservations_[{rec.pod_namespace, rec.pod_name}] = {rec.ip,
                                                          now + opts_.config.ip_reservation_window};
    }
  }
  log::Info("ip_released pod={}/{} container={} ip={} reserved={}", rec.pod_namespace, rec.pod_name,
            rec.container_id, rec.ip, reservation.has_value());
  NotifyWaitersLocked();
  return Ok();
}

Status IpPool::Release(const std::string& container_id) {
  std::lock_guard l(mu_);
  const std::string what = fmt::format("releasing the IP of container {}", container_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto rec, store_->FindByContainer(container_id), what);
  if (!rec) return Ok();  // DEL is idempotent: nothing held
  TERWAY_TRY_CTX(ReleaseLocked(*rec), what);
  return Ok();
}

Result<std::optional<IpAllocation>> IpPool::Get(const std::string& container_id) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto rec, store_->FindByContainer(container_id));
  if (!rec) return std::optional<IpAllocation>();
  IpAllocation out = MakeAllocationLocked(rec->ip);
  out.ipv6 = rec->ipv6;
  return std::optional<IpAllocation>(out);
}

Result<IpAllocation> IpPool::Adopt(const PodIdentity& pod, const std::string& ip, const std::string& ipv6_in) {
  // An IPv4-only node has no pairs: a sandbox's IPv6 (from an earlier
  // dual-stack configuration) is not the pool's to record.
  const std::string ipv6 = Dual() ? ipv6_in : "";
  const std::string what = fmt::format("adopting IP {}{} held by pod {}/{} (container {})", ip,
                                       ipv6.empty() ? "" : " and IPv6 " + ipv6, pod.namespace_, pod.name,
                                       pod.container_id);
  if (!ipv6.empty() && !Ipv6Addr::Parse(ipv6).ok()) {
    return Errorf(ErrorCode::kInvalidArgument, "'{}' is not an IPv6 address", ipv6).Wrap(what);
  }
  // ops_mu_ too: reclaim unassigns spare IPv6s it chose under ops_mu_ alone
  // (nothing else takes a spare), and re-pairing may take one.
  std::lock_guard ops(ops_mu_);
  std::lock_guard l(mu_);
  auto it = ips_.find(ip);
  if (it == ips_.end()) {
    return Error(ErrorCode::kNotFound, "not a pod address of this node's ENIs (the cloud does not list it)")
        .Wrap(what);
  }
  const Ipv6Holder holder = ipv6.empty() ? Ipv6Holder{} : FindIpv6Locked(ipv6);
  if (it->second.use == IpUse::kInUse) {
    if (it->second.container_id != pod.container_id) {
      return Errorf(ErrorCode::kConflict, "container {} holds it already", it->second.container_id).Wrap(what);
    }
    if (!ipv6.empty() && it->second.ipv6 != holder.ipv6) {
      return Errorf(ErrorCode::kConflict, "the container holds it already with IPv6 '{}'", it->second.ipv6)
          .Wrap(what);
    }
    return MakeAllocationLocked(ip);
  }
  // Every check before any change: a refused adoption changes nothing.
  if (!ipv6.empty()) TERWAY_TRY_CTX(CheckAdoptedPairLocked(ip, holder), what);
  // A live sandbox outranks a reservation or a release in progress: drop
  // whatever else the pool meant to do with the address.
  for (auto r = reservations_.begin(); r != reservations_.end();) {
    if (r->second.ip == ip) {
      TERWAY_TRY_CTX(store_->DeleteReservation({r->first.first, r->first.second}), what);
      r = reservations_.erase(r);
    } else {
      ++r;
    }
  }
  // Dual stack: the slot becomes the sandbox's own pair before it is
  // recorded (the store refuses to re-pair an allocated IPv4).
  if (!ipv6.empty()) TERWAY_TRY_CTX(PairForAdoptionLocked(ip, holder), what);
  store::AllocationRecord rec;
  rec.container_id = pod.container_id;
  rec.pod_namespace = pod.namespace_;
  rec.pod_name = pod.name;
  rec.pod_uid = pod.uid;
  rec.ip = ip;
  rec.ipv6 = it->second.ipv6;  // dual stack: the sandbox's, or the pair as the pool holds it ("" if unpaired)
  rec.eni_id = it->second.eni_id;
  rec.ifname = pod.ifname.empty() ? "eth0" : pod.ifname;
  rec.netns = pod.netns;
  rec.datapath_mode = pod.datapath_mode;
  rec.origin = pod.origin;
  rec.host_veth = pod.host_veth;
  rec.created_unix = Unix(clock_->Now());
  TERWAY_ASSIGN_OR_RETURN_CTX(auto stored, store_->Allocate(rec), what);
  if (stored.ip != ip) {
    return Errorf(ErrorCode::kConflict, "container {} already holds {}", pod.container_id, stored.ip).Wrap(what);
  }
  it->second.use = IpUse::kInUse;
  it->second.container_id = pod.container_id;
  it->second.release_in_doubt = false;
  log::Warn("ip_adopted pod={}/{} container={} ip={} ipv6={} eni={}", pod.namespace_, pod.name, pod.container_id,
            ip, it->second.ipv6, it->second.eni_id);
  if (!ipv6.empty()) {
    // The slot's old IPv6 may have become a spare: it pairs an unpaired
    // slot now rather than at the next refill.
    Status paired = PairLocked(it->second.eni_id);
    if (!paired.ok()) log::Warn("pairing_failed eni={} error=\"{}\": the next refill pairs", it->second.eni_id,
                                paired.error().ToString());
  }
  return MakeAllocationLocked(ip);
}

Status IpPool::ExpireReservationsLocked() {
  const auto now = clock_->Now();
  bool any = false;
  for (const auto& [k, r] : reservations_) any = any || r.expires <= now;
  if (!any) return Ok();
  TERWAY_ASSIGN_OR_RETURN(auto expired, store_->ExpireReservations(Unix(now)));
  for (auto it = reservations_.begin(); it != reservations_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    auto ip = ips_.find(it->second.ip);
    if (ip != ips_.end() && ip->second.use == IpUse::kReserved) {
      ip->second.use = IpUse::kIdle;
      ip->second.idle_since = now;
    }
    log::Info("ip_reservation_expired pod={}/{} ip={}", it->first.first, it->first.second,
              it->second.ip);
    it = reservations_.erase(it);
  }
  NotifyWaitersLocked();
  return Ok();
}

int IpPool::WarmUpLeft() const {
  std::lock_guard l(mu_);
  return warm_up_left_;
}

PoolContents IpPool::Contents() const {
  std::lock_guard l(mu_);
  PoolContents c;
  for (const auto& [ip, e] : ips_) {
    c.addresses.push_back({ip, e.eni_id, e.use, e.container_id, e.eni_primary_ip, e.release_in_doubt, e.ipv6});
  }
  for (const auto& [id, e] : enis_) {
    c.enis.push_back({id, e.mac, e.vswitch_id, e.primary_ip, e.unschedulable, e.spare_ipv6});
  }
  return c;
}

PoolStats IpPool::Stats() const {
  std::lock_guard l(mu_);
  PoolStats s;
  for (const auto& [ip, e] : ips_) {
    if (!CompleteLocked(e) && e.use != IpUse::kInUse) {
      ++s.unpaired;
      continue;
    }
    switch (e.use) {
      case IpUse::kIdle: ++s.idle; break;
      case IpUse::kInUse: ++s.in_use; break;
      case IpUse::kReserved: ++s.reserved; break;
      case IpUse::kReleasing: ++s.releasing; break;
    }
  }
  s.enis = static_cast<int>(enis_.size());
  for (const auto& [id, e] : enis_) s.spare_ipv6 += static_cast<int>(e.spare_ipv6.size());
  s.max_pods = MaxPodCount();
  s.waiting = waiting_;
  s.allocations_total = allocations_total_;
  s.allocation_failures_total = allocation_failures_total_;
  s.releases_total = releases_total_;
  s.leftover_ipv6 = leftover_ipv6_;
  return s;
}

int IpPool::IdleSlotsLocked() const {
  int n = 0;
  for (const auto& [ip, e] : ips_) n += e.use == IpUse::kIdle && CompleteLocked(e) ? 1 : 0;
  return n;
}

}  // namespace terway::ipam
