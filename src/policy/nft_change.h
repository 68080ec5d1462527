// A change of the kernel model (nft_model.h) by name: the values before and
// after of only the names that changed, so applying it, rendering it and
// sending it cost the change, not the table.
#pragma once

#include "policy/nft_model.h"

namespace terway::policy {

// `from` holds the previous value of every changed name that existed,
// `to` the new value of every changed name that exists now: a name only in
// `from` goes, only in `to` comes, in both changes. Unchanged names are in
// neither, so RenderNftDelta(from, to) is exactly the kernel's delta.
struct NftModelChange {
  NftModel from, to;
  bool empty() const { return from == to; }
  // Names touched, for logs and metrics.
  size_t size() const;
};

// `model` becomes model + change (it must hold change.from).
void ApplyChange(const NftModelChange& change, NftModel* model);

// The change from `from` to `to` (walks both whole models: tests, and the
// first apply after a full compile).
NftModelChange ChangeBetween(const NftModel& from, const NftModel& to);

}  // namespace terway::policy
