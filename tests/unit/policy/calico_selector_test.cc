#include "policy/calico_selector.h"

#include <gtest/gtest.h>

namespace terway::policy {
namespace {

struct MatchCase {
  const char* selector;
  bool want;
};

// Labels every case is evaluated against.
const k8s::Labels kLabels = {{"app", "web"}, {"tier", "frontend"}, {"env", "prod-eu"}, {"team", "net"}};

TEST(CalicoSelector, MatchTable) {
  const MatchCase cases[] = {
      {"", true},
      {"all()", true},
      {"global()", false},
      {"app == 'web'", true},
      {"app == \"web\"", true},
      {"app == 'db'", false},
      {"app != 'db'", true},
      {"missing != 'x'", true},  // != holds when the label is absent
      {"app != 'web'", false},
      {"has(app)", true},
      {"has(missing)", false},
      {"!has(missing)", true},
      {"app in {'web', 'db'}", true},
      {"app in {'db'}", false},
      {"app in {}", false},
      {"app not in {'db'}", true},
      {"missing not in {'x'}", true},  // not in holds when absent
      {"app not in {'web'}", false},
      {"env contains 'od-e'", true},
      {"env contains 'us'", false},
      {"missing contains ''", false},  // needs the label
      {"env starts with 'prod'", true},
      {"env starts with 'eu'", false},
      {"env ends with '-eu'", true},
      {"env ends with 'prod'", false},
      {"app == 'web' && tier == 'frontend'", true},
      {"app == 'web' && tier == 'backend'", false},
      {"app == 'db' || tier == 'frontend'", true},
      {"app == 'db' || tier == 'backend'", false},
      // && binds tighter than ||: false || (true && true)
      {"app == 'db' || app == 'web' && tier == 'frontend'", true},
      // parentheses change it: (false || true) && false
      {"(app == 'db' || app == 'web') && tier == 'backend'", false},
      {"!(app == 'web')", false},
      {"!!(app == 'web')", true},
      {"all() && !has(x)", true},
      {"projectcalico.org/namespace == 'x'", false},
      {"  app   ==   'web'  ", true},
  };
  for (const auto& c : cases) {
    auto s = CalicoSelector::Parse(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector << ": " << s.error().ToString();
    EXPECT_EQ(s->Matches(kLabels), c.want) << c.selector << " (canonical " << s->ToString() << ")";
  }
}

TEST(CalicoSelector, CanonicalFormIsStableAndReparses) {
  auto a = CalicoSelector::Parse("app=='web'&&env in {'b','a'}");
  auto b = CalicoSelector::Parse("(app == \"web\") && env in { 'a', 'b' }");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->ToString(), b->ToString());
  EXPECT_EQ(a->ToString(), "(app == 'web' && env in {'a', 'b'})");
  auto again = CalicoSelector::Parse(a->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ToString(), a->ToString());
  EXPECT_TRUE(CalicoSelector::Parse("  ")->IsAll());
}

// Three-valued: namespace known, role absent, every other label unknown.
TEST(CalicoSelector, MayMatchPartlyKnownLabels) {
  const CalicoSelector::PartialLabels partial{{{"projectcalico.org/namespace", "x"}}, {"role"}};
  const MatchCase cases[] = {
      {"all()", true},
      {"global()", false},
      {"projectcalico.org/namespace == 'x'", true},
      {"projectcalico.org/namespace == 'y'", false},
      {"projectcalico.org/namespace == 'y' && app == 'web'", false},  // false && unknown
      {"projectcalico.org/namespace == 'y' || app == 'web'", true},   // false || unknown
      {"projectcalico.org/namespace == 'x' && app == 'web'", true},
      {"app == 'web'", true},
      {"!(app == 'web')", true},  // not unknown: unknown
      {"has(role)", false},
      {"!has(role)", true},
      {"role != 'a'", true},
      {"role in {'a'}", false},
      {"role == 'a' || projectcalico.org/namespace not in {'x'}", false},
      {"!(projectcalico.org/namespace == 'x')", false},
      // Unsatisfiable but not decided by the terms: said "could" (the safe side).
      {"app == 'a' && app == 'b'", true},
  };
  for (const auto& c : cases) {
    auto s = CalicoSelector::Parse(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector;
    EXPECT_EQ(s->MayMatch(partial), c.want) << c.selector;
  }
  // With every label known, it is Matches.
  auto s = CalicoSelector::Parse("app == 'web' && !has(missing)");
  EXPECT_TRUE(s->MayMatch({kLabels, {"missing"}}));
  EXPECT_FALSE(CalicoSelector::Parse("app == 'db'")->MayMatch({kLabels, {"missing"}}));
}

struct ErrorCase {
  const char* selector;
  const char* want_in_message;
};

TEST(CalicoSelector, ErrorsNamePositionAndExpectation) {
  const ErrorCase cases[] = {
      {"app ==", "at 6: expected a quoted string"},
      {"app == 'web", "at 7: unterminated string"},
      {"app", "at 3: expected an operator after label key \"app\""},
      {"app = 'web'", "at 4: unexpected character '='"},
      {"app == 'web' &&", "at 15: expected a label key"},
      {"(app == 'web'", "at 13: expected ')'"},
      {"app == 'web')", "at 12: expected && or || or end of selector"},
      {"app in {'a' 'b'}", "at 12: expected ',' or '}'"},
      {"app in 'a'", "at 7: expected '{'"},
      {"has()", "at 4: expected a label key inside has()"},
      {"app starts 'x'", "at 4: expected an operator"},
      {"app == 'a' & b == 'c'", "at 11: unexpected character '&'"},
      {"app not {'a'}", "at 4: expected an operator"},
  };
  for (const auto& c : cases) {
    auto s = CalicoSelector::Parse(c.selector);
    ASSERT_FALSE(s.ok()) << c.selector << " parsed as " << s->ToString();
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(s.error().message.find(c.want_in_message), std::string::npos)
        << c.selector << ": " << s.error().message;
    EXPECT_NE(s.error().message.find(c.selector), std::string::npos) << "names the selector";
  }
}

}  // namespace
}  // namespace terway::policy
