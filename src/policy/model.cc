#include "policy/model.h"

#include <cctype>

#include <fmt/format.h>

#include "common/strings.h"

namespace terway::policy {

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "TCP";
    case Protocol::kUDP: return "UDP";
    case Protocol::kSCTP: return "SCTP";
    case Protocol::kICMP: return "ICMP";
  }
  return "?";
}

Result<Protocol> ParseProtocol(std::string_view text) {
  std::string up;
  for (char c : text) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up == "TCP" || up == "6") return Protocol::kTCP;
  if (up == "UDP" || up == "17") return Protocol::kUDP;
  if (up == "SCTP" || up == "132") return Protocol::kSCTP;
  if (up == "ICMP" || up == "1") return Protocol::kICMP;
  return Errorf(ErrorCode::kUnsupported, "protocol \"{}\" is not supported (TCP, UDP, SCTP, ICMP)", text);
}

const char* ActionName(Action a) {
  switch (a) {
    case Action::kAllow: return "Allow";
    case Action::kDeny: return "Deny";
    case Action::kLog: return "Log";
    case Action::kPass: return "Pass";
  }
  return "?";
}

const char* DirectionName(Direction d) { return d == Direction::kIngress ? "ingress" : "egress"; }

PodInfo PodFromK8s(const k8s::Pod& pod) {
  PodInfo p;
  p.namespace_ = pod.metadata.namespace_;
  p.name = pod.metadata.name;
  p.labels = pod.metadata.labels;
  p.node = pod.node_name;
  p.host_network = pod.host_network;
  // The API server's admission names "default" when the pod names none.
  p.service_account = pod.service_account.empty() ? "default" : pod.service_account;
  std::vector<std::string> ips = pod.pod_ips;
  if (ips.empty() && !pod.pod_ip.empty()) ips.push_back(pod.pod_ip);
  for (const auto& s : ips) {
    auto a = Ipv4Addr::Parse(s);
    if (a.ok()) {  // the first IPv4 address; IPv6 is outside this datapath
      p.ip = *a;
      break;
    }
  }
  for (const auto& c : pod.containers) {
    for (const auto& port : c.ports) p.ports.push_back(port);
  }
  return p;
}

NamespaceInfo NamespaceFromK8s(const k8s::Namespace& ns) { return {ns.metadata.name, ns.metadata.labels}; }

EndpointSelector EndpointSelector::FromK8s(const k8s::LabelSelectorSpec& spec) {
  EndpointSelector s;
  s.k8s = k8s::LabelSelector::FromSpec(spec);
  return s;
}

EndpointSelector EndpointSelector::FromCalico(CalicoSelector sel) {
  EndpointSelector s;
  s.calico = std::move(sel);
  return s;
}

bool EndpointSelector::Matches(const k8s::Labels& plain, const k8s::Labels& calico_view) const {
  if (k8s) return k8s->Matches(plain);
  if (calico) return calico->Matches(calico_view);
  return true;
}

std::string EndpointSelector::Key() const {
  if (k8s) return "k8s{" + k8s->ToString() + "}";
  if (calico) return "calico{" + calico->ToString() + "}";
  return "all";
}

std::string Peer::Key() const {
  if (matches_nothing) return "none";
  std::string k;
  if (SelectsPods()) {
    k += "pods=" + (pods ? pods->Key() : std::string("all"));
    k += namespaces ? ";ns=" + namespaces->Key() : ";in=" + (scope_namespace.empty() ? "*" : scope_namespace);
  }
  if (nets) {
    std::vector<std::string> n;
    for (const auto& c : *nets) n.push_back(c.ToString());
    k += ";nets=" + Join(n, ",");
  }
  if (!not_nets.empty()) {
    std::vector<std::string> n;
    for (const auto& c : not_nets) n.push_back(c.ToString());
    k += ";notnets=" + Join(n, ",");
  }
  return k.empty() ? "any" : k;
}

std::string Policy::Id() const {
  switch (kind) {
    case Kind::kK8s: return "k8s:" + namespace_ + "/" + name;
    case Kind::kCalico: return "calico:" + namespace_ + "/" + name;
    case Kind::kCalicoGlobal: return "global:" + name;
  }
  return name;
}

}  // namespace terway::policy
