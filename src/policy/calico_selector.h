// Calico's selector expression language (projectcalico.org/v3 `selector`,
// `namespaceSelector`): all(), global(), has(k), k == 'v', k != 'v',
// k in {'a','b'}, k not in {...}, k contains 's', k starts with 's',
// k ends with 's', !e, e && e, e || e, parentheses. && binds tighter than ||.
//
// Written from the documented grammar, not from Calico's code. Semantics that
// matter for policy: `!=` and `not in` hold when the label is absent; contains,
// starts with and ends with need the label; global() is true only for
// non-namespaced endpoints, which pods never are. An empty selector is all().
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "k8s/types.h"

namespace terway::policy {

class CalicoSelector {
 public:
  struct Node;

  // Errors name the selector text, the 0-based byte position and what was
  // expected there: `selector "a == ": at 5: expected a quoted string`.
  static Result<CalicoSelector> Parse(std::string_view text);
  static CalicoSelector All();

  // Building blocks for the selectors Calico derives from a policy
  // (docs/calico-semantics.md 2.3): has(key), key == 'value',
  // key in {...}, a && b, !a.
  static CalicoSelector Has(std::string key);
  static CalicoSelector Equals(std::string key, std::string value);
  static CalicoSelector In(std::string key, const std::vector<std::string>& values);
  static CalicoSelector And(const CalicoSelector& a, const CalicoSelector& b);
  static CalicoSelector Not(const CalicoSelector& a);
  // The same expression over `prefix` + every label key: how Calico
  // evaluates a namespaceSelector (pcns.) or a service-account selector
  // (pcsa.) against an endpoint's inherited labels.
  CalicoSelector WithKeyPrefix(const std::string& prefix) const;

  bool Matches(const k8s::Labels& labels) const;
  // A canonical, fully parenthesised form: equal selectors print equal, so
  // the compiler keys IP sets by it.
  std::string ToString() const;
  bool IsAll() const;
  // Exactly global(); and whether global() appears anywhere (Calico allows
  // it only as a whole EntityRule namespaceSelector).
  bool IsGlobal() const;
  bool UsesGlobal() const;

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace terway::policy
