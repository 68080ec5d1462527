// Helpers for writing the Calico parity cases (lab_calico_cases.h): the
// probes of a case as "every pod into / out of one pod", and the YAML of
// Calico's and Kubernetes' objects with the boilerplate filled in.
#pragma once

#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "e2e/lab/lab_calico_cases.h"

namespace terway::testing::calico_cases {

using PodSet = std::set<std::string>;
inline const PodSet kEveryone = {"*"};
inline const PodSet kNobody = {};

// Every other pod -> `to` on each target; allowed exactly from `allowed`.
inline std::vector<Probe> Into(const std::string& to, const std::vector<Target>& targets, const PodSet& allowed) {
  std::vector<Probe> out;
  for (const auto& from : CalicoPods()) {
    if (from == to) continue;  // loopback never crosses the node
    for (const auto& t : targets) out.push_back({from, to, t, allowed.count("*") > 0 || allowed.count(from) > 0});
  }
  return out;
}

// `from` -> every other pod on each target; allowed exactly to `allowed`.
inline std::vector<Probe> OutOf(const std::string& from, const std::vector<Target>& targets, const PodSet& allowed) {
  std::vector<Probe> out;
  for (const auto& to : CalicoPods()) {
    if (from == to) continue;
    for (const auto& t : targets) out.push_back({from, to, t, allowed.count("*") > 0 || allowed.count(to) > 0});
  }
  return out;
}

inline std::vector<Probe> operator+(std::vector<Probe> a, const std::vector<Probe>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The three kinds of traffic most cases send.
inline const std::vector<Target> kAllKinds = {Tcp(80), Udp(80), Icmp(8)};

inline std::string Cnp(const std::string& ns, const std::string& name, const std::string& spec) {
  return fmt::format("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n"
                     "metadata:\n  name: {}\n  namespace: \"{}\"\nspec:\n{}",
                     name, ns, spec);
}
inline std::string Gnp(const std::string& name, const std::string& spec) {
  return fmt::format("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: {}\nspec:\n{}",
                     name, spec);
}
inline std::string K8sNp(const std::string& ns, const std::string& name, const std::string& spec) {
  return fmt::format("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                     "metadata:\n  name: {}\n  namespace: \"{}\"\nspec:\n{}",
                     name, ns, spec);
}
inline std::string TierDoc(const std::string& name, const std::string& spec) {
  return fmt::format("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: {}\nspec:\n{}", name, spec);
}
inline std::string Docs(std::initializer_list<std::string> docs) {
  std::string out;
  for (const auto& d : docs) out += (out.empty() ? "" : "---\n") + d;
  return out;
}

// Selectors for one pod: a NetworkPolicy's (in its namespace) and a
// GlobalNetworkPolicy's (Calico's namespace label).
inline constexpr const char* kSelA = "  selector: \"pod == 'a'\"\n";
inline constexpr const char* kGlobalSelA = "  selector: \"projectcalico.org/namespace == 'x' && pod == 'a'\"\n";
inline constexpr const char* kGlobalSelB = "  selector: \"projectcalico.org/namespace == 'x' && pod == 'b'\"\n";
inline constexpr const char* kGlobalSelC = "  selector: \"projectcalico.org/namespace == 'x' && pod == 'c'\"\n";

// The parts of the table: rule fields (lab_calico_cases.cc); order, tiers,
// changes and policy shapes (lab_calico_order_cases.cc).
std::vector<CalicoCase> RuleFieldCases();
std::vector<CalicoCase> OrderAndShapeCases();

}  // namespace terway::testing::calico_cases
