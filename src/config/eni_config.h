// Terway's `eni_conf` (the `eni-config` ConfigMap), with Terway's key names
// and types, plus a few keys of our own (listed in README.md). Parsing never throws and never aborts on keys it
// does not know: Terway users carry keys for features we do not have, so
// those produce warnings. A known key with a wrong type or value is an error
// naming the key and the fix.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "config/go_duration.h"
#include "ipam/pool_config.h"

namespace terway::config {

using ipam::EniMode;
using ipam::VSwitchSelectionPolicy;

// What terwayd does with a pod whose bandwidth annotation is malformed (our
// key `bandwidth_annotation_error`): refuse its ADD with an error naming the
// annotation (the default: an operator who asked for a limit never gets an
// unlimited pod by a typo), or start it without a limit and warn.
enum class BandwidthAnnotationError { kRefuse, kIgnore };

// Whether pods may read the node's RAM-role credentials from the metadata
// service (our key `metadata_credentials_for_pods`). kDeny (the default):
// terwayd steers pods' metadata traffic through a filtering proxy that
// refuses the `ram/security-credentials` tree, except for pods annotated
// `k8s.aliyun.com/allow-node-ram-role: "true"` (src/metadata/README.md).
// kAllow: pods reach the metadata service directly, as with upstream Terway.
enum class MetadataCredentialsForPods { kDeny, kAllow };
const char* MetadataCredentialsForPodsName(MetadataCredentialsForPods m);

// Where cloud credentials come from (our key `credential_source`).
enum class CredentialSource {
  kAuto,     // access_key/access_secret if set, else credential_path, else RAM role
  kStatic,   // access_key/access_secret, required
  kFile,     // credential_path, required
  kRamRole,  // the instance's RAM role via the metadata service
};

struct EniConfig {
  // --- Terway keys ---
  int max_pool_size = 5;
  int min_pool_size = 0;
  std::map<std::string, std::vector<std::string>> vswitches;  // zone -> vSwitch ids, in order
  VSwitchSelectionPolicy vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
  std::vector<std::string> security_groups;  // security_group first, then security_groups
  std::map<std::string, std::string> eni_tags;  // always contains creator=terway
  int max_eni = 0;  // 0: no limit below the instance's quota
  int min_eni = 0;
  std::chrono::seconds idle_ip_reclaim_after{0};      // 0: release above max_pool_size at once
  std::chrono::seconds idle_ip_reclaim_interval{60};
  int idle_ip_reclaim_batch_size = 5;
  std::chrono::seconds ip_pool_sync_period{120};
  std::string credential_path;
  std::string access_key;
  std::string access_secret;
  std::string region_id;
  std::optional<Ipv4Cidr> service_cidr;
  std::map<std::string, int> rate_limit;  // action -> calls per minute
  std::vector<std::string> custom_stateful_workload_kinds;  // sticky IPs, besides StatefulSet

  // --- our additions ---
  CredentialSource credential_source = CredentialSource::kAuto;
  std::string ecs_endpoint;       // default ecs-vpc.<region>.aliyuncs.com
  std::string vpc_endpoint;       // default vpc-vpc.<region>.aliyuncs.com
  std::string metadata_endpoint;  // default http://100.100.100.200
  std::chrono::seconds ip_reservation_window{300};
  std::chrono::seconds leaked_eni_grace_period{600};
  std::string daemon_socket = "/var/run/eni/eni.socket";
  std::string state_path = "/var/lib/terway/state.db";
  EniMode eni_mode = EniMode::kShared;
  BandwidthAnnotationError bandwidth_annotation_error = BandwidthAnnotationError::kRefuse;
  MetadataCredentialsForPods metadata_credentials_for_pods = MetadataCredentialsForPods::kDeny;
  // terwayd's client-side limit towards the Kubernetes API (Terway's keys);
  // 0: the client's defaults (5 QPS, burst 10, as client-go).
  double kube_client_qps = 0;
  int kube_client_burst = 0;

  // vSwitches configured for a zone, in configuration order; if the zone is
  // not configured, empty (the caller then falls back to the node's own
  // vSwitch, as Terway does).
  std::vector<std::string> VSwitchesForZone(const std::string& zone) const;
};

struct ParsedEniConfig {
  EniConfig config;
  std::vector<std::string> warnings;  // unknown keys, ignored Terway features
};

// Parses the eni_conf JSON text.
Result<ParsedEniConfig> ParseEniConfig(const std::string& json_text);

// The pool's share of the configuration: no credentials, no endpoints.
ipam::PoolConfig PoolConfigOf(const EniConfig& c);

}  // namespace terway::config
