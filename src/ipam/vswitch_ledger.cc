#include "ipam/vswitch_ledger.h"

#include <algorithm>

#include "common/log.h"

namespace terway::ipam {

bool VSwitchLedger::RefreshDue(Clock::TimePoint now, std::chrono::seconds period) const {
  if (ids_.empty()) return false;
  return refreshed_ == Clock::TimePoint{} || now - refreshed_ >= std::max(period, std::chrono::seconds(1));
}

void VSwitchLedger::Record(const std::vector<cloud::VSwitch>& described, Clock::TimePoint now) {
  for (const auto& v : described) available_[v.vswitch_id] = v.available_ip_address_count;
  refreshed_ = now;
}

void VSwitchLedger::Consume(const std::string& vswitch_id, int64_t addresses) {
  if (auto it = available_.find(vswitch_id); it != available_.end()) {
    it->second = std::max<int64_t>(0, it->second - addresses);
  }
}

void VSwitchLedger::MarkExhausted(const std::string& vswitch_id, Clock::TimePoint until) {
  exhausted_until_[vswitch_id] = until;
  available_[vswitch_id] = 0;
}

std::vector<VSwitchView> VSwitchLedger::Views(Clock::TimePoint now) const {
  std::vector<VSwitchView> out;
  for (const auto& id : ids_) {
    VSwitchView v{id, int64_t{1} << 20, false};  // unknown count: assume room
    if (auto a = available_.find(id); a != available_.end()) v.available_ips = a->second;
    if (auto x = exhausted_until_.find(id); x != exhausted_until_.end()) v.exhausted = x->second > now;
    out.push_back(v);
  }
  return out;
}

void RefreshLedger(VSwitchLedger& ledger, std::mutex& mu, EniProvider& provider, Clock& clock,
                   std::chrono::seconds period) {
  {
    std::lock_guard l(mu);
    if (!ledger.RefreshDue(clock.Now(), period)) return;
  }
  auto vs = provider.DescribeVSwitches(ledger.ids());
  std::lock_guard l(mu);
  if (!vs.ok()) {
    log::Warn("describe_vswitches_failed error=\"{}\"", vs.error().ToString());
    return;
  }
  ledger.Record(*vs, clock.Now());
}

}  // namespace terway::ipam
