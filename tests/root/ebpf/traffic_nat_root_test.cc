// NAT done by the host stack, with the eBPF datapath in the way: a client
// pod reaches a Service VIP that an nftables rule in the node namespace
// DNATs (as kube-proxy does) to a backend. The client's packets take the
// stack (the VIP is a stack prefix); the backend's replies must take it too,
// or conntrack never undoes the DNAT and the client gets an answer from the
// backend's address, which its socket does not take: the connection never
// establishes. The programs ask conntrack before redirecting
// (bpf/lib/dp_ct.h) and hand a tracked flow to the stack.
//
// Topology: traffic_topology.h; all of it, the nftables table included,
// lives in namespaces the test creates.
#include "root/ebpf/traffic_topology.h"

namespace terway::ebpf {
namespace {

using terway::testing::Capture;
using testing::Child;
using testing::Sh;
using testing::TcpEcho;
using testing::UdpEcho;

constexpr const char* kVip = "10.96.0.10";

class EbpfTrafficNat : public testing::EbpfTraffic {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(EbpfTraffic::SetUp());
    if (IsSkipped()) return;
    ASSERT_NO_FATAL_FAILURE(StackFallback());
    ASSERT_TRUE(dp_->SyncStackPrefixes({{*Ipv4Cidr::Parse("198.18.0.10/32"), StackPrefixKind::kNode},
                                        {*Ipv4Cidr::Parse("10.96.0.0/12"), StackPrefixKind::kService}})
                    .ok());
    // The node reaches the VPC host through the gateway, as its ENI's
    // routes would; the VPC answers the pods (their neighbours are set).
    const std::string N = "ip -n " + node_ + " ";
    ASSERT_EQ(Sh(N + "route add 198.18.0.1/32 dev eni0 scope link && " + N +
                 "route add 198.18.1.5/32 via 198.18.0.1 dev eni0"),
              0);
  }

  // kube-proxy's part, in the node namespace only: VIP:port -> backend.
  void Dnat(const std::string& proto, int vip_port, const std::string& backend, int backend_port) {
    const std::string rules =
        "table ip twtest {\n chain pre {\n  type nat hook prerouting priority dstnat;\n  ip daddr " +
        std::string(kVip) + " " + proto + " dport " + std::to_string(vip_port) + " dnat to " + backend + ":" +
        std::to_string(backend_port) + "\n }\n}\n";
    ASSERT_EQ(Sh("echo '" + rules + "' | ip netns exec " + node_ + " nft -f -"), 0) << rules;
  }
};

TEST_F(EbpfTrafficNat, TcpToAServiceWhoseBackendIsOnTheSameNode) {
  ASSERT_NO_FATAL_FAILURE(Dnat("tcp", 80, "198.18.0.21", 5557));
  Child echo({"ip", "netns", "exec", b_, "socat", "TCP-LISTEN:5557,fork,reuseaddr", "EXEC:cat"});
  Counters before = Count();
  EXPECT_NE(TcpEcho(a_, kVip, 80, "via-vip"), "")
      << "the backend's reply must cross the stack to be un-DNATed: " << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.ct_to_stack - before.ct_to_stack, 2u) << "the backend's SYN-ACK and data, at its veth";
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << "no packet of the DNATed flow was redirected";
}

TEST_F(EbpfTrafficNat, UdpToAServiceWhoseBackendIsOnTheSameNode) {
  ASSERT_NO_FATAL_FAILURE(Dnat("udp", 53, "198.18.0.21", 5558));
  Child echo({"ip", "netns", "exec", b_, "socat", "UDP-LISTEN:5558,fork,reuseaddr", "EXEC:cat"});
  Counters before = Count();
  EXPECT_NE(UdpEcho(a_, kVip, 53, "via-vip-udp"), "") << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.ct_to_stack - before.ct_to_stack, 1u);
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod);
}

// The backend behind the VPC: its reply arrives on the ENI, addressed to
// the client pod, and the ENI program must leave it to the stack.
TEST_F(EbpfTrafficNat, TcpToAServiceWhoseBackendIsInTheVpc) {
  ASSERT_NO_FATAL_FAILURE(Dnat("tcp", 81, "198.18.1.5", 5559));
  Child echo({"ip", "netns", "exec", vpc_, "socat", "TCP-LISTEN:5559,bind=198.18.1.5,fork,reuseaddr", "EXEC:cat"});
  Counters before = Count();
  EXPECT_NE(TcpEcho(a_, kVip, 81, "via-vip-vpc"), "") << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.ct_to_stack - before.ct_to_stack, 2u) << "the backend's replies, at the ENI";
  EXPECT_EQ(after.eni_to_pod, before.eni_to_pod) << "no reply was redirected into the client past conntrack";
}

TEST_F(EbpfTrafficNat, UdpToAServiceWhoseBackendIsInTheVpc) {
  ASSERT_NO_FATAL_FAILURE(Dnat("udp", 54, "198.18.1.5", 5560));
  Child echo({"ip", "netns", "exec", vpc_, "socat", "UDP-LISTEN:5560,bind=198.18.1.5,fork,reuseaddr", "EXEC:cat"});
  Counters before = Count();
  EXPECT_NE(UdpEcho(a_, kVip, 54, "via-vip-vpc-udp"), "") << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.ct_to_stack - before.ct_to_stack, 1u);
  EXPECT_EQ(after.eni_to_pod, before.eni_to_pod);
}

// A flow the stack tracks stays on the stack after its pod stops being
// policed (its entry outlives the flag), and a new flow takes the fast path.
TEST_F(EbpfTrafficNat, AFlowStartedWhilePolicedStaysOnTheStackAfterTheFlagIsCleared) {
  Endpoint policed = ep_b_;
  policed.shaped = true;
  ASSERT_TRUE(dp_->UpsertEndpoint(policed).ok());
  // The policy table's part that matters here: it uses conntrack, so the
  // node tracks what it forwards.
  ASSERT_EQ(Sh("echo 'table ip twtest {\n chain forward_ct {\n  type filter hook forward priority 0;\n  ct state "
               "established,related accept\n }\n}' | ip netns exec " + node_ + " nft -f -"),
            0);
  Child echo({"ip", "netns", "exec", b_, "socat", "UDP-LISTEN:5561,fork,reuseaddr", "EXEC:cat"});
  // One UDP flow with a fixed source port, so both exchanges are the same
  // conntrack entry; retried until a deadline (the server may be starting).
  auto exchange = [&](const std::string& msg) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      std::string out = Capture("echo " + msg + " | ip netns exec " + a_ +
                                " socat -T1 - UDP:198.18.0.21:5561,sourceport=40001 2>/dev/null");
      if (out.find(msg) != std::string::npos) return out;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::string();
  };
  ASSERT_NE(exchange("policed").find("policed"), std::string::npos) << ToString(Count());
  ASSERT_TRUE(dp_->UpsertEndpoint(ep_b_).ok());  // the policy no longer selects b
  Counters before = Count();
  EXPECT_NE(exchange("still-tracked").find("still-tracked"), std::string::npos) << ToString(Count());
  Counters after = Count();
  EXPECT_GE(after.ct_to_stack - before.ct_to_stack, 2u) << "request and reply of the tracked flow";
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod);
  // Another source port: a flow conntrack never saw, fast.
  EXPECT_NE(UdpEcho(a_, "198.18.0.21", 5561, "new-flow"), "");
  EXPECT_GE(Count().pod_to_pod - after.pod_to_pod, 2u);
}

}  // namespace
}  // namespace terway::ebpf
