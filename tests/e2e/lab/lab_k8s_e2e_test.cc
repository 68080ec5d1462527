// The lab through its Kubernetes API: pods created with kubectl get VPC IPs
// from the node's kubelet and terwayd, terwayd's writes (pod-ips, node
// max-available-ip) land in the API, ignore-by-terway refuses, per-node
// eni_conf overrides apply, and a pod deleted while terwayd was down has its
// IP reclaimed when terwayd comes back.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "e2e/lab/lab_fixture.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

class LabKubernetes : public LabTest {
 protected:
  // One sample of terwayd's metrics on node i, from inside its namespace.
  std::string Metrics(int i) {
    std::string port = ReadFile(State()["nodes"][i]["dir"].get<std::string>() + "/metrics.port");
    while (!port.empty() && port.back() == '\n') port.pop_back();
    return RunCommand({"/usr/bin/curl", "-sf", "http://127.0.0.1:" + port + "/metrics"}, NodeNetns(i), 10s)
        .output;
  }
  static bool HasSample(const std::string& metrics, const std::string& sample) {
    return metrics.find("\n" + sample + "\n") != std::string::npos;
  }
};

TEST_F(LabKubernetes, KubectlPodGetsVpcIpAndAnnotationAndTalksToAnotherPod) {
  Up(2);
  // The node reports its pod capacity as the instance type allows it
  // (lab.json's max_pods comes from terway-cli maxpods / DescribeInstanceTypes).
  const int max_pods = State()["nodes"][0]["max_pods"];
  ASSERT_GT(max_pods, 0);
  std::string max_ip;
  EXPECT_TRUE(WaitFor(
      [&] {
        max_ip = KubectlGet("node", "node1", "{.metadata.annotations.k8s\\.aliyun\\.com/max-available-ip}");
        return !max_ip.empty();
      },
      30s))
      << "node1 never got k8s.aliyun.com/max-available-ip";
  EXPECT_EQ(max_ip, std::to_string(max_pods));

  const std::string manifest = dir_.File("web.yaml");
  ASSERT_TRUE(WriteFile(manifest, R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  labels:
    app: web
spec:
  nodeName: node1
  containers:
  - name: web
    image: busybox
)").ok());
  auto applied = Kubectl({"apply", "-f", manifest});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  std::string ip;
  ASSERT_TRUE(WaitFor(
      [&] {
        ip = KubectlGet("pod", "web", "{.status.podIP}");
        return !ip.empty();
      },
      150s))
      << "pod web never got status.podIP; kubelet log:\n"
      << ReadFile(lab_dir_ + "/control-plane.log");
  EXPECT_EQ(KubectlGet("pod", "web", "{.status.phase}"), "Running");
  EXPECT_EQ(ip.rfind("198.18.0.", 0), 0u) << ip << " is not in the lab's vSwitch 198.18.0.0/24";
  std::string annotated;
  EXPECT_TRUE(WaitFor(
      [&] {
        annotated = KubectlGet("pod", "web", "{.metadata.annotations.k8s\\.aliyun\\.com/pod-ips}");
        return !annotated.empty();
      },
      30s));
  EXPECT_EQ(annotated, ip);

  // A pod on the other node reaches it through the VPC.
  std::string peer = AddPod("default/peer", "node2");
  ASSERT_FALSE(peer.empty());
  auto ping = Exec("default/peer", {"ping", "-c", "1", "-W", "5", ip});
  EXPECT_EQ(ping.exit_code, 0) << ping.output;

  // Labelled ignore-by-terway: refused with the reason; the object is
  // removed by `pod add` and no namespace is left behind.
  auto ignored = Lab({"pod", "add", "default/ignored", "--node", "node1", "--labels",
                      "k8s.aliyun.com/ignore-by-terway=true"});
  EXPECT_NE(ignored.exit_code, 0);
  EXPECT_NE(ignored.output.find("ignore-by-terway=true"), std::string::npos) << ignored.output;
  EXPECT_EQ(PodNetns("default/ignored"), "");
  auto events = Kubectl({"get", "events", "-n", "default", "-o",
                         "jsonpath={range .items[*]}{.involvedObject.name}:{.reason}{\"\\n\"}{end}"});
  EXPECT_NE(events.output.find("ignored:FailedCreatePodSandBox"), std::string::npos) << events.output;

  auto del = Kubectl({"delete", "pod", "web"});
  EXPECT_EQ(del.exit_code, 0) << del.output;
  EXPECT_TRUE(WaitFor([&] { return PodNetns("default/web").empty(); }, 60s))
      << "the kubelet did not remove pod web's sandbox";
}

TEST_F(LabKubernetes, NodeOverrideAppliesAndPodDeletedWhileTerwaydDownIsReclaimed) {
  Up(1);
  // Per-node eni_conf: the node's terway-config label names an override.
  auto cm = Kubectl({"create", "configmap", "-n", "kube-system", "big-pool",
                     "--from-literal=eni_conf={\"min_pool_size\":3,\"max_pool_size\":8}"});
  ASSERT_EQ(cm.exit_code, 0) << cm.output;
  auto label = Kubectl({"label", "node", "node1", "terway-config=big-pool"});
  ASSERT_EQ(label.exit_code, 0) << label.output;

  std::string ip = AddPod("default/gone", "node1");
  ASSERT_FALSE(ip.empty());
  EXPECT_TRUE(WaitFor([&] { return HasSample(Metrics(0), "terway_pool_ips{state=\"in_use\"} 1"); }, 30s))
      << Metrics(0);

  // terwayd crashes; the pod is deleted meanwhile, so its DEL never reaches
  // terwayd (the kubelet removes the sandbox without it).
  auto killed = Lab({"terwayd", "kill", "node1"});
  ASSERT_EQ(killed.exit_code, 0) << killed.output;
  auto del = Kubectl({"delete", "pod", "gone"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  ASSERT_TRUE(WaitFor([&] { return PodNetns("default/gone").empty(); }, 60s));

  // Back up: the override is in force and the IP is no longer in use.
  auto started = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(started.exit_code, 0) << started.output;
  std::string m;
  EXPECT_TRUE(WaitFor(
      [&] {
        m = Metrics(0);
        return HasSample(m, "terway_pool_ips{state=\"in_use\"} 0");
      },
      60s))
      << "IP " << ip << " of deleted pod default/gone not reclaimed:\n"
      << m;
  EXPECT_TRUE(HasSample(m, "terway_pool_config{setting=\"max_pool_size\"} 8")) << m;
  EXPECT_TRUE(HasSample(m, "terway_pool_config{setting=\"min_pool_size\"} 3")) << m;
  const std::string log = ReadFile(State()["nodes"][0]["log"].get<std::string>());
  EXPECT_NE(log.find("eni_conf from ConfigMap kube-system/eni-config + kube-system/big-pool"), std::string::npos)
      << log;
}

}  // namespace
}  // namespace terway::testing
