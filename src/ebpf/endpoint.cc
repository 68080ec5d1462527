#include "ebpf/endpoint.h"

#include <arpa/inet.h>

#include <cstring>

#include <fmt/format.h>

namespace terway::ebpf {

Status Validate(const Endpoint& ep) {
  const std::string who = "eBPF endpoint " + ep.ip.ToString();
  if (ep.ip.value() == 0) return MakeError(ErrorCode::kInvalidArgument, "eBPF endpoint without a pod IP");
  if (ep.host_ifindex <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": no host veth ifindex (create the pod's veth first)");
  }
  if (ep.eni_ifindex <= 0) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": no ENI ifindex (is the pod's ENI attached?)");
  }
  if (ep.gateway.value() == 0) {
    return MakeError(ErrorCode::kInvalidArgument, who + ": no vSwitch gateway for its ENI");
  }
  if (ep.pod_mac == MacAddr() || ep.host_mac == MacAddr()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     who + ": pod MAC and host veth MAC are both needed to deliver into the pod");
  }
  return Ok();
}

uint32_t EndpointKey(Ipv4Addr ip) { return htonl(ip.value()); }

terway_dp_endpoint ToAbi(const Endpoint& ep) {
  terway_dp_endpoint v{};
  v.host_ifindex = static_cast<uint32_t>(ep.host_ifindex);
  v.eni_ifindex = static_cast<uint32_t>(ep.eni_ifindex);
  v.gateway = htonl(ep.gateway.value());
  v.flags = ep.shaped ? TERWAY_DP_EP_SHAPED : 0;
  std::memcpy(v.pod_mac, ep.pod_mac.bytes().data(), 6);
  std::memcpy(v.host_mac, ep.host_mac.bytes().data(), 6);
  return v;
}

Endpoint FromAbi(uint32_t key_network_order, const terway_dp_endpoint& v) {
  Endpoint ep;
  ep.ip = Ipv4Addr(ntohl(key_network_order));
  ep.host_ifindex = static_cast<int>(v.host_ifindex);
  ep.eni_ifindex = static_cast<int>(v.eni_ifindex);
  ep.gateway = Ipv4Addr(ntohl(v.gateway));
  ep.shaped = (v.flags & TERWAY_DP_EP_SHAPED) != 0;
  std::array<uint8_t, 6> m{};
  std::memcpy(m.data(), v.pod_mac, 6);
  ep.pod_mac = MacAddr(m);
  std::memcpy(m.data(), v.host_mac, 6);
  ep.host_mac = MacAddr(m);
  return ep;
}

const char* StackPrefixKindName(StackPrefixKind k) {
  switch (k) {
    case StackPrefixKind::kService:
      return "service";
    case StackPrefixKind::kNode:
      return "node";
    case StackPrefixKind::kMetadata:
      return "metadata";
    case StackPrefixKind::kHostCidr:
      return "host-stack-cidr";
  }
  return "unknown";
}

terway_dp_stack_key ToAbi(const Ipv4Cidr& prefix) {
  terway_dp_stack_key k{};
  k.prefixlen = static_cast<uint32_t>(prefix.prefix_len());
  k.addr = htonl(prefix.network().value());
  return k;
}

Result<StackPrefix> FromAbi(const terway_dp_stack_key& key, uint32_t kind) {
  if (key.prefixlen > 32) {
    return Errorf(ErrorCode::kInternal, "stack prefix map holds a key with prefix length {}", key.prefixlen);
  }
  if (kind < TERWAY_DP_STACK_SERVICE || kind > TERWAY_DP_STACK_HOST_CIDR) {
    return Errorf(ErrorCode::kInternal, "stack prefix map holds an unknown kind {}", kind);
  }
  TERWAY_ASSIGN_OR_RETURN(
      Ipv4Cidr c, Ipv4Cidr::Parse(fmt::format("{}/{}", Ipv4Addr(ntohl(key.addr)).ToString(), key.prefixlen), true));
  return StackPrefix{c, static_cast<StackPrefixKind>(kind)};
}

std::vector<StackPrefix> BuiltinStackPrefixes() {
  return {StackPrefix{Ipv4Cidr::Parse("100.100.100.200/32").value(), StackPrefixKind::kMetadata}};
}

Counters SumCounters(const std::vector<std::vector<uint64_t>>& per_cpu) {
  auto sum = [&](int i) -> uint64_t {
    if (static_cast<size_t>(i) >= per_cpu.size()) return 0;
    uint64_t s = 0;
    for (uint64_t v : per_cpu[static_cast<size_t>(i)]) s += v;
    return s;
  };
  Counters c;
  c.pod_to_pod = sum(TERWAY_DP_CNT_POD_TO_POD);
  c.pod_to_eni = sum(TERWAY_DP_CNT_POD_TO_ENI);
  c.eni_to_pod = sum(TERWAY_DP_CNT_ENI_TO_POD);
  c.pod_to_stack = sum(TERWAY_DP_CNT_POD_TO_STACK);
  c.eni_to_stack = sum(TERWAY_DP_CNT_ENI_TO_STACK);
  c.drop_spoof = sum(TERWAY_DP_CNT_DROP_SPOOF);
  c.ct_to_stack = sum(TERWAY_DP_CNT_CT_TO_STACK);
  c.ct_unknown_to_stack = sum(TERWAY_DP_CNT_CT_UNKNOWN_TO_STACK);
  return c;
}

std::string ToString(const Counters& c) {
  return fmt::format(
      "pod->pod {} pod->eni {} eni->pod {} pod->stack {} eni->stack {} spoof-drops {} "
      "(of the stack's: conntrack-tracked {} not-askable {})",
      c.pod_to_pod, c.pod_to_eni, c.eni_to_pod, c.pod_to_stack, c.eni_to_stack, c.drop_spoof, c.ct_to_stack,
      c.ct_unknown_to_stack);
}

}  // namespace terway::ebpf
