// The order policies are evaluated in (docs/calico-semantics.md 3, 4):
// tiers by (order, name) -- `default` at 1,000,000 unless the inputs say
// otherwise, a tier named by a policy but absent from the inputs after
// every tier, ending in deny, as Felix sorts it -- and within a tier by
// order (absent: after every ordered policy), then Calico v3.32's
// tie-break: the bytes of "name/namespace/kind". Pure.
#pragma once

#include <string>
#include <vector>

#include "policy/model.h"

namespace terway::policy {

struct RankedTier {
  std::string name;
  double order = kDefaultTierOrder;
  bool default_pass = false;
  bool known = true;  // among the inputs (or `default`)
};

// The tiers in evaluation order: those given, `default` if not given, and
// the unknown tiers the policies name.
std::vector<RankedTier> RankTiers(const std::vector<TierInfo>& tiers, const std::vector<Policy>& policies);

// Sorts `policies` into evaluation order over `tiers` (from RankTiers) and
// returns each sorted policy's index into `tiers`.
std::vector<size_t> SortPolicies(std::vector<Policy>* policies, const std::vector<RankedTier>& tiers);

// Within one tier: a before b.
bool PolicyBefore(const Policy& a, const Policy& b);

}  // namespace terway::policy
