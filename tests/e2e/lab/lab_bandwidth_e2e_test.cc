// Per-pod bandwidth on terway-lab with real traffic: pods created with
// kubectl carry kubernetes.io/ingress-bandwidth and egress-bandwidth (the
// lab's runtime turns them into runtimeConfig.bandwidth as containerd does)
// or Terway's legacy k8s.aliyun.com annotations (bytes per second, read by
// terwayd itself); iperf3 between pods on two nodes lands within 10% of each
// limit; an unlimited pod runs at full speed; changing the annotations on the
// running pod changes the limits, removing them removes the shaping; a
// malformed legacy annotation refuses the pod naming it; after the pods go,
// no IFB or qdisc of theirs is left on the node.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "e2e/lab/lab_fixture.h"
#include "root/qos/iperf_meter.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kPort = 5201;

class LabBandwidth : public LabTest {
 protected:
  void TearDown() override {
    server_.Stop();  // it runs inside a pod's namespace
    LabTest::TearDown();
  }

  static std::string PodYaml(const std::string& name, const std::string& node,
                             const std::map<std::string, std::string>& annotations) {
    std::string a;
    for (const auto& [k, v] : annotations) a += fmt::format("    {}: \"{}\"\n", k, v);
    return fmt::format("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {}\n  namespace: default\n{}spec:\n"
                       "  nodeName: {}\n  containers:\n  - name: c\n    image: busybox\n",
                       name, a.empty() ? "" : "  annotations:\n" + a, node);
  }

  std::string WaitRunning(const std::string& name) {
    std::string ip;
    bool ok = WaitFor(
        [&] {
          ip = KubectlGet("pod", name, "{.status.podIP}");
          return !ip.empty() && !PodNetns("default/" + name).empty();
        },
        120s);
    EXPECT_TRUE(ok) << "pod " << name << " never ran: " << KubectlGet("pod", name, "{.status.message}");
    return ip;
  }

  // Median Mbit/s into (reverse: the server sends) or out of a client pod.
  double Mbit(const std::string& client, bool into_client) {
    auto r = IperfMedian(PodNetns("default/" + client), server_ip_, server_, /*reverse=*/into_client);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r / 1e6 : 0;
  }

  static void ExpectWithin10Percent(double mbit, double limit, const std::string& what) {
    EXPECT_GE(mbit, limit * 0.9) << what << ": " << mbit << " Mbit/s";
    EXPECT_LE(mbit, limit * 1.1) << what << ": " << mbit << " Mbit/s";
  }

  // terwayd on node2 logged the pod's new limit (its KubeNode saw the
  // annotation change and re-shaped the pod).
  void WaitForNewLimit(const std::string& pod, const std::string& what, size_t* seen) {
    const std::string log_path = State()["nodes"][1]["log"].get<std::string>();
    const std::string line = "bandwidth of pod default/" + pod + " is now " + what;
    bool ok = WaitFor(
        [&] {
          std::string log = ReadFile(log_path);
          size_t at = log.find(line, *seen);
          if (at == std::string::npos) return false;
          *seen = at + line.size();
          return true;
        },
        60s);
    EXPECT_TRUE(ok) << "terwayd never logged \"" << line << "\"";
  }

  std::string Node2(const std::string& cmd) { return Capture("ip netns exec " + NodeNetns(1) + " " + cmd); }

  IperfServer server_;
  std::string server_ip_;
};

TEST_F(LabBandwidth, LimitsFollowTheAnnotationsOfRunningPods) {
  Up(2);
  Apply("server", PodYaml("server", "node1", {}));
  Apply("slow", PodYaml("slow", "node2",
                        {{"kubernetes.io/ingress-bandwidth", "10M"}, {"kubernetes.io/egress-bandwidth", "50M"}}));
  Apply("fast", PodYaml("fast", "node2", {}));
  // Terway's legacy form: 1m = 1 MiB/s = 8,388,608 bit/s into the pod.
  Apply("legacy", PodYaml("legacy", "node2", {{"k8s.aliyun.com/ingress-bandwidth", "1m"}}));
  server_ip_ = WaitRunning("server");
  ASSERT_FALSE(server_ip_.empty());
  for (const char* p : {"slow", "fast", "legacy"}) ASSERT_FALSE(WaitRunning(p).empty());
  Status st = server_.Start(PodNetns("default/server"), kPort);
  ASSERT_TRUE(st.ok()) << st.error().ToString();

  ExpectWithin10Percent(Mbit("slow", true), 10, "10M into slow");
  ExpectWithin10Percent(Mbit("slow", false), 50, "50M out of slow");
  ExpectWithin10Percent(Mbit("legacy", true), 8.388608, "legacy 1m (MiB/s) into legacy");
  const double full = Mbit("fast", true);
  EXPECT_GT(full, 500) << "an unlimited pod should run far above any limit here";

  // Swap the limits on the running pod.
  size_t seen = 0;
  auto annotate = Kubectl({"annotate", "--overwrite", "pod", "slow", "kubernetes.io/ingress-bandwidth=50M",
                           "kubernetes.io/egress-bandwidth=10M"});
  ASSERT_EQ(annotate.exit_code, 0) << annotate.output;
  WaitForNewLimit("slow", "ingress 50000000 bit/s, egress 10000000 bit/s", &seen);
  ExpectWithin10Percent(Mbit("slow", true), 50, "50M into slow after the update");
  ExpectWithin10Percent(Mbit("slow", false), 10, "10M out of slow after the update");

  // Remove them: full speed again, and nothing of the shaping left.
  auto remove = Kubectl({"annotate", "pod", "slow", "kubernetes.io/ingress-bandwidth-",
                         "kubernetes.io/egress-bandwidth-"});
  ASSERT_EQ(remove.exit_code, 0) << remove.output;
  WaitForNewLimit("slow", "unlimited", &seen);
  EXPECT_GT(Mbit("slow", true), 500) << "still shaped into slow after the annotations went";
  EXPECT_GT(Mbit("slow", false), 500) << "still shaped out of slow after the annotations went";

  // A typo in Terway's legacy annotation refuses the pod, naming it.
  Apply("typo", PodYaml("typo", "node2", {{"k8s.aliyun.com/egress-bandwidth", "fast"}}));
  std::string message;
  EXPECT_TRUE(WaitFor(
      [&] {
        message = KubectlGet("pod", "typo", "{.status.message}");
        return !message.empty();
      },
      60s));
  EXPECT_NE(message.find("k8s.aliyun.com/egress-bandwidth"), std::string::npos) << message;
  EXPECT_EQ(KubectlGet("pod", "typo", "{.status.phase}"), "Failed");

  // The pods go; their IFBs and qdiscs go with them.
  server_.Stop();
  for (const char* p : {"slow", "fast", "legacy", "typo", "server"}) {
    auto del = Kubectl({"delete", "pod", p, "--wait=false"});
    EXPECT_EQ(del.exit_code, 0) << del.output;
  }
  for (const char* p : {"slow", "fast", "legacy", "server"}) {
    EXPECT_TRUE(WaitFor([&] { return PodNetns(std::string("default/") + p).empty(); }, 60s)) << p;
  }
  EXPECT_EQ(Node2("ip -br link show type ifb"), "");
  EXPECT_EQ(Node2("tc qdisc show | grep -E 'tbf|clsact' || true"), "");
}

}  // namespace
}  // namespace terway::testing
