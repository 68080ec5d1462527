// The Calico parity cases of lab_calico_e2e_test.cc as data: each case is
// the YAML a migrating user applies with one `kubectl apply`, the probes
// (real TCP, UDP and ICMP between pods) with the verdict Calico's documented
// semantics require (docs/calico-semantics.md, section named per case), and
// what else must hold while it is applied (the fail-closed report).
//
// The world the cases run in (set up by the test):
//   namespaces x (labels ns=x) and y (ns=y);
//   ServiceAccounts x/frontend (role=frontend), x/backend (role=backend),
//   y/frontend (role=frontend);
//   pods, labelled pod=<name>:
//     x/a node1, SA default            x/b node2, SA frontend, port peer-src 7070/TCP
//     x/c node1, SA backend            y/a node2, SA default
//     y/b node1, SA frontend, port peer-src 7071/TCP
//   (x/a and y/a name no ServiceAccount: the API server gives them
//   `default`, which has no labels);
//   every pod serves TCP 80, 81, 82 and UDP 80, 81 (container ports
//   serve-<port>-<tcp|udp>) and answers ICMP echo (8) and timestamp (13).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "e2e/lab/netpol_probe.h"

namespace terway::testing {

// What a probe sends; the source and destination are pods.
struct Target {
  L4 proto = L4::kTcp;
  uint16_t port = 0;      // TCP/UDP destination port
  uint8_t icmp_type = 8;  // ICMP
  uint8_t icmp_code = 0;
  // Source port: 0 = a fresh one of the default pool; else a fresh one of
  // [src_first, src_last] (that very port when they are equal).
  uint16_t src_first = 0;
  uint16_t src_last = 0;

  Target From(uint16_t first, uint16_t last) const {
    Target t = *this;
    t.src_first = first;
    t.src_last = last;
    return t;
  }
  Target From(uint16_t port) const { return From(port, port); }
  std::string ToString() const;
};

inline Target Tcp(uint16_t port) { return {L4::kTcp, port}; }
inline Target Udp(uint16_t port) { return {L4::kUdp, port}; }
inline Target Icmp(uint8_t type, uint8_t code = 0) { return {L4::kIcmp, 0, type, code}; }

struct Probe {
  std::string from;  // "ns/pod"
  std::string to;
  Target target;
  bool allow = false;
};

// A change while a case is applied (a network set's nets, a ServiceAccount's
// labels, a Service's selector, a tier's order): terwayd must follow it.
struct CalicoStep {
  std::string what;
  std::string yaml;                  // applied with kubectl apply, or
  std::vector<std::string> kubectl;  // these kubectl arguments run
  std::vector<Probe> probes;         // the verdicts after the change
};

struct CalicoCase {
  std::string id;    // short, for TERWAY_CALICO_CASES and the summary
  std::string what;  // the behaviour and its section of docs/calico-semantics.md
  // Documents separated by "---"; "${ns/pod}" stands for the pod's IP.
  // Applied in one `kubectl apply -f`, deleted in reverse document order
  // (policies before the tier they sit in).
  std::string yaml;
  std::vector<Probe> probes;
  // A policy this case expects enforced on the safe side ("ns/name"): a
  // Warning Event PolicyNotEnforcedAsWritten on it, terway-cli policy show
  // naming it and `fail_closed_field`, and terway_policy_fail_closed > 0.
  std::string fail_closed_policy = "";
  std::string fail_closed_field = "";
  std::vector<CalicoStep> then = {};
  // kubectl arguments that undo `then`'s commands on objects of the world
  // (run before the case's objects are deleted).
  std::vector<std::vector<std::string>> undo = {};
};

// The pods of the world, in placement order.
const std::vector<std::string>& CalicoPods();

std::vector<CalicoCase> CalicoCases();

}  // namespace terway::testing
