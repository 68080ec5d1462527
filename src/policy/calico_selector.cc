#include "policy/calico_selector.h"

#include <cctype>
#include <set>
#include <vector>

#include <fmt/format.h>

namespace terway::policy {

struct CalicoSelector::Node {
  enum class Kind { kAll, kGlobal, kHas, kEq, kNe, kIn, kNotIn, kContains, kStartsWith, kEndsWith, kNot, kAnd, kOr };
  Kind kind = Kind::kAll;
  std::string key;
  std::string value;
  std::set<std::string> values;
  std::shared_ptr<const Node> left, right;
};

namespace {

using Node = CalicoSelector::Node;
using Kind = Node::Kind;
using NodePtr = std::shared_ptr<const Node>;

enum class Tok { kEnd, kIdent, kString, kEq, kNe, kNot, kAnd, kOr, kLParen, kRParen, kLBrace, kRBrace, kComma };

struct Token {
  Tok type = Tok::kEnd;
  std::string text;
  size_t pos = 0;
};

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '-';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<NodePtr> Parse() {
    TERWAY_TRY(Lex());
    if (toks_.front().type == Tok::kEnd) return MakeNode(Kind::kAll);
    TERWAY_ASSIGN_OR_RETURN(NodePtr n, ParseOr());
    if (Peek().type != Tok::kEnd) return Fail("expected && or || or end of selector");
    return n;
  }

 private:
  Error Fail(const std::string& what) const { return FailAt(Peek().pos, what); }
  Error FailAt(size_t pos, const std::string& what) const {
    return Errorf(ErrorCode::kInvalidArgument, "selector \"{}\": at {}: {}", text_, pos, what);
  }

  Status Lex() {
    size_t i = 0;
    while (i < text_.size()) {
      char c = text_[i];
      if (std::isspace(static_cast<unsigned char>(c))) {
        i++;
        continue;
      }
      Token t;
      t.pos = i;
      auto two = [&](const char* s) { return text_.substr(i, 2) == s; };
      if (two("==")) {
        t.type = Tok::kEq;
        i += 2;
      } else if (two("!=")) {
        t.type = Tok::kNe;
        i += 2;
      } else if (two("&&")) {
        t.type = Tok::kAnd;
        i += 2;
      } else if (two("||")) {
        t.type = Tok::kOr;
        i += 2;
      } else if (c == '!') {
        t.type = Tok::kNot;
        i++;
      } else if (c == '(' || c == ')' || c == '{' || c == '}' || c == ',') {
        t.type = c == '(' ? Tok::kLParen : c == ')' ? Tok::kRParen : c == '{' ? Tok::kLBrace
                 : c == '}' ? Tok::kRBrace : Tok::kComma;
        i++;
      } else if (c == '\'' || c == '"') {
        size_t end = text_.find(c, i + 1);
        if (end == std::string_view::npos) return FailAt(i, "unterminated string");
        t.type = Tok::kString;
        t.text = std::string(text_.substr(i + 1, end - i - 1));
        i = end + 1;
      } else if (IsKeyChar(c)) {
        size_t j = i;
        while (j < text_.size() && IsKeyChar(text_[j])) j++;
        t.type = Tok::kIdent;
        t.text = std::string(text_.substr(i, j - i));
        i = j;
      } else {
        return FailAt(i, fmt::format("unexpected character '{}'", c));
      }
      toks_.push_back(std::move(t));
    }
    Token end;
    end.pos = text_.size();
    toks_.push_back(end);
    return Ok();
  }

  const Token& Peek(size_t ahead = 0) const { return toks_[std::min(pos_ + ahead, toks_.size() - 1)]; }
  Token Next() { return toks_[std::min(pos_++, toks_.size() - 1)]; }
  bool PeekIdent(const char* word, size_t ahead = 0) const {
    return Peek(ahead).type == Tok::kIdent && Peek(ahead).text == word;
  }
  Status Expect(Tok t, const char* what) {
    if (Peek().type != t) return Fail(fmt::format("expected {}", what));
    pos_++;
    return Ok();
  }

  static NodePtr MakeNode(Kind k) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    return n;
  }
  static NodePtr Binary(Kind k, NodePtr l, NodePtr r) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    n->left = std::move(l);
    n->right = std::move(r);
    return n;
  }

  Result<NodePtr> ParseOr() {
    TERWAY_ASSIGN_OR_RETURN(NodePtr l, ParseAnd());
    while (Peek().type == Tok::kOr) {
      pos_++;
      TERWAY_ASSIGN_OR_RETURN(NodePtr r, ParseAnd());
      l = Binary(Kind::kOr, l, r);
    }
    return l;
  }

  Result<NodePtr> ParseAnd() {
    TERWAY_ASSIGN_OR_RETURN(NodePtr l, ParseUnary());
    while (Peek().type == Tok::kAnd) {
      pos_++;
      TERWAY_ASSIGN_OR_RETURN(NodePtr r, ParseUnary());
      l = Binary(Kind::kAnd, l, r);
    }
    return l;
  }

  Result<NodePtr> ParseUnary() {
    if (Peek().type == Tok::kNot) {
      pos_++;
      TERWAY_ASSIGN_OR_RETURN(NodePtr c, ParseUnary());
      auto n = std::make_shared<Node>();
      n->kind = Kind::kNot;
      n->left = c;
      return NodePtr(n);
    }
    return ParsePrimary();
  }

  Result<std::string> ParseString() {
    if (Peek().type != Tok::kString) return Fail("expected a quoted string");
    return Next().text;
  }

  Result<NodePtr> ParsePrimary() {
    if (Peek().type == Tok::kLParen) {
      pos_++;
      TERWAY_ASSIGN_OR_RETURN(NodePtr n, ParseOr());
      TERWAY_TRY(Expect(Tok::kRParen, "')'"));
      return n;
    }
    if (Peek().type != Tok::kIdent) return Fail("expected a label key, has(), all(), global(), '!' or '('");
    // Function forms: all(), global(), has(key).
    if (Peek(1).type == Tok::kLParen && (PeekIdent("all") || PeekIdent("global") || PeekIdent("has"))) {
      std::string fn = Next().text;
      pos_++;  // '('
      auto n = std::make_shared<Node>();
      if (fn == "has") {
        if (Peek().type != Tok::kIdent) return Fail("expected a label key inside has()");
        n->kind = Kind::kHas;
        n->key = Next().text;
      } else {
        n->kind = fn == "all" ? Kind::kAll : Kind::kGlobal;
      }
      TERWAY_TRY(Expect(Tok::kRParen, "')'"));
      return NodePtr(n);
    }
    auto n = std::make_shared<Node>();
    n->key = Next().text;
    const Token& op = Peek();
    if (op.type == Tok::kEq || op.type == Tok::kNe) {
      pos_++;
      n->kind = op.type == Tok::kEq ? Kind::kEq : Kind::kNe;
      TERWAY_ASSIGN_OR_RETURN(n->value, ParseString());
    } else if (PeekIdent("in") || (PeekIdent("not") && PeekIdent("in", 1))) {
      n->kind = PeekIdent("in") ? Kind::kIn : Kind::kNotIn;
      pos_ += n->kind == Kind::kIn ? 1 : 2;
      TERWAY_TRY(Expect(Tok::kLBrace, "'{' starting a set of strings"));
      if (Peek().type != Tok::kRBrace) {
        while (true) {
          TERWAY_ASSIGN_OR_RETURN(std::string v, ParseString());
          n->values.insert(std::move(v));
          if (Peek().type != Tok::kComma) break;
          pos_++;
        }
      }
      TERWAY_TRY(Expect(Tok::kRBrace, "',' or '}'"));
    } else if (PeekIdent("contains")) {
      pos_++;
      n->kind = Kind::kContains;
      TERWAY_ASSIGN_OR_RETURN(n->value, ParseString());
    } else if ((PeekIdent("starts") || PeekIdent("ends")) && PeekIdent("with", 1)) {
      n->kind = PeekIdent("starts") ? Kind::kStartsWith : Kind::kEndsWith;
      pos_ += 2;
      TERWAY_ASSIGN_OR_RETURN(n->value, ParseString());
    } else {
      return Fail(fmt::format("expected an operator after label key \"{}\" (==, !=, in, not in, contains, "
                              "starts with, ends with)",
                              n->key));
    }
    return NodePtr(n);
  }

  std::string_view text_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
};

bool Eval(const Node& n, const k8s::Labels& labels) {
  auto label = [&]() -> const std::string* {
    auto it = labels.find(n.key);
    return it == labels.end() ? nullptr : &it->second;
  };
  switch (n.kind) {
    case Kind::kAll: return true;
    case Kind::kGlobal: return false;  // pods are namespaced endpoints
    case Kind::kHas: return label() != nullptr;
    case Kind::kEq: return label() && *label() == n.value;
    case Kind::kNe: return !label() || *label() != n.value;
    case Kind::kIn: return label() && n.values.count(*label()) > 0;
    case Kind::kNotIn: return !label() || n.values.count(*label()) == 0;
    case Kind::kContains: return label() && label()->find(n.value) != std::string::npos;
    case Kind::kStartsWith: return label() && label()->starts_with(n.value);
    case Kind::kEndsWith: return label() && label()->ends_with(n.value);
    case Kind::kNot: return !Eval(*n.left, labels);
    case Kind::kAnd: return Eval(*n.left, labels) && Eval(*n.right, labels);
    case Kind::kOr: return Eval(*n.left, labels) || Eval(*n.right, labels);
  }
  return false;
}

std::string Quote(const std::string& s) { return s.find('\'') == std::string::npos ? "'" + s + "'" : "\"" + s + "\""; }

std::string Print(const Node& n) {
  switch (n.kind) {
    case Kind::kAll: return "all()";
    case Kind::kGlobal: return "global()";
    case Kind::kHas: return "has(" + n.key + ")";
    case Kind::kEq: return n.key + " == " + Quote(n.value);
    case Kind::kNe: return n.key + " != " + Quote(n.value);
    case Kind::kIn:
    case Kind::kNotIn: {
      std::string s = n.key + (n.kind == Kind::kIn ? " in {" : " not in {");
      bool first = true;
      for (const auto& v : n.values) {
        s += (first ? "" : ", ") + Quote(v);
        first = false;
      }
      return s + "}";
    }
    case Kind::kContains: return n.key + " contains " + Quote(n.value);
    case Kind::kStartsWith: return n.key + " starts with " + Quote(n.value);
    case Kind::kEndsWith: return n.key + " ends with " + Quote(n.value);
    case Kind::kNot: return "!(" + Print(*n.left) + ")";
    case Kind::kAnd: return "(" + Print(*n.left) + " && " + Print(*n.right) + ")";
    case Kind::kOr: return "(" + Print(*n.left) + " || " + Print(*n.right) + ")";
  }
  return "";
}

}  // namespace

Result<CalicoSelector> CalicoSelector::Parse(std::string_view text) {
  Parser p(text);
  TERWAY_ASSIGN_OR_RETURN(NodePtr root, p.Parse());
  CalicoSelector s;
  s.root_ = std::move(root);
  return s;
}

CalicoSelector CalicoSelector::All() {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kAll;
  CalicoSelector s;
  s.root_ = n;
  return s;
}

CalicoSelector CalicoSelector::Has(std::string key) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kHas;
  n->key = std::move(key);
  CalicoSelector s;
  s.root_ = n;
  return s;
}

CalicoSelector CalicoSelector::Equals(std::string key, std::string value) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kEq;
  n->key = std::move(key);
  n->value = std::move(value);
  CalicoSelector s;
  s.root_ = n;
  return s;
}

CalicoSelector CalicoSelector::In(std::string key, const std::vector<std::string>& values) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kIn;
  n->key = std::move(key);
  n->values.insert(values.begin(), values.end());
  CalicoSelector s;
  s.root_ = n;
  return s;
}

CalicoSelector CalicoSelector::And(const CalicoSelector& a, const CalicoSelector& b) {
  // all() is the identity of &&: keep keys (and so set names) short.
  if (a.IsAll()) return b;
  if (b.IsAll()) return a;
  auto n = std::make_shared<Node>();
  n->kind = Kind::kAnd;
  n->left = a.root_;
  n->right = b.root_;
  CalicoSelector s;
  s.root_ = n;
  return s;
}

CalicoSelector CalicoSelector::Not(const CalicoSelector& a) {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kNot;
  n->left = a.root_ ? a.root_ : All().root_;
  CalicoSelector s;
  s.root_ = n;
  return s;
}

namespace {

NodePtr Prefixed(const NodePtr& n, const std::string& prefix) {
  if (!n) return n;
  auto c = std::make_shared<Node>(*n);
  if (!c->key.empty()) c->key = prefix + c->key;
  c->left = Prefixed(n->left, prefix);
  c->right = Prefixed(n->right, prefix);
  return c;
}

bool HasGlobal(const Node* n) {
  if (!n) return false;
  return n->kind == Kind::kGlobal || HasGlobal(n->left.get()) || HasGlobal(n->right.get());
}

}  // namespace

CalicoSelector CalicoSelector::WithKeyPrefix(const std::string& prefix) const {
  CalicoSelector s;
  s.root_ = Prefixed(root_, prefix);
  return s;
}

bool CalicoSelector::IsGlobal() const { return root_ && root_->kind == Kind::kGlobal; }
bool CalicoSelector::UsesGlobal() const { return HasGlobal(root_.get()); }

bool CalicoSelector::Matches(const k8s::Labels& labels) const { return !root_ || Eval(*root_, labels); }
std::string CalicoSelector::ToString() const { return root_ ? Print(*root_) : "all()"; }
bool CalicoSelector::IsAll() const { return !root_ || root_->kind == Kind::kAll; }

}  // namespace terway::policy
