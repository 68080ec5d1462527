#include "config/eni_config.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include <nlohmann/json.hpp>

#include "config/json_values.h"

namespace terway::config {
namespace {

using nlohmann::json;

// One handler per key. Each consumes its value into the configuration or
// returns an error naming the key; nothing throws (values are type-checked
// before nlohmann's accessors are reached).
struct Parser {
  ParsedEniConfig out;
  std::string security_group;  // the older single key, merged at the end

  EniConfig& c() { return out.config; }
  // A Terway key this terwayd reads but whose feature it lacks: the warning
  // says what the node does instead.
  void Lacks(const std::string& key, const std::string& asked, const std::string& instead) {
    out.warnings.push_back(fmt::format("eni_conf key \"{}\" {}: not implemented by this terwayd; {}", key, asked,
                                       instead));
  }
};
using Handler = std::function<Status(Parser&, const std::string& key, const json& v)>;

template <typename T>
Handler Set(T EniConfig::*field, Result<T> (*get)(const json&, const std::string&)) {
  return [field, get](Parser& p, const std::string& key, const json& v) -> Status {
    TERWAY_ASSIGN_OR_RETURN(p.c().*field, get(v, key));
    return Ok();
  };
}
Handler SetInt(int EniConfig::*field, int min_value) {
  return [field, min_value](Parser& p, const std::string& key, const json& v) -> Status {
    TERWAY_ASSIGN_OR_RETURN(p.c().*field, GetInt(v, key, min_value));
    return Ok();
  };
}
Handler SetDuration(std::chrono::seconds EniConfig::*field) { return Set(field, &GetDuration); }
Handler SetString(std::string EniConfig::*field) { return Set(field, &GetString); }

// A string key with a closed set of values.
template <typename E>
Handler SetChoice(E EniConfig::*field, std::vector<std::pair<std::string, E>> choices, std::string hint) {
  return [=](Parser& p, const std::string& key, const json& v) -> Status {
    TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(v, key));
    for (const auto& [name, value] : choices) {
      if (s == name) {
        p.c().*field = value;
        return Ok();
      }
    }
    return KeyError(key, fmt::format("unknown value \"{}\"; {}", s, hint));
  };
}

// A boolean switch for a feature we do not have: false is what the node
// does anyway; true gets a warning.
Handler FeatureSwitch(std::string instead) {
  return [instead](Parser& p, const std::string& key, const json& v) -> Status {
    TERWAY_ASSIGN_OR_RETURN(bool on, GetBool(v, key));
    if (on) p.Lacks(key, "is true", instead);
    return Ok();
  };
}

Status ParseVSwitches(Parser& p, const std::string& key, const json& v) {
  if (!v.is_object()) {
    return KeyError(key, fmt::format("expected an object {{\"<zone>\": [\"vsw-...\"]}}, got {}", v.type_name()));
  }
  for (const auto& [zone, list] : v.items()) {
    if (!list.is_array()) {
      return KeyError(key, fmt::format("zone \"{}\" must list vSwitch ids, e.g. [\"vsw-...\"], got {}", zone,
                                       list.dump()));
    }
    TERWAY_ASSIGN_OR_RETURN(auto ids, GetStringList(list, key));
    for (const auto& id : ids) {
      if (id.empty()) return KeyError(key, fmt::format("zone {} lists an empty vSwitch id", zone));
    }
    p.c().vswitches[zone] = std::move(ids);
  }
  return Ok();
}

Status ParseVSwitchSelectionPolicy(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(v, key));
  // Upstream Terway's daemon maps "ordered" to "the vSwitch with the most
  // available IPs" (its chart's default); anything else means random. We
  // keep that, and add "list" for the configuration order.
  if (s == "ordered" || s == "most") p.c().vswitch_selection_policy = VSwitchSelectionPolicy::kMost;
  else if (s == "random" || s.empty()) p.c().vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
  else if (s == "list") p.c().vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
  else {
    return KeyError(key, fmt::format("unknown policy \"{}\"; use ordered (most available IPs first, as Terway), "
                                     "random, or list (configuration order)",
                                     s));
  }
  return Ok();
}

Status ParseEniSelectionPolicy(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(v, key));
  if (s == "most_ips" || s.empty()) p.c().eni_selection_policy = EniSelectionPolicy::kMostIps;
  else if (s == "least_ips") p.c().eni_selection_policy = EniSelectionPolicy::kLeastIps;
  else return KeyError(key, fmt::format("unknown policy \"{}\"; use most_ips (pack, the default) or least_ips (spread)", s));
  return Ok();
}

Status ParseTags(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(auto tags, GetStringMap(v, key, "tag"));
  for (auto& [k, val] : tags) p.c().eni_tags[k] = std::move(val);
  return Ok();
}

Status ParseTagBlockList(Parser& p, const std::string& key, const json& v) {
  if (!v.is_array()) {
    return KeyError(key, fmt::format("expected a list of {{\"key\": ..., \"value\": ...}}, got {}", v.type_name()));
  }
  for (const auto& item : v) {
    if (!item.is_object() || !item.contains("key") || !item["key"].is_string() ||
        (item.contains("value") && !item["value"].is_string())) {
      return KeyError(key, fmt::format("each entry is {{\"key\": \"<tag key>\", \"value\": \"<tag value>\"}} with "
                                       "string values, got {}",
                                       item.dump()));
    }
    EniTag tag{item["key"].get<std::string>(), item.value("value", "")};
    // As upstream: an entry without a key blocks nothing and is skipped.
    if (tag.key.empty()) continue;
    p.c().eni_tag_block_list.push_back(std::move(tag));
  }
  return Ok();
}

Status ParseServiceCidr(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(std::string text, GetString(v, key));
  // Terway allows "v4,v6"; the first IPv4 block is ours.
  std::string v4 = text.substr(0, text.find(','));
  if (v4.empty()) return Ok();
  auto cidr = Ipv4Cidr::Parse(v4);
  if (!cidr.ok()) {
    return KeyError(key, fmt::format("\"{}\" is not a valid IPv4 CIDR ({}); write it as \"172.21.0.0/20\"", text,
                                     cidr.error().message));
  }
  p.c().service_cidr = *cidr;
  return Ok();
}

Status ParseRateLimit(Parser& p, const std::string& key, const json& v) {
  if (!v.is_object()) return KeyError(key, "expected an object {\"<Action>\": <calls per minute>}");
  for (const auto& [action, n] : v.items()) {
    if (!n.is_number_integer() || n.get<int64_t>() <= 0 || n.get<int64_t>() > 1000000) {
      return KeyError(key, fmt::format("limit for {} must be a positive integer (calls per minute), got {}", action,
                                       n.dump()));
    }
    p.c().rate_limit[action] = n.get<int>();
  }
  return Ok();
}

Status ParseKubeClientQps(Parser& p, const std::string& key, const json& v) {
  if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 10000) {
    return KeyError(key, fmt::format("expected requests per second to the Kubernetes API (a number above 0, "
                                     "e.g. 20), got {}",
                                     v.dump()));
  }
  p.c().kube_client_qps = v.get<double>();
  return Ok();
}

Status ParseEniCapRatio(Parser& p, const std::string& key, const json& v) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 100) {
    return KeyError(key, fmt::format("expected a number such as 1 or 0.5 (the share of the instance's ENIs "
                                     "terwayd may use), got {}",
                                     v.dump()));
  }
  // As upstream: 0 means unset, i.e. 1.
  p.c().eni_cap_ratio = v.get<double>() == 0 ? 1 : v.get<double>();
  return Ok();
}

Status ParseEniCapShift(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(p.c().eni_cap_shift, GetSignedInt(v, key, -64, 64));
  return Ok();
}

Status ParseReclaimBatch(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(int n, GetInt(v, key, 0));
  p.c().idle_ip_reclaim_batch_size = n == 0 ? 5 : n;  // as upstream: 0 means the default
  return Ok();
}

Status ParseJitterFactor(Parser& p, const std::string& key, const json& v) {
  // Upstream writes it as a string ("0.1"); a bare number is taken too.
  double f = 0;
  if (v.is_number()) {
    f = v.get<double>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    f = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) {
      return KeyError(key, fmt::format("\"{}\" is not a number; write it as \"0.1\"", s));
    }
  } else {
    return KeyError(key, fmt::format("expected a number as a string, e.g. \"0.1\", got {}", v.dump()));
  }
  if (!std::isfinite(f) || f < 0 || f > 10) {
    return KeyError(key, fmt::format("{} is out of range: use a factor such as \"0.1\" (0 means the default, 0.1)", v.dump()));
  }
  p.c().idle_ip_reclaim_jitter_factor = f == 0 ? 0.1 : f;  // as upstream: <= 0 means the default
  return Ok();
}

Status ParseCredentialSource(Parser& p, const std::string& key, const json& v) {
  return SetChoice(&EniConfig::credential_source,
                   {{"auto", CredentialSource::kAuto},
                    {"static", CredentialSource::kStatic},
                    {"file", CredentialSource::kFile},
                    {"ram_role", CredentialSource::kRamRole}},
                   "use auto, static, file or ram_role")(p, key, v);
}

Status ParseEniMode(Parser& p, const std::string& key, const json& v) {
  TERWAY_TRY(SetChoice(&EniConfig::eni_mode, {{"shared", EniMode::kShared}, {"exclusive", EniMode::kExclusive}},
                       "use shared or exclusive")(p, key, v));
  p.c().eni_mode_set = true;
  return Ok();
}

Status ParseIpStack(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(v, key));
  if (s == "ipv4" || s.empty()) {  // upstream's default for an empty value
    p.c().ip_stack = IpStack::kIpv4;
    return Ok();
  }
  if (s == "dual") {
    p.c().ip_stack = IpStack::kDual;
    return Ok();
  }
  // Upstream's Validate accepts ipv4 and dual only: an IPv6-only node is
  // refused there too.
  return KeyError(key, fmt::format("unsupported ip_stack \"{}\"; use ipv4 or dual (IPv6-only nodes are not "
                                   "supported, as in upstream Terway)", s));
}

Status ParseIpamType(Parser& p, const std::string& key, const json& v) {
  TERWAY_ASSIGN_OR_RETURN(std::string s, GetString(v, key));
  if (s.empty() || s == "default") return Ok();
  if (s == "crd") {
    p.Lacks(key, "is \"crd\" (addresses managed by terway-controlplane)",
            "this node manages its own ENIs and addresses, with the pool settings of this eni_conf");
    return Ok();
  }
  return KeyError(key, fmt::format("unknown IPAM type \"{}\"; use crd or leave it out", s));
}

Status ParsePrefixes(Parser& p, const std::string& key, const json& v) {
  bool asked = false;
  if (key == "enable_ip_prefix") {
    TERWAY_ASSIGN_OR_RETURN(asked, GetBool(v, key));
  } else {
    TERWAY_ASSIGN_OR_RETURN(int n, GetInt(v, key, 0));
    asked = n > 0;
  }
  if (asked) p.Lacks(key, "asks for ENI prefixes", "pods get secondary IPs of the node's ENIs, one at a time");
  return Ok();
}

// Upstream's backoff names for the waits this terwayd does not have, and why
// an override of them changes nothing here.
const std::map<std::string, std::string>& BackoffNamesWithoutEffect() {
  static const auto* m = new std::map<std::string, std::string>{
      {"", "upstream falls back to it only for names it does not list, and every wait here has its own name"},
      {"eni_delete_confirm",
       "this terwayd does not poll for a deletion to finish; the pool's periodic sync with the cloud sees any ENI "
       "that remains"},
      {"meta_assign_private_ip",
       "this terwayd takes new addresses from the AssignPrivateIpAddresses reply, not from the metadata service"},
      {"meta_unassign_private_ip",
       "this terwayd takes the UnassignPrivateIpAddresses reply as done, not the metadata service"},
      {"wait_sts_token_ready", "RAM-role credentials are fetched with the metadata client's own bounded retries"},
  };
  return *m;
}
// Names only upstream's terway-controlplane (CRD, trunk and LENI modes) reads.
bool IsControlplaneBackoffName(const std::string& name) {
  static const std::set<std::string> names = {
      "eni_release",          "wait_eni_ip_removed",        "wait_member_eni_status", "wait_leni_status",
      "wait_hdeni_status",    "wait_ecs_leni_status",       "wait_ecs_hdeni_status",  "wait_podeni_status",
      "wait_networkinterface_status", "wait_node_status"};
  return names.count(name) > 0;
}

// One duration of a backoff entry: Go's time.Duration in JSON is a number of
// nanoseconds (what upstream reads); a Go duration string ("500ms") is ours.
Result<std::chrono::nanoseconds> GetBackoffDuration(const json& v, const std::string& where) {
  if (v.is_string()) {
    auto d = ParseGoDurationNanos(v.get<std::string>());
    if (!d.ok()) return KeyError("backoff_override", fmt::format("{}: {}", where, d.error().message));
    return *d;
  }
  if (!v.is_number()) {
    return KeyError("backoff_override",
                    fmt::format("{} must be nanoseconds (2000000000) or a duration (\"2s\"), got {}", where, v.dump()));
  }
  double ns = v.get<double>();
  if (ns < 0) return KeyError("backoff_override", fmt::format("{} is negative ({}); give 0 or more", where, v.dump()));
  if (ns > 86400e9) return KeyError("backoff_override", fmt::format("{} is over a day ({})", where, v.dump()));
  return std::chrono::nanoseconds(static_cast<int64_t>(ns));
}

// One entry, with Kubernetes wait.Backoff's field names. Go's encoding/json
// matches field names case-insensitively, so "Steps" and "steps" both work,
// and a field left out is zero, as upstream reads it.
Result<cloud::StepBackoff> ParseBackoffEntry(Parser& p, const std::string& name, const json& b) {
  const std::string where = fmt::format("\"{}\"", name);
  if (!b.is_object()) {
    return KeyError("backoff_override", fmt::format("entry {} must be an object, got {}", where, b.dump()));
  }
  cloud::StepBackoff out{.duration = std::chrono::nanoseconds(0), .factor = 0, .jitter = 0, .steps = 0};
  for (const auto& [field, v] : b.items()) {
    std::string f = field;
    std::transform(f.begin(), f.end(), f.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string at = fmt::format("{}.{}", where, field);
    if (f == "duration") {
      TERWAY_ASSIGN_OR_RETURN(out.duration, GetBackoffDuration(v, at));
    } else if (f == "cap") {
      TERWAY_ASSIGN_OR_RETURN(out.cap, GetBackoffDuration(v, at));
    } else if (f == "initialdelay") {
      TERWAY_ASSIGN_OR_RETURN(out.initial_delay, GetBackoffDuration(v, at));
    } else if (f == "factor" || f == "jitter") {
      if (!v.is_number()) return KeyError("backoff_override", fmt::format("{} must be a number, got {}", at, v.dump()));
      double x = v.get<double>();
      // Kubernetes reads a factor of 0 as "no growth"; below 1 otherwise the
      // waits would shrink towards a busy loop against the cloud.
      if (f == "factor" && x != 0 && (x < 1 || !std::isfinite(x))) {
        return KeyError("backoff_override", fmt::format("{} is {}; give 1 or more (1: equal waits)", at, v.dump()));
      }
      if (f == "jitter" && (x < 0 || !std::isfinite(x))) {
        return KeyError("backoff_override", fmt::format("{} is {}; give 0 or more (0.3: up to 30% longer)", at, v.dump()));
      }
      (f == "factor" ? out.factor : out.jitter) = x;
    } else if (f == "steps") {
      auto n = GetSignedInt(v, at, -1000000000, 1000000000);
      if (!n.ok()) return KeyError("backoff_override", fmt::format("{} must be an integer, got {}", at, v.dump()));
      if (*n < 1 || *n > 10000) {
        return KeyError("backoff_override",
                        fmt::format("{} is {}; give 1 to 10000 (the number of attempts, the first included)", at, *n));
      }
      out.steps = *n;
    } else {
      p.out.warnings.push_back(fmt::format(
          "eni_conf key \"backoff_override\": {} has no field \"{}\"; ignored (fields: Duration, Factor, Jitter, "
          "Steps, Cap, InitialDelay)", where, field));
    }
  }
  if (out.steps < 1) {
    // Upstream would not try even once with Steps 0 (wait.ExponentialBackoff
    // runs the condition Steps times); refused rather than copied.
    return KeyError("backoff_override", fmt::format("{}.Steps is missing or 0; give the number of attempts, 1 or more",
                                                    where));
  }
  return out;
}

Status ParseBackoffOverride(Parser& p, const std::string& key, const json& v) {
  if (!v.is_object()) {
    return KeyError(key, fmt::format("expected an object {{\"<backoff name>\": {{\"Duration\": ..., ...}}}}, got {}",
                                     v.type_name()));
  }
  CloudBackoffs& out = p.c().backoff;
  for (const auto& [name, b] : v.items()) {
    TERWAY_ASSIGN_OR_RETURN(cloud::StepBackoff parsed, ParseBackoffEntry(p, name, b));
    if (name == "eni_ops") {
      out.eni_attach_wait = parsed;
    } else if (name == "wait_eni_status") {
      out.eni_detach_wait = parsed;
    } else if (name == "eni_create") {
      out.eni_create = parsed;
    } else if (name == "eni_ip_ops") {
      out.eni_ip_ops = parsed;
    } else if (auto why = BackoffNamesWithoutEffect().find(name); why != BackoffNamesWithoutEffect().end()) {
      p.out.warnings.push_back(fmt::format(
          "eni_conf key \"{}\": the override of \"{}\" has no effect on this terwayd: {}", key, name, why->second));
    } else if (IsControlplaneBackoffName(name)) {
      p.out.warnings.push_back(fmt::format(
          "eni_conf key \"{}\": the override of \"{}\" has no effect on this terwayd: upstream's terway-controlplane "
          "reads it (CRD, trunk and LENI modes), and this node has no controlplane",
          key, name));
    } else {
      p.out.warnings.push_back(fmt::format(
          "eni_conf key \"{}\": \"{}\" is not a backoff name upstream Terway knows; ignored (this terwayd honours "
          "eni_ops, wait_eni_status, eni_create and eni_ip_ops)",
          key, name));
    }
  }
  return Ok();
}

Status ParseExtraRoutes(Parser& p, const std::string& key, const json& v) {
  if (!v.is_array()) return KeyError(key, fmt::format("expected a list of {{\"dst\": \"<CIDR>\"}}, got {}", v.type_name()));
  for (const auto& r : v) {
    if (!r.is_object() || !r.contains("dst") || !r["dst"].is_string() ||
        !Ipv4Cidr::Parse(r["dst"].get<std::string>()).ok()) {
      return KeyError(key, fmt::format("each route is {{\"dst\": \"<IPv4 CIDR>\"}}, got {}", r.dump()));
    }
  }
  if (!v.empty()) {
    p.out.warnings.push_back(
        "eni_conf key \"extra_routes\" is set: upstream Terway's node daemon does not apply it either (its extra pod "
        "routes come from the k8s.aliyun.com/pod-networks annotation); pods get their default route only");
  }
  return Ok();
}

// Keys that appear in older Terway configurations but mean nothing to the
// node daemon any more.
Handler Obsolete(std::string why) {
  return [why](Parser& p, const std::string& key, const json&) -> Status {
    p.out.warnings.push_back(fmt::format("eni_conf key \"{}\" {}; ignored", key, why));
    return Ok();
  };
}

const std::map<std::string, Handler>& Handlers() {
  static const auto* h = new std::map<std::string, Handler>{
      {"version", [](Parser&, const std::string&, const json&) { return Ok(); }},
      {"max_pool_size", SetInt(&EniConfig::max_pool_size, 0)},
      {"min_pool_size", SetInt(&EniConfig::min_pool_size, 0)},
      {"ip_warm_up_size", SetInt(&EniConfig::ip_warm_up_size, 0)},
      {"max_eni", SetInt(&EniConfig::max_eni, 0)},
      {"min_eni", SetInt(&EniConfig::min_eni, 0)},
      {"eni_cap_ratio", ParseEniCapRatio},
      {"eni_cap_shift", ParseEniCapShift},
      {"idle_ip_reclaim_after", SetDuration(&EniConfig::idle_ip_reclaim_after)},
      {"idle_ip_reclaim_interval", SetDuration(&EniConfig::idle_ip_reclaim_interval)},
      {"idle_ip_reclaim_batch_size", ParseReclaimBatch},
      {"idle_ip_reclaim_jitter_factor", ParseJitterFactor},
      {"ip_pool_sync_period", SetDuration(&EniConfig::ip_pool_sync_period)},
      {"vswitches", ParseVSwitches},
      {"vswitch_selection_policy", ParseVSwitchSelectionPolicy},
      {"eni_selection_policy", ParseEniSelectionPolicy},
      {"security_group", [](Parser& p, const std::string& key, const json& v) -> Status {
         TERWAY_ASSIGN_OR_RETURN(p.security_group, GetString(v, key));
         return Ok();
       }},
      {"security_groups", Set(&EniConfig::security_groups, &GetStringList)},
      {"eni_tags", ParseTags},
      {"eni_tag_filter", [](Parser& p, const std::string& key, const json& v) -> Status {
         TERWAY_ASSIGN_OR_RETURN(p.c().eni_tag_filter, GetStringMap(v, key, "tag"));
         return Ok();
       }},
      {"eni_tag_block_list", ParseTagBlockList},
      {"resource_group_id", SetString(&EniConfig::resource_group_id)},
      {"rate_limit", ParseRateLimit},
      {"custom_stateful_workload_kinds", Set(&EniConfig::custom_stateful_workload_kinds, &GetStringList)},
      {"credential_path", SetString(&EniConfig::credential_path)},
      {"access_key", SetString(&EniConfig::access_key)},
      {"access_secret", SetString(&EniConfig::access_secret)},
      {"region_id", SetString(&EniConfig::region_id)},
      {"service_cidr", ParseServiceCidr},
      {"kube_client_qps", ParseKubeClientQps},
      {"kube_client_burst", SetInt(&EniConfig::kube_client_burst, 1)},
      {"enable_patch_pod_ips", Set(&EniConfig::enable_patch_pod_ips, &GetBool)},
      {"disable_device_plugin", Set(&EniConfig::disable_device_plugin, &GetBool)},
      // Terway features this terwayd does not have.
      {"ip_stack", ParseIpStack},
      {"ipam_type", ParseIpamType},
      {"enable_eni_trunking",
       FeatureSwitch("no trunk ENI is made; pods take addresses of the node's shared ENIs (no per-pod vSwitch or "
                     "security group through PodNetworking)")},
      {"enable_erdma", FeatureSwitch("no ERDMA ENI is made and no aliyun/erdma resource is offered; pods get "
                                     "ordinary ENI addresses")},
      {"enable_ip_prefix", ParsePrefixes},
      {"ipv4_prefix_count", ParsePrefixes},
      {"ipv6_prefix_count", ParsePrefixes},
      {"backoff_override", ParseBackoffOverride},
      {"extra_routes", ParseExtraRoutes},
      {"prefix", Obsolete("is read by no part of upstream Terway's node daemon")},
      {"enable_eip_pool", Obsolete("belonged to Terway's removed EIP feature (use ack-extend-network-controller)")},
      {"disable_security_group_check", Obsolete("is not an eni_conf key of current Terway")},
      {"hostPort", Obsolete("is not an eni_conf key of current Terway (host ports are the portmap plugin's)")},
      {"host_stack_cidrs", Obsolete("belongs to the CNI configuration (10-terway.conf), not to eni_conf")},
      // Our additions.
      {"credential_source", ParseCredentialSource},
      {"ecs_endpoint", SetString(&EniConfig::ecs_endpoint)},
      {"vpc_endpoint", SetString(&EniConfig::vpc_endpoint)},
      {"metadata_endpoint", SetString(&EniConfig::metadata_endpoint)},
      {"daemon_socket", SetString(&EniConfig::daemon_socket)},
      {"state_path", SetString(&EniConfig::state_path)},
      {"ip_reservation_window", SetDuration(&EniConfig::ip_reservation_window)},
      {"leaked_eni_grace_period", SetDuration(&EniConfig::leaked_eni_grace_period)},
      {"eni_mode", ParseEniMode},
      {"bandwidth_annotation_error",
       SetChoice(&EniConfig::bandwidth_annotation_error,
                 {{"refuse", BandwidthAnnotationError::kRefuse}, {"ignore", BandwidthAnnotationError::kIgnore}},
                 "use refuse or ignore")},
      {"metadata_credentials_for_pods",
       SetChoice(&EniConfig::metadata_credentials_for_pods,
                 {{"deny", MetadataCredentialsForPods::kDeny}, {"allow", MetadataCredentialsForPods::kAllow}},
                 "use deny (pods cannot read the node's RAM role credentials) or allow")},
  };
  return *h;
}

// Checks across keys, once every key is read.
Status Finish(Parser& p) {
  EniConfig& c = p.c();
  if (c.min_pool_size > c.max_pool_size) {
    // Upstream lowers it silently; say so, since the node keeps fewer warm.
    p.out.warnings.push_back(fmt::format("eni_conf: min_pool_size ({}) is greater than max_pool_size ({}); the "
                                         "node keeps at most {} idle (as Terway does); raise max_pool_size to keep "
                                         "more",
                                         c.min_pool_size, c.max_pool_size, c.max_pool_size));
    c.min_pool_size = c.max_pool_size;
  }
  // security_group (the older single key) first; no duplicates.
  std::vector<std::string> merged;
  if (!p.security_group.empty()) merged.push_back(p.security_group);
  for (auto& sg : c.security_groups) {
    if (sg.empty()) return KeyError("security_groups", "lists an empty security group id");
    if (std::find(merged.begin(), merged.end(), sg) == merged.end()) merged.push_back(sg);
  }
  c.security_groups = std::move(merged);
  if (c.security_groups.size() > 10) {
    return KeyError("security_groups", fmt::format("{} groups given; Terway allows at most 10 (and the cloud "
                                                   "may allow fewer per ENI)",
                                                   c.security_groups.size()));
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
    return Errorf(ErrorCode::kInvalidArgument, "eni_conf: credential_source is \"file\" but credential_path is missing");
  }
  // Terway always tags its ENIs so leaked ones can be found and collected.
  c.eni_tags["creator"] = "terway";
  return Ok();
}

}  // namespace

const char* MetadataCredentialsForPodsName(MetadataCredentialsForPods m) {
  switch (m) {
    case MetadataCredentialsForPods::kDeny: return "deny";
    case MetadataCredentialsForPods::kAllow: return "allow";
  }
  return "?";
}

const std::vector<EniTag>& BuiltInEniTagBlockList() {
  // Upstream Terway's DefaultENITagBlockList, applied whatever the operator
  // lists: the ERDMA controller's ENIs, and a tag any controller can set to
  // keep Terway off an ENI.
  static const std::vector<EniTag> list = {{"creator", "alibabacloud-erdma-controller"},
                                           {"terway.alibabacloud.com/excluded", "true"}};
  return list;
}

std::map<std::string, cloud::StepBackoff> CloudBackoffs::ActionBackoffs() const {
  std::map<std::string, cloud::StepBackoff> out;
  // The same calls upstream's node daemon wraps in these two backoffs.
  if (eni_create) out["CreateNetworkInterface"] = *eni_create;
  if (eni_ip_ops) {
    for (const char* action : {"AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "AssignIpv6Addresses",
                               "UnassignIpv6Addresses"}) {
      out[action] = *eni_ip_ops;
    }
  }
  return out;
}

std::vector<std::string> EniConfig::VSwitchesForZone(const std::string& zone) const {
  auto it = vswitches.find(zone);
  return it == vswitches.end() ? std::vector<std::string>{} : it->second;
}

Result<ParsedEniConfig> ParseEniConfig(const std::string& json_text) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Errorf(ErrorCode::kInvalidArgument, "eni_conf is not valid JSON: fix the text (a trailing comma or an "
                                               "unquoted key are common causes)");
  }
  if (!j.is_object()) {
    return Errorf(ErrorCode::kInvalidArgument, "eni_conf must be a JSON object, got {}", j.type_name());
  }
  Parser p;
  for (const auto& [key, value] : j.items()) {
    if (value.is_null()) continue;  // Go's json treats null as "unset"
    const auto& handlers = Handlers();
    auto h = handlers.find(key);
    if (h == handlers.end()) {
      p.out.warnings.push_back(fmt::format("eni_conf key \"{}\" is unknown; ignored (check the spelling)", key));
      continue;
    }
    TERWAY_TRY(h->second(p, key, value));
  }
  TERWAY_TRY(Finish(p));
  return std::move(p.out);
}

ipam::PoolConfig PoolConfigOf(const EniConfig& c) {
  ipam::PoolConfig p;
  p.max_pool_size = c.max_pool_size;
  p.min_pool_size = c.min_pool_size;
  p.ip_warm_up_size = c.ip_warm_up_size;
  p.max_eni = c.max_eni;
  p.min_eni = c.min_eni;
  p.eni_cap_ratio = c.eni_cap_ratio;
  p.eni_cap_shift = c.eni_cap_shift;
  p.vswitch_selection_policy = c.vswitch_selection_policy;
  p.eni_selection_policy = c.eni_selection_policy;
  p.security_groups = c.security_groups;
  p.eni_tags = c.eni_tags;
  p.resource_group_id = c.resource_group_id;
  p.eni_tag_block_list = BuiltInEniTagBlockList();
  for (const auto& t : c.eni_tag_block_list) {
    if (std::find(p.eni_tag_block_list.begin(), p.eni_tag_block_list.end(), t) == p.eni_tag_block_list.end()) {
      p.eni_tag_block_list.push_back(t);
    }
  }
  p.eni_tag_filter = c.eni_tag_filter;
  p.idle_ip_reclaim_after = c.idle_ip_reclaim_after;
  p.idle_ip_reclaim_interval = c.idle_ip_reclaim_interval;
  p.idle_ip_reclaim_batch_size = c.idle_ip_reclaim_batch_size;
  p.idle_ip_reclaim_jitter_factor = c.idle_ip_reclaim_jitter_factor;
  p.ip_pool_sync_period = c.ip_pool_sync_period;
  p.custom_stateful_workload_kinds = c.custom_stateful_workload_kinds;
  p.ip_reservation_window = c.ip_reservation_window;
  p.leaked_eni_grace_period = c.leaked_eni_grace_period;
  p.eni_mode = c.eni_mode;
  p.ip_stack = c.ip_stack;
  return p;
}

}  // namespace terway::config
