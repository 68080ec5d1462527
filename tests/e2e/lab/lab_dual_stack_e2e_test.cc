// `terway-lab up --ip-stack dual` (issue 15): the world's VPC gets an IPv6
// /56 and its vSwitch a /64 (DescribeVSwitches and vpcsim describe say so),
// the cluster's eni_conf says `"ip_stack": "dual"`, `status` names the stack;
// the default stays IPv4 only; a bad --ip-stack, or an --eni-config that
// disagrees with it, starts nothing.
//
// Pods on a dual-stack node hold an IPv4 and an IPv6 of the same ENI
// (status.podIPs, k8s.aliyun.com/pod-ips, the cloud's Ipv6Sets) and talk
// IPv6 -- TCP, UDP, ICMPv6 -- on one node and across nodes with their own
// addresses as the source. Nodes and VPC hosts have an IPv6 of their own on
// eth0 (the primary ENI's, as RunInstances' Ipv6AddressCount gives it),
// which no pod is given; pods and a VPC host talk IPv6 both ways, each
// seeing the other's own address.
#include <sys/stat.h>

#include <algorithm>

#include "e2e/lab/lab_dual_stack.h"

namespace terway::testing {
namespace {

TEST_F(LabDualStackTest, UpDualGivesTheVSwitchesIpv6AndTheClusterADualEniConf) {
  UpDual(1);
  ExpectDualStackWorld();
  // A pod runs, reported as Kubernetes reports pods (podIPs, IPv4 first).
  std::string ip = AddPod("default/dual-1", "node1");
  ASSERT_FALSE(ip.empty());
  ExpectPodIps("default/dual-1", 0, /*ipv6=*/true);
}

TEST_F(LabDualStackTest, PodsTalkIpv6OnOneNodeAndAcrossNodesWithTheirOwnAddresses) {
  UpDual(2);
  ASSERT_FALSE(AddPod("default/a", "node1").empty());
  ASSERT_FALSE(AddPod("default/b", "node1").empty());
  ASSERT_FALSE(AddPod("team/c", "node2").empty());
  ExpectPodIps("default/a", 0, true);
  ExpectPodIps("default/b", 0, true);
  ExpectPodIps("team/c", 1, true);
  if (HasFailure()) return;
  const std::string a = PodIps("default/a")[1], b = PodIps("default/b")[1], c = PodIps("team/c")[1];
  auto annotation = KubectlGet("pod", "a", "{.metadata.annotations.k8s\\.aliyun\\.com/pod-ips}", "default");
  EXPECT_EQ(annotation, PodIps("default/a")[0] + "," + a) << "k8s.aliyun.com/pod-ips lists both, IPv4 first";

  StartWhoAmI("a", "default/a", "", /*ipv6=*/true);
  StartWhoAmI("c", "team/c", "", /*ipv6=*/true);
  for (const std::string proto : {"tcp", "udp"}) {
    ExpectReach("default/b", "", b, a, proto);  // same node
    ExpectReach("default/a", "", a, c, proto);  // node1 -> node2
    ExpectReach("team/c", "", c, a, proto);     // node2 -> node1
  }
  for (const auto& [from, to] : {std::pair{"default/a", c}, {"team/c", b}}) {
    auto ping = Exec(from, {"/usr/bin/ping", "-6", "-c", "2", "-W", "3", to});
    EXPECT_EQ(ping.exit_code, 0) << from << " -> " << to << ": " << ping.output;
  }
  // IPv4 keeps working next to it (the servers listen on both families).
  ExpectReach("default/a", "", PodIps("default/a")[0], PodIps("team/c")[0], "tcp");

  // Each node's primary ENI holds one IPv6, the node's own: on its eth0,
  // listed by `status` as such, and never a pod's.
  const std::vector<std::string> pod_v6 = {a, b, c};
  auto st = Lab({"status"});
  for (const auto& n : State()["nodes"]) {
    const std::string instance = n["instance_id"];
    std::vector<std::string> own;
    for (const auto& eni : DescribeEnis(instance)) {
      if (eni.type == "Primary") own = eni.ipv6_sets;
    }
    ASSERT_EQ(own.size(), 1u) << instance << "'s primary ENI (Ipv6Sets)";
    EXPECT_EQ(std::find(pod_v6.begin(), pod_v6.end(), own[0]), pod_v6.end())
        << "a pod was given " << instance << "'s own IPv6 " << own[0];
    EXPECT_NE(st.output.find(fmt::format("{:<15}  the node's own (eth0)", own[0])), std::string::npos) << st.output;
    auto addr = RunCommand({"/usr/sbin/ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"},
                           n["netns"].get<std::string>());
    EXPECT_NE(addr.output.find(" " + own[0] + "/128 "), std::string::npos) << n["name"] << "'s eth0: " << addr.output;
  }

  // A VPC host (an instance without terwayd) and pods talk IPv6 both ways,
  // through the VPC, each side seeing the other's own address.
  const nlohmann::json host = State()["hosts"][0];
  const std::string host_ns = host["netns"], host6 = host.value("ipv6", "");
  ASSERT_FALSE(host6.empty()) << "lab.json records no IPv6 of the VPC host: " << host.dump();
  EXPECT_NE(st.output.find(fmt::format("IPv6 {}  namespace {}", host6, host_ns)), std::string::npos) << st.output;
  StartWhoAmI("host", "", host_ns, /*ipv6=*/true);
  for (const std::string proto : {"tcp", "udp"}) {
    ExpectReach("default/a", "", a, host6, proto);  // pod (node1) -> host
    ExpectReach("", host_ns, host6, c, proto);      // host -> pod (node2)
  }
  auto to_host = Exec("default/a", {"/usr/bin/ping", "-6", "-c", "1", "-W", "3", host6});
  EXPECT_EQ(to_host.exit_code, 0) << "default/a -> host " << host6 << ": " << to_host.output;
  auto from_host = RunCommand({"/usr/bin/ping", "-6", "-c", "1", "-W", "3", c}, host_ns);
  EXPECT_EQ(from_host.exit_code, 0) << "host -> team/c " << c << ": " << from_host.output;
  // A node reaches the host over IPv6 with its own address (the VPC lets eth0 send from it).
  auto from_node = RunCommand({"/usr/bin/ping", "-6", "-c", "1", "-W", "3", host6},
                              State()["nodes"][0]["netns"].get<std::string>());
  EXPECT_EQ(from_node.exit_code, 0) << "node1 -> host " << host6 << ": " << from_node.output;
}

TEST_F(LabDualStackTest, Ipv4IsTheDefaultAndHasNoIpv6Anywhere) {
  Up(1, "", 0);
  for (const auto& v : DescribeVSwitches()) {
    EXPECT_EQ(v.ipv6_cidr_block, "") << "vSwitch " << v.vswitch_id << " of an IPv4 lab";
  }
  EXPECT_EQ(CloudView()["vpc"].value("ipv6_cidr", "?"), "");
  nlohmann::json conf = ClusterEniConf();
  ASSERT_TRUE(conf.is_object());
  EXPECT_FALSE(conf.contains("ip_stack")) << "upstream's default is left out: " << conf.dump();
  auto st = Lab({"status"});
  EXPECT_NE(st.output.find("IP stack: ipv4"), std::string::npos) << st.output;
  // No instance has an IPv6 of its own either: not in the cloud, not on eth0.
  for (const auto& n : State()["nodes"]) {
    for (const auto& eni : DescribeEnis(n["instance_id"])) {
      EXPECT_TRUE(eni.ipv6_sets.empty()) << eni.network_interface_id << " of an IPv4 lab holds IPv6";
    }
  }
  for (const auto& h : State()["hosts"]) {
    EXPECT_EQ(h.value("ipv6", "?"), "") << h.dump();
    auto addr = RunCommand({"/usr/sbin/ip", "-6", "-o", "addr", "show", "scope", "global"}, h["netns"]);
    EXPECT_EQ(addr.exit_code, 0) << addr.output;
    EXPECT_EQ(addr.output, "") << "an IPv4 lab's VPC host has a global IPv6";
  }
}

TEST_F(LabDualStackTest, ABadIpStackOrADisagreeingEniConfigStartsNothing) {
  auto bad = Lab({"up", "--nodes", "1", "--name", world_, "--ip-stack", "ipv6"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("up --ip-stack: 'ipv6' is not an IP stack (ipv4 or dual"), std::string::npos)
      << bad.output;
  const std::string conf = dir_.File("eni-dual.json");
  ASSERT_TRUE(WriteFile(conf, R"({"version": "1", "ip_stack": "dual"})").ok());
  auto clash = Lab({"up", "--nodes", "1", "--name", world_, "--eni-config", conf});
  EXPECT_NE(clash.exit_code, 0);
  EXPECT_NE(clash.output.find("its ip_stack is \"dual\" but the lab's is ipv4; pass `--ip-stack dual`"),
            std::string::npos)
      << clash.output;
  EXPECT_EQ(WorldNetns(), "") << "a refused up created namespaces";
  struct stat sb {};
  EXPECT_NE(stat((lab_dir_ + "/lab.json").c_str(), &sb), 0) << "a refused up recorded a lab";
}

}  // namespace
}  // namespace terway::testing
