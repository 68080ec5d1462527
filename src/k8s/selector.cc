#include "k8s/selector.h"

#include <algorithm>
#include <cctype>

#include "common/strings.h"

namespace terway::k8s {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A label key or value: the characters Kubernetes allows in them.
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/';
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) pos_++;
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= s_.size();
  }
  bool Consume(std::string_view tok) {
    SkipSpace();
    if (s_.substr(pos_, tok.size()) == tok) {
      pos_ += tok.size();
      return true;
    }
    return false;
  }
  // Consumes a keyword only when followed by a non-name character.
  bool ConsumeWord(std::string_view w) {
    SkipSpace();
    if (s_.substr(pos_, w.size()) != w) return false;
    size_t end = pos_ + w.size();
    if (end < s_.size() && IsNameChar(s_[end])) return false;
    pos_ = end;
    return true;
  }
  std::string Name() {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < s_.size() && IsNameChar(s_[pos_])) pos_++;
    return std::string(s_.substr(start, pos_ - start));
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

Error SyntaxError(std::string_view text, size_t pos, const char* what) {
  return Errorf(ErrorCode::kInvalidArgument, "label selector '{}': {} at offset {}", text, what, pos);
}

}  // namespace

bool LabelRequirement::Matches(const Labels& labels) const {
  auto it = labels.find(key);
  bool has = it != labels.end();
  switch (op) {
    case Op::kEquals: return has && it->second == values.at(0);
    case Op::kNotEquals: return !has || it->second != values.at(0);
    case Op::kIn: return has && Contains(values, it->second);
    case Op::kNotIn: return !has || !Contains(values, it->second);
    case Op::kExists: return has;
    case Op::kDoesNotExist: return !has;
  }
  return false;
}

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector sel;
  Lexer lx(text);
  if (lx.AtEnd()) return sel;
  while (true) {
    LabelRequirement r;
    if (lx.Consume("!")) {
      r.op = LabelRequirement::Op::kDoesNotExist;
      r.key = lx.Name();
      if (r.key.empty()) return SyntaxError(text, lx.pos(), "expected a key after '!'");
    } else {
      r.key = lx.Name();
      if (r.key.empty()) return SyntaxError(text, lx.pos(), "expected a key");
      if (lx.Consume("==") || lx.Consume("=")) {
        r.op = LabelRequirement::Op::kEquals;
        r.values.push_back(lx.Name());
      } else if (lx.Consume("!=")) {
        r.op = LabelRequirement::Op::kNotEquals;
        r.values.push_back(lx.Name());
      } else if (bool notin = lx.ConsumeWord("notin"); notin || lx.ConsumeWord("in")) {
        r.op = notin ? LabelRequirement::Op::kNotIn : LabelRequirement::Op::kIn;
        if (!lx.Consume("(")) return SyntaxError(text, lx.pos(), "expected '('");
        while (true) {
          std::string v = lx.Name();
          r.values.push_back(v);
          if (lx.Consume(")")) break;
          if (!lx.Consume(",")) return SyntaxError(text, lx.pos(), "expected ',' or ')'");
        }
      } else {
        r.op = LabelRequirement::Op::kExists;
      }
    }
    sel.reqs_.push_back(std::move(r));
    if (lx.AtEnd()) break;
    if (!lx.Consume(",")) return SyntaxError(text, lx.pos(), "expected ','");
  }
  return sel;
}

LabelSelector LabelSelector::FromSpec(const LabelSelectorSpec& spec) {
  LabelSelector sel;
  for (const auto& [k, v] : spec.match_labels) {
    sel.reqs_.push_back({k, LabelRequirement::Op::kEquals, {v}});
  }
  for (const auto& e : spec.match_expressions) {
    LabelRequirement r{e.key, LabelRequirement::Op::kExists, e.values};
    if (e.op == "In") r.op = LabelRequirement::Op::kIn;
    else if (e.op == "NotIn") r.op = LabelRequirement::Op::kNotIn;
    else if (e.op == "DoesNotExist") r.op = LabelRequirement::Op::kDoesNotExist;
    sel.reqs_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const Labels& labels) const {
  return std::all_of(reqs_.begin(), reqs_.end(), [&](const auto& r) { return r.Matches(labels); });
}

std::string LabelSelector::ToString() const {
  std::vector<std::string> parts;
  for (const auto& r : reqs_) {
    switch (r.op) {
      case LabelRequirement::Op::kEquals: parts.push_back(r.key + "=" + r.values.at(0)); break;
      case LabelRequirement::Op::kNotEquals: parts.push_back(r.key + "!=" + r.values.at(0)); break;
      case LabelRequirement::Op::kIn: parts.push_back(r.key + " in (" + Join(r.values, ",") + ")"); break;
      case LabelRequirement::Op::kNotIn:
        parts.push_back(r.key + " notin (" + Join(r.values, ",") + ")");
        break;
      case LabelRequirement::Op::kExists: parts.push_back(r.key); break;
      case LabelRequirement::Op::kDoesNotExist: parts.push_back("!" + r.key); break;
    }
  }
  return Join(parts, ",");
}

Result<FieldSelector> FieldSelector::Parse(std::string_view text) {
  FieldSelector sel;
  for (const auto& raw : Split(text, ',', /*skip_empty=*/true)) {
    std::string_view t = Trim(raw);
    if (t.empty()) continue;
    Term term;
    size_t pos;
    size_t op_len;
    if ((pos = t.find("!=")) != std::string_view::npos) {
      term.negate = true;
      op_len = 2;
    } else if ((pos = t.find("==")) != std::string_view::npos) {
      op_len = 2;
    } else if ((pos = t.find('=')) != std::string_view::npos) {
      op_len = 1;
    } else {
      return Errorf(ErrorCode::kInvalidArgument, "field selector '{}': term '{}' has no operator", text, t);
    }
    term.field = std::string(Trim(t.substr(0, pos)));
    term.value = std::string(Trim(t.substr(pos + op_len)));
    if (term.field.empty()) {
      return Errorf(ErrorCode::kInvalidArgument, "field selector '{}': empty field name", text);
    }
    sel.terms_.push_back(std::move(term));
  }
  return sel;
}

std::string FieldValue(const Json& object, const std::string& dotted) {
  const Json* cur = &object;
  for (const auto& part : Split(dotted, '.')) {
    if (!cur->is_object()) return "";
    auto it = cur->find(part);
    if (it == cur->end()) return "";
    cur = &*it;
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_null() || cur->is_object() || cur->is_array()) return "";
  return cur->dump();
}

bool FieldSelector::Matches(const Json& object) const {
  for (const auto& t : terms_) {
    bool eq = FieldValue(object, t.field) == t.value;
    if (eq == t.negate) return false;
  }
  return true;
}

}  // namespace terway::k8s
