// Drives the real `terway-lab` binary: one lab per test, in a temp lab
// directory with a world name unique to the run; TearDown runs `down` and
// checks that nothing of the world is left.
#pragma once

#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_clients.h"
#include "e2e/harness/process.h"
#include "test_util.h"

namespace terway::testing {

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, veths, nftables)";
    static int labs = 0;
    world_ = fmt::format("l{:x}{:x}", getpid() & 0xffff, labs++ & 0xf);
    lab_dir_ = dir_.File("lab");
  }

  void TearDown() override {
    if (world_.empty() || geteuid() != 0) return;
    auto r = Lab({"down"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(WorldNetns(), "") << "down left namespaces of world " << world_;
  }

  CommandResult Lab(std::vector<std::string> args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(240)) {
    std::vector<std::string> argv = {BinaryPath("terway-lab"), "--lab", lab_dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", timeout);
  }

  // `up` with the test's world name; fails the test when it fails.
  void Up(int nodes, const std::string& types = "", int vpc_hosts = 1) {
    std::vector<std::string> args = {"up", "--nodes", std::to_string(nodes), "--name", world_,
                                     "--vpc-hosts", std::to_string(vpc_hosts)};
    if (!types.empty()) {
      args.push_back("--instance-type");
      args.push_back(types);
    }
    if (!virtual_type_.empty()) {
      args.push_back("--eniip-virtual-type");
      args.push_back(virtual_type_);
    }
    auto r = Lab(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  // The pod's IP; "" (and a test failure) when ADD failed.
  std::string AddPod(const std::string& pod, const std::string& node,
                     const std::string& version = "") {
    std::vector<std::string> args = {"pod", "add", pod, "--node", node};
    if (!version.empty()) {
      args.push_back("--cni-version");
      args.push_back(version);
    }
    auto r = Lab(args);
    EXPECT_EQ(r.exit_code, 0) << "pod add " << pod << ": " << r.output;
    if (r.exit_code != 0) return "";
    std::string ip = r.output;
    while (!ip.empty() && (ip.back() == '\n' || ip.back() == ' ')) ip.pop_back();
    return ip.substr(ip.rfind('\n') + 1);
  }

  CommandResult Exec(const std::string& pod, std::vector<std::string> cmd,
                     std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    std::vector<std::string> args = {"exec", pod, "--"};
    args.insert(args.end(), cmd.begin(), cmd.end());
    return Lab(args, timeout);
  }

  // kubectl against the lab's API stand-in; skips the test when none is
  // installed (make deps installs Debian's kubernetes-client).
  CommandResult Kubectl(std::vector<std::string> args, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::string kubectl;
    if (const char* env = std::getenv("KUBECTL")) kubectl = env;
    for (const char* p : {"/usr/bin/kubectl", "/usr/local/bin/kubectl"}) {
      if (kubectl.empty() && access(p, X_OK) == 0) kubectl = p;
    }
    if (kubectl.empty()) {
      ADD_FAILURE() << "kubectl not installed (looked in $KUBECTL, /usr/bin, /usr/local/bin); run make deps";
      return {};
    }
    std::vector<std::string> argv = {kubectl, "--kubeconfig", lab_dir_ + "/kubeconfig", "--cache-dir",
                                     dir_.File("kubectl-cache"), "--request-timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", timeout);
  }
  // `kubectl get KIND NAME -o jsonpath=PATH`, "" when it fails.
  std::string KubectlGet(const std::string& what, const std::string& name, const std::string& path,
                         const std::string& ns = "default") {
    std::vector<std::string> args = {"get", what, name, "-o", "jsonpath=" + path};
    if (what != "node" && what != "namespace") args.insert(args.begin(), {"-n", ns});
    auto r = Kubectl(args);
    return r.exit_code == 0 ? r.output : "";
  }
  // kubectl apply of a manifest text.
  void Apply(const std::string& name, const std::string& manifest) {
    const std::string file = dir_.File(name + ".yaml");
    ASSERT_TRUE(WriteFile(file, manifest).ok());
    auto r = Kubectl({"apply", "-f", file});
    ASSERT_EQ(r.exit_code, 0) << "kubectl apply " << name << ":\n" << manifest << "\n" << r.output;
  }

  // A Pod bound to `node` (the lab's kubelet runs it), labelled pod=<name>
  // plus `extra_labels`, its container ports named as the upstream netpol
  // suite names them (serve-<port>-<proto>).
  static std::string PodYaml(const std::string& ns, const std::string& name, const std::string& node,
                             const std::map<std::string, std::string>& extra_labels = {}) {
    // Quoted: YAML 1.1 (kubectl's parser) reads a bare y or n as a boolean.
    std::string labels = "    pod: \"" + name + "\"\n";
    for (const auto& [k, v] : extra_labels) labels += "    " + k + ": \"" + v + "\"\n";
    return fmt::format(R"(apiVersion: v1
kind: Pod
metadata:
  name: "{1}"
  namespace: "{0}"
  labels:
{3}spec:
  nodeName: {2}
  containers:
  - name: server
    image: busybox
    ports:
    - {{name: serve-80-tcp, containerPort: 80, protocol: TCP}}
    - {{name: serve-81-tcp, containerPort: 81, protocol: TCP}}
    - {{name: serve-80-udp, containerPort: 80, protocol: UDP}}
    - {{name: serve-80-sctp, containerPort: 80, protocol: SCTP}}
)",
                       ns, name, node, labels);
  }

  // The pod's IP (status.podIP) once its kubelet has set it up (bounded
  // wait); "" and a test failure when it never does.
  std::string WaitPodIp(const std::string& ns, const std::string& name) {
    std::string ip;
    bool ok = WaitFor(
        [&] {
          ip = KubectlGet("pod", name, "{.status.podIP}", ns);
          return !ip.empty() && !PodNetns(ns + "/" + name).empty();
        },
        std::chrono::seconds(120));
    EXPECT_TRUE(ok) << "pod " << ns << "/" << name << " never got an IP; " << ReadFile(lab_dir_ + "/control-plane.log");
    return ip;
  }

  // With an eBPF virtual type: every node that has pods serves them with the
  // eBPF datapath (its pinned endpoint map holds an entry per pod), so a
  // suite run in this mode cannot pass on veth by a silent fallback.
  void ExpectPodsOnTheEbpfDatapath() {
    if (virtual_type_.empty() || virtual_type_ == "veth") return;
    nlohmann::json st = State();
    for (const auto& n : st["nodes"]) {
      int pods = 0;
      for (const auto& p : st["pods"]) pods += p["node"] == n["name"] ? 1 : 0;
      if (pods == 0) continue;
      auto r = RunCommand({"/usr/sbin/bpftool", "-j", "map", "dump", "pinned",
                           n["bpffs"].get<std::string>() + "/terway/terway_dp_ep"});
      auto j = nlohmann::json::parse(r.output, nullptr, false);
      EXPECT_TRUE(r.exit_code == 0 && j.is_array() && static_cast<int>(j.size()) == pods)
          << n["name"] << " has " << pods << " pods, its eBPF endpoint map: " << r.output;
    }
  }

  nlohmann::json State() {
    return nlohmann::json::parse(ReadFile(lab_dir_ + "/lab.json"), nullptr, false);
  }

  // The lab's cloud through its signed OpenAPI with the lab's access key,
  // as a user would ask Alibaba Cloud; null (a test failure recorded) when
  // the clients cannot be made.
  std::unique_ptr<cloud::CloudClients> LabCloudClients() {
    nlohmann::json st = State();
    cloud::CloudOptions o;
    o.region_id = "cn-hangzhou";
    o.ecs_endpoint = fmt::format("http://127.0.0.1:{}", st["vpcsim"]["port"].get<int>());
    o.vpc_endpoint = o.ecs_endpoint;
    o.credential_kind = cloud::CredentialKind::kStatic;
    o.access_key = st["access_key"];
    o.access_secret = st["access_secret"];
    auto clients = cloud::CloudClients::Create(o);
    EXPECT_TRUE(clients.ok()) << clients.error().ToString();
    return clients.ok() ? std::move(*clients) : nullptr;
  }

  // The ENIs of an instance as the cloud's signed OpenAPI reports them
  // (DescribeNetworkInterfaces with the lab's access key, as a user would
  // ask Alibaba Cloud).
  std::vector<cloud::NetworkInterface> DescribeEnis(const std::string& instance_id) {
    auto clients = LabCloudClients();
    if (!clients) return {};
    cloud::DescribeEnisFilter f;
    f.instance_id = instance_id;
    auto enis = clients->ecs()->DescribeNetworkInterfaces(f);
    EXPECT_TRUE(enis.ok()) << enis.error().ToString();
    return enis.ok() ? *enis : std::vector<cloud::NetworkInterface>{};
  }

  // vpcsim's view of the world (instances, ENIs, their IPs).
  nlohmann::json CloudView() {
    auto r = RunCommand({BinaryPath("vpcsim"), "describe", "--json", "--state", lab_dir_ + "/vpcsim"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output, nullptr, false);
  }

  // Every node's policy table (nft list table inet terway, its first 80
  // lines), for a failure's message.
  std::string NodePolicyTables() {
    std::string out;
    nlohmann::json state = State();
    for (const auto& n : state["nodes"]) {
      out += fmt::format("--- {} nft:\n{}", n["name"].get<std::string>(),
                         Capture("ip netns exec " + n["netns"].get<std::string>() +
                                 " nft list table inet terway 2>&1 | head -80"));
    }
    return out;
  }

  std::string NodeNetns(int i) { return State()["nodes"][i]["netns"]; }
  // terwayd's metrics of node i (scraped inside the node's namespace, where
  // it listens); name{labels} -> value.
  std::map<std::string, double> NodeMetrics(int i) {
    std::map<std::string, double> out;
    std::string port = ReadFile(State()["nodes"][i]["dir"].get<std::string>() + "/metrics.port");
    while (!port.empty() && (port.back() == '\n' || port.back() == ' ')) port.pop_back();
    auto r = RunCommand({"/usr/bin/curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + port + "/metrics"},
                        NodeNetns(i));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    for (const auto& line : Split(r.output)) {
      if (line.empty() || line[0] == '#') continue;
      auto sp = line.rfind(' ');
      if (sp == std::string::npos) continue;
      out[line.substr(0, sp)] = std::atof(line.substr(sp + 1).c_str());
    }
    return out;
  }
  std::string HostNetns() { return State()["hosts"][0]["netns"]; }
  std::string HostIp() { return State()["hosts"][0]["ip"]; }
  std::string PodNetns(const std::string& key) {
    nlohmann::json state = State();  // kept: a range over a temporary's member would dangle
    for (const auto& p : state["pods"]) {
      if (p["namespace"].get<std::string>() + "/" + p["name"].get<std::string>() == key) {
        return p["netns"];
      }
    }
    return "";
  }

  // Namespaces whose name starts with "<world>-", space separated.
  std::string WorldNetns() {
    std::string out;
    for (const auto& line : Split(Capture("ip netns list"))) {
      if (line.rfind(world_ + "-", 0) == 0) out += line.substr(0, line.find(' ')) + " ";
    }
    return out;
  }

  static std::vector<std::string> Split(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < s.size()) {
      size_t nl = s.find('\n', start);
      out.push_back(s.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return out;
  }

  TempDir dir_;
  // `up --eniip-virtual-type` of Up(); "" leaves it out (veth). Suites that
  // must hold on the eBPF datapath too run with "datapathv2".
  std::string virtual_type_;
  std::string world_;
  std::string lab_dir_;
};

}  // namespace terway::testing
