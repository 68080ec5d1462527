// SharedEniDatapath against the real kernel, in a tiny world this test builds
// from namespaces (no vpcsim):
//
//   pod netns(es)  eth0 ──veth── tw<hash>  node netns  eth1 ──veth── vsw0  vswitch netns
//                                          (the "ENI": MAC 02:00:00:00:e0:01,  198.18.0.253/24: the
//                                           DOWN, no address, as an attached    vSwitch gateway; pod IPs
//                                           ENI appears on an instance)         -> ENI MAC as permanent
//                                                                               neighbours, as the VPC
//                                                                               router keeps them
// Every namespace is removed by the fixture's destructor, also on failure.
#include "shared_eni_root_fixture.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the fixture and its helpers

TEST_F(SharedEniRoot, EnsureWiresThePodAndTrafficLeavesThroughTheEni) {
  auto pod = MakePod("a", "198.18.0.10");
  auto r = dp_->Ensure(pod);
  ASSERT_OK(r);
  ASSERT_EQ(r->interfaces.size(), 2u);
  EXPECT_EQ(r->interfaces[0].name, HostVethName(pod.container_id));
  EXPECT_EQ(r->interfaces[0].sandbox, "");
  EXPECT_EQ(r->interfaces[1].name, "eth0");
  EXPECT_EQ(r->interfaces[1].sandbox, pod.netns);
  EXPECT_FALSE(r->interfaces[1].mac.empty());
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_EQ(r->ips[0].address, "198.18.0.10/32");
  EXPECT_EQ(r->ips[0].interface, 1);

  // The pod's side as a user would inspect it.
  std::string pod_routes = Capture("ip -n " + PodNs(pod) + " route");
  EXPECT_TRUE(Contains(pod_routes, "default via 169.254.1.1 dev eth0")) << pod_routes;
  EXPECT_TRUE(Contains(pod_routes, "169.254.1.1 dev eth0 proto static scope link")) << pod_routes;
  std::string neigh = Capture("ip -n " + PodNs(pod) + " neigh show 169.254.1.1");
  EXPECT_TRUE(Contains(neigh, r->interfaces[0].mac) && Contains(neigh, "PERMANENT")) << neigh;
  EXPECT_TRUE(Contains(Capture("ip -n " + node_ + " link show eth1"), "state UP"));

  long before = EniTxPackets();
  EXPECT_TRUE(Ping(pod)) << "pod cannot reach the vSwitch gateway\nrules:\n" << Rules() << "routes:\n" << AllRoutes();
  EXPECT_GE(EniTxPackets() - before, 2) << "the echo requests did not leave through the ENI link";
  // The far side saw the pod's own address as the source (the VPC would drop
  // anything else on this ENI).
  std::string seen = Capture("ip netns exec " + vsw_ + " nft list chain ip seen in");
  EXPECT_TRUE(Contains(seen, "ip saddr 198.18.0.10 icmp type echo-request counter packets 2")) << seen;
  ASSERT_OK(dp_->Check(pod));
}

// Bandwidth through the datapath: Ensure applies, changes and clears the
// shaping on re-Ensure; Check verifies the rates; Remove and GC delete the
// pod's IFB. (Rates under real traffic: tests/root/qos and
// tests/e2e/bandwidth.)
TEST_F(SharedEniRoot, BandwidthFollowsThePodNetworkAndLeavesNothing) {
  auto pod = MakePod("a", "198.18.0.10");
  cni::Bandwidth bw;
  bw.ingress_rate = 10'000'000;
  bw.ingress_burst = 1'000'000;
  bw.egress_rate = 20'000'000;
  bw.egress_burst = 1'000'000;
  pod.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));
  const std::string veth = HostVethName(pod.container_id);
  const std::string ifb = PodIfbName(pod.container_id);
  EXPECT_TRUE(Contains(Capture("tc -n " + node_ + " qdisc show dev " + veth), "rate 10Mbit"));
  EXPECT_TRUE(Contains(Capture("tc -n " + node_ + " qdisc show dev " + ifb), "rate 20Mbit"));
  EXPECT_TRUE(Contains(Capture("ip -n " + node_ + " link show " + ifb), "terway-pod-ifb:198.18.0.10:"));
  EXPECT_TRUE(Ping(pod));

  // The limit changes: Check names the stale rate, Ensure updates it.
  pod.bandwidth->egress_rate = 50'000'000;
  auto stale = dp_->Check(pod);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(Contains(stale.error().ToString(), "egress tbf rate is 20.000 Mbit/s, want 50.000 Mbit/s"))
      << stale.error().ToString();
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));
  EXPECT_TRUE(Contains(Capture("tc -n " + node_ + " qdisc show dev " + ifb), "rate 50Mbit"));

  // The limit is dropped: no qdisc, filter or IFB of ours stays.
  pod.bandwidth.reset();
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));
  EXPECT_FALSE(Contains(Links(), ifb));
  std::string qd = Capture("tc -n " + node_ + " qdisc show dev " + veth);
  EXPECT_FALSE(Contains(qd, "tbf") || Contains(qd, "clsact")) << qd;

  // Remove deletes the IFB with the veth.
  pod.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(pod));
  EXPECT_TRUE(Contains(Links(), ifb));
  ASSERT_OK(dp_->Remove(pod));
  EXPECT_FALSE(Contains(Links(), ifb));
  EXPECT_FALSE(Contains(Links(), veth));

  // GC: a vanished pod's IFB goes, a live pod's stays.
  auto live = MakePod("b", "198.18.0.11");
  live.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(live));
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_EQ(Sh("ip netns del " + PodNs(pod)), 0);
  auto removed = dp_->CollectGarbage({live.container_id});
  ASSERT_OK(removed);
  EXPECT_FALSE(Contains(Links(), ifb));
  EXPECT_TRUE(Contains(Links(), PodIfbName(live.container_id)));
  bool reported = false;
  for (const auto& line : *removed) reported = reported || Contains(line, "ifb " + ifb);
  EXPECT_TRUE(reported);
  ASSERT_OK(dp_->Check(live));
}

TEST_F(SharedEniRoot, EnsureTwiceIsHarmless) {
  auto pod = MakePod("a", "198.18.0.10");
  auto first = dp_->Ensure(pod);
  ASSERT_OK(first);
  auto second = dp_->Ensure(pod);
  ASSERT_OK(second);
  EXPECT_EQ(*first, *second);
  std::string rules = Rules();
  EXPECT_TRUE(Contains(rules, "512:\tfrom all to 198.18.0.10 lookup main")) << rules;
  size_t n = 0;
  for (size_t at = rules.find("198.18.0.10"); at != std::string::npos; at = rules.find("198.18.0.10", at + 1)) ++n;
  EXPECT_EQ(n, 2u) << rules;
  ASSERT_OK(dp_->Check(pod));
  EXPECT_TRUE(Ping(pod));
}

TEST_F(SharedEniRoot, CheckNamesTheMissingRuleAndEnsureRepairsIt) {
  auto pod = MakePod("a", "198.18.0.10");
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));
  ASSERT_EQ(Sh("ip -n " + node_ + " rule del from 198.18.0.10 priority 2048"), 0);
  auto c = dp_->Check(pod);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "rule 'from 198.18.0.10 lookup")) << c.error().ToString();
  EXPECT_TRUE(Contains(c.error().ToString(), "missing")) << c.error().ToString();
  EXPECT_TRUE(Contains(c.error().ToString(), "pod-a")) << c.error().ToString();

  // Check changed nothing; Ensure repairs.
  EXPECT_FALSE(Contains(Rules(), "from 198.18.0.10"));
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));

  // Another kind of damage: the pod's neighbour entry.
  ASSERT_EQ(Sh("ip -n " + PodNs(pod) + " neigh del 169.254.1.1 dev eth0"), 0);
  c = dp_->Check(pod);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "neighbour 169.254.1.1")) << c.error().ToString();
}

TEST_F(SharedEniRoot, EnsureRebuildsAPairThatIsNoLongerThePods) {
  auto pod = MakePod("a", "198.18.0.10");
  ASSERT_OK(dp_->Ensure(pod));
  // The pod's end renamed away: the host veth still carries our alias, but
  // the pod has no eth0.
  ASSERT_EQ(Sh("ip -n " + PodNs(pod) + " link set eth0 down && ip -n " + PodNs(pod) + " link set eth0 name eth9"), 0);
  auto c = dp_->Check(pod);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "eth0 is missing in the pod")) << c.error().ToString();
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(dp_->Check(pod));
  EXPECT_FALSE(Contains(Capture("ip -n " + PodNs(pod) + " link show"), "eth9"));
  EXPECT_TRUE(Ping(pod));
}

TEST_F(SharedEniRoot, RemoveTwiceLeavesNothingOfThePod) {
  auto pod = MakePod("a", "198.18.0.10");
  auto r = dp_->Ensure(pod);
  ASSERT_OK(r);
  std::string veth = r->interfaces[0].name;
  ASSERT_OK(dp_->Remove(pod));
  ASSERT_OK(dp_->Remove(pod));
  EXPECT_FALSE(Contains(Rules(), "198.18.0.10")) << Rules();
  EXPECT_FALSE(Contains(AllRoutes(), "198.18.0.10")) << AllRoutes();
  EXPECT_FALSE(Contains(Links(), veth)) << Links();
  EXPECT_FALSE(Contains(Capture("ip -n " + PodNs(pod) + " link show"), "eth0"));
  EXPECT_FALSE(dp_->Check(pod).ok());
  // The ENI's table stays (see Remove): other pods may use it.
  EXPECT_TRUE(Contains(AllRoutes(), "default via 198.18.0.253 dev eth1")) << AllRoutes();
}

TEST_F(SharedEniRoot, RemoveSucceedsAfterThePodNetnsIsGone) {
  auto pod = MakePod("a", "198.18.0.10");
  ASSERT_OK(dp_->Ensure(pod));
  ASSERT_OK(netlink::DeleteNamedNetns(PodNs(pod)));
  ASSERT_OK(dp_->Remove(pod));
  ASSERT_OK(dp_->Remove(pod));
  EXPECT_FALSE(Contains(Rules(), "198.18.0.10")) << Rules();
  auto c = dp_->Check(pod);
  EXPECT_FALSE(c.ok());
}

TEST_F(SharedEniRoot, EnsureNamesAnEniThatIsNotAttached) {
  auto pod = MakePod("a", "198.18.0.10");
  pod.ip.eni_mac = "02:00:00:00:e0:99";
  auto r = dp_->Ensure(pod);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.error().ToString(), "02:00:00:00:e0:99")) << r.error().ToString();
  EXPECT_TRUE(Contains(r.error().ToString(), "attached")) << r.error().ToString();
  EXPECT_FALSE(Contains(Links(), HostVethName(pod.container_id)));
}

TEST_F(SharedEniRoot, GarbageCollectionRemovesVanishedPods) {
  auto a = MakePod("a", "198.18.0.10");
  auto b = MakePod("b", "198.18.0.11");
  auto c = MakePod("c", "198.18.0.12");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Ensure(b));
  ASSERT_OK(dp_->Ensure(c));
  auto links = dp_->ListPodLinks();
  ASSERT_OK(links);
  EXPECT_EQ(links->size(), 3u);
  // c vanished without a DEL: its netns (and veth pair) is gone, its rules stay.
  ASSERT_OK(netlink::DeleteNamedNetns(PodNs(c)));

  auto removed = dp_->CollectGarbage({b.container_id});
  ASSERT_OK(removed);
  EXPECT_FALSE(removed->empty());
  std::string rules = Rules();
  EXPECT_FALSE(Contains(rules, "198.18.0.10")) << rules;
  EXPECT_FALSE(Contains(rules, "198.18.0.12")) << rules;
  EXPECT_TRUE(Contains(rules, "198.18.0.11")) << rules;
  EXPECT_FALSE(Contains(Links(), HostVethName(a.container_id)));
  EXPECT_FALSE(Contains(AllRoutes(), "198.18.0.10"));
  links = dp_->ListPodLinks();
  ASSERT_OK(links);
  ASSERT_EQ(links->size(), 1u);
  EXPECT_EQ((*links)[0].container_id, b.container_id);
  ASSERT_OK(dp_->Check(b));
  EXPECT_TRUE(Ping(b));

  // Nothing left to collect.
  removed = dp_->CollectGarbage({b.container_id});
  ASSERT_OK(removed);
  EXPECT_TRUE(removed->empty());
}

}  // namespace
}  // namespace terway::datapath
