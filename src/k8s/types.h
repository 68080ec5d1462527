// Typed views of the Kubernetes objects terway reads and writes.
//
// Parsing is strict about the types of the fields we use (a string where a
// number belongs is an error naming the field) and lenient about everything
// else (unknown fields are ignored, absent optional fields take defaults), so
// a newer API server never breaks us while a corrupted object never slips in
// half-understood. Callers (the caches) log and skip what fails to parse.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace terway::k8s {

using Json = nlohmann::json;
using Labels = std::map<std::string, std::string>;

struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty for cluster-scoped objects
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  Labels labels;
  std::map<std::string, std::string> annotations;
  std::vector<OwnerReference> owner_references;
  std::string creation_timestamp;
  std::optional<std::string> deletion_timestamp;

  // "namespace/name" or "name": the key caches index by.
  std::string Key() const { return namespace_.empty() ? name : namespace_ + "/" + name; }
};

struct ContainerPort {
  std::string name;  // may be empty; NetworkPolicy resolves named ports by it
  int32_t container_port = 0;
  std::string protocol = "TCP";
};

struct Container {
  std::string name;
  std::vector<ContainerPort> ports;
};

struct Pod {
  ObjectMeta metadata;
  std::string node_name;
  bool host_network = false;
  std::string service_account;  // spec.serviceAccountName ("" when unset)
  std::vector<Container> containers;
  std::string phase;
  std::string pod_ip;
  std::vector<std::string> pod_ips;
};

struct Namespace {
  ObjectMeta metadata;
  std::string phase;
};

struct NodeCondition {
  std::string type;
  std::string status;
  std::string reason;
  std::string message;
  std::string last_transition_time;
};

struct NodeAddress {
  std::string type;  // InternalIP, ExternalIP, Hostname, ...
  std::string address;
};

struct Node {
  ObjectMeta metadata;
  std::string provider_id;
  std::vector<NodeAddress> addresses;
  std::map<std::string, std::string> capacity;     // quantities kept as text
  std::map<std::string, std::string> allocatable;
  std::vector<NodeCondition> conditions;
};

struct ConfigMap {
  ObjectMeta metadata;
  std::map<std::string, std::string> data;
};

// metav1.LabelSelector.
struct LabelSelectorRequirement {
  std::string key;
  std::string op;  // In, NotIn, Exists, DoesNotExist
  std::vector<std::string> values;
};
struct LabelSelectorSpec {
  Labels match_labels;
  std::vector<LabelSelectorRequirement> match_expressions;
  bool Empty() const { return match_labels.empty() && match_expressions.empty(); }
};

// A port is an int or a named port (IntOrString).
struct IntOrString {
  bool is_string = false;
  int32_t int_value = 0;
  std::string str_value;
};

struct NetworkPolicyPort {
  std::string protocol = "TCP";     // defaulted as the API server does
  std::optional<IntOrString> port;  // absent: all ports
  std::optional<int32_t> end_port;
};

struct IPBlock {
  std::string cidr;
  std::vector<std::string> except;
};

// One peer. nil vs empty matters: an absent namespaceSelector means "the
// policy's namespace", an empty one means "all namespaces".
struct NetworkPolicyPeer {
  std::optional<LabelSelectorSpec> pod_selector;
  std::optional<LabelSelectorSpec> namespace_selector;
  std::optional<IPBlock> ip_block;
};

struct NetworkPolicyRule {
  std::vector<NetworkPolicyPort> ports;  // empty: all ports
  std::vector<NetworkPolicyPeer> peers;  // from (ingress) or to (egress); empty: all peers
};

struct NetworkPolicy {
  ObjectMeta metadata;
  LabelSelectorSpec pod_selector;
  // As written; when absent the API server defaults it (Ingress, plus Egress
  // if egress rules exist). policy_types_defaulted records that we did so.
  std::vector<std::string> policy_types;
  bool policy_types_defaulted = false;
  std::vector<NetworkPolicyRule> ingress;
  std::vector<NetworkPolicyRule> egress;
};

// An object kept whole: typed metadata (for the cache's keys and versions)
// plus the raw JSON, for kinds whose parser lives elsewhere (Calico policies:
// src/policy parses them and reports their errors itself).
struct RawObject {
  ObjectMeta metadata;
  Json raw;
};

// An object whose parse may fail without the object vanishing: caches of
// kinds where an unreadable object still means something keep it (a
// NetworkPolicy terway cannot read is enforced on the safe side and
// reported, never silently dropped). Only metadata must parse, so the cache
// can key it.
template <typename T>
struct ObjectOrError {
  ObjectMeta metadata;
  std::optional<T> object;     // none: it did not parse
  std::optional<Error> error;  // why not
  Json raw;                    // the object as served, kept only when it did not parse
};

// A ServiceAccount: Calico matches policy serviceAccounts selectors against
// its labels.
struct ServiceAccount {
  ObjectMeta metadata;
};

// discovery.k8s.io/v1 EndpointSlice: a Service's backends (Calico's
// `services` rule match).
inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
struct EndpointPort {
  std::string name;
  std::optional<int32_t> port;   // absent: the slice names no port (matches nothing)
  std::string protocol = "TCP";  // defaulted as the API server does
};
struct SliceEndpoint {
  std::vector<std::string> addresses;
  std::optional<bool> ready;  // conditions.ready; absent = unknown
};
struct EndpointSlice {
  ObjectMeta metadata;
  std::string address_type;  // IPv4, IPv6 or FQDN
  std::vector<SliceEndpoint> endpoints;
  std::vector<EndpointPort> ports;
  // The Service it belongs to (label kubernetes.io/service-name); "" when none.
  std::string ServiceName() const {
    auto it = metadata.labels.find(kServiceNameLabel);
    return it == metadata.labels.end() ? "" : it->second;
  }
};

struct ObjectReference {
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string api_version;
};

struct Event {
  ObjectMeta metadata;
  ObjectReference involved_object;
  std::string reason;
  std::string message;
  std::string type = "Normal";  // Normal | Warning
  std::string source_component;
  std::string source_host;
  std::string first_timestamp;
  std::string last_timestamp;
  int32_t count = 1;
};

Result<ObjectMeta> ParseObjectMeta(const Json& j);
Result<Pod> ParsePod(const Json& j);
Result<Namespace> ParseNamespace(const Json& j);
Result<Node> ParseNode(const Json& j);
Result<ConfigMap> ParseConfigMap(const Json& j);
Result<NetworkPolicy> ParseNetworkPolicy(const Json& j);
Result<Event> ParseEvent(const Json& j);
Result<RawObject> ParseRawObject(const Json& j);
Result<ServiceAccount> ParseServiceAccount(const Json& j);
Result<EndpointSlice> ParseEndpointSlice(const Json& j);
// Fails only when the metadata cannot be read; a spec that does not parse
// is kept as the error and the raw object.
Result<ObjectOrError<NetworkPolicy>> ParseNetworkPolicyOrError(const Json& j);
Result<LabelSelectorSpec> ParseLabelSelector(const Json& j);

Json ObjectMetaToJson(const ObjectMeta& m);
Json EventToJson(const Event& e);
Json ConfigMapToJson(const ConfigMap& c);

// Parse<T>: the typed parser for T, so templates (Cache<T>) can pick it.
template <typename T> Result<T> Parse(const Json& j);
template <> inline Result<Pod> Parse<Pod>(const Json& j) { return ParsePod(j); }
template <> inline Result<Namespace> Parse<Namespace>(const Json& j) { return ParseNamespace(j); }
template <> inline Result<Node> Parse<Node>(const Json& j) { return ParseNode(j); }
template <> inline Result<ConfigMap> Parse<ConfigMap>(const Json& j) { return ParseConfigMap(j); }
template <> inline Result<NetworkPolicy> Parse<NetworkPolicy>(const Json& j) {
  return ParseNetworkPolicy(j);
}
template <> inline Result<Event> Parse<Event>(const Json& j) { return ParseEvent(j); }
template <> inline Result<RawObject> Parse<RawObject>(const Json& j) { return ParseRawObject(j); }
template <> inline Result<ServiceAccount> Parse<ServiceAccount>(const Json& j) { return ParseServiceAccount(j); }
template <> inline Result<EndpointSlice> Parse<EndpointSlice>(const Json& j) { return ParseEndpointSlice(j); }
template <> inline Result<ObjectOrError<NetworkPolicy>> Parse<ObjectOrError<NetworkPolicy>>(const Json& j) {
  return ParseNetworkPolicyOrError(j);
}

}  // namespace terway::k8s
