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
  std::optional<Ipv6Cidr> ipv6_cidr; // IPv6 actions fail on a vSwitch without one
};

struct WorldInstance {
  std::string id;
  std::string instance_type;
  std::string vswitch_id;
};

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

Result<World> ParseWorld(const std::string& yaml_text);
Result<World> LoadWorld(const std::string& path);
// Checks an instance against the world (known vSwitch, known type, id shape).
Status ValidateInstance(const World& w, const WorldInstance& i);

}  // namespace terway::vpcsim
