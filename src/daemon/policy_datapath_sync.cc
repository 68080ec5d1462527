// PolicyController: how a failed write of the eBPF datapath's policy map is
// reported and retried (the callbacks are called from ApplyChangesLocked).
#include "common/log.h"
#include "daemon/policy_controller.h"

namespace terway::daemon {

void PolicyController::NoteDatapathSync(const Status& st) {
  bool was_unsynced = false;
  {
    std::lock_guard l(dirty_mu_);
    was_unsynced = datapath_unsynced_;
    datapath_unsynced_ = !st.ok();
  }
  metrics_->Set("terway_ebpf_datapath_policy_synced", {}, st.ok() ? 1 : 0);
  if (st.ok()) {
    if (was_unsynced) {
      log::Info("policy: the eBPF datapath's policy map is in sync again; unisolated pods are fast-pathed");
    }
    return;
  }
  metrics_->Inc("terway_ebpf_datapath_policy_sync_errors_total");
  log::Warn("policy: {} (retrying)", st.error().ToString());
  dirty_cv_.notify_one();  // the worker retries (also after an apply it did not run)
  if (was_unsynced || !opts_.warn_event) return;  // told once per outage
  // kubelet's convention for a Node's Events: the uid is the node's name
  // (kubectl describe node looks them up so).
  opts_.warn_event(k8s::ObjectReference{"Node", "", opts_.node_name, opts_.node_name, "v1"},
                   kDatapathSyncEventReason,
                   "NetworkPolicy is enforced, but the eBPF datapath could not record which pods it isolates (" +
                       st.error().ToString() +
                       "): every eBPF-mode pod's traffic takes the host stack (slower) until a retry succeeds; "
                       "metric terway_ebpf_datapath_policy_synced says when");
}

}  // namespace terway::daemon
