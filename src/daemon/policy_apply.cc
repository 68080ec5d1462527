// The applier: changes are marked (Mark*, under dirty_mu_) and one thread
// applies them -- Create's first apply, then the worker alone -- so the
// compiler, the nft table and the datapath callbacks need no lock across a
// kernel call. An apply takes the marks, brings the model up to date
// (policy_model_feed.cc), tells the datapath what it isolates
// (policy_datapath_isolation.cc), sends the kernel the difference, and
// wakes PodStarting's waiters (policy_pod_start.cc) with its outcome.
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <utility>

#include "common/log.h"
#include "daemon/policy_controller.h"

namespace terway::daemon {

void PolicyController::MarkDirty() {
  {
    std::lock_guard l(dirty_mu_);
    dirty_.all = true;
  }
  dirty_cv_.notify_one();
}

void PolicyController::MarkChanged(std::set<std::string> Dirty::*what, const std::string& key) {
  {
    std::lock_guard l(dirty_mu_);
    (dirty_.*what).insert(key);
  }
  dirty_cv_.notify_one();
}

void PolicyController::MarkFlag(bool Dirty::*what) {
  {
    std::lock_guard l(dirty_mu_);
    dirty_.*what = true;
  }
  dirty_cv_.notify_one();
}

void PolicyController::Worker() {
  std::unique_lock l(dirty_mu_);
  bool retry = false;
  while (true) {
    if (retry) {
      // The last apply failed: try again when something changes, or after a
      // pause (a kernel hiccup must not leave a stale table forever). The
      // next apply replaces the table whole if the kernel's copy is unknown.
      dirty_cv_.wait_for(l, std::chrono::seconds(5), [this] { return stop_ || !dirty_.empty(); });
    } else if (!dirty_cv_.wait_for(l, kVerifyPeriod,
                                   [this] { return stop_ || !dirty_.empty() || datapath_unsynced_; })) {
      // Quiet for a while: is our table still what we applied? (A ruleset
      // flush or a deleted table would otherwise stay unnoticed until the
      // next change.) The table is this thread's: no lock.
      l.unlock();
      bool intact = true;
      if (Status v = table_->Verify(); !v.ok()) {
        intact = false;
        log::Warn("policy: the kernel's table differs from what terwayd applied ({}); applying again",
                  v.error().ToString());
        metrics_->Inc("terway_policy_applies_total", {{"trigger", "repair"}, {"result", "needed"}});
      }
      l.lock();
      if (intact) continue;
      retry = true;  // apply even with nothing dirty: the table is replaced whole
    }
    if (stop_) return;
    applying_ = true;
    const char* why = retry ? "repair" : pod_starts_waiting_ > 0 ? "pod start" : "change";
    l.unlock();
    Status st = ApplyChanges(why);
    if (!st.ok()) log::Warn("policy: applying a change failed (retrying): {}", st.error().ToString());
    l.lock();
    // A datapath out of sync is retried like a failed apply (NoteDatapathSync).
    retry = !st.ok() || datapath_unsynced_;
    applying_ = false;
    idle_cv_.notify_all();
  }
}

bool PolicyController::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock l(dirty_mu_);
  return idle_cv_.wait_for(l, timeout, [this] { return dirty_.empty() && !applying_; });
}

PolicyController::TakenChanges PolicyController::TakeChanges() {
  TakenChanges t;
  // Ledger changes are marked and numbered under this lock: the marks
  // taken here are those of every change numbered up to `gen`.
  std::lock_guard l(dirty_mu_);
  t.gen = requested_gen_;
  std::swap(t.dirty, dirty_);
  return t;
}

Status PolicyController::ApplyChanges(const char* why) {
  auto start = std::chrono::steady_clock::now();
  const auto [d, gen] = TakeChanges();
  bool policies_changed = false;
  Result<policy::NftModelChange> change = policy::NftModelChange{};
  {
    // In memory only: Explain's copy of the inputs waits for this, never
    // for the kernel below.
    std::lock_guard in(inputs_mu_);
    change = UpdateModel(d, &policies_changed);
    // Explain's inputs changed (to what this apply enforces; a failed apply
    // is retried from the same inputs).
    if (!d.empty() || model_gen_ == 0) model_gen_++;
  }
  std::set<Ipv4Addr> isolated_now;
  if (change.ok()) isolated_now = IsolationBeforeKernel();
  Status st = change.ok() ? table_->ApplyChange(*change, compiler_.model())
                          : Status(std::move(change).error().Wrap("policy: bringing the model up to date"));
  if (st.ok()) IsolationInKernel(isolated_now);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->Inc("terway_policy_applies_total", {{"trigger", why}, {"result", st.ok() ? "ok" : "error"}});
  metrics_->Observe("terway_policy_apply_seconds", {}, secs);
  NoteApplyOutcome(gen, st);
  if (!st.ok()) {
    // Nothing is lost: the compiler holds the inputs (and starts over from
    // them if its own state may be half updated), and the table is replaced
    // whole when the kernel's copy is unknown. The worker retries.
    return st;
  }
  if (d.all) {
    // Reading every object (start, a resync) allocated and freed tens of
    // MiB at 10,000 policies (lists, conversions, compiles); give the pages
    // back so terwayd's RSS is what it holds.
    malloc_trim(0);
  }
  ReportApplied(why, change->size(), policies_changed || d.context, secs);
  return Ok();
}

void PolicyController::NoteApplyOutcome(uint64_t gen, const Status& st) {
  {
    // PodStarting's waiters: their changes are in the kernel, or this
    // apply of them failed.
    std::lock_guard l(dirty_mu_);
    if (st.ok()) {
      applied_gen_ = std::max(applied_gen_, gen);
    } else {
      failed_gen_ = std::max(failed_gen_, gen);
      failed_error_ = st.error();
    }
  }
  applied_cv_.notify_all();
}

void PolicyController::ReportApplied(const char* why, size_t names_changed, bool policies_or_tiers_changed,
                                     double secs) {
  const policy::NftModel& m = compiler_.model();
  metrics_->Set("terway_policy_objects", {{"kind", "pods"}}, double(compiler_.pod_count()));
  metrics_->Set("terway_policy_objects", {{"kind", "policies"}}, double(compiler_.policy_count()));
  metrics_->Set("terway_policy_objects", {{"kind", "chains"}}, double(m.chains.size()));
  metrics_->Set("terway_policy_objects", {{"kind", "sets"}}, double(m.sets.size()));
  metrics_->Set("terway_policy_objects", {{"kind", "rejected"}}, double(rejected_.size()));
  if (policies_or_tiers_changed) ReportFailClosed();
  const auto& w = compiler_.last_work();
  log::Debug("policy: applied ({}) {} names changed; {} chains recompiled, {} pods probed, {} sets computed in "
             "{:.1f} ms",
             why, names_changed, w.fragments, w.probed_pods, w.recomputed_sets, secs * 1000);
}

void PolicyController::ReportFailClosed() {
  // Only policies that fail closed, or sit in a tier that may not exist
  // (the compiler notes those), can be reported: compile just those, with
  // the tiers and no pod, for the notes the compiler adds.
  policy::PolicyInputs everything = compiler_.Inputs();
  policy::PolicyInputs in;
  in.tiers = std::move(everything.tiers);
  for (auto& p : everything.policies) {
    if (!p.fail_closed.empty() || p.tier != policy::kDefaultTier) in.policies.push_back(std::move(p));
  }
  const policy::CompiledPolicy notes =
      policy::PolicyCompiler(policy::CompileOptions{opts_.node_name}).Compile(std::move(in));
  std::vector<FailClosedReport> reports = FailClosedReports(notes.policies(), policy_objects_);
  for (const auto& [kind, n] : FailClosedCounts(reports)) {
    metrics_->Set("terway_policy_fail_closed", {{"kind", kind}}, double(n));
  }
  for (const auto& r : fail_closed_events_.Due(reports)) {
    const std::string message = r.Message();
    log::Warn("policy {}: {}", r.policy, message);
    if (opts_.warn_event) opts_.warn_event(r.object.ref, kFailClosedEventReason, message);
  }
}

}  // namespace terway::daemon
