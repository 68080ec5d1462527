// The policy controller's side of the eBPF datapath's policy map: which
// local pods a chain may isolate (MayIsolate), and the datapath callbacks
// around every apply -- the full isolated set before the kernel gets the
// chains (the map becomes a superset) and after it took them (exact). A
// callback's error does not stop the apply: it is reported
// (DatapathSyncReporter, policy_datapath_sync.*) and the worker retries.
#include <mutex>
#include <set>

#include "daemon/policy_controller.h"

namespace terway::daemon {

std::set<Ipv4Addr> IsolatedAddresses(const policy::NftModel& model) {
  std::set<Ipv4Addr> out;
  for (const auto* m : {&model.ingress, &model.egress}) {
    for (const auto& [ip, chain] : *m) {
      if (auto a = Ipv4Addr::Parse(ip); a.ok()) out.insert(*a);
    }
  }
  return out;
}

bool PolicyController::MayIsolate(Ipv4Addr ip) const {
  std::lock_guard l(isolated_mu_);
  return isolated_.count(ip) > 0;
}

std::set<Ipv4Addr> PolicyController::IsolationBeforeKernel() {
  // Pods about to be isolated are policed before their chains exist, and
  // stay policed until the kernel dropped them (MayIsolate, the datapath's
  // policy map).
  std::set<Ipv4Addr> isolated_now = IsolatedAddresses(compiler_.model());
  {
    std::lock_guard l(isolated_mu_);
    isolated_.insert(isolated_now.begin(), isolated_now.end());
  }
  // A failure does not hold the chains back: they are the enforcement,
  // and the datapath has fallen to its safe side (every pod on the stack),
  // or, if it could not, refuses new pods it does not police.
  if (opts_.isolating) {
    if (Status dp = opts_.isolating(isolated_now); !dp.ok()) NoteDatapathSync(dp);
  }
  return isolated_now;
}

void PolicyController::IsolationInKernel(const std::set<Ipv4Addr>& isolated_now) {
  {
    std::lock_guard l(isolated_mu_);
    isolated_ = isolated_now;
  }
  if (opts_.isolation_applied) NoteDatapathSync(opts_.isolation_applied(isolated_now));
}

void PolicyController::NoteDatapathSync(const Status& st) {
  const bool unsynced = datapath_reporter_.Note(st);
  {
    std::lock_guard l(dirty_mu_);
    datapath_unsynced_ = unsynced;
  }
  if (unsynced) dirty_cv_.notify_one();  // the worker retries (also after an apply it did not run)
}

}  // namespace terway::daemon
