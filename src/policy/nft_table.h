// Our nftables table in the kernel: the only place that sends policy to it
// (through RunNftBatch, nft_batch.h) and reads it back. What is sent is
// rendered by nft_render.h from the model of nft_model.h.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "policy/compiler.h"
#include "policy/nft_change.h"
#include "policy/nft_model.h"

namespace terway::policy {

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
  Status Apply(const NftModel& model);
  // Sends `change` alone, at the cost of the change, when this handle
  // applied what the change starts from; otherwise (first use, a failed
  // batch, a change from another base) replaces the table with `next`, the
  // model after the change, as Apply does.
  Status ApplyChange(const NftModelChange& change, const NftModel& next);
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

// nft's JSON listings (`{"nftables": [...]}`) decoded; pure. Entries that
// are not named objects (metainfo, rules, ...) are skipped.
// The named chains, sets, maps and counters of our table in a listing;
// other tables' objects are left out (nft lists chains, sets and maps per
// family).
Result<NftObjects> ParseListedObjects(const std::string& nft_json);
// Every named counter in a listing, with its values (0 when absent).
Result<std::vector<RuleCounter>> ParseListedCounters(const std::string& nft_json);

}  // namespace terway::policy
