// SharedEniDatapath on the emulated VPC's real Linux fabric (LinuxFabric, no
// vpcsim server): two instances on one vSwitch, each with a secondary ENI
// attached (down, unconfigured, as ECS hot-plugs it). The router delivers an
// IP only to the ENI holding it and drops packets whose source is not held by
// the ENI they come from, so a pod reaching anything proves its traffic left
// through the ENI that owns its IP.
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "datapath/shared_eni.h"
#include "root/datapath/vpc_world.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace vpc_world;

TEST(SharedEniVpcRoot, PodsOnTwoInstancesReachEachOtherThroughTheVpc) {
  TERWAY_REQUIRE_ROOT();
  VpcWorld w("td");
  const auto eni_a = Eni("eni-a", "00:16:3e:00:00:0a", {"198.18.1.10", "198.18.1.12"});
  const auto eni_b = Eni("eni-b", "00:16:3e:00:00:0b", {"198.18.1.11"});
  const auto eni_a2 = Eni("eni-a2", "00:16:3e:00:00:a2", {"198.18.1.20", "198.18.1.21"});
  const auto eni_b2 = Eni("eni-b2", "00:16:3e:00:00:b2", {"198.18.1.30", "198.18.1.31"});
  ASSERT_OK(w.fabric.EnsureVpc("vpc-test", Ipv4Cidr::Parse("198.18.0.0/16").value()));
  ASSERT_OK(w.fabric.EnsureVSwitch({"vsw-one", Ipv4Cidr::Parse("198.18.1.0/24").value(), Ip("198.18.1.253")}));
  ASSERT_OK(w.fabric.EnsureInstance("i-a", eni_a));
  ASSERT_OK(w.fabric.EnsureInstance("i-b", eni_b));
  ASSERT_OK(w.fabric.SetEniIps(eni_a));
  ASSERT_OK(w.fabric.AttachEni("i-a", eni_a2, 1));
  ASSERT_OK(w.fabric.AttachEni("i-b", eni_b2, 1));
  const std::string node_a = w.fabric.InstanceNetns("i-a");
  const std::string node_b = w.fabric.InstanceNetns("i-b");

  SharedEniDatapath dp_a({node_a, 1500, VSwitchOne});
  SharedEniDatapath dp_b({node_b, 1500, VSwitchOne});

  auto make_pod = [&](const std::string& tag, const vpcsim::FabricEni& eni, const char* ip) {
    std::string ns = "tdp" + tag + w.s;
    w.pod_netns.push_back(ns);
    Status st = netlink::CreateNamedNetns(ns);
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    PodNetwork p;
    p.container_id = "ctr-" + tag + "-" + w.s;
    p.netns = netlink::NetnsPath(ns);
    p.ifname = "eth0";
    p.pod_namespace = "default";
    p.pod_name = tag;
    p.ip.ip = ip;
    p.ip.eni_id = eni.eni_id;
    p.ip.eni_mac = eni.mac.ToString();
    p.ip.eni_primary_ip = eni.ips[0].ToString();
    p.ip.vswitch_id = eni.vswitch_id;
    return std::make_pair(ns, p);
  };
  // a1 on a's secondary ENI, a2 on a's primary ENI (eth0, which also carries
  // the node's own address and default route), b1 on b's secondary ENI.
  auto [ns_a1, a1] = make_pod("a1", eni_a2, "198.18.1.21");
  auto [ns_a2, a2] = make_pod("a2", eni_a, "198.18.1.12");
  auto [ns_b1, b1] = make_pod("b1", eni_b2, "198.18.1.31");
  ASSERT_OK(dp_a.Ensure(a1));
  ASSERT_OK(dp_a.Ensure(a2));
  ASSERT_OK(dp_b.Ensure(b1));
  ASSERT_OK(dp_a.Check(a1));
  ASSERT_OK(dp_a.Check(a2));
  ASSERT_OK(dp_b.Check(b1));

  EXPECT_TRUE(PingFrom(ns_a1, "198.18.1.31")) << "pod a1 -> pod b1 across instances";
  EXPECT_TRUE(PingFrom(ns_b1, "198.18.1.21")) << "pod b1 -> pod a1 across instances";
  EXPECT_TRUE(PingFrom(ns_a2, "198.18.1.31")) << "pod on the primary ENI -> pod b1";
  EXPECT_TRUE(PingFrom(ns_a1, "198.18.1.12")) << "pods on one instance, different ENIs";
  EXPECT_TRUE(PingFrom(ns_b1, "198.18.1.10")) << "pod b1 -> VPC host (instance a's primary IP)";

  // Negative control: without a1's from-rule its packets take the node's
  // default route out of eth0 (eni-a), which does not hold 198.18.1.21, and
  // the VPC drops them. Ensure puts the rule back and traffic flows again.
  ASSERT_EQ(std::system(("ip -n " + node_a + " rule del from 198.18.1.21 priority 2048").c_str()), 0);
  EXPECT_FALSE(dp_a.Check(a1).ok());
  EXPECT_FALSE(PingOnce(ns_a1, "198.18.1.31") || PingOnce(ns_a1, "198.18.1.31"))
      << "the VPC accepted a pod IP from an ENI that does not hold it";
  ASSERT_OK(dp_a.Ensure(a1));
  EXPECT_TRUE(PingFrom(ns_a1, "198.18.1.31")) << "after repair";

  ASSERT_OK(dp_a.Remove(a1));
  ASSERT_OK(dp_a.Remove(a2));
  ASSERT_OK(dp_b.Remove(b1));
  auto left_a = dp_a.ListPodLinks();
  ASSERT_OK(left_a);
  EXPECT_TRUE(left_a->empty());
}

}  // namespace
}  // namespace terway::datapath
