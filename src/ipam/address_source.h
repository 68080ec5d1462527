// PodAddressSource: what the daemon's CNI service needs from whatever hands
// out pod addresses on this node. The shared-ENI pool (IpPool: secondary IPs,
// warm pool) and the exclusive-ENI allocator (ExclusiveEniAllocator: one
// whole ENI per pod) both implement it, so the service never asks which mode
// the node runs in.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ipam/types.h"

namespace terway::ipam {

class PodAddressSource {
 public:
  virtual ~PodAddressSource() = default;

  // Background work (refill, reclaim, reconcile), if the source has any.
  virtual void Start() = 0;
  virtual void Stop() = 0;

  // An address for the pod within `timeout`. Idempotent per container id;
  // kConflict (retryable) while the same pod is in flight; kExhausted naming
  // the cause when the node cannot serve another pod.
  virtual Result<IpAllocation> Allocate(const PodIdentity& pod, std::chrono::milliseconds timeout) = 0;
  // Frees the container's address. Idempotent: unknown containers succeed.
  virtual Status Release(const std::string& container_id) = 0;
  virtual Result<std::optional<IpAllocation>> Get(const std::string& container_id) = 0;
  // Compares the store, the cloud and (when given) the live pods; frees what
  // vanished pods held and collects leaks.
  virtual Status Reconcile(const std::optional<std::vector<LivePod>>& live_pods) = 0;

  virtual int MaxPodCount() const = 0;
  virtual PoolStats Stats() const = 0;
};

}  // namespace terway::ipam
