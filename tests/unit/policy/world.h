// The upstream Kubernetes NetworkPolicy e2e world as data: namespaces x, y, z
// (labelled ns=<name>), pods a, b, c in each (labelled pod=<name>) serving
// ports 80 and 81 over TCP, UDP and SCTP under the upstream names
// serve-<port>-<proto>. Policies come from JSON, through the same parsers the
// daemon uses.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "k8s/types.h"
#include "policy/calico_policy.h"
#include "policy/compiler.h"
#include "policy/k8s_policy.h"

namespace terway::policy::testing {

inline const std::vector<std::string> kNamespaces = {"x", "y", "z"};
inline const std::vector<std::string> kPods = {"a", "b", "c"};

// x/a = 198.18.1.1, x/b = 198.18.1.2, ..., z/c = 198.18.3.3
inline std::string PodIp(const std::string& ns, const std::string& pod) {
  return "198.18." + std::to_string(ns[0] - 'x' + 1) + "." + std::to_string(pod[0] - 'a' + 1);
}

inline PolicyInputs NetpolWorld() {
  PolicyInputs in;
  for (const auto& ns : kNamespaces) {
    in.namespaces.push_back({ns, {{"ns", ns}}});
    for (const auto& pod : kPods) {
      PodInfo p;
      p.namespace_ = ns;
      p.name = pod;
      p.labels = {{"pod", pod}};
      p.ip = Ipv4Addr::Parse(PodIp(ns, pod)).value();
      p.node = "node-1";
      for (int port : {80, 81}) {
        for (const char* proto : {"TCP", "UDP", "SCTP"}) {
          std::string lower = proto;
          for (auto& c : lower) c = static_cast<char>(std::tolower(c));
          p.ports.push_back({"serve-" + std::to_string(port) + "-" + lower, port, proto});
        }
      }
      in.pods.push_back(std::move(p));
    }
  }
  in.node_ips["node-1"] = {Ipv4Addr::Parse("198.18.0.1").value()};
  return in;
}

// The same world, dual stack: x/a = fd00:18:1::1, ..., z/c = fd00:18:3::3.
inline std::string PodIp6(const std::string& ns, const std::string& pod) {
  return "fd00:18:" + std::to_string(ns[0] - 'x' + 1) + "::" + std::to_string(pod[0] - 'a' + 1);
}

inline PolicyInputs DualStackWorld() {
  PolicyInputs in = NetpolWorld();
  for (auto& p : in.pods) p.ipv6 = Ipv6Addr::Parse(PodIp6(p.namespace_, p.name)).value();
  return in;
}

inline Policy K8s(const std::string& json_text) {
  auto np = k8s::ParseNetworkPolicy(nlohmann::json::parse(json_text));
  EXPECT_TRUE(np.ok()) << np.error().ToString();
  auto p = PolicyFromK8s(*np);
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return *p;
}

inline Policy Calico(const std::string& json_text) {
  auto p = PolicyFromCalico(nlohmann::json::parse(json_text));
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return *p;
}

// Expected reachability: (source "ns/pod", destination "ns/pod") -> allowed.
using Reach = std::function<bool(const std::string& from, const std::string& to)>;

// Probes every ordered pair of distinct pods and returns a readable diff of
// the pairs where the compiled model disagrees with `expect` (empty: none).
inline std::string Mismatches(const CompiledPolicy& cp, Protocol proto, uint16_t port, const Reach& expect) {
  std::string out;
  for (const auto& sns : kNamespaces)
    for (const auto& sp : kPods)
      for (const auto& dns : kNamespaces)
        for (const auto& dp : kPods) {
          std::string from = sns + "/" + sp, to = dns + "/" + dp;
          if (from == to) continue;  // a pod reaches itself over loopback, outside policy
          auto e = cp.Explain(from, to, proto, port);
          if (!e.ok()) return e.error().ToString();
          if (e->allowed != expect(from, to)) {
            out += (expect(from, to) ? "want ALLOW, got " : "want DENY, got ") + e->ToString();
          }
        }
  return out;
}

// Mismatches for one packet in one IP family: over IPv6 the pods stand at
// their IPv6 addresses (packet.ip_version = 6).
inline std::string Mismatches(const CompiledPolicy& cp, const Packet& packet, const Reach& expect) {
  std::string out;
  for (const auto& sns : kNamespaces)
    for (const auto& sp : kPods)
      for (const auto& dns : kNamespaces)
        for (const auto& dp : kPods) {
          std::string from = sns + "/" + sp, to = dns + "/" + dp;
          if (from == to) continue;
          auto e = cp.Explain(from, to, packet);
          if (!e.ok()) return e.error().ToString();
          if (e->allowed != expect(from, to)) {
            out += (expect(from, to) ? "want ALLOW, got " : "want DENY, got ") + e->ToString();
          }
        }
  return out;
}

inline std::string Ns(const std::string& key) { return key.substr(0, key.find('/')); }
inline std::string Name(const std::string& key) { return key.substr(key.find('/') + 1); }

}  // namespace terway::policy::testing
