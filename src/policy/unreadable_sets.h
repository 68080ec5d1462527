// Network sets that cannot be read whole (NetworkSetInfo::read != kAll):
// their addresses are unknown, so the compiler gives a rule whose selector
// (or notSelector) could select one the safe meaning, and the policy a
// FailClosed note saying so. This holds which selectors could select them
// and writes the notes; compiler.cc applies the readings. Pure.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/calico_selector.h"
#include "policy/model.h"

namespace terway::policy {

// How a compiled rule takes the unreadable sets its selectors could select.
// kCertain: where it matches whatever the sets hold (left out of a
// selector; taken as every address in a notSelector). kPossible: where it
// could match (every address in a selector; left out of a notSelector).
// An Allow or Log takes kCertain (allows / logs no more than Calico would);
// a Deny kPossible (denies no less); a Pass is compiled twice, a Pass on
// kCertain then a Deny on kPossible: passing on more could let a later tier
// allow what the rest of this tier denies.
enum class UnreadableReading { kCertain, kPossible };
inline UnreadableReading ReadingOf(Action a) {
  return a == Action::kDeny ? UnreadableReading::kPossible : UnreadableReading::kCertain;
}
// Whether a selector (negated: a notSelector) takes the unreadable sets it
// could select as every address on this reading (else leaves them out).
inline bool UnreadableAny(UnreadableReading r, bool negated) { return (r == UnreadableReading::kPossible) != negated; }

class UnreadableNetworkSets {
 public:
  // `namespace_labels`: NamespaceLabels of the set's namespace (used when
  // its labels were read). The set must outlive this object.
  void Add(const NetworkSetInfo& set, const k8s::Labels& namespace_labels);
  bool empty() const { return sets_.empty(); }

  // The sets a selector could select: by their Calico labels when those
  // were read; else by what their scope fixes (CalicoSelector::MayMatch);
  // else any. Memoised by selector.
  const std::vector<const NetworkSetInfo*>& Matches(const CalicoSelector& sel);
  // Whether any selector or notSelector of the rule could select one.
  bool SelectedBy(const Rule& rule);
  // The policy's notes: one per rule side whose selector or notSelector
  // could select one (where: spec.<dir>[i].<source|destination>[.notSelector]).
  std::vector<FailClosed> Notes(const Policy& policy);

 private:
  struct Entry {
    const NetworkSetInfo* set = nullptr;
    std::optional<k8s::Labels> labels;  // its Calico labels, when read
    CalicoSelector::PartialLabels partial;
  };
  void Note(const CalicoSelector& sel, Action action, bool negated, const std::string& where,
            std::vector<FailClosed>* notes);

  std::vector<Entry> sets_;
  std::unordered_map<std::string, std::vector<const NetworkSetInfo*>> matches_;
  std::unordered_map<const Rule*, bool> selected_by_;
};

}  // namespace terway::policy
