// The incremental compiler against the full one: random walks of cluster
// changes (pods added, removed, relabelled, readdressed, moved between
// nodes, their ports changed; namespaces relabelled, added, removed;
// Kubernetes and Calico policies added, changed, removed) and, after every
// step, the incremental model must equal a full compile of the same inputs
// (chains and their rules, set contents, map elements, counters, names),
// and the change it reported must turn the previous model into the new one.
// Plus: the work a change costs stays proportional to it.
#include "policy/incremental.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/calico_policy.h"
#include "policy/k8s_policy.h"
#include "unit/policy/random_world.h"

namespace terway::policy {
namespace {

using Json = nlohmann::json;
using testing::Generator;
using testing::kNode;
using testing::Walk;
using testing::World;

// Where two models differ, a few names of each kind.
std::string Differences(const NftModel& got, const NftModel& want) {
  NftModelChange c = ChangeBetween(want, got);
  std::string out;
  auto list = [&](const char* what, const auto& from, const auto& to) {
    int n = 0;
    for (const auto& [name, v] : from) {
      if (n++ < 3) out += fmt::format("  {} {}: full compile has it{}\n", what, name, to.count(name) ? ", different" : "");
    }
    for (const auto& [name, v] : to) {
      if (!from.count(name) && n++ < 6) out += fmt::format("  {} {}: only the incremental model has it\n", what, name);
    }
  };
  list("set", c.from.sets, c.to.sets);
  list("chain", c.from.chains, c.to.chains);
  list("ingress element", c.from.ingress, c.to.ingress);
  list("egress element", c.from.egress, c.to.egress);
  for (const auto& name : c.from.counters) out += "  counter " + name + ": only the full compile has it\n";
  for (const auto& name : c.to.counters) out += "  counter " + name + ": only the incremental model has it\n";
  for (const auto& [name, rules] : c.from.chains) {
    auto it = c.to.chains.find(name);
    if (it == c.to.chains.end()) continue;
    out += "  chain " + name + " full:\n";
    for (const auto& r : rules) out += "    " + r + "\n";
    out += "  incremental:\n";
    for (const auto& r : it->second) out += "    " + r + "\n";
    break;
  }
  for (const auto& [name, elems] : c.from.sets) {
    auto it = c.to.sets.find(name);
    if (it != c.to.sets.end()) out += fmt::format("  set {} full: {{{}}} incremental: {{{}}}\n", name, elems, it->second);
  }
  return out;
}

NftModel FullCompile(const World& w) { return CanonicalModelOf(PolicyCompiler({kNode}).Compile(w.Inputs())); }

// The oracle: after every step, incremental == full compile, and the
// reported change turns the previous model into the current one.
TEST(IncrementalCompiler, EveryStepOfRandomWalksEqualsAFullCompile) {
  int steps_total = 0, nonempty_changes = 0;
  // More walks on demand: TERWAY_INCREMENTAL_SEEDS=500.
  const char* more = std::getenv("TERWAY_INCREMENTAL_SEEDS");
  const uint32_t seeds = more ? static_cast<uint32_t>(std::atoi(more)) : 24;
  for (uint32_t seed = 1; seed <= seeds; seed++) {
    Walk walk(seed);
    walk.Start(18, 10);
    NftModel applied;
    auto first = walk.inc().Update();
    ASSERT_TRUE(first.ok()) << first.error().ToString();
    ApplyChange(*first, &applied);
    ASSERT_EQ(walk.inc().model(), FullCompile(walk.world())) << "seed " << seed << " at start\n"
                                                              << Differences(walk.inc().model(), FullCompile(walk.world()));
    ASSERT_EQ(applied, walk.inc().model());
    for (int step = 0; step < 60; step++) {
      // Sometimes several changes reach one update (a burst coalesced).
      std::string what = walk.Step();
      int more = walk.gen().Chance(0.25) ? walk.gen().Int(1, 4) : 0;
      for (int i = 0; i < more; i++) what += "; " + walk.Step();
      auto change = walk.inc().Update();
      ASSERT_TRUE(change.ok()) << "seed " << seed << " step " << step << " (" << what << "): " << change.error().ToString();
      ApplyChange(*change, &applied);
      NftModel want = FullCompile(walk.world());
      ASSERT_EQ(walk.inc().model(), want) << "seed " << seed << " step " << step << " (" << what << ")\n"
                                          << Differences(walk.inc().model(), want);
      ASSERT_EQ(applied, want) << "seed " << seed << " step " << step << " (" << what
                               << "): the reported change does not lead to the model";
      steps_total++;
      if (!change->empty()) nonempty_changes++;
    }
  }
  // The walks did exercise the model (not a vacuous pass over empty tables).
  EXPECT_GT(nonempty_changes, steps_total / 3);
}

// A world where every kind of dependency is present on purpose: egress named
// ports (rules that follow peers), Calico rules on the local pod's nets,
// ipBlocks around pod addresses, namespace selectors.
TEST(IncrementalCompiler, NamedPortsLocalNetsAndAddressReuseFollowTheFullCompile) {
  World w;
  IncrementalCompiler inc({kNode});
  w.namespaces["x"] = {"x", {{"team", "red"}}};
  w.namespaces["y"] = {"y", {{"team", "blue"}}};
  auto pod = [&](const std::string& ns, const std::string& name, const char* ip, k8s::Labels l, const char* node,
                 int http) {
    PodInfo p;
    p.namespace_ = ns;
    p.name = name;
    p.labels = std::move(l);
    p.ip = Ipv4Addr::Parse(ip).value();
    p.node = node;
    if (http) p.ports.push_back({"http", http, "TCP"});
    w.pods[p.Key()] = p;
    return p;
  };
  pod("x", "web", "198.18.1.1", {{"app", "web"}}, kNode, 80);
  pod("x", "client", "198.18.1.2", {{"app", "client"}}, kNode, 0);
  pod("y", "api", "198.18.1.3", {{"app", "web"}}, "node-2", 8080);
  Generator g(7);
  auto k8s = [](const std::string& text) {
    auto np = k8s::ParseNetworkPolicy(Json::parse(text));
    EXPECT_TRUE(np.ok());
    return PolicyFromK8s(*np).value();
  };
  auto calico = [](const std::string& text) { return PolicyFromCalico(Json::parse(text)).value(); };
  for (const Policy& p : {
           // Egress to web pods anywhere on their "http" port: a rule per number.
           k8s(R"({"metadata":{"name":"to-web","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"client"}},
               "policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"app":"web"}},
               "namespaceSelector":{}}],"ports":[{"protocol":"TCP","port":"http"}]}]}})"),
           // Only for pods whose own address is in 198.18.1.0/31.
           calico(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"local-nets"},"spec":{"selector":"all()",
               "ingress":[{"action":"Allow","source":{"selector":"app == 'client'","namespaceSelector":"all()"},
               "destination":{"nets":["198.18.1.0/31"]}}]}})js"),
           // An ipBlock holding pod addresses, and pods it also names.
           k8s(R"({"metadata":{"name":"block","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
               "ingress":[{"from":[{"ipBlock":{"cidr":"198.18.1.0/30","except":["198.18.1.2/32"]}},
               {"namespaceSelector":{"matchLabels":{"team":"blue"}}}]}]}})"),
       }) {
    w.policies[p.Id()] = p;
  }
  inc.Reset(w.Inputs());
  auto check = [&](const std::string& what) {
    auto c = inc.Update();
    ASSERT_TRUE(c.ok()) << what << ": " << c.error().ToString();
    NftModel want = FullCompile(w);
    ASSERT_EQ(inc.model(), want) << what << "\n" << Differences(inc.model(), want);
  };
  check("start");
  ASSERT_TRUE(inc.model().chains.size() >= 3u);
  // A remote web pod declares another number for "http": the client's
  // egress chain gains a rule.
  PodInfo& api = w.pods["y/api"];
  api.ports = {{"http", 9090, "TCP"}};
  inc.UpsertPod(api);
  check("remote named port changed");
  // The address of x/client goes to a new pod in y (blue: inside the ipBlock
  // peer's namespace selector too); x/client leaves.
  PodInfo moved = w.pods["x/client"];
  w.pods.erase("x/client");
  inc.RemovePod("x/client");
  pod("y", "newcomer", "198.18.1.2", {{"app", "client"}}, "node-2", 0);
  inc.UpsertPod(w.pods["y/newcomer"]);
  check("address reused by another pod in one update");
  // A namespace turns blue: its pods join the ipBlock rule's peers.
  w.namespaces["x"].labels = {{"team", "blue"}};
  inc.UpsertNamespace(w.namespaces["x"]);
  check("namespace relabelled");
  // The web pod moves to an address outside the local-nets rule's nets.
  w.pods["x/web"].ip = Ipv4Addr::Parse("198.18.1.9").value();
  inc.UpsertPod(w.pods["x/web"]);
  check("local pod readdressed");
  (void)moved;
  (void)g;
}

// What a change costs: a remote pod's label change compiles no chain, a
// local pod's compiles its own, a namespaced policy the pods of its
// namespace at most -- not every pod on the node.
TEST(IncrementalCompiler, AChangeCompilesWhatItTouches) {
  World w;
  for (const char* ns : {"a", "b", "c"}) w.namespaces[ns] = {ns, {}};
  int ip = 1;
  for (const char* ns : {"a", "b", "c"}) {
    for (int i = 0; i < 10; i++) {
      PodInfo p;
      p.namespace_ = ns;
      p.name = fmt::format("p{}", i);
      p.labels = {{"app", i % 2 ? "web" : "db"}};
      p.ip = Ipv4Addr(Ipv4Addr::Parse("198.18.1.0").value().value() + static_cast<uint32_t>(ip++));
      p.node = i < 8 ? kNode : "node-2";
      w.pods[p.Key()] = p;
    }
  }
  auto allow_from = [](const std::string& ns, const std::string& name, const std::string& app) {
    auto np = k8s::ParseNetworkPolicy(Json::parse(fmt::format(
        R"({{"metadata":{{"name":"{}","namespace":"{}"}},"spec":{{"podSelector":{{"matchLabels":{{"app":"web"}}}},
        "ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"app":"{}"}}}},"namespaceSelector":{{}}}}]}}]}}}})",
        name, ns, app)));
    EXPECT_TRUE(np.ok());
    return PolicyFromK8s(*np).value();
  };
  for (const char* ns : {"a", "b", "c"}) {
    Policy p = allow_from(ns, "from-db", "db");
    w.policies[p.Id()] = p;
  }
  IncrementalCompiler inc({kNode});
  inc.Reset(w.Inputs());
  ASSERT_TRUE(inc.Update().ok());
  EXPECT_TRUE(inc.last_work().rebuilt);
  EXPECT_EQ(inc.last_work().fragments, 24u);  // every local pod, once

  // A remote pod turns db: sets change, no chain is compiled.
  w.pods["b/p9"].labels = {{"app", "db"}};
  inc.UpsertPod(w.pods["b/p9"]);
  auto c = inc.Update();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(inc.model(), FullCompile(w));
  EXPECT_EQ(inc.last_work().fragments, 0u);
  EXPECT_EQ(inc.last_work().probed_pods, 1u);
  EXPECT_EQ(inc.last_work().recomputed_sets, 0u);  // no set computed against every pod
  EXPECT_FALSE(c->to.sets.empty());
  EXPECT_TRUE(c->to.chains.empty());

  // A local pod relabelled: its own chains only.
  w.pods["a/p1"].labels = {{"app", "db"}};
  inc.UpsertPod(w.pods["a/p1"]);
  ASSERT_TRUE(inc.Update().ok());
  EXPECT_EQ(inc.model(), FullCompile(w));
  EXPECT_EQ(inc.last_work().fragments, 1u);

  // A policy of namespace c: at most c's local pods.
  Policy more = allow_from("c", "from-web", "web");
  w.policies[more.Id()] = more;
  inc.UpsertPolicy(more);
  ASSERT_TRUE(inc.Update().ok());
  EXPECT_EQ(inc.model(), FullCompile(w));
  EXPECT_LE(inc.last_work().fragments, 8u);
  EXPECT_GT(inc.last_work().fragments, 0u);

  // Nothing pending: nothing done, nothing changed.
  auto none = inc.Update();
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(inc.last_work().compiles, 0u);
}

TEST(IncrementalCompiler, CanonicalModelLeavesOutSetsNoRuleReads) {
  // An allow-all rule first makes a later rule unreachable: the compiler
  // prunes the rule, but made its set; nothing reads it.
  PolicyInputs in;
  in.namespaces = {{"x", {}}};
  PodInfo p;
  p.namespace_ = "x";
  p.name = "a";
  p.labels = {{"app", "a"}};
  p.ip = Ipv4Addr::Parse("198.18.1.1").value();
  p.node = kNode;
  in.pods = {p};
  in.policies = {PolicyFromCalico(Json::parse(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},
      "spec":{"ingress":[{"action":"Allow"},{"action":"Allow","source":{"selector":"app == 'a'"}}]}})")).value()};
  CompiledPolicy cp = PolicyCompiler({kNode}).Compile(in);
  ASSERT_EQ(ModelOf(cp).sets.size(), 1u);
  EXPECT_TRUE(CanonicalModelOf(cp).sets.empty());
  EXPECT_EQ(CanonicalModelOf(cp).chains, ModelOf(cp).chains);
}

}  // namespace
}  // namespace terway::policy
