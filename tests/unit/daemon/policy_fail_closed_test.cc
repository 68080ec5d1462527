// What terwayd tells about policies enforced on the safe side: which are
// reported, how they count by kind, and when a Warning Event is due (once
// per policy generation per node, never on every recompile).
#include "daemon/policy_fail_closed.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

policy::Policy FailingPolicy(policy::Policy::Kind kind, const std::string& ns, const std::string& name,
                             const std::string& where = "spec.ingress[0].http") {
  policy::Policy p;
  p.kind = kind;
  p.namespace_ = ns;
  p.name = name;
  p.fail_closed = {{where, "HTTP matches need an application-layer proxy", "the rule allows nothing"}};
  return p;
}

PolicyObject Object(const std::string& kind, const std::string& ns, const std::string& name, const std::string& uid,
                    int64_t generation) {
  return PolicyObject{k8s::ObjectReference{kind, ns, name, uid, "projectcalico.org/v3"}, generation};
}

TEST(FailClosedReports, OnlyPoliciesWithEntriesWithTheirObjects) {
  policy::Policy fine;
  fine.kind = policy::Policy::Kind::kK8s;
  fine.namespace_ = "x";
  fine.name = "fine";
  std::vector<policy::Policy> policies = {fine, FailingPolicy(policy::Policy::Kind::kCalico, "x", "web"),
                                          FailingPolicy(policy::Policy::Kind::kCalicoGlobal, "", "all"),
                                          FailingPolicy(policy::Policy::Kind::kCalicoGlobal, "", "unknown")};
  PolicyObjects objects = {{"k8s:x/fine", Object("NetworkPolicy", "x", "fine", "u0", 1)},
                           {"calico:x/web", Object("NetworkPolicy", "x", "web", "u1", 3)},
                           {"global:all", Object("GlobalNetworkPolicy", "", "all", "u2", 1)}};
  auto reports = FailClosedReports(policies, objects);
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_EQ(reports[0].policy, "calico:x/web");
  EXPECT_EQ(reports[0].kind, "calico");
  EXPECT_EQ(reports[0].object.ref.uid, "u1");
  EXPECT_EQ(reports[0].object.generation, 3);
  EXPECT_NE(reports[0].Message().find("spec.ingress[0].http: HTTP matches need an application-layer proxy; "
                                      "enforced as: the rule allows nothing"),
            std::string::npos)
      << reports[0].Message();
  EXPECT_EQ(reports[1].kind, "global");
  EXPECT_EQ(reports[2].policy, "global:unknown");
  EXPECT_TRUE(reports[2].object.ref.name.empty());  // counted and shown, but no object to put an Event on
  auto counts = FailClosedCounts(reports);
  EXPECT_EQ(counts, (std::map<std::string, int>{{"k8s", 0}, {"calico", 1}, {"global", 2}}));
  // Every kind is there when none fails closed: the gauge drops to 0.
  EXPECT_EQ(FailClosedCounts({}), (std::map<std::string, int>{{"k8s", 0}, {"calico", 0}, {"global", 0}}));
}

std::vector<std::string> Names(const std::vector<FailClosedReport>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.policy);
  return out;
}

TEST(FailClosedEventLedger, OncePerGenerationNeverPerRecompile) {
  FailClosedEventLedger ledger;
  std::vector<policy::Policy> policies = {FailingPolicy(policy::Policy::Kind::kCalico, "x", "web"),
                                          FailingPolicy(policy::Policy::Kind::kCalicoGlobal, "", "all")};
  PolicyObjects objects = {{"calico:x/web", Object("NetworkPolicy", "x", "web", "u1", 1)},
                           {"global:all", Object("GlobalNetworkPolicy", "", "all", "u2", 1)}};
  auto reports = FailClosedReports(policies, objects);
  EXPECT_EQ(Names(ledger.Due(reports)), (std::vector<std::string>{"calico:x/web", "global:all"}));
  // Recompiles (pod starts, label changes) tell nothing new.
  for (int i = 0; i < 3; i++) EXPECT_TRUE(ledger.Due(reports).empty());

  // The user edits x/web (a new generation), still with the field: told again.
  objects["calico:x/web"].generation = 2;
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"calico:x/web"});
  EXPECT_TRUE(ledger.Due(FailClosedReports(policies, objects)).empty());

  // Same generation, but what is enforced instead changed (a tier it names
  // became unreadable, say): told again; text moved between fields too.
  policies[1].fail_closed.push_back({"spec.tier", "the tier cannot be read", "its pods are isolated"});
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"global:all"});
  policies[1].fail_closed.back() = {"spec.tier", "the tier cannot be", "read its pods are isolated"};
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"global:all"});
  EXPECT_TRUE(ledger.Due(FailClosedReports(policies, objects)).empty());

  // Deleted and re-created under the same name (a new uid, generation 1
  // again): told again.
  objects["global:all"].ref.uid = "u3";
  objects["global:all"].generation = 1;
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"global:all"});

  // Fixed (no longer reported), then broken again in that same generation:
  // forgotten when fixed, so told again.
  std::vector<policy::Policy> fixed = policies;
  fixed[0].fail_closed.clear();
  EXPECT_TRUE(ledger.Due(FailClosedReports(fixed, objects)).empty());
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"calico:x/web"});
}

TEST(FailClosedEventLedger, NoEventWithoutAnObjectToNameButTheOthersGo) {
  FailClosedEventLedger ledger;
  std::vector<policy::Policy> policies = {FailingPolicy(policy::Policy::Kind::kCalico, "x", "orphan"),
                                          FailingPolicy(policy::Policy::Kind::kK8s, "x", "web")};
  PolicyObjects objects = {{"k8s:x/web", Object("NetworkPolicy", "x", "web", "u1", 1)}};
  EXPECT_EQ(Names(ledger.Due(FailClosedReports(policies, objects))), std::vector<std::string>{"k8s:x/web"});
}

}  // namespace
}  // namespace terway::daemon
