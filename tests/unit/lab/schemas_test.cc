// Field validation against the Calico kinds' schemas, and the OpenAPI
// documents that publish them.
#include "tools/lab/apiserver/schemas.h"

#include <gtest/gtest.h>

#include "tools/lab/apiserver/openapi.h"

namespace terway::lab {
namespace {

const ResourceType& Kind(const std::string& plural) {
  static const std::vector<ResourceType> types = BuiltinResourceTypes();
  for (const auto& t : types) {
    if (t.plural == plural && (t.group == "projectcalico.org" || plural == "pods")) return t;
  }
  ADD_FAILURE() << "no kind " << plural;
  return types[0];
}

TEST(SchemasTest, UnknownFieldsArePrunedAndReported) {
  Json gnp = Json::parse(R"j({"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy",
    "metadata":{"name":"p","labels":{"a":"b"},"annotations":{"x":"y"}},
    "spec":{"selector":"all()","egress":[{"action":"Deny","destinaton":{"nets":["10.0.0.0/8"]}}],
            "allowedEgressDomains":["example.com"]}})j");
  auto pruned = CheckFields(Kind("globalnetworkpolicies"), &gnp, FieldValidation::kWarn);
  ASSERT_TRUE(pruned.ok()) << pruned.error().ToString();
  EXPECT_EQ(*pruned, (std::vector<std::string>{"spec.egress[0].destinaton", "spec.allowedEgressDomains"}));
  EXPECT_FALSE(gnp["spec"]["egress"][0].contains("destinaton"));
  EXPECT_FALSE(gnp["spec"].contains("allowedEgressDomains"));
  EXPECT_EQ(gnp["metadata"]["labels"]["a"], "b");  // metadata is the store's to check
}

TEST(SchemasTest, StrictRefusesUnknownFieldsAsADecodingError) {
  Json set = Json::parse(R"j({"metadata":{"name":"s"},"spec":{"netz":["10.0.0.0/8"]}})j");
  const Json before = set;
  auto r = CheckFields(Kind("globalnetworksets"), &set, FieldValidation::kStrict);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusOf(r.error()), (std::pair<int, std::string>{400, "BadRequest"}));
  EXPECT_EQ(r.error().message,
            "GlobalNetworkSet in version \"v3\" cannot be handled as a GlobalNetworkSet: strict decoding error: "
            "unknown field \"spec.netz\"");
  Json ignored = before;
  auto quiet = CheckFields(Kind("globalnetworksets"), &ignored, FieldValidation::kIgnore);
  ASSERT_TRUE(quiet.ok());
  EXPECT_EQ(ignored["spec"], Json::object());
}

TEST(SchemasTest, WrongTypesAreInvalid) {
  Json tier = Json::parse(R"j({"metadata":{"name":"t"},"spec":{"order":"first","defaultAction":"Drop"}})j");
  auto r = CheckFields(Kind("tiers"), &tier, FieldValidation::kStrict);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(HttpStatusOf(r.error()).first, 422);
  EXPECT_EQ(r.error().message,
            "Tier.projectcalico.org \"t\" is invalid: [spec.defaultAction: Unsupported value: \"Drop\": supported "
            "values: \"Deny\", \"Pass\", spec.order: Invalid value: \"string\": spec.order in body must be of type "
            "number: \"string\"]");
  // Ports and protocols are int-or-string; a rule needs its action.
  Json np = Json::parse(R"j({"metadata":{"name":"n"},"spec":{"ingress":[
      {"action":"Allow","protocol":"TCP","destination":{"ports":[80,"8080:8090","http"]}},
      {"protocol":6},
      {"action":"Allow","source":{"ports":[true]}}]}})j");
  auto rules = CheckFields(Kind("networkpolicies"), &np, FieldValidation::kStrict);
  ASSERT_FALSE(rules.ok());
  EXPECT_NE(rules.error().message.find("spec.ingress[1].action: Required value"), std::string::npos)
      << rules.error().message;
  EXPECT_NE(rules.error().message.find("spec.ingress[2].source.ports[0]: Invalid value: \"boolean\": "
                                       "spec.ingress[2].source.ports[0] in body must be of type integer,string"),
            std::string::npos)
      << rules.error().message;
  EXPECT_EQ(rules.error().message.find("ingress[0]"), std::string::npos) << rules.error().message;
}

TEST(SchemasTest, BuiltInKindsAreSchemaless) {
  Json pod = Json::parse(R"j({"metadata":{"name":"p"},"spec":{"anything":1}})j");
  auto r = CheckFields(Kind("pods"), &pod, FieldValidation::kStrict);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(pod["spec"]["anything"], 1);
}

TEST(OpenApiTest, DocumentsCarryTheSchemasWithTheirKinds) {
  const auto types = BuiltinResourceTypes();
  Json v2 = OpenApiV2Document(types);
  EXPECT_EQ(v2["swagger"], "2.0");
  ASSERT_TRUE(v2["definitions"].contains("org.projectcalico.v3.NetworkSet"));
  const Json& set = v2["definitions"]["org.projectcalico.v3.NetworkSet"];
  EXPECT_EQ(set["x-kubernetes-group-version-kind"],
            Json::parse(R"j([{"group":"projectcalico.org","version":"v3","kind":"NetworkSet"}])j"));
  EXPECT_EQ(set["properties"]["spec"]["properties"]["nets"]["items"]["type"], "string");
  // int-or-string as Kubernetes writes it in Swagger 2.0.
  EXPECT_EQ(v2["definitions"]["org.projectcalico.v3.NetworkPolicy"]["properties"]["spec"]["properties"]["ingress"]
              ["items"]["properties"]["protocol"],
            Json::parse(R"j({"type":"string","format":"int-or-string"})j"));
  EXPECT_FALSE(v2["definitions"].contains("io.k8s.api.core.v1.Pod"));  // schemaless: not validated client-side

  auto v3 = OpenApiV3Document(types, "apis/projectcalico.org/v3");
  ASSERT_TRUE(v3.ok());
  EXPECT_TRUE((*v3)["components"]["schemas"].contains("org.projectcalico.v3.Tier"));
  EXPECT_EQ((*v3)["paths"]["/apis/projectcalico.org/v3/tiers/{name}"]["patch"]["parameters"][0]["name"],
            "fieldValidation");
  EXPECT_FALSE(OpenApiV3Document(types, "apis/nothing.example/v1").ok());
  Json index = OpenApiV3Index(types);
  EXPECT_NE(index["paths"]["apis/projectcalico.org/v3"]["serverRelativeURL"].get<std::string>().find("?hash="),
            std::string::npos);
}

uint64_t ReadVarint(const std::string& buf, size_t& at) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    auto b = static_cast<uint8_t>(buf.at(at++));
    v |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return v;
  }
}

// The length-delimited fields of one message, by field number (anything
// else in it fails the test).
std::map<uint64_t, std::vector<std::string>> Fields(const std::string& msg) {
  std::map<uint64_t, std::vector<std::string>> out;
  size_t at = 0;
  while (at < msg.size()) {
    const uint64_t key = ReadVarint(msg, at);
    EXPECT_EQ(key & 7, 2u) << "field " << (key >> 3) << " is not length-delimited";
    const uint64_t len = ReadVarint(msg, at);
    EXPECT_LE(at + len, msg.size());
    out[key >> 3].push_back(msg.substr(at, len));
    at += len;
  }
  return out;
}

// The protobuf form, read back with gnostic's OpenAPIv2.proto numbers:
// Document{swagger=1, info=2, paths=8, definitions=9{NamedSchema=1{name=1,
// value=2: Schema{type=22, properties=25, vendor_extension=31}}}}.
TEST(OpenApiTest, ProtobufDocumentIsWellFormed) {
  auto doc = Fields(OpenApiV2Protobuf(BuiltinResourceTypes()));
  EXPECT_EQ(doc[1], std::vector<std::string>{"2.0"});
  ASSERT_EQ(doc[9].size(), 1u);
  std::vector<std::string> names;
  auto definitions = Fields(doc[9][0]);
  for (const auto& named : definitions[1]) {
    auto ns = Fields(named);
    names.push_back(ns[1].at(0));
    auto schema = Fields(ns[2].at(0));
    EXPECT_EQ(Fields(schema[22].at(0))[1], std::vector<std::string>{"object"}) << names.back();
    EXPECT_EQ(schema[25].size(), 1u) << names.back();
    auto ext = Fields(schema[31].at(0));
    EXPECT_EQ(ext[1].at(0), "x-kubernetes-group-version-kind");
    // Any{yaml=2}: the GVK list as YAML (JSON) text.
    auto gvk = Json::parse(Fields(ext[2].at(0))[2].at(0));
    EXPECT_EQ(gvk[0]["group"], "projectcalico.org");
  }
  EXPECT_EQ(names, (std::vector<std::string>{"org.projectcalico.v3.GlobalNetworkPolicy",
                                             "org.projectcalico.v3.GlobalNetworkSet",
                                             "org.projectcalico.v3.NetworkPolicy", "org.projectcalico.v3.NetworkSet",
                                             "org.projectcalico.v3.Tier"}));
}

}  // namespace
}  // namespace terway::lab
