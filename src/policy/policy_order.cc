#include "policy/policy_order.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace terway::policy {

namespace {

// Calico v3.32's tie-break key for equal orders (policy_sorter.go): the
// plain object name first, so the same name in two namespaces sorts by
// namespace and a global policy (empty namespace) before a namespaced one.
std::string TieBreak(const Policy& p) { return p.name + "/" + p.namespace_ + "/" + p.CalicoKind(); }

}  // namespace

std::vector<RankedTier> RankTiers(const std::vector<TierInfo>& tiers, const std::vector<Policy>& policies) {
  std::vector<RankedTier> known;
  std::set<std::string> seen;
  for (const auto& t : tiers) {
    if (!seen.insert(t.name).second) continue;
    known.push_back({t.name, t.order.value_or(kDefaultTierOrder), t.default_action_pass, true});
  }
  if (!seen.count(kDefaultTier)) {
    known.push_back({kDefaultTier, kDefaultTierOrder, false, true});
    seen.insert(kDefaultTier);
  }
  std::sort(known.begin(), known.end(),
            [](const RankedTier& a, const RankedTier& b) {
              return std::tie(a.order, a.name) < std::tie(b.order, b.name);
            });
  std::set<std::string> unknown;
  for (const auto& p : policies) {
    if (!seen.count(p.tier)) unknown.insert(p.tier);
  }
  for (const auto& name : unknown) known.push_back({name, 0, false, false});
  return known;
}

bool PolicyBefore(const Policy& a, const Policy& b) {
  bool ha = a.order.has_value(), hb = b.order.has_value();
  if (ha != hb) return ha;
  if (ha && *a.order != *b.order) return *a.order < *b.order;
  return TieBreak(a) < TieBreak(b);
}

std::vector<size_t> SortPolicies(std::vector<Policy>* policies, const std::vector<RankedTier>& tiers) {
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < tiers.size(); i++) rank.emplace(tiers[i].name, i);
  std::vector<std::pair<size_t, size_t>> order;  // (tier rank, original index)
  for (size_t i = 0; i < policies->size(); i++) order.push_back({rank.at((*policies)[i].tier), i});
  std::stable_sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
    if (x.first != y.first) return x.first < y.first;
    return PolicyBefore((*policies)[x.second], (*policies)[y.second]);
  });
  std::vector<Policy> sorted;
  std::vector<size_t> tier_of;
  sorted.reserve(policies->size());
  for (const auto& [t, i] : order) {
    sorted.push_back(std::move((*policies)[i]));
    tier_of.push_back(t);
  }
  *policies = std::move(sorted);
  return tier_of;
}

}  // namespace terway::policy
