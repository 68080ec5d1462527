// The eBPF datapath's policy map, terwayd's side of its reporting: whoever
// writes the map -- the policy controller (every apply), or terwayd itself
// when policy is off on the node (the empty set) -- tells a failed write the
// same way (DatapathSyncReporter), and retries until a write succeeds.
//
// The gauge terway_ebpf_datapath_policy_synced is not set here: terwayd sets
// it at scrape time from the datapath itself (EbpfEniDatapath::
// PolicyMapSynced), the one place that knows whether a map is loaded at all.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "common/result.h"
#include "daemon/metrics.h"
#include "k8s/types.h"

namespace terway::daemon {

// The reason of the Node's Warning Event while the map is not in sync.
inline constexpr const char* kEbpfPolicyMapNotSyncedReason = "EbpfPolicyMapNotSynced";

using WarnEvent =
    std::function<void(const k8s::ObjectReference& object, const std::string& reason, const std::string& message)>;

// Counts a failed write (terway_ebpf_datapath_policy_sync_errors_total),
// logs it, and tells it as a Warning Event on the Node once per outage --
// and again when a failed-closed outage turns into a failed-open one
// (datapath::PolicyMapFailedOpen: the map could not even be marked not
// authoritative), which is worse news. Thread safe.
class DatapathSyncReporter {
 public:
  DatapathSyncReporter(Metrics* metrics, std::string node_name, WarnEvent warn_event);
  // The result of one write; returns whether the map is out of sync (the
  // caller retries until a write succeeds).
  bool Note(const Status& st);

 private:
  enum class Outage { kNone, kFailedClosed, kFailedOpen };  // ordered: worse news last
  Metrics* metrics_;
  std::string node_name_;
  WarnEvent warn_event_;
  std::mutex mu_;
  Outage outage_ = Outage::kNone;  // the last write's
  Outage worst_ = Outage::kNone;   // the worst of the current outage
};

// With policy off on an eBPF node, terwayd is the map's writer: no chain
// isolates any pod, so the map is empty and authoritative (the eBPF pods
// take the fast path). Written at start, when the programs load (the
// datapath's `loaded` hook: a fresh map polices every pod) and, while not in
// sync, again every pod GC round: a failed write is reported and retried.
class PolicyOffDatapathSync {
 public:
  struct Hooks {
    // Writes the empty set (EbpfEniDatapath::PolicyIsolationApplied({})).
    std::function<Status()> write_empty;
    // nullopt: nothing loaded (nothing to write); else whether in sync
    // (EbpfEniDatapath::PolicyMapSynced).
    std::function<std::optional<bool>()> synced;
  };
  PolicyOffDatapathSync(Hooks hooks, DatapathSyncReporter* reporter);
  // Writes when programs are loaded and the map is not in sync. One writer
  // at a time without a lock held across the kernel: a call that finds
  // another writing returns at once (that one writes the same empty set;
  // if it fails, the next round retries).
  void SyncIfDue();

 private:
  Hooks hooks_;
  DatapathSyncReporter* reporter_;
  std::atomic<bool> writing_{false};
};

}  // namespace terway::daemon
