// Network sets that cannot be read (docs/calico-semantics.md 5; README
// "What fails closed"): their addresses are unknown, so a rule whose
// selector could select one is enforced on the safe side, through Explain
// on the compiled model, with a note on the policy naming the set and why.
#include <gtest/gtest.h>

#include "policy/calico_objects.h"
#include "world.h"

namespace terway::policy {
namespace {

using namespace terway::policy::testing;  // NOLINT
using Read = NetworkSetInfo::Read;

Packet Tcp(uint16_t dport) { return Packet::Of(Protocol::kTCP, dport); }

// A set as the daemon hands it over when reading stopped at `read`.
NetworkSetInfo Unreadable(const std::string& ns, const std::string& name, k8s::Labels labels, Read read) {
  NetworkSetInfo s;
  s.namespace_ = ns;
  s.name = name;
  s.labels = std::move(labels);
  s.read = read;
  s.unreadable = fmt::format("{} {}{}: spec.nets[1]: \"198.51.100.0/33\" is not a CIDR",
                             ns.empty() ? "GlobalNetworkSet" : "NetworkSet", ns.empty() ? "" : ns + "/", name);
  return s;
}

// x has a readable partner set (10.1.0.0/16) besides whatever is added.
CompiledPolicy Compile(const std::vector<Policy>& policies, std::vector<NetworkSetInfo> sets) {
  PolicyInputs in = NetpolWorld();
  in.network_sets = {{"x", "known", {{"role", "partner"}}, {*Ipv4Cidr::Parse("10.1.0.0/16")}, {}}};
  for (auto& s : sets) in.network_sets.push_back(std::move(s));
  in.policies = policies;
  return PolicyCompiler().Compile(std::move(in));
}

bool Allowed(const CompiledPolicy& cp, const std::string& from, const std::string& to, const Packet& pkt) {
  auto e = cp.Explain(from, to, pkt);
  EXPECT_TRUE(e.ok()) << e.error().ToString();
  return e.ok() && e->allowed;
}

const std::vector<FailClosed>& Notes(const CompiledPolicy& cp) {
  EXPECT_EQ(cp.policies().size(), 1u);
  return cp.policies()[0].fail_closed;
}

std::string NoteText(const CompiledPolicy& cp) {
  std::string s;
  for (const auto& f : cp.policies()[0].fail_closed) s += f.where + ": " + f.why + "; " + f.enforced_as + "\n";
  return s;
}

// x/a's ingress: `rule` first, then allow everything.
Policy XaIngress(const std::string& kind, const std::string& rule) {
  std::string meta = kind == "NetworkPolicy" ? R"({"name":"p","namespace":"x"})" : R"({"name":"p"})";
  std::string sel = kind == "NetworkPolicy" ? "pod == 'a'" : "pod == 'a' && projectcalico.org/namespace == 'x'";
  return Calico(R"({"kind":")" + kind + R"(","metadata":)" + meta + R"(,"spec":{"selector":")" + sel +
                R"(","ingress":[)" + rule + R"(,{"action":"Allow"}]}})");
}

// Before, the set was dropped and the Deny denied nothing from its
// (unknown) addresses: fail open. Now it denies every address its other
// criteria match: TCP 22 from anywhere, and still allows TCP 80.
TEST(UnreadableNetworkSet, DenySelectingItDeniesAnyAddressItsOtherCriteriaMatch) {
  auto p = XaIngress("NetworkPolicy", R"({"action":"Deny","protocol":"TCP","destination":{"ports":[22]},
      "source":{"selector":"role == 'partner'"}})");
  auto cp = Compile({p}, {Unreadable("x", "partners", {{"role", "partner"}}, Read::kLabels)});
  EXPECT_FALSE(Allowed(cp, "198.51.100.7", "x/a", Tcp(22)));
  EXPECT_FALSE(Allowed(cp, "y/b", "x/a", Tcp(22)));
  EXPECT_FALSE(Allowed(cp, "10.1.0.9", "x/a", Tcp(22)));  // the readable set: as before
  EXPECT_EQ(cp.Explain("198.51.100.7", "x/a", Tcp(22))->ingress.reason, "Deny by calico:x/p ingress[0]");
  EXPECT_TRUE(Allowed(cp, "198.51.100.7", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "198.51.100.7", "x/b", Tcp(22)));  // not selected by the policy
  const auto& notes = Notes(cp);
  ASSERT_EQ(notes.size(), 1u) << NoteText(cp);
  EXPECT_EQ(notes[0].where, "spec.ingress[0].source");
  EXPECT_NE(notes[0].why.find("NetworkSet x/partners: spec.nets[1]"), std::string::npos) << notes[0].why;
  EXPECT_NE(notes[0].enforced_as.find("denies every address its other criteria match"), std::string::npos);
  // Without the unreadable set: exact, no note.
  cp = Compile({p}, {});
  EXPECT_TRUE(Allowed(cp, "198.51.100.7", "x/a", Tcp(22)));
  EXPECT_FALSE(Allowed(cp, "10.1.0.9", "x/a", Tcp(22)));
  EXPECT_TRUE(Notes(cp).empty());
}

// Which selectors could select an unreadable set: exactly by its labels
// when they were read; by its scope when only that was; any when nothing.
TEST(UnreadableNetworkSet, ItCountsWhereASelectorCouldSelectIt) {
  struct Case {
    std::string what;
    NetworkSetInfo set;
    std::string kind;
    std::string source;
    bool widened;  // the Deny takes any address (and the policy says so)
  };
  const k8s::Labels partner = {{"role", "partner"}};
  const std::string by_role = R"({"selector":"role == 'partner'"})";
  const Case cases[] = {
      {"labels read, match", Unreadable("x", "s", partner, Read::kLabels), "NetworkPolicy", by_role, true},
      {"labels read, no match", Unreadable("x", "s", partner, Read::kLabels), "NetworkPolicy",
       R"({"selector":"role == 'other'"})", false},
      {"labels read, other namespace", Unreadable("y", "s", partner, Read::kLabels), "NetworkPolicy", by_role, false},
      {"labels read, namespaceSelector (pcns.*)", Unreadable("y", "s", partner, Read::kLabels), "NetworkPolicy",
       R"({"selector":"role == 'partner'","namespaceSelector":"ns == 'y'"})", true},
      {"scope x", Unreadable("x", "s", {}, Read::kScope), "NetworkPolicy", by_role, true},
      {"scope y, policy scoped to x", Unreadable("y", "s", {}, Read::kScope), "NetworkPolicy", by_role, false},
      {"scope y, all namespaces", Unreadable("y", "s", {}, Read::kScope), "NetworkPolicy",
       R"js({"selector":"role == 'partner'","namespaceSelector":"all()"})js", true},
      {"global scope, namespaced selector", Unreadable("", "g", {}, Read::kScope), "NetworkPolicy", by_role, false},
      {"global scope, global()", Unreadable("", "g", {}, Read::kScope), "NetworkPolicy",
       R"js({"namespaceSelector":"global()"})js", true},
      {"global scope, GlobalNetworkPolicy", Unreadable("", "g", {}, Read::kScope), "GlobalNetworkPolicy", by_role,
       true},
      {"global scope never has a namespace", Unreadable("", "g", {}, Read::kScope), "GlobalNetworkPolicy",
       R"js({"selector":"has(projectcalico.org/namespace)"})js", false},
      {"nothing read", Unreadable("", "", {}, Read::kNothing), "NetworkPolicy", by_role, true},
      {"readable sets are exact", NetworkSetInfo{"x", "fine", partner, {*Ipv4Cidr::Parse("10.9.0.0/16")}, {}},
       "NetworkPolicy", by_role, false},
  };
  for (const auto& c : cases) {
    auto p = XaIngress(c.kind, R"({"action":"Deny","source":)" + c.source + "}");
    auto cp = Compile({p}, {c.set});
    EXPECT_EQ(Allowed(cp, "203.0.113.9", "x/a", Tcp(80)), !c.widened) << c.what;
    EXPECT_EQ(Notes(cp).size(), c.widened ? 1u : 0u) << c.what << "\n" << NoteText(cp);
  }
}

// An Allow skips it: it allows none of the set's (unknown) addresses, and
// says so; the readable set is still allowed.
TEST(UnreadableNetworkSet, AllowSelectingItLeavesItOut) {
  auto p = XaIngress("NetworkPolicy", R"({"action":"Allow","source":{"selector":"role == 'partner'"}},
      {"action":"Deny"})");
  auto cp = Compile({p}, {Unreadable("x", "partners", {{"role", "partner"}}, Read::kLabels)});
  EXPECT_TRUE(Allowed(cp, "10.1.0.9", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "198.51.100.7", "x/a", Tcp(80)));
  ASSERT_EQ(Notes(cp).size(), 1u) << NoteText(cp);
  EXPECT_EQ(Notes(cp)[0].enforced_as, "the set is left out: the rule allows none of its addresses");
}

// A notSelector turns it round: an Allow "from anything but partners"
// cannot tell the unreadable partners' addresses apart, so it allows
// nothing (before: it allowed them); a Deny with that notSelector denies
// their addresses too.
TEST(UnreadableNetworkSet, NotSelectorAllowAllowsNothingDenyExcludesOnlyWhatIsKnown) {
  const auto set = Unreadable("", "partners", {{"role", "partner"}}, Read::kLabels);
  auto allow = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{
      "selector":"pod == 'a' && projectcalico.org/namespace == 'x'",
      "ingress":[{"action":"Allow","source":{"notSelector":"role == 'partner'"}}]}})");
  auto cp = Compile({allow}, {set});
  EXPECT_FALSE(Allowed(cp, "203.0.113.9", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "y/b", "x/a", Tcp(80)));
  ASSERT_EQ(Notes(cp).size(), 1u) << NoteText(cp);
  EXPECT_EQ(Notes(cp)[0].where, "spec.ingress[0].source.notSelector");
  EXPECT_EQ(Notes(cp)[0].enforced_as, "the rule allows nothing (any address could be the set's)");
  cp = Compile({allow}, {});
  EXPECT_TRUE(Allowed(cp, "203.0.113.9", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "10.1.0.9", "x/a", Tcp(80)));

  auto deny = XaIngress("GlobalNetworkPolicy", R"({"action":"Deny","source":{"notSelector":"role == 'partner'"}})");
  cp = Compile({deny}, {set});
  EXPECT_FALSE(Allowed(cp, "203.0.113.9", "x/a", Tcp(80)));
  EXPECT_TRUE(Allowed(cp, "10.1.0.9", "x/a", Tcp(80)));  // known partners stay excluded
  ASSERT_EQ(Notes(cp).size(), 1u) << NoteText(cp);
  EXPECT_NE(Notes(cp)[0].enforced_as.find("denies its addresses too"), std::string::npos);
}

// A Pass that could match the set passes on where it surely matches and
// denies the rest its other criteria match: passing on more would let the
// default tier's Allow through what this tier denies after the Pass.
TEST(UnreadableNetworkSet, PassPassesOnWhatIsKnownAndDeniesWhatCouldBeTheSets) {
  PolicyInputs in = NetpolWorld();
  in.tiers = {{"security", 10, false}};
  in.network_sets = {{"x", "known", {{"role", "partner"}}, {*Ipv4Cidr::Parse("10.1.0.0/16")}, {}},
                     Unreadable("x", "partners", {{"role", "partner"}}, Read::kLabels)};
  in.policies = {
      Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"security.p","namespace":"x"},"spec":{"tier":"security",
          "selector":"pod == 'a'",
          "ingress":[{"action":"Pass","protocol":"TCP","source":{"selector":"role == 'partner'"}},
          {"action":"Deny"}]}})"),
      Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"selector":"pod == 'a'",
          "ingress":[{"action":"Allow"}]}})"),
  };
  auto cp = PolicyCompiler().Compile(std::move(in));
  EXPECT_TRUE(Allowed(cp, "10.1.0.9", "x/a", Tcp(80)));  // known partner: passed on, allowed
  auto e = cp.Explain("198.51.100.7", "x/a", Tcp(80));
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->allowed);
  EXPECT_EQ(e->ingress.reason, "Deny by calico:x/security.p ingress[0] in tier security");
  EXPECT_FALSE(Allowed(cp, "10.1.0.9", "x/a", Packet::Of(Protocol::kUDP, 53)));  // not the Pass's: the Deny
  // The rule compiles to a Pass and a Deny that count into the rule's counter.
  const PodChain* chain = cp.Chain(*cp.FindPod("x/a"), Direction::kIngress);
  ASSERT_NE(chain, nullptr);
  ASSERT_GE(chain->rules.size(), 2u);
  EXPECT_EQ(chain->rules[0].action, Action::kPass);
  EXPECT_EQ(chain->rules[1].action, Action::kDeny);
  EXPECT_EQ(chain->rules[1].rule_index, 0u);
  EXPECT_EQ(chain->rules[0].counter, chain->rules[1].counter);
  const Policy& sec = cp.policies()[0];
  ASSERT_EQ(sec.name, "security.p");
  ASSERT_EQ(sec.fail_closed.size(), 1u);
  EXPECT_NE(sec.fail_closed[0].enforced_as.find("passes on what it matches without the set"), std::string::npos);
  EXPECT_TRUE(cp.policies()[1].fail_closed.empty());
}

// A network set may hold pod addresses: a Deny whose destination selector
// (our own pod's side) could select the set applies to every pod the policy
// selects.
TEST(UnreadableNetworkSet, LocalSideDenyAppliesToEveryPodItCouldHold) {
  auto p = Calico(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"p"},"spec":{
      "selector":"projectcalico.org/namespace == 'x'",
      "ingress":[{"action":"Deny","destination":{"selector":"role == 'internal'"}},{"action":"Allow"}]}})");
  auto cp = Compile({p}, {Unreadable("", "internal", {{"role", "internal"}}, Read::kLabels)});
  EXPECT_FALSE(Allowed(cp, "y/a", "x/a", Tcp(80)));
  EXPECT_FALSE(Allowed(cp, "y/a", "x/c", Tcp(80)));
  ASSERT_EQ(Notes(cp).size(), 1u) << NoteText(cp);
  EXPECT_EQ(Notes(cp)[0].where, "spec.ingress[0].destination");
  cp = Compile({p}, {});
  EXPECT_TRUE(Allowed(cp, "y/a", "x/a", Tcp(80)));
}

// What the daemon hands over: the set as far as it could be read.
TEST(UnreadableNetworkSet, ReadAsFarAsItGoes) {
  using Json = nlohmann::json;
  auto bad_cidr = NetworkSetOrUnreadable(Json::parse(R"({"metadata":{"name":"s","namespace":"x",
      "labels":{"role":"partner"}},"spec":{"nets":["198.51.100.0/24","198.51.100.0/33"]}})"));
  EXPECT_EQ(bad_cidr.read, Read::kLabels);
  EXPECT_EQ(bad_cidr.namespace_, "x");
  EXPECT_EQ(bad_cidr.labels, (k8s::Labels{{"role", "partner"}}));
  EXPECT_TRUE(bad_cidr.nets.empty());  // the first entry read is not all of them
  EXPECT_NE(bad_cidr.unreadable.find("NetworkSet x/s: spec.nets[1]"), std::string::npos) << bad_cidr.unreadable;
  auto reserved = GlobalNetworkSetOrUnreadable(
      Json::parse(R"({"metadata":{"name":"g","labels":{"projectcalico.org/namespace":"y"}},"spec":{}})"));
  EXPECT_EQ(reserved.read, Read::kLabels);  // as written: Felix would match it by them
  EXPECT_EQ(reserved.labels.at("projectcalico.org/namespace"), "y");
  auto no_meta = GlobalNetworkSetOrUnreadable(Json::parse(R"({"spec":{"nets":["10.0.0.0/8"]}})"));
  EXPECT_EQ(no_meta.read, Read::kScope);
  EXPECT_TRUE(no_meta.nets.empty());
  EXPECT_NE(no_meta.unreadable.find("metadata missing"), std::string::npos);
  auto no_ns = NetworkSetOrUnreadable(Json::parse(R"({"metadata":{"name":"s"}})"));
  EXPECT_EQ(no_ns.read, Read::kNothing);
  auto fine = NetworkSetOrUnreadable(
      Json::parse(R"({"metadata":{"name":"s","namespace":"x"},"spec":{"nets":["198.51.100.0/24"]}})"));
  EXPECT_TRUE(fine.Readable());
  EXPECT_TRUE(fine.unreadable.empty());
  EXPECT_EQ(fine.nets.size(), 1u);
}

}  // namespace
}  // namespace terway::policy
