// The local ledger (this node's pods and the addresses terwayd handed them)
// and CNI ADD's wait: PodStarting records the pod's address, marks the
// change with a number, and waits for the worker's apply that covers it,
// so the pod's chains are in the kernel before its veth exists. Concurrent
// ADDs share applies (an apply covers every number up to its snapshot).
#include <optional>
#include <set>
#include <string>

#include "daemon/policy_controller.h"

namespace terway::daemon {

Status PolicyController::PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip,
                                     std::optional<Ipv6Addr> ipv6) {
  const std::string key = ns + "/" + name;
  TERWAY_ASSIGN_OR_RETURN(const bool known, LearnPod(ns, name));
  std::set<std::string> stale = RecordAddresses(key, ip, ipv6);
  stale.insert(key);
  const uint64_t mine = MarkLedgerChange(stale);
  // A sandbox of no Kubernetes pod has no labels: no policy can select it,
  // and as a peer it is matched by address (ipBlock) like any host.
  if (!known) return Ok();
  // The worker applies it (marking woke it); an apply that snapshotted after
  // our number enforces it, so many ADDs at once share applies.
  return WaitApplied(mine);
}

Result<bool> PolicyController::LearnPod(const std::string& ns, const std::string& name) {
  const std::string key = ns + "/" + name;
  auto cached = pods_->Get(key);
  if (cached && cached->node_name == opts_.node_name) return true;
  // The runtime beat our watch: read the pod itself, or its labels would
  // be unknown and it would start outside every policy that selects it.
  auto got = client_->Get(k8s::resources::kPods, ns, name);
  if (got.ok()) {
    auto pod = k8s::ParsePod(*got);
    if (!pod.ok()) return std::move(pod).error().Wrap("policy: pod " + key);
    std::lock_guard l(local_mu_);
    fetched_[key] = std::move(pod).value();
    return true;
  }
  if (got.error().code != ErrorCode::kNotFound) {
    return std::move(got).error().Wrap("policy: reading pod " + key + " (retry the ADD)");
  }
  return false;
}

std::set<std::string> PolicyController::RecordAddresses(const std::string& key, Ipv4Addr ip,
                                                         std::optional<Ipv6Addr> ipv6) {
  std::set<std::string> stale;  // other pods whose ledger entry named this address
  std::lock_guard l(local_mu_);
  // One address, one pod: a ledger entry of another pod still naming this
  // address is stale (its release was missed).
  for (auto it = local_ips_.begin(); it != local_ips_.end();) {
    if (it->first != key && it->second == ip) {
      stale.insert(it->first);
      local_ips6_.erase(it->first);
      it = local_ips_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = local_ips6_.begin(); ipv6 && it != local_ips6_.end();) {
    if (it->first != key && it->second == *ipv6) {
      stale.insert(it->first);
      it = local_ips6_.erase(it);
    } else {
      ++it;
    }
  }
  local_ips_[key] = ip;
  if (ipv6) local_ips6_[key] = *ipv6;
  else local_ips6_.erase(key);
  return stale;
}

Status PolicyController::WaitApplied(uint64_t gen) {
  std::unique_lock l(dirty_mu_);
  ++pod_starts_waiting_;
  applied_cv_.wait_for(l, opts_.pod_start_timeout,
                       [&] { return stop_ || applied_gen_ >= gen || failed_gen_ >= gen; });
  --pod_starts_waiting_;
  if (applied_gen_ >= gen) return Ok();
  if (failed_gen_ >= gen && failed_error_) return Error(*failed_error_).Wrap("policy: applying the pod's rules");
  if (stop_) return MakeError(ErrorCode::kUnavailable, "policy: terwayd is stopping; retry the ADD");
  return Errorf(ErrorCode::kTimeout,
                "policy: the pod's rules were not applied within {} ms (an apply of a large change may be running; "
                "terway_policy_apply_seconds shows how long they take); retry the ADD",
                opts_.pod_start_timeout.count());
}

void PolicyController::PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) {
  bool held = false;
  const std::string key = ns + "/" + name;
  {
    std::lock_guard l(local_mu_);
    auto it = local_ips_.find(key);
    if (it != local_ips_.end() && it->second == ip) {
      local_ips_.erase(it);
      local_ips6_.erase(key);
      fetched_.erase(key);
      held = true;
    }
  }
  if (!held) return;
  MarkLedgerChange({key});
}

uint64_t PolicyController::MarkLedgerChange(const std::set<std::string>& pods) {
  uint64_t gen = 0;
  {
    // Marked and numbered at once: an apply that takes our marks covers our
    // number, and one that covers our number took our marks (ApplyChanges).
    std::lock_guard l(dirty_mu_);
    dirty_.pods.insert(pods.begin(), pods.end());
    gen = ++requested_gen_;
  }
  dirty_cv_.notify_one();
  return gen;
}
}  // namespace terway::daemon
