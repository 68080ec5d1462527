// kubectl round trips against the lab's API stand-in (in-process on
// 127.0.0.1:0), through a generated kubeconfig. Skips when kubectl is absent.
#include "kubectl_fixture.h"

#include <thread>

namespace terway::lab {
namespace {

using namespace std::chrono_literals;

const char* kPodYaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: c
    image: busybox
    ports: [{name: http, containerPort: 80}]
)";

TEST_F(KubectlTest, GetDiscoversAndListsNamespaces) {
  auto r = Kubectl({"get", "namespaces", "-o", "name"});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("namespace/default"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("namespace/kube-system"), std::string::npos) << r.out;
  auto v = Kubectl({"version", "-o", "json"});
  ASSERT_EQ(v.code, 0) << v.out;
  EXPECT_NE(v.out.find("terway-lab"), std::string::npos) << v.out;
}

TEST_F(KubectlTest, CreateApplyLabelAnnotateDelete) {
  std::string pod = dir_.Write("pod.yaml", kPodYaml);
  auto created = Kubectl({"create", "-f", pod});
  ASSERT_EQ(created.code, 0) << created.out;
  EXPECT_NE(created.out.find("pod/web created"), std::string::npos) << created.out;
  auto again = Kubectl({"create", "-f", pod});
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.out.find("AlreadyExists"), std::string::npos) << again.out;

  auto json = Kubectl({"get", "pod", "web", "-o", "json"});
  ASSERT_EQ(json.code, 0) << json.out;
  auto parsed = k8s::ParsePod(Json::parse(json.out, nullptr, false));
  ASSERT_TRUE(parsed.ok()) << json.out;
  EXPECT_EQ(parsed->node_name, "node-1");
  EXPECT_EQ(parsed->containers.at(0).ports.at(0).name, "http");

  // apply of a changed manifest patches the live object.
  std::string changed = kPodYaml;
  changed.replace(changed.find("{app: web}"), 10, "{app: web, tier: fe}");
  auto applied = Kubectl({"apply", "-f", dir_.Write("pod2.yaml", changed)});
  ASSERT_EQ(applied.code, 0) << applied.out;
  EXPECT_EQ(Object("pods", "default", "web")["metadata"]["labels"]["tier"], "fe");
  auto applied_again = Kubectl({"apply", "-f", dir_.path() + "/pod2.yaml"});
  ASSERT_EQ(applied_again.code, 0) << applied_again.out;
  EXPECT_NE(applied_again.out.find("unchanged"), std::string::npos) << applied_again.out;

  ASSERT_EQ(Kubectl({"label", "pod", "web", "team=net"}).code, 0);
  ASSERT_EQ(Kubectl({"label", "pod", "web", "tier=be", "--overwrite"}).code, 0);
  ASSERT_EQ(Kubectl({"annotate", "pod", "web", "k8s.aliyun.com/pod-ips=198.18.0.9"}).code, 0);
  Json live = Object("pods", "default", "web");
  EXPECT_EQ(live["metadata"]["labels"]["team"], "net");
  EXPECT_EQ(live["metadata"]["labels"]["tier"], "be");
  EXPECT_EQ(live["metadata"]["annotations"]["k8s.aliyun.com/pod-ips"], "198.18.0.9");
  ASSERT_EQ(Kubectl({"label", "pod", "web", "team-"}).code, 0);
  EXPECT_FALSE(Object("pods", "default", "web")["metadata"]["labels"].contains("team"));

  auto selected = Kubectl({"get", "pods", "-l", "tier in (be)", "-o", "name"});
  ASSERT_EQ(selected.code, 0) << selected.out;
  EXPECT_EQ(selected.out, "pod/web\n");
  auto none = Kubectl({"get", "pods", "-l", "tier=fe", "-o", "name"});
  EXPECT_EQ(none.out.find("pod/web"), std::string::npos) << none.out;

  auto deleted = Kubectl({"delete", "-f", pod});
  ASSERT_EQ(deleted.code, 0) << deleted.out;
  EXPECT_TRUE(Object("pods", "default", "web").is_null());
  auto missing = Kubectl({"get", "pod", "web"});
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("pods \"web\" not found"), std::string::npos) << missing.out;
}

TEST_F(KubectlTest, NetworkPolicyAndConfigMapRoundTrip) {
  std::string np = dir_.Write("np.yaml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-http, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a, b]}]}
      podSelector: {}
    - ipBlock: {cidr: 198.18.0.0/15, except: [198.18.1.0/24]}
    ports: [{port: http, protocol: TCP}, {port: 8000, endPort: 8080}]
)");
  ASSERT_EQ(Kubectl({"apply", "-f", np}).code, 0);
  auto got = Kubectl({"get", "networkpolicy", "allow-http", "-o", "json"});
  ASSERT_EQ(got.code, 0) << got.out;
  auto parsed = k8s::ParseNetworkPolicy(Json::parse(got.out, nullptr, false));
  ASSERT_TRUE(parsed.ok()) << got.out;
  ASSERT_EQ(parsed->ingress.size(), 1u);
  EXPECT_EQ(parsed->ingress[0].peers.size(), 2u);
  EXPECT_EQ(parsed->ingress[0].ports[1].end_port, 8080);
  auto short_name = Kubectl({"get", "netpol", "-o", "name"});
  EXPECT_EQ(short_name.out, "networkpolicy.networking.k8s.io/allow-http\n");

  std::string cm = dir_.Write("cm.yaml", R"(apiVersion: v1
kind: ConfigMap
metadata: {name: eni-config, namespace: kube-system}
data:
  eni_conf: '{"version": "1"}'
)");
  ASSERT_EQ(Kubectl({"create", "-f", cm}).code, 0);
  auto jsonpath = Kubectl({"get", "cm", "eni-config", "-n", "kube-system", "-o", "jsonpath={.data.eni_conf}"});
  ASSERT_EQ(jsonpath.code, 0) << jsonpath.out;
  EXPECT_EQ(jsonpath.out, R"({"version": "1"})");
  ASSERT_EQ(Kubectl({"delete", "networkpolicy", "allow-http"}).code, 0);
  EXPECT_TRUE(Object("networkpolicies", "default", "allow-http").is_null());
}

TEST_F(KubectlTest, WatchStreamsChanges) {
  int before = server_->watches_served();
  Child watch(Argv({"get", "pods", "-w", "-o", "name"}), Env());
  // Change things only once kubectl's watch is open, so the output can only
  // come from the watch stream.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (server_->watches_served() == before && std::chrono::steady_clock::now() < deadline) {
    watch.ReadSome(20ms);
  }
  ASSERT_GT(server_->watches_served(), before) << watch.output();
  const ResourceType& pods = *server_->store().Find("", "v1", "pods");
  ASSERT_TRUE(server_->store().Create(pods, "default", Json::parse(R"({"metadata": {"name": "w1"}})")).ok());
  EXPECT_TRUE(watch.WaitForOutput("pod/w1", 20s)) << watch.output();
  ASSERT_TRUE(server_->store().Delete(pods, "default", "w1").ok());
  // The deletion prints the name a second time.
  auto deadline2 = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline2) {
    const std::string& out = watch.output();
    if (out.find("pod/w1") != out.rfind("pod/w1")) break;
    watch.ReadSome(50ms);
  }
  const std::string& out = watch.output();
  EXPECT_NE(out.find("pod/w1"), out.rfind("pod/w1")) << out;
}

TEST_F(KubectlTest, GeneratorsThatSendProtobuf) {
  // kubectl's generators send protobuf bodies for built-in kinds.
  ASSERT_EQ(Kubectl({"create", "namespace", "team-a"}).code, 0);
  EXPECT_EQ(Object("namespaces", "", "team-a")["metadata"]["labels"]["kubernetes.io/metadata.name"], "team-a");
  auto cm = Kubectl({"create", "configmap", "eni-config", "-n", "team-a", "--from-literal=eni_conf={}",
                     "--from-literal=k=v"});
  ASSERT_EQ(cm.code, 0) << cm.out;
  EXPECT_EQ(Object("configmaps", "team-a", "eni-config")["data"], (Json{{"eni_conf", "{}"}, {"k", "v"}}));
  auto run = Kubectl({"run", "nginx", "-n", "team-a", "--image=nginx", "--port=80", "--labels=app=nginx"});
  ASSERT_EQ(run.code, 0) << run.out;
  Json pod = Object("pods", "team-a", "nginx");
  EXPECT_EQ(pod["metadata"]["labels"]["app"], "nginx");
  EXPECT_EQ(pod["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
  // Kinds the lab does not serve are refused with a Kubernetes Status.
  auto secret = Kubectl({"create", "secret", "generic", "s", "--from-literal=a=b"});
  EXPECT_NE(secret.code, 0);
  EXPECT_NE(secret.out.find("could not find the requested resource"), std::string::npos) << secret.out;
}

}  // namespace
}  // namespace terway::lab
