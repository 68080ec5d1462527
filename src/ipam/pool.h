// IpPool: the executor around the pure engine. It owns the node's ENIs and
// IPs in memory, mirrors every change into the StateStore, serves pods, and
// runs the background work: refill (min_pool_size warm IPs, batched demand),
// reclaim (idle IPs above max_pool_size, empty ENIs, expired reservations)
// and reconcile (store vs cloud vs live pods; leaked ENI collection).
//
// Concurrency: pods never call the cloud. Allocate takes an idle IP under the
// lock; if there is none it joins the waiters and wakes the single refill
// worker, which plans for *all* waiters at once, so a burst of N pods costs
// about N/10 cloud calls. Cloud work (refill, reclaim, reconcile) is
// serialized by one operations lock and never holds the pool lock while a
// cloud call is in flight.
//
// Dual stack (ip_stack dual): an address slot is a pair, an IPv4 and an
// IPv6 of the same ENI, keyed by its IPv4 and stored as one row (store
// schema 6). A slot whose IPv6 is missing ("unpaired") is never handed out
// nor counted as idle; an IPv6 without an IPv4 is a "spare" of its ENI (in
// memory only: the cloud lists it again after a restart). Whenever an ENI
// has both, they are paired at once. Refill asks both families per ENI and
// gives back the IPv4s of an action whose IPv6 assignment failed; reclaim
// unassigns the IPv6 then the IPv4 of a slot, and always gives back unpaired
// IPv4s and spare IPv6s; reconcile applies the IPv4 rules to IPv6 (a lost
// IPv6 ends its pod's allocation, an unknown one is adopted).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "ipam/address_source.h"
#include "ipam/pool_config.h"
#include "ipam/engine.h"
#include "ipam/leftover_ipv6.h"
#include "ipam/provider.h"
#include "ipam/security_groups.h"
#include "ipam/types.h"
#include "ipam/vswitch_ledger.h"
#include "store/state_store.h"

namespace terway::ipam {

struct PoolOptions {
  std::string instance_id;
  std::string instance_type;
  // vSwitches new ENIs may use, in configuration order (eni_conf
  // "vswitches" for the node's zone, else the node's own vSwitch).
  std::vector<std::string> vswitch_ids;
  PoolConfig config;
  // How long a vSwitch that answered InvalidVSwitchId.IpNotEnough is skipped.
  std::chrono::seconds vswitch_exhausted_for{300};
  // How long ENI creation pauses after EniPerInstanceLimitExceeded (an ENI
  // deleted by us lifts the pause at once).
  std::chrono::seconds eni_limit_pause{600};
  // Called by the worker (no pool lock held) with the allocations whose
  // address the cloud no longer lists: the pool has forgotten them, and the
  // daemon must tear their pods' wiring down (a sandbox must never keep an
  // address the cloud may hand back to us for another pod).
  std::function<void(const std::vector<store::AllocationRecord>&)> on_address_lost;
  uint64_t seed = 0;  // vSwitch random policy, reclaim jitter
};

// Whether an attached ENI of ours may serve pods: not carrying a tag of
// eni_tag_block_list (upstream's built-in entries included), and carrying
// every tag of eni_tag_filter when one is set.
bool EniSchedulable(const std::vector<cloud::Tag>& tags, const PoolConfig& c);

// A copy of what the pool holds, per address and per ENI, for the operator
// (terway-cli mapping compares it with the store).
struct PoolContents {
  struct Address {
    std::string ip;
    std::string eni_id;
    IpUse use = IpUse::kIdle;
    std::string container_id;  // when in use
    bool eni_primary_ip = false;
    bool release_in_doubt = false;
    std::string ipv6 = "";  // dual stack: the paired IPv6 ("" = unpaired)
  };
  struct Eni {
    std::string eni_id;
    std::string mac;
    std::string vswitch_id;
    std::string primary_ip;
    bool unschedulable = false;
    std::vector<std::string> spare_ipv6 = {};  // dual stack: IPv6s paired with no IPv4
  };
  std::vector<Address> addresses;  // by IP
  std::vector<Eni> enis;           // by ENI id
};

class IpPool : public PodAddressSource {
 public:
  // Reads the instance's limits, loads the store and reconciles with the
  // cloud once (a cloud failure here is logged; the pool starts from the
  // store and the periodic reconcile retries).
  static Result<std::unique_ptr<IpPool>> Create(PoolOptions opts, EniProvider* provider,
                                                store::StateStore* store, Clock* clock);
  ~IpPool() override;

  // Starts / stops the background worker (refill, reclaim, reconcile).
  void Start() override;
  void Stop() override;

  // An IP for the pod, waiting at most `timeout` (real time: it is the CNI
  // request's deadline) for the pool to grow. Idempotent per container id.
  // kConflict (retryable) while another request for the same pod is in
  // flight; kExhausted naming the cause when the node cannot get more IPs;
  // kTimeout with the last cloud error otherwise.
  Result<IpAllocation> Allocate(const PodIdentity& pod, std::chrono::milliseconds timeout) override;
  // Returns the container's IP to the pool (reserved for a sticky pod).
  // Idempotent: unknown container ids succeed.
  Status Release(const std::string& container_id) override;
  Result<std::optional<IpAllocation>> Get(const std::string& container_id) override;
  // Dual stack: with `ipv6` known, the slot is re-paired first so that it
  // is the sandbox's own pair (see PodAddressSource::Adopt); without, the
  // slot's pair is recorded as the pool holds it.
  Result<IpAllocation> Adopt(const PodIdentity& pod, const std::string& ip, const std::string& ipv6) override;
  // Every current allocation (CNI GC compares these with the runtime's
  // valid attachments; terway-cli lists them).
  Result<std::vector<store::AllocationRecord>> Allocations() { return store_->ListAllocations(); }

  // One round of each background job (the worker calls these; tests too).
  Status RefillOnce();
  Status ReclaimOnce();
  Status Reconcile() override;
  // Allocations Reconcile dropped because their address vanished from the
  // cloud, not yet handed to on_address_lost (the worker delivers them; tests
  // without a worker take them here). Taking them takes over their teardown:
  // what they held (a dual-stack slot, an IPv6) serves pods again at once.
  std::vector<store::AllocationRecord> TakeLostAllocations();

  PoolStats Stats() const override;
  // Taken under the pool's lock; never waits for the cloud.
  PoolContents Contents() const;
  int MaxPodCount() const override { return bounds_.capacity; }
  // What eni_conf allows on this instance (sizes, ENI count, capacity).
  const PoolBounds& Bounds() const { return bounds_; }
  // Addresses the one-time warm-up (ip_warm_up_size) still has to obtain.
  int WarmUpLeft() const;

 private:
  // Reconcile's body; the caller holds ops_mu_ (RefillOnce does).
  Status ReconcileOpsLocked();
  // ip_stack ipv4 (pool_reconcile.cc): which IPv6s of the listed ENIs go
  // back, their stored pairings cleared first (mu_ held); then the calls
  // (ops_mu_ held, mu_ not).
  LeftoverIpv6Plan PlanLeftoverIpv6Locked(const std::map<std::string, std::vector<std::string>>& listed,
                                          const std::vector<store::AllocationRecord>& allocs);
  void ReturnLeftoverIpv6(const LeftoverIpv6Plan& plan);
  struct IpEntry {
    std::string eni_id;
    IpUse use = IpUse::kIdle;
    Clock::TimePoint idle_since{};
    bool eni_primary_ip = false;
    std::string container_id;  // when in use
    // A release (unassign, or detach/delete of its ENI) failed in a way the
    // cloud may still have applied (a 5xx, a timeout). The IP stays out of
    // service (kReleasing) until Reconcile sees whether the cloud still
    // lists it: handing it to a pod could give the pod a dead address.
    bool release_in_doubt = false;
    // Dual stack: the IPv6 of the same ENI paired with this IPv4 ("" =
    // unpaired: serves no pod until paired).
    std::string ipv6;
    // Dual stack: the slot's pod lost its IPv6 (its allocation ended); the
    // old sandbox may still have the IPv4 wired, so the slot stays out of
    // service (kReleasing) until on_address_lost has returned for it.
    bool awaiting_teardown = false;
  };
  struct EniEntry {
    std::string eni_id;
    std::string mac;
    std::string vswitch_id;
    std::string primary_ip;
    // Tags say another controller's (eni_tag_block_list / eni_tag_filter):
    // its pods keep their addresses, no new pod is served from it.
    bool unschedulable = false;
    // Dual stack: IPv6s of the ENI paired with no IPv4 (see the class
    // comment). Not stored: reconcile finds them in the cloud again.
    std::vector<std::string> spare_ipv6 = {};
    // Dual stack: IPv6s of pods whose IPv4 the cloud lost: still assigned,
    // and still wired in the old sandbox until on_address_lost has returned
    // for it; never adopted as spares nor paired before that.
    std::set<std::string> held_ipv6 = {};
  };
  struct Reservation {
    std::string ip;
    Clock::TimePoint expires;
  };
  using PodName = std::pair<std::string, std::string>;

  IpPool(PoolOptions opts, EniProvider* provider, store::StateStore* store, Clock* clock)
      : opts_(std::move(opts)),
        provider_(provider),
        store_(store),
        clock_(clock),
        security_groups_(opts_.config.security_groups, provider, opts_.instance_id),
        vswitches_(opts_.vswitch_ids) {}

  Status LoadFromStore();
  bool IsSticky(const PodIdentity& pod) const;
  int64_t Unix(Clock::TimePoint t) const;
  IpAllocation MakeAllocationLocked(const std::string& ip) const;
  PoolSnapshot SnapshotLocked(int demand) const;
  Result<IpAllocation> TryAllocateLocked(const PodIdentity& pod);
  Status ExpireReservationsLocked();
  Status ReleaseLocked(const store::AllocationRecord& rec);
  Status AddEniLocked(const EniEntry& eni);
  Status AddIpsLocked(const std::string& eni_id, const std::vector<std::string>& ips,
                      const std::string& eni_primary_ip);
  Status DropIpLocked(const std::string& ip, const std::string& why);
  // Dual stack. IPv6s of the ENI become spares (those not known yet), then
  // pairs with its idle/reserved unpaired IPv4s.
  Status AddIpv6Locked(const std::string& eni_id, const std::vector<std::string>& ipv6s);
  Status PairLocked(const std::string& eni_id);
  // Refill's first step: pairs every ENI's spares (a failed pairing write
  // is retried here, not replaced by new IPv6s). ops_mu_ held, mu_ not.
  void PairSpares();
  // The slot loses its IPv6 (the cloud dropped it, or it was unassigned).
  // A pod holding the slot loses its allocation (handed to on_address_lost).
  Status UnpairLocked(const std::string& ip, const std::string& why);
  // Where the pool holds an IPv6 (compared as addresses, not spellings).
  struct Ipv6Holder {
    enum class Kind { kUnknown, kPaired, kSpare, kHeld } kind = Kind::kUnknown;
    std::string ipv6;    // as the pool (the cloud) spells it
    std::string ip;      // kPaired: the IPv4 slot it is paired with
    std::string eni_id;  // its ENI
  };
  Ipv6Holder FindIpv6Locked(const std::string& ipv6) const;
  // Adopt's check that slot `ip` may become (ip, holder's IPv6): an error
  // naming why not, nothing changed.
  Status CheckAdoptedPairLocked(const std::string& ip, const Ipv6Holder& holder) const;
  // Adopt's re-pairing: slot `ip` takes the holder's IPv6 (a swap with the
  // idle slot that had it, or the ENI's spare); its old IPv6 goes to that
  // slot, or becomes a spare. Store first; on a failed write memory follows
  // what the store holds.
  Status PairForAdoptionLocked(const std::string& ip, const Ipv6Holder& holder);
  bool Dual() const { return opts_.config.ip_stack == IpStack::kDual; }
  bool CompleteLocked(const IpEntry& e) const { return !Dual() || !e.ipv6.empty(); }
  int IdleSlotsLocked() const;
  // Reconcile's IPv6 half for one listed ENI.
  Status ReconcileIpv6Locked(const std::string& eni_id, const std::vector<std::string>& cloud_ipv6);
  // Reclaim's undo of the store-first unpairing: the slots' in-memory
  // pairs are written back (or, if that fails, their IPv6s become spares).
  void RepairInStoreLocked(const std::vector<std::string>& ips);
  // Executes one reclaim unassign (IPv6s first, then IPv4s); ops_mu_ held,
  // mu_ not.
  Status ExecuteUnassign(const UnassignAction& u);
  // Refill's undo when an ENI's IPv6 assignment failed: the IPv4s the same
  // action just added go back to the cloud (those whose unassign fails stay
  // unpaired: the next refill pairs them or reclaim gives them back).
  void GiveBackUnpaired(const std::string& eni_id, const std::vector<std::string>& ips);
  Status DropEniLocked(const std::string& eni_id, const std::string& why);
  void RefreshVSwitches();
  // True if the error changed what the engine should plan (retry planning).
  bool NoteCloudError(const Error& e, const std::string& vswitch_id);
  bool NoteCloudErrorLocked(const Error& e, const std::string& vswitch_id);
  // Puts IPs whose release failed back in service, or keeps them out of it
  // while the cloud may have applied the release (see release_in_doubt).
  void RestoreAfterFailedReleaseLocked(const std::vector<std::string>& ips, const Error& e);
  // Hands the lost allocations to on_address_lost, then puts what they held
  // back in service (ReturnTornDownLocked). ops_mu_ may be held, mu_ not.
  void DeliverLostAllocations();
  // After the teardown of lost allocations: their slots and held IPv6s
  // serve pods again.
  void ReturnTornDownLocked(const std::vector<store::AllocationRecord>& torn_down);
  Status CreateEni(const CreateAction& a);
  void WorkerLoop();
  void NotifyWaitersLocked();

  const PoolOptions opts_;
  EniProvider* const provider_;
  store::StateStore* const store_;
  Clock* const clock_;
  EniSecurityGroups security_groups_;
  InstanceLimits limits_;
  PoolBounds bounds_;

  std::mutex ops_mu_;  // serializes refill / reclaim / reconcile (cloud work)

  mutable std::mutex mu_;
  std::condition_variable waiters_cv_;
  std::condition_variable worker_cv_;
  std::map<std::string, EniEntry> enis_;
  std::map<std::string, IpEntry> ips_;
  std::map<PodName, Reservation> reservations_;
  std::set<PodName> in_flight_;
  int waiting_ = 0;
  uint64_t allocations_total_ = 0;
  uint64_t allocation_failures_total_ = 0;
  uint64_t releases_total_ = 0;
  bool refill_requested_ = false;
  uint64_t shortfall_gen_ = 0;
  Error shortfall_;
  std::optional<Error> last_cloud_error_;
  VSwitchLedger vswitches_;
  Clock::TimePoint eni_blocked_until_{};
  std::map<std::string, Clock::TimePoint> leak_first_seen_;
  std::vector<store::AllocationRecord> lost_;  // see TakeLostAllocations
  uint64_t plan_counter_ = 0;
  IdleReclaimClock reclaim_clock_;  // last allocation/release, next timed reclaim
  std::mt19937_64 jitter_;          // reclaim interval jitter (seeded from opts_.seed)
  int warm_up_left_ = 0;            // see WarmUpLeft
  LeftoverIpv6Stats leftover_ipv6_;  // see PlanLeftoverIpv6Locked

  bool stop_ = false;
  std::thread worker_;
};

}  // namespace terway::ipam
