// The eBPF datapath's programs in the real kernel, on crafted packets
// (BPF_PROG_TEST_RUN): verdict and packet out. The test runs pretend the
// packet arrived on loopback (ifindex 1), so the pod or ENI under test has
// host_ifindex / eni_ifindex 1; redirect targets are only recorded by the
// helpers in a test run, never used, so they may be any number.
#include <bpf/bpf.h>
#include <linux/pkt_cls.h>

#include <gtest/gtest.h>

#include "ebpf/programs.h"
#include "root/ebpf/ebpf_test_env.h"

namespace terway::ebpf {
namespace {

using testing::Frame;
using testing::Ipv4Checksum;
using testing::Nip;

struct Out {
  int retval = -1;
  std::vector<uint8_t> frame;
  const ethhdr* eth() const { return reinterpret_cast<const ethhdr*>(frame.data()); }
  const iphdr* ip() const { return reinterpret_cast<const iphdr*>(frame.data() + sizeof(ethhdr)); }
};

Out TestRun(int prog_fd, const std::vector<uint8_t>& in_frame, uint32_t ifindex = 1) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  Out out;
  out.frame.resize(in_frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in_frame.data(), .data_out = out.frame.data(),
              .data_size_in = static_cast<uint32_t>(in_frame.size()),
              .data_size_out = static_cast<uint32_t>(out.frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = 1);
  int rc = bpf_prog_test_run_opts(prog_fd, &opts);
  EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
  out.retval = static_cast<int>(opts.retval);
  out.frame.resize(opts.data_size_out);
  return out;
}

Endpoint Ep(const char* ip, int host_ifindex, int eni_ifindex, const char* pod_mac, const char* host_mac,
            bool shaped = false) {
  Endpoint e;
  e.ip = *Ipv4Addr::Parse(ip);
  e.host_ifindex = host_ifindex;
  e.eni_ifindex = eni_ifindex;
  e.gateway = *Ipv4Addr::Parse("198.18.0.1");
  e.pod_mac = *MacAddr::Parse(pod_mac);
  e.host_mac = *MacAddr::Parse(host_mac);
  e.shaped = shaped;
  return e;
}

std::string Mac(const unsigned char* m) { return MacAddr(std::array<uint8_t, 6>{m[0], m[1], m[2], m[3], m[4], m[5]}).ToString(); }

class DatapathProgTestRun : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    TERWAY_REQUIRE_BPFFS(fs_);
    auto p = DatapathPrograms::Load(fs_.Options());
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    dp_ = std::move(*p);
    // a: the pod under test, on "veth" 1; b: a pod of the same node; pol: a policed (SHAPED) pod.
    ASSERT_TRUE(dp_->UpsertEndpoint(a_).ok());
    ASSERT_TRUE(dp_->UpsertEndpoint(b_).ok());
    ASSERT_TRUE(dp_->UpsertEndpoint(pol_).ok());
    ASSERT_TRUE(dp_->SyncStackPrefixes({{*Ipv4Cidr::Parse("10.96.0.0/12"), StackPrefixKind::kService},
                                        {*Ipv4Cidr::Parse("198.18.0.10/32"), StackPrefixKind::kNode}})
                    .ok());
    ASSERT_TRUE(dp_->SetPolicySynced(true).ok());  // no pod isolated (a fresh map polices every pod)
  }
  Counters Count() {
    auto c = dp_->ReadCounters();
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    return c.ok() ? *c : Counters{};
  }

  testing::PrivateBpffs fs_;
  std::unique_ptr<DatapathPrograms> dp_;
  Endpoint a_ = Ep("198.18.0.20", 1, 3, "02:00:00:00:00:14", "ee:ee:ee:ee:ee:01");
  Endpoint b_ = Ep("198.18.0.21", 42, 3, "02:00:00:00:00:15", "ee:ee:ee:ee:ee:2a");
  Endpoint pol_ = Ep("198.18.0.22", 43, 3, "02:00:00:00:00:16", "ee:ee:ee:ee:ee:2b", true);
};

TEST_F(DatapathProgTestRun, SpoofedSourcesAreDroppedAndCounted) {
  Out unknown = TestRun(dp_->from_pod_fd(), Frame("198.18.0.99", "198.18.0.21"));
  EXPECT_EQ(unknown.retval, TC_ACT_SHOT);
  Out others = TestRun(dp_->from_pod_fd(), Frame("198.18.0.21", "10.96.0.10"));  // b's address from a's veth
  EXPECT_EQ(others.retval, TC_ACT_SHOT) << "another pod's address is spoofing, even towards the stack";
  Counters c = Count();
  EXPECT_EQ(c.drop_spoof, 2u);
  EXPECT_EQ(c.pod_to_pod + c.pod_to_eni + c.pod_to_stack, 0u);
}

TEST_F(DatapathProgTestRun, PodToLocalPodIsRedirectedToItsPeerAsRouted) {
  auto in = Frame("198.18.0.20", "198.18.0.21", 64);
  Out o = TestRun(dp_->from_pod_fd(), in);
  EXPECT_EQ(o.retval, TC_ACT_REDIRECT);
  ASSERT_EQ(o.frame.size(), in.size());
  EXPECT_EQ(Mac(o.eth()->h_dest), "02:00:00:00:00:15") << "to b's eth0";
  EXPECT_EQ(Mac(o.eth()->h_source), "ee:ee:ee:ee:ee:2a") << "from b's host veth";
  EXPECT_EQ(o.ip()->ttl, 63);
  EXPECT_EQ(Ipv4Checksum(o.ip()), 0) << "header checksum patched with the TTL";
  EXPECT_EQ(o.ip()->saddr, Nip("198.18.0.20"));
  EXPECT_EQ(Count().pod_to_pod, 1u);
}

TEST_F(DatapathProgTestRun, PodToTheVpcLeavesThroughTheEniToTheGateway) {
  auto in = Frame("198.18.0.20", "198.18.9.9", 64);
  Out o = TestRun(dp_->from_pod_fd(), in);
  EXPECT_EQ(o.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(o.ip()->ttl, 63);
  EXPECT_EQ(Ipv4Checksum(o.ip()), 0);
  EXPECT_EQ(Count().pod_to_eni, 1u);
}

TEST_F(DatapathProgTestRun, StackDestinationsPolicedPodsAndNonIpvFourPass) {
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "10.96.0.10")).retval, TC_ACT_UNSPEC) << "Service CIDR";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.0.10")).retval, TC_ACT_UNSPEC) << "node address";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "100.100.100.200")).retval, TC_ACT_UNSPEC) << "metadata";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.0.22")).retval, TC_ACT_UNSPEC)
      << "to a policed pod";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("0.0.0.0", "0.0.0.0", 64, ETH_P_ARP)).retval, TC_ACT_UNSPEC) << "ARP";
  auto v6 = Frame("0.0.0.0", "0.0.0.0", 64, ETH_P_IPV6);
  v6.resize(sizeof(ethhdr) + 48);  // the test run wants a whole IPv6 header
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), v6).retval, TC_ACT_UNSPEC) << "IPv6";
  auto in = Frame("198.18.0.20", "198.18.9.9", 1);
  Out expiring = TestRun(dp_->from_pod_fd(), in);
  EXPECT_EQ(expiring.retval, TC_ACT_UNSPEC) << "TTL 1: the stack answers time exceeded";
  EXPECT_EQ(expiring.frame, in) << "a packet for the stack is untouched";
  Endpoint policed_a = a_;
  policed_a.shaped = true;
  ASSERT_TRUE(dp_->UpsertEndpoint(policed_a).ok());
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.0.21")).retval, TC_ACT_UNSPEC)
      << "from a policed pod";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9")).retval, TC_ACT_UNSPEC);
  Counters c = Count();
  EXPECT_EQ(c.pod_to_stack, 9u);
  EXPECT_EQ(c.pod_to_pod + c.pod_to_eni + c.drop_spoof, 0u);
}

// Policed is SHAPED (above), or in the policy map, or any pod while the
// policy map is not authoritative; the pod program's stack verdict is
// TC_ACT_UNSPEC (a later filter -- qos's IFB redirect -- still sees it), the
// ENI program's TC_ACT_OK.
TEST_F(DatapathProgTestRun, ThePolicyMapAndItsStateDecideWhoIsPoliced) {
  auto pod_to_b = [&] { return TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.0.21")).retval; };
  Endpoint b_on_1 = b_;
  b_on_1.eni_ifindex = 1;  // the ENI under test is "link 1"
  ASSERT_TRUE(dp_->UpsertEndpoint(b_on_1).ok());
  auto eni_to_b = [&] { return TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.21")).retval; };
  EXPECT_EQ(pod_to_b(), TC_ACT_REDIRECT);
  EXPECT_EQ(eni_to_b(), TC_ACT_REDIRECT);
  ASSERT_TRUE(dp_->AddPolicyPod(b_.ip).ok());
  EXPECT_EQ(pod_to_b(), TC_ACT_UNSPEC) << "to a pod a chain may isolate";
  EXPECT_EQ(eni_to_b(), TC_ACT_OK);
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.21", "198.18.0.20")).retval, TC_ACT_SHOT)
      << "anti-spoofing first: b's address from a's veth";
  ASSERT_TRUE(dp_->AddPolicyPod(a_.ip).ok());
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9")).retval, TC_ACT_UNSPEC)
      << "from a pod a chain may isolate";
  ASSERT_TRUE(dp_->DeletePolicyPod(a_.ip).ok());
  ASSERT_TRUE(dp_->DeletePolicyPod(b_.ip).ok());
  EXPECT_EQ(pod_to_b(), TC_ACT_REDIRECT);
  ASSERT_TRUE(dp_->SetPolicySynced(false).ok());
  EXPECT_EQ(pod_to_b(), TC_ACT_UNSPEC) << "not synced: every pod is policed";
  EXPECT_EQ(eni_to_b(), TC_ACT_OK);
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9")).retval, TC_ACT_UNSPEC);
  ASSERT_TRUE(dp_->SetPolicySynced(true).ok());
  EXPECT_EQ(pod_to_b(), TC_ACT_REDIRECT);
  EXPECT_EQ(eni_to_b(), TC_ACT_REDIRECT);
}

TEST_F(DatapathProgTestRun, EniIngressDeliversToKnownPodsOfThatEniOnly) {
  // The ENI under test is "link 1": b moves onto it.
  Endpoint b_on_1 = b_;
  b_on_1.eni_ifindex = 1;
  ASSERT_TRUE(dp_->UpsertEndpoint(b_on_1).ok());
  auto in = Frame("198.18.9.9", "198.18.0.21", 60);
  Out o = TestRun(dp_->from_eni_fd(), in);
  EXPECT_EQ(o.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(Mac(o.eth()->h_dest), "02:00:00:00:00:15");
  EXPECT_EQ(Mac(o.eth()->h_source), "ee:ee:ee:ee:ee:2a");
  EXPECT_EQ(o.ip()->ttl, 59);
  EXPECT_EQ(Ipv4Checksum(o.ip()), 0);
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.77")).retval, TC_ACT_OK) << "unknown pod";
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.20")).retval, TC_ACT_OK)
      << "a's ENI is another link";
  Endpoint pol_on_1 = pol_;
  pol_on_1.eni_ifindex = 1;
  ASSERT_TRUE(dp_->UpsertEndpoint(pol_on_1).ok());
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.22")).retval, TC_ACT_OK) << "policed pod";
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("0.0.0.0", "0.0.0.0", 64, ETH_P_ARP)).retval, TC_ACT_OK);
  Counters c = Count();
  EXPECT_EQ(c.eni_to_pod, 1u);
  EXPECT_EQ(c.eni_to_stack, 4u);
  // Deleting the endpoint takes it off the fast path at once.
  ASSERT_TRUE(dp_->DeleteEndpoint(b_.ip).ok());
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), in).retval, TC_ACT_OK);
}

// Conntrack is asked only about TCP and UDP (bpf/lib/dp_ct.h): ICMP and
// fragments would be redirected by the decisions but take the stack. The
// tracked case needs real conntrack entries: traffic_nat_root_test.cc.
TEST_F(DatapathProgTestRun, IcmpAndFragmentsTakeTheStackInsteadOfARedirect) {
  constexpr uint8_t kIcmp = 1, kTcp = 6;
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.0.21", 64, ETH_P_IP, kIcmp)).retval,
            TC_ACT_UNSPEC);
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9", 64, ETH_P_IP, kIcmp)).retval, TC_ACT_UNSPEC);
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9", 64, ETH_P_IP, 17, 0x2000)).retval,
            TC_ACT_UNSPEC)
      << "a first fragment (more fragments)";
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9", 64, ETH_P_IP, 17, 0x0010)).retval,
            TC_ACT_UNSPEC)
      << "a later fragment (offset)";
  Endpoint b_on_1 = b_;
  b_on_1.eni_ifindex = 1;
  ASSERT_TRUE(dp_->UpsertEndpoint(b_on_1).ok());
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.21", 64, ETH_P_IP, kIcmp)).retval, TC_ACT_OK);
  Counters c = Count();
  EXPECT_EQ(c.ct_unknown_to_stack, 5u);
  EXPECT_EQ(c.ct_to_stack, 0u);
  EXPECT_EQ(c.pod_to_pod + c.pod_to_eni + c.eni_to_pod, 0u);
  // TCP and UDP with no conntrack entry stay fast.
  EXPECT_EQ(TestRun(dp_->from_pod_fd(), Frame("198.18.0.20", "198.18.9.9", 64, ETH_P_IP, kTcp)).retval,
            TC_ACT_REDIRECT);
  EXPECT_EQ(TestRun(dp_->from_eni_fd(), Frame("198.18.9.9", "198.18.0.21")).retval, TC_ACT_REDIRECT);
}

}  // namespace
}  // namespace terway::ebpf
