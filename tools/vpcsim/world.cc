#include "tools/vpcsim/world.h"

#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "tools/vpcsim/catalogue.h"

namespace terway::vpcsim {

const WorldVSwitch* World::FindVSwitch(const std::string& id) const {
  for (const auto& v : vswitches) {
    if (v.id == id) return &v;
  }
  return nullptr;
}

const AccessKey* World::FindAccessKey(const std::string& id) const {
  for (const auto& k : access_keys) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

Ipv4Addr VSwitchGateway(const Ipv4Cidr& cidr) { return Ipv4Addr(cidr.Broadcast().value() - 2); }
Ipv4Addr FirstUsable(const Ipv4Cidr& cidr) { return cidr.At(1); }
Ipv4Addr LastUsable(const Ipv4Cidr& cidr) { return Ipv4Addr(cidr.Broadcast().value() - 3); }
uint64_t UsableCount(const Ipv4Cidr& cidr) { return cidr.size() - 4; }

namespace {
constexpr uint64_t kIpv6GatewayHost = 0xfffffffffffffff7ULL;

uint64_t HostPart(const Ipv6Addr& a) {
  uint64_t low = 0;
  for (int k = 8; k < 16; k++) low = (low << 8) | a.bytes()[k];
  return low;
}
}  // namespace

Ipv6Addr VSwitchIpv6Gateway(const Ipv6Cidr& cidr) { return cidr.At(kIpv6GatewayHost); }

bool Ipv6Assignable(const Ipv6Cidr& cidr, const Ipv6Addr& a) {
  if (!cidr.Contains(a)) return false;
  uint64_t host = HostPart(a);
  return host != 0 && host < kIpv6GatewayHost;
}

namespace {

Error Bad(const std::string& what) { return MakeError(ErrorCode::kInvalidArgument, what); }

// Ids become parts of namespace names and SQL keys: keep them to a safe alphabet.
bool SafeId(const std::string& s) {
  if (s.empty() || s.size() > 40) return false;
  for (char c : s) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

Result<std::string> Str(const YAML::Node& n, const char* key, bool required, const std::string& where) {
  if (!n[key]) {
    if (required) return Bad(fmt::format("{}: missing key '{}'", where, key));
    return std::string();
  }
  if (!n[key].IsScalar()) return Bad(fmt::format("{}: '{}' must be a string", where, key));
  return n[key].as<std::string>();
}

Result<World> Parse(const YAML::Node& root) {
  if (!root.IsMap()) return Bad("world: the document must be a mapping");
  World w;
  TERWAY_ASSIGN_OR_RETURN(w.name, Str(root, "name", false, "world"));
  if (w.name.empty()) w.name = "vs";
  if (!SafeId(w.name) || w.name.size() > 8) {
    return Bad(fmt::format("world: name '{}' must be 1-8 characters of [A-Za-z0-9-_] "
                           "(it prefixes namespace and link names)", w.name));
  }
  TERWAY_ASSIGN_OR_RETURN(w.region, Str(root, "region", true, "world"));
  if (root["zones"]) {
    if (!root["zones"].IsSequence()) return Bad("world: 'zones' must be a list");
    for (const auto& z : root["zones"]) w.zones.push_back(z.as<std::string>());
  }
  const YAML::Node vpc = root["vpc"];
  if (!vpc || !vpc.IsMap()) return Bad("world: missing mapping 'vpc' (id, cidr, vswitches)");
  TERWAY_ASSIGN_OR_RETURN(w.vpc_id, Str(vpc, "id", true, "vpc"));
  TERWAY_ASSIGN_OR_RETURN(std::string vpc_cidr, Str(vpc, "cidr", true, "vpc"));
  auto cidr = Ipv4Cidr::Parse(vpc_cidr);
  if (!cidr.ok()) return Bad(fmt::format("vpc {}: bad cidr '{}': {}", w.vpc_id, vpc_cidr, cidr.error().message));
  w.vpc_cidr = *cidr;
  // The emulated VPC must stay inside the benchmarking range so that nothing
  // it routes can ever collide with a real network on this machine.
  static const Ipv4Cidr kBench = *Ipv4Cidr::Parse("198.18.0.0/15");
  if (!kBench.Contains(w.vpc_cidr)) {
    return Bad(fmt::format("vpc {}: cidr {} must lie inside 198.18.0.0/15", w.vpc_id, vpc_cidr));
  }
  if (vpc["ipv6_cidr"]) {
    std::string text = vpc["ipv6_cidr"].as<std::string>();
    auto v6 = Ipv6Cidr::Parse(text);
    if (!v6.ok() || v6->prefix_len() != 56) {
      return Bad(fmt::format("vpc {}: ipv6_cidr '{}' must be an IPv6 /56 (what Alibaba Cloud gives a VPC)",
                             w.vpc_id, text));
    }
    // Unique local only: the fabric routes these inside its namespaces, and a
    // global block could shadow a real route of this machine.
    static const Ipv6Cidr kUla = *Ipv6Cidr::Parse("fd00::/8");
    if (!kUla.Contains(v6->network())) {
      return Bad(fmt::format("vpc {}: ipv6_cidr {} must lie inside fd00::/8", w.vpc_id, text));
    }
    w.vpc_ipv6_cidr = *v6;
  }
  if (!vpc["vswitches"] || !vpc["vswitches"].IsSequence() || vpc["vswitches"].size() == 0) {
    return Bad(fmt::format("vpc {}: needs a non-empty list 'vswitches'", w.vpc_id));
  }
  std::set<std::string> ids;
  for (const auto& n : vpc["vswitches"]) {
    WorldVSwitch v;
    TERWAY_ASSIGN_OR_RETURN(v.id, Str(n, "id", true, "vswitch"));
    const std::string where = "vswitch " + v.id;
    if (!SafeId(v.id)) return Bad(where + ": id must be [A-Za-z0-9-_], at most 40 characters");
    if (!ids.insert(v.id).second) return Bad(where + ": duplicate id");
    TERWAY_ASSIGN_OR_RETURN(v.zone, Str(n, "zone", true, where));
    if (!w.zones.empty() &&
        std::find(w.zones.begin(), w.zones.end(), v.zone) == w.zones.end()) {
      return Bad(fmt::format("{}: zone '{}' is not in the world's zones", where, v.zone));
    }
    TERWAY_ASSIGN_OR_RETURN(std::string c, Str(n, "cidr", true, where));
    auto vc = Ipv4Cidr::Parse(c);
    if (!vc.ok()) return Bad(fmt::format("{}: bad cidr '{}': {}", where, c, vc.error().message));
    v.cidr = *vc;
    if (!w.vpc_cidr.Contains(v.cidr)) {
      return Bad(fmt::format("{}: cidr {} is outside the VPC cidr {}", where, c, w.vpc_cidr.ToString()));
    }
    if (v.cidr.prefix_len() > 29 || v.cidr.prefix_len() < 16) {
      return Bad(fmt::format("{}: cidr {} must be /16 to /29 (as Alibaba Cloud allows)", where, c));
    }
    for (const auto& other : w.vswitches) {
      if (other.cidr.Overlaps(v.cidr)) {
        return Bad(fmt::format("{}: cidr {} overlaps vswitch {}", where, c, other.id));
      }
    }
    v.gateway = VSwitchGateway(v.cidr);
    if (n["ipv6_cidr"]) {
      auto v6 = Ipv6Cidr::Parse(n["ipv6_cidr"].as<std::string>());
      if (!v6.ok() || v6->prefix_len() != 64) return Bad(where + ": ipv6_cidr must be an IPv6 /64");
      if (!w.vpc_ipv6_cidr) {
        return Bad(fmt::format("{}: has an ipv6_cidr but vpc {} has none; give the vpc an ipv6_cidr "
                               "(a /56 in fd00::/8) first, as IPv6 is enabled on a VPC before its vSwitches",
                               where, w.vpc_id));
      }
      if (!w.vpc_ipv6_cidr->Contains(v6->network())) {
        return Bad(fmt::format("{}: ipv6_cidr {} is outside the VPC ipv6_cidr {}", where, v6->ToString(),
                               w.vpc_ipv6_cidr->ToString()));
      }
      for (const auto& other : w.vswitches) {
        if (other.ipv6_cidr && *other.ipv6_cidr == *v6) {
          return Bad(fmt::format("{}: ipv6_cidr {} is also vswitch {}'s", where, v6->ToString(), other.id));
        }
      }
      v.ipv6_cidr = *v6;
      v.ipv6_gateway = VSwitchIpv6Gateway(*v6);
    }
    w.vswitches.push_back(std::move(v));
  }
  if (w.zones.empty()) {
    for (const auto& v : w.vswitches) {
      if (std::find(w.zones.begin(), w.zones.end(), v.zone) == w.zones.end()) w.zones.push_back(v.zone);
    }
  }
  if (!root["access_keys"] || !root["access_keys"].IsSequence() || root["access_keys"].size() == 0) {
    return Bad("world: needs a non-empty list 'access_keys' (id, secret) the API accepts");
  }
  for (const auto& n : root["access_keys"]) {
    AccessKey k;
    TERWAY_ASSIGN_OR_RETURN(k.id, Str(n, "id", true, "access key"));
    TERWAY_ASSIGN_OR_RETURN(k.secret, Str(n, "secret", true, "access key " + k.id));
    if (k.id.empty() || k.secret.empty()) return Bad("access key: id and secret must be non-empty");
    if (k.id.rfind("STS.", 0) == 0) return Bad("access key " + k.id + ": the prefix STS. is reserved");
    w.access_keys.push_back(std::move(k));
  }
  if (root["ram_role"]) w.ram_role = root["ram_role"].as<std::string>();
  if (!SafeId(w.ram_role)) return Bad("world: ram_role must be [A-Za-z0-9-_]");
  if (root["security_group"]) w.default_security_group = root["security_group"].as<std::string>();
  if (root["sts_ttl_seconds"]) w.sts_ttl_seconds = root["sts_ttl_seconds"].as<int>();
  if (w.sts_ttl_seconds < 60) return Bad("world: sts_ttl_seconds must be at least 60");
  if (root["metadata_hardened"]) w.metadata_hardened = root["metadata_hardened"].as<bool>();
  if (root["instances"]) {
    if (!root["instances"].IsSequence()) return Bad("world: 'instances' must be a list");
    std::set<std::string> iids;
    for (const auto& n : root["instances"]) {
      WorldInstance i;
      TERWAY_ASSIGN_OR_RETURN(i.id, Str(n, "id", true, "instance"));
      TERWAY_ASSIGN_OR_RETURN(i.instance_type, Str(n, "instance_type", true, "instance " + i.id));
      TERWAY_ASSIGN_OR_RETURN(i.vswitch_id, Str(n, "vswitch", true, "instance " + i.id));
      if (n["ipv6_address_count"]) {
        try {
          i.ipv6_address_count = n["ipv6_address_count"].as<int>();
        } catch (const YAML::Exception&) {
          return Bad(fmt::format("instance {}: ipv6_address_count must be an integer (0..{})", i.id,
                                 kMaxInstanceIpv6AddressCount));
        }
      }
      TERWAY_TRY(ValidateInstance(w, i));
      if (!iids.insert(i.id).second) return Bad("instance " + i.id + ": duplicate id");
      w.instances.push_back(std::move(i));
    }
  }
  return w;
}

}  // namespace

Status ValidateInstance(const World& w, const WorldInstance& i) {
  const std::string where = "instance " + i.id;
  if (!SafeId(i.id) || i.id.size() > 24) {
    return Bad(where + ": id must be 1-24 characters of [A-Za-z0-9-_] (it names a namespace)");
  }
  if (FindInstanceType(i.instance_type) == nullptr) {
    return Bad(fmt::format("{}: unknown instance type '{}' (see DescribeInstanceTypes)", where,
                           i.instance_type));
  }
  const WorldVSwitch* v = w.FindVSwitch(i.vswitch_id);
  if (v == nullptr) {
    return Bad(fmt::format("{}: unknown vswitch '{}'", where, i.vswitch_id));
  }
  if (i.ipv6_address_count == 0) return Ok();
  // RunInstances' rules for Ipv6AddressCount, checked before anything is
  // allocated so that a refused instance leaves no trace.
  if (i.ipv6_address_count < 0 || i.ipv6_address_count > kMaxInstanceIpv6AddressCount) {
    return Bad(fmt::format("{}: ipv6_address_count {} is out of range: 1..{} IPv6 addresses for the primary ENI "
                           "(RunInstances' Ipv6AddressCount), or 0 for none",
                           where, i.ipv6_address_count, kMaxInstanceIpv6AddressCount));
  }
  if (!v->ipv6_cidr) {
    return Bad(fmt::format("{}: ipv6_address_count {} but vswitch {} has no ipv6_cidr (IPv6 is not enabled on it); "
                           "give the vswitch and its VPC an ipv6_cidr, or leave ipv6_address_count out",
                           where, i.ipv6_address_count, i.vswitch_id));
  }
  const int quota = FindInstanceType(i.instance_type)->eni_ipv6_address_quantity;
  if (quota == 0) {
    return Bad(fmt::format("{}: ipv6_address_count {} but instance type {} does not support IPv6 "
                           "(EniIpv6AddressQuantity 0); leave ipv6_address_count out or pick a type with IPv6",
                           where, i.ipv6_address_count, i.instance_type));
  }
  if (i.ipv6_address_count > quota) {
    return Bad(fmt::format("{}: ipv6_address_count {} exceeds the {} IPv6 addresses instance type {} gives an ENI "
                           "(EniIpv6AddressQuantity); ask for at most {}",
                           where, i.ipv6_address_count, quota, i.instance_type, quota));
  }
  return Ok();
}

Result<World> ParseWorld(const std::string& yaml_text) {
  try {
    return Parse(YAML::Load(yaml_text));
  } catch (const YAML::Exception& e) {
    return Bad(fmt::format("world: YAML error: {}", e.what()));
  }
}

Result<World> LoadWorld(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Errorf(ErrorCode::kNotFound, "world file {}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto w = ParseWorld(ss.str());
  if (!w.ok()) return std::move(w).error().Wrap("loading world file " + path);
  return w;
}

}  // namespace terway::vpcsim
