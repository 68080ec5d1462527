#include "tools/lab/apiserver/openapi.h"

#include <functional>

#include "tools/lab/apiserver/schemas.h"

namespace terway::lab {
namespace {

std::string GvPath(const ResourceType& t) { return t.group.empty() ? "api/" + t.version : "apis/" + t.GroupVersion(); }

// The definition name an API server gives a CRD kind: the group reversed,
// then version and kind ("org.projectcalico.v3.Tier").
std::string DefinitionName(const ResourceType& t) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = t.group.find('.', start);
    parts.push_back(t.group.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  std::string name;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) name += *it + ".";
  return name + t.version + "." + t.kind;
}

Json Gvk(const ResourceType& t) {
  return Json::array({{{"group", t.group}, {"version", t.version}, {"kind", t.kind}}});
}

// OpenAPI v3 schema -> Swagger 2.0 schema: int-or-string becomes the string
// with format int-or-string Kubernetes publishes, and an object that keeps
// unknown fields becomes a bare object (a free-form map to validators).
Json ToV2(const Json& s) {
  if (s.value("x-kubernetes-int-or-string", false)) return {{"type", "string"}, {"format", "int-or-string"}};
  if (s.value("x-kubernetes-preserve-unknown-fields", false)) return {{"type", "object"}};
  Json out = s;
  if (s.contains("items")) out["items"] = ToV2(s["items"]);
  if (s.contains("additionalProperties") && s["additionalProperties"].is_object()) {
    out["additionalProperties"] = ToV2(s["additionalProperties"]);
  }
  if (s.contains("properties")) {
    for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
      out["properties"][it.key()] = ToV2(it.value());
    }
  }
  return out;
}

// --- protobuf encoding, just what openapi_v2.Document needs: varints and
// length-delimited fields (strings, bytes, embedded messages).
class Message {
 public:
  Message& String(uint32_t field, const std::string& s) {
    Key(field, 2);
    Varint(s.size());
    out_ += s;
    return *this;
  }
  Message& Embedded(uint32_t field, const Message& m) { return String(field, m.out_); }
  const std::string& bytes() const { return out_; }

 private:
  void Key(uint32_t field, uint32_t wire_type) { Varint((uint64_t{field} << 3) | wire_type); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

// openapi_v2.Any{yaml}: gnostic keeps extension and enum values as YAML
// text (JSON is YAML).
Message AnyYaml(const Json& v) { return std::move(Message().String(2, v.dump())); }

// openapi_v2.NamedAny{name, value}.
Message NamedAny(const std::string& name, const Json& v) {
  return std::move(Message().String(1, name).Embedded(2, AnyYaml(v)));
}

// openapi_v2.Schema (field numbers from gnostic's OpenAPIv2.proto).
Message SchemaMessage(const Json& s) {
  Message m;
  if (s.contains("format")) m.String(2, s["format"].get<std::string>());
  if (s.contains("description")) m.String(4, s["description"].get<std::string>());
  if (s.contains("required")) {
    for (const auto& r : s["required"]) m.String(19, r.get<std::string>());
  }
  if (s.contains("enum")) {
    for (const auto& e : s["enum"]) m.Embedded(20, AnyYaml(e));
  }
  if (s.contains("additionalProperties") && s["additionalProperties"].is_object()) {
    m.Embedded(21, Message().Embedded(1, SchemaMessage(s["additionalProperties"])));  // AdditionalPropertiesItem.schema
  }
  if (s.contains("type")) m.Embedded(22, Message().String(1, s["type"].get<std::string>()));  // TypeItem.value
  if (s.contains("items")) m.Embedded(23, Message().Embedded(1, SchemaMessage(s["items"])));  // ItemsItem.schema
  if (s.contains("properties")) {
    Message props;  // Properties.additional_properties: NamedSchema{name, value}
    for (auto it = s["properties"].begin(); it != s["properties"].end(); ++it) {
      props.Embedded(1, Message().String(1, it.key()).Embedded(2, SchemaMessage(it.value())));
    }
    m.Embedded(25, props);
  }
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it.key().rfind("x-", 0) == 0) m.Embedded(31, NamedAny(it.key(), it.value()));
  }
  return m;
}

}  // namespace

Json OpenApiV3Index(const std::vector<ResourceType>& types) {
  Json paths = Json::object();
  for (const auto& t : types) {
    const std::string p = GvPath(t);
    if (paths.contains(p)) continue;
    // The hash changes with the document, so kubectl's cache of these
    // immutable URLs never serves an old one.
    auto doc = OpenApiV3Document(types, p);
    const size_t hash = std::hash<std::string>{}(doc.ok() ? doc->dump() : "");
    paths[p] = {{"serverRelativeURL", fmt::format("/openapi/v3/{}?hash={:016X}", p, hash)}};
  }
  return {{"paths", paths}};
}

Result<Json> OpenApiV3Document(const std::vector<ResourceType>& types, const std::string& gv_path) {
  Json paths = Json::object();
  Json schemas = Json::object();
  for (const auto& t : types) {
    if (GvPath(t) != gv_path) continue;
    const std::string path = "/" + gv_path + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.plural + "/{name}";
    Json op = {{"x-kubernetes-group-version-kind", Gvk(t)[0]},
               {"parameters", {{{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}}}},
               {"responses", {{"200", {{"description", "OK"}}}}}};
    paths[path] = {{"patch", op}};
    if (Json schema = SchemaFor(t); !schema.is_null()) {
      schema["x-kubernetes-group-version-kind"] = Gvk(t);
      schemas[DefinitionName(t)] = schema;
    }
  }
  if (paths.empty()) {
    return Errorf(ErrorCode::kNotFound, "the server could not find the requested resource");
  }
  return Json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes (terway lab)"}, {"version", "v1.32.0"}}},
              {"paths", paths},
              {"components", {{"schemas", schemas}}}};
}

Json OpenApiV2Document(const std::vector<ResourceType>& types) {
  Json definitions = Json::object();
  for (const auto& t : types) {
    Json schema = SchemaFor(t);
    if (schema.is_null()) continue;
    schema = ToV2(schema);
    schema["x-kubernetes-group-version-kind"] = Gvk(t);
    definitions[DefinitionName(t)] = schema;
  }
  return {{"swagger", "2.0"},
          {"info", {{"title", "Kubernetes (terway lab)"}, {"version", "v1.32.0"}}},
          {"paths", Json::object()},
          {"definitions", definitions}};
}

std::string OpenApiV2Protobuf(const std::vector<ResourceType>& types) {
  const Json doc = OpenApiV2Document(types);
  Message definitions;  // Definitions.additional_properties: NamedSchema
  for (auto it = doc["definitions"].begin(); it != doc["definitions"].end(); ++it) {
    definitions.Embedded(1, Message().String(1, it.key()).Embedded(2, SchemaMessage(it.value())));
  }
  Message info;
  info.String(1, doc["info"]["title"].get<std::string>()).String(2, doc["info"]["version"].get<std::string>());
  Message d;
  d.String(1, "2.0").Embedded(2, info).Embedded(8, Message()).Embedded(9, definitions);
  return d.bytes();
}

}  // namespace terway::lab
