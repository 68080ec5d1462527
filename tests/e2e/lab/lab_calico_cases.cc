// The Calico parity cases on rule fields (see lab_calico_cases.h for the
// world): protocols, ICMP, ports, and the peers a rule names. Every
// expectation is Calico's documented behaviour as docs/calico-semantics.md
// states it (section named per case).
#include "e2e/lab/lab_calico_cases.h"

#include <fmt/format.h>

#include "e2e/lab/lab_calico_case_kit.h"

namespace terway::testing {
namespace calico_cases {
namespace {

std::vector<CalicoCase> ProtocolCases() {
  std::vector<CalicoCase> cases;
  cases.push_back({"protocol-name", "protocol by name: a UDP rule isolates TCP and ICMP (2.1)",
                   Cnp("x", "udp-only", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: UDP
)"),
                   Into("x/a", {Udp(80), Udp(81)}, kEveryone) + Into("x/a", {Tcp(80), Icmp(8)}, kNobody)});
  cases.push_back({"protocol-number", "protocol by number: 17 is UDP, 1 is ICMP, 6 with a port is TCP to it; a "
                                      "numeric string is the number (2.1)",
                   Docs({Cnp("x", "by-number", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: 17
  - action: Allow
    protocol: 1
  - action: Allow
    protocol: 6
    destination:
      ports: [81]
)"),
                         Cnp("x", "by-numeric-string", R"(  selector: "pod == 'c'"
  ingress:
  - action: Allow
    protocol: "17"
)")}),
                   Into("x/a", {Udp(80), Icmp(8), Icmp(13), Tcp(81)}, kEveryone) +
                       Into("x/a", {Tcp(80), Tcp(82)}, kNobody) + Into("x/c", {Udp(80)}, kEveryone) +
                       Into("x/c", {Tcp(80), Icmp(8)}, kNobody)});
  cases.push_back({"not-protocol", "notProtocol TCP: every other protocol (2.1, 2.4)",
                   Cnp("x", "not-tcp", std::string(kSelA) + R"(  ingress:
  - action: Allow
    notProtocol: TCP
)"),
                   Into("x/a", {Udp(80), Icmp(8), Icmp(13)}, kEveryone) + Into("x/a", {Tcp(80), Tcp(81)}, kNobody)});
  cases.push_back({"ip-version", "ipVersion: a rule for IPv6, or for ICMPv6, never matches IPv4 traffic; one for "
                                 "IPv4 does (2.1, 8)",
                   Cnp("x", "ip-version", std::string(kSelA) + R"(  ingress:
  - action: Allow
    ipVersion: 6
  - action: Allow
    protocol: ICMPv6
  - action: Allow
    ipVersion: 4
    protocol: UDP
)"),
                   Into("x/a", {Udp(80), Udp(81)}, kEveryone) + Into("x/a", {Tcp(80), Icmp(8)}, kNobody)});
  cases.push_back({"icmp-type", "icmp type 8: echo of any code passes, timestamp (13) does not; also on egress "
                                "(2.1, 8)",
                   Docs({Cnp("x", "echo-in", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: ICMP
    icmp:
      type: 8
)"),
                         Cnp("x", "echo-out", R"(  selector: "pod == 'c'"
  types: [Egress]
  egress:
  - action: Allow
    protocol: ICMP
    icmp: {type: 8}
)")}),
                   Into("x/a", {Icmp(8), Icmp(8, 3)}, kEveryone) + Into("x/a", {Icmp(13), Tcp(80), Udp(80)}, kNobody) +
                       OutOf("x/c", {Icmp(8)}, kEveryone) + OutOf("x/c", {Icmp(13), Tcp(80)}, kNobody)});
  cases.push_back({"icmp-code", "icmp type and code: echo code 0 only; a Deny of timestamp before an Allow (2.1, 8)",
                   Docs({Cnp("x", "echo-code-0", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: ICMP
    icmp: {type: 8, code: 0}
)"),
                         Cnp("x", "no-timestamp", R"(  selector: "pod == 'c'"
  ingress:
  - action: Deny
    protocol: ICMP
    icmp: {type: 13}
  - action: Allow
)")}),
                   Into("x/a", {Icmp(8, 0)}, kEveryone) + Into("x/a", {Icmp(8, 3), Icmp(13)}, kNobody) +
                       Into("x/c", {Icmp(8), Tcp(80)}, kEveryone) + Into("x/c", {Icmp(13)}, kNobody)});
  cases.push_back({"not-icmp", "notICMP type 8: other ICMP passes, echo does not, non-ICMP never matches (2.4)",
                   Cnp("x", "not-echo", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: ICMP
    notICMP: {type: 8}
)"),
                   Into("x/a", {Icmp(13)}, kEveryone) + Into("x/a", {Icmp(8), Tcp(80), Udp(80)}, kNobody)});
  return cases;
}

std::vector<CalicoCase> PortCases() {
  std::vector<CalicoCase> cases;
  cases.push_back({"port-range", "destination ports as a range minus notPorts; UDP notPorts alone (2.2)",
                   Cnp("x", "ranges", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: ["80:82"]
      notPorts: [81]
  - action: Allow
    protocol: UDP
    destination:
      notPorts: [80]
)"),
                   Into("x/a", {Tcp(80), Tcp(82), Udp(81)}, kEveryone) +
                       Into("x/a", {Tcp(81), Udp(80), Icmp(8)}, kNobody)});
  cases.push_back({"named-port", "named destination ports in ports and notPorts; without a protocol, the named "
                                 "port's own (2.2, 2.6)",
                   Docs({Cnp("x", "named", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [serve-81-tcp]
  - action: Allow
    protocol: UDP
    destination:
      notPorts: [serve-80-udp]
)"),
                         Cnp("x", "named-no-protocol", R"(  selector: "pod == 'c'"
  ingress:
  - action: Allow
    destination:
      ports: [serve-80-udp]
)")}),
                   Into("x/a", {Tcp(81), Udp(81)}, kEveryone) + Into("x/a", {Tcp(80), Tcp(82), Udp(80)}, kNobody) +
                       Into("x/c", {Udp(80)}, kEveryone) + Into("x/c", {Tcp(80), Udp(81)}, kNobody)});
  cases.push_back({"named-port-egress", "a named port in an egress rule resolves on the selected destination pods "
                                        "(2.6)",
                   Cnp("y", "named-egress", R"(  selector: "pod == 'a'"
  types: [Egress]
  egress:
  - action: Allow
    protocol: TCP
    destination:
      selector: "pod == 'b'"
      namespaceSelector: all()
      ports: [serve-81-tcp]
)"),
                   OutOf("y/a", {Tcp(81)}, {"x/b", "y/b"}) + OutOf("y/a", {Tcp(80), Udp(81)}, kNobody)});
  // Source ports come from 9000-9099 (pinned) or the fresh pool (>= 32768).
  cases.push_back({"source-ports", "source ports and source notPorts as a range (2.2)",
                   Cnp("x", "source-ports", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: TCP
    source:
      ports: ["9000:9099"]
  - action: Allow
    protocol: UDP
    source:
      notPorts: ["9000:9099"]
)"),
                   Into("x/a", {Tcp(80).From(9000, 9099), Tcp(81).From(9000, 9099), Udp(80)}, kEveryone) +
                       Into("x/a", {Tcp(80), Udp(80).From(9000, 9099)}, kNobody)});
  // peer-src is 7070 on x/b and 7071 on y/b: resolved per source pod.
  cases.push_back({"named-source-port", "a named source port resolves on each source pod (2.6)",
                   Cnp("x", "named-source", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: TCP
    source:
      ports: [peer-src]
)"),
                   std::vector<Probe>{{"x/b", "x/a", Tcp(80).From(7070), true},
                                      {"x/b", "x/a", Tcp(81).From(7071), false},
                                      {"y/b", "x/a", Tcp(80).From(7071), true},
                                      {"y/b", "x/a", Tcp(81).From(7070), false}} +
                       Into("x/a", {Tcp(80), Udp(80)}, kNobody)});
  return cases;
}

std::vector<CalicoCase> PeerCases() {
  std::vector<CalicoCase> cases;
  cases.push_back({"nets-not-nets", "source nets minus notNets (2.2)",
                   Cnp("x", "nets", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      nets: [198.18.0.0/15]
      notNets: ["${y/b}/32"]
)"),
                   Into("x/a", kAllKinds, {"x/b", "x/c", "y/a"})});
  // Felix renders a rule for one IP family only when its nets allow it: a
  // rule whose notNets are all IPv6 is dropped from the IPv4 rules.
  cases.push_back({"ipv6-nets", "a rule whose nets or notNets are only IPv6 never matches IPv4 traffic (2.4)",
                   Cnp("x", "ipv6-nets", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      notNets: ["fd00::/8"]
  - action: Allow
    source:
      nets: ["fd00::/8"]
  - action: Allow
    source:
      selector: "pod == 'c'"
)"),
                   Into("x/a", kAllKinds, {"x/c"})});
  cases.push_back({"egress-not-nets", "egress to destination notNets (2.2)",
                   Cnp("x", "egress-not-nets", std::string(kSelA) + R"(  types: [Egress]
  egress:
  - action: Allow
    destination:
      notNets: ["${x/c}/32"]
)"),
                   OutOf("x/a", kAllKinds, {"x/b", "y/a", "y/b"})});
  cases.push_back({"not-selector", "notSelector: in a NetworkPolicy only its namespace's other endpoints, in a "
                                   "GlobalNetworkPolicy every address but the selected (2.3)",
                   Docs({Cnp("x", "not-b", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      notSelector: "pod == 'b'"
)"),
                         Gnp("not-b-global", std::string(kGlobalSelC) + R"(  ingress:
  - action: Allow
    source:
      notSelector: "pod == 'b'"
)")}),
                   Into("x/a", kAllKinds, {"x/c"}) + Into("x/c", kAllKinds, {"x/a", "y/a"})});
  cases.push_back({"selector-all", "selector all() in a NetworkPolicy rule: every endpoint of its namespace, not "
                                   "every address (2.3)",
                   Cnp("x", "from-all", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      selector: all()
)"),
                   Into("x/a", kAllKinds, {"x/b", "x/c"})});
  // Each rule lets in one pod only if its operators work; y/b matches none.
  cases.push_back({"selector-operators", "Calico selector operators: ||, parentheses, starts with, contains, "
                                         "!has, ends with, !=, not in (2.3, 6)",
                   Gnp("operators", std::string(kGlobalSelA) + R"(  ingress:
  - action: Allow
    source:
      selector: "(pod == 'q' || pod starts with 'b') && projectcalico.org/namespace contains 'x'"
  - action: Allow
    source:
      selector: "!has(pcsa.role) && pod ends with 'a' && projectcalico.org/namespace != 'x'"
  - action: Allow
    source:
      selector: "pod not in {'a', 'b'} && projectcalico.org/namespace == 'x'"
)"),
                   Into("x/a", kAllKinds, {"x/b", "x/c", "y/a"})});
  cases.push_back({"namespace-selector", "namespaceSelector all() and by Calico's projectcalico.org/name (2.3, 6)",
                   Cnp("x", "any-namespace", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      selector: "pod == 'b'"
      namespaceSelector: all()
  - action: Allow
    source:
      selector: "pod == 'a'"
      namespaceSelector: "projectcalico.org/name == 'y'"
)"),
                   Into("x/a", kAllKinds, {"x/b", "y/a", "y/b"})});
  cases.push_back({"global-network-set", "a GlobalNetworkSet: a NetworkPolicy sees it only through namespaceSelector "
                                         "global(), a GlobalNetworkPolicy without one (2.3, 5)",
                   Docs({R"(apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata:
  name: partners-global
  labels:
    trust: global-partner
spec:
  nets: ["${y/a}/32"]
)",
                         Cnp("x", "from-global-set", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      selector: "trust == 'global-partner'"
      namespaceSelector: global()
)"),
                         Cnp("x", "global-set-out-of-scope", R"(  selector: "pod == 'c'"
  ingress:
  - action: Allow
    source:
      selector: "trust == 'global-partner'"
  - action: Allow
    source:
      selector: "pod == 'b'"
)"),
                         Gnp("global-sees-global-set", std::string(kGlobalSelB) + R"(  ingress:
  - action: Allow
    source:
      selector: "trust == 'global-partner'"
)")}),
                   Into("x/a", kAllKinds, {"y/a"}) + Into("x/c", kAllKinds, {"x/b"}) +
                       Into("x/b", kAllKinds, {"y/a"})});
  cases.push_back({"network-set", "a NetworkSet selected by label: a NetworkPolicy sees its own namespace's, a "
                                  "GlobalNetworkPolicy every namespace's (5)",
                   Docs({R"(apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: partners
  namespace: x
  labels:
    trust: partner
spec:
  nets: ["${y/b}/32"]
)",
                         R"(apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata:
  name: partners
  namespace: "y"
  labels:
    trust: partner
spec:
  nets: ["${y/a}/32"]
)",
                         Cnp("x", "from-partners", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      selector: "trust == 'partner'"
)"),
                         Gnp("from-partners-global", std::string(kGlobalSelC) + R"(  ingress:
  - action: Allow
    source:
      selector: "trust == 'partner'"
)")}),
                   Into("x/a", kAllKinds, {"y/b"}) + Into("x/c", kAllKinds, {"y/a", "y/b"})});
  cases.push_back({"global-namespace-selector", "a GlobalNetworkPolicy's namespaceSelector: the pods of the "
                                                "selected namespaces only (1)",
                   Gnp("in-y", R"(  namespaceSelector: "ns == 'y'"
  selector: all()
  ingress:
  - action: Allow
    source:
      selector: "pod == 'a'"
)"),
                   Into("y/b", kAllKinds, {"x/a", "y/a"}) + Into("y/a", kAllKinds, {"x/a"}) +
                       Into("x/b", kAllKinds, kEveryone)});
  cases.push_back({"service-account-names", "serviceAccounts names: in a NetworkPolicy, of its namespace (2.2, 2.3)",
                   Cnp("x", "from-frontend", std::string(kSelA) + R"(  ingress:
  - action: Allow
    source:
      serviceAccounts:
        names: [frontend]
)"),
                   Into("x/a", kAllKinds, {"x/b"})});
  cases.push_back({"service-account-selector", "serviceAccounts selector over the ServiceAccount's labels (2.2, 6)",
                   Gnp("from-role-frontend", std::string(kGlobalSelA) + R"(  ingress:
  - action: Allow
    source:
      serviceAccounts:
        selector: "role == 'frontend'"
)"),
                   Into("x/a", kAllKinds, {"x/b", "y/b"})});
  cases.push_back({"service-account-subject", "spec.serviceAccountSelector chooses the pods a policy applies to (1)",
                   Cnp("x", "backend-only", R"(  selector: all()
  serviceAccountSelector: "role == 'backend'"
  ingress:
  - action: Allow
    source:
      selector: "pod == 'a'"
)"),
                   Into("x/c", kAllKinds, {"x/a"}) + Into("x/b", kAllKinds, kEveryone)});
  cases.push_back({"endpoint-labels", "Calico's endpoint labels: projectcalico.org/namespace, /orchestrator, "
                                      "/serviceaccount, pcns.* and pcsa.* (6)",
                   Gnp("endpoint-labels",
                       R"(  selector: >-
    projectcalico.org/namespace == 'x' && projectcalico.org/orchestrator == 'k8s' && pod == 'a'
  ingress:
  - action: Allow
    source:
      selector: "projectcalico.org/serviceaccount == 'backend'"
  - action: Allow
    source:
      selector: "pcns.ns == 'y' && pod == 'a'"
  - action: Allow
    source:
      selector: "pcsa.role == 'frontend' && projectcalico.org/namespace == 'y'"
)"),
                   Into("x/a", kAllKinds, {"x/c", "y/a", "y/b"})});
  // The Service's port 8181 goes to target port 81: the slice holds 81.
  cases.push_back({"service-source", "source services: the Service's backend addresses, any port (2.5)",
                   Docs({R"(apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: "y"
spec:
  selector:
    pod: b
  ports:
  - {name: http, port: 80, targetPort: 80, protocol: TCP}
)",
                         Cnp("x", "from-web", std::string(kSelA) + R"(  ingress:
  - action: Allow
    protocol: TCP
    source:
      services: {name: web, namespace: "y"}
)")}),
                   Into("x/a", {Tcp(80), Tcp(81)}, {"y/b"}) + Into("x/a", {Udp(80), Icmp(8)}, kNobody)});
  cases.push_back({"service-destination", "destination services: backend address, protocol and target port, a "
                                          "named one resolved per pod (2.5)",
                   Docs({R"(apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: x
spec:
  selector:
    pod: c
  ports:
  - {name: db, port: 8181, targetPort: 81, protocol: TCP}
  - {name: db-named, port: 8282, targetPort: serve-82-tcp, protocol: TCP}
)",
                         Cnp("y", "to-db", R"(  selector: "pod == 'a'"
  types: [Egress]
  egress:
  - action: Allow
    destination:
      services: {name: db, namespace: x}
)")}),
                   OutOf("y/a", {Tcp(81), Tcp(82)}, {"x/c"}) + OutOf("y/a", {Tcp(80), Udp(81), Icmp(8)}, kNobody)});
  return cases;
}

}  // namespace

std::vector<CalicoCase> RuleFieldCases() {
  std::vector<CalicoCase> all;
  for (auto part : {ProtocolCases(), PortCases(), PeerCases()}) all.insert(all.end(), part.begin(), part.end());
  return all;
}

}  // namespace calico_cases

std::string Target::ToString() const {
  std::string out = proto == L4::kIcmp ? fmt::format("ICMP type {} code {}", icmp_type, icmp_code)
                                       : fmt::format("{}/{}", port, L4Name(proto));
  if (src_first != 0) {
    out += src_first == src_last ? fmt::format(" from port {}", src_first)
                                 : fmt::format(" from ports {}-{}", src_first, src_last);
  }
  return out;
}

const std::vector<std::string>& CalicoPods() {
  static const std::vector<std::string> pods = {"x/a", "x/b", "x/c", "y/a", "y/b"};
  return pods;
}

std::vector<CalicoCase> CalicoCases() {
  std::vector<CalicoCase> all;
  for (auto part : {calico_cases::RuleFieldCases(), calico_cases::OrderAndShapeCases()}) {
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

}  // namespace terway::testing
