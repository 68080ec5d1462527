// `terway-lab up --ip-stack dual` (issue 15): the world's VPC gets an IPv6
// /56 and its vSwitch a /64 (DescribeVSwitches and vpcsim describe say so),
// the cluster's eni_conf says `"ip_stack": "dual"`, `status` names the stack;
// the default stays IPv4 only; a bad --ip-stack, or an --eni-config that
// disagrees with it, starts nothing.
//
// Pods on a dual-stack node hold an IPv4 and an IPv6 of the same ENI
// (status.podIPs, k8s.aliyun.com/pod-ips, the cloud's Ipv6Sets) and talk
// IPv6 -- TCP, UDP, ICMPv6 -- on one node and across nodes with their own
// addresses as the source.
#include <sys/stat.h>

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
