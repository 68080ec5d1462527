// What this node knows of its candidate vSwitches' free addresses, shared by
// the shared-ENI pool and the exclusive-ENI allocator so both feed the same
// selection (OrderVSwitches, engine.h) the same facts: the cloud's
// AvailableIpAddressCount (DescribeVSwitches), lowered as we take addresses,
// and a pause after InvalidVSwitchId.IpNotEnough. No I/O and no lock: the
// owner calls DescribeVSwitches when RefreshDue says so and holds its own
// mutex around every call here.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cloud/types.h"
#include "common/clock.h"
#include "ipam/engine.h"
#include "ipam/provider.h"

namespace terway::ipam {

class VSwitchLedger {
 public:
  // Candidates in configuration order (the order kListOrder keeps).
  explicit VSwitchLedger(std::vector<std::string> vswitch_ids) : ids_(std::move(vswitch_ids)) {}

  const std::vector<std::string>& ids() const { return ids_; }
  // Never described, or described at least `period` (at least 1 s) ago.
  bool RefreshDue(Clock::TimePoint now, std::chrono::seconds period) const;
  // The cloud's counts, as DescribeVSwitches answered at `now`.
  void Record(const std::vector<cloud::VSwitch>& described, Clock::TimePoint now);
  // Addresses we just took on `vswitch_id` (a new ENI's), until the next Record.
  void Consume(const std::string& vswitch_id, int64_t addresses);
  // InvalidVSwitchId.IpNotEnough: none left, and skipped until `until`.
  void MarkExhausted(const std::string& vswitch_id, Clock::TimePoint until);
  // One view per candidate, in configuration order. A vSwitch the cloud has
  // not described yet is assumed to have room: the create call will tell.
  std::vector<VSwitchView> Views(Clock::TimePoint now) const;

 private:
  std::vector<std::string> ids_;
  std::map<std::string, int64_t> available_;
  std::map<std::string, Clock::TimePoint> exhausted_until_;
  Clock::TimePoint refreshed_{};
};

// The owners' refresh (pool and exclusive allocator alike): when due,
// DescribeVSwitches outside `mu` (no lock across a cloud call), the answer
// recorded under it. A failed describe is logged and changes nothing: the
// create call still tells when a vSwitch is full; only the preference among
// them is lost until the next refresh.
void RefreshLedger(VSwitchLedger& ledger, std::mutex& mu, EniProvider& provider, Clock& clock,
                   std::chrono::seconds period);

}  // namespace terway::ipam
