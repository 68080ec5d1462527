#include "tools/lab/apiserver/schemas.h"

#include <algorithm>

#include "common/strings.h"

namespace terway::lab {
namespace {

// --- a small vocabulary for writing schemas
Json Type(const char* t) { return {{"type", t}}; }
Json String() { return Type("string"); }
Json Number() { return Type("number"); }
Json Integer() { return Type("integer"); }
Json Boolean() { return Type("boolean"); }
Json IntOrString() { return {{"x-kubernetes-int-or-string", true}}; }
Json ArrayOf(Json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
Json MapOf(Json values) { return {{"type", "object"}, {"additionalProperties", std::move(values)}}; }
Json Enum(std::vector<std::string> values) { return {{"type", "string"}, {"enum", std::move(values)}}; }
Json Object(Json properties, std::vector<std::string> required = {}) {
  Json o = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) o["required"] = std::move(required);
  return o;
}
// Left to the kind's own checks (status written by controllers).
Json AnyObject() { return {{"type", "object"}, {"x-kubernetes-preserve-unknown-fields", true}}; }

// Calico's EntityRule (policy_common.go): what a rule's source or
// destination matches.
Json EntityRule() {
  return Object({{"nets", ArrayOf(String())},
                 {"notNets", ArrayOf(String())},
                 {"selector", String()},
                 {"notSelector", String()},
                 {"namespaceSelector", String()},
                 {"ports", ArrayOf(IntOrString())},
                 {"notPorts", ArrayOf(IntOrString())},
                 {"serviceAccounts", Object({{"names", ArrayOf(String())}, {"selector", String()}})},
                 {"services", Object({{"name", String()}, {"namespace", String()}})}});
}

Json IcmpFields() { return Object({{"type", Integer()}, {"code", Integer()}}); }

Json Rule() {
  return Object({{"action", Enum({"Allow", "Deny", "Log", "Pass"})},
                 {"protocol", IntOrString()},
                 {"notProtocol", IntOrString()},
                 {"icmp", IcmpFields()},
                 {"notICMP", IcmpFields()},
                 {"ipVersion", Integer()},
                 {"source", EntityRule()},
                 {"destination", EntityRule()},
                 {"http", Object({{"methods", ArrayOf(String())},
                                  {"paths", ArrayOf(Object({{"exact", String()}, {"prefix", String()}}))}})},
                 {"metadata", Object({{"annotations", MapOf(String())}})}},
                {"action"});
}

Json PolicySpec(bool global) {
  Json props = {{"tier", String()},
                {"order", Number()},
                {"selector", String()},
                {"serviceAccountSelector", String()},
                {"types", ArrayOf(Enum({"Ingress", "Egress"}))},
                {"ingress", ArrayOf(Rule())},
                {"egress", ArrayOf(Rule())},
                {"performanceHints", ArrayOf(Enum({"AssumeNeededOnEveryNode"}))}};
  if (global) {
    props["namespaceSelector"] = String();
    props["doNotTrack"] = Boolean();
    props["preDNAT"] = Boolean();
    props["applyOnForward"] = Boolean();
  }
  return Object(props);
}

Json TopLevel(Json spec, Json status = nullptr) {
  // metadata is the API server's (the store checks it); a CRD's schema
  // leaves it open the same way.
  Json props = {{"apiVersion", String()}, {"kind", String()}, {"metadata", AnyObject()}, {"spec", std::move(spec)}};
  if (!status.is_null()) props["status"] = std::move(status);
  return Object(props);
}

// Go's names for JSON value types, as the API server's messages use them.
const char* JsonTypeName(const Json& v) {
  if (v.is_string()) return "string";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "boolean";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "null";
}

bool HasType(const Json& schema, const Json& v) {
  if (schema.value("x-kubernetes-int-or-string", false)) return v.is_number_integer() || v.is_string();
  if (!schema.contains("type")) return true;
  const std::string t = schema["type"];
  if (t == "string") return v.is_string();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  if (t == "boolean") return v.is_boolean();
  if (t == "array") return v.is_array();
  if (t == "object") return v.is_object();
  return true;
}

struct Walk {
  std::vector<std::string> unknown;
  std::vector<std::string> invalid;

  void Check(const Json& schema, Json& v, const std::string& path) {
    if (v.is_null()) return;  // an absent value
    if (!HasType(schema, v)) {
      const std::string want = schema.value("x-kubernetes-int-or-string", false) ? "integer,string"
                                                                               : schema.value("type", "");
      invalid.push_back(fmt::format("{}: Invalid value: \"{}\": {} in body must be of type {}: \"{}\"", path,
                                    JsonTypeName(v), path, want, JsonTypeName(v)));
      return;
    }
    if (schema.contains("enum") && std::find(schema["enum"].begin(), schema["enum"].end(), v) == schema["enum"].end()) {
      std::vector<std::string> quoted;
      for (const auto& e : schema["enum"]) quoted.push_back(e.dump());
      invalid.push_back(
          fmt::format("{}: Unsupported value: {}: supported values: {}", path, v.dump(), Join(quoted, ", ")));
      return;
    }
    if (v.is_array() && schema.contains("items")) {
      for (size_t i = 0; i < v.size(); i++) Check(schema["items"], v[i], fmt::format("{}[{}]", path, i));
    } else if (v.is_object()) {
      CheckObject(schema, v, path);
    }
  }

  void CheckObject(const Json& schema, Json& v, const std::string& path) {
    if (schema.value("x-kubernetes-preserve-unknown-fields", false)) return;
    const std::string prefix = path.empty() ? "" : path + ".";
    if (schema.contains("additionalProperties")) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        Check(schema["additionalProperties"], it.value(), prefix + it.key());
      }
      return;
    }
    const Json& props = schema.contains("properties") ? schema["properties"] : Json::object();
    std::vector<std::string> drop;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        Check(props[it.key()], it.value(), prefix + it.key());
      } else {
        drop.push_back(it.key());
      }
    }
    for (const auto& k : drop) {
      unknown.push_back(prefix + k);
      v.erase(k);
    }
    if (schema.contains("required")) {
      for (const auto& r : schema["required"]) {
        if (!v.contains(r.get<std::string>()) || v[r.get<std::string>()].is_null()) {
          invalid.push_back(fmt::format("{}{}: Required value", prefix, r.get<std::string>()));
        }
      }
    }
  }
};

std::string NameOf(const Json& obj) {
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const Json& m = obj["metadata"];
  return m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
}

}  // namespace

Json SchemaFor(const ResourceType& t) {
  if (t.group != "projectcalico.org") return nullptr;
  if (t.kind == "NetworkPolicy") return TopLevel(PolicySpec(false));
  if (t.kind == "GlobalNetworkPolicy") return TopLevel(PolicySpec(true));
  if (t.kind == "NetworkSet" || t.kind == "GlobalNetworkSet") return TopLevel(Object({{"nets", ArrayOf(String())}}));
  if (t.kind == "Tier") {
    return TopLevel(Object({{"order", Number()}, {"defaultAction", Enum({"Deny", "Pass"})}}), AnyObject());
  }
  return nullptr;
}

Result<FieldValidation> ParseFieldValidation(const std::string& text) {
  if (text.empty() || text == "Warn") return FieldValidation::kWarn;
  if (text == "Strict") return FieldValidation::kStrict;
  if (text == "Ignore") return FieldValidation::kIgnore;
  Error e = Errorf(ErrorCode::kInvalidArgument,
                   "fieldValidation {:?} is not one of \"Ignore\", \"Warn\", \"Strict\"", text);
  e.http_status = 400;
  return e;
}

Result<std::vector<std::string>> CheckFields(const ResourceType& t, Json* obj, FieldValidation mode) {
  const Json schema = SchemaFor(t);
  if (schema.is_null() || !obj->is_object()) return std::vector<std::string>{};
  Walk w;
  w.CheckObject(schema, *obj, "");
  // Decoding comes first on a real server: a strict decoding error wins.
  if (mode == FieldValidation::kStrict && !w.unknown.empty()) {
    std::vector<std::string> quoted;
    for (const auto& u : w.unknown) quoted.push_back(fmt::format("unknown field \"{}\"", u));
    Error e = Errorf(ErrorCode::kInvalidArgument,
                     "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}", t.kind, t.version,
                     t.kind, Join(quoted, ", "));
    e.http_status = 400;
    return e;
  }
  if (!w.invalid.empty()) {
    // The API server lists every field error: one message, all of them.
    const std::string detail = w.invalid.size() == 1 ? w.invalid[0] : "[" + Join(w.invalid, ", ") + "]";
    return Errorf(ErrorCode::kInvalidArgument, "{}.{} \"{}\" is invalid: {}", t.kind, t.group, NameOf(*obj), detail);
  }
  return w.unknown;
}

}  // namespace terway::lab
