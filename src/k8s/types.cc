#include "k8s/types.h"

namespace terway::k8s {
namespace {

// Field readers: an absent or null field keeps the default; a field of the
// wrong type is an error naming its path, so a malformed object is rejected
// whole instead of being half-understood.
Error TypeError(const std::string& path, const char* want, const Json& got) {
  return Errorf(ErrorCode::kInvalidArgument, "{}: expected {}, got {}", path, want, got.type_name());
}

const Json* Field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status ReadObject(const Json& obj, const char* key, const std::string& path, const Json** out) {
  *out = Field(obj, key);
  if (*out && !(*out)->is_object()) return TypeError(path + "." + key, "object", **out);
  return Ok();
}

Status ReadArray(const Json& obj, const char* key, const std::string& path, const Json** out) {
  *out = Field(obj, key);
  if (*out && !(*out)->is_array()) return TypeError(path + "." + key, "array", **out);
  return Ok();
}

Status ReadString(const Json& obj, const char* key, const std::string& path, std::string* out) {
  const Json* f = Field(obj, key);
  if (!f) return Ok();
  if (!f->is_string()) return TypeError(path + "." + key, "string", *f);
  *out = f->get<std::string>();
  return Ok();
}

Status ReadBool(const Json& obj, const char* key, const std::string& path, bool* out) {
  const Json* f = Field(obj, key);
  if (!f) return Ok();
  if (!f->is_boolean()) return TypeError(path + "." + key, "boolean", *f);
  *out = f->get<bool>();
  return Ok();
}

template <typename Int>
Status ReadInt(const Json& obj, const char* key, const std::string& path, Int* out) {
  const Json* f = Field(obj, key);
  if (!f) return Ok();
  if (!f->is_number_integer()) return TypeError(path + "." + key, "integer", *f);
  *out = f->get<Int>();
  return Ok();
}

Status ReadStringMap(const Json& obj, const char* key, const std::string& path,
                     std::map<std::string, std::string>* out) {
  const Json* m = nullptr;
  TERWAY_TRY(ReadObject(obj, key, path, &m));
  if (!m) return Ok();
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (!it.value().is_string()) return TypeError(path + "." + key + "." + it.key(), "string", it.value());
    (*out)[it.key()] = it.value().get<std::string>();
  }
  return Ok();
}

// Quantities ("4", "8Gi", 4) are kept as text; the API always sends strings
// but hand-written objects sometimes carry bare numbers.
Status ReadQuantityMap(const Json& obj, const char* key, const std::string& path,
                       std::map<std::string, std::string>* out) {
  const Json* m = nullptr;
  TERWAY_TRY(ReadObject(obj, key, path, &m));
  if (!m) return Ok();
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (it.value().is_string()) {
      (*out)[it.key()] = it.value().get<std::string>();
    } else if (it.value().is_number_integer()) {
      (*out)[it.key()] = std::to_string(it.value().get<int64_t>());
    } else {
      return TypeError(path + "." + key + "." + it.key(), "quantity", it.value());
    }
  }
  return Ok();
}

Status ReadStringList(const Json& obj, const char* key, const std::string& path,
                      std::vector<std::string>* out) {
  const Json* a = nullptr;
  TERWAY_TRY(ReadArray(obj, key, path, &a));
  if (!a) return Ok();
  for (size_t i = 0; i < a->size(); i++) {
    const Json& v = (*a)[i];
    if (!v.is_string()) return TypeError(fmt::format("{}.{}[{}]", path, key, i), "string", v);
    out->push_back(v.get<std::string>());
  }
  return Ok();
}

Status RequireObject(const Json& j, const char* what) {
  if (!j.is_object()) return TypeError(what, "object", j);
  return Ok();
}

Result<ObjectMeta> MetaOf(const Json& j, const char* kind) {
  TERWAY_TRY(RequireObject(j, kind));
  const Json* m = nullptr;
  TERWAY_TRY(ReadObject(j, "metadata", kind, &m));
  if (!m) return Errorf(ErrorCode::kInvalidArgument, "{}: metadata missing", kind);
  return ParseObjectMeta(*m);
}

Result<IntOrString> ParseIntOrString(const Json& j, const std::string& path) {
  IntOrString v;
  if (j.is_number_integer()) {
    v.int_value = j.get<int32_t>();
  } else if (j.is_string()) {
    v.is_string = true;
    v.str_value = j.get<std::string>();
  } else {
    return TypeError(path, "integer or string", j);
  }
  return v;
}

Result<NetworkPolicyRule> ParseRule(const Json& j, const char* peers_key, const std::string& path) {
  if (!j.is_object()) return TypeError(path, "object", j);
  NetworkPolicyRule rule;
  const Json* ports = nullptr;
  TERWAY_TRY(ReadArray(j, "ports", path, &ports));
  if (ports) {
    for (size_t i = 0; i < ports->size(); i++) {
      const Json& p = (*ports)[i];
      std::string pp = fmt::format("{}.ports[{}]", path, i);
      if (!p.is_object()) return TypeError(pp, "object", p);
      NetworkPolicyPort port;
      TERWAY_TRY(ReadString(p, "protocol", pp, &port.protocol));
      if (const Json* pv = Field(p, "port")) {
        TERWAY_ASSIGN_OR_RETURN(port.port, ParseIntOrString(*pv, pp + ".port"));
      }
      int32_t end = 0;
      if (Field(p, "endPort")) {
        TERWAY_TRY(ReadInt(p, "endPort", pp, &end));
        port.end_port = end;
      }
      rule.ports.push_back(std::move(port));
    }
  }
  const Json* peers = nullptr;
  TERWAY_TRY(ReadArray(j, peers_key, path, &peers));
  if (peers) {
    for (size_t i = 0; i < peers->size(); i++) {
      const Json& p = (*peers)[i];
      std::string pp = fmt::format("{}.{}[{}]", path, peers_key, i);
      if (!p.is_object()) return TypeError(pp, "object", p);
      NetworkPolicyPeer peer;
      if (const Json* s = Field(p, "podSelector")) {
        TERWAY_ASSIGN_OR_RETURN_CTX(peer.pod_selector, ParseLabelSelector(*s), pp + ".podSelector");
      }
      if (const Json* s = Field(p, "namespaceSelector")) {
        TERWAY_ASSIGN_OR_RETURN_CTX(peer.namespace_selector, ParseLabelSelector(*s),
                                    pp + ".namespaceSelector");
      }
      const Json* ib = nullptr;
      TERWAY_TRY(ReadObject(p, "ipBlock", pp, &ib));
      if (ib) {
        IPBlock block;
        TERWAY_TRY(ReadString(*ib, "cidr", pp + ".ipBlock", &block.cidr));
        if (block.cidr.empty()) {
          return Errorf(ErrorCode::kInvalidArgument, "{}.ipBlock.cidr: missing", pp);
        }
        TERWAY_TRY(ReadStringList(*ib, "except", pp + ".ipBlock", &block.except));
        peer.ip_block = std::move(block);
      }
      rule.peers.push_back(std::move(peer));
    }
  }
  return rule;
}

}  // namespace

Result<ObjectMeta> ParseObjectMeta(const Json& j) {
  if (!j.is_object()) return TypeError("metadata", "object", j);
  ObjectMeta m;
  const std::string p = "metadata";
  TERWAY_TRY(ReadString(j, "name", p, &m.name));
  TERWAY_TRY(ReadString(j, "namespace", p, &m.namespace_));
  TERWAY_TRY(ReadString(j, "uid", p, &m.uid));
  TERWAY_TRY(ReadString(j, "resourceVersion", p, &m.resource_version));
  TERWAY_TRY(ReadInt(j, "generation", p, &m.generation));
  TERWAY_TRY(ReadStringMap(j, "labels", p, &m.labels));
  TERWAY_TRY(ReadStringMap(j, "annotations", p, &m.annotations));
  TERWAY_TRY(ReadString(j, "creationTimestamp", p, &m.creation_timestamp));
  if (Field(j, "deletionTimestamp")) {
    std::string ts;
    TERWAY_TRY(ReadString(j, "deletionTimestamp", p, &ts));
    m.deletion_timestamp = ts;
  }
  const Json* owners = nullptr;
  TERWAY_TRY(ReadArray(j, "ownerReferences", p, &owners));
  if (owners) {
    for (size_t i = 0; i < owners->size(); i++) {
      const Json& o = (*owners)[i];
      std::string op = fmt::format("metadata.ownerReferences[{}]", i);
      if (!o.is_object()) return TypeError(op, "object", o);
      OwnerReference ref;
      TERWAY_TRY(ReadString(o, "apiVersion", op, &ref.api_version));
      TERWAY_TRY(ReadString(o, "kind", op, &ref.kind));
      TERWAY_TRY(ReadString(o, "name", op, &ref.name));
      TERWAY_TRY(ReadString(o, "uid", op, &ref.uid));
      TERWAY_TRY(ReadBool(o, "controller", op, &ref.controller));
      m.owner_references.push_back(std::move(ref));
    }
  }
  if (m.name.empty()) return MakeError(ErrorCode::kInvalidArgument, "metadata.name: missing");
  return m;
}

Result<LabelSelectorSpec> ParseLabelSelector(const Json& j) {
  if (!j.is_object()) return TypeError("selector", "object", j);
  LabelSelectorSpec s;
  TERWAY_TRY(ReadStringMap(j, "matchLabels", "selector", &s.match_labels));
  const Json* exprs = nullptr;
  TERWAY_TRY(ReadArray(j, "matchExpressions", "selector", &exprs));
  if (exprs) {
    for (size_t i = 0; i < exprs->size(); i++) {
      const Json& e = (*exprs)[i];
      std::string ep = fmt::format("selector.matchExpressions[{}]", i);
      if (!e.is_object()) return TypeError(ep, "object", e);
      LabelSelectorRequirement r;
      TERWAY_TRY(ReadString(e, "key", ep, &r.key));
      TERWAY_TRY(ReadString(e, "operator", ep, &r.op));
      TERWAY_TRY(ReadStringList(e, "values", ep, &r.values));
      if (r.op != "In" && r.op != "NotIn" && r.op != "Exists" && r.op != "DoesNotExist") {
        return Errorf(ErrorCode::kInvalidArgument, "{}.operator: unknown operator '{}'", ep, r.op);
      }
      if ((r.op == "In" || r.op == "NotIn") && r.values.empty()) {
        return Errorf(ErrorCode::kInvalidArgument, "{}: operator {} needs values", ep, r.op);
      }
      s.match_expressions.push_back(std::move(r));
    }
  }
  return s;
}

Result<Pod> ParsePod(const Json& j) {
  Pod pod;
  TERWAY_ASSIGN_OR_RETURN_CTX(pod.metadata, MetaOf(j, "Pod"), "parsing Pod");
  const std::string ctx = "parsing Pod " + pod.metadata.Key();
  const Json* spec = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "spec", "", &spec), ctx);
  if (spec) {
    TERWAY_TRY_CTX(ReadString(*spec, "nodeName", "spec", &pod.node_name), ctx);
    TERWAY_TRY_CTX(ReadBool(*spec, "hostNetwork", "spec", &pod.host_network), ctx);
    TERWAY_TRY_CTX(ReadString(*spec, "serviceAccountName", "spec", &pod.service_account), ctx);
    const Json* containers = nullptr;
    TERWAY_TRY_CTX(ReadArray(*spec, "containers", "spec", &containers), ctx);
    if (containers) {
      for (size_t i = 0; i < containers->size(); i++) {
        const Json& c = (*containers)[i];
        std::string cp = fmt::format("spec.containers[{}]", i);
        if (!c.is_object()) return TypeError(cp, "object", c).Wrap(ctx);
        Container container;
        TERWAY_TRY_CTX(ReadString(c, "name", cp, &container.name), ctx);
        const Json* ports = nullptr;
        TERWAY_TRY_CTX(ReadArray(c, "ports", cp, &ports), ctx);
        if (ports) {
          for (size_t k = 0; k < ports->size(); k++) {
            const Json& p = (*ports)[k];
            std::string pp = fmt::format("{}.ports[{}]", cp, k);
            if (!p.is_object()) return TypeError(pp, "object", p).Wrap(ctx);
            ContainerPort port;
            TERWAY_TRY_CTX(ReadString(p, "name", pp, &port.name), ctx);
            TERWAY_TRY_CTX(ReadInt(p, "containerPort", pp, &port.container_port), ctx);
            TERWAY_TRY_CTX(ReadString(p, "protocol", pp, &port.protocol), ctx);
            container.ports.push_back(std::move(port));
          }
        }
        pod.containers.push_back(std::move(container));
      }
    }
  }
  const Json* status = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "status", "", &status), ctx);
  if (status) {
    TERWAY_TRY_CTX(ReadString(*status, "phase", "status", &pod.phase), ctx);
    TERWAY_TRY_CTX(ReadString(*status, "podIP", "status", &pod.pod_ip), ctx);
    const Json* ips = nullptr;
    TERWAY_TRY_CTX(ReadArray(*status, "podIPs", "status", &ips), ctx);
    if (ips) {
      for (size_t i = 0; i < ips->size(); i++) {
        const Json& e = (*ips)[i];
        std::string ip;
        if (!e.is_object()) return TypeError(fmt::format("status.podIPs[{}]", i), "object", e).Wrap(ctx);
        TERWAY_TRY_CTX(ReadString(e, "ip", fmt::format("status.podIPs[{}]", i), &ip), ctx);
        pod.pod_ips.push_back(ip);
      }
    }
    if (pod.pod_ips.empty() && !pod.pod_ip.empty()) pod.pod_ips.push_back(pod.pod_ip);
  }
  return pod;
}

Result<Namespace> ParseNamespace(const Json& j) {
  Namespace ns;
  TERWAY_ASSIGN_OR_RETURN_CTX(ns.metadata, MetaOf(j, "Namespace"), "parsing Namespace");
  const Json* status = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "status", "", &status), "parsing Namespace " + ns.metadata.name);
  if (status) {
    TERWAY_TRY_CTX(ReadString(*status, "phase", "status", &ns.phase),
                   "parsing Namespace " + ns.metadata.name);
  }
  return ns;
}

Result<Node> ParseNode(const Json& j) {
  Node node;
  TERWAY_ASSIGN_OR_RETURN_CTX(node.metadata, MetaOf(j, "Node"), "parsing Node");
  const std::string ctx = "parsing Node " + node.metadata.name;
  const Json* spec = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "spec", "", &spec), ctx);
  if (spec) TERWAY_TRY_CTX(ReadString(*spec, "providerID", "spec", &node.provider_id), ctx);
  const Json* status = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "status", "", &status), ctx);
  if (status) {
    const Json* addrs = nullptr;
    TERWAY_TRY_CTX(ReadArray(*status, "addresses", "status", &addrs), ctx);
    if (addrs) {
      for (size_t i = 0; i < addrs->size(); i++) {
        const Json& a = (*addrs)[i];
        std::string ap = fmt::format("status.addresses[{}]", i);
        if (!a.is_object()) return TypeError(ap, "object", a).Wrap(ctx);
        NodeAddress na;
        TERWAY_TRY_CTX(ReadString(a, "type", ap, &na.type), ctx);
        TERWAY_TRY_CTX(ReadString(a, "address", ap, &na.address), ctx);
        node.addresses.push_back(std::move(na));
      }
    }
    TERWAY_TRY_CTX(ReadQuantityMap(*status, "capacity", "status", &node.capacity), ctx);
    TERWAY_TRY_CTX(ReadQuantityMap(*status, "allocatable", "status", &node.allocatable), ctx);
    const Json* conds = nullptr;
    TERWAY_TRY_CTX(ReadArray(*status, "conditions", "status", &conds), ctx);
    if (conds) {
      for (size_t i = 0; i < conds->size(); i++) {
        const Json& c = (*conds)[i];
        std::string cp = fmt::format("status.conditions[{}]", i);
        if (!c.is_object()) return TypeError(cp, "object", c).Wrap(ctx);
        NodeCondition cond;
        TERWAY_TRY_CTX(ReadString(c, "type", cp, &cond.type), ctx);
        TERWAY_TRY_CTX(ReadString(c, "status", cp, &cond.status), ctx);
        TERWAY_TRY_CTX(ReadString(c, "reason", cp, &cond.reason), ctx);
        TERWAY_TRY_CTX(ReadString(c, "message", cp, &cond.message), ctx);
        TERWAY_TRY_CTX(ReadString(c, "lastTransitionTime", cp, &cond.last_transition_time), ctx);
        node.conditions.push_back(std::move(cond));
      }
    }
  }
  return node;
}

Result<RawObject> ParseRawObject(const Json& j) {
  RawObject o;
  TERWAY_ASSIGN_OR_RETURN_CTX(o.metadata, MetaOf(j, "object"), "parsing object");
  o.raw = j;
  return o;
}

Result<ServiceAccount> ParseServiceAccount(const Json& j) {
  ServiceAccount sa;
  TERWAY_ASSIGN_OR_RETURN_CTX(sa.metadata, MetaOf(j, "ServiceAccount"), "parsing ServiceAccount");
  return sa;
}

Result<EndpointSlice> ParseEndpointSlice(const Json& j) {
  EndpointSlice es;
  TERWAY_ASSIGN_OR_RETURN_CTX(es.metadata, MetaOf(j, "EndpointSlice"), "parsing EndpointSlice");
  const std::string ctx = "parsing EndpointSlice " + es.metadata.Key();
  TERWAY_TRY_CTX(ReadString(j, "addressType", "", &es.address_type), ctx);
  const Json* endpoints = nullptr;
  TERWAY_TRY_CTX(ReadArray(j, "endpoints", "", &endpoints), ctx);
  if (endpoints) {
    for (size_t i = 0; i < endpoints->size(); i++) {
      const Json& e = (*endpoints)[i];
      const std::string ep = fmt::format("endpoints[{}]", i);
      if (!e.is_object()) return TypeError(ep, "object", e).Wrap(ctx);
      SliceEndpoint out;
      TERWAY_TRY_CTX(ReadStringList(e, "addresses", ep, &out.addresses), ctx);
      const Json* cond = nullptr;
      TERWAY_TRY_CTX(ReadObject(e, "conditions", ep, &cond), ctx);
      if (cond && Field(*cond, "ready")) {
        bool ready = false;
        TERWAY_TRY_CTX(ReadBool(*cond, "ready", ep + ".conditions", &ready), ctx);
        out.ready = ready;
      }
      es.endpoints.push_back(std::move(out));
    }
  }
  const Json* ports = nullptr;
  TERWAY_TRY_CTX(ReadArray(j, "ports", "", &ports), ctx);
  if (ports) {
    for (size_t i = 0; i < ports->size(); i++) {
      const Json& p = (*ports)[i];
      const std::string pp = fmt::format("ports[{}]", i);
      if (!p.is_object()) return TypeError(pp, "object", p).Wrap(ctx);
      EndpointPort port;
      TERWAY_TRY_CTX(ReadString(p, "name", pp, &port.name), ctx);
      TERWAY_TRY_CTX(ReadString(p, "protocol", pp, &port.protocol), ctx);
      if (Field(p, "port")) {
        int32_t n = 0;
        TERWAY_TRY_CTX(ReadInt(p, "port", pp, &n), ctx);
        port.port = n;
      }
      es.ports.push_back(std::move(port));
    }
  }
  return es;
}

Result<ObjectOrError<NetworkPolicy>> ParseNetworkPolicyOrError(const Json& j) {
  ObjectOrError<NetworkPolicy> out;
  TERWAY_ASSIGN_OR_RETURN_CTX(out.metadata, MetaOf(j, "NetworkPolicy"), "parsing NetworkPolicy");
  auto np = ParseNetworkPolicy(j);
  if (np.ok()) {
    out.object = std::move(np).value();
  } else {
    out.error = std::move(np).error();
    out.raw = j;
  }
  return out;
}

Result<ConfigMap> ParseConfigMap(const Json& j) {
  ConfigMap cm;
  TERWAY_ASSIGN_OR_RETURN_CTX(cm.metadata, MetaOf(j, "ConfigMap"), "parsing ConfigMap");
  TERWAY_TRY_CTX(ReadStringMap(j, "data", "", &cm.data), "parsing ConfigMap " + cm.metadata.Key());
  return cm;
}

Result<NetworkPolicy> ParseNetworkPolicy(const Json& j) {
  NetworkPolicy np;
  TERWAY_ASSIGN_OR_RETURN_CTX(np.metadata, MetaOf(j, "NetworkPolicy"), "parsing NetworkPolicy");
  const std::string ctx = "parsing NetworkPolicy " + np.metadata.Key();
  const Json* spec = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "spec", "", &spec), ctx);
  if (!spec) return MakeError(ErrorCode::kInvalidArgument, "spec missing").Wrap(ctx);
  if (const Json* s = Field(*spec, "podSelector")) {
    TERWAY_ASSIGN_OR_RETURN_CTX(np.pod_selector, ParseLabelSelector(*s), ctx + ": spec.podSelector");
  }
  TERWAY_TRY_CTX(ReadStringList(*spec, "policyTypes", "spec", &np.policy_types), ctx);
  for (const auto& t : np.policy_types) {
    if (t != "Ingress" && t != "Egress") {
      return Errorf(ErrorCode::kInvalidArgument, "spec.policyTypes: unknown type '{}'", t).Wrap(ctx);
    }
  }
  for (const char* dir : {"ingress", "egress"}) {
    const Json* rules = nullptr;
    TERWAY_TRY_CTX(ReadArray(*spec, dir, "spec", &rules), ctx);
    if (!rules) continue;
    bool ingress = std::string(dir) == "ingress";
    for (size_t i = 0; i < rules->size(); i++) {
      TERWAY_ASSIGN_OR_RETURN_CTX(
          auto rule, ParseRule((*rules)[i], ingress ? "from" : "to", fmt::format("spec.{}[{}]", dir, i)),
          ctx);
      (ingress ? np.ingress : np.egress).push_back(std::move(rule));
    }
  }
  if (np.policy_types.empty()) {
    // The API server's defaulting: Ingress always, Egress when egress rules exist.
    np.policy_types_defaulted = true;
    np.policy_types.push_back("Ingress");
    if (!np.egress.empty()) np.policy_types.push_back("Egress");
  }
  return np;
}

Result<Event> ParseEvent(const Json& j) {
  Event e;
  TERWAY_ASSIGN_OR_RETURN_CTX(e.metadata, MetaOf(j, "Event"), "parsing Event");
  const std::string ctx = "parsing Event " + e.metadata.Key();
  const Json* io = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "involvedObject", "", &io), ctx);
  if (io) {
    TERWAY_TRY_CTX(ReadString(*io, "kind", "involvedObject", &e.involved_object.kind), ctx);
    TERWAY_TRY_CTX(ReadString(*io, "namespace", "involvedObject", &e.involved_object.namespace_), ctx);
    TERWAY_TRY_CTX(ReadString(*io, "name", "involvedObject", &e.involved_object.name), ctx);
    TERWAY_TRY_CTX(ReadString(*io, "uid", "involvedObject", &e.involved_object.uid), ctx);
    TERWAY_TRY_CTX(ReadString(*io, "apiVersion", "involvedObject", &e.involved_object.api_version), ctx);
  }
  TERWAY_TRY_CTX(ReadString(j, "reason", "", &e.reason), ctx);
  TERWAY_TRY_CTX(ReadString(j, "message", "", &e.message), ctx);
  TERWAY_TRY_CTX(ReadString(j, "type", "", &e.type), ctx);
  TERWAY_TRY_CTX(ReadString(j, "firstTimestamp", "", &e.first_timestamp), ctx);
  TERWAY_TRY_CTX(ReadString(j, "lastTimestamp", "", &e.last_timestamp), ctx);
  TERWAY_TRY_CTX(ReadInt(j, "count", "", &e.count), ctx);
  const Json* src = nullptr;
  TERWAY_TRY_CTX(ReadObject(j, "source", "", &src), ctx);
  if (src) {
    TERWAY_TRY_CTX(ReadString(*src, "component", "source", &e.source_component), ctx);
    TERWAY_TRY_CTX(ReadString(*src, "host", "source", &e.source_host), ctx);
  }
  return e;
}

Json ObjectMetaToJson(const ObjectMeta& m) {
  Json j = Json::object();
  j["name"] = m.name;
  if (!m.namespace_.empty()) j["namespace"] = m.namespace_;
  if (!m.uid.empty()) j["uid"] = m.uid;
  if (!m.resource_version.empty()) j["resourceVersion"] = m.resource_version;
  if (!m.labels.empty()) j["labels"] = m.labels;
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  if (!m.owner_references.empty()) {
    Json refs = Json::array();
    for (const auto& r : m.owner_references) {
      refs.push_back({{"apiVersion", r.api_version}, {"kind", r.kind}, {"name", r.name},
                      {"uid", r.uid}, {"controller", r.controller}});
    }
    j["ownerReferences"] = refs;
  }
  return j;
}

Json EventToJson(const Event& e) {
  Json j = {{"apiVersion", "v1"}, {"kind", "Event"}, {"metadata", ObjectMetaToJson(e.metadata)}};
  Json io = {{"kind", e.involved_object.kind}, {"name", e.involved_object.name}};
  if (!e.involved_object.namespace_.empty()) io["namespace"] = e.involved_object.namespace_;
  if (!e.involved_object.uid.empty()) io["uid"] = e.involved_object.uid;
  if (!e.involved_object.api_version.empty()) io["apiVersion"] = e.involved_object.api_version;
  j["involvedObject"] = io;
  j["reason"] = e.reason;
  j["message"] = e.message;
  j["type"] = e.type;
  j["count"] = e.count;
  if (!e.first_timestamp.empty()) j["firstTimestamp"] = e.first_timestamp;
  if (!e.last_timestamp.empty()) j["lastTimestamp"] = e.last_timestamp;
  Json src = Json::object();
  if (!e.source_component.empty()) src["component"] = e.source_component;
  if (!e.source_host.empty()) src["host"] = e.source_host;
  j["source"] = src;
  return j;
}

Json ConfigMapToJson(const ConfigMap& c) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", ObjectMetaToJson(c.metadata)},
          {"data", c.data}};
}

}  // namespace terway::k8s
