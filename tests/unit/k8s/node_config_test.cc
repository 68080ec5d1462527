#include "k8s/node_config.h"

#include <gtest/gtest.h>

#include "config/eni_config.h"
#include "scripted_transport.h"

namespace terway::k8s {
namespace {

struct MergeCase {
  const char* name;
  const char* target;
  const char* patch;
  const char* want;
};

// RFC 7386's rules, case by case: the appendix's table (written out here
// from the rules), then the shapes eni_conf overrides take.
TEST(JsonMergePatchTest, FollowsRfc7386) {
  const MergeCase cases[] = {
      {"replace scalar member", R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {"add member", R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {"null deletes member", R"({"a":"b"})", R"({"a":null})", R"({})"},
      {"null deletes one of two", R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {"array replaced with scalar", R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {"scalar replaced with array", R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {"nested merge and delete", R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {"array of objects replaced whole", R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {"arrays replaced, not merged", R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {"object replaced by array", R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {"null patch replaces target", R"({"a":"foo"})", "null", "null"},
      {"string patch replaces target", R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {"null in patch for absent member is dropped", R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {"array target becomes object", R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {"nested null never lands in result", R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
      // eni_conf overrides.
      {"vswitches of one zone replaced", R"({"vswitches":{"cn-a":["vsw-1"],"cn-b":["vsw-2"]}})",
       R"({"vswitches":{"cn-a":["vsw-9"]}})", R"({"vswitches":{"cn-a":["vsw-9"],"cn-b":["vsw-2"]}})"},
      {"pool sizes replaced, rest kept", R"({"max_pool_size":5,"min_pool_size":0,"version":"1"})",
       R"({"max_pool_size":20,"min_pool_size":10})", R"({"max_pool_size":20,"min_pool_size":10,"version":"1"})"},
      {"security_group removed, security_groups added", R"({"security_group":"sg-1"})",
       R"({"security_group":null,"security_groups":["sg-2","sg-3"]})", R"({"security_groups":["sg-2","sg-3"]})"},
  };
  for (const auto& c : cases) {
    Json got = JsonMergePatch(Json::parse(c.target), Json::parse(c.patch));
    EXPECT_EQ(got, Json::parse(c.want)) << c.name << ": got " << got.dump();
  }
}

ConfigMap Cm(const std::string& name, std::map<std::string, std::string> data) {
  ConfigMap cm;
  cm.metadata.name = name;
  cm.metadata.namespace_ = "kube-system";
  cm.data = std::move(data);
  return cm;
}

const char* kBase = R"({"version":"1","max_pool_size":5,"min_pool_size":0,
  "vswitches":{"cn-hangzhou-i":["vsw-base"]},"security_group":"sg-base","region_id":"cn-hangzhou"})";

TEST(MergeNodeEniConfTest, NoOverrideIsTheBase) {
  auto r = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}}), std::nullopt);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(Json::parse(r->eni_conf), Json::parse(kBase));
  EXPECT_EQ(r->override_source, "");
}

TEST(MergeNodeEniConfTest, DisableNetworkPolicyKeyIsReadBesideEniConf) {
  auto absent = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}}), std::nullopt);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->disable_network_policy);
  auto off = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}, {"disable_network_policy", "true"}}),
                              std::nullopt);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->disable_network_policy);
  auto on = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}, {"disable_network_policy", "false"}}),
                             std::nullopt);
  ASSERT_TRUE(on.ok());
  EXPECT_FALSE(on->disable_network_policy);
  auto bad = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}, {"disable_network_policy", "yes"}}),
                              std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("disable_network_policy"), std::string::npos) << bad.error().ToString();
  EXPECT_NE(bad.error().message.find("\"true\" or \"false\""), std::string::npos);
}

TEST(MergeNodeEniConfTest, OverrideMergesAndIpamAcceptsTheResult) {
  auto r = MergeNodeEniConf(Cm("eni-config", {{"eni_conf", kBase}}),
                            Cm("pool-b", {{"eni_conf", R"({"vswitches":{"cn-hangzhou-i":["vsw-b1","vsw-b2"]},
                                                           "max_pool_size":12})"}}));
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->override_source, "kube-system/pool-b");
  auto parsed = config::ParseEniConfig(r->eni_conf);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->config.max_pool_size, 12);
  EXPECT_EQ(parsed->config.vswitches.at("cn-hangzhou-i"), (std::vector<std::string>{"vsw-b1", "vsw-b2"}));
  EXPECT_EQ(parsed->config.security_groups, std::vector<std::string>{"sg-base"});
}

TEST(MergeNodeEniConfTest, ErrorsNameTheConfigMapKeyAndCause) {
  struct Case {
    const char* name;
    ConfigMap base;
    std::optional<ConfigMap> over;
    const char* want;
  };
  const Case cases[] = {
      {"base key absent", Cm("eni-config", {{"10-terway.conf", "{}"}}), std::nullopt,
       "ConfigMap kube-system/eni-config has no key eni_conf"},
      {"base invalid JSON", Cm("eni-config", {{"eni_conf", "{\"max_pool_size\": 5"}}), std::nullopt,
       "ConfigMap kube-system/eni-config key eni_conf is not valid JSON"},
      {"base not an object", Cm("eni-config", {{"eni_conf", "[1]"}}), std::nullopt, "must be a JSON object, got array"},
      {"override key absent", Cm("eni-config", {{"eni_conf", kBase}}), Cm("pool-b", {}),
       "ConfigMap kube-system/pool-b has no key eni_conf"},
      {"override invalid JSON", Cm("eni-config", {{"eni_conf", kBase}}), Cm("pool-b", {{"eni_conf", "nope"}}),
       "ConfigMap kube-system/pool-b key eni_conf is not valid JSON"},
  };
  for (const auto& c : cases) {
    auto r = MergeNodeEniConf(c.base, c.over);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error().ToString().find(c.want), std::string::npos) << c.name << ": " << r.error().ToString();
  }
}

class LoadNodeEniConfTest : public ::testing::Test {
 protected:
  std::shared_ptr<ScriptedTransport> transport = std::make_shared<ScriptedTransport>();
  RestClient client{transport, nullptr};

  static std::string Node(const std::string& labels) {
    return R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","resourceVersion":"3","labels":)" + labels +
           "}}";
  }
  static std::string ConfigMapJson(const std::string& name, const std::string& eni_conf) {
    Json j = {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
              {"metadata", {{"name", name}, {"namespace", "kube-system"}}}, {"data", {{"eni_conf", eni_conf}}}};
    return j.dump();
  }
  static std::string NotFound(const std::string& name) {
    return R"({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"configmaps \")" +
           name + R"(\" not found"})";
  }
};

TEST_F(LoadNodeEniConfTest, ReadsNodeBaseAndLabelledOverride) {
  transport->answers.push_back(Resp(200, Node(R"({"terway-config":"pool-b"})")));
  transport->answers.push_back(Resp(200, ConfigMapJson("eni-config", kBase)));
  transport->answers.push_back(Resp(200, ConfigMapJson("pool-b", R"({"min_pool_size":3})")));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(Json::parse(r->eni_conf)["min_pool_size"], 3);
  EXPECT_EQ(Json::parse(r->eni_conf)["security_group"], "sg-base");
  ASSERT_EQ(transport->requests.size(), 3u);
  EXPECT_EQ(transport->requests[0].path, "/api/v1/nodes/node-1");
  EXPECT_EQ(transport->requests[1].path, "/api/v1/namespaces/kube-system/configmaps/eni-config");
  EXPECT_EQ(transport->requests[2].path, "/api/v1/namespaces/kube-system/configmaps/pool-b");
}

TEST_F(LoadNodeEniConfTest, UnlabelledNodeReadsOnlyTheBase) {
  transport->answers.push_back(Resp(200, Node(R"({"kubernetes.io/hostname":"node-1"})")));
  transport->answers.push_back(Resp(200, ConfigMapJson("eni-config", kBase)));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->override_source, "");
  EXPECT_EQ(transport->requests.size(), 2u);
}

// The node's labels come back with its eni_conf: terwayd reads upstream's
// exclusive-ENI label from them (src/config/node_mode.h).
TEST_F(LoadNodeEniConfTest, ReturnsTheNodesLabels) {
  transport->answers.push_back(
      Resp(200, Node(R"({"k8s.aliyun.com/exclusive-mode-eni-type":"eniOnly","terway-config":"pool-b"})")));
  transport->answers.push_back(Resp(200, ConfigMapJson("eni-config", kBase)));
  transport->answers.push_back(Resp(200, ConfigMapJson("pool-b", R"({"eni_mode":"shared"})")));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->node_labels.at("k8s.aliyun.com/exclusive-mode-eni-type"), "eniOnly");
  EXPECT_EQ(r->node_labels.at("terway-config"), "pool-b");
}

TEST_F(LoadNodeEniConfTest, MissingOverrideIsAnErrorNotAFallback) {
  transport->answers.push_back(Resp(200, Node(R"({"terway-config":"pool-x"})")));
  transport->answers.push_back(Resp(200, ConfigMapJson("eni-config", kBase)));
  transport->answers.push_back(Resp(404, NotFound("pool-x")));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().ToString().find("ConfigMap kube-system/pool-x (named by label terway-config of node node-1) "
                                      "does not exist"),
            std::string::npos)
      << r.error().ToString();
}

TEST_F(LoadNodeEniConfTest, MissingBaseIsAnError) {
  transport->answers.push_back(Resp(200, Node("{}")));
  transport->answers.push_back(Resp(404, NotFound("eni-config")));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("ConfigMap kube-system/eni-config (the cluster-wide eni_conf) does not exist"),
            std::string::npos)
      << r.error().ToString();
}

TEST_F(LoadNodeEniConfTest, EmptyLabelIsAnError) {
  transport->answers.push_back(Resp(200, Node(R"({"terway-config":""})")));
  transport->answers.push_back(Resp(200, ConfigMapJson("eni-config", kBase)));
  auto r = LoadNodeEniConf(client, "node-1");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("empty terway-config label"), std::string::npos) << r.error().ToString();
}

}  // namespace
}  // namespace terway::k8s
