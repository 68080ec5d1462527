// The emulated VPC's data plane: real Linux networking that the control plane
// (API server, state) drives. One implementation (fabric/linux_fabric.*) builds
// namespaces, bridges, veths and nftables; tests of the control plane use a
// recording fake.
//
// Topology of one world (one VPC):
//   router netns  "<prefix>-vpc"      : the VPC router. Owns the metadata
//                                       address 100.100.100.200 and the API
//                                       address 100.100.0.1; one bridge per
//                                       vSwitch with the vSwitch gateway
//                                       (x.x.x.253 of a /24) on it.
//   instance netns "<prefix>-<instance-id>": one ECS instance. Its primary ENI
//                                       is eth0; attached ENIs appear as ethN
//                                       (N = device index) with the ENI's MAC.
// Each ENI is a veth whose host end is an isolated port of its vSwitch's bridge,
// so instances never talk L2 to each other: every packet crosses the router,
// as in a real VPC (the gateway answers every ARP).
// The router delivers an IP only to the ENI that holds it (per-IP /32 and, for
// IPv6, /128 routes with permanent neighbours), and drops packets whose source
// IP is not assigned to the ENI they arrive from (anti-spoofing, both families;
// IPv6 link-local and unspecified sources pass, for neighbour discovery).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"

namespace terway::vpcsim {

inline constexpr const char* kMetadataAddress = "100.100.100.200";
inline constexpr const char* kApiAddress = "100.100.0.1";

struct FabricVSwitch {
  std::string vswitch_id;
  Ipv4Cidr cidr;
  Ipv4Addr gateway;  // conventionally the 253rd address of the block
  // IPv6 enabled on the vSwitch: its /64 and gateway (<block>:ffff:ffff:ffff:fff7).
  // Default-initialised so that IPv4-only aggregate initialisers stay valid.
  std::optional<Ipv6Cidr> ipv6_cidr = std::nullopt;
  Ipv6Addr ipv6_gateway{};
};

struct FabricEni {
  std::string eni_id;
  MacAddr mac;
  std::string vswitch_id;
  // Every IPv4 address the ENI holds, its primary IP first.
  std::vector<Ipv4Addr> ips;
  // Every IPv6 address the ENI holds (AssignIpv6Addresses order).
  std::vector<Ipv6Addr> ipv6s{};
};

class Fabric {
 public:
  virtual ~Fabric() = default;

  // All calls are idempotent "ensure" operations so that a restarted vpcsim
  // re-creates exactly what its state says, whatever is already there.
  virtual Status EnsureVpc(const std::string& vpc_id, const Ipv4Cidr& cidr) = 0;
  virtual Status EnsureVSwitch(const FabricVSwitch& vsw) = 0;
  // Creates the instance namespace with its primary ENI as eth0 (address,
  // default route via the vSwitch gateway, loopback up; the IPv6s the ENI
  // holds, as /128s, with a default route via the vSwitch's IPv6 gateway, as
  // an instance's boot configures what RunInstances' Ipv6AddressCount gave
  // it). Later IPv6s of the primary ENI are routed (SetEniIps), not
  // configured, until the instance is ensured again (a vpcsim restart).
  // Addresses are only added: one unassigned meanwhile stays on eth0 (dead:
  // the router no longer delivers it nor accepts it as a source).
  virtual Status EnsureInstance(const std::string& instance_id, const FabricEni& primary) = 0;
  virtual Status RemoveInstance(const std::string& instance_id) = 0;
  // Plugs the ENI into the instance as eth<device_index>, link down and
  // unconfigured (as a freshly hot-plugged NIC); the node's agent configures it.
  virtual Status AttachEni(const std::string& instance_id, const FabricEni& eni,
                           int device_index) = 0;
  // Unplugs the ENI wherever its link currently is (it may have been moved into
  // a pod's namespace by an exclusive-ENI datapath). Success if already gone.
  virtual Status DetachEni(const std::string& instance_id, const std::string& eni_id) = 0;
  // Replaces the set of IPs (IPv4 and IPv6) the router delivers to, and
  // accepts from, this ENI.
  virtual Status SetEniIps(const FabricEni& eni) = 0;

  // Name (not path) of namespaces, for `ip netns exec` and for SpawnInNetns.
  virtual std::string RouterNetns() const = 0;
  virtual std::string InstanceNetns(const std::string& instance_id) const = 0;

  // Removes every namespace, link, nft table and process of this world.
  virtual Status Destroy() = 0;
};

}  // namespace terway::vpcsim
