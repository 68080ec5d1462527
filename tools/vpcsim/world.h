// A world: the static definition of one emulated region and VPC, loaded from
// YAML (see worlds/default.yaml). Instances listed here are created on the
// first start only; later ones come and go through the admin endpoint.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"

namespace terway::vpcsim {

struct WorldVSwitch {
  std::string id;
  std::string zone;
  Ipv4Cidr cidr;
  Ipv4Addr gateway;                  // derived: the block's third-last address (.253 of a /24)
  std::optional<Ipv6Cidr> ipv6_cidr; // a /64 inside the VPC's /56; IPv6 actions fail without one
  Ipv6Addr ipv6_gateway;             // derived when ipv6_cidr is set: <block>:ffff:ffff:ffff:fff7
};

struct WorldInstance {
  std::string id;
  std::string instance_type;
  std::string vswitch_id;
  // IPv6 addresses the primary ENI gets at creation: RunInstances'
  // Ipv6AddressCount ("the number of randomly generated IPv6 addresses to
  // assign to the primary ENI", 1..10; absent = none, as on ECS). Needs a
  // vSwitch with IPv6 and an instance type with EniIpv6AddressQuantity.
  int ipv6_address_count = 0;
};

// RunInstances' bound on Ipv6AddressCount.
inline constexpr int kMaxInstanceIpv6AddressCount = 10;

struct AccessKey {
  std::string id;
  std::string secret;
};

struct World {
  std::string name;    // short; prefixes the fabric's namespaces ("<name>-vpc")
  std::string region;  // e.g. cn-hangzhou
  std::vector<std::string> zones;
  std::string vpc_id;
  Ipv4Cidr vpc_cidr;
  // IPv6 enabled on the VPC: the /56 its vSwitches take their /64s from. A
  // unique local block (fd00::/8), as the IPv4 side stays in 198.18.0.0/15.
  std::optional<Ipv6Cidr> vpc_ipv6_cidr;
  std::vector<WorldVSwitch> vswitches;
  std::vector<WorldInstance> instances;
  std::vector<AccessKey> access_keys;
  std::string ram_role = "TerwayRole";
  std::string default_security_group = "sg-vpcsim";
  int sts_ttl_seconds = 3600;
  // Metadata service "hardened mode": reads need a token from PUT /latest/api/token.
  // Normal mode (false) also answers tokenless reads, as ECS does by default.
  bool metadata_hardened = false;

  const WorldVSwitch* FindVSwitch(const std::string& id) const;
  const AccessKey* FindAccessKey(const std::string& id) const;
};

// The vSwitch gateway (and the first usable address): Alibaba Cloud reserves the
// first and the last three addresses of every vSwitch block.
Ipv4Addr VSwitchGateway(const Ipv4Cidr& cidr);
Ipv4Addr FirstUsable(const Ipv4Cidr& cidr);
Ipv4Addr LastUsable(const Ipv4Cidr& cidr);
uint64_t UsableCount(const Ipv4Cidr& cidr);
// The IPv6 side of a vSwitch /64: the gateway as the metadata service shows it
// (the block's ffff:ffff:ffff:fff7, as in Alibaba's metadata reference), and
// whether an address may be handed to an ENI: not the block's first address
// (the subnet-router anycast) and not the reserved top from the gateway up.
Ipv6Addr VSwitchIpv6Gateway(const Ipv6Cidr& cidr);
bool Ipv6Assignable(const Ipv6Cidr& cidr, const Ipv6Addr& a);

Result<World> ParseWorld(const std::string& yaml_text);
Result<World> LoadWorld(const std::string& path);
// Checks an instance against the world (known vSwitch, known type, id shape,
// an ipv6_address_count the vSwitch and the type can serve).
Status ValidateInstance(const World& w, const WorldInstance& i);

}  // namespace terway::vpcsim
