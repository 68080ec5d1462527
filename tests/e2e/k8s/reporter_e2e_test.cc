// The k8s writers (node eni_conf resolution, node/pod reporting, Events)
// against the lab's API stand-in over real HTTP, with kubectl as the
// independent client that writes the inputs and reads back the outputs.
// Skips when kubectl is absent.
#include <fstream>

#include "config/eni_config.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/node_config.h"
#include "k8s/reporter.h"
#include "kubectl_fixture.h"
#include "test_util.h"

namespace terway::lab {
namespace {

class K8sWritersTest : public KubectlTest {
 protected:
  void SetUp() override {
    KubectlTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // The daemon's client, built from the same kubeconfig kubectl uses.
    auto cfg = k8s::LoadKubeconfig(kubeconfig_);
    ASSERT_OK(cfg);
    client_ = k8s::RestClient::FromConfig(*cfg);
  }
  // kubectl's view of one object as JSON.
  Json Get(const std::vector<std::string>& what) {
    std::vector<std::string> args = {"get"};
    args.insert(args.end(), what.begin(), what.end());
    args.insert(args.end(), {"-o", "json"});
    auto r = Kubectl(args);
    EXPECT_EQ(r.code, 0) << r.out;
    return Json::parse(r.out, nullptr, false);
  }
  void Apply(const std::string& name, const std::string& yaml) {
    auto r = Kubectl({"apply", "-f", dir_.Write(name, yaml)});
    ASSERT_EQ(r.code, 0) << r.out;
  }

  std::unique_ptr<k8s::RestClient> client_;
};

// A node as a kubelet registers it: Ready, cpu/pods capacity.
const char* kNodeYaml = R"(apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {kubernetes.io/hostname: node-1}
status:
  capacity: {cpu: "4", pods: "110"}
  allocatable: {cpu: "4", pods: "110"}
  conditions:
  - {type: Ready, status: "True", reason: KubeletReady, message: ok,
     lastHeartbeatTime: "2024-01-01T00:00:00Z", lastTransitionTime: "2024-01-01T00:00:00Z"}
)";

const char* kConfigMapsYaml = R"(apiVersion: v1
kind: ConfigMap
metadata: {name: eni-config, namespace: kube-system}
data:
  eni_conf: |
    {"version": "1", "max_pool_size": 5, "min_pool_size": 0, "region_id": "cn-hangzhou",
     "vswitches": {"cn-hangzhou-i": ["vsw-base"]}, "security_group": "sg-base"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: pool-gpu, namespace: kube-system}
data:
  eni_conf: |
    {"vswitches": {"cn-hangzhou-i": ["vsw-gpu-1", "vsw-gpu-2"]}, "max_pool_size": 20, "security_group": null,
     "security_groups": ["sg-gpu"]}
)";

TEST_F(K8sWritersTest, NodeEniConfFollowsTheTerwayConfigLabel) {
  Apply("node.yaml", kNodeYaml);
  Apply("cms.yaml", kConfigMapsYaml);

  auto base = k8s::LoadNodeEniConf(*client_, "node-1");
  ASSERT_OK(base);
  EXPECT_EQ(base->override_source, "");
  auto base_cfg = config::ParseEniConfig(base->eni_conf);
  ASSERT_OK(base_cfg);
  EXPECT_EQ(base_cfg->config.max_pool_size, 5);

  auto labelled = Kubectl({"label", "node", "node-1", "terway-config=pool-gpu"});
  ASSERT_EQ(labelled.code, 0) << labelled.out;
  auto merged = k8s::LoadNodeEniConf(*client_, "node-1");
  ASSERT_OK(merged);
  EXPECT_EQ(merged->override_source, "kube-system/pool-gpu");
  auto cfg = config::ParseEniConfig(merged->eni_conf);
  ASSERT_OK(cfg);
  EXPECT_EQ(cfg->config.max_pool_size, 20);
  EXPECT_EQ(cfg->config.min_pool_size, 0);
  EXPECT_EQ(cfg->config.region_id, "cn-hangzhou");
  EXPECT_EQ(cfg->config.vswitches.at("cn-hangzhou-i"), (std::vector<std::string>{"vsw-gpu-1", "vsw-gpu-2"}));
  EXPECT_EQ(cfg->config.security_groups, std::vector<std::string>{"sg-gpu"});

  // A label naming a ConfigMap that does not exist stops the daemon with a
  // reason instead of running it on the base configuration.
  auto relabelled = Kubectl({"label", "--overwrite", "node", "node-1", "terway-config=pool-missing"});
  ASSERT_EQ(relabelled.code, 0) << relabelled.out;
  auto missing = k8s::LoadNodeEniConf(*client_, "node-1");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("ConfigMap kube-system/pool-missing"), std::string::npos)
      << missing.error().ToString();
}

// The ConfigMap shipped in deploy/, applied with kubectl, is what a node
// without an override resolves to, and src/ipam accepts it.
TEST_F(K8sWritersTest, ShippedConfigMapResolvesForANode) {
  Apply("node.yaml", kNodeYaml);
  auto applied = Kubectl({"apply", "-f", terway::testing::SourceDir() + "/deploy/configmap.yaml"});
  ASSERT_EQ(applied.code, 0) << applied.out;
  auto conf = k8s::LoadNodeEniConf(*client_, "node-1");
  ASSERT_OK(conf);
  auto cfg = config::ParseEniConfig(conf->eni_conf);
  ASSERT_OK(cfg);
  EXPECT_TRUE(cfg->warnings.empty());
  EXPECT_EQ(cfg->config.credential_source, config::CredentialSource::kRamRole);
}

TEST_F(K8sWritersTest, NodeReportsAreWhatKubectlReadsBack) {
  Apply("node.yaml", kNodeYaml);
  // Someone else's annotation must survive ours.
  auto annotated = Kubectl({"annotate", "node", "node-1", "owner=ops"});
  ASSERT_EQ(annotated.code, 0) << annotated.out;

  k8s::NodeReporter reporter(*client_, "node-1");
  ASSERT_OK(reporter.SetMaxAvailableIp(44));
  ASSERT_OK(reporter.SetEniCapacity(3));
  ASSERT_OK(reporter.SetSufficientIp(false, "vSwitch vsw-1 has no free IPs"));

  Json node = Get({"node", "node-1"});
  EXPECT_EQ(node["metadata"]["annotations"]["k8s.aliyun.com/max-available-ip"], "44");
  EXPECT_EQ(node["metadata"]["annotations"]["owner"], "ops");
  EXPECT_EQ(node["status"]["capacity"]["aliyun/eni"], "3");
  EXPECT_EQ(node["status"]["allocatable"]["aliyun/eni"], "3");
  EXPECT_EQ(node["status"]["capacity"]["pods"], "110");
  ASSERT_EQ(node["status"]["conditions"].size(), 2u) << node["status"].dump();
  EXPECT_EQ(node["status"]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(node["status"]["conditions"][0]["reason"], "KubeletReady");
  Json c = node["status"]["conditions"][1];
  EXPECT_EQ(c["type"], "SufficientIP");
  EXPECT_EQ(c["status"], "False");
  EXPECT_EQ(c["reason"], "InsufficientIP");
  EXPECT_EQ(c["message"], "vSwitch vsw-1 has no free IPs");

  // Someone moves the transition time back (as if set long ago); a refresh
  // with the same status keeps it, a flip replaces it.
  auto patched = Kubectl({"patch", "node", "node-1", "--subresource=status", "--type=strategic", "-p",
                          R"({"status":{"conditions":[{"type":"SufficientIP","lastTransitionTime":"2020-01-01T00:00:00Z"}]}})"});
  ASSERT_EQ(patched.code, 0) << patched.out;
  ASSERT_OK(reporter.SetSufficientIp(false, "still no free IPs"));
  c = Get({"node", "node-1"})["status"]["conditions"][1];
  EXPECT_EQ(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
  EXPECT_EQ(c["message"], "still no free IPs");
  ASSERT_OK(reporter.SetSufficientIp(true, "12 IPs available"));
  c = Get({"node", "node-1"})["status"]["conditions"][1];
  EXPECT_EQ(c["status"], "True");
  EXPECT_EQ(c["reason"], "SufficientIP");
  EXPECT_NE(c["lastTransitionTime"], "2020-01-01T00:00:00Z");

  // What an operator sees: the condition and terwayd's node event in
  // kubectl describe (which finds node events by involvedObject uid).
  Json n = Get({"node", "node-1"});
  k8s::EventRecorder recorder(*client_, "node-1");
  ASSERT_OK(recorder.Record({"Node", "", "node-1", n["metadata"]["uid"], "v1"}, k8s::EventType::kWarning,
                            "InsufficientIP", "vSwitch vsw-1 has no free IPs"));
  auto described = Kubectl({"describe", "node", "node-1"});
  ASSERT_EQ(described.code, 0) << described.out;
  EXPECT_NE(described.out.find("SufficientIP"), std::string::npos) << described.out;
  EXPECT_NE(described.out.find("aliyun/eni"), std::string::npos) << described.out;
  EXPECT_NE(described.out.find("Warning  InsufficientIP"), std::string::npos) << described.out;
}

TEST_F(K8sWritersTest, PodIpsAnnotationAndEvents) {
  Apply("pod.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox}]
)");
  ASSERT_OK(k8s::SetPodIps(*client_, "default", "web", {"192.168.0.10"}));
  auto ips = Kubectl({"get", "pod", "web", "-o", R"(jsonpath={.metadata.annotations.k8s\.aliyun\.com/pod-ips})"});
  ASSERT_EQ(ips.code, 0) << ips.out;
  EXPECT_EQ(ips.out, "192.168.0.10");

  Json pod = Get({"pod", "web"});
  k8s::ObjectReference ref{"Pod", "default", "web", pod["metadata"]["uid"], "v1"};
  k8s::EventRecorder recorder(*client_, "node-1");
  ASSERT_OK(recorder.Record(ref, k8s::EventType::kWarning, "AllocIPFailed", "vSwitch vsw-1 is full"));
  ASSERT_OK(recorder.Record(ref, k8s::EventType::kWarning, "AllocIPFailed", "vSwitch vsw-1 is full"));

  Json events = Get({"events", "-n", "default", "--field-selector", "involvedObject.name=web"});
  ASSERT_EQ(events["items"].size(), 1u) << events.dump();
  Json e = events["items"][0];
  EXPECT_EQ(e["reason"], "AllocIPFailed");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["count"], 2);
  EXPECT_EQ(e["source"]["component"], "terwayd");
  EXPECT_EQ(e["involvedObject"]["uid"], pod["metadata"]["uid"]);
  EXPECT_FALSE(e["firstTimestamp"].get<std::string>().empty());

  ASSERT_OK(k8s::SetPodIps(*client_, "default", "web", {}));
  pod = Get({"pod", "web"});
  EXPECT_FALSE(pod["metadata"].contains("annotations") &&
               pod["metadata"]["annotations"].contains("k8s.aliyun.com/pod-ips"))
      << pod["metadata"].dump();
}

}  // namespace
}  // namespace terway::lab
