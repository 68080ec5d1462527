#include "policy/unreadable_sets.h"

#include <fmt/format.h>

#include "common/strings.h"
#include "policy/endpoint_labels.h"

namespace terway::policy {

void UnreadableNetworkSets::Add(const NetworkSetInfo& set, const k8s::Labels& namespace_labels) {
  Entry e;
  e.set = &set;
  switch (set.read) {
    case NetworkSetInfo::Read::kLabels: e.labels = CalicoNetworkSetLabels(set, namespace_labels); break;
    case NetworkSetInfo::Read::kScope:
      // Its own labels are unknown, and they would win over the inherited
      // pcns.* ones; Calico's namespace label wins over them, and Calico's
      // validator refuses it on a GlobalNetworkSet.
      if (set.namespace_.empty()) {
        e.partial.absent.insert(kCalicoNamespaceLabel);
      } else {
        e.partial.known[kCalicoNamespaceLabel] = set.namespace_;
      }
      break;
    case NetworkSetInfo::Read::kNothing:  // any labels
    case NetworkSetInfo::Read::kAll: break;
  }
  sets_.push_back(std::move(e));
}

const std::vector<const NetworkSetInfo*>& UnreadableNetworkSets::Matches(const CalicoSelector& sel) {
  static const std::vector<const NetworkSetInfo*> kNone;
  if (sets_.empty()) return kNone;
  std::string key = sel.ToString();
  auto it = matches_.find(key);
  if (it != matches_.end()) return it->second;
  std::vector<const NetworkSetInfo*> v;
  for (const auto& e : sets_) {
    if (e.labels ? sel.Matches(*e.labels) : sel.MayMatch(e.partial)) v.push_back(e.set);
  }
  return matches_[key] = std::move(v);
}

bool UnreadableNetworkSets::SelectedBy(const Rule& rule) {
  if (sets_.empty()) return false;
  auto it = selected_by_.find(&rule);
  if (it != selected_by_.end()) return it->second;
  bool any = false;
  auto side = [&](const Peer& p) {
    for (const auto* sel : {&p.selector, &p.not_selector}) any = any || (*sel && !Matches(**sel).empty());
  };
  for (const auto& p : rule.peers) side(p);
  if (rule.local) side(*rule.local);
  return selected_by_[&rule] = any;
}

std::vector<FailClosed> UnreadableNetworkSets::Notes(const Policy& policy) {
  std::vector<FailClosed> notes;
  if (sets_.empty()) return notes;
  for (Direction d : {Direction::kIngress, Direction::kEgress}) {
    const bool ingress = d == Direction::kIngress;
    const auto& rules = ingress ? policy.ingress : policy.egress;
    for (size_t i = 0; i < rules.size(); i++) {
      const Rule& rule = rules[i];
      if (rule.matches_nothing) continue;
      const std::string at = fmt::format("spec.{}[{}].", ingress ? "ingress" : "egress", i);
      auto side = [&](const Peer& p, const char* name) {
        if (p.matches_nothing) return;
        if (p.selector) Note(*p.selector, rule.action, false, at + name, &notes);
        if (p.not_selector) Note(*p.not_selector, rule.action, true, at + name + ".notSelector", &notes);
      };
      for (const auto& peer : rule.peers) side(peer, ingress ? "source" : "destination");
      if (rule.local) side(*rule.local, ingress ? "destination" : "source");
    }
  }
  return notes;
}

void UnreadableNetworkSets::Note(const CalicoSelector& sel, Action action, bool negated, const std::string& where,
                                 std::vector<FailClosed>* notes) {
  const auto& sets = Matches(sel);
  if (sets.empty()) return;
  std::vector<std::string> errors;
  for (const NetworkSetInfo* s : sets) errors.push_back(s->unreadable);
  const bool one = sets.size() == 1;
  std::string why = fmt::format("{} ({}): {} addresses are unknown and this {} could select {}",
                                one ? "a network set cannot be read" : "network sets cannot be read",
                                Join(errors, "; "), one ? "its" : "their", negated ? "notSelector" : "selector",
                                one ? "it" : "them");
  std::string enforced;
  switch (action) {
    case Action::kAllow:
    case Action::kLog: {
      const char* verb = action == Action::kAllow ? "allows" : "logs";
      enforced = negated ? fmt::format("the rule {} nothing (any address could be the set's)", verb)
                         : fmt::format("the set is left out: the rule {} none of its addresses", verb);
      break;
    }
    case Action::kDeny:
      enforced = negated ? "the set is left out of the exclusion: the rule denies its addresses too"
                         : "the rule denies every address its other criteria match, as if the set held every address";
      break;
    case Action::kPass:
      enforced = negated ? "the rule denies what it would pass on (any address could be the set's), the set's "
                           "addresses too"
                         : "the rule passes on what it matches without the set, and denies every other address its "
                           "other criteria match, as if the set held every address";
      break;
  }
  notes->push_back({where, std::move(why), std::move(enforced)});
}

}  // namespace terway::policy
