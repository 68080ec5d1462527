// Pod garbage collection: which allocations of this node no sandbox and no
// pod needs any more, decided as a pure function and carried out through
// the CNI service's one teardown (wiring removed, policy stopped, address
// released -- never the address alone).
//
// An allocation is freed when
//   - its sandbox's network namespace is gone (the runtime destroyed the
//     sandbox without a DEL reaching us), or
//   - the Kubernetes API confirms its pod is gone or was re-created (another
//     uid), for allocations made for an API pod (or adopted at start, or
//     recorded before origins were).
// A sandbox the API never had (podman on the node, a static pod's sandbox
// before its mirror pod exists) is never freed because the API lacks it: it
// lives as long as its namespace does, or until the runtime's DEL or GC.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "ipam/types.h"
#include "store/state_store.h"

namespace terway::daemon {

struct PodGcDecision {
  store::AllocationRecord allocation;
  std::string reason;  // for the log
};

// live_pods: the API's pods of this node, nullopt when unknown (no API, or
// the cache is not synced): then only vanished namespaces count.
// gone_netns: recorded netns paths that are no longer mounted.
std::vector<PodGcDecision> PlanPodGc(const std::vector<store::AllocationRecord>& allocations,
                                     const std::optional<std::vector<ipam::LivePod>>& live_pods,
                                     const std::set<std::string>& gone_netns);

struct PodGcOptions {
  std::chrono::seconds period{120};
  // The API's live pods given the allocations' pods (KubeNode::LivePods);
  // unset without an API.
  std::function<Result<std::vector<ipam::LivePod>>(const std::vector<store::AllocationRecord>&)> live_pods;
  std::function<bool(const std::string& netns)> netns_alive;
  // The CNI service's teardown.
  std::function<Status(const store::AllocationRecord&)> teardown;
  // Run first in each round (the daemon's node-wide upkeep); optional.
  std::function<void()> maintain;
};

class PodGc {
 public:
  PodGc(PodGcOptions opts, store::StateStore* store) : opts_(std::move(opts)), store_(store) {}
  ~PodGc() { Stop(); }
  void Start();
  void Stop();
  // One round; returns how many allocations were freed.
  Result<int> RunOnce();

 private:
  PodGcOptions opts_;
  store::StateStore* store_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace terway::daemon
