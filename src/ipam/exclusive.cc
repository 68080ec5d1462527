#include "ipam/exclusive.h"

#include "common/ip.h"
#include "common/log.h"

namespace terway::ipam {

namespace {
std::string TagOf(const cloud::NetworkInterface& e, const std::string& key) {
  for (const auto& t : e.tags) {
    if (t.key == key) return t.value;
  }
  return "";
}
bool NotFound(const Error& e) {
  return e.code == ErrorCode::kNotFound || e.cloud_code == "InvalidEniId.NotFound";
}
}  // namespace

Result<std::unique_ptr<ExclusiveEniAllocator>> ExclusiveEniAllocator::Create(
    PoolOptions opts, EniProvider* provider, store::StateStore* store, Clock* clock) {
  TERWAY_ASSIGN_OR_RETURN_CTX(
      InstanceLimits limits, provider->GetInstanceLimits(opts.instance_type),
      fmt::format("reading ENI quotas of instance type {}", opts.instance_type));
  if (opts.config.ip_stack == IpStack::kDual && limits.ipv6_per_eni <= 0) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "ip_stack is dual but instance type {} has no IPv6 on its ENIs (EniIpv6AddressQuantity 0); "
                  "use ip_stack ipv4 or an instance type with IPv6",
                  opts.instance_type);
  }
  std::unique_ptr<ExclusiveEniAllocator> a(new ExclusiveEniAllocator(std::move(opts), provider, store, clock));
  a->limits_ = limits;
  PoolConfig as_exclusive = a->opts_.config;  // this allocator is exclusive whatever the config says
  as_exclusive.eni_mode = EniMode::kExclusive;
  a->bounds_ = PoolBoundsFor(as_exclusive, limits);
  return a;
}

ExclusiveEniAllocator::~ExclusiveEniAllocator() { Stop(); }

void ExclusiveEniAllocator::Start() {
  std::lock_guard l(worker_mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  worker_ = std::thread([this] {
    std::unique_lock l(worker_mu_);
    while (!stop_) {
      // Real time: the period paces cloud calls, it is no decision input. A
      // release the cloud refused is finished sooner (its ENI holds one of
      // the node's few slots), but not in a tight loop.
      auto wait = opts_.config.ip_pool_sync_period;
      if (release_pending_) wait = std::min<std::chrono::seconds>(wait, std::chrono::seconds(2));
      if (worker_cv_.wait_for(l, wait, [this] { return stop_; })) break;
      release_pending_ = false;
      l.unlock();
      Status st = Reconcile();
      l.lock();
      if (!st.ok()) {
        release_pending_ = true;
        log::Warn("exclusive_eni_reconcile failed (retried): {}", st.error().ToString());
      }
    }
  });
}

void ExclusiveEniAllocator::Stop() {
  {
    std::lock_guard l(worker_mu_);
    stop_ = true;
  }
  worker_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

PoolStats ExclusiveEniAllocator::Stats() const {
  PoolStats s;
  s.max_pods = MaxPodCount();
  auto allocs = store_->ListAllocations();
  if (allocs.ok()) s.in_use = static_cast<int>(allocs->size());
  auto enis = store_->ListEnis();
  if (enis.ok()) s.enis = static_cast<int>(enis->size());
  s.allocations_total = allocations_total_;
  s.allocation_failures_total = allocation_failures_total_;
  s.releases_total = releases_total_;
  return s;
}

Result<IpAllocation> ExclusiveEniAllocator::Allocate(const PodIdentity& pod, std::chrono::milliseconds) {
  auto r = Allocate(pod);
  if (r.ok()) {
    ++allocations_total_;
  } else {
    ++allocation_failures_total_;
  }
  return r;
}

int64_t ExclusiveEniAllocator::Unix(Clock::TimePoint t) const {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void ExclusiveEniAllocator::RefreshVSwitches() {
  RefreshLedger(vswitches_, mu_, *provider_, *clock_, opts_.config.ip_pool_sync_period);
}

Result<cloud::NetworkInterface> ExclusiveEniAllocator::CreateAttached(const PodIdentity& pod) {
  RefreshVSwitches();
  std::vector<VSwitchView> views;
  {
    std::lock_guard l(mu_);
    views = vswitches_.Views(clock_->Now());
  }
  std::vector<std::string> tried;
  for (const auto& v : views) {
    if (v.exhausted || v.available_ips <= 0) tried.push_back(v.vswitch_id + " (no free IP)");
  }
  for (const auto& vsw : OrderVSwitches(views, opts_.config.vswitch_selection_policy, opts_.seed)) {
    CreateEniRequest req;
    req.vswitch_id = vsw;
    TERWAY_ASSIGN_OR_RETURN(req.security_group_ids, security_groups_.Get());
    req.resource_group_id = opts_.config.resource_group_id;
    req.tags = opts_.config.eni_tags;
    req.tags[kInstanceTagKey] = opts_.instance_id;
    req.tags[kExclusiveTagKey] = "true";
    req.secondary_ip_count = 0;
    // Dual stack: the pod's IPv6 is the ENI's own, created with it.
    req.ipv6_count = opts_.config.ip_stack == IpStack::kDual ? 1 : 0;
    auto eni = provider_->CreateEni(req);
    if (!eni.ok()) {
      if (eni.error().cloud_code == kCodeIpNotEnough) {
        std::lock_guard l(mu_);
        vswitches_.MarkExhausted(vsw, clock_->Now() + opts_.vswitch_exhausted_for);
        tried.push_back(vsw + " (InvalidVSwitchId.IpNotEnough)");
        continue;
      }
      return std::move(eni).error().Wrap(fmt::format("creating an ENI on {}", vsw));
    }
    Status st = provider_->AttachEni(eni->network_interface_id, opts_.instance_id);
    if (!st.ok()) {
      Status undo = provider_->DeleteEni(eni->network_interface_id);
      if (!undo.ok()) {
        log::Warn("eni_undo_failed eni={} error=\"{}\"", eni->network_interface_id, undo.error().ToString());
      }
      if (st.error().cloud_code == kCodeEniLimit) {
        Error e(ErrorCode::kExhausted,
                "the instance cannot attach more ENIs (EniPerInstanceLimitExceeded); delete pods "
                "or use a larger instance type");
        return e;
      }
      return std::move(st).error().Wrap(fmt::format("attaching ENI {}", eni->network_interface_id));
    }
    {
      std::lock_guard l(mu_);
      vswitches_.Consume(vsw, 1);  // the ENI's primary IP, until the next DescribeVSwitches
    }
    log::Info("exclusive_eni_created pod={}/{} eni={} vswitch={}", pod.namespace_, pod.name,
              eni->network_interface_id, vsw);
    return eni;
  }
  return Error(ErrorCode::kExhausted,
               tried.empty() ? std::string("no vSwitch is configured for this node's zone")
                             : fmt::format("every vSwitch of the node is out of IPs: {}",
                                           fmt::join(tried, ", ")));
}

Result<IpAllocation> ExclusiveEniAllocator::Allocate(const PodIdentity& pod) {
  const std::string what = fmt::format("allocating an exclusive ENI for pod {}/{} (container {})",
                                       pod.namespace_, pod.name, pod.container_id);
  auto to_alloc = [&](const store::AllocationRecord& rec) -> Result<IpAllocation> {
    TERWAY_ASSIGN_OR_RETURN(auto enis, store_->ListEnis());
    IpAllocation out;
    out.ip = rec.ip;
    out.ipv6 = rec.ipv6;
    out.eni_id = rec.eni_id;
    for (const auto& e : enis) {
      if (e.eni_id == rec.eni_id) {
        out.eni_mac = e.mac;
        out.eni_primary_ip = e.primary_ip;
        out.vswitch_id = e.vswitch_id;
      }
    }
    return out;
  };
  TERWAY_ASSIGN_OR_RETURN_CTX(auto existing, store_->FindByContainer(pod.container_id), what);
  if (existing) return to_alloc(*existing);

  const std::pair<std::string, std::string> key{pod.namespace_, pod.name};
  {
    std::lock_guard l(mu_);
    if (!in_flight_.insert(key).second) {
      Error e(ErrorCode::kConflict, "another request for this pod is in progress; retry");
      e.retryable = true;
      return std::move(e).Wrap(what);
    }
    TERWAY_ASSIGN_OR_RETURN(auto allocs, store_->ListAllocations());
    if (static_cast<int>(allocs.size()) + creating_ >= MaxPodCount()) {
      in_flight_.erase(key);
      return Errorf(ErrorCode::kExhausted,
                    "node is at its maximum of {} exclusive-ENI pods (EniQuantity {} - 1{}); delete "
                    "pods or use a larger instance type",
                    MaxPodCount(), limits_.eni_quantity,
                    MaxPodCount() < MaxPods(limits_, EniMode::kExclusive)
                        ? ", limited by eni_conf max_eni / eni_cap_ratio / eni_cap_shift"
                        : "")
          .Wrap(what);
    }
    ++creating_;
  }
  struct Done {
    ExclusiveEniAllocator* a;
    std::pair<std::string, std::string> k;
    ~Done() {
      std::lock_guard l(a->mu_);
      a->in_flight_.erase(k);
      --a->creating_;
    }
  } done{this, key};

  TERWAY_ASSIGN_OR_RETURN_CTX(auto eni, CreateAttached(pod), what);
  std::string primary = eni.private_ip_address;
  for (const auto& p : eni.private_ip_sets) {
    if (p.primary) primary = p.address;
  }
  std::string ipv6;
  if (opts_.config.ip_stack == IpStack::kDual) {
    if (eni.ipv6_sets.empty()) {
      // No half pod: give the ENI back (a failure here is finished by leak
      // collection: the ENI is tagged for this node and unreferenced).
      Status undo = DestroyEni(eni.network_interface_id);
      if (!undo.ok()) log::Warn("eni_undo_failed eni={} error=\"{}\"", eni.network_interface_id, undo.error().ToString());
      return Errorf(ErrorCode::kCloud, "ENI {} came without the IPv6 address it was created with",
                    eni.network_interface_id)
          .Wrap(what);
    }
    ipv6 = eni.ipv6_sets.front();
  }
  const int64_t now = Unix(clock_->Now());
  TERWAY_TRY_CTX(store_->UpsertEni({eni.network_interface_id, eni.mac_address, eni.vswitch_id, primary,
                                    false, now}),
                 what);
  TERWAY_TRY_CTX(store_->AddIps({{primary, eni.network_interface_id, 0, ipv6}}), what);
  store::AllocationRecord rec;
  rec.container_id = pod.container_id;
  rec.pod_namespace = pod.namespace_;
  rec.pod_name = pod.name;
  rec.pod_uid = pod.uid;
  rec.ip = primary;
  rec.ipv6 = ipv6;
  rec.eni_id = eni.network_interface_id;
  rec.ifname = pod.ifname;
  rec.netns = pod.netns;
  rec.datapath_mode = pod.datapath_mode;
  rec.host_stack_cidrs = pod.host_stack_cidrs;
  rec.origin = pod.origin;
  rec.host_veth = pod.host_veth;
  rec.created_unix = now;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto stored, store_->Allocate(rec), what);
  return to_alloc(stored);
}

Status ExclusiveEniAllocator::DestroyEni(const std::string& eni_id) {
  Status st = provider_->DetachEni(eni_id, opts_.instance_id);
  if (!st.ok() && !NotFound(st.error())) return std::move(st).error().Wrap("detaching " + eni_id);
  st = provider_->DeleteEni(eni_id);
  if (!st.ok() && !NotFound(st.error())) return std::move(st).error().Wrap("deleting " + eni_id);
  TERWAY_TRY(store_->DeleteEni(eni_id));
  log::Info("exclusive_eni_deleted eni={}", eni_id);
  return Ok();
}

Status ExclusiveEniAllocator::Release(const std::string& container_id) {
  const std::string what = fmt::format("releasing the exclusive ENI of container {}", container_id);
  // Forget the pod first: if the cloud calls fail, the ENI is an
  // unreferenced row that Reconcile finishes, never a pod's live ENI.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto rec, store_->Release(container_id, Unix(clock_->Now()), std::nullopt), what);
  if (!rec) return Ok();
  ++releases_total_;
  Status destroyed = DestroyEni(rec->eni_id);
  if (!destroyed.ok()) {
    // The pod is released: its ENI is an unreferenced row now, which the
    // worker's Reconcile detaches and deletes. Failing the DEL would only
    // make the runtime retry a DEL that finds nothing.
    log::Warn("exclusive_eni_release_deferred container={} eni={}: {}; the worker retries", container_id,
              rec->eni_id, destroyed.error().ToString());
    {
      std::lock_guard l(worker_mu_);
      release_pending_ = true;
    }
    worker_cv_.notify_all();
  }
  return Ok();
}

Result<IpAllocation> ExclusiveEniAllocator::Adopt(const PodIdentity& pod, const std::string& ip,
                                                  const std::string& ipv6_in) {
  const bool dual = opts_.config.ip_stack == IpStack::kDual;
  const std::string ipv6 = dual ? ipv6_in : "";
  const std::string what = fmt::format("adopting the exclusive ENI with IP {}{} of pod {}/{} (container {})", ip,
                                       ipv6.empty() ? "" : " and IPv6 " + ipv6, pod.namespace_, pod.name,
                                       pod.container_id);
  std::optional<Ipv6Addr> want_v6;
  if (!ipv6.empty()) {
    auto parsed = Ipv6Addr::Parse(ipv6);
    if (!parsed.ok()) return Errorf(ErrorCode::kInvalidArgument, "'{}' is not an IPv6 address", ipv6).Wrap(what);
    want_v6 = *parsed;
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto cloud_enis, provider_->ListEnis(opts_.instance_id), what);
  const cloud::NetworkInterface* found = nullptr;
  std::string primary;
  for (const auto& e : cloud_enis) {
    if (e.type == "Primary" || e.instance_id != opts_.instance_id) continue;
    std::string p = e.private_ip_address;
    for (const auto& s : e.private_ip_sets) {
      if (s.primary) p = s.address;
    }
    if (p == ip) {
      found = &e;
      primary = p;
    }
  }
  if (found == nullptr) {
    return Error(ErrorCode::kNotFound, "no ENI attached to this instance has it as its primary IP").Wrap(what);
  }
  // The pod's IPv6 is its ENI's: the one the sandbox holds when known (it
  // must be the ENI's), else the ENI's first.
  std::string eni_ipv6;
  if (dual && !found->ipv6_sets.empty()) eni_ipv6 = found->ipv6_sets.front();
  if (want_v6) {
    eni_ipv6.clear();
    for (const auto& v6 : found->ipv6_sets) {
      if (auto a = Ipv6Addr::Parse(v6); a.ok() && *a == *want_v6) eni_ipv6 = v6;
    }
    if (eni_ipv6.empty()) {
      return Errorf(ErrorCode::kConflict, "IPv6 {} is not one of ENI {}'s ({}): an exclusive pod's IPv6 is its ENI's",
                    ipv6, found->network_interface_id, fmt::join(found->ipv6_sets, ", "))
          .Wrap(what);
    }
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto existing, store_->FindByContainer(pod.container_id), what);
  if (existing) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto got, Get(pod.container_id), what);
    if (got) return *got;
  }
  std::lock_guard l(mu_);  // no Reconcile may see the ENI row without its allocation
  const int64_t now = Unix(clock_->Now());
  TERWAY_TRY_CTX(store_->UpsertEni({found->network_interface_id, found->mac_address, found->vswitch_id, primary,
                                    false, now}),
                 what);
  store::AllocationRecord rec;
  rec.container_id = pod.container_id;
  rec.pod_namespace = pod.namespace_;
  rec.pod_name = pod.name;
  rec.pod_uid = pod.uid;
  rec.ip = primary;
  rec.ipv6 = eni_ipv6;
  rec.eni_id = found->network_interface_id;
  rec.ifname = pod.ifname.empty() ? "eth0" : pod.ifname;
  rec.netns = pod.netns;
  rec.datapath_mode = pod.datapath_mode;
  rec.origin = pod.origin;
  rec.host_veth = pod.host_veth;
  rec.created_unix = now;
  TERWAY_TRY_CTX(store_->Allocate(rec), what);
  leak_first_seen_.erase(found->network_interface_id);
  log::Warn("exclusive_eni_adopted pod={}/{} container={} eni={} ip={}", pod.namespace_, pod.name,
            pod.container_id, found->network_interface_id, ip);
  IpAllocation out;
  out.ip = primary;
  out.ipv6 = rec.ipv6;
  out.eni_id = found->network_interface_id;
  out.eni_mac = found->mac_address;
  out.eni_primary_ip = primary;
  out.vswitch_id = found->vswitch_id;
  return out;
}

Result<std::optional<IpAllocation>> ExclusiveEniAllocator::Get(const std::string& container_id) {
  TERWAY_ASSIGN_OR_RETURN(auto rec, store_->FindByContainer(container_id));
  if (!rec) return std::optional<IpAllocation>();
  TERWAY_ASSIGN_OR_RETURN(auto enis, store_->ListEnis());
  IpAllocation out;
  out.ip = rec->ip;
  out.ipv6 = rec->ipv6;
  out.eni_id = rec->eni_id;
  for (const auto& e : enis) {
    if (e.eni_id == rec->eni_id) {
      out.eni_mac = e.mac;
      out.eni_primary_ip = e.primary_ip;
      out.vswitch_id = e.vswitch_id;
    }
  }
  return std::optional<IpAllocation>(out);
}

Status ExclusiveEniAllocator::Reconcile() {
  std::lock_guard rl(reconcile_mu_);
  Status result = Ok();
  auto keep = [&](Status st) {
    if (!st.ok() && result.ok()) result = std::move(st);
  };
  // ENIs in the store that no allocation references: an interrupted release
  // or a crash between attach and the allocation record. Both lists are
  // read under mu_ with no allocation in progress: an Allocate records its
  // ENI before its allocation, so a snapshot taken while one runs (or the
  // allocations read before one finishes and the ENIs after) would show a
  // live pod's ENI as unreferenced -- and destroy it.
  std::vector<store::EniRecord> rows;
  std::set<std::string> referenced;
  {
    std::lock_guard l(mu_);
    if (creating_ > 0) return result;  // an ENI being set up is unreferenced for a moment
    TERWAY_ASSIGN_OR_RETURN(auto allocs, store_->ListAllocations());
    for (const auto& a : allocs) referenced.insert(a.eni_id);
    TERWAY_ASSIGN_OR_RETURN(rows, store_->ListEnis());
  }
  for (const auto& e : rows) {
    if (!referenced.count(e.eni_id)) keep(DestroyEni(e.eni_id));
  }
  // ENIs the cloud has for this node that we do not know: attached ones are
  // detached and deleted at once (no pod can be using an ENI we never gave
  // out), Available ones after the grace period.
  TERWAY_ASSIGN_OR_RETURN(auto cloud_enis, provider_->ListEnis(opts_.instance_id));
  std::set<std::string> known;
  TERWAY_ASSIGN_OR_RETURN(auto rows2, store_->ListEnis());
  for (const auto& e : rows2) known.insert(e.eni_id);
  const auto now = clock_->Now();
  std::vector<cloud::NetworkInterface> leaked;
  {
    std::lock_guard l(mu_);
    for (const auto& e : cloud_enis) {
      const std::string& id = e.network_interface_id;
      if (e.type == "Primary" || known.count(id) || TagOf(e, "creator") != "terway" ||
          TagOf(e, kExclusiveTagKey) != "true" || TagOf(e, kInstanceTagKey) != opts_.instance_id) {
        continue;
      }
      auto [it, fresh] = leak_first_seen_.emplace(id, now);
      if (fresh || now - it->second < opts_.config.leaked_eni_grace_period) continue;
      leak_first_seen_.erase(it);
      leaked.push_back(e);
    }
  }
  for (const auto& e : leaked) {
    const std::string& id = e.network_interface_id;
    if (e.status == cloud::kEniInUse) {
      Status st = provider_->DetachEni(id, opts_.instance_id);
      if (!st.ok()) {
        keep(std::move(st));
        continue;
      }
    }
    Status st = provider_->DeleteEni(id);
    if (st.ok()) log::Info("eni_deleted eni={} reason=leaked", id);
    keep(std::move(st));
  }
  return result;
}

}  // namespace terway::ipam
