#include "k8s/node_config.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::k8s {
namespace {

std::string Describe(const ConfigMap& cm) {
  return fmt::format("ConfigMap {}/{}", cm.metadata.namespace_.empty() ? kEniConfigNamespace : cm.metadata.namespace_,
                     cm.metadata.name);
}

// The eni_conf key of a ConfigMap, parsed as a JSON object.
Result<Json> EniConfOf(const ConfigMap& cm) {
  auto it = cm.data.find(kEniConfKey);
  if (it == cm.data.end()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} has no key {}: add the eni_conf JSON under data.{}", Describe(cm),
                  kEniConfKey, kEniConfKey);
  }
  // nlohmann's non-throwing parse: a discarded value marks invalid input.
  Json j = Json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} key {} is not valid JSON: fix the text of data.{}", Describe(cm),
                  kEniConfKey, kEniConfKey);
  }
  if (!j.is_object()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} key {} must be a JSON object, got {}", Describe(cm), kEniConfKey,
                  j.type_name());
  }
  return j;
}

Result<ConfigMap> ReadConfigMap(RestClient& client, const std::string& name, const std::string& why) {
  auto raw = client.Get(resources::kConfigMaps, kEniConfigNamespace, name);
  if (!raw.ok()) {
    Error e = std::move(raw).error();
    if (e.code == ErrorCode::kNotFound) {
      e.message = fmt::format("ConfigMap {}/{} ({}) does not exist: create it or fix the reference",
                              kEniConfigNamespace, name, why);
      return e;
    }
    return std::move(e).Wrap(fmt::format("reading ConfigMap {}/{} ({})", kEniConfigNamespace, name, why));
  }
  auto cm = ParseConfigMap(*raw);
  if (!cm.ok()) return std::move(cm).error().Wrap(fmt::format("parsing ConfigMap {}/{}", kEniConfigNamespace, name));
  return cm;
}

}  // namespace

Json JsonMergePatch(Json target, const Json& patch) {
  // nlohmann's merge_patch is RFC 7386's MergePatch algorithm verbatim; the
  // unit tests hold it to the RFC's examples.
  target.merge_patch(patch);
  return target;
}

Result<NodeEniConf> MergeNodeEniConf(const ConfigMap& base, const std::optional<ConfigMap>& override_cm) {
  TERWAY_ASSIGN_OR_RETURN(Json merged, EniConfOf(base));
  NodeEniConf out;
  if (override_cm) {
    TERWAY_ASSIGN_OR_RETURN_CTX(Json patch, EniConfOf(*override_cm),
                                fmt::format("node override from label {}", kNodeConfigLabel));
    merged = JsonMergePatch(std::move(merged), patch);
    out.override_source = fmt::format("{}/{}", kEniConfigNamespace, override_cm->metadata.name);
  }
  out.eni_conf = merged.dump();
  if (auto it = base.data.find(kDisableNetworkPolicyKey); it != base.data.end()) {
    // Terway's manifests write the quoted YAML strings "true" / "false".
    std::string v;
    for (char c : it->second) v += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v == "true" || v == "1") {
      out.disable_network_policy = true;
    } else if (v != "false" && v != "0" && !v.empty()) {
      return Errorf(ErrorCode::kInvalidArgument, "{} key {} is \"{}\": write \"true\" or \"false\"", Describe(base),
                    kDisableNetworkPolicyKey, it->second);
    }
  }
  return out;
}

Result<NodeEniConf> LoadNodeEniConf(RestClient& client, const std::string& node_name) {
  auto raw_node = client.Get(resources::kNodes, "", node_name);
  if (!raw_node.ok()) return std::move(raw_node).error().Wrap(fmt::format("reading node {} for its eni_conf", node_name));
  auto node = ParseNode(*raw_node);
  if (!node.ok()) return std::move(node).error().Wrap(fmt::format("parsing node {}", node_name));

  TERWAY_ASSIGN_OR_RETURN(ConfigMap base, ReadConfigMap(client, kEniConfigName, "the cluster-wide eni_conf"));
  std::optional<ConfigMap> override_cm;
  if (auto it = node->metadata.labels.find(kNodeConfigLabel); it != node->metadata.labels.end()) {
    if (it->second.empty()) {
      return Errorf(ErrorCode::kInvalidArgument, "node {} has an empty {} label: name a ConfigMap in {} or remove it",
                    node_name, kNodeConfigLabel, kEniConfigNamespace);
    }
    TERWAY_ASSIGN_OR_RETURN(override_cm, ReadConfigMap(client, it->second,
                                                       fmt::format("named by label {} of node {}", kNodeConfigLabel,
                                                                   node_name)));
  }
  TERWAY_ASSIGN_OR_RETURN(NodeEniConf out, MergeNodeEniConf(base, override_cm));
  out.node_labels = node->metadata.labels;
  return out;
}

}  // namespace terway::k8s
