// The eBPF datapath with real traffic (topology: traffic_topology.h).
// Fast-path proofs use TCP and UDP: ICMP is not something conntrack can be
// asked about, so it takes the stack (IcmpTakesTheStack).
#include "root/ebpf/traffic_topology.h"

namespace terway::ebpf {
namespace {

using testing::Child;
using testing::EbpfTraffic;
using testing::Ping;
using testing::Sh;
using testing::TcpEcho;
using testing::UdpEcho;
using terway::testing::Capture;

TEST_F(EbpfTraffic, PodToPodOnTheNodeGoesPeerToPeer) {
  Child tcp({"ip", "netns", "exec", b_, "socat", "TCP-LISTEN:5555,fork,reuseaddr", "EXEC:cat"});
  Child udp({"ip", "netns", "exec", b_, "socat", "UDP-LISTEN:5555,fork,reuseaddr", "EXEC:cat"});
  Counters before = Count();
  EXPECT_NE(TcpEcho(a_, "198.18.0.21", 5555, "hello-b"), "") << ToString(Count());
  EXPECT_NE(UdpEcho(a_, "198.18.0.21", 5555, "hello-b-udp"), "") << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.pod_to_pod - before.pod_to_pod, 6u) << "handshake, data and the UDP pair, both ways";
  EXPECT_EQ(after.ct_to_stack, 0u) << "no flow of the test crossed the stack, so conntrack tracks none";
  EXPECT_EQ(after.drop_spoof, 0u);
}

TEST_F(EbpfTraffic, PodToTheVpcLeavesThroughTheEniAndRepliesComeStraightBack) {
  Child echo({"ip", "netns", "exec", vpc_, "socat", "TCP-LISTEN:5556,bind=198.18.1.5,fork,reuseaddr", "EXEC:cat"});
  EXPECT_NE(TcpEcho(b_, "198.18.1.5", 5556, "hello-vpc"), "") << ToString(Count());
  Counters c = Count();
  EXPECT_GE(c.pod_to_eni, 3u);
  EXPECT_GE(c.eni_to_pod, 2u);
  // The gateway was resolved by the node's neighbour table on the ENI.
  EXPECT_NE(Capture("ip -n " + node_ + " neigh show dev eni0").find("198.18.0.1 "), std::string::npos);
}

TEST_F(EbpfTraffic, ASpoofedSourceIsDroppedAtTheHostVeth) {
  Child echo({"ip", "netns", "exec", vpc_, "socat", "UDP-LISTEN:5556,bind=198.18.1.5,fork,reuseaddr", "EXEC:cat"});
  // Pod a takes pod b's address as well and sends from it.
  ASSERT_EQ(Sh("ip -n " + a_ + " addr add 198.18.0.21/32 dev eth0"), 0);
  EXPECT_FALSE(Ping(a_, "198.18.1.5", "198.18.0.21"));
  EXPECT_GE(Count().drop_spoof, 2u) << "anti-spoofing comes before every other decision, ICMP too";
  EXPECT_NE(UdpEcho(a_, "198.18.1.5", 5556, "own-address"), "") << "its own address still works";
}

TEST_F(EbpfTraffic, TrafficSurvivesTheLoaderGoingAwayAndANewOneSharesTheMaps) {
  Child tcp({"ip", "netns", "exec", b_, "socat", "TCP-LISTEN:5555,fork,reuseaddr", "EXEC:cat"});
  Child vpc({"ip", "netns", "exec", vpc_, "socat", "UDP-LISTEN:5556,bind=198.18.1.5,fork,reuseaddr", "EXEC:cat"});
  ASSERT_NE(TcpEcho(a_, "198.18.0.21", 5555, "before"), "");
  dp_.reset();  // terwayd is killed: the attached programs keep running
  EXPECT_NE(TcpEcho(a_, "198.18.0.21", 5555, "orphaned"), "");
  EXPECT_NE(UdpEcho(b_, "198.18.1.5", 5556, "orphaned-vpc"), "");
  auto dp = DatapathPrograms::Load(fs_.Options());
  ASSERT_TRUE(dp.ok()) << dp.error().ToString();
  dp_ = std::move(*dp);
  EXPECT_GE(Count().pod_to_pod, 8u) << "the counters of the old programs are the new loader's";
  EXPECT_EQ(Inspect(*node_h_, twa_, Hook::kPodVeth, *dp_)->state, AttachState::kCurrent);
  // What the new terwayd writes reaches the old programs: b leaves the fast path.
  ASSERT_TRUE(dp_->DeleteEndpoint(ep_b_.ip).ok());
  EXPECT_EQ(UdpEcho(b_, "198.18.1.5", 5556, "after-delete", std::chrono::seconds(2)), "")
      << "b's packets are now spoofed (no endpoint), and dropped";
  EXPECT_GE(Count().drop_spoof, 1u);
}

TEST_F(EbpfTraffic, NodeAddressesTakeTheHostStack) {
  // The node answers the pod through its host route, as in veth mode.
  ASSERT_EQ(Sh("ip -n " + node_ + " route add 198.18.0.20/32 dev twa scope link"), 0);
  Counters before = Count();
  ASSERT_TRUE(Ping(a_, "198.18.0.10")) << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.pod_to_stack - before.pod_to_stack, 2u);
  EXPECT_EQ(after.pod_to_eni, before.pod_to_eni) << "the node's address is not sent round through the VPC";
}

TEST_F(EbpfTraffic, PolicedPodsTakeTheHostStack) {
  ASSERT_NO_FATAL_FAILURE(StackFallback());
  Child tcp({"ip", "netns", "exec", b_, "socat", "TCP-LISTEN:5555,fork,reuseaddr", "EXEC:cat"});
  Endpoint policed = ep_b_;
  policed.shaped = true;
  ASSERT_TRUE(dp_->UpsertEndpoint(policed).ok());
  Counters before = Count();
  ASSERT_NE(TcpEcho(a_, "198.18.0.21", 5555, "to-policed"), "") << ToString(Count());
  Counters after = Count();
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << "no packet to or from a policed pod skips the stack";
  EXPECT_GE(after.pod_to_stack - before.pod_to_stack, 6u);
}

// ICMP: conntrack's kfunc answers for TCP and UDP only, and conntrack
// relates ICMP errors to (NATed) flows, so ICMP always takes the stack.
TEST_F(EbpfTraffic, IcmpTakesTheStack) {
  ASSERT_NO_FATAL_FAILURE(StackFallback());
  Counters before = Count();
  ASSERT_TRUE(Ping(a_, "198.18.0.21")) << ToString(Count());
  Counters after = Count();
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod);
  EXPECT_GE(after.ct_unknown_to_stack - before.ct_unknown_to_stack, 4u) << "two requests and two replies";
}

}  // namespace
}  // namespace terway::ebpf
