// The NetworkPolicy benchmark's synthetic cluster (bench/policy_bench.cc),
// as API objects and as the compiler's inputs.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/ip.h"
#include "k8s/types.h"
#include "policy/compiler.h"
#include "policy/k8s_policy.h"

namespace terway::bench {

using Json = nlohmann::json;

using SteadyClock = std::chrono::steady_clock;
inline constexpr const char* kNode = "bench-node";
inline constexpr int kNamespaces = 50;

inline double MsSince(SteadyClock::time_point t) { return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count(); }

inline Ipv4Addr SynthIp(int i) { return Ipv4Addr(Ipv4Addr::Parse("198.19.64.0").value().value() + 1 + static_cast<uint32_t>(i)); }

// The synthetic cluster as API objects: namespaces ns0..ns49 (team=t0..t4),
// pods p<i> (app=a0..a9, tier=t0..t2), and policies np<k> that each select
// one app of their namespace and allow it from another app of the namespace
// or from a tier of a team's namespaces, on one port; every fourth also
// limits egress to an ipBlock. The benchmark's two real pods live in
// namespace "bench": the server is selected by ten policies, one of which
// allows the client on the iperf3 and connection-rate ports.
struct SynthCluster {
  std::vector<Json> namespaces, pods, policies;
};

inline SynthCluster MakeCluster(int pods, int policies, Ipv4Addr client_ip, Ipv4Addr server_ip) {
  SynthCluster c;
  for (int n = 0; n < kNamespaces; n++) {
    c.namespaces.push_back({{"apiVersion", "v1"}, {"kind", "Namespace"},
                            {"metadata", {{"name", fmt::format("ns{}", n)},
                                          {"labels", {{"team", fmt::format("t{}", n % 5)}}}}}});
  }
  c.namespaces.push_back({{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "bench"}}}});
  auto pod = [](const std::string& ns, const std::string& name, Json labels, Ipv4Addr ip) {
    return Json{{"apiVersion", "v1"}, {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
                {"spec", {{"nodeName", kNode},
                          {"containers", {{{"name", "c"}, {"image", "busybox"},
                                           {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}},
                {"status", {{"phase", "Running"}, {"podIP", ip.ToString()}}}};
  };
  for (int i = 0; i < pods; i++) {
    c.pods.push_back(pod(fmt::format("ns{}", i % kNamespaces), fmt::format("p{}", i),
                         {{"app", fmt::format("a{}", i % 10)}, {"tier", fmt::format("t{}", i % 3)}}, SynthIp(i)));
  }
  c.pods.push_back(pod("bench", "client", {{"app", "client"}}, client_ip));
  c.pods.push_back(pod("bench", "server", {{"app", "server"}}, server_ip));
  auto selector = [](const char* key, const std::string& value) {
    Json s;
    s["matchLabels"][key] = value;
    return s;
  };
  auto port = [](const char* proto, int number) { return Json{{"protocol", proto}, {"port", number}}; };
  auto policy = [](const std::string& ns, const std::string& name, Json spec) {
    Json p;
    p["apiVersion"] = "networking.k8s.io/v1";
    p["kind"] = "NetworkPolicy";
    p["metadata"]["name"] = name;
    p["metadata"]["namespace"] = ns;
    p["spec"] = std::move(spec);
    return p;
  };
  for (int k = 0; k < policies; k++) {
    Json spec;
    spec["podSelector"] = selector("app", fmt::format("a{}", (k / kNamespaces) % 10));
    Json same_ns_peer, team_peer;
    same_ns_peer["podSelector"] = selector("app", fmt::format("a{}", (k / kNamespaces + 1) % 10));
    team_peer["namespaceSelector"] = selector("team", fmt::format("t{}", k % 5));
    team_peer["podSelector"] = selector("tier", fmt::format("t{}", k % 3));
    Json rule;
    rule["from"] = Json::array({same_ns_peer, team_peer});
    rule["ports"] = Json::array({port("TCP", 8000 + k % 100)});
    spec["ingress"] = Json::array({rule});
    if (k % 4 == 0) {
      Json block, to, eg;
      block["ipBlock"]["cidr"] = "198.19.0.0/16";
      block["ipBlock"]["except"] = Json::array({"198.19.255.0/24"});
      eg["to"] = Json::array({block});
      eg["ports"] = Json::array({port("UDP", 53)});
      spec["policyTypes"] = Json::array({"Ingress", "Egress"});
      spec["egress"] = Json::array({eg});
    }
    c.policies.push_back(policy(fmt::format("ns{}", k % kNamespaces), fmt::format("np{}", k), spec));
  }
  for (int k = 0; k < 10; k++) {
    Json peer, rule, spec;
    peer["podSelector"] = selector("app", k == 9 ? std::string("client") : fmt::format("other{}", k));
    rule["from"] = Json::array({peer});
    rule["ports"] = k == 9 ? Json::array({port("TCP", 5201), port("TCP", 5301)}) : Json::array({port("TCP", 9000 + k)});
    spec["podSelector"] = selector("app", "server");
    spec["ingress"] = Json::array({rule});
    c.policies.push_back(policy("bench", fmt::format("server-{}", k), spec));
  }
  // Label-change probe: UDP 7000 on the server from pods labelled access=granted.
  {
    Json peer, rule, spec;
    peer["podSelector"] = selector("access", "granted");
    rule["from"] = Json::array({peer});
    rule["ports"] = Json::array({port("UDP", 7000)});
    spec["podSelector"] = selector("app", "server");
    spec["ingress"] = Json::array({rule});
    c.policies.push_back(policy("bench", "grant", spec));
  }
  return c;
}

inline Result<policy::PolicyInputs> InputsOf(const SynthCluster& c) {
  policy::PolicyInputs in;
  for (const auto& n : c.namespaces) {
    TERWAY_ASSIGN_OR_RETURN(auto ns, k8s::ParseNamespace(n));
    in.namespaces.push_back(policy::NamespaceFromK8s(ns));
  }
  for (const auto& p : c.pods) {
    TERWAY_ASSIGN_OR_RETURN(auto pod, k8s::ParsePod(p));
    in.pods.push_back(policy::PodFromK8s(pod));
  }
  for (const auto& p : c.policies) {
    TERWAY_ASSIGN_OR_RETURN(auto np, k8s::ParseNetworkPolicy(p));
    TERWAY_ASSIGN_OR_RETURN(auto pol, policy::PolicyFromK8s(np));
    in.policies.push_back(std::move(pol));
  }
  return in;
}

}  // namespace terway::bench
