// terwayd's configuration: where the Kubernetes API is, eni_conf (the
// cluster's ConfigMap plus this node's override with an API, else the file),
// the socket and state paths, the node's ENI mode and the datapath it
// implies. Create's first step, LoadConfiguration; nothing here touches the
// cloud or the kernel.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "config/node_mode.h"
#include "daemon/daemon.h"
#include "k8s/config.h"
#include "k8s/node_config.h"

namespace terway::daemon {

namespace {
Result<std::string> ReadEniConfText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Errorf(ErrorCode::kNotFound,
                  "cannot read the eni_conf file {}: {}; mount the eni-config ConfigMap's "
                  "eni_conf key there or pass --config", path, std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

Result<config::EniConfig> LoadEniConfig(const std::string& path) {
  TERWAY_ASSIGN_OR_RETURN(auto text, ReadEniConfText(path));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(text), "in " + path);
  for (const auto& w : parsed.warnings) log::Warn("config {}: {}", path, w);
  return parsed.config;
}

cloud::CloudOptions CloudOptionsFromConfig(const config::EniConfig& c) {
  cloud::CloudOptions o;
  o.region_id = c.region_id;
  o.ecs_endpoint = c.ecs_endpoint;
  o.vpc_endpoint = c.vpc_endpoint;
  o.metadata_endpoint = c.metadata_endpoint;
  o.rate_limit = c.rate_limit;
  o.access_key = c.access_key;
  o.access_secret = c.access_secret;
  o.credential_path = c.credential_path;
  o.action_backoff = c.backoff.ActionBackoffs();  // backoff_override
  switch (c.credential_source) {
    case config::CredentialSource::kAuto: o.credential_kind = cloud::CredentialKind::kAuto; break;
    case config::CredentialSource::kStatic: o.credential_kind = cloud::CredentialKind::kStatic; break;
    case config::CredentialSource::kFile: o.credential_kind = cloud::CredentialKind::kFile; break;
    case config::CredentialSource::kRamRole: o.credential_kind = cloud::CredentialKind::kRamRole; break;
  }
  return o;
}

Result<std::optional<k8s::RestConfig>> ResolveKubeConfig(const DaemonOptions& opts) {
  std::optional<k8s::RestConfig> cfg;
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (!opts.kubeconfig.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(cfg, k8s::LoadKubeconfig(opts.kubeconfig), "--kubeconfig " + opts.kubeconfig);
  } else if (host != nullptr && *host != '\0') {
    TERWAY_ASSIGN_OR_RETURN_CTX(cfg, k8s::LoadInClusterConfig(), "the in-cluster Kubernetes configuration");
  }
  if (!opts.api_server.empty()) {
    // As client-go's -master: the server of whatever configuration there is,
    // or the server alone (no credentials) when there is none.
    if (!cfg) cfg = k8s::RestConfig{};
    cfg->server = opts.api_server;
  }
  return cfg;
}

// eni_conf (the cluster's ConfigMap plus this node's override with an API,
// else the file), the socket and state paths, and the datapath it implies.
Status Daemon::LoadConfiguration() {
  TERWAY_ASSIGN_OR_RETURN(kube_config_, ResolveKubeConfig(opts_));
  if (kube_config_) {
    TERWAY_TRY(LoadEniConfFromApi());
  } else {
    TERWAY_TRY(LoadEniConfFromFile());
  }
  if (opts_.socket_path.empty()) opts_.socket_path = config_.daemon_socket;
  if (opts_.state_path.empty()) opts_.state_path = config_.state_path;
  return ChooseEniModeAndDatapath();
}

Status Daemon::LoadEniConfFromApi() {
  if (opts_.node_name.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a Kubernetes API is configured but not this node's name: pass --node-name or set "
                     "$NODE_NAME (the DaemonSet sets it from spec.nodeName)");
  }
  kube_client_ = k8s::RestClient::FromConfig(*kube_config_);
  // With an API, eni_conf is the cluster's (plus this node's override);
  // --config is not read, so a stale file cannot shadow the ConfigMap.
  TERWAY_ASSIGN_OR_RETURN_CTX(auto conf, k8s::LoadNodeEniConf(*kube_client_, opts_.node_name),
                              fmt::format("reading eni_conf of node {} from ConfigMap {}/{} (server {})",
                                          opts_.node_name, k8s::kEniConfigNamespace, k8s::kEniConfigName,
                                          kube_config_->server));
  config_source_ = fmt::format("ConfigMap {}/{}{}", k8s::kEniConfigNamespace, k8s::kEniConfigName,
                               conf.override_source.empty() ? "" : " + " + conf.override_source);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(conf.eni_conf), "eni_conf of " + config_source_);
  for (const auto& w : parsed.warnings) log::Warn("config {}: {}", config_source_, w);
  config_ = parsed.config;
  eni_conf_text_ = conf.eni_conf;
  disable_network_policy_ = conf.disable_network_policy;
  node_labels_ = conf.node_labels;
  if (config_.kube_client_qps > 0 || config_.kube_client_burst > 0) {
    // The operator's limit from eni_conf, for every request from here on
    // (the first reads above ran with the defaults).
    k8s::RestConfig limited = *kube_config_;
    if (config_.kube_client_qps > 0) limited.qps = config_.kube_client_qps;
    if (config_.kube_client_burst > 0) limited.burst = config_.kube_client_burst;
    kube_client_ = k8s::RestClient::FromConfig(limited);
    log::Info("kubernetes client limited to {} QPS, burst {} (eni_conf kube_client_qps/kube_client_burst)",
              limited.qps, limited.burst);
  }
  log::Info("kubernetes API {} node {}: eni_conf from {}", kube_config_->server, opts_.node_name, config_source_);
  return Ok();
}

Status Daemon::LoadEniConfFromFile() {
  log::Info("no Kubernetes API configured (no --kubeconfig, no in-cluster service account): running API-less, "
            "eni_conf from {}; pod labels/annotations, pod GC by the API and node reports are off",
            opts_.config_path);
  // One read: what nodeconfig shows is exactly what was parsed.
  TERWAY_ASSIGN_OR_RETURN(eni_conf_text_, ReadEniConfText(opts_.config_path));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto parsed, config::ParseEniConfig(eni_conf_text_), "in " + opts_.config_path);
  for (const auto& w : parsed.warnings) log::Warn("config {}: {}", opts_.config_path, w);
  config_ = parsed.config;
  config_source_ = opts_.config_path;
  return Ok();
}

Status Daemon::ChooseEniModeAndDatapath() {
  // The node label and -daemon-mode may choose exclusive ENI over eni_conf.
  TERWAY_ASSIGN_OR_RETURN(mode_choice_, config::ResolveEniMode(config_, node_labels_, opts_.daemon_mode));
  for (const auto& w : mode_choice_.warnings) log::Warn("node {}: {}", opts_.node_name, w);
  config_.eni_mode = mode_choice_.mode;
  log::Info("eni mode {} ({})", ipam::EniModeName(config_.eni_mode), mode_choice_.source);
  const bool exclusive = config_.eni_mode == ipam::EniMode::kExclusive;
  const std::string mode = exclusive ? "exclusive" : "shared";
  datapath_choice_ = opts_.datapath == "auto" ? mode : opts_.datapath;
  const std::string& dp = datapath_choice_;
  if (dp != "none" && dp != "shared" && dp != "exclusive") {
    return Errorf(ErrorCode::kInvalidArgument, "--datapath must be auto, shared, exclusive or none, not '{}'",
                  opts_.datapath);
  }
  if (dp == "none" && exclusive) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "eni_mode exclusive moves each pod's ENI into the pod, so it has no IPAM-only form; "
                     "drop --datapath none (or use eni_mode shared)");
  }
  if (dp != "none" && dp != mode) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "--datapath {} does not match the node's ENI mode \"{}\" ({}, {}): pods of a node are wired the "
                  "way its addresses are handed out; use --datapath auto",
                  dp, mode, mode_choice_.source, config_source_);
  }
  datapath_mode_ = dp == "none" ? "" : dp;
  return Ok();
}

}  // namespace terway::daemon
