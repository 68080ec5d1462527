// Per-node eni_conf, as Terway resolves it: the cluster-wide ConfigMap
// kube-system/eni-config key eni_conf, with the eni_conf of the ConfigMap
// named by the node's `terway-config` label (also in kube-system) applied on
// top as a JSON merge patch (RFC 7386). Operators use this to give a node
// pool its own vSwitches, security groups or pool sizes without forking the
// whole configuration.
//
// Every failure is an error naming the ConfigMap, the key and the cause; an
// override that cannot be read is an error too, never a silent fallback to
// the base, because a node quietly running with the wrong vSwitches is worse
// than a daemon that refuses to start and says why.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "k8s/client.h"
#include "k8s/types.h"

namespace terway::k8s {

inline constexpr char kEniConfigNamespace[] = "kube-system";
inline constexpr char kEniConfigName[] = "eni-config";
inline constexpr char kEniConfKey[] = "eni_conf";
// eni-config's switch for NetworkPolicy, next to eni_conf as in Terway
// ("true": terway enforces no policy and watches no policy objects).
inline constexpr char kDisableNetworkPolicyKey[] = "disable_network_policy";
// Node label naming the per-node override ConfigMap (in kube-system).
inline constexpr char kNodeConfigLabel[] = "terway-config";

// RFC 7386 JSON merge patch: objects merge recursively, null deletes a
// member, anything else (arrays, scalars) replaces the target.
Json JsonMergePatch(Json target, const Json& patch);

struct NodeEniConf {
  // The merged eni_conf JSON text, as src/config's ParseEniConfig takes it.
  std::string eni_conf;
  // "kube-system/<name>" of the override applied, empty when the node has
  // no terway-config label.
  std::string override_source;
  // From eni-config's disable_network_policy ("true"/"false"; absent: false).
  bool disable_network_policy = false;
  // The node's labels (the exclusive-ENI label is read from them).
  std::map<std::string, std::string> node_labels;
};

// The pure part: merge a base eni_conf with an optional override, both as
// read from their ConfigMaps. The ConfigMaps' names appear in the errors.
Result<NodeEniConf> MergeNodeEniConf(const ConfigMap& base, const std::optional<ConfigMap>& override_cm);

// Reads the node, eni-config and (if labelled) the override ConfigMap
// through the client and merges them.
Result<NodeEniConf> LoadNodeEniConf(RestClient& client, const std::string& node_name);

}  // namespace terway::k8s
