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
  // At start, a sandbox (or a pod of the API) is found holding `ip` while
  // the store has no record of it (a lost or corrupt database, a node taken
  // over from upstream Terway): records the allocation as it is, so the
  // address is never handed out while the record lives. kNotFound when ip is
  // not a pod address of this node's ENIs; kConflict when another
  // allocation holds it. Call before serving.
  //
  // Dual stack: `ipv6` is the IPv6 the sandbox holds beside `ip` ("" when
  // not known). The recorded pair is then (ip, ipv6), never whatever IPv6
  // the source happened to pair with ip after re-reading the cloud: kConflict
  // when another allocation holds ipv6 (naming it) or ipv6 is of another
  // ENI than ip (a pair is always one ENI's), kNotFound when the cloud does
  // not list it; nothing changes then. Without `ipv6` the source records
  // the pair it holds: adopt every sandbox with a known IPv6 first, so that
  // pair is no other sandbox's. Ignored on an IPv4-only node.
  virtual Result<IpAllocation> Adopt(const PodIdentity& pod, const std::string& ip, const std::string& ipv6) = 0;
  // Compares the store with the cloud: adopts what the cloud has and we lost
  // track of, drops what it no longer has, finishes interrupted releases and
  // collects leaked ENIs. It never frees a pod's address because the pod
  // looks gone: that is the daemon's pod GC, which tears the pod's wiring
  // down first (one teardown for every path that frees an address).
  virtual Status Reconcile() = 0;

  virtual int MaxPodCount() const = 0;
  virtual PoolStats Stats() const = 0;
};

}  // namespace terway::ipam
