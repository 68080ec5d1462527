// The pure parts of the shared-ENI datapath: names, table ids, owner alias,
// CNI result shape.
#include "datapath/exclusive_eni.h"
#include "datapath/layout.h"

#include <gtest/gtest.h>

#include "netlink/names.h"

namespace terway::datapath {
namespace {

// A returning exclusive ENI is parked under a name no node link (eth0, ethN,
// tw...) can have, stable per ENI so a retried DEL or Ensure finds it.
TEST(ParkedEniLinkName, IsValidStableAndDistinctFromHostVeths) {
  std::string n = ParkedEniLinkName("eni-2ze8f3k1x9abcdef0123");
  EXPECT_EQ(n.size(), 15u);
  EXPECT_EQ(n.substr(0, 3), "eni");
  EXPECT_TRUE(netlink::ValidateLinkName(n).ok());
  EXPECT_EQ(n, ParkedEniLinkName("eni-2ze8f3k1x9abcdef0123"));
  EXPECT_NE(n, ParkedEniLinkName("eni-2ze8f3k1x9abcdef0124"));
}

TEST(HostVethName, FitsTheKernelLimitAndIsStable) {
  std::string id = "6f1d7c2e9a4b8f30c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e";
  std::string n = HostVethName(id);
  EXPECT_EQ(n.size(), 15u);
  EXPECT_EQ(n.substr(0, 2), "tw");
  EXPECT_TRUE(netlink::ValidateLinkName(n).ok());
  EXPECT_EQ(n, HostVethName(id));  // same container, same link, across restarts
  EXPECT_NE(n, HostVethName(id + "x"));
  EXPECT_NE(HostVethName("a"), HostVethName("b"));
}

TEST(EniTableId, IsBasePlusIfindex) {
  EXPECT_EQ(EniTableId(2), 1002u);
  EXPECT_EQ(EniTableId(57), 1057u);
  EXPECT_LT(kToPodRulePriority, kFromPodRulePriority);  // pod-to-pod stays on the node
  EXPECT_LT(kFromPodRulePriority, 32766u);             // before the main rule
}

TEST(PodLinkAlias, RoundTrips) {
  Ipv4Addr ip = Ipv4Addr::Parse("198.18.0.10").value();
  std::string a = PodLinkAlias(ip, "abc:def");
  EXPECT_EQ(a, "terway-pod:198.18.0.10:abc:def");
  auto o = ParsePodLinkAlias(a);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->pod_ip, ip);
  EXPECT_EQ(o->container_id, "abc:def");
}

TEST(PodLinkAlias, IgnoresForeignAliases) {
  EXPECT_FALSE(ParsePodLinkAlias(""));
  EXPECT_FALSE(ParsePodLinkAlias("calico"));
  EXPECT_FALSE(ParsePodLinkAlias("terway-pod:"));
  EXPECT_FALSE(ParsePodLinkAlias("terway-pod:198.18.0.10:"));
  EXPECT_FALSE(ParsePodLinkAlias("terway-pod:not-an-ip:abc"));
}

TEST(PodIfb, SharesTheVethsHashUnderItsOwnPrefixAndAlias) {
  const std::string id = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(PodIfbName(id).substr(0, 2), "tb");
  EXPECT_EQ(PodIfbName(id).substr(2), HostVethName(id).substr(2));
  EXPECT_EQ(PodIfbName(id).size(), 15u);
  Ipv4Addr ip = Ipv4Addr::Parse("198.18.0.10").value();
  std::string a = PodIfbAlias(ip, id);
  EXPECT_EQ(a, "terway-pod-ifb:198.18.0.10:" + id);
  auto o = ParsePodIfbAlias(a);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->container_id, id);
  // Neither parser takes the other's links: veth GC never deletes an IFB as
  // a veth, nor the reverse.
  EXPECT_FALSE(ParsePodLinkAlias(a));
  EXPECT_FALSE(ParsePodIfbAlias(PodLinkAlias(ip, id)));
}

TEST(BuildCniResult, HasHostAndPodInterfacesAndDefaultRoute) {
  PodWiring w;
  w.host_veth = "tw0123456789abc";
  w.host_mac = MacAddr::Parse("02:00:00:00:00:01").value();
  w.pod_ifname = "eth0";
  w.pod_mac = MacAddr::Parse("02:00:00:00:00:02").value();
  w.netns = "/var/run/netns/pod";
  w.pod_ip = Ipv4Addr::Parse("198.18.0.10").value();
  cni::CniResult r = BuildCniResult(w);
  ASSERT_EQ(r.interfaces.size(), 2u);
  EXPECT_EQ(r.interfaces[0].name, "tw0123456789abc");
  EXPECT_EQ(r.interfaces[0].mac, "02:00:00:00:00:01");
  EXPECT_EQ(r.interfaces[0].sandbox, "");
  EXPECT_EQ(r.interfaces[1].name, "eth0");
  EXPECT_EQ(r.interfaces[1].mac, "02:00:00:00:00:02");  // podman refuses a sandbox interface without one
  EXPECT_EQ(r.interfaces[1].sandbox, "/var/run/netns/pod");
  ASSERT_EQ(r.ips.size(), 1u);
  EXPECT_EQ(r.ips[0].address, "198.18.0.10/32");
  EXPECT_EQ(r.ips[0].gateway, "169.254.1.1");
  EXPECT_EQ(r.ips[0].interface, 1);
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].dst, "0.0.0.0/0");
  EXPECT_EQ(r.routes[0].gw, "169.254.1.1");
  EXPECT_TRUE(r.dns.empty());
}

}  // namespace
}  // namespace terway::datapath
