// nft batches from models (nft_model.h), as text for libnftables: pure, no
// kernel. Each batch is ONE kernel transaction, so the kernel never holds
// half a policy, and changes the table in place, so its forward hook is
// never absent.
#pragma once

#include <string>

#include "policy/compiler.h"
#include "policy/nft_model.h"

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

}  // namespace terway::policy
