// Random clusters and random walks of changes for policy tests: pods added,
// removed, relabelled, readdressed, moved between nodes, their ports and
// service accounts changed; namespaces relabelled, added, removed;
// Kubernetes and Calico policies added, changed, removed (Calico's rule
// model: selectors, notSelector, namespaceSelector, serviceAccounts,
// services, nets, ports and notPorts with named ports, protocols and
// notProtocol, ICMP, tiers and order); Calico's tiers, network sets,
// service accounts and services changed -- told to a World (the truth a
// full compile reads) and to an IncrementalCompiler alike.
#pragma once

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policy/calico_policy.h"
#include "policy/incremental.h"
#include "policy/k8s_policy.h"

namespace terway::policy::testing {

using Json = nlohmann::json;
inline constexpr const char* kNode = "node-1";

// A cluster the test owns: the truth the full compile reads.
struct World {
  std::map<std::string, PodInfo> pods;
  std::map<std::string, NamespaceInfo> namespaces;
  std::map<std::string, Policy> policies;
  std::vector<TierInfo> tiers;
  std::vector<NetworkSetInfo> network_sets;
  std::vector<ServiceAccountInfo> service_accounts;
  std::vector<ServiceBackends> services;

  PolicyInputs Inputs() const {
    PolicyInputs in;
    for (const auto& [k, p] : pods) in.pods.push_back(p);
    for (const auto& [k, n] : namespaces) in.namespaces.push_back(n);
    for (const auto& [k, p] : policies) in.policies.push_back(p);
    in.node_ips[kNode] = {Ipv4Addr::Parse("198.18.0.1").value()};
    in.tiers = tiers;
    in.network_sets = network_sets;
    in.service_accounts = service_accounts;
    in.services = services;
    return in;
  }
};

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
    p.service_account = Pick(std::vector<std::string>{"default", "sa-a", "sa-b"});
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
      // Half the pods are dual stack: an IPv6 of the same pool index, so
      // IPv6 addresses are reused (and unique on this node) as IPv4 ones.
      p->ipv6.reset();
      if (Chance(0.5)) p->ipv6 = Ipv6Addr::Parse(fmt::format("fd00:18:1::{:x}", a & 0xff)).value();
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
  Json CalicoEntity(bool with_ports, bool global, bool destination) {
    Json e = Json::object();
    int k = Int(0, 8);
    if (k == 1 || k == 3) e["selector"] = CalicoSelector();
    if (k == 2) e["namespaceSelector"] = Chance(0.5) ? "team == 'red'" : "all()";
    if (k == 3 && Chance(0.5)) e["namespaceSelector"] = "has(team)";
    const bool v6 = Chance(0.3);  // a rule mixing families is refused: then the policy fails closed
    if (k == 4) e["nets"] = {v6 ? (Chance(0.5) ? "fd00:18:1::/124" : "fd00:18:1::10/124")
                                : (Chance(0.5) ? "198.18.1.0/28" : "198.18.1.16/28")};
    if (k == 4 && Chance(0.4)) e["notNets"] = {v6 ? "fd00:18:1::4/126" : "198.18.1.4/30"};
    if (k == 5) e["notSelector"] = Chance(0.5) ? "app == 'db'" : "has(tier)";
    if (k == 6) {
      e["serviceAccounts"] = Chance(0.5) ? Json{{"names", {Pick(std::vector<std::string>{"sa-a", "sa-b"})}}}
                                         : Json{{"selector", "role == 'admin'"}};
    }
    if (k == 7) e["selector"] = Chance(0.5) ? "netset == 'blocked'" : "kind == 'partner'";  // network sets too
    if (k == 8) {
      e = Json::object();
      e["services"] = {{"name", Pick(std::vector<std::string>{"svc-a", "svc-b"})}};
      if (global || Chance(0.5)) e["services"]["namespace"] = Pick(namespaces);
      return e;
    }
    if (with_ports && Chance(0.5)) e["ports"] = Chance(0.5) ? Json{80, "8000:8100"} : Json{"http"};
    if (with_ports && Chance(0.2)) e["notPorts"] = Chance(0.5) ? Json{81} : Json{"dns"};
    (void)destination;
    return e;
  }
  Policy CalicoPolicy(const std::string& ns, const std::string& name, bool global) {
    Json spec;
    if (Chance(0.8)) spec["selector"] = CalicoSelector();
    if (global && Chance(0.4)) spec["namespaceSelector"] = "team == 'blue'";
    if (Chance(0.2)) spec["serviceAccountSelector"] = "role == 'admin'";
    if (Chance(0.7)) spec["order"] = Pick(std::vector<int>{10, 100, 1000, 2000});
    if (Chance(0.3)) spec["tier"] = Pick(std::vector<std::string>{"security", "platform", "missing"});
    for (const char* dir : {"ingress", "egress"}) {
      if (!Chance(0.6)) continue;
      Json rules = Json::array();
      int n = Int(1, 3);
      for (int i = 0; i < n; i++) {
        Json rule;
        rule["action"] = Pick(std::vector<std::string>{"Allow", "Allow", "Deny", "Pass", "Log"});
        bool ports = Chance(0.5);
        if (ports) rule["protocol"] = Chance(0.7) ? "TCP" : "UDP";
        if (!ports && Chance(0.15)) {
          rule["protocol"] = "ICMP";
          rule["icmp"] = Chance(0.5) ? Json{{"type", 8}} : Json{{"type", 3}, {"code", 1}};
        } else if (!ports && Chance(0.15)) {
          rule["protocol"] = "ICMPv6";
          rule["icmp"] = Chance(0.5) ? Json{{"type", 128}} : Json{{"type", 1}, {"code", 4}};
        } else if (Chance(0.1)) {
          rule["ipVersion"] = Chance(0.5) ? 4 : 6;
        }
        if (!ports && !rule.contains("protocol") && Chance(0.15)) rule["notProtocol"] = "UDP";
        const bool ingress = std::string(dir) == "ingress";
        if (Chance(0.7)) rule[ingress ? "source" : "destination"] = CalicoEntity(false, global, !ingress);
        // The destination carries the ports; for ingress it is our pod.
        if (ports || Chance(0.2)) {
          Json d = ingress ? CalicoEntity(ports, global, true) : rule.value("destination", Json::object());
          if (ports && !d.contains("ports") && !d.contains("services") && Chance(0.5)) d["ports"] = Json{53, "http"};
          if (!ports) {
            d.erase("ports");
            d.erase("notPorts");
          }
          if (!d.empty()) rule["destination"] = d;
        }
        if (ports && Chance(0.15)) {
          Json& src = rule["source"];
          if (!src.is_object()) src = Json::object();
          if (!src.contains("services")) src["ports"] = Json{"1024:65535"};
        }
        rules.push_back(rule);
      }
      spec[dir] = rules;
    }
    Json obj = {{"kind", global ? "GlobalNetworkPolicy" : "NetworkPolicy"}, {"metadata", {{"name", name}}}, {"spec", spec}};
    if (!global) obj["metadata"]["namespace"] = ns;
    // Whatever the front end makes of it, enforced as written or on the
    // safe side: both must compile alike.
    return CalicoPolicyOrFailClosed(obj);
  }

  // Calico's other objects.
  std::vector<TierInfo> Tiers() {
    std::vector<TierInfo> out;
    if (Chance(0.8)) out.push_back({"security", Pick(std::vector<double>{100, 500}), Chance(0.5)});
    if (Chance(0.8)) out.push_back({"platform", std::optional<double>(Pick(std::vector<double>{200, 600})), Chance(0.3)});
    if (Chance(0.5)) out.push_back({"default", std::nullopt, Chance(0.2)});
    return out;
  }
  std::vector<NetworkSetInfo> NetworkSets() {
    std::vector<NetworkSetInfo> out;
    auto net = [&] { return Ipv4Cidr::Parse(Pick(std::vector<std::string>{"198.18.1.0/29", "198.18.1.32/28", "10.9.0.0/16"})).value(); };
    if (Chance(0.7)) out.push_back({Pick(namespaces), "ns-set", {{"netset", Chance(0.5) ? "blocked" : "open"}}, {net()}, {}});
    if (Chance(0.7)) out.push_back({"", "global-set", {{"kind", "partner"}}, {net(), net()},
                                 Chance(0.3) ? std::vector<Ipv6Cidr>{Ipv6Cidr::Parse("fd00:18:1::/125").value()}
                                             : std::vector<Ipv6Cidr>{}});
    if (Chance(0.15)) {  // one that could not be read whole: its policies fail closed around it
      NetworkSetInfo bad{Pick(namespaces), "bad-set", {{"netset", "blocked"}}, {}, {}};
      bad.read = Pick(std::vector<NetworkSetInfo::Read>{NetworkSetInfo::Read::kLabels, NetworkSetInfo::Read::kScope,
                                                        NetworkSetInfo::Read::kNothing});
      bad.unreadable = "networkset bad-set: spec.nets[0]: not a CIDR";
      out.push_back(std::move(bad));
    }
    return out;
  }
  std::vector<ServiceAccountInfo> ServiceAccounts() {
    std::vector<ServiceAccountInfo> out;
    for (const auto& ns : namespaces) {
      for (const char* sa : {"sa-a", "sa-b"}) {
        if (Chance(0.6)) out.push_back({ns, sa, Chance(0.5) ? k8s::Labels{{"role", "admin"}} : k8s::Labels{}});
      }
    }
    return out;
  }
  std::vector<ServiceBackends> Services() {
    std::vector<ServiceBackends> out;
    for (const char* name : {"svc-a", "svc-b"}) {
      if (!Chance(0.8)) continue;
      ServiceBackends s;
      s.namespace_ = Pick(namespaces);
      s.name = name;
      int groups = Int(1, 2);
      for (int g = 0; g < groups; g++) {
        ServiceBackends::PortGroup group;
        int n = Int(0, 3);
        for (int i = 0; i < n; i++) {
          group.addresses.push_back(
              Ipv4Addr(Ipv4Addr::Parse("198.18.1.0").value().value() + static_cast<uint32_t>(Int(1, 40))));
        }
        if (Chance(0.9)) group.ports.push_back({6, static_cast<uint16_t>(Pick(std::vector<int>{80, 8080}))});
        s.groups.push_back(std::move(group));
      }
      out.push_back(std::move(s));
    }
    return out;
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
    world_.tiers = gen_.Tiers();
    world_.network_sets = gen_.NetworkSets();
    world_.service_accounts = gen_.ServiceAccounts();
    world_.services = gen_.Services();
    for (int i = 0; i < pods; i++) AddPod();
    for (int i = 0; i < policies; i++) {
      Policy p = gen_.AnyPolicy(serial_++);
      world_.policies[p.Id()] = p;
    }
    inc_.Reset(world_.Inputs());
  }

  // One random change, told to both.
  std::string Step() {
    int k = gen_.Int(0, 15);
    if (k == 14) {
      int which = gen_.Int(0, 3);
      const char* what[] = {"tiers", "network sets", "service accounts", "services"};
      if (which == 0) world_.tiers = gen_.Tiers();
      if (which == 1) world_.network_sets = gen_.NetworkSets();
      if (which == 2) world_.service_accounts = gen_.ServiceAccounts();
      if (which == 3) world_.services = gen_.Services();
      inc_.SetContext(world_.tiers, world_.network_sets, world_.service_accounts, world_.services);
      return std::string(what[which]) + " changed";
    }
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
      case 15:
        pod.service_account = gen_.Pick(std::vector<std::string>{"default", "sa-a", "sa-b"});
        inc_.UpsertPod(pod);
        return "pod " + pod.Key() + " service account changed";
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

}  // namespace terway::policy::testing
