// terway-lab end to end: the real binary brings up vpcsim and terwayd per
// node; pods wired by the real terway plugin talk over TCP and UDP on one
// node, across nodes and with a VPC host, with no tunnel; the cloud shows each
// pod IP on an ENI of its node; a full node refuses a pod until one leaves;
// every CNI version's ADD/CHECK/DEL; `down` leaves nothing.
#include <signal.h>

#include <regex>

#include "e2e/lab/lab_traffic.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

using LabTraffic = LabTrafficTest;

TEST_F(LabTraffic, PodsReachPodsAndVpcHostOverTcpAndUdpWithoutTunnels) {
  Up(2);
  std::string a = AddPod("default/a", "node1");
  std::string b = AddPod("default/b", "node1");
  std::string c = AddPod("team/c", "node2");
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  std::string host = HostIp();
  StartWhoAmI("a", "default/a", "");
  StartWhoAmI("c", "team/c", "");
  StartWhoAmI("host", "", HostNetns());
  for (const std::string proto : {"tcp", "udp"}) {
    ExpectReach("default/b", "", b, a, proto);  // same node
    ExpectReach("default/a", "", a, c, proto);  // node1 -> node2
    ExpectReach("team/c", "", c, a, proto);     // node2 -> node1
    ExpectReach("default/a", "", a, host, proto);  // pod -> VPC host
    ExpectReach("", HostNetns(), host, c, proto);  // VPC host -> pod
  }
  servers_.clear();

  // No encapsulation anywhere: the packets above were plain VPC packets.
  std::vector<std::string> netns = {NodeNetns(0), NodeNetns(1)};
  for (const auto& p : {"default/a", "default/b", "team/c"}) netns.push_back(PodNetns(p));
  for (const auto& ns : netns) {
    ASSERT_FALSE(ns.empty());
    auto all = RunCommand({"/usr/sbin/ip", "-d", "-o", "link", "show"}, ns);
    ASSERT_EQ(all.exit_code, 0) << all.output;
    for (const char* type : {"vxlan", "geneve", "ipip", "gre", "gretap", "sit", "ip6tnl", "ip6gre"}) {
      auto r = RunCommand({"/usr/sbin/ip", "-o", "link", "show", "type", type}, ns);
      EXPECT_EQ(r.exit_code, 0) << r.output;
      EXPECT_EQ(r.output, "") << type << " link in " << ns << ":\n" << all.output;
    }
  }

  // The cloud's view through its API (DescribeNetworkInterfaces, signed):
  // each pod IP is a private IP of a secondary ENI (never the node's own
  // primary ENI), in use by the pod's own node. (Like Terway, the pool also
  // hands out a secondary ENI's own primary IP.)
  std::map<std::string, std::string> pod_node = {{a, "node1"}, {b, "node1"}, {c, "node2"}};
  auto state = State();
  for (const auto& [ip, node] : pod_node) {
    std::string instance;
    for (const auto& n : state["nodes"]) {
      if (n["name"] == node) instance = n["instance_id"];
    }
    std::string found;
    for (const auto& eni : DescribeEnis(instance)) {
      for (const auto& pip : eni.private_ip_sets) {
        if (pip.address != ip) continue;
        found = fmt::format("{} {} {} {}", eni.network_interface_id, eni.type, eni.status,
                            pip.primary ? "primary" : "secondary");
      }
    }
    EXPECT_NE(found.find(" Secondary InUse "), std::string::npos)
        << "pod IP " << ip << " of " << node << " (" << instance << ") is held by: '" << found << "'";
  }
  auto status = Lab({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("team/c"), std::string::npos) << status.output;
}

// Terway's ENI-only node pool: node2 runs exclusive ENI (its terway-config
// label names an override with eni_mode exclusive). A pod there gets a whole
// ENI of its own as eth0, talks to a shared-ENI pod both ways, and its DEL
// deletes the ENI in the cloud.
TEST_F(LabTraffic, ExclusiveEniNodeGivesEachPodItsOwnEni) {
  auto up = Lab({"up", "--nodes", "2", "--name", world_, "--vpc-hosts", "0", "--eni-mode", "shared,exclusive"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  ASSERT_EQ(State()["nodes"][1]["eni_mode"], "exclusive");
  const std::string node2 = State()["nodes"][1]["instance_id"];
  std::string a = AddPod("default/a", "node1");
  const size_t enis_before = DescribeEnis(node2).size();
  std::string x = AddPod("default/x", "node2");
  ASSERT_FALSE(a.empty() || x.empty());

  std::string mac;
  for (const auto& eni : DescribeEnis(node2)) {
    if (eni.private_ip_address == x) {
      EXPECT_EQ(eni.type, "Secondary");
      EXPECT_EQ(eni.status, "InUse");
      mac = eni.mac_address;
    }
  }
  ASSERT_FALSE(mac.empty()) << "no ENI of " << node2 << " has the pod's IP " << x << " as its primary IP";
  auto link = Exec("default/x", {"/usr/sbin/ip", "-d", "link", "show", "eth0"});
  ASSERT_EQ(link.exit_code, 0) << link.output;
  // (vpcsim's ENIs are veth pairs into its fabric: the MAC is what tells.)
  EXPECT_NE(link.output.find(mac), std::string::npos) << "eth0 is not the pod's ENI " << mac << ":\n" << link.output;

  StartWhoAmI("a", "default/a", "");
  StartWhoAmI("x", "default/x", "");
  ExpectReach("default/x", "", x, a, "tcp");
  ExpectReach("default/a", "", a, x, "tcp");
  ExpectReach("default/a", "", a, x, "udp");

  servers_.clear();
  auto del = Lab({"pod", "del", "default/x"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  EXPECT_TRUE(WaitFor([&] { return DescribeEnis(node2).size() == enis_before; }, 60s))
      << "the pod's ENI was not deleted: node2 holds " << DescribeEnis(node2).size() << " ENIs, had "
      << enis_before;
}

TEST_F(LabTest, FullNodeRefusesTheNextPodUntilOneIsDeleted) {
  Up(1, "ecs.vpcsim.tiny", 0);
  int max_pods = State()["nodes"][0]["max_pods"];
  ASSERT_GT(max_pods, 0);
  for (int i = 0; i < max_pods; i++) {
    ASSERT_FALSE(AddPod(fmt::format("default/p{}", i), "node1").empty()) << "pod " << i;
  }
  auto refused = Lab({"pod", "add", "default/extra", "--node", "node1"});
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("CNI error 100"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find(fmt::format("of max {}", max_pods)), std::string::npos)
      << "names the node's capacity: " << refused.output;
  EXPECT_NE(refused.output.find("pod del"), std::string::npos) << "says what to do: " << refused.output;
  EXPECT_EQ(PodNetns("default/extra"), "") << "a refused pod is not recorded";
  EXPECT_EQ(WorldNetns().find("pod-default-extra"), std::string::npos) << "nor its namespace kept";

  auto del = Lab({"pod", "del", "default/p0"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  std::string ip = AddPod("default/extra", "node1");
  EXPECT_FALSE(ip.empty());
}

TEST_F(LabTest, AddCheckDelForEveryCniVersion) {
  Up(1);
  std::string host = HostIp();
  for (const std::string v : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    SCOPED_TRACE("cniVersion " + v);
    std::string pod = "v" + std::regex_replace(v, std::regex("\\."), "") + "/pod";
    std::string ip = AddPod(pod, "node1", v);
    ASSERT_FALSE(ip.empty());
    std::string netns = PodNetns(pod);
    auto ping = Exec(pod, {"/usr/bin/ping", "-c", "1", "-W", "3", host});
    EXPECT_EQ(ping.exit_code, 0) << ping.output;
    auto check = Lab({"pod", "check", pod});
    if (v == "0.3.1") {
      // CHECK does not exist before 0.4.0: the plugin refuses it by the spec.
      EXPECT_NE(check.exit_code, 0) << check.output;
      EXPECT_NE(check.output.find("CNI error 1:"), std::string::npos) << check.output;
    } else {
      EXPECT_EQ(check.exit_code, 0) << check.output;
    }
    auto del = Lab({"pod", "del", pod});
    EXPECT_EQ(del.exit_code, 0) << del.output;
    EXPECT_EQ(WorldNetns().find(netns), std::string::npos) << netns << " left after DEL";
  }
}

TEST_F(LabTest, UpFailureTearsDownAndNamesTheCause) {
  auto r = Lab({"up", "--nodes", "1", "--name", world_, "--instance-type", "ecs.nosuch.type"});
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("unknown instance type 'ecs.nosuch.type'"), std::string::npos) << r.output;
  EXPECT_EQ(WorldNetns(), "");
  EXPECT_NE(access(lab_dir_.c_str(), F_OK), 0) << "the lab directory is removed";
}

TEST_F(LabTest, DownLeavesNothingEvenWhenADaemonAlreadyDied) {
  Up(2);
  ASSERT_FALSE(AddPod("default/a", "node1").empty());
  ASSERT_FALSE(AddPod("default/b", "node2").empty());
  auto state = State();
  std::vector<int> pids = {state["vpcsim"]["process"]["pid"].get<int>()};
  for (const auto& n : state["nodes"]) pids.push_back(n["terwayd"]["pid"].get<int>());
  // A crashed daemon: down must still remove its pods' namespaces and the world.
  ASSERT_EQ(kill(pids[2], SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return access(("/proc/" + std::to_string(pids[2])).c_str(), F_OK) != 0; },
                      std::chrono::seconds(10)));
  auto down = Lab({"down"});
  EXPECT_EQ(down.exit_code, 0) << down.output;
  EXPECT_EQ(WorldNetns(), "");
  for (int pid : pids) {
    std::string cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    EXPECT_TRUE(cmdline.find("vpcsim") == std::string::npos && cmdline.find("terwayd") == std::string::npos)
        << "process " << pid << " still runs: " << cmdline;
  }
  EXPECT_EQ(Capture("ip -o link show | grep -c " + world_ + " || true"), "0\n") << "links of the world left";
  EXPECT_EQ(Capture("nft list tables | grep -c " + world_ + " || true"), "0\n") << "nft tables left";
  EXPECT_NE(access(lab_dir_.c_str(), F_OK), 0) << "lab directory left";
  auto again = Lab({"down"});
  EXPECT_EQ(again.exit_code, 0) << "down is idempotent: " << again.output;
}

}  // namespace
}  // namespace terway::testing
