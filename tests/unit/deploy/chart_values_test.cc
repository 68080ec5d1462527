// deploy/helm/terway/values.schema.json: Helm validates values against it at
// install/upgrade/template. helm is not installed on the build machines, so
// this test validates with its own JSON-schema check of exactly the keywords
// the schema uses (type, properties, additionalProperties, items, pattern);
// a keyword outside that set fails the test rather than being ignored.
//
// What it proves: an upstream Terway values file (its chart's defaults, with
// keys we do not use) is accepted; our values.yaml's placeholders are refused
// naming the value and the fix; real ids pass.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "test_util.h"

namespace terway {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

fs::path ChartDir() { return fs::path(testing::SourceDir()) / "deploy" / "helm" / "terway"; }

// YAML -> JSON, typing plain scalars as YAML 1.2's core schema (as Helm does).
Json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& e : n) a.push_back(ToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = ToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true" || s == "false") return s == "true";
      if (std::regex_match(s, std::regex("-?[0-9]+"))) return std::stoll(s);
      return s;
    }
    default: return nullptr;
  }
}

Json LoadYaml(const std::string& text) { return ToJson(YAML::Load(text)); }

// Problems of `v` against `schema` ("" path is the root), Helm-style paths.
void Validate(const Json& schema, const Json& v, const std::string& path, std::vector<std::string>* out) {
  static const std::set<std::string> kKnown = {"$schema", "title", "description", "type", "properties",
                                               "additionalProperties", "items", "pattern"};
  for (const auto& [k, _] : schema.items())
    if (!kKnown.count(k)) out->push_back("schema keyword " + k + " at " + path + " is not checked by this test");
  std::string at = path.empty() ? "/" : path;
  if (schema.contains("type")) {
    std::string t = schema["type"];
    bool ok = (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
              (t == "integer" && v.is_number_integer()) || (t == "boolean" && v.is_boolean());
    if (!ok) {
      out->push_back(at + ": want " + t + ", got " + v.dump());
      return;
    }
  }
  if (schema.contains("pattern") && v.is_string() &&
      !std::regex_search(v.get<std::string>(), std::regex(schema["pattern"].get<std::string>())))
    out->push_back(at + ": " + v.dump() + " does not match " + schema["pattern"].get<std::string>() + " (" +
                   schema.value("description", "") + ")");
  if (v.is_object()) {
    for (const auto& [k, child] : v.items()) {
      if (schema.contains("properties") && schema["properties"].contains(k))
        Validate(schema["properties"][k], child, path + "/" + k, out);
      else if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object())
        Validate(schema["additionalProperties"], child, path + "/" + k, out);
      else if (schema.value("additionalProperties", Json(true)) == Json(false))
        out->push_back(at + ": unknown key " + k);
    }
  }
  if (v.is_array() && schema.contains("items"))
    for (size_t i = 0; i < v.size(); i++) Validate(schema["items"], v[i], path + "/" + std::to_string(i), out);
}

std::vector<std::string> Problems(const Json& values) {
  std::ifstream in(ChartDir() / "values.schema.json");
  EXPECT_TRUE(in.good());
  Json schema = Json::parse(in);
  std::vector<std::string> out;
  Validate(schema, values, "", &out);
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

Json ChartValues() {
  std::ifstream in(ChartDir() / "values.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  return LoadYaml(ss.str());
}

TEST(ChartValuesSchemaTest, PlaceholdersAreRefusedNamingTheValueAndTheFix) {
  auto p = Problems(ChartValues());
  ASSERT_EQ(p.size(), 2u) << Join(p);
  EXPECT_NE(p[0].find("/terway/securityGroupIDs/0: \"sg-replace-me\""), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("[] for the node's primary ENI's groups"), std::string::npos) << p[0];
  EXPECT_NE(p[1].find("/terway/vSwitchIDs/cn-hangzhou-i/0: \"vsw-replace-me\""), std::string::npos) << p[1];
  EXPECT_NE(p[1].find("{} for the node's own vSwitch"), std::string::npos) << p[1];
}

TEST(ChartValuesSchemaTest, RealIdsPass) {
  Json v = ChartValues();
  v["terway"]["vSwitchIDs"] = {{"cn-hangzhou-i", {"vsw-bp1x2y3z", "vsw-bp14"}}};
  v["terway"]["securityGroupIDs"] = {"sg-bp1abc"};
  EXPECT_TRUE(Problems(v).empty()) << Join(Problems(v));
  v["daemon"]["datapath"] = "ipvlan";  // and the schema does check other values
  EXPECT_EQ(Problems(v).size(), 1u) << Join(Problems(v));
}

// Upstream Terway's chart values (charts/terway/values.yaml, the parts an
// operator sets): accepted as is; its keys for features we lack are ignored.
TEST(ChartValuesSchemaTest, AnUpstreamValuesFileIsAccepted) {
  Json v = LoadYaml(R"(
centralizedIPAM: true
featureGates: ""
terway:
  image:
    repository: registry-cn-hangzhou.ack.aliyuncs.com/acs/terway
    pullPolicy: IfNotPresent
    tag: "v1.16.7"
  daemonMode: ENIMultiIP
  enableNetworkPolicy: false
  ipStack: ipv4
  securityGroupIDs: []
  vSwitchIDs: {}
  serviceCIDR: "10.96.0.0/12"
  accessKey: ""
  accessSecret: ""
  credentialPath: ""
terwayControlplane:
  replicaCount: 1
)");
  EXPECT_TRUE(Problems(v).empty()) << Join(Problems(v));
  v["terway"]["vSwitchIDs"] = {{"cn-hangzhou-i", {"vsw-xxx-placeholder"}}};
  EXPECT_EQ(Problems(v).size(), 1u) << Join(Problems(v));
}

}  // namespace
}  // namespace terway
