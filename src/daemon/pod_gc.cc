#include "daemon/pod_gc.h"

#include <map>

#include "common/log.h"

namespace terway::daemon {

std::vector<PodGcDecision> PlanPodGc(const std::vector<store::AllocationRecord>& allocations,
                                     const std::optional<std::vector<ipam::LivePod>>& live_pods,
                                     const std::set<std::string>& gone_netns) {
  std::map<std::pair<std::string, std::string>, std::string> live;
  if (live_pods) {
    for (const auto& p : *live_pods) live[{p.namespace_, p.name}] = p.uid;
  }
  std::vector<PodGcDecision> out;
  for (const auto& a : allocations) {
    if (!a.netns.empty() && gone_netns.count(a.netns)) {
      out.push_back({a, "its sandbox's network namespace " + a.netns + " is gone"});
      continue;
    }
    if (!live_pods) continue;
    // Only the API's word about a pod it had: a sandbox served without the
    // API proves nothing by being absent from it.
    if (a.origin == store::kOriginRuntime) continue;
    auto it = live.find({a.pod_namespace, a.pod_name});
    if (it == live.end()) {
      out.push_back({a, "its pod no longer exists in the Kubernetes API"});
    } else if (!it->second.empty() && !a.pod_uid.empty() && it->second != a.pod_uid) {
      out.push_back({a, "its pod was re-created (uid " + it->second + ", was " + a.pod_uid + ")"});
    }
  }
  return out;
}

void PodGc::Start() {
  std::lock_guard l(mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  worker_ = std::thread([this] {
    std::unique_lock l(mu_);
    while (!stop_) {
      // Real time: the period paces API reads, it is no decision input.
      if (cv_.wait_for(l, std::max<std::chrono::seconds>(opts_.period, std::chrono::seconds(1)),
                       [this] { return stop_; })) {
        break;
      }
      l.unlock();
      auto freed = RunOnce();
      if (!freed.ok()) log::Warn("pod_gc failed (retried next period): {}", freed.error().ToString());
      l.lock();
    }
  });
}

void PodGc::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Result<int> PodGc::RunOnce() {
  if (opts_.maintain) opts_.maintain();
  TERWAY_ASSIGN_OR_RETURN_CTX(auto allocs, store_->ListAllocations(), "pod gc: reading allocations");
  std::set<std::string> gone;
  for (const auto& a : allocs) {
    if (!a.netns.empty() && opts_.netns_alive && !opts_.netns_alive(a.netns)) gone.insert(a.netns);
  }
  std::optional<std::vector<ipam::LivePod>> live;
  if (opts_.live_pods) {
    auto pods = opts_.live_pods(allocs);
    if (pods.ok()) {
      live = std::move(pods).value();
    } else {
      // Without a trustworthy view of the API only vanished namespaces
      // count this round.
      log::Warn("pod_gc: the API's pods are unknown this round ({}); only sandboxes whose namespace is gone are freed",
                pods.error().ToString());
    }
  }
  int freed = 0;
  Status first = Ok();
  for (const auto& d : PlanPodGc(allocs, live, gone)) {
    const auto& a = d.allocation;
    log::Info("pod_gc pod={}/{} container={} ip={} reason=\"{}\"", a.pod_namespace, a.pod_name, a.container_id, a.ip,
              d.reason);
    Status st = opts_.teardown(a);
    if (st.ok()) {
      ++freed;
    } else if (first.ok()) {
      first = std::move(st);
    }
  }
  if (!first.ok()) return std::move(first).error();
  return freed;
}

}  // namespace terway::daemon
