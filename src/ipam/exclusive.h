// Exclusive-ENI mode (Terway's "eniOnly" node pools): each pod gets a whole
// ENI of its own, created and attached for it and detached and deleted when
// it goes. No warm pool: an ENI that sits idle would hold one of the
// instance's few ENI slots (max pods = EniQuantity - 1).
//
// Crash safety: the allocation and the ENI are recorded in the store in one
// step after the attach; everything in between is recovered by Reconcile
// (ENIs tagged for this instance but unknown or unreferenced are detached and
// deleted after the grace period).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/clock.h"
#include "ipam/address_source.h"
#include "ipam/pool.h"
#include "ipam/vswitch_ledger.h"

namespace terway::ipam {

inline constexpr const char* kExclusiveTagKey = "terway.exclusive";

class ExclusiveEniAllocator : public PodAddressSource {
 public:
  static Result<std::unique_ptr<ExclusiveEniAllocator>> Create(PoolOptions opts, EniProvider* provider,
                                                               store::StateStore* store, Clock* clock);
  ~ExclusiveEniAllocator() override;

  // A worker that runs Reconcile every ip_pool_sync_period (within seconds
  // after a release the cloud refused): interrupted releases and leaked
  // ENIs are finished without waiting for the next pod.
  void Start() override;
  void Stop() override;

  // A new ENI for the pod (its primary IP is the pod IP). Idempotent per
  // container id; kConflict (retryable) while the same pod is in flight;
  // kExhausted naming the cause when no ENI can be had.
  Result<IpAllocation> Allocate(const PodIdentity& pod);
  // PodAddressSource: the same. The timeout is not enforced inside: a pod
  // waits for one create + attach, whose wait the provider bounds itself
  // (there is no queue of waiters to give up on, unlike the shared pool).
  Result<IpAllocation> Allocate(const PodIdentity& pod, std::chrono::milliseconds timeout) override;
  // Detaches and deletes the pod's ENI. The caller moves the link back to
  // the host namespace first. Idempotent. Succeeds once the pod is released
  // in the store: a failed detach/delete is finished by the worker.
  Status Release(const std::string& container_id) override;
  Result<std::optional<IpAllocation>> Get(const std::string& container_id) override;
  // The ENI attached to this instance whose primary IP is `ip` (asks the
  // cloud, no lock held) becomes the pod's, as if Allocate had made it.
  // Dual stack: the pod's IPv6 is its ENI's; a known `ipv6` must be one of
  // them (kConflict otherwise) and is the one recorded.
  Result<IpAllocation> Adopt(const PodIdentity& pod, const std::string& ip, const std::string& ipv6) override;
  // Finishes interrupted releases and collects leaked ENIs.
  Status Reconcile() override;

  // The instance's ENI slots, as eni_conf allows (max_eni, eni_cap_ratio,
  // eni_cap_shift).
  int MaxPodCount() const override { return bounds_.capacity; }
  // in_use = pods holding an ENI, enis = ENIs we hold; nothing is idle.
  PoolStats Stats() const override;

 private:
  ExclusiveEniAllocator(PoolOptions opts, EniProvider* provider, store::StateStore* store, Clock* clock)
      : opts_(std::move(opts)),
        provider_(provider),
        store_(store),
        clock_(clock),
        security_groups_(opts_.config.security_groups, provider, opts_.instance_id),
        vswitches_(opts_.vswitch_ids) {}
  Result<cloud::NetworkInterface> CreateAttached(const PodIdentity& pod);
  // DescribeVSwitches at most once per ip_pool_sync_period, as the pool does,
  // so vswitch_selection_policy sees the free counts.
  void RefreshVSwitches();
  Status DestroyEni(const std::string& eni_id);
  int64_t Unix(Clock::TimePoint t) const;

  const PoolOptions opts_;
  EniProvider* const provider_;
  store::StateStore* const store_;
  Clock* const clock_;
  EniSecurityGroups security_groups_;
  InstanceLimits limits_;
  PoolBounds bounds_;

  std::mutex mu_;  // guards the maps below; never held across a cloud call
  std::set<std::pair<std::string, std::string>> in_flight_;
  int creating_ = 0;
  VSwitchLedger vswitches_;
  std::map<std::string, Clock::TimePoint> leak_first_seen_;
  std::mutex reconcile_mu_;

  std::atomic<uint64_t> allocations_total_{0};
  std::atomic<uint64_t> allocation_failures_total_{0};
  std::atomic<uint64_t> releases_total_{0};

  std::mutex worker_mu_;
  std::condition_variable worker_cv_;
  bool stop_ = false;
  bool release_pending_ = false;  // a release to finish soon (worker_mu_)
  std::thread worker_;
};

}  // namespace terway::ipam
