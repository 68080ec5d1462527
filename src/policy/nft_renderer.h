// The compiled policy as nftables state (the layout: nft_model.h), written
// through libnftables as ONE batch (one kernel transaction) per render, so
// the kernel never holds half a policy, and changed in place so its hook is
// never absent.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "policy/compiler.h"
#include "policy/nft_batch.h"
#include "policy/nft_model.h"
#include "policy/policy_show.h"

namespace terway::policy {

// The whole batch, one kernel transaction that changes the table in place:
// rules flushed, sets and maps flushed, objects the new model lacks
// deleted, everything declared again. The table and its base chain are
// never deleted, so the forward hook stays registered across every change
// (tests/root/policy probes a denied flow while large tables are replaced),
// and named counters that survive keep their values with no read-back
// (their names are stable across compiles).
// `existing`: what the kernel holds now (empty: no table yet).
std::string RenderNftScript(const CompiledPolicy& policy, const NftObjects& existing = {});
std::string RenderNftScript(const NftModel& model, const NftObjects& existing = {});

// The batch that turns the kernel's table from `from` into `to`, touching
// only what differs (one transaction too): a new pod costs its chains, its
// map elements and the sets it joins, not the whole table. "" when equal.
std::string RenderNftDelta(const NftModel& from, const NftModel& to);

// The kernel side, in one network namespace ("" = the caller's). Remembers
// the model it applied and sends only the difference next time; replaces
// the table whole (in place) when it does not know what the kernel holds:
// first use, or after a batch failed.
class NftPolicyTable {
 public:
  explicit NftPolicyTable(std::string netns = "") : netns_(std::move(netns)) {}

  // Replaces everything of ours with `policy`, atomically and in place
  // (see RenderNftScript). On failure the kernel keeps the previous table.
  Status Apply(const CompiledPolicy& policy);
  // Deletes our table; success when it is already gone.
  Status Remove();
  Result<std::vector<RuleCounter>> ReadCounters() const;
  // Our table's named objects as the kernel lists them (empty: no table).
  Result<NftObjects> ListObjects() const;
  // Ok when the kernel holds the objects of what this handle applied last
  // (nothing applied yet: Ok). Otherwise an error saying what differs, and
  // the handle forgets what it applied: the next Apply replaces the table
  // whole.
  Status Verify();

 private:
  std::string netns_;
  std::optional<NftModel> applied_;
};

}  // namespace terway::policy
