// The incremental compiler against the full one: random walks of cluster
// changes (pods added, removed, relabelled, readdressed, moved between
// nodes, their ports changed; namespaces relabelled, added, removed;
// Kubernetes and Calico policies added, changed, removed) and, after every
// step, the incremental model must equal a full compile of the same inputs
// (chains and their rules, set contents, map elements, counters, names),
// and the change it reported must turn the previous model into the new one.
// Plus: the work a change costs stays proportional to it.
#include "policy/incremental.h"

#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/calico_policy.h"
#include "policy/k8s_policy.h"

namespace terway::policy {
namespace {

using Json = nlohmann::json;
constexpr const char* kNode = "node-1";

// A cluster the test owns: the truth the full compile reads.
struct World {
  std::map<std::string, PodInfo> pods;
  std::map<std::string, NamespaceInfo> namespaces;
  std::map<std::string, Policy> policies;

  PolicyInputs Inputs() const {
    PolicyInputs in;
    for (const auto& [k, p] : pods) in.pods.push_back(p);
    for (const auto& [k, n] : namespaces) in.namespaces.push_back(n);
    for (const auto& [k, p] : policies) in.policies.push_back(p);
    in.node_ips[kNode] = {Ipv4Addr::Parse("198.18.0.1").value()};
    return in;
  }
};

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

// Random cluster objects from a small vocabulary, so selectors match often.
class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[static_cast<size_t>(Int(0, static_cast<int>(v.size()) - 1))]; }

  const std::vector<std::string> namespaces = {"ns-a", "ns-b", "ns-c", "ns-d"};
  const std::vector<std::string> apps = {"web", "db", "cache"};
  const std::vector<std::string> tiers = {"front", "back"};

  k8s::Labels PodLabels() {
    k8s::Labels l;
    if (Chance(0.85)) l["app"] = Pick(apps);
    if (Chance(0.5)) l["tier"] = Pick(tiers);
    if (Chance(0.2)) l["role"] = "probe";
    return l;
  }
  k8s::Labels NamespaceLabels() {
    k8s::Labels l;
    if (Chance(0.7)) l["team"] = Chance(0.5) ? "red" : "blue";
    if (Chance(0.3)) l["env"] = "prod";
    return l;
  }

  PodInfo Pod(const std::string& ns, const std::string& name) {
    PodInfo p;
    p.namespace_ = ns;
    p.name = name;
    p.labels = PodLabels();
    p.node = Chance(0.65) ? kNode : "node-2";
    p.host_network = Chance(0.05);
    Ports(&p);
    return p;
  }
  // A small pool: addresses are reused, and a pod of another node may still
  // show an address this node handed out again (a stale status.podIP).
  // Some pods have none yet (pending). Two pods of this node never share
  // one: terwayd's ledger gives an address to one pod at a time.
  void Readdress(PodInfo* p, const std::set<uint32_t>& local_taken) {
    if (Chance(0.1)) {
      p->ip.reset();
      return;
    }
    for (;;) {
      uint32_t a = Ipv4Addr::Parse("198.18.1.0").value().value() + static_cast<uint32_t>(Int(1, 40));
      if (p->node == kNode && local_taken.count(a)) continue;
      p->ip = Ipv4Addr(a);
      return;
    }
  }
  void Ports(PodInfo* p) {
    p->ports.clear();
    if (Chance(0.6)) p->ports.push_back({"http", Pick(std::vector<int>{80, 8080, 8081}), "TCP"});
    if (Chance(0.3)) p->ports.push_back({"dns", 53, "UDP"});
  }

  Json MatchLabels(const char* key, const std::string& v) { return {{"matchLabels", {{key, v}}}}; }
  Json K8sPodSelector() {
    int k = Int(0, 4);
    if (k == 0) return Json::object();
    if (k == 1) return MatchLabels("tier", Pick(tiers));
    if (k == 2) {
      return {{"matchExpressions", {{{"key", "app"}, {"operator", Chance(0.5) ? "In" : "NotIn"},
                                     {"values", {Pick(apps), Pick(apps)}}}}}};
    }
    return MatchLabels("app", Pick(apps));
  }
  Json K8sPeer() {
    int k = Int(0, 4);
    Json peer;
    if (k == 0) {
      peer["ipBlock"]["cidr"] = Chance(0.5) ? "198.18.1.0/27" : "198.18.0.0/16";
      if (Chance(0.5)) peer["ipBlock"]["except"] = {"198.18.1.8/29"};
      return peer;
    }
    if (k != 2) peer["podSelector"] = K8sPodSelector();
    if (k >= 2) peer["namespaceSelector"] = Chance(0.3) ? Json::object() : MatchLabels("team", Chance(0.5) ? "red" : "blue");
    return peer;
  }
  Json K8sPorts() {
    Json ports = Json::array();
    int n = Int(0, 2);
    for (int i = 0; i < n; i++) {
      int k = Int(0, 3);
      if (k == 0) ports.push_back({{"protocol", "TCP"}, {"port", "http"}});  // named
      else if (k == 1) ports.push_back({{"protocol", "UDP"}, {"port", 53}});
      else if (k == 2) ports.push_back({{"protocol", "TCP"}, {"port", 8000}, {"endPort", 8100}});
      else ports.push_back({{"protocol", "SCTP"}});
    }
    return ports;
  }
  Policy K8sPolicy(const std::string& ns, const std::string& name) {
    Json spec;
    spec["podSelector"] = K8sPodSelector();
    for (const char* dir : {"ingress", "egress"}) {
      if (!Chance(0.6)) continue;
      Json rules = Json::array();
      int n = Int(0, 2);
      for (int i = 0; i < n; i++) {
        Json rule = Json::object();
        if (Chance(0.8)) {
          Json peers = Json::array();
          int m = Int(1, 2);
          for (int j = 0; j < m; j++) peers.push_back(K8sPeer());
          rule[std::string(dir) == "ingress" ? "from" : "to"] = peers;
        }
        if (Chance(0.6)) rule["ports"] = K8sPorts();
        rules.push_back(rule);
      }
      spec[dir] = rules;
    }
    if (Chance(0.3)) spec["policyTypes"] = Chance(0.5) ? Json{"Ingress"} : Json{"Ingress", "Egress"};
    Json obj = {{"apiVersion", "networking.k8s.io/v1"}, {"kind", "NetworkPolicy"},
                {"metadata", {{"name", name}, {"namespace", ns}}}, {"spec", spec}};
    auto np = k8s::ParseNetworkPolicy(obj);
    EXPECT_TRUE(np.ok()) << obj.dump();
    auto p = PolicyFromK8s(*np);
    EXPECT_TRUE(p.ok()) << obj.dump() << ": " << p.error().ToString();
    return *p;
  }

  std::string CalicoSelector() {
    int k = Int(0, 5);
    if (k == 0) return "all()";
    if (k == 1) return fmt::format("app == '{}'", Pick(apps));
    if (k == 2) return "has(tier)";
    if (k == 3) return fmt::format("app in {{'{}', '{}'}} && !has(role)", Pick(apps), Pick(apps));
    if (k == 4) return fmt::format("tier != '{}'", Pick(tiers));
    return fmt::format("projectcalico.org/namespace == '{}'", Pick(namespaces));
  }
  Json CalicoEntity(bool with_ports) {
    Json e = Json::object();
    int k = Int(0, 4);
    if (k == 1 || k == 3) e["selector"] = CalicoSelector();
    if (k == 2) e["namespaceSelector"] = Chance(0.5) ? "team == 'red'" : "all()";
    if (k == 3 && Chance(0.5)) e["namespaceSelector"] = "has(team)";
    if (k == 4) e["nets"] = {Chance(0.5) ? "198.18.1.0/28" : "198.18.1.16/28"};
    if (k == 4 && Chance(0.4)) e["notNets"] = {"198.18.1.4/30"};
    if (with_ports && Chance(0.5)) e["ports"] = Chance(0.5) ? Json{80, "8000:8100"} : Json{"http"};
    return e;
  }
  Policy CalicoPolicy(const std::string& ns, const std::string& name, bool global) {
    Json spec;
    if (Chance(0.8)) spec["selector"] = CalicoSelector();
    if (global && Chance(0.4)) spec["namespaceSelector"] = "team == 'blue'";
    if (Chance(0.7)) spec["order"] = Pick(std::vector<int>{10, 100, 1000, 2000});
    for (const char* dir : {"ingress", "egress"}) {
      if (!Chance(0.6)) continue;
      Json rules = Json::array();
      int n = Int(1, 3);
      for (int i = 0; i < n; i++) {
        Json rule;
        rule["action"] = Pick(std::vector<std::string>{"Allow", "Allow", "Deny", "Pass", "Log"});
        bool ports = Chance(0.5);
        if (ports) rule["protocol"] = Chance(0.7) ? "TCP" : "UDP";
        const bool ingress = std::string(dir) == "ingress";
        if (Chance(0.7)) rule[ingress ? "source" : "destination"] = CalicoEntity(false);
        // The destination carries the ports; for ingress it is our pod.
        if (ports || Chance(0.2)) {
          Json d = ingress ? CalicoEntity(ports) : rule.value("destination", Json::object());
          if (ports && !d.contains("ports") && Chance(0.5)) d["ports"] = Json{53, "http"};
          if (!ports) d.erase("ports");
          if (!d.empty()) rule["destination"] = d;
        }
        rules.push_back(rule);
      }
      spec[dir] = rules;
    }
    Json obj = {{"kind", global ? "GlobalNetworkPolicy" : "NetworkPolicy"}, {"metadata", {{"name", name}}}, {"spec", spec}};
    if (!global) obj["metadata"]["namespace"] = ns;
    auto p = PolicyFromCalico(obj);
    EXPECT_TRUE(p.ok()) << obj.dump() << ": " << p.error().ToString();
    return *p;
  }

  Policy AnyPolicy(int serial) {
    const std::string ns = Pick(namespaces), name = fmt::format("p{}", serial);
    int k = Int(0, 5);
    if (k <= 2) return K8sPolicy(ns, name);
    return CalicoPolicy(ns, name, k == 5);
  }

 private:
  std::mt19937 rng_;
};

// Drives a world and the incremental compiler through the same changes.
class Walk {
 public:
  explicit Walk(uint32_t seed) : gen_(seed), inc_({kNode}) {}

  void Start(int pods, int policies) {
    for (const auto& ns : gen_.namespaces) world_.namespaces[ns] = {ns, gen_.NamespaceLabels()};
    for (int i = 0; i < pods; i++) AddPod();
    for (int i = 0; i < policies; i++) {
      Policy p = gen_.AnyPolicy(serial_++);
      world_.policies[p.Id()] = p;
    }
    inc_.Reset(world_.Inputs());
  }

  // One random change, told to both.
  std::string Step() {
    int k = gen_.Int(0, 13);
    if (k == 0 || world_.pods.empty()) return AddPod(), "pod added";
    auto pod_it = std::next(world_.pods.begin(), gen_.Int(0, static_cast<int>(world_.pods.size()) - 1));
    PodInfo& pod = pod_it->second;
    switch (k) {
      case 1: {
        std::string key = pod.Key();
        world_.pods.erase(pod_it);
        inc_.RemovePod(key);
        return "pod " + key + " removed";
      }
      case 2:
      case 3:
        pod.labels = gen_.PodLabels();
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " relabelled";
      case 4:
        gen_.Readdress(&pod, LocalAddresses(pod.Key()));
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " readdressed";
      case 5:
        pod.node = pod.node == kNode ? "node-2" : kNode;
        if (pod.node == kNode) gen_.Readdress(&pod, LocalAddresses(pod.Key()));
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " moved";
      case 6:
        gen_.Ports(&pod);
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " ports changed";
      case 7: {
        const std::string ns = gen_.Pick(gen_.namespaces);
        if (world_.namespaces.count(ns) && gen_.Chance(0.2)) {
          world_.namespaces.erase(ns);
          inc_.RemoveNamespace(ns);
          return "namespace " + ns + " removed";
        }
        world_.namespaces[ns] = {ns, gen_.NamespaceLabels()};
        inc_.UpsertNamespace(world_.namespaces[ns]);
        return "namespace " + ns + " relabelled";
      }
      case 8:
      case 9: {
        Policy p = gen_.AnyPolicy(serial_++);
        world_.policies[p.Id()] = p;
        inc_.UpsertPolicy(p);
        return "policy " + p.Id() + " added";
      }
      case 10: {
        if (world_.policies.empty()) return "nothing";
        auto it = std::next(world_.policies.begin(), gen_.Int(0, static_cast<int>(world_.policies.size()) - 1));
        // Same identity, new content (kind and namespace kept).
        Policy old = it->second;
        Policy p = old.kind == Policy::Kind::kK8s ? gen_.K8sPolicy(old.namespace_, old.name)
                                                  : gen_.CalicoPolicy(old.namespace_, old.name,
                                                                      old.kind == Policy::Kind::kCalicoGlobal);
        it->second = p;
        inc_.UpsertPolicy(p);
        return "policy " + p.Id() + " changed";
      }
      case 11: {
        if (world_.policies.empty()) return "nothing";
        auto it = std::next(world_.policies.begin(), gen_.Int(0, static_cast<int>(world_.policies.size()) - 1));
        std::string id = it->first;
        world_.policies.erase(it);
        inc_.RemovePolicy(id);
        return "policy " + id + " removed";
      }
      default:
        pod.host_network = !pod.host_network && gen_.Chance(0.3);
        pod.labels = gen_.PodLabels();
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " relabelled (host network " + (pod.host_network ? "on)" : "off)");
    }
  }

  World& world() { return world_; }
  IncrementalCompiler& inc() { return inc_; }
  Generator& gen() { return gen_; }

 private:
  std::set<uint32_t> LocalAddresses(const std::string& except) const {
    std::set<uint32_t> out;
    for (const auto& [key, p] : world_.pods) {
      if (key != except && p.node == kNode && p.ip) out.insert(p.ip->value());
    }
    return out;
  }
  void AddPod() {
    PodInfo p = gen_.Pod(gen_.Pick(gen_.namespaces), fmt::format("pod{}", serial_++));
    gen_.Readdress(&p, LocalAddresses(p.Key()));
    world_.pods[p.Key()] = p;
    inc_.UpsertPod(p);
  }

  Generator gen_;
  World world_;
  IncrementalCompiler inc_;
  int serial_ = 0;
};

NftModel FullCompile(const World& w) { return CanonicalModelOf(PolicyCompiler({kNode}).Compile(w.Inputs())); }

// The oracle: after every step, incremental == full compile, and the
// reported change turns the previous model into the current one.
TEST(IncrementalCompiler, EveryStepOfRandomWalksEqualsAFullCompile) {
  int steps_total = 0, nonempty_changes = 0;
  for (uint32_t seed = 1; seed <= 24; seed++) {
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
