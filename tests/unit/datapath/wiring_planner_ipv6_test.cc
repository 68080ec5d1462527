// The planners' dual-stack side: a pod with PodNetwork::ipv6 gets its IPv4
// wiring unchanged plus an exact IPv6 twin, per mode. (IPv4-only plans are
// pinned, unchanged, by wiring_planner_test.cc's exact plans.)
#include <sys/socket.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "datapath/wiring_planner.h"

namespace terway::datapath {
namespace {

using netlink::InetAddr;
using netlink::InetPrefix;

Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }
Ipv6Addr Ip6(const char* s) { return Ipv6Addr::Parse(s).value(); }
InetPrefix P(const char* s) { return InetPrefix::Parse(s).value(); }
const MacAddr kEniMac = MacAddr::Parse("02:00:00:00:e0:01").value();
const std::string kVeth = HostVethName("c0ffee");

PodNetwork DualStackPod() {
  PodNetwork p;
  p.container_id = "c0ffee";
  p.netns = "/var/run/netns/pod-a";
  p.ifname = "eth0";
  p.pod_namespace = "default";
  p.pod_name = "a";
  p.ip.ip = "198.18.0.10";
  p.ip.eni_id = "eni-1";
  p.ip.eni_mac = "02:00:00:00:e0:01";
  p.ipv6 = PodIpv6{"2001:db8:1::10", "2001:db8:1::fffd"};
  return p;
}

PodAddrs Addrs(const PodNetwork& pod) { return ParsePodAddrs(pod, "test").value(); }

RoutePlan R(const char* dst, const std::string& dev, std::optional<const char*> via = std::nullopt) {
  RoutePlan r;
  r.dst = P(dst);
  r.dev = dev;
  if (via) r.via = InetAddr::Parse(*via).value();
  return r;
}

SysctlPlan S(const std::string& key, const char* value) { return {key, value, std::nullopt}; }

// The IPv4-only plan of the same pod, to which the dual-stack plan adds.
template <typename Plan, typename Facts>
WiringPlan Ipv4Only(Plan plan, const Facts& f) {
  PodNetwork pod = DualStackPod();
  pod.ipv6.reset();
  return plan(pod, Addrs(pod), f);
}

TEST(PlanSharedEniPodIpv6, AddsTheIpv6TwinOfEveryObject) {
  SharedEniFacts f;
  f.host_netns = "node";
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  const PodNetwork pod = DualStackPod();
  WiringPlan plan = PlanSharedEniPod(pod, Addrs(pod), f);

  WiringPlan want = Ipv4Only(PlanSharedEniPod, f);
  NamespacePlan& host = want.namespaces[kHostNs];
  host.sysctls.push_back(S("net/ipv6/conf/all/forwarding", "1"));
  host.sysctls.push_back(S("net/ipv6/conf/" + kVeth + "/disable_ipv6", "0"));
  host.sysctls.push_back(S("net/ipv6/conf/" + kVeth + "/accept_dad", "0"));
  host.sysctls.push_back(S("net/ipv6/conf/eth1/disable_ipv6", "0"));
  host.sysctls.push_back(S("net/ipv6/conf/eth1/proxy_ndp", "1"));
  host.sysctls.push_back(S("net/ipv6/neigh/eth1/proxy_delay", "0"));
  RoutePlan table = R("::/0", "eth1", "2001:db8:1::fffd");
  table.table = 1003;
  table.onlink = true;  // a global gateway: the ENI has no prefix holding it
  host.routes.push_back(table);
  host.routes.push_back(R("2001:db8:1::10/128", kVeth));
  host.rules.push_back({512, std::nullopt, P("2001:db8:1::10/128"), netlink::kMainTable, true});
  host.rules.push_back({2048, P("2001:db8:1::10/128"), std::nullopt, 1003, true});
  host.proxy_neighbors = {{"eth1", InetAddr(Ip6("2001:db8:1::10")), true}};
  NamespacePlan& ns = want.namespaces[kPodNs];
  ns.sysctls = {S("net/ipv6/conf/lo/disable_ipv6", "0"), S("net/ipv6/conf/eth0/disable_ipv6", "0"),
                S("net/ipv6/conf/eth0/accept_dad", "0")};
  ns.addresses.push_back({"eth0", P("2001:db8:1::10/128"), true});
  ns.routes.push_back(R("::/0", "eth0", "fe80::1"));  // link-local next hop: no onlink
  NeighborPlan gw;
  gw.dev = "eth0";
  gw.ip = InetAddr(Ip6("fe80::1"));
  gw.mac_of = kVeth;
  gw.mac_of_ns = kHostNs;
  ns.neighbors.push_back(gw);
  want.report.ipv6 = CniReportPlan::Ipv6{P("2001:db8:1::10/128"), InetAddr(Ip6("fe80::1"))};

  for (size_t i = 0; i < 2; ++i) {
    const auto& got = plan.namespaces[i];
    const auto& exp = want.namespaces[i];
    EXPECT_EQ(got.sysctls, exp.sysctls) << exp.label;
    EXPECT_EQ(got.addresses, exp.addresses) << exp.label;
    EXPECT_EQ(got.routes, exp.routes) << exp.label;
    EXPECT_EQ(got.rules, exp.rules) << exp.label;
    EXPECT_EQ(got.neighbors, exp.neighbors) << exp.label;
    EXPECT_EQ(got.proxy_neighbors, exp.proxy_neighbors) << exp.label;
  }
  EXPECT_EQ(plan, want);
}

TEST(PlanSharedEniPodIpv6, ALinkLocalVswitchGatewayNeedsNoOnlink) {
  SharedEniFacts f;
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  PodNetwork pod = DualStackPod();
  pod.ipv6->gateway = "fe80::3e:ff:fe00:1";
  WiringPlan plan = PlanSharedEniPod(pod, Addrs(pod), f);
  const auto& routes = plan.namespaces[kHostNs].routes;
  auto it = std::find_if(routes.begin(), routes.end(), [](const RoutePlan& r) { return r.dst == P("::/0"); });
  ASSERT_NE(it, routes.end());
  EXPECT_EQ(it->via, InetAddr(Ip6("fe80::3e:ff:fe00:1")));
  EXPECT_FALSE(it->onlink);
  EXPECT_EQ(it->table, 1003u);
}

TEST(PlanSharedEniPodIpv6, RemovalPlanOwnsTheIpv6RulesAndProxyEntryWithoutEniFacts) {
  PodNetwork pod = DualStackPod();
  WiringPlan plan = PlanSharedEniPod(pod, Addrs(pod), SharedEniFacts{});
  EXPECT_FALSE(plan.complete);
  const auto& host = plan.namespaces[kHostNs];
  int v6_rules = 0;
  for (const auto& r : host.rules) v6_rules += r.owned && (r.from ? r.from : r.to)->family() == AF_INET6;
  EXPECT_EQ(v6_rules, 2);
  ASSERT_EQ(host.proxy_neighbors.size(), 1u);
  EXPECT_TRUE(host.proxy_neighbors[0].owned);
  EXPECT_EQ(host.proxy_neighbors[0].dev, "");  // removal deletes it on whatever link holds it
  for (const auto& r : host.routes) EXPECT_EQ(r.table, netlink::kMainTable) << "never the ENI's table";
}

TEST(PlanExclusiveEniPodIpv6, PutsTheIpv6OnTheEniAndLeavesTheNodeAlone) {
  PodNetwork pod = DualStackPod();
  pod.ip.ip = "198.18.1.40";
  ExclusiveEniFacts f;
  f.host_netns = "node";
  f.node_ip = Ip("198.18.1.11");
  f.vswitch = ExclusiveEniFacts::Vswitch{Ip("198.18.1.253"), Ipv4Cidr::Parse("198.18.1.0/24").value()};
  WiringPlan plan = PlanExclusiveEniPod(pod, Addrs(pod), f);

  WiringPlan want = [&] {
    PodNetwork v4 = pod;
    v4.ipv6.reset();
    return PlanExclusiveEniPod(v4, Addrs(v4), f);
  }();
  NamespacePlan& ns = want.namespaces[kPodNs];
  ns.sysctls = {S("net/ipv6/conf/lo/disable_ipv6", "0"), S("net/ipv6/conf/eth0/disable_ipv6", "0"),
                S("net/ipv6/conf/eth0/accept_dad", "0"), S("net/ipv6/conf/eth0/accept_ra", "0")};
  ns.addresses.push_back({"eth0", P("2001:db8:1::10/128"), true});
  RoutePlan def = R("::/0", "eth0", "2001:db8:1::fffd");
  def.onlink = true;
  ns.routes.push_back(def);
  want.report.ipv6 = CniReportPlan::Ipv6{P("2001:db8:1::10/128"), InetAddr(Ip6("2001:db8:1::fffd"))};

  EXPECT_EQ(plan.namespaces[kHostNs], want.namespaces[kHostNs]) << "IPv6 never crosses the node";
  EXPECT_EQ(plan.namespaces[kPodNs].sysctls, ns.sysctls);
  EXPECT_EQ(plan.namespaces[kPodNs].routes, ns.routes);
  EXPECT_EQ(plan, want);
}

TEST(CniResultFromPlanIpv6, ReportsBothAddressesWithTheirGatewaysOnThePodInterface) {
  SharedEniFacts f;
  f.host_netns = "node";
  f.eni = SharedEniFacts::Eni{"eth1", 3, Ip("198.18.0.253")};
  const PodNetwork pod = DualStackPod();
  cni::CniResult r = CniResultFromPlan(PlanSharedEniPod(pod, Addrs(pod), f), {MacAddr(), MacAddr()});
  ASSERT_EQ(r.ips.size(), 2u);
  EXPECT_EQ(r.ips[0], (cni::IpConfig{"198.18.0.10/32", "169.254.1.1", 1}));
  EXPECT_EQ(r.ips[1], (cni::IpConfig{"2001:db8:1::10/128", "fe80::1", 1}));
  ASSERT_EQ(r.routes.size(), 2u);
  EXPECT_EQ(r.routes[1].dst, "::/0");
  EXPECT_EQ(r.routes[1].gw, "fe80::1");
}

TEST(ParsePodAddrsIpv6, RefusesAddressesAPodCannotHoldNamingThePod) {
  for (const char* bad : {"", "nope", "::", "::1", "fe80::10", "ff02::1", "198.18.0.10"}) {
    PodNetwork pod = DualStackPod();
    pod.ipv6->ip = bad;
    auto r = ParsePodAddrs(pod, "shared-ENI");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().ToString().find("default/a"), std::string::npos) << r.error().ToString();
  }
  for (const char* bad : {"", "::", "ff02::2"}) {
    PodNetwork pod = DualStackPod();
    pod.ipv6->gateway = bad;
    auto r = ParsePodAddrs(pod, "shared-ENI");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().ToString().find("ipv6-gateway"), std::string::npos) << r.error().ToString();
  }
  PodNetwork pod = DualStackPod();
  auto ok = ParsePodAddrs(pod, "shared-ENI");
  ASSERT_TRUE(ok.ok());
  ASSERT_TRUE(ok->ipv6);
  EXPECT_EQ(ok->ipv6->ip, Ip6("2001:db8:1::10"));
  pod.ipv6.reset();
  EXPECT_FALSE(ParsePodAddrs(pod, "shared-ENI")->ipv6);
}

TEST(DescribeIpv6, NamesIpv6ObjectsAsChecksSayThem) {
  EXPECT_EQ(Describe(RulePlan{2048, P("2001:db8:1::10/128"), std::nullopt, 1003, true}),
            "rule 'from 2001:db8:1::10 lookup 1003' (priority 2048)");
  EXPECT_EQ(Describe(ProxyNeighborPlan{"eth1", InetAddr(Ip6("2001:db8:1::10")), true}),
            "proxy neighbour 2001:db8:1::10 on eth1");
}

}  // namespace
}  // namespace terway::datapath
