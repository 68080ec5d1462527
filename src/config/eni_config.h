// Terway's `eni_conf` (the `eni-config` ConfigMap), with upstream Terway's
// key names, types, defaults and meanings, plus a few keys of our own
// (listed in README.md). Parsing never throws and never aborts on keys it
// does not know: Terway users carry keys for features we do not have, so
// those produce a warning saying what the node does instead. A known key
// with a wrong type or value is an error naming the key and the fix.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cloud/step_backoff.h"
#include "common/ip.h"
#include "common/result.h"
#include "config/go_duration.h"
#include "ipam/pool_config.h"

namespace terway::config {

using ipam::EniMode;
using ipam::IpStack;
using ipam::EniSelectionPolicy;
using ipam::EniTag;
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

// eni_conf `backoff_override`, under upstream Terway's backoff names, for the
// waits around cloud calls this terwayd has. Names upstream uses for waits we
// do not have are warned about (README.md says which and why).
struct CloudBackoffs {
  // "eni_ops": polling a new ENI until it is InUse after the attach (upstream's
  // node daemon waits for exactly this with it).
  cloud::StepBackoff eni_attach_wait = cloud::kDefaultEniStatusWait;
  // "wait_eni_status": polling an ENI until it is Available after a detach.
  cloud::StepBackoff eni_detach_wait = cloud::kDefaultEniStatusWait;
  // "eni_create" and "eni_ip_ops": when set, the retries of
  // CreateNetworkInterface, and of (Un)AssignPrivateIpAddresses and
  // (Un)AssignIpv6Addresses; unset, the OpenAPI client's default retries.
  std::optional<cloud::StepBackoff> eni_create;
  std::optional<cloud::StepBackoff> eni_ip_ops;

  // OpenAPI action -> retry schedule (cloud::CloudOptions::action_backoff).
  std::map<std::string, cloud::StepBackoff> ActionBackoffs() const;
};

struct EniConfig {
  // --- Terway keys, with upstream Terway's meaning and default ---
  // Absent sizes are 0, as in upstream (its chart writes 5 and 0); a
  // min_pool_size above max_pool_size is lowered to it, with a warning.
  int max_pool_size = 0;
  int min_pool_size = 0;
  int ip_warm_up_size = 0;
  std::map<std::string, std::vector<std::string>> vswitches;  // zone -> vSwitch ids, in order
  VSwitchSelectionPolicy vswitch_selection_policy = VSwitchSelectionPolicy::kRandom;
  EniSelectionPolicy eni_selection_policy = EniSelectionPolicy::kMostIps;
  // security_group and security_groups together, without duplicates; empty:
  // the primary ENI's groups (read from the cloud).
  std::vector<std::string> security_groups;
  std::map<std::string, std::string> eni_tags;  // always contains creator=terway
  std::map<std::string, std::string> eni_tag_filter;
  std::vector<EniTag> eni_tag_block_list;  // the operator's; PoolConfigOf adds upstream's built-in ones
  std::string resource_group_id;
  int max_eni = 0;  // 0: no limit below the instance's quota
  int min_eni = 0;
  double eni_cap_ratio = 1;
  int eni_cap_shift = 0;
  std::chrono::seconds idle_ip_reclaim_after{0};  // 0: no reclaim below max_pool_size
  std::chrono::seconds idle_ip_reclaim_interval{600};
  int idle_ip_reclaim_batch_size = 5;
  double idle_ip_reclaim_jitter_factor = 0.1;
  std::chrono::seconds ip_pool_sync_period{120};
  std::string credential_path;
  std::string access_key;
  std::string access_secret;
  std::string region_id;
  std::optional<Ipv4Cidr> service_cidr;
  std::map<std::string, int> rate_limit;  // action -> calls per minute
  std::vector<std::string> custom_stateful_workload_kinds;  // sticky IPs, besides StatefulSet
  // terwayd's client-side limit towards the Kubernetes API; 0: the client's
  // defaults (5 QPS, burst 10, as client-go).
  double kube_client_qps = 0;
  int kube_client_burst = 0;
  // Whether terwayd writes k8s.aliyun.com/pod-ips on the pods it serves.
  bool enable_patch_pod_ips = true;
  // Exclusive ENI: whether the node advertises aliyun/eni (one per ENI slot).
  bool disable_device_plugin = false;
  CloudBackoffs backoff;  // backoff_override

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
  // ip_stack: "ipv4" (default) or "dual" (each pod gets an IPv4 and an IPv6
  // of one ENI). "ipv6" is refused, as upstream's Validate refuses it.
  IpStack ip_stack = IpStack::kIpv4;
  bool eni_mode_set = false;  // the key was given (the node label may override it)
  BandwidthAnnotationError bandwidth_annotation_error = BandwidthAnnotationError::kRefuse;
  MetadataCredentialsForPods metadata_credentials_for_pods = MetadataCredentialsForPods::kDeny;

  // vSwitches configured for a zone, in configuration order; if the zone is
  // not configured, empty (the caller then falls back to the node's own
  // vSwitch, as Terway does).
  std::vector<std::string> VSwitchesForZone(const std::string& zone) const;
};

// ENI tags upstream Terway always treats as "not ours" besides the operator's
// eni_tag_block_list: ENIs of the ERDMA controller, and a generic opt-out.
const std::vector<EniTag>& BuiltInEniTagBlockList();

struct ParsedEniConfig {
  EniConfig config;
  std::vector<std::string> warnings;  // unknown keys, ignored Terway features
};

// Parses the eni_conf JSON text.
Result<ParsedEniConfig> ParseEniConfig(const std::string& json_text);

// The pool's share of the configuration: no credentials, no endpoints.
ipam::PoolConfig PoolConfigOf(const EniConfig& c);

}  // namespace terway::config
