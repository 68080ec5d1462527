// A dual-stack lab (`terway-lab up --ip-stack dual`, issue 15) and what any
// test of it checks: the world's IPv6 blocks as the cloud reports them, the
// cluster's eni_conf, and a pod's addresses in the API (status.podIPs) and in
// the cloud (the ENI holding each).
//
// Pods get IPv6 only once terwayd's pool keeps both families; until then
// ExpectPodIps(pod, node, /*ipv6=*/false) checks the IPv4 side of the same
// contract, and a test turns on the IPv6 side by passing true.
#pragma once

#include <string>
#include <vector>

#include "common/ip.h"
#include "e2e/lab/lab_traffic.h"

namespace terway::testing {

class LabDualStackTest : public LabTrafficTest {
 protected:
  // The blocks `up --ip-stack dual` gives the world (tools/lab/cluster/lab.cc).
  static constexpr const char* kVpcIpv6Cidr = "fd00:1ab::/56";
  static constexpr const char* kVswitchIpv6Cidr = "fd00:1ab:0:1::/64";

  // `up --ip-stack dual` with the test's world name; extra flags appended.
  void UpDual(int nodes, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"up", "--nodes", std::to_string(nodes), "--name", world_,
                                     "--vpc-hosts", "1", "--ip-stack", "dual"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = Lab(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("IP stack dual"), std::string::npos) << r.output;
  }

  // The vSwitches of the lab's VPC through the signed OpenAPI
  // (DescribeVSwitches, as a user would ask Alibaba Cloud).
  std::vector<cloud::VSwitch> DescribeVSwitches() {
    auto clients = LabCloudClients();
    if (!clients) return {};
    auto vsws = clients->ecs()->DescribeVSwitches("vpc-" + world_, {});
    EXPECT_TRUE(vsws.ok()) << vsws.error().ToString();
    return vsws.ok() ? *vsws : std::vector<cloud::VSwitch>{};
  }

  // The cluster's eni_conf as terwayd reads it: ConfigMap kube-system/eni-config.
  nlohmann::json ClusterEniConf() {
    return nlohmann::json::parse(KubectlGet("configmap", "eni-config", "{.data.eni_conf}", "kube-system"), nullptr,
                                 false);
  }

  // A dual-stack world: the VPC's /56 and every vSwitch's /64 in the cloud's
  // answers, eni_conf `"ip_stack": "dual"` in the ConfigMap and in every
  // node's eni.json, and `status` saying so.
  void ExpectDualStackWorld() {
    auto vsws = DescribeVSwitches();
    ASSERT_FALSE(vsws.empty()) << "DescribeVSwitches listed no vSwitch of vpc-" << world_;
    for (const auto& v : vsws) {
      EXPECT_EQ(v.ipv6_cidr_block, kVswitchIpv6Cidr) << "vSwitch " << v.vswitch_id << " in DescribeVSwitches";
    }
    nlohmann::json view = CloudView();
    EXPECT_EQ(view["vpc"].value("ipv6_cidr", ""), kVpcIpv6Cidr) << view["vpc"].dump();
    for (const auto& v : view["vswitches"]) {
      EXPECT_EQ(v.value("ipv6_cidr", ""), kVswitchIpv6Cidr) << "vpcsim describe: " << v.dump();
    }
    nlohmann::json conf = ClusterEniConf();
    ASSERT_TRUE(conf.is_object()) << "ConfigMap kube-system/eni-config has no eni_conf JSON";
    EXPECT_EQ(conf.value("ip_stack", ""), "dual") << conf.dump();
    for (const auto& n : State()["nodes"]) {
      auto node_conf = nlohmann::json::parse(ReadFile(n["eni_conf"].get<std::string>()), nullptr, false);
      EXPECT_EQ(node_conf.is_object() ? node_conf.value("ip_stack", "") : "", "dual")
          << n["name"] << "'s eni.json: " << node_conf.dump();
    }
    auto st = Lab({"status"});
    EXPECT_EQ(st.exit_code, 0) << st.output;
    EXPECT_NE(st.output.find(fmt::format("IP stack: dual (eni_conf ip_stack dual; VPC IPv6 {}, vSwitch IPv6 {})",
                                         kVpcIpv6Cidr, kVswitchIpv6Cidr)),
              std::string::npos)
        << st.output;
  }

  // status.podIPs of a pod, in order ("" entries never).
  std::vector<std::string> PodIps(const std::string& pod) {
    auto slash = pod.find('/');
    std::string out =
        KubectlGet("pod", pod.substr(slash + 1), "{range .status.podIPs[*]}{.ip}{\"\\n\"}{end}", pod.substr(0, slash));
    std::vector<std::string> ips;
    for (const auto& l : Split(out)) {
      if (!l.empty()) ips.push_back(l);
    }
    return ips;
  }

  // The pod's addresses as Kubernetes reports a dual-stack pod: podIPs IPv4
  // first, podIP the first, each held by an ENI of its node in the cloud's
  // DescribeNetworkInterfaces; with ipv6 also an IPv6 of the vSwitch's /64
  // (an ENI's Ipv6Sets), without it no IPv6 at all.
  void ExpectPodIps(const std::string& pod, int node_index, bool ipv6) {
    auto slash = pod.find('/');
    std::string pod_ip = KubectlGet("pod", pod.substr(slash + 1), "{.status.podIP}", pod.substr(0, slash));
    auto ips = PodIps(pod);
    ASSERT_EQ(ips.size(), ipv6 ? 2u : 1u) << pod << " status.podIPs: " << ::testing::PrintToString(ips);
    EXPECT_EQ(ips[0], pod_ip) << "podIP is the first of podIPs";
    EXPECT_EQ(ips[0].find(':'), std::string::npos) << "IPv4 first: " << ips[0];
    std::string instance = State()["nodes"][node_index]["instance_id"];
    bool v4_held = false, v6_held = false;
    for (const auto& eni : DescribeEnis(instance)) {
      for (const auto& p : eni.private_ip_sets) v4_held |= p.address == ips[0];
      if (ipv6) {
        for (const auto& a : eni.ipv6_sets) v6_held |= a == ips[1];
      }
    }
    EXPECT_TRUE(v4_held) << ips[0] << " is on no ENI of " << instance;
    if (ipv6) {
      EXPECT_NE(ips[1].find(':'), std::string::npos) << ips[1];
      auto a6 = Ipv6Addr::Parse(ips[1]);
      EXPECT_TRUE(a6.ok() && Ipv6Cidr::Parse(kVswitchIpv6Cidr).value().Contains(*a6))
          << ips[1] << " is not an address of the vSwitch's " << kVswitchIpv6Cidr;
      EXPECT_TRUE(v6_held) << ips[1] << " is on no ENI of " << instance << " (Ipv6Sets)";
    }
  }
};

}  // namespace terway::testing
