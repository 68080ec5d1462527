// The wiring engine: applies a WiringPlan (wiring_plan.h) through src/netlink,
// diffs the kernel against it, and removes what it owns. One engine for every
// mode, so Ensure (Apply) and Check (Diff) read the same plan and cannot
// drift apart.
//
// Apply is idempotent: it creates what is missing and fixes what differs, in
// dependency order -- links (moved, then created, then their settings), the
// caller's before-up step, links up, sysctls, addresses, routes (in plan
// order), rules, neighbours, qdiscs. Diff changes nothing. Remove deletes
// only what the plan marks owned (veths of ours, rules; a moved link is
// parked back home) and treats "gone" as success; it never opens a namespace
// that no longer exists. All three also handle what an earlier wiring of the
// pod left for an address it no longer has (wiring_engine_stale.h): Apply
// and Remove delete it, Diff names it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/wiring_plan.h"

namespace terway::datapath {

// One way the kernel differs from the plan, named precisely:
// "rule 'from 198.18.0.10 lookup 1003' (priority 2048) is missing".
struct Difference {
  std::string ns;    // the namespace's label ("host", "pod")
  std::string what;  // a sentence naming the object and how it differs
  bool operator==(const Difference&) const = default;
};
std::string JoinDifferences(const std::vector<Difference>& d);

struct ApplyReport {
  std::vector<MacAddr> report_macs;  // of plan.report.interfaces, in order
  std::vector<int> report_indexes;   // their ifindexes, each in its own namespace
  bool created_link = false;         // a veth pair was created
  bool moved_link = false;           // a link was moved between namespaces
};

// Runs after every link exists with its settings and before any is brought
// up (the anti-spoofing element must be in place before a veth carries a
// packet, see anti_spoof.h).
using BeforeLinksUp = std::function<Status()>;

// `report` is filled as the work goes, so a caller whose Apply failed knows
// what to undo (a veth it created, a link it moved).
Status ApplyPlan(const WiringPlan& plan, ApplyReport& report, const BeforeLinksUp& before_up = {});
// Empty when the kernel holds the plan. report_macs (optional): the MACs of
// the report's interfaces, when they exist.
Result<std::vector<Difference>> DiffPlan(const WiringPlan& plan, std::vector<MacAddr>* report_macs = nullptr);
Status RemovePlan(const WiringPlan& plan);

}  // namespace terway::datapath
