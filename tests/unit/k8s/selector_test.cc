#include "k8s/selector.h"

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

struct Case {
  const char* selector;
  Labels labels;
  bool match;
};

TEST(LabelSelector, MatchesTable) {
  const Labels web = {{"app", "web"}, {"tier", "fe"}};
  const std::vector<Case> cases = {
      {"", web, true},
      {"app=web", web, true},
      {"app==web", web, true},
      {"app=db", web, false},
      {"app!=db", web, true},
      {"app!=web", web, false},
      {"missing!=x", web, true},
      {"tier in (fe,be)", web, true},
      {"tier in (be)", web, false},
      {"tier notin (be)", web, true},
      {"tier notin (fe, be)", web, false},
      {"missing notin (x)", web, true},
      {"missing in (x)", web, false},
      {"app", web, true},
      {"missing", web, false},
      {"!missing", web, true},
      {"!app", web, false},
      {"app=web,tier=fe", web, true},
      {"app=web, tier=be", web, false},
      {"app = web , !db", web, true},
      {"k8s.io/app=web", {{"k8s.io/app", "web"}}, true},
      {"app=", {{"app", ""}}, true},
      {"app=", web, false},
  };
  for (const auto& c : cases) {
    auto sel = LabelSelector::Parse(c.selector);
    ASSERT_TRUE(sel.ok()) << c.selector << ": " << sel.error().ToString();
    EXPECT_EQ(sel->Matches(c.labels), c.match) << "selector '" << c.selector << "'";
  }
}

TEST(LabelSelector, RejectsSyntaxErrors) {
  for (const char* bad : {"=x", "a in x", "a in (x", "a,,b", "a b", "!", "a in (x) b", "app=web,"}) {
    EXPECT_FALSE(LabelSelector::Parse(bad).ok()) << bad;
  }
}

TEST(LabelSelector, ToStringParsesBackToTheSameMeaning) {
  auto sel = LabelSelector::Parse("a=1,b!=2,c in (x,y),d notin (z),e,!f");
  ASSERT_TRUE(sel.ok());
  auto again = LabelSelector::Parse(sel->ToString());
  ASSERT_TRUE(again.ok()) << sel->ToString();
  EXPECT_EQ(again->ToString(), sel->ToString());
  EXPECT_EQ(again->requirements().size(), 6u);
}

TEST(LabelSelector, FromSpecFollowsMetav1Semantics) {
  LabelSelectorSpec spec;
  spec.match_labels = {{"pod", "a"}};
  spec.match_expressions = {{"tier", "In", {"fe"}}, {"legacy", "DoesNotExist", {}},
                            {"zone", "NotIn", {"z1"}}, {"team", "Exists", {}}};
  auto sel = LabelSelector::FromSpec(spec);
  EXPECT_TRUE(sel.Matches({{"pod", "a"}, {"tier", "fe"}, {"team", "t"}}));
  EXPECT_FALSE(sel.Matches({{"pod", "a"}, {"tier", "fe"}}));                                  // no team
  EXPECT_FALSE(sel.Matches({{"pod", "a"}, {"tier", "fe"}, {"team", "t"}, {"legacy", "1"}}));  // legacy
  EXPECT_FALSE(sel.Matches({{"pod", "a"}, {"tier", "fe"}, {"team", "t"}, {"zone", "z1"}}));
  EXPECT_TRUE(LabelSelector::FromSpec(LabelSelectorSpec{}).Matches({}));  // empty selects all
}

TEST(FieldSelector, MatchesDottedPaths) {
  Json pod = Json::parse(R"({"metadata": {"name": "p", "namespace": "ns"},
                             "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}})");
  auto sel = FieldSelector::Parse("spec.nodeName=node-1,metadata.namespace==ns,status.phase!=Failed");
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->Matches(pod));
  auto other = FieldSelector::Parse("spec.nodeName=node-2");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->Matches(pod));
  // An unscheduled pod has no nodeName: it matches the empty value.
  auto unscheduled = FieldSelector::Parse("spec.nodeName=");
  ASSERT_TRUE(unscheduled.ok());
  EXPECT_TRUE(unscheduled->Matches(Json::parse(R"({"metadata": {"name": "q"}})")));
  EXPECT_FALSE(FieldSelector::Parse("spec.nodeName").ok());
  EXPECT_TRUE(FieldSelector::Parse("")->Empty());
}

}  // namespace
}  // namespace terway::k8s
