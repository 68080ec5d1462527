// The planners: a pod's wiring as an exact value, per mode, from the pod and
// the node's facts. The engine's root tests prove a plan does what it says;
// these pin what each mode asks for.
#include "datapath/wiring_planner.h"

#include <gtest/gtest.h>

#include "datapath/layout.h"

namespace terway::datapath {
namespace {

using netlink::InetAddr;
using netlink::InetPrefix;

Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }
InetPrefix P(const char* s) { return InetPrefix::Parse(s).value(); }
const MacAddr kEniMac = MacAddr::Parse("02:00:00:00:e0:01").value();

PodNetwork Pod() {
  PodNetwork p;
  p.container_id = "c0ffee";
  p.netns = "/var/run/netns/pod-a";
  p.ifname = "eth0";
  p.pod_namespace = "default";
  p.pod_name = "a";
  p.ip.ip = "198.18.0.10";
  p.ip.eni_id = "eni-1";
  p.ip.eni_mac = "02:00:00:00:e0:01";
  return p;
}

LinkPlan Veth(const std::string& peer) {
  LinkPlan l;
  l.kind = LinkKind::kVeth;
  l.name = HostVethName("c0ffee");
  l.mtu = 1500;
  l.alias = "terway-pod:198.18.0.10:c0ffee";
  l.peer_name = peer;
  l.peer_ns = kPodNs;
  l.owned = true;
  return l;
}

LinkPlan Named(LinkKind kind, const std::string& name, int mtu) {
  LinkPlan l;
  l.kind = kind;
  l.name = name;
  l.mtu = mtu;
  return l;
}

RoutePlan R(const char* dst, const std::string& dev, std::optional<const char*> via = std::nullopt, int scope = -1) {
  RoutePlan r;
  r.dst = P(dst);
  r.dev = dev;
  if (via) r.via = InetAddr::Parse(*via).value();
  r.scope = scope;
  return r;
}

NeighborPlan GatewayNeighbor(const std::string& dev) {
  NeighborPlan n;
  n.dev = dev;
  n.ip = InetAddr(Ip("169.254.1.1"));
  n.mac_of = HostVethName("c0ffee");
  n.mac_of_ns = kHostNs;
  return n;
}

TEST(PlanSharedEniPod, IsTheVethThePolicyRoutingAndTheEnisTable) {
  SharedEniFacts f;
  f.host_netns = "node";
  f.mtu = 1500;
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  WiringPlan plan = PlanSharedEniPod(Pod(), PodAddrs{Ip("198.18.0.10"), kEniMac}, f);

  WiringPlan want;
  want.namespaces.resize(2);
  NamespacePlan& host = want.namespaces[kHostNs];
  host.netns = "node";
  host.label = "host";
  host.links = {Named(LinkKind::kExisting, "eth1", 1500), Veth("eth0")};
  host.sysctls = {{"net/ipv4/ip_forward", "1", std::nullopt},
                  {"net/ipv4/conf/all/rp_filter", "2", std::string("1")},
                  {"net/ipv4/conf/eth1/rp_filter", "2", std::nullopt}};
  RoutePlan table = R("0.0.0.0/0", "eth1", "198.18.0.253");
  table.table = 1003;
  table.onlink = true;
  host.routes = {table, R("198.18.0.10/32", HostVethName("c0ffee"), std::nullopt, 253)};
  host.rules = {{512, std::nullopt, P("198.18.0.10/32"), netlink::kMainTable, true},
                {2048, P("198.18.0.10/32"), std::nullopt, 1003, true}};
  NamespacePlan& pod = want.namespaces[kPodNs];
  pod.netns = "/var/run/netns/pod-a";
  pod.label = "pod";
  pod.links = {Named(LinkKind::kExisting, "lo", 0), Named(LinkKind::kVethPeer, "eth0", 1500)};
  pod.addresses = {{"eth0", P("198.18.0.10/32")}};
  pod.routes = {R("169.254.1.1/32", "eth0", std::nullopt, 253), R("0.0.0.0/0", "eth0", "169.254.1.1")};
  pod.neighbors = {GatewayNeighbor("eth0")};
  want.report.interfaces = {{kHostNs, HostVethName("c0ffee"), false}, {kPodNs, "eth0", true}};
  want.report.ip = P("198.18.0.10/32");
  want.report.gateway = InetAddr(Ip("169.254.1.1"));
  want.report.ip_interface = 1;

  for (size_t i = 0; i < 2; ++i) {
    const auto& got = plan.namespaces[i];
    const auto& exp = want.namespaces[i];
    EXPECT_EQ(got.links, exp.links) << exp.label;
    EXPECT_EQ(got.sysctls, exp.sysctls) << exp.label;
    EXPECT_EQ(got.addresses, exp.addresses) << exp.label;
    EXPECT_EQ(got.routes, exp.routes) << exp.label;
    EXPECT_EQ(got.rules, exp.rules) << exp.label;
    EXPECT_EQ(got.neighbors, exp.neighbors) << exp.label;
  }
  EXPECT_EQ(plan, want);
  EXPECT_TRUE(plan.complete);
}

TEST(PlanSharedEniPod, WithoutTheEniOnlyServesRemoval) {
  SharedEniFacts f;
  WiringPlan plan = PlanSharedEniPod(Pod(), PodAddrs{Ip("198.18.0.10"), kEniMac}, f);
  EXPECT_FALSE(plan.complete);
  // Still owns what removal deletes: the veth and both rules (any table).
  ASSERT_EQ(plan.namespaces[kHostNs].links.size(), 1u);
  EXPECT_TRUE(plan.namespaces[kHostNs].links[0].owned);
  ASSERT_EQ(plan.namespaces[kHostNs].rules.size(), 2u);
  for (const auto& r : plan.namespaces[kHostNs].rules) EXPECT_TRUE(r.owned);
  // Never the ENI's table.
  for (const auto& r : plan.namespaces[kHostNs].routes) EXPECT_EQ(r.table, netlink::kMainTable);
}

TEST(PlanSharedEniPod, MtuZeroLeavesTheEniAloneAndGivesVeths1500) {
  SharedEniFacts f;
  f.mtu = 0;
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  WiringPlan plan = PlanSharedEniPod(Pod(), PodAddrs{Ip("198.18.0.10"), kEniMac}, f);
  EXPECT_EQ(plan.namespaces[kHostNs].links[0].mtu, 0);
  EXPECT_EQ(plan.namespaces[kHostNs].links[1].mtu, 1500);
  EXPECT_EQ(plan.namespaces[kPodNs].links[1].mtu, 1500);
}

TEST(PlanExclusiveEniPod, MovesTheEniInAndRoutesNodeServicesAndHostStackThroughTheVeth) {
  PodNetwork pod = Pod();
  pod.ip.ip = "198.18.1.40";
  pod.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value()};
  pod.metadata_via_node = true;
  ExclusiveEniFacts f;
  f.host_netns = "node";
  f.mtu = 1500;
  f.node_ip = Ip("198.18.1.11");
  f.service_cidr = Ipv4Cidr::Parse("198.19.128.0/20").value();
  f.metadata_ip = Ip("100.100.100.200");
  f.vswitch = ExclusiveEniFacts::Vswitch{Ip("198.18.1.253"), Ipv4Cidr::Parse("198.18.1.0/24").value()};
  WiringPlan plan = PlanExclusiveEniPod(pod, PodAddrs{Ip("198.18.1.40"), kEniMac}, f);

  WiringPlan want;
  want.namespaces.resize(2);
  NamespacePlan& host = want.namespaces[kHostNs];
  host.netns = "node";
  host.label = "host";
  LinkPlan veth = Veth("veth1");
  veth.alias = "terway-pod:198.18.1.40:c0ffee";
  host.links = {veth};
  host.sysctls = {{"net/ipv4/ip_forward", "1", std::nullopt}};
  host.routes = {R("198.18.1.40/32", HostVethName("c0ffee"), std::nullopt, 253)};
  NamespacePlan& ns = want.namespaces[kPodNs];
  ns.netns = "/var/run/netns/pod-a";
  ns.label = "pod";
  LinkPlan eni = Named(LinkKind::kMovedByMac, "eth0", 1500);
  eni.mac = kEniMac;
  eni.home_ns = kHostNs;
  eni.parked_name = ParkedEniLinkName("eni-1");
  eni.owned = true;
  ns.links = {eni, Named(LinkKind::kExisting, "lo", 0), Named(LinkKind::kVethPeer, "veth1", 1500)};
  ns.addresses = {{"eth0", P("198.18.1.40/24")}};
  auto via_veth = [](const char* dst) {
    RoutePlan r = R(dst, "veth1", "169.254.1.1");
    r.src = InetAddr(Ip("198.18.1.40"));
    return r;
  };
  ns.routes = {R("0.0.0.0/0", "eth0", "198.18.1.253"), R("169.254.1.1/32", "veth1", std::nullopt, 253),
               via_veth("198.18.1.11/32"), via_veth("198.19.128.0/20"), via_veth("169.254.20.10/32"),
               via_veth("100.100.100.200/32")};
  ns.neighbors = {GatewayNeighbor("veth1")};
  want.report.interfaces = {{kHostNs, HostVethName("c0ffee"), false}, {kPodNs, "eth0", true}, {kPodNs, "veth1", true}};
  want.report.ip = P("198.18.1.40/24");
  want.report.gateway = InetAddr(Ip("198.18.1.253"));
  want.report.ip_interface = 1;

  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(plan.namespaces[i].links, want.namespaces[i].links) << i;
    EXPECT_EQ(plan.namespaces[i].routes, want.namespaces[i].routes) << i;
  }
  EXPECT_EQ(plan, want);
}

TEST(PlanExclusiveEniPod, TheNodeOnceEvenWhenAHostStackCidrRepeatsIt) {
  PodNetwork pod = Pod();
  pod.host_stack_cidrs = {Ipv4Cidr::Parse("198.18.1.11/32").value()};
  ExclusiveEniFacts f;
  f.node_ip = Ip("198.18.1.11");
  WiringPlan plan = PlanExclusiveEniPod(pod, PodAddrs{Ip("198.18.0.10"), kEniMac}, f);
  int n = 0;
  for (const auto& r : plan.namespaces[kPodNs].routes) n += r.dst == P("198.18.1.11/32");
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(plan.complete) << "without the vSwitch the plan only serves removal";
}

// The CNI result comes from the plan: for the shared ENI it is exactly what
// BuildCniResult (layout.h) has always reported.
TEST(CniResultFromPlan, SharedPlanReportsWhatBuildCniResultDoes) {
  SharedEniFacts f;
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  f.host_netns = "node";
  WiringPlan plan = PlanSharedEniPod(Pod(), PodAddrs{Ip("198.18.0.10"), kEniMac}, f);
  MacAddr host_mac = MacAddr::Parse("0a:00:00:00:00:01").value();
  MacAddr pod_mac = MacAddr::Parse("0a:00:00:00:00:02").value();
  cni::CniResult got = CniResultFromPlan(plan, {host_mac, pod_mac});
  cni::CniResult want = BuildCniResult(
      {HostVethName("c0ffee"), host_mac, "eth0", pod_mac, "/var/run/netns/pod-a", Ip("198.18.0.10")});
  EXPECT_EQ(got, want);
}

TEST(Describe, NamesRulesRoutesAndNeighboursAsChecksSayThem) {
  EXPECT_EQ(Describe(RulePlan{2048, P("198.18.0.10/32"), std::nullopt, 1003, true}),
            "rule 'from 198.18.0.10 lookup 1003' (priority 2048)");
  EXPECT_EQ(Describe(RulePlan{512, std::nullopt, P("198.18.0.10/32"), netlink::kMainTable, true}),
            "rule 'to 198.18.0.10 lookup main' (priority 512)");
  RoutePlan def = R("0.0.0.0/0", "eth1", "198.18.0.253");
  def.table = 1003;
  def.onlink = true;
  EXPECT_EQ(Describe(def), "default route via 198.18.0.253 dev eth1 onlink table 1003");
  EXPECT_EQ(Describe(R("169.254.20.10/32", "veth1", "169.254.1.1")), "route 169.254.20.10/32 via 169.254.1.1 dev veth1");
  EXPECT_EQ(Describe(GatewayNeighbor("eth0"), "0a:00:00:00:00:01"),
            "permanent neighbour 169.254.1.1 -> 0a:00:00:00:00:01 on eth0");
}

TEST(ParsePodAddrs, NamesThePodAndTheBadField) {
  PodNetwork pod = Pod();
  pod.ip.ip = "fd00::1";
  auto r = ParsePodAddrs(pod, "shared-ENI");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("default/a"), std::string::npos) << r.error().ToString();
  EXPECT_NE(r.error().ToString().find("not IPv4"), std::string::npos) << r.error().ToString();
  pod = Pod();
  pod.ip.eni_mac = "nope";
  r = ParsePodAddrs(pod, "shared-ENI");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("'nope'"), std::string::npos) << r.error().ToString();
}

}  // namespace
}  // namespace terway::datapath
