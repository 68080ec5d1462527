// Label and field selectors: the string forms carried in ?labelSelector= and
// ?fieldSelector= (shared by the client, which builds them, and the lab's API
// stand-in, which evaluates them), and metav1.LabelSelector matching.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "k8s/types.h"

namespace terway::k8s {

// One term of a label selector: "a=b", "a==b", "a!=b", "a in (x,y)",
// "a notin (x)", "a" (exists), "!a" (does not exist).
struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;
  bool Matches(const Labels& labels) const;
};

// A parsed label selector: all requirements must hold. Empty selects all.
class LabelSelector {
 public:
  static Result<LabelSelector> Parse(std::string_view text);
  static LabelSelector FromSpec(const LabelSelectorSpec& spec);
  bool Matches(const Labels& labels) const;
  bool Empty() const { return reqs_.empty(); }
  std::string ToString() const;
  const std::vector<LabelRequirement>& requirements() const { return reqs_; }

 private:
  std::vector<LabelRequirement> reqs_;
};

// Field selectors: "f=v", "f==v", "f!=v" joined by commas; the field is a
// dotted JSON path into the object (metadata.name, spec.nodeName, ...).
class FieldSelector {
 public:
  struct Term {
    std::string field;
    bool negate = false;
    std::string value;
  };
  static Result<FieldSelector> Parse(std::string_view text);
  bool Matches(const Json& object) const;
  bool Empty() const { return terms_.empty(); }
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
};

// The value of a dotted field of a JSON object as the API server compares it
// ("" when absent; numbers and booleans in their text form).
std::string FieldValue(const Json& object, const std::string& dotted);

}  // namespace terway::k8s
