// The eBPF datapath's map contents as C++ values, and their conversions to
// and from the ABI structures of bpf/include/datapath_abi.h. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "bpf/include/datapath_abi.h"
#include "common/ip.h"
#include "common/result.h"

namespace terway::ebpf {

// One pod served by the fast path (an entry of the endpoint map).
struct Endpoint {
  Ipv4Addr ip;            // the pod's address: the key
  int host_ifindex = 0;   // its host-side veth, in the host namespace
  int eni_ifindex = 0;    // the ENI holding its IP
  Ipv4Addr gateway;       // that ENI's vSwitch gateway
  MacAddr pod_mac;        // the pod's eth0
  MacAddr host_mac;       // the host veth's
  // It has a bandwidth limit: its traffic crosses the host stack (the IFB
  // and TBF qdiscs). Policy isolation is not here: terway_dp_policy.
  bool shaped = false;
  auto operator<=>(const Endpoint&) const = default;
};

// What a program needs to forward for this pod; kInvalidArgument naming the
// pod and the missing field otherwise.
Status Validate(const Endpoint& ep);

terway_dp_endpoint ToAbi(const Endpoint& ep);
Endpoint FromAbi(uint32_t key_network_order, const terway_dp_endpoint& v);
// The map's key for a pod address (network order, as the IP header has it).
uint32_t EndpointKey(Ipv4Addr ip);

enum class StackPrefixKind : uint32_t {
  kService = TERWAY_DP_STACK_SERVICE,
  kNode = TERWAY_DP_STACK_NODE,
  kMetadata = TERWAY_DP_STACK_METADATA,
  kHostCidr = TERWAY_DP_STACK_HOST_CIDR,
};
const char* StackPrefixKindName(StackPrefixKind k);

// A destination prefix a pod's packets must reach through the host stack.
struct StackPrefix {
  Ipv4Cidr prefix;
  StackPrefixKind kind = StackPrefixKind::kHostCidr;
  auto operator<=>(const StackPrefix&) const = default;
};

terway_dp_stack_key ToAbi(const Ipv4Cidr& prefix);
Result<StackPrefix> FromAbi(const terway_dp_stack_key& key, uint32_t kind);

// The stack prefixes every node has, whatever its configuration: the
// metadata service's address (the metadata guard DNATs it in the stack).
std::vector<StackPrefix> BuiltinStackPrefixes();

// What the programs did, summed over CPUs.
struct Counters {
  uint64_t pod_to_pod = 0;
  uint64_t pod_to_eni = 0;
  uint64_t eni_to_pod = 0;
  uint64_t pod_to_stack = 0;
  uint64_t eni_to_stack = 0;
  uint64_t drop_spoof = 0;
  // Of pod_to_stack + eni_to_stack: packets that would have been redirected
  // but conntrack tracks their flow (the stack NATs or polices it), or that
  // conntrack cannot be asked about (not TCP/UDP, fragments).
  uint64_t ct_to_stack = 0;
  uint64_t ct_unknown_to_stack = 0;
};

// per_cpu[counter][cpu], counter indexed by terway_dp_counter.
Counters SumCounters(const std::vector<std::vector<uint64_t>>& per_cpu);
std::string ToString(const Counters& c);

}  // namespace terway::ebpf
