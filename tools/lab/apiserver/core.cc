#include "tools/lab/apiserver/core.h"

#include <set>

namespace terway::lab {
namespace {

std::string NameOf(const Json& obj) {
  const Json& m = obj.contains("metadata") ? obj["metadata"] : Json();
  return m.is_object() && m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
}

// A string field of an object, "" when absent or of another type (user
// input: json::value would throw on a type mismatch).
std::string Str(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_string()) return "";
  return obj[key].get<std::string>();
}

// `<Kind> "<name>" is invalid: <field>: <detail>` (HTTP 422), as the API
// server words a failed validation.
Error Invalid(const ResourceType& t, const std::string& name, const std::string& field, const std::string& detail) {
  return Errorf(ErrorCode::kInvalidArgument, "{} \"{}\" is invalid: {}: {}", t.kind, name, field, detail);
}

// A pod runs as a ServiceAccount: spec.serviceAccountName, else the
// deprecated spec.serviceAccount, else `default`; both fields carry it
// afterwards. It must exist when the pod is created (the ServiceAccount
// admission plugin refuses, 403), which is what lets a policy that matches
// service accounts trust the name.
Status AdmitPod(WriteOp op, const ResourceType& t, Json& pod, const StoreView& view) {
  if (op != WriteOp::kCreate) return Ok();  // the service account is immutable
  // A new pod is Pending until its kubelet says otherwise.
  if (!pod.contains("status") || !pod["status"].is_object()) pod["status"] = Json::object();
  if (Str(pod["status"], "phase").empty()) pod["status"]["phase"] = "Pending";
  if (!pod.contains("spec") || !pod["spec"].is_object()) return Ok();
  Json& spec = pod["spec"];
  std::string sa = Str(spec, "serviceAccountName");
  if (sa.empty()) sa = Str(spec, "serviceAccount");
  if (sa.empty()) sa = "default";
  spec["serviceAccountName"] = sa;
  spec["serviceAccount"] = sa;
  const std::string ns = Str(pod["metadata"], "namespace");
  if (!view.Get("/serviceaccounts", ns, sa)) {
    return Errorf(ErrorCode::kPermission,
                  "{} \"{}\" is forbidden: error looking up service account {}/{}: serviceaccount \"{}\" not found "
                  "(create the ServiceAccount first)",
                  t.plural, NameOf(pod), ns, sa, sa);
  }
  return Ok();
}

// A DNS-1123 label.
bool IsDnsLabel(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return n.front() != '-' && n.back() != '-';
}

// An IANA service name, the form of a named port: at most 15 characters of
// [a-z0-9-], at least one letter, no hyphen at either end or twice in a row.
bool IsIanaServiceName(const std::string& n) {
  if (n.empty() || n.size() > 15 || n.front() == '-' || n.back() == '-' || n.find("--") != std::string::npos) {
    return false;
  }
  bool letter = false;
  for (char c : n) {
    if (c >= 'a' && c <= 'z') letter = true;
    else if (!((c >= '0' && c <= '9') || c == '-')) return false;
  }
  return letter;
}

bool IsPortNumber(const Json& j) { return j.is_number_integer() && j.get<int64_t>() >= 1 && j.get<int64_t>() <= 65535; }

Status AdmitServicePort(const ResourceType& t, const std::string& name, size_t i, size_t count, Json& port,
                        std::set<std::string>* names) {
  const std::string field = fmt::format("spec.ports[{}]", i);
  if (!port.is_object()) return Invalid(t, name, field, "Invalid value: must be an object");
  if (!IsPortNumber(port["port"])) {
    return Invalid(t, name, field + ".port",
                   fmt::format("Invalid value: {}: must be between 1 and 65535, inclusive", port["port"].dump()));
  }
  Json& protocol = port["protocol"];
  if (protocol.is_null()) protocol = "TCP";
  if (protocol != "TCP" && protocol != "UDP" && protocol != "SCTP") {
    return Invalid(t, name, field + ".protocol",
                   fmt::format("Unsupported value: {}: supported values: \"SCTP\", \"TCP\", \"UDP\"", protocol.dump()));
  }
  if (port.contains("name") && !port["name"].is_null() && !port["name"].is_string()) {
    return Invalid(t, name, field + ".name", fmt::format("Invalid value: {}: must be a string", port["name"].dump()));
  }
  const std::string port_name = Str(port, "name");
  if (count > 1 && port_name.empty()) return Invalid(t, name, field + ".name", "Required value");
  if (!port_name.empty() && !IsDnsLabel(port_name)) {
    return Invalid(t, name, field + ".name",
                   fmt::format("Invalid value: \"{}\": a lowercase RFC 1123 label must consist of lower case "
                               "alphanumeric characters or '-'",
                               port_name));
  }
  if (!port_name.empty() && !names->insert(port_name).second) {
    return Invalid(t, name, field + ".name", fmt::format("Duplicate value: \"{}\"", port_name));
  }
  Json& target = port["targetPort"];
  if (target.is_null() || (target.is_number_integer() && target.get<int64_t>() == 0)) target = port["port"];
  if (!IsPortNumber(target) && !(target.is_string() && IsIanaServiceName(target.get<std::string>()))) {
    return Invalid(t, name, field + ".targetPort",
                   fmt::format("Invalid value: {}: must be a port number between 1 and 65535 or the name of a "
                               "container port (an IANA service name)",
                               target.dump()));
  }
  return Ok();
}

// SetDefaults_Service and the parts of ValidateService that decide what
// the Service's EndpointSlices contain.
Status AdmitService(WriteOp op, const ResourceType& t, Json& svc) {
  if (op == WriteOp::kDelete) return Ok();
  const std::string name = NameOf(svc);
  if (!svc.contains("spec") || svc["spec"].is_null()) svc["spec"] = Json::object();
  Json& spec = svc["spec"];
  if (!spec.is_object()) return Invalid(t, name, "spec", "Invalid value: must be an object");
  Json& type = spec["type"];
  if (type.is_null()) type = "ClusterIP";
  if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" && type != "ExternalName") {
    return Invalid(t, name, "spec.type",
                   fmt::format("Unsupported value: {}: supported values: \"ClusterIP\", \"ExternalName\", "
                               "\"LoadBalancer\", \"NodePort\"",
                               type.dump()));
  }
  if (!spec.contains("sessionAffinity")) spec["sessionAffinity"] = "None";
  if (type != "ExternalName" && !spec.contains("internalTrafficPolicy")) spec["internalTrafficPolicy"] = "Cluster";
  if (spec.contains("selector") && !spec["selector"].is_null()) {
    const Json& sel = spec["selector"];
    if (!sel.is_object()) return Invalid(t, name, "spec.selector", "Invalid value: must be a map of labels");
    for (auto it = sel.begin(); it != sel.end(); ++it) {
      if (!it.value().is_string()) {
        return Invalid(t, name, "spec.selector",
                       fmt::format("Invalid value: {}: label values are strings", it.value().dump()));
      }
    }
  }
  const bool headless = Str(spec, "clusterIP") == "None";
  Json& ports = spec["ports"];
  if (ports.is_null()) ports = Json::array();
  if (!ports.is_array()) return Invalid(t, name, "spec.ports", "Invalid value: must be a list");
  if (ports.empty() && type != "ExternalName" && !headless) return Invalid(t, name, "spec.ports", "Required value");
  std::set<std::string> names;
  for (size_t i = 0; i < ports.size(); i++) TERWAY_TRY(AdmitServicePort(t, name, i, ports.size(), ports[i], &names));
  if (ports.empty()) spec.erase("ports");
  return Ok();
}

}  // namespace

Status AdmitCore(WriteOp op, const ResourceType& t, Json* obj, const Json*, const StoreView& view) {
  if (!t.group.empty() || !obj) return Ok();
  if (t.plural == "pods") return AdmitPod(op, t, *obj, view);
  if (t.plural == "services") return AdmitService(op, t, *obj);
  return Ok();
}

}  // namespace terway::lab
