#include "policy/model.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "common/strings.h"

namespace terway::policy {

std::string ProtocolName(Protocol p) {
  switch (p.number()) {
    case 1: return "ICMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 58: return "ICMPv6";
    case 132: return "SCTP";
    case 136: return "UDPLite";
  }
  return std::to_string(p.number());
}

Result<Protocol> ParseProtocol(std::string_view text) {
  std::string up;
  for (char c : text) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kSCTP, Protocol::kICMP, Protocol::kICMPv6,
                     Protocol::kUDPLite}) {
    std::string name = ProtocolName(p);
    for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (up == name) return p;
  }
  bool digits = !up.empty() && up.size() <= 3;
  for (char c : up) digits = digits && std::isdigit(static_cast<unsigned char>(c));
  if (digits) {
    int n = std::stoi(up);
    if (n >= 1 && n <= 255) return Protocol(static_cast<uint8_t>(n));
  }
  return Errorf(ErrorCode::kInvalidArgument,
                "protocol \"{}\" is not a protocol (TCP, UDP, SCTP, ICMP, ICMPv6, UDPLite or a number 1-255)", text);
}

Packet Packet::Of(Protocol p, uint16_t destination_port) {
  Packet pkt;
  pkt.protocol = p;
  if (p.HasPorts()) pkt.destination_port = destination_port;
  if (p == Protocol::kICMPv6) pkt.icmp_type = 128;  // ICMPv6 echo request (ping -6)
  return pkt;
}

std::string Packet::ToString() const {
  if (protocol == Protocol::kICMP || protocol == Protocol::kICMPv6) {
    return fmt::format("{} type {} code {}", ProtocolName(protocol), icmp_type, icmp_code);
  }
  if (!protocol.HasPorts()) return ProtocolName(protocol);
  if (source_port != 0) return fmt::format("{}->{}/{}", source_port, destination_port, ProtocolName(protocol));
  return fmt::format("{}/{}", destination_port, ProtocolName(protocol));
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
  // One address per family (status.podIPs lists at most one of each); the
  // first of each family is the pod's.
  for (const auto& s : ips) {
    if (auto a = Ipv4Addr::Parse(s); a.ok()) {
      if (!p.ip) p.ip = *a;
    } else if (auto a6 = Ipv6Addr::Parse(s); a6.ok()) {
      if (!p.ipv6) p.ipv6 = *a6;
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

namespace {

std::string NetsKey(const std::vector<Ipv4Cidr>& nets, const std::vector<Ipv6Cidr>& nets6) {
  std::vector<std::string> n;
  for (const auto& c : nets) n.push_back(c.ToString());
  for (const auto& c : nets6) n.push_back(c.ToString());
  return Join(n, ",");
}

}  // namespace

std::string Peer::Key() const {
  if (matches_nothing) return "none";
  std::string k;
  if (SelectsPods()) {
    k += "pods=" + (pods ? pods->Key() : std::string("all"));
    k += namespaces ? ";ns=" + namespaces->Key() : ";in=" + (scope_namespace.empty() ? "*" : scope_namespace);
  }
  if (selector) k += (k.empty() ? "" : ";") + std::string("sel=") + selector->ToString();
  if (not_selector) k += (k.empty() ? "" : ";") + std::string("notsel=") + not_selector->ToString();
  if (services) {
    std::vector<std::string> s;
    for (const auto& r : *services) s.push_back(r.Key());
    k += (k.empty() ? "" : ";") + std::string("svc=") + Join(s, ",");
  }
  if (nets) k += ";nets=" + NetsKey(*nets, nets6);
  if (!not_nets.empty() || !not_nets6.empty()) k += ";notnets=" + NetsKey(not_nets, not_nets6);
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

std::vector<Ipv4Addr> ServiceBackends::Addresses() const {
  std::vector<Ipv4Addr> out;
  for (const auto& g : groups) out.insert(out.end(), g.addresses.begin(), g.addresses.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

const char* Policy::CalicoKind() const {
  switch (kind) {
    case Kind::kK8s: return "KubernetesNetworkPolicy";
    case Kind::kCalico: return "NetworkPolicy";
    case Kind::kCalicoGlobal: return "GlobalNetworkPolicy";
  }
  return "";
}

}  // namespace terway::policy
