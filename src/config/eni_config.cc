#include "config/eni_config.h"

#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

namespace terway::config {
namespace {

using nlohmann::json;

// Terway keys we parse but whose features this implementation does not have:
// accepted silently-with-a-note so an existing ConfigMap loads unchanged.
const std::set<std::string> kTerwayKeysIgnored = {
    "ip_warm_up_size", "prefix", "eni_cap_ratio", "eni_cap_shift",
    "eni_selection_policy", "ip_stack", "enable_eni_trunking", "enable_erdma", "ipam_type",
    "backoff_override", "extra_routes", "disable_device_plugin", "eni_tag_filter",
    "resource_group_id", "enable_patch_pod_ips",
    "enable_ip_prefix", "ipv4_prefix_count", "ipv6_prefix_count",
    "idle_ip_reclaim_jitter_factor", "enable_eip_pool", "disable_security_group_check",
    "hostPort", "host_stack_cidrs"};

Error KeyError(const std::string& key, const std::string& what) {
  return Errorf(ErrorCode::kInvalidArgument, "eni_conf key \"{}\": {}", key, what);
}

const char* TypeName(const json& v) { return v.type_name(); }

Result<int> GetInt(const json& j, const std::string& key, int min_value) {
  const json& v = j.at(key);
  if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    return KeyError(key, fmt::format("expected an integer, got {} ({}); write it without quotes, "
                                     "e.g. \"{}\": 5",
                                     TypeName(v), v.dump(), key));
  }
  double d = v.get<double>();
  if (d < min_value || d > 1e9) {
    return KeyError(key, fmt::format("{} is out of range (must be >= {})", v.dump(), min_value));
  }
  return static_cast<int>(d);
}

Result<std::string> GetString(const json& j, const std::string& key) {
  const json& v = j.at(key);
  if (!v.is_string()) {
    return KeyError(key, fmt::format("expected a string, got {} ({})", TypeName(v), v.dump()));
  }
  return v.get<std::string>();
}

Result<std::vector<std::string>> GetStringList(const json& j, const std::string& key) {
  const json& v = j.at(key);
  if (!v.is_array()) {
    return KeyError(key, fmt::format("expected a list of strings, got {}", TypeName(v)));
  }
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) {
      return KeyError(key, fmt::format("expected a list of strings, found element {}", e.dump()));
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<std::chrono::seconds> GetDuration(const json& j, const std::string& key) {
  TERWAY_ASSIGN_OR_RETURN(std::string text, GetString(j, key));
  auto d = ParseGoDuration(text);
  if (!d.ok()) return KeyError(key, d.error().message + " (use Go duration syntax, e.g. \"30m\")");
  return *d;
}

}  // namespace

const char* MetadataCredentialsForPodsName(MetadataCredentialsForPods m) {
  switch (m) {
    case MetadataCredentialsForPods::kDeny: return "deny";
    case MetadataCredentialsForPods::kAllow: return "allow";
  }
  return "?";
}

ipam::PoolConfig PoolConfigOf(const EniConfig& c) {
  ipam::PoolConfig p;
  p.max_pool_size = c.max_pool_size;
  p.min_pool_size = c.min_pool_size;
  p.max_eni = c.max_eni;
  p.min_eni = c.min_eni;
  p.vswitch_selection_policy = c.vswitch_selection_policy;
  p.security_groups = c.security_groups;
  p.eni_tags = c.eni_tags;
  p.idle_ip_reclaim_after = c.idle_ip_reclaim_after;
  p.idle_ip_reclaim_interval = c.idle_ip_reclaim_interval;
  p.idle_ip_reclaim_batch_size = c.idle_ip_reclaim_batch_size;
  p.ip_pool_sync_period = c.ip_pool_sync_period;
  p.custom_stateful_workload_kinds = c.custom_stateful_workload_kinds;
  p.ip_reservation_window = c.ip_reservation_window;
  p.leaked_eni_grace_period = c.leaked_eni_grace_period;
  p.eni_mode = c.eni_mode;
  return p;
}

std::vector<std::string> EniConfig::VSwitchesForZone(const std::string& zone) const {
  auto it = vswitches.find(zone);
  return it == vswitches.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedEniConfig> ParseEniConfig(const std::string& json_text) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "eni_conf is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) {
    return Errorf(ErrorCode::kInvalidArgument, "eni_conf must be a JSON object, got {}", j.type_name());
  }
  ParsedEniConfig out;
  EniConfig& c = out.config;
  std::string security_group;
  bool have_sg_list = false;

  // Each handler consumes one key. nlohmann::json's accessors below are only
  // reached after type checks, so nothing throws past this function.
  for (const auto& [key, value] : j.items()) {
    if (value.is_null()) continue;  // Go's json treats null as "unset"
    if (key == "version") continue;  // Terway's config format version: nothing to do
    if (key == "max_pool_size") {
      TERWAY_ASSIGN_OR_RETURN(c.max_pool_size, GetInt(j, key, 0));
    } else if (key == "min_pool_size") {
      TERWAY_ASSIGN_OR_RETURN(c.min_pool_size, GetInt(j, key, 0));
    } else if (key == "max_eni") {
      TERWAY_ASSIGN_OR_RETURN(c.max_eni, GetInt(j, key, 0));
    } else if (key == "min_eni") {
      TERWAY_ASSIGN_OR_RETURN(c.min_eni, GetInt(j, key, 0));
    } else if (key == "idle_ip_reclaim_batch_size") {
      TERWAY_ASSIGN_OR_RETURN(c.idle_ip_reclaim_batch_size, GetInt(j, key, 1));
    } else if (key == "idle_ip_reclaim_after") {
      TERWAY_ASSIGN_OR_RETURN(c.idle_ip_reclaim_after, GetDuration(j, key));
    } else if (key == "idle_ip_reclaim_interval") {
      TERWAY_ASSIGN_OR_RETURN(c.idle_ip_reclaim_interval, GetDuration(j, key));
    } else if (key == "ip_pool_sync_period") {
      TERWAY_ASSIGN_OR_RETURN(c.ip_pool_sync_period, GetDuration(j, key));
    } else if (key == "ip_reservation_window") {
      TERWAY_ASSIGN_OR_RETURN(c.ip_reservation_window, GetDuration(j, key));
    } else if (key == "leaked_eni_grace_period") {
      TERWAY_ASSIGN_OR_RETURN(c.leaked_eni_grace_period, GetDuration(j, key));
    } else if (key == "vswitches") {
      if (!value.is_object()) {
        return KeyError(key, fmt::format("expected an object {{\"<zone>\": [\"vsw-...\"]}}, got {}",
                                         TypeName(value)));
      }
      for (const auto& [zone, list] : value.items()) {
        TERWAY_ASSIGN_OR_RETURN(auto ids, GetStringList(value, zone));
        for (const auto& id : ids) {
          if (id.empty()) return KeyError(key, fmt::format("zone {} lists an empty vSwitch id", zone));
        }
        c.vswitches[zone] = std::move(ids);
      }
    } else if (key == "vswitch_selection_policy") {
      TERWAY_ASSIGN_OR_RETURN(std::string p, GetString(j, key));
      if (p == "ordered") c.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
      else if (p == "random" || p.empty()) c.vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
      else if (p == "most") c.vswitch_selection_policy = VSwitchSelectionPolicy::kMost;
      else return KeyError(key, fmt::format("unknown policy \"{}\"; use ordered, random or most", p));
    } else if (key == "security_group") {
      TERWAY_ASSIGN_OR_RETURN(security_group, GetString(j, key));
    } else if (key == "security_groups") {
      TERWAY_ASSIGN_OR_RETURN(c.security_groups, GetStringList(j, key));
      have_sg_list = true;
    } else if (key == "eni_tags") {
      if (!value.is_object()) return KeyError(key, "expected an object of string tag values");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) {
          return KeyError(key, fmt::format("tag \"{}\" must have a string value, got {}", k, v.dump()));
        }
        c.eni_tags[k] = v.get<std::string>();
      }
    } else if (key == "rate_limit") {
      if (!value.is_object()) return KeyError(key, "expected an object {\"<Action>\": <calls per minute>}");
      for (const auto& [action, v] : value.items()) {
        if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
          return KeyError(key, fmt::format("limit for {} must be a positive integer, got {}", action,
                                           v.dump()));
        }
        c.rate_limit[action] = v.get<int>();
      }
    } else if (key == "custom_stateful_workload_kinds") {
      TERWAY_ASSIGN_OR_RETURN(c.custom_stateful_workload_kinds, GetStringList(j, key));
    } else if (key == "credential_path") {
      TERWAY_ASSIGN_OR_RETURN(c.credential_path, GetString(j, key));
    } else if (key == "access_key") {
      TERWAY_ASSIGN_OR_RETURN(c.access_key, GetString(j, key));
    } else if (key == "access_secret") {
      TERWAY_ASSIGN_OR_RETURN(c.access_secret, GetString(j, key));
    } else if (key == "region_id") {
      TERWAY_ASSIGN_OR_RETURN(c.region_id, GetString(j, key));
    } else if (key == "service_cidr") {
      TERWAY_ASSIGN_OR_RETURN(std::string text, GetString(j, key));
      // Terway allows "v4,v6"; the first IPv4 block is ours.
      std::string v4 = text.substr(0, text.find(','));
      if (!v4.empty()) {
        auto cidr = Ipv4Cidr::Parse(v4);
        if (!cidr.ok()) {
          return KeyError(key, fmt::format("\"{}\" is not a valid IPv4 CIDR ({}); write it as "
                                           "\"172.21.0.0/20\"",
                                           text, cidr.error().message));
        }
        c.service_cidr = *cidr;
      }
    } else if (key == "credential_source") {
      TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(j, key));
      if (s == "auto") c.credential_source = CredentialSource::kAuto;
      else if (s == "static") c.credential_source = CredentialSource::kStatic;
      else if (s == "file") c.credential_source = CredentialSource::kFile;
      else if (s == "ram_role") c.credential_source = CredentialSource::kRamRole;
      else return KeyError(key, fmt::format("unknown source \"{}\"; use auto, static, file or ram_role", s));
    } else if (key == "ecs_endpoint") {
      TERWAY_ASSIGN_OR_RETURN(c.ecs_endpoint, GetString(j, key));
    } else if (key == "vpc_endpoint") {
      TERWAY_ASSIGN_OR_RETURN(c.vpc_endpoint, GetString(j, key));
    } else if (key == "metadata_endpoint") {
      TERWAY_ASSIGN_OR_RETURN(c.metadata_endpoint, GetString(j, key));
    } else if (key == "daemon_socket") {
      TERWAY_ASSIGN_OR_RETURN(c.daemon_socket, GetString(j, key));
    } else if (key == "state_path") {
      TERWAY_ASSIGN_OR_RETURN(c.state_path, GetString(j, key));
    } else if (key == "eni_mode") {
      TERWAY_ASSIGN_OR_RETURN(std::string m, GetString(j, key));
      if (m == "shared") c.eni_mode = EniMode::kShared;
      else if (m == "exclusive") c.eni_mode = EniMode::kExclusive;
      else return KeyError(key, fmt::format("unknown mode \"{}\"; use shared or exclusive", m));
    } else if (key == "kube_client_qps") {
      if (!value.is_number() || value.get<double>() <= 0 || value.get<double>() > 10000) {
        return KeyError(key, fmt::format("expected requests per second to the Kubernetes API (a number above 0, "
                                         "e.g. 20), got {}",
                                         value.dump()));
      }
      c.kube_client_qps = value.get<double>();
    } else if (key == "kube_client_burst") {
      TERWAY_ASSIGN_OR_RETURN(c.kube_client_burst, GetInt(j, key, 1));
    } else if (key == "bandwidth_annotation_error") {
      TERWAY_ASSIGN_OR_RETURN(std::string m, GetString(j, key));
      if (m == "refuse") c.bandwidth_annotation_error = BandwidthAnnotationError::kRefuse;
      else if (m == "ignore") c.bandwidth_annotation_error = BandwidthAnnotationError::kIgnore;
      else return KeyError(key, fmt::format("unknown action \"{}\"; use refuse or ignore", m));
    } else if (key == "metadata_credentials_for_pods") {
      TERWAY_ASSIGN_OR_RETURN(std::string m, GetString(j, key));
      if (m == "deny") c.metadata_credentials_for_pods = MetadataCredentialsForPods::kDeny;
      else if (m == "allow") c.metadata_credentials_for_pods = MetadataCredentialsForPods::kAllow;
      else return KeyError(key, fmt::format("unknown value \"{}\"; use deny (pods cannot read the node's RAM role "
                                            "credentials) or allow", m));
    } else if (kTerwayKeysIgnored.count(key)) {
      out.warnings.push_back(fmt::format("eni_conf key \"{}\" is a Terway feature this daemon "
                                         "does not implement; ignored", key));
    } else {
      out.warnings.push_back(fmt::format("eni_conf key \"{}\" is unknown; ignored (check the "
                                         "spelling)", key));
    }
  }

  // Cross-key validation.
  if (c.min_pool_size > c.max_pool_size) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf: min_pool_size ({}) is greater than max_pool_size ({}); raise "
                  "max_pool_size or lower min_pool_size",
                  c.min_pool_size, c.max_pool_size);
  }
  if (c.max_eni > 0 && c.min_eni > c.max_eni) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf: min_eni ({}) is greater than max_eni ({})", c.min_eni, c.max_eni);
  }
  if (!security_group.empty()) {
    // security_group (the older single key) comes first; no duplicates.
    std::vector<std::string> merged{security_group};
    for (auto& sg : c.security_groups) {
      if (sg != security_group) merged.push_back(sg);
    }
    c.security_groups = std::move(merged);
  }
  (void)have_sg_list;
  if (c.security_groups.size() > 5) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf key \"security_groups\": {} groups given, an ENI can join at most 5",
                  c.security_groups.size());
  }
  if (c.access_key.empty() != c.access_secret.empty()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf: \"{}\" is set but \"{}\" is missing; set both, or neither to use "
                  "the instance's RAM role",
                  c.access_key.empty() ? "access_secret" : "access_key",
                  c.access_key.empty() ? "access_key" : "access_secret");
  }
  if (c.credential_source == CredentialSource::kStatic && c.access_key.empty()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf: credential_source is \"static\" but access_key/access_secret are "
                  "missing; add them or use credential_source \"ram_role\"");
  }
  if (c.credential_source == CredentialSource::kFile && c.credential_path.empty()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "eni_conf: credential_source is \"file\" but credential_path is missing");
  }
  // Terway always tags its ENIs so leaked ones can be found and collected.
  c.eni_tags["creator"] = "terway";
  return out;
}

}  // namespace terway::config
