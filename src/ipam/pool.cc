#include "ipam/pool.h"

#include <algorithm>
#include <random>
#include <utility>

#include "common/log.h"

namespace terway::ipam {

namespace {

using std::chrono::duration_cast;
using std::chrono::seconds;

bool IsThrottling(const Error& e) { return e.cloud_code.rfind("Throttling", 0) == 0; }

// Whether a failed call may still have been carried out by the cloud.
// Throttling and caller errors are refusals: nothing happened. A 5xx, a
// timeout or a broken connection may have come after the work was done.
bool MaybeApplied(const Error& e) {
  if (IsThrottling(e)) return false;
  if (!e.cloud_code.empty() && !e.retryable) return false;  // InvalidParameter, quota, ...
  return true;
}

std::vector<std::string> EniIps(const cloud::NetworkInterface& eni, std::string* primary) {
  std::vector<std::string> ips;
  for (const auto& p : eni.private_ip_sets) {
    ips.push_back(p.address);
    if (p.primary) *primary = p.address;
  }
  if (primary->empty()) *primary = eni.private_ip_address;
  if (ips.empty() && !eni.private_ip_address.empty()) ips.push_back(eni.private_ip_address);
  return ips;
}

std::string TagValue(const cloud::NetworkInterface& eni, const std::string& key) {
  for (const auto& t : eni.tags) {
    if (t.key == key) return t.value;
  }
  return "";
}

}  // namespace

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
    if (res->second.expires > now && ip != ips_.end() && ip->second.use == IpUse::kReserved) {
      chosen = res->second.ip;
      from_reservation = true;
    }
  }
  if (chosen.empty()) {
    // From the ENI eni_selection_policy prefers, its least recently used
    // idle IP: the longest cool-down before an address reappears on another
    // pod (stale conntrack / ARP entries elsewhere).
    chosen = PickIdleIp(SnapshotLocked(0).enis, opts_.config.eni_selection_policy);
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
  if (existing) return MakeAllocationLocked(existing->ip);  // retried ADD

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
  return std::optional<IpAllocation>(MakeAllocationLocked(rec->ip));
}

Result<IpAllocation> IpPool::Adopt(const PodIdentity& pod, const std::string& ip) {
  const std::string what = fmt::format("adopting IP {} held by pod {}/{} (container {})", ip, pod.namespace_,
                                       pod.name, pod.container_id);
  std::lock_guard l(mu_);
  auto it = ips_.find(ip);
  if (it == ips_.end()) {
    return Error(ErrorCode::kNotFound, "not a pod address of this node's ENIs (the cloud does not list it)")
        .Wrap(what);
  }
  if (it->second.use == IpUse::kInUse) {
    if (it->second.container_id == pod.container_id) return MakeAllocationLocked(ip);
    return Errorf(ErrorCode::kConflict, "container {} holds it already", it->second.container_id).Wrap(what);
  }
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
  store::AllocationRecord rec;
  rec.container_id = pod.container_id;
  rec.pod_namespace = pod.namespace_;
  rec.pod_name = pod.name;
  rec.pod_uid = pod.uid;
  rec.ip = ip;
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
  log::Warn("ip_adopted pod={}/{} container={} ip={} eni={}", pod.namespace_, pod.name, pod.container_id, ip,
            it->second.eni_id);
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
    c.addresses.push_back({ip, e.eni_id, e.use, e.container_id, e.eni_primary_ip, e.release_in_doubt});
  }
  for (const auto& [id, e] : enis_) c.enis.push_back({id, e.mac, e.vswitch_id, e.primary_ip, e.unschedulable});
  return c;
}

PoolStats IpPool::Stats() const {
  std::lock_guard l(mu_);
  PoolStats s;
  for (const auto& [ip, e] : ips_) {
    switch (e.use) {
      case IpUse::kIdle: ++s.idle; break;
      case IpUse::kInUse: ++s.in_use; break;
      case IpUse::kReserved: ++s.reserved; break;
      case IpUse::kReleasing: ++s.releasing; break;
    }
  }
  s.enis = static_cast<int>(enis_.size());
  s.max_pods = MaxPodCount();
  s.waiting = waiting_;
  s.allocations_total = allocations_total_;
  s.allocation_failures_total = allocation_failures_total_;
  s.releases_total = releases_total_;
  return s;
}

// ---------------------------------------------------------------------------
// Growing the pool

PoolSnapshot IpPool::SnapshotLocked(int demand) const {
  PoolSnapshot s;
  const auto now = clock_->Now();
  std::map<std::string, EniView> views;
  for (const auto& [id, e] : enis_) views[id] = EniView{id, e.vswitch_id, {}, e.unschedulable};
  for (const auto& [ip, e] : ips_) {
    auto it = views.find(e.eni_id);
    if (it == views.end()) continue;
    it->second.ips.push_back({ip, e.use, e.idle_since, e.eni_primary_ip});
  }
  for (auto& [id, v] : views) s.enis.push_back(std::move(v));
  s.limits = limits_;
  const auto& c = opts_.config;
  s.settings.min_pool_size = bounds_.min_idle;
  s.settings.max_pool_size = bounds_.max_idle;
  s.settings.max_enis = bounds_.max_enis;
  s.settings.warm_up = warm_up_left_;
  s.settings.eni_selection = c.eni_selection_policy;
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
    if (!ips_.count(ip)) recs.push_back({ip, eni_id, Unix(now)});
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
  return Ok();
}

Status IpPool::CreateEni(const CreateAction& a) {
  CreateEniRequest req;
  req.vswitch_id = a.vswitch_id;
  TERWAY_ASSIGN_OR_RETURN(req.security_group_ids, security_groups_.Get());
  req.resource_group_id = opts_.config.resource_group_id;
  req.tags = opts_.config.eni_tags;
  req.tags[kInstanceTagKey] = opts_.instance_id;
  req.secondary_ip_count = std::max(0, a.ip_count - 1);
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
  warm_up_left_ = std::max(0, warm_up_left_ - static_cast<int>(ips.size()));
  vswitches_.Consume(a.vswitch_id, static_cast<int64_t>(ips.size()));
  log::Info("eni_created eni={} vswitch={} ips={}", eni.network_interface_id, a.vswitch_id, ips.size());
  return Ok();
}

Status IpPool::RefillOnce() {
  std::lock_guard ops(ops_mu_);
  RefreshVSwitches();
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
    for (const auto& a : plan.assigns) {
      auto ips = provider_->AssignIps(a.eni_id, a.count);
      if (!ips.ok()) {
        if (NoteCloudError(ips.error(), eni_vswitch[a.eni_id])) {
          replan = true;
          break;
        }
        return std::move(ips).error().Wrap(fmt::format("assigning {} IPs on {}", a.count, a.eni_id));
      }
      std::lock_guard l(mu_);
      if (!enis_.count(a.eni_id)) continue;
      TERWAY_TRY(AddIpsLocked(a.eni_id, *ips, ""));
      warm_up_left_ = std::max(0, warm_up_left_ - static_cast<int>(ips->size()));
      log::Info("ips_assigned eni={} count={}", a.eni_id, ips->size());
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
          }
          replan = true;
          break;
        }
        return st;
      }
    }
    if (replan) continue;
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
    int idle = 0;
    for (const auto& [ip, e] : ips_) idle += e.use == IpUse::kIdle ? 1 : 0;
    if (waiting_ <= idle) return Ok();
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
    int idle = 0;
    for (const auto& e : snap.enis) {
      for (const auto& ip : e.ips) idle += !e.unschedulable && ip.use == IpUse::kIdle ? 1 : 0;
    }
    idle = std::max(0, idle - waiting_);
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
    Status st = provider_->UnassignIps(u.eni_id, u.ips);
    std::lock_guard l(mu_);
    if (!st.ok() && st.error().cloud_code != "InvalidIp.IpUnassigned") {
      RestoreAfterFailedReleaseLocked(u.ips, st.error());
      (void)NoteCloudErrorLocked(st.error(), "");
      result = std::move(st).error().Wrap(fmt::format("unassigning IPs from {}", u.eni_id));
      continue;
    }
    for (const auto& ip : u.ips) TERWAY_TRY(DropIpLocked(ip, "reclaimed idle IP"));
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
    NotifyWaitersLocked();
  }
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

std::vector<store::AllocationRecord> IpPool::TakeLostAllocations() {
  std::lock_guard l(mu_);
  return std::exchange(lost_, {});
}

void IpPool::DeliverLostAllocations() {
  auto lost = TakeLostAllocations();
  if (lost.empty() || !opts_.on_address_lost) return;
  opts_.on_address_lost(lost);  // no pool lock held: the daemon calls the kernel
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
    int idle = 0;
    for (const auto& [ip, e] : ips_) idle += e.use == IpUse::kIdle ? 1 : 0;
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
