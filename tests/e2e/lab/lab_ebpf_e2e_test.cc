// The eBPF datapath in the lab (issue 14): `up --eniip-virtual-type
// datapathv2` gives every node's conflist that virtual type, so terwayd wires
// its pods with the tc programs (maps pinned in the node's own bpffs under
// the lab directory). Pods talk over TCP and ICMP on one node, across nodes
// and with a VPC host, and the programs' fast-path counters rise; a TCP
// stream and a ping across a SIGKILL of terwayd and its restart lose nothing;
// DEL of every pod leaves no endpoint entry and no pod program; `down`
// leaves no bpf mount and no pin. A bad --eniip-virtual-type starts nothing.
#include <signal.h>
#include <sys/stat.h>

#include <iostream>
#include <map>
#include <regex>

#include "e2e/lab/lab_traffic.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

class LabEbpf : public LabTrafficTest {
 protected:
  void TearDown() override {
    procs_.clear();  // before `down`: they run inside the pods' namespaces
    LabTrafficTest::TearDown();
    if (!lab_dir_.empty()) {
      // No bpffs of the lab is left mounted (and so no pin).
      std::string mounts = ReadFile("/proc/self/mountinfo");
      EXPECT_EQ(mounts.find(lab_dir_), std::string::npos) << "down left a mount under " << lab_dir_ << ":\n"
                                                          << mounts;
      struct stat st {};
      EXPECT_NE(stat(lab_dir_.c_str(), &st), 0) << "down left the lab directory " << lab_dir_;
    }
  }

  void UpEbpf(int nodes, std::vector<std::string> extra = {"--eniip-virtual-type", "datapathv2"}) {
    std::vector<std::string> args = {"up", "--nodes", std::to_string(nodes), "--name", world_, "--vpc-hosts", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Lab(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::string NodeDir(int i) { return State()["nodes"][i]["dir"]; }
  std::string PinDir(int i) { return State()["nodes"][i]["bpffs"].get<std::string>() + "/terway"; }

  double Packets(const std::map<std::string, double>& m, const std::string& path) {
    auto it = m.find("terway_ebpf_datapath_packets_total{path=\"" + path + "\"}");
    return it == m.end() ? -1 : it->second;
  }

  // A TCP server in the pod answering each client with the client's address.
  void StartWhoAmI(const std::string& name, const std::string& netns) {
    ProcessOptions po;
    po.argv = {"/usr/bin/socat", "TCP-LISTEN:7001,reuseaddr,fork", "SYSTEM:echo $SOCAT_PEERADDR"};
    po.netns = netns;
    po.log_path = dir_.File(name + "-whoami.log");
    auto p = Process::Start(po);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    procs_.push_back(std::move(p).value());
  }

  // TCP from the namespace to ip answers `me` (retried while the server
  // comes up, bounded), and a ping gets its replies.
  void ExpectTcpAndPing(const std::string& what, const std::string& from_netns, const std::string& me,
                        const std::string& ip) {
    std::string last;
    bool ok = WaitFor(
        [&] {
          auto r = RunCommand({"/usr/bin/socat", "-T", "3", "-t", "1", "-", "TCP:" + ip + ":7001"}, from_netns, 15s,
                              "who\n");
          last = r.output;
          return ("\n" + r.output + "\n").find("\n" + me + "\n") != std::string::npos;
        },
        30s, 200ms);
    EXPECT_TRUE(ok) << what << ": tcp " << me << " -> " << ip << ": last answer '" << last << "'";
    auto ping = RunCommand({"/usr/bin/ping", "-c", "3", "-i", "0.2", "-W", "2", ip}, from_netns, 20s);
    EXPECT_EQ(ping.exit_code, 0) << what << ": ping " << me << " -> " << ip << ":\n" << ping.output;
  }

  // tc attachments of bpf programs in the node's namespace, as
  // "device:kind" (bpftool net show, JSON).
  std::vector<std::string> TcPrograms(int i) {
    auto r = RunCommand({"/usr/sbin/bpftool", "-j", "net", "show"}, NodeNetns(i));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> out;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (!j.is_array()) {
      ADD_FAILURE() << "bpftool net show: " << r.output;
      return out;
    }
    for (const auto& ns : j) {
      for (const auto& t : ns.value("tc", nlohmann::json::array())) {
        out.push_back(t.value("devname", "?") + ":" + t.value("kind", "?"));
      }
    }
    return out;
  }

  // Entries of the endpoint map pinned in node i's bpffs.
  int EndpointEntries(int i) {
    auto r = RunCommand({"/usr/sbin/bpftool", "-j", "map", "dump", "pinned", PinDir(i) + "/terway_dp_ep"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    EXPECT_TRUE(j.is_array()) << r.output;
    return j.is_array() ? static_cast<int>(j.size()) : -1;
  }

  std::vector<Process> procs_;
};

TEST_F(LabTest, BadEniipVirtualTypeNamesTheFlagAndStartsNothing) {
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--eniip-virtual-type", "ebpf"},
        std::vector<std::string>{"--node-eniip-virtual-type", "node1=macvlan"},
        std::vector<std::string>{"--node-eniip-virtual-type", "node1"},
        std::vector<std::string>{"--node-eniip-virtual-type", "node9=datapathv2"}}) {
    std::vector<std::string> args = {"up", "--nodes", "2", "--name", world_};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = Lab(args);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(bad[0]), std::string::npos) << r.output;
    if (bad[1] != "node9=datapathv2") {
      EXPECT_NE(r.output.find("veth, IPVlan or datapathv2"), std::string::npos) << r.output;
    }
    struct stat st {};
    EXPECT_NE(stat(lab_dir_.c_str(), &st), 0) << "a refused up created " << lab_dir_;
    EXPECT_EQ(WorldNetns(), "");
  }
}

// Per node: node1 datapathv2, node2 veth; lab.json, status and the conflists
// say so, and the eni-config ConfigMap's 10-terway.conf carries the cluster's.
TEST_F(LabEbpf, PerNodeVirtualTypeReachesConflistStatusAndConfigMap) {
  UpEbpf(2, {"--eniip-virtual-type", "veth", "--node-eniip-virtual-type", "node1=DataPathV2"});
  auto st = State();
  EXPECT_EQ(st["eniip_virtual_type"], "veth");
  EXPECT_EQ(st["nodes"][0]["eniip_virtual_type"], "datapathv2");
  EXPECT_EQ(st["nodes"][1]["eniip_virtual_type"], "veth");
  auto c1 = nlohmann::json::parse(ReadFile(st["nodes"][0]["conflist"].get<std::string>()), nullptr, false);
  auto c2 = nlohmann::json::parse(ReadFile(st["nodes"][1]["conflist"].get<std::string>()), nullptr, false);
  EXPECT_EQ(c1["plugins"][0].value("eniip_virtual_type", ""), "datapathv2") << c1.dump();
  EXPECT_FALSE(c2["plugins"][0].contains("eniip_virtual_type")) << c2.dump();
  auto status = Lab({"status"});
  EXPECT_NE(status.output.find("datapath: eBPF (eniip_virtual_type datapathv2"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("datapath: veth + policy routing"), std::string::npos) << status.output;
  std::string a = AddPod("default/a", "node1");
  std::string c = AddPod("default/c", "node2");
  ASSERT_FALSE(a.empty() || c.empty());
  EXPECT_EQ(EndpointEntries(0), 1) << "node1's eBPF pod has its endpoint entry";
  // node2 (veth) pinned nothing and has no bpffs of the lab's.
  struct stat sb {};
  EXPECT_NE(stat((PinDir(1)).c_str(), &sb), 0) << "a veth node pinned maps";
  StartWhoAmI("c", PodNetns("default/c"));
  StartWhoAmI("a", PodNetns("default/a"));
  ExpectTcpAndPing("eBPF node -> veth node", PodNetns("default/a"), a, c);
  ExpectTcpAndPing("veth node -> eBPF node", PodNetns("default/c"), c, a);
  std::string cm = KubectlGet("configmap", "eni-config", "{.data.10-terway\\.conf}", "kube-system");
  auto conf = nlohmann::json::parse(cm, nullptr, false);
  ASSERT_TRUE(conf.is_object()) << cm;
  EXPECT_EQ(conf.value("type", ""), "terway");
  EXPECT_FALSE(conf.contains("eniip_virtual_type")) << "veth is upstream's default, written by leaving it out";
}

TEST_F(LabEbpf, PodsTalkOnTheFastPathOnOneNodeAcrossNodesAndToAVpcHostAndDelLeavesNothing) {
  UpEbpf(2);
  ASSERT_EQ(State()["nodes"][0]["eniip_virtual_type"], "datapathv2");
  // Policy is enforced (the lab has an API), but no eBPF pod has run yet:
  // no program, no map to be in sync, so no gauge (not a 1 that nothing
  // backs).
  EXPECT_EQ(NodeMetrics(0).count("terway_ebpf_datapath_policy_synced"), 0u);
  std::string a = AddPod("default/a", "node1");
  std::string b = AddPod("default/b", "node1");
  std::string c = AddPod("team/c", "node2");
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  for (int i : {0, 1}) {
    auto m = NodeMetrics(i);
    EXPECT_EQ(m["terway_ebpf_datapath_available"], 1) << "node" << i + 1 << " serves eBPF pods";
    // The load asked the policy controller for a sync, which its worker
    // does right after.
    EXPECT_TRUE(WaitFor([&] { return NodeMetrics(i)["terway_ebpf_datapath_policy_synced"] == 1; }, 10s, 100ms))
        << "node" << i + 1 << "'s policy map never synced";
  }
  EXPECT_EQ(EndpointEntries(0), 2);
  EXPECT_EQ(EndpointEntries(1), 1);
  auto before1 = NodeMetrics(0), before2 = NodeMetrics(1);
  StartWhoAmI("a", PodNetns("default/a"));
  StartWhoAmI("c", PodNetns("team/c"));
  StartWhoAmI("host", HostNetns());
  ExpectTcpAndPing("same node", PodNetns("default/b"), b, a);
  ExpectTcpAndPing("node1 -> node2", PodNetns("default/a"), a, c);
  ExpectTcpAndPing("node2 -> node1", PodNetns("team/c"), c, a);
  ExpectTcpAndPing("pod -> VPC host", PodNetns("default/a"), a, HostIp());
  ExpectTcpAndPing("VPC host -> pod", HostNetns(), HostIp(), c);
  auto after1 = NodeMetrics(0), after2 = NodeMetrics(1);
  // Same node: b -> a is redirected peer to peer; across nodes and to the
  // VPC host, pod -> ENI and ENI -> pod on both nodes.
  EXPECT_GT(Packets(after1, "pod_to_pod"), Packets(before1, "pod_to_pod"));
  for (const char* path : {"pod_to_eni", "eni_to_pod"}) {
    EXPECT_GT(Packets(after1, path), Packets(before1, path)) << "node1 " << path;
    EXPECT_GT(Packets(after2, path), Packets(before2, path)) << "node2 " << path;
  }
  EXPECT_EQ(Packets(after1, "drop_spoof"), 0);
  procs_.clear();

  // DEL of every pod: no endpoint entry and no program on a pod's link
  // remain; the ENIs' programs (ethN) stay for the next pod. (Before it,
  // the pods' host veths do carry programs: the check below can fail.)
  int pod_links = 0;
  for (const auto& t : TcPrograms(0)) pod_links += t.rfind("eth", 0) == 0 ? 0 : 1;
  EXPECT_GE(pod_links, 2) << "node1's two pods' host veths carry no program";
  for (const char* p : {"default/a", "default/b", "team/c"}) {
    auto r = Lab({"pod", "del", p});
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
  for (int i : {0, 1}) {
    EXPECT_EQ(EndpointEntries(i), 0) << "node" << i + 1;
    for (const auto& t : TcPrograms(i)) {
      EXPECT_EQ(t.rfind("eth", 0), 0u) << "node" << i + 1 << ": a program is left on " << t;
    }
  }
}

// Programs and maps outlive terwayd: a TCP stream and a ping from a node1
// pod to a node2 pod keep going while node1's terwayd is SIGKILLed and
// started again (its restart repair rewrites the same entries).
TEST_F(LabEbpf, StreamAndPingSurviveSigkillAndRestartOfTerwayd) {
  UpEbpf(2);
  std::string a = AddPod("default/a", "node1");
  std::string c = AddPod("default/c", "node2");
  ASSERT_FALSE(a.empty() || c.empty());
  TcpStream stream;
  StartStream("stream", PodNetns("default/a"), PodNetns("default/c"), c, 7100, &stream);
  ASSERT_FALSE(HasFatalFailure());
  Process ping;
  StartPing("ping", PodNetns("default/a"), c, &ping);
  ASSERT_FALSE(HasFatalFailure());
  const double fast_before = Packets(NodeMetrics(0), "pod_to_eni");

  auto killed = Lab({"terwayd", "kill", "node1"});
  ASSERT_EQ(killed.exit_code, 0) << killed.output;
  // While terwayd is down the stream goes on.
  EXPECT_TRUE(stream.Grows(4096, 15s)) << "the stream stalled with terwayd down";
  auto start = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(stream.Grows(4096, 15s)) << "the stream stalled after the restart";
  // And it kept using the fast path (counters are in the pinned map, so
  // they continue across the restart).
  EXPECT_GT(Packets(NodeMetrics(0), "pod_to_eni"), fast_before);

  PingCount count = StopPing(ping);
  std::cout << fmt::format("[ RESTART ] ping {} sent, {} received across the SIGKILL and restart; stream {} bytes\n",
                           count.sent, count.received, stream.Bytes());
  // Bound: 1. The programs and maps stay in the kernel while terwayd is
  // gone, so nothing on the path depends on it; only the echo in flight when
  // SIGINT stops ping can miss its reply.
  EXPECT_GE(count.sent, 40) << "the ping did not span the restart:\n" << count.log;
  EXPECT_LE(count.sent - count.received, 1) << count.log;
  // No reset: both ends of the stream are still running, and said nothing.
  EXPECT_EQ(stream.Broken(), "");
}

// A crash: every terwayd SIGKILLed with eBPF pods wired (their pins in the
// nodes' bpffs); `down` still removes every mount and pin (TearDown checks
// mountinfo and that the lab directory is gone).
TEST_F(LabEbpf, DownAfterTerwaydCrashesLeavesNoMountAndNoPin) {
  UpEbpf(2);
  ASSERT_FALSE(AddPod("default/a", "node1").empty());
  ASSERT_FALSE(AddPod("default/b", "node2").empty());
  const std::string pins = PinDir(0);
  ASSERT_EQ(EndpointEntries(0), 1);
  for (const char* n : {"node1", "node2"}) {
    auto r = Lab({"terwayd", "kill", n});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto r = Lab({"down"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  struct stat st {};
  EXPECT_NE(stat(pins.c_str(), &st), 0) << "a pin directory outlived down: " << pins;
}

}  // namespace
}  // namespace terway::testing
