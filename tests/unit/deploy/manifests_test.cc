// deploy/: the plain manifests and the Helm chart.
//
// The checks are functions returning the problems they find (empty: fine),
// so the same checks run on the plain manifests and on the chart rendered
// with its default values, and the tests below also feed them broken inputs
// to show that each one can fail.
//
// The chart is rendered here by a deliberately tiny subset of Helm's
// template language ({{ .Values.a.b }}, `| quote`, `toJson`, `.Files.Get "f"
// | indent N`, `.Chart.*`); anything else is reported, which keeps the
// templates simple enough to review by eye.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cni/config.h"
#include "ipam/config.h"
#include "k8s/client.h"
#include "k8s/node_config.h"
#include "test_util.h"

namespace terway {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using Problems = std::vector<std::string>;

fs::path DeployDir() { return fs::path(testing::SourceDir()) / "deploy"; }
fs::path ChartDir() { return DeployDir() / "helm" / "terway"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// YAML -> JSON with YAML 1.2 core-schema typing of plain scalars (what the
// API server's decoder does); quoted scalars stay strings.
Json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted
  if (s == "null" || s == "~") return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  if (std::regex_match(s, std::regex("[-+]?[0-9]+"))) return std::stoll(s);
  if (std::regex_match(s, std::regex("[-+]?([0-9]*\\.[0-9]+|[0-9]+\\.[0-9]*)([eE][-+]?[0-9]+)?"))) {
    return std::stod(s);
  }
  return s;
}

// All documents of a YAML stream; a parse error is a problem naming origin.
std::vector<Json> ParseDocs(const std::string& text, const std::string& origin, Problems* problems) {
  std::vector<Json> out;
  try {
    for (const auto& doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) continue;
      out.push_back(YamlToJson(doc));
    }
  } catch (const YAML::Exception& e) {
    problems->push_back(origin + ": YAML: " + e.what());
  }
  return out;
}

std::string Describe(const Json& o) {
  return o.value("kind", "?") + " " + o["metadata"].value("name", "?");
}

// --- manifest checks -------------------------------------------------------

const std::map<std::string, std::set<std::string>> kKnownKinds = {
    {"v1", {"ServiceAccount", "ConfigMap"}},
    {"apps/v1", {"DaemonSet"}},
    {"rbac.authorization.k8s.io/v1", {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}},
};

// o[key] when it is an array, else an empty array; a reference, so pointers
// into it stay valid (Json::value() would return a copy).
const Json& ArrayAt(const Json& o, const char* key) {
  static const Json kEmpty = Json::array();
  return o.is_object() && o.contains(key) && o[key].is_array() ? o[key] : kEmpty;
}

const Json* FindObject(const std::vector<Json>& objs, const std::string& kind, const std::string& name) {
  for (const auto& o : objs) {
    if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return &o;
  }
  return nullptr;
}

Problems CheckKinds(const std::vector<Json>& objs) {
  Problems p;
  for (const auto& o : objs) {
    if (!o.is_object()) {
      p.push_back("a document is not an object");
      continue;
    }
    auto gv = kKnownKinds.find(o.value("apiVersion", ""));
    if (gv == kKnownKinds.end() || !gv->second.count(o.value("kind", ""))) {
      p.push_back("unknown apiVersion/kind " + o.value("apiVersion", "") + "/" + o.value("kind", ""));
    }
    if (!o.contains("metadata") || o["metadata"].value("name", "").empty()) {
      p.push_back(Describe(o) + ": metadata.name missing");
    }
  }
  return p;
}

// Volumes and mounts match by name both ways, the service account and the
// ConfigMap keys referenced exist, and the node-level requirements hold.
Problems CheckDaemonSet(const std::vector<Json>& objs) {
  Problems p;
  const Json* ds = FindObject(objs, "DaemonSet", "terway-eniip");
  if (!ds) return {"DaemonSet terway-eniip missing"};
  const Json& spec = (*ds)["spec"]["template"]["spec"];
  if (!spec.value("hostNetwork", false)) p.push_back("hostNetwork is not true");
  if (spec.value("priorityClassName", "") != "system-node-critical") p.push_back("priorityClassName");
  bool tolerates_all = false;
  for (const auto& t : ArrayAt(spec, "tolerations")) {
    if (t.value("operator", "") == "Exists" && !t.contains("key") && !t.contains("effect")) tolerates_all = true;
  }
  if (!tolerates_all) p.push_back("no toleration for all taints (operator: Exists without key)");
  const std::string sa = spec.value("serviceAccountName", "");
  if (sa.empty() || !FindObject(objs, "ServiceAccount", sa)) p.push_back("serviceAccountName '" + sa + "' not defined");

  std::map<std::string, const Json*> volumes;
  for (const auto& v : ArrayAt(spec, "volumes")) {
    if (!volumes.emplace(v.value("name", ""), &v).second) p.push_back("volume " + v.value("name", "") + " twice");
  }
  std::set<std::string> used;
  std::map<std::string, std::string> mount_propagation;  // mountPath -> mode, of the terwayd container
  auto check_container = [&](const Json& c) {
    for (const auto& m : ArrayAt(c, "volumeMounts")) {
      const std::string n = m.value("name", "");
      if (!volumes.count(n)) p.push_back("container " + c.value("name", "") + " mounts undefined volume " + n);
      used.insert(n);
      if (c.value("name", "") == "terwayd") {
        mount_propagation[m.value("mountPath", "")] = m.value("mountPropagation", "None");
      }
    }
    for (const auto& e : ArrayAt(c, "env")) {
      if (!e.contains("valueFrom") || !e["valueFrom"].contains("configMapKeyRef")) continue;
      const Json& ref = e["valueFrom"]["configMapKeyRef"];
      const Json* cm = FindObject(objs, "ConfigMap", ref.value("name", ""));
      if (!ref.value("optional", false) && (!cm || !(*cm)["data"].contains(ref.value("key", "")))) {
        p.push_back("env " + e.value("name", "") + " references missing ConfigMap key " + ref.dump());
      }
    }
  };
  for (const auto& c : ArrayAt(spec, "initContainers")) check_container(c);
  for (const auto& c : ArrayAt(spec, "containers")) check_container(c);
  for (const auto& [name, v] : volumes) {
    if (!used.count(name)) p.push_back("volume " + name + " is mounted by no container");
    if (v->contains("configMap")) {
      const Json& ref = (*v)["configMap"];
      const Json* cm = FindObject(objs, "ConfigMap", ref.value("name", ""));
      if (!cm) {
        p.push_back("volume " + name + " references missing ConfigMap " + ref.value("name", ""));
        continue;
      }
      for (const auto& item : ArrayAt(ref, "items")) {
        if (!(*cm)["data"].contains(item.value("key", ""))) {
          p.push_back("volume " + name + " references missing key " + item.value("key", "") + " of ConfigMap " +
                      ref.value("name", ""));
        }
      }
    }
  }
  // The runtime creates pod netns after terwayd starts; without
  // HostToContainer the daemon would see empty mount points.
  for (const char* path : {"/var/run/netns", "/run/netns"}) {
    if (mount_propagation[path] != "HostToContainer") p.push_back(std::string("terwayd: ") + path + " not HostToContainer");
  }
  for (const char* path : {"/lib/modules", "/var/run/eni", "/var/lib/terway", "/etc/eni"}) {
    if (!mount_propagation.count(path)) p.push_back(std::string("terwayd: ") + path + " not mounted");
  }
  // The init container installs the plugin and its config on the host.
  bool installs = false;
  for (const auto& c : ArrayAt(spec, "initContainers")) {
    const std::string cmd = ArrayAt(c, "command").dump();
    if (cmd.find("/opt/cni/bin/terway") != std::string::npos &&
        cmd.find("/etc/cni/net.d/10-terway.conf") != std::string::npos) {
      installs = true;
    }
  }
  if (!installs) p.push_back("no init container installs /opt/cni/bin/terway and /etc/cni/net.d/10-terway.conf");
  return p;
}

// The shipped eni_conf through src/ipam's parser (no warnings: every key we
// ship is one we implement) and the CNI config through src/cni's.
Problems CheckConfigMap(const std::vector<Json>& objs) {
  Problems p;
  const Json* cm = FindObject(objs, "ConfigMap", "eni-config");
  if (!cm) return {"ConfigMap eni-config missing"};
  if ((*cm)["metadata"].value("namespace", "") != "kube-system") p.push_back("eni-config not in kube-system");
  const Json& data = (*cm)["data"];
  if (!data.contains("eni_conf") || !data["eni_conf"].is_string()) {
    p.push_back("eni-config has no eni_conf");
  } else {
    auto parsed = ipam::ParseEniConfig(data["eni_conf"].get<std::string>());
    if (!parsed.ok()) {
      p.push_back("eni_conf rejected: " + parsed.error().ToString());
    } else {
      for (const auto& w : parsed->warnings) p.push_back("eni_conf warning: " + w);
    }
  }
  // The policy switch, as terwayd reads it from the ConfigMap.
  k8s::ConfigMap shipped;
  shipped.metadata.name = "eni-config";
  for (const auto& [k, v] : data.items()) {
    if (v.is_string()) shipped.data[k] = v.get<std::string>();
  }
  if (!data.contains("disable_network_policy")) {
    p.push_back("eni-config has no disable_network_policy (Terway's switch; write \"false\" to enforce)");
  } else if (auto merged = k8s::MergeNodeEniConf(shipped, std::nullopt); !merged.ok()) {
    p.push_back("eni-config rejected: " + merged.error().ToString());
  }
  if (!data.contains("10-terway.conf") || !data["10-terway.conf"].is_string()) {
    p.push_back("eni-config has no 10-terway.conf");
    return p;
  }
  auto conf = cni::DecodeConfigJson(data["10-terway.conf"].get<std::string>());
  if (!conf.ok()) {
    p.push_back("10-terway.conf: " + conf.error().ToString());
    return p;
  }
  // A conflist carries the version and name for its plugins; a single
  // config carries them itself.
  std::vector<Json> plugins;
  if (conf->contains("plugins")) {
    for (Json pl : (*conf)["plugins"]) {
      pl["cniVersion"] = (*conf).value("cniVersion", "");
      pl["name"] = (*conf).value("name", "");
      plugins.push_back(pl);
    }
  } else {
    plugins.push_back(*conf);
  }
  bool has_terway = false;
  for (const auto& pl : plugins) {
    if (pl.value("type", "") != "terway") continue;
    has_terway = true;
    if (auto v = cni::ConfigVersion(pl); !v.ok()) p.push_back("10-terway.conf version: " + v.error().ToString());
    if (auto n = cni::ParseNetConf(pl); !n.ok()) p.push_back("10-terway.conf: " + n.error().ToString());
  }
  if (!has_terway) p.push_back("10-terway.conf has no plugin of type terway");
  return p;
}

// Least privilege: each (group, resource) may carry only the verbs terwayd
// uses; no wildcards; ConfigMaps only through a Role in kube-system.
Problems CheckRbac(const std::vector<Json>& objs) {
  const std::map<std::pair<std::string, std::string>, std::set<std::string>> allowed = {
      {{"", "pods"}, {"get", "list", "watch", "patch"}},
      {{"", "nodes"}, {"get", "list", "watch", "patch"}},
      {{"", "nodes/status"}, {"patch"}},
      {{"", "namespaces"}, {"get", "list", "watch"}},
      {{"networking.k8s.io", "networkpolicies"}, {"get", "list", "watch"}},
      {{"", "events"}, {"create", "patch"}},
      {{"", "serviceaccounts"}, {"get", "list", "watch"}},
      {{"discovery.k8s.io", "endpointslices"}, {"get", "list", "watch"}},
  };
  const std::set<std::string> read = {"get", "list", "watch"};
  Problems p;
  for (const auto& o : objs) {
    const std::string kind = o.value("kind", "");
    if (kind == "ClusterRole" || kind == "Role") {
      for (const auto& rule : ArrayAt(o, "rules")) {
        for (const auto& g : ArrayAt(rule, "apiGroups")) {
          for (const auto& r : ArrayAt(rule, "resources")) {
            for (const auto& v : ArrayAt(rule, "verbs")) {
              const std::string group = g.get<std::string>(), res = r.get<std::string>(),
                                verb = v.get<std::string>();
              const std::string what = Describe(o) + ": " + group + "/" + res + " " + verb;
              if (group == "*" || res == "*" || verb == "*") {
                p.push_back(what + ": wildcard");
              } else if (group == "" && res == "configmaps") {
                if (kind != "Role" || o["metadata"].value("namespace", "") != "kube-system" || verb != "get") {
                  p.push_back(what + ": configmaps only get, only in kube-system");
                }
              } else if (group == "crd.projectcalico.org" || group == "projectcalico.org") {
                if (!read.count(verb)) p.push_back(what + ": Calico resources are read only");
              } else {
                auto a = allowed.find({group, res});
                if (a == allowed.end() || !a->second.count(verb)) p.push_back(what + ": not needed by terwayd");
              }
            }
          }
        }
      }
    }
    if (kind == "ClusterRoleBinding" || kind == "RoleBinding") {
      const Json& ref = o["roleRef"];
      if (!FindObject(objs, ref.value("kind", ""), ref.value("name", ""))) {
        p.push_back(Describe(o) + ": roleRef " + ref.dump() + " not defined");
      }
      for (const auto& s : ArrayAt(o, "subjects")) {
        if (s.value("kind", "") == "ServiceAccount" && !FindObject(objs, "ServiceAccount", s.value("name", ""))) {
          p.push_back(Describe(o) + ": subject ServiceAccount " + s.value("name", "") + " not defined");
        }
      }
    }
  }
  return p;
}

// The API group of a ResourceRef's group_version ("v1" is the core group "").
std::string GroupOf(const k8s::ResourceRef& r) {
  auto slash = r.group_version.find('/');
  return slash == std::string::npos ? "" : r.group_version.substr(0, slash);
}

// What terwayd reads and writes (the ResourceRefs its code uses, so a kind
// added to the code without its RBAC fails here): the ClusterRole bound to
// terway grants each verb.
Problems CheckRbacGrantsWhatTerwaydUses(const std::vector<Json>& objs) {
  namespace res = k8s::resources;
  const std::vector<std::string> read = {"get", "list", "watch"};
  const std::vector<std::pair<const k8s::ResourceRef*, std::vector<std::string>>> used = {
      {&res::kPods, {"get", "list", "watch", "patch"}},
      {&res::kNodes, {"get", "list", "watch", "patch"}},
      {&res::kNamespaces, read},
      {&res::kEvents, {"create", "patch"}},
      {&res::kNetworkPolicies, read},
      {&res::kCalicoNetworkPolicies, read},
      {&res::kCalicoGlobalNetworkPolicies, read},
      {&res::kCalicoCrdNetworkPolicies, read},
      {&res::kCalicoCrdGlobalNetworkPolicies, read},
      {&res::kCalicoTiers, read},
      {&res::kCalicoNetworkSets, read},
      {&res::kCalicoGlobalNetworkSets, read},
      {&res::kCalicoCrdTiers, read},
      {&res::kCalicoCrdNetworkSets, read},
      {&res::kCalicoCrdGlobalNetworkSets, read},
      {&res::kServiceAccounts, read},
      {&res::kEndpointSlices, read},
  };
  std::set<std::tuple<std::string, std::string, std::string>> granted;
  for (const auto& o : objs) {
    if (o.value("kind", "") != "ClusterRole" || o["metadata"].value("name", "") != "terway") continue;
    for (const auto& rule : ArrayAt(o, "rules")) {
      for (const auto& g : ArrayAt(rule, "apiGroups")) {
        for (const auto& r : ArrayAt(rule, "resources")) {
          for (const auto& v : ArrayAt(rule, "verbs")) {
            granted.insert({g.get<std::string>(), r.get<std::string>(), v.get<std::string>()});
          }
        }
      }
    }
  }
  Problems p;
  for (const auto& [ref, verbs] : used) {
    for (const auto& verb : verbs) {
      if (!granted.count({GroupOf(*ref), ref->plural, verb})) {
        p.push_back(fmt::format("ClusterRole terway: does not grant {} on {}/{}, which terwayd uses", verb,
                                GroupOf(*ref).empty() ? "core" : GroupOf(*ref), ref->plural));
      }
    }
  }
  return p;
}

Problems CheckAll(const std::vector<Json>& objs) {
  Problems all;
  using Check = Problems (*)(const std::vector<Json>&);
  for (Check check : {&CheckKinds, &CheckDaemonSet, &CheckConfigMap, &CheckRbac, &CheckRbacGrantsWhatTerwaydUses}) {
    auto p = check(objs);
    all.insert(all.end(), p.begin(), p.end());
  }
  return all;
}

std::vector<Json> LoadPlainManifests(Problems* problems) {
  std::vector<Json> objs;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(DeployDir())) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto docs = ParseDocs(ReadFile(f), f.filename().string(), problems);
    objs.insert(objs.end(), docs.begin(), docs.end());
  }
  return objs;
}

// --- the chart -------------------------------------------------------------

// A value of values.yaml by dotted path ("a.b"), or nullptr.
const Json* ValueAt(const Json& values, const std::string& path) {
  const Json* cur = &values;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (!cur->is_object() || !cur->contains(part)) return nullptr;
    cur = &(*cur)[part];
  }
  return cur;
}

std::string Indent(const std::string& text, int n) {
  std::string pad(static_cast<size_t>(n), ' '), out;
  std::stringstream ss(text);
  std::string line;
  bool first = true;
  while (std::getline(ss, line)) {
    if (!first) out += "\n";
    out += pad + line;
    first = false;
  }
  return out;
}

// Renders one template with the subset described at the top; every action
// it cannot render, every .Values path missing from values.yaml and every
// .Files.Get of a file not in the chart is a problem.
std::string RenderTemplate(const std::string& text, const Json& values, const Json& chart, const std::string& origin,
                           Problems* p) {
  static const std::regex action(R"re(\{\{(-?)\s*(.*?)\s*(-?)\}\})re");
  static const std::regex value_re(R"re(^(toJson\s+)?\.Values\.([A-Za-z0-9_.]+)(\s*\|\s*quote)?$)re");
  static const std::regex files_re(R"re(^\.Files\.Get\s+"([^"]+)"\s*\|\s*indent\s+([0-9]+)$)re");
  static const std::regex chart_re(R"re(^\.Chart\.([A-Za-z]+)$)re");
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), action);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    out += text.substr(last, static_cast<size_t>(m.position(0)) - last);
    last = static_cast<size_t>(m.position(0) + m.length(0));
    const std::string expr = m[2];
    std::smatch sm;
    if (!m[1].str().empty() || !m[3].str().empty()) {
      p->push_back(origin + ": whitespace trimming {{- -}} not supported: " + m[0].str());
    } else if (std::regex_match(expr, sm, value_re)) {
      const Json* v = ValueAt(values, sm[2]);
      if (!v) {
        p->push_back(origin + ": .Values." + sm[2].str() + " is not in values.yaml");
        continue;
      }
      if (sm[1].matched) {
        out += v->dump();
      } else if (sm[3].matched) {
        out += Json(v->is_string() ? v->get<std::string>() : v->dump()).dump();
      } else {
        out += v->is_string() ? v->get<std::string>() : v->dump();
      }
    } else if (std::regex_match(expr, sm, files_re)) {
      const fs::path f = ChartDir() / sm[1].str();
      if (!fs::is_regular_file(f)) {
        p->push_back(origin + ": .Files.Get of missing file " + sm[1].str());
        continue;
      }
      out += Indent(ReadFile(f), std::stoi(sm[2]));
    } else if (std::regex_match(expr, sm, chart_re)) {
      std::string key = sm[1];
      key[0] = static_cast<char>(std::tolower(key[0]));
      if (!chart.contains(key)) p->push_back(origin + ": .Chart." + sm[1].str() + " not in Chart.yaml");
      else out += chart[key].is_string() ? chart[key].get<std::string>() : chart[key].dump();
    } else {
      p->push_back(origin + ": unsupported template action {{ " + expr + " }}");
    }
  }
  out += text.substr(last);
  return out;
}

struct RenderedChart {
  std::vector<Json> objects;
  Problems problems;
};

RenderedChart RenderChart() {
  RenderedChart r;
  auto chart_docs = ParseDocs(ReadFile(ChartDir() / "Chart.yaml"), "Chart.yaml", &r.problems);
  auto value_docs = ParseDocs(ReadFile(ChartDir() / "values.yaml"), "values.yaml", &r.problems);
  if (chart_docs.size() != 1 || value_docs.size() != 1) {
    r.problems.push_back("Chart.yaml and values.yaml must hold one document each");
    return r;
  }
  const Json& chart = chart_docs[0];
  for (const char* k : {"apiVersion", "name", "version", "appVersion"}) {
    if (!chart.contains(k)) r.problems.push_back(std::string("Chart.yaml: ") + k + " missing");
  }
  std::vector<fs::path> templates;
  for (const auto& e : fs::directory_iterator(ChartDir() / "templates")) {
    if (e.path().extension() == ".yaml") templates.push_back(e.path());
  }
  std::sort(templates.begin(), templates.end());
  for (const auto& t : templates) {
    const std::string origin = "templates/" + t.filename().string();
    std::string text = RenderTemplate(ReadFile(t), value_docs[0], chart, origin, &r.problems);
    auto docs = ParseDocs(text, origin + " (rendered)", &r.problems);
    r.objects.insert(r.objects.end(), docs.begin(), docs.end());
  }
  return r;
}

// ConfigMap data that is JSON compares as JSON (the chart builds eni_conf
// from values, so its spacing differs from the hand-written manifest).
Json Normalized(Json o) {
  if (o.value("kind", "") == "ConfigMap" && o.contains("data")) {
    for (auto& [k, v] : o["data"].items()) {
      if (!v.is_string()) continue;
      Json parsed = Json::parse(v.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) v = parsed;
    }
  }
  return o;
}

std::string Join(const Problems& p) {
  std::string s;
  for (const auto& x : p) s += "\n  " + x;
  return s;
}

// --- tests -----------------------------------------------------------------

TEST(DeployManifestsTest, PlainManifestsPassEveryCheck) {
  Problems problems;
  auto objs = LoadPlainManifests(&problems);
  EXPECT_TRUE(problems.empty()) << Join(problems);
  EXPECT_GE(objs.size(), 7u);
  auto p = CheckAll(objs);
  EXPECT_TRUE(p.empty()) << Join(p);
}

TEST(DeployManifestsTest, ChartRendersTheSameObjectsAsThePlainManifests) {
  RenderedChart chart = RenderChart();
  EXPECT_TRUE(chart.problems.empty()) << Join(chart.problems);
  auto p = CheckAll(chart.objects);
  EXPECT_TRUE(p.empty()) << Join(p);

  Problems load;
  auto plain = LoadPlainManifests(&load);
  ASSERT_EQ(chart.objects.size(), plain.size());
  for (const auto& o : plain) {
    const Json* rendered = FindObject(chart.objects, o.value("kind", ""), o["metadata"].value("name", ""));
    ASSERT_NE(rendered, nullptr) << "chart lacks " << Describe(o);
    EXPECT_EQ(Normalized(*rendered), Normalized(o)) << Describe(o) << " differs:\n"
                                                    << Json::diff(Normalized(o), Normalized(*rendered)).dump(1);
  }
}

// The checks above must be able to fail: each broken variant of the plain
// manifests is caught with a problem naming the defect.
class BrokenManifestsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Problems p;
    objs = LoadPlainManifests(&p);
    ASSERT_TRUE(p.empty()) << Join(p);
  }
  Json& Find(const std::string& kind, const std::string& name) {
    for (auto& o : objs) {
      if (o.value("kind", "") == kind && o["metadata"].value("name", "") == name) return o;
    }
    ADD_FAILURE() << kind << " " << name << " not found";
    static Json none;
    return none;
  }
  Json& PodSpec() { return Find("DaemonSet", "terway-eniip")["spec"]["template"]["spec"]; }
  void ExpectProblem(const std::string& needle) {
    auto p = CheckAll(objs);
    bool found = false;
    for (const auto& x : p) found |= x.find(needle) != std::string::npos;
    EXPECT_TRUE(found) << "wanted a problem containing '" << needle << "', got:" << Join(p);
  }
  std::vector<Json> objs;
};

TEST_F(BrokenManifestsTest, MountOfUndefinedVolume) {
  PodSpec()["containers"][0]["volumeMounts"].push_back({{"name", "nope"}, {"mountPath", "/x"}});
  ExpectProblem("mounts undefined volume nope");
}

TEST_F(BrokenManifestsTest, UnusedVolume) {
  PodSpec()["volumes"].push_back({{"name", "orphan"}, {"emptyDir", Json::object()}});
  ExpectProblem("volume orphan is mounted by no container");
}

TEST_F(BrokenManifestsTest, MissingServiceAccountAndConfigMapKey) {
  PodSpec()["serviceAccountName"] = "ghost";
  Find("ConfigMap", "eni-config")["data"].erase("10-terway.conf");
  ExpectProblem("serviceAccountName 'ghost' not defined");
  ExpectProblem("missing key 10-terway.conf of ConfigMap eni-config");
}

TEST_F(BrokenManifestsTest, NetnsWithoutPropagation) {
  for (auto& m : PodSpec()["containers"][0]["volumeMounts"]) {
    if (m["mountPath"] == "/run/netns") m.erase("mountPropagation");
  }
  ExpectProblem("/run/netns not HostToContainer");
}

TEST_F(BrokenManifestsTest, BadEniConfAndCniConfig) {
  Json& data = Find("ConfigMap", "eni-config")["data"];
  data["eni_conf"] = R"({"max_pool_size": "five"})";
  data["10-terway.conf"] = R"({"cniVersion": "1.0.0", "name": "terway", "type": "terway", "mtu": "big"})";
  ExpectProblem("eni_conf rejected");
  ExpectProblem("10-terway.conf:");
}

TEST_F(BrokenManifestsTest, WildcardAndExtraVerbs) {
  Json& rules = Find("ClusterRole", "terway")["rules"];
  rules.push_back({{"apiGroups", {""}}, {"resources", {"secrets"}}, {"verbs", {"get"}}});
  rules.push_back({{"apiGroups", {"*"}}, {"resources", {"pods"}}, {"verbs", {"get"}}});
  rules.push_back({{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"delete"}}});
  rules.push_back({{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get"}}});
  ExpectProblem("/secrets get: not needed");
  ExpectProblem("wildcard");
  ExpectProblem("/pods delete: not needed");
  ExpectProblem("configmaps only get, only in kube-system");
}

TEST_F(BrokenManifestsTest, MissingGrantsOfKindsTerwaydWatches) {
  Json& rules = Find("ClusterRole", "terway")["rules"];
  for (auto& rule : rules) {
    Json kept = Json::array();
    for (const auto& r : rule["resources"]) {
      if (r != "tiers" && r != "endpointslices") kept.push_back(r);
    }
    rule["resources"] = kept;
  }
  ExpectProblem("does not grant watch on projectcalico.org/tiers");
  ExpectProblem("does not grant list on crd.projectcalico.org/tiers");
  ExpectProblem("does not grant get on discovery.k8s.io/endpointslices");
}

TEST(ChartTemplateTest, ReportsUnknownValuesFilesAndActions) {
  const Json values = {{"a", {{"b", "x"}}}};
  const Json chart = {{"name", "terway"}};
  Problems p;
  std::string out = RenderTemplate(
      "k: {{ .Values.a.b | quote }}\nj: {{ toJson .Values.a }}\n{{ .Values.a.c }}\n{{ .Files.Get \"files/none\" | indent 2 }}\n"
      "{{ include \"x\" . }}\n{{- .Values.a.b }}\n{{ .Chart.Name }}",
      values, chart, "t.yaml", &p);
  EXPECT_NE(out.find("k: \"x\"\nj: {\"b\":\"x\"}\n"), std::string::npos) << out;
  EXPECT_NE(out.find("terway"), std::string::npos) << out;
  ASSERT_EQ(p.size(), 4u) << Join(p);
  EXPECT_NE(p[0].find(".Values.a.c is not in values.yaml"), std::string::npos);
  EXPECT_NE(p[1].find("missing file files/none"), std::string::npos);
  EXPECT_NE(p[2].find("unsupported template action"), std::string::npos);
  EXPECT_NE(p[3].find("whitespace trimming"), std::string::npos);
}

}  // namespace
}  // namespace terway
