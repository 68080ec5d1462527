// How a failed write of the eBPF datapath's policy map is reported and
// retried: by the policy controller (its callbacks are called from the
// apply; its side is policy_datapath_isolation.cc) and by terwayd when
// policy is off.
#include "daemon/policy_datapath_sync.h"

#include <algorithm>

#include "common/log.h"
#include "datapath/ebpf_eni_policy.h"

namespace terway::daemon {

DatapathSyncReporter::DatapathSyncReporter(Metrics* metrics, std::string node_name, WarnEvent warn_event)
    : metrics_(metrics), node_name_(std::move(node_name)), warn_event_(std::move(warn_event)) {}

bool DatapathSyncReporter::Note(const Status& st) {
  const Outage now = st.ok()                                      ? Outage::kNone
                     : datapath::PolicyMapFailedOpen(st.error()) ? Outage::kFailedOpen
                                                                  : Outage::kFailedClosed;
  Outage was, worst;  // before this write: the last outcome, and the worst of this outage
  {
    std::lock_guard l(mu_);
    was = outage_;
    worst = worst_;
    outage_ = now;
    worst_ = now == Outage::kNone ? Outage::kNone : std::max(worst_, now);
  }
  if (now == Outage::kNone) {
    if (was != Outage::kNone) {
      log::Info("eBPF datapath: the policy map is in sync again; unisolated pods are fast-pathed");
    }
    return false;
  }
  metrics_->Inc("terway_ebpf_datapath_policy_sync_errors_total");
  const std::string cause = st.error().ToString();
  // Told once per outage, and once more if it gets worse (closed -> open).
  const bool tell = was == Outage::kNone || now > worst;
  if (now == Outage::kFailedOpen) {
    log::Error("eBPF datapath: {} (retrying)", cause);
  } else {
    log::Warn("eBPF datapath: {} (retrying)", cause);
  }
  if (!tell || !warn_event_) return true;
  const std::string message =
      now == Outage::kFailedOpen
          ? "the eBPF datapath could not record which pods NetworkPolicy isolates, nor fall back to policing every "
            "pod (" + cause + "): an eBPF-mode pod a policy newly isolates may bypass it on the fast path, and new "
            "eBPF-mode pods a policy isolates are refused (CNI ADD fails, the runtime retries) until a retry "
            "succeeds; metric terway_ebpf_datapath_policy_synced says when"
          : "NetworkPolicy is enforced, but the eBPF datapath could not record which pods it isolates (" + cause +
                "): every eBPF-mode pod's traffic takes the host stack (slower) until a retry succeeds; metric "
                "terway_ebpf_datapath_policy_synced says when";
  // kubelet's convention for a Node's Events: the uid is the node's name
  // (kubectl describe node looks them up so).
  warn_event_(k8s::ObjectReference{"Node", "", node_name_, node_name_, "v1"}, kEbpfPolicyMapNotSyncedReason, message);
  return true;
}

PolicyOffDatapathSync::PolicyOffDatapathSync(Hooks hooks, DatapathSyncReporter* reporter)
    : hooks_(std::move(hooks)), reporter_(reporter) {}

void PolicyOffDatapathSync::SyncIfDue() {
  std::optional<bool> synced = hooks_.synced();
  if (!synced || *synced) return;  // nothing loaded, or in sync
  if (writing_.exchange(true)) return;  // another caller writes the same
  Status st = hooks_.write_empty();
  writing_.store(false);
  if (!st.ok()) st = std::move(st).error().Wrap("policy is off on this node: marking no pod isolated");
  reporter_->Note(st);
}

}  // namespace terway::daemon
