// Dual stack against the real kernel, in the SharedEniRoot world
// (shared_eni_root_fixture.h) extended behind its vSwitch by a "VPC host"
// (dual_stack_world.h: the topology, IPv6 echo servers and clients). The
// exclusive-ENI pod takes the same ENI as its eth0.
#include <chrono>
#include <thread>

#include "datapath/exclusive_eni.h"
#include "root/datapath/dual_stack_world.h"
#include "root/datapath/spoof_traffic.h"
#include "shared_eni_root_fixture.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the fixture and its helpers
using namespace std::chrono_literals;

class DualStackRoot : public SharedEniRoot {
 protected:
  void SetUp() override {
    SharedEniRoot::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    host_ = "twdh" + s_;
    owned_.push_back(host_);
    ASSERT_OK(AddVpcHost6(vsw_, host_));
    ASSERT_OK(host_servers_.Start(host_));
  }
  std::string Rules6() { return Capture("ip -n " + node_ + " -6 rule show"); }
  std::string Routes6() { return Capture("ip -n " + node_ + " -6 route show table all"); }
  std::string Proxies() { return Capture("ip -n " + node_ + " -6 neigh show proxy"); }
  uint64_t Spoofed6() {
    std::string c = Capture("ip netns exec " + node_ + " nft list counter inet terway_antispoof spoofed_ipv6");
    auto at = c.find("packets ");
    return at == std::string::npos ? 0 : std::stoull(c.substr(at + 8));
  }

  // Whether `show` (an `ip -6 addr show`) lists a link-local and no
  // tentative address within the deadline; the last listing is printed if not.
  bool NoTentativeAddressWithin(const std::string& show,
                                std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::string addrs;
    do {
      addrs = Capture(show);
      if (Contains(addrs, "inet6 fe80::") && !Contains(addrs, "tentative")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < until);
    ADD_FAILURE() << "still tentative (or no link-local) after " << deadline.count() << " ms: " << addrs;
    return false;
  }

  std::string host_;
  EchoServers6 host_servers_;
};

TEST_F(DualStackRoot, TwoPodsAndTheVpcHostTalkIcmpTcpAndUdpOverIpv6) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  auto r = dp_->Ensure(a);
  ASSERT_OK(r);
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0], (cni::IpConfig{"198.18.0.10/32", "169.254.1.1", 1}));
  EXPECT_EQ(r->ips[1], (cni::IpConfig{"2001:db8:1::10/128", "fe80::1", 1}));
  // Usable at once: the pod's /128 is nodad, and DAD is off on both veth
  // ends (accept_dad 0, set before they came up), so no address waits out
  // duplicate address detection (a second or more before the kernel would
  // solicit from it). The kernel still flags a new link-local tentative
  // until its address worker has run, which on a loaded machine can be
  // seen for a moment: the cause is checked exactly, the flag with a wait.
  EXPECT_EQ(Capture("ip netns exec " + PodNs(a) + " sysctl -n net.ipv6.conf.eth0.accept_dad"), "0\n");
  EXPECT_EQ(Capture("ip netns exec " + node_ + " sysctl -n net.ipv6.conf." + HostVethName(a.container_id) +
                    ".accept_dad"),
            "0\n");
  std::string pod_addrs = Capture("ip -n " + PodNs(a) + " -6 addr show dev eth0");
  EXPECT_TRUE(Contains(pod_addrs, "inet6 2001:db8:1::10/128 scope global nodad")) << pod_addrs;
  EXPECT_TRUE(Contains(pod_addrs, "inet6 fe80::")) << pod_addrs;
  EXPECT_TRUE(NoTentativeAddressWithin("ip -n " + PodNs(a) + " -6 addr show dev eth0"));
  EXPECT_TRUE(NoTentativeAddressWithin("ip -n " + node_ + " -6 addr show dev " + HostVethName(a.container_id)));
  ASSERT_OK(dp_->Ensure(b));
  EchoServers6 b_servers;
  ASSERT_OK(b_servers.Start(PodNs(b)));

  // Pod to pod on the node.
  EXPECT_TRUE(Ping6(PodNs(a), "2001:db8:1::11")) << Rules6() << Routes6();
  EXPECT_EQ(Tcp6(PodNs(a), "2001:db8:1::11"), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Udp6(PodNs(a), "2001:db8:1::11"), "ok 2001:db8:1::10\n");
  // Pod to the VPC host, through the ENI with the pod's own source; the
  // vSwitch found the pod's address behind the ENI's MAC by soliciting it.
  EXPECT_TRUE(Ping6(PodNs(a), kVpcHost6)) << Rules6() << Routes6() << Proxies();
  EXPECT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Udp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Tcp6(PodNs(b), kVpcHost6), "ok 2001:db8:1::11\n");
  std::string learned = Capture("ip -n " + vsw_ + " -6 neigh show 2001:db8:1::10");
  EXPECT_TRUE(Contains(learned, kEniMac)) << learned;
  // The VPC host reaches the pod (a connection the pod did not start).
  EXPECT_TRUE(Ping6(host_, "2001:db8:1::11"));
  // IPv4 as before.
  EXPECT_TRUE(Ping(a));
  auto c = dp_->Check(a);
  ASSERT_OK(c);
  EXPECT_EQ(*c, *r);
}

TEST_F(DualStackRoot, CheckNamesEachDeletedIpv6ObjectAndEnsureRepairsIt) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));
  ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6));
  auto expect_named = [&](const std::string& what) {
    auto c = dp_->Check(a);
    ASSERT_FALSE(c.ok()) << what;
    EXPECT_TRUE(Contains(c.error().ToString(), what)) << c.error().ToString();
  };

  // The from-rule: without it the pod's IPv6 has no way out.
  ASSERT_EQ(Sh("ip -n " + node_ + " -6 rule del from 2001:db8:1::10 priority 2048"), 0);
  expect_named("rule 'from 2001:db8:1::10 lookup");
  expect_named("(priority 2048) is missing in the host");
  EXPECT_FALSE(Ping6Once(PodNs(a), kVpcHost6));
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));
  EXPECT_TRUE(Ping6(PodNs(a), kVpcHost6));

  // The pod's default route.
  ASSERT_EQ(Sh("ip -n " + PodNs(a) + " -6 route del default"), 0);
  expect_named("default route via fe80::1 dev eth0 is missing in the pod");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));

  // The ENI table's IPv6 default.
  auto node = netlink::Handle::OpenIn(node_);
  ASSERT_OK(node);
  auto eni = node->GetLink("eth1");
  ASSERT_OK(eni);
  ASSERT_EQ(Sh("ip -n " + node_ + " -6 route del default table " + std::to_string(EniTableId(eni->index))), 0);
  expect_named("default route via 2001:db8:1::fffd dev eth1 onlink table");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));

  // The proxy entry: the vSwitch, once it forgets the pod's MAC, cannot
  // find the pod.
  ASSERT_EQ(Sh("ip -n " + node_ + " -6 neigh del proxy 2001:db8:1::10 dev eth1"), 0);
  ASSERT_EQ(Sh("ip -n " + vsw_ + " -6 neigh flush dev vsw0"), 0);
  expect_named("proxy neighbour 2001:db8:1::10 on eth1 is missing in the host");
  EXPECT_FALSE(Ping6Once(host_, "2001:db8:1::10"));
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));
  EXPECT_TRUE(Ping6(host_, "2001:db8:1::10"));

  // The pod's address.
  ASSERT_EQ(Sh("ip -n " + PodNs(a) + " -6 addr del 2001:db8:1::10/128 dev eth0"), 0);
  expect_named("address 2001:db8:1::10/128 on eth0 is missing in the pod");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));
  EXPECT_TRUE(Ping6(PodNs(a), kVpcHost6));
}

TEST_F(DualStackRoot, RemoveLeavesNothingOfEitherFamily) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Ensure(b));
  ASSERT_TRUE(Contains(Proxies(), "2001:db8:1::10"));
  ASSERT_OK(dp_->Remove(a));
  ASSERT_OK(dp_->Remove(a));
  // b's netns is destroyed first: DEL must still take its rules and entry.
  ASSERT_OK(netlink::DeleteNamedNetns(PodNs(b)));
  ASSERT_OK(dp_->Remove(b));
  for (const char* ip : {"2001:db8:1::10", "2001:db8:1::11"}) {
    EXPECT_FALSE(Contains(Rules6(), ip)) << Rules6();
    EXPECT_FALSE(Contains(Routes6(), ip)) << Routes6();
    EXPECT_FALSE(Contains(Proxies(), ip)) << Proxies();
  }
  for (const char* ip : {"198.18.0.10", "198.18.0.11"}) {
    EXPECT_FALSE(Contains(Rules(), ip)) << Rules();
    EXPECT_FALSE(Contains(AllRoutes(), ip)) << AllRoutes();
  }
  EXPECT_FALSE(Contains(Links(), HostVethName(a.container_id)));
  std::string elems = Capture("ip netns exec " + node_ + " nft list set inet terway_antispoof allowed_ipv6");
  EXPECT_FALSE(Contains(elems, "2001:db8:1::1")) << elems;
}

TEST_F(DualStackRoot, GarbageCollectionTakesAVanishedPodsIpv6RulesAndProxyEntry) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Ensure(b));
  ASSERT_OK(netlink::DeleteNamedNetns(PodNs(a)));  // no DEL
  auto removed = dp_->CollectGarbage({b.container_id});
  ASSERT_OK(removed);
  bool named = false;
  for (const auto& line : *removed) named = named || Contains(line, "proxy neighbour 2001:db8:1::10");
  EXPECT_TRUE(named);
  EXPECT_FALSE(Contains(Rules6(), "2001:db8:1::10")) << Rules6();
  EXPECT_FALSE(Contains(Proxies(), "2001:db8:1::10")) << Proxies();
  EXPECT_TRUE(Contains(Rules6(), "2001:db8:1::11")) << Rules6();
  EXPECT_TRUE(Contains(Proxies(), "2001:db8:1::11")) << Proxies();
  ASSERT_OK(dp_->Check(b));
  EXPECT_TRUE(Ping6(PodNs(b), kVpcHost6));
}

// A pod sends IPv6 only with its own address (and link-local for neighbour
// discovery); an IPv4-only pod sends no IPv6 with a global source at all.
// Each forged source is one whose packets the node would otherwise route:
// without the guard they arrive.
TEST_F(DualStackRoot, PodsSendIpv6OnlyWithTheirOwnAddress) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  auto c = MakePod("c", "198.18.0.12");
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Ensure(b));
  auto rc = dp_->Ensure(c);
  ASSERT_OK(rc);
  ASSERT_EQ(rc->ips.size(), 1u);
  EXPECT_EQ(Capture("ip -n " + PodNs(c) + " -6 addr show scope global"), "") << "an IPv4-only pod has no IPv6";
  ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6));  // paths and neighbours ready
  ASSERT_TRUE(Ping6(PodNs(a), "2001:db8:1::11"));
  testing::UdpReceiver at_host, at_b;
  ASSERT_OK(at_host.Open(host_, 9000, AF_INET6));
  ASSERT_OK(at_b.Open(PodNs(b), 9000, AF_INET6));

  // c, IPv4-only, routes IPv6 to its host veth itself (CAP_NET_ADMIN in its
  // namespace) and forges a's address towards the VPC, and an unused
  // address of the vSwitch towards b.
  ASSERT_EQ(Sh("ip -n " + PodNs(c) + " -6 route add default via fe80::1 dev eth0 && ip -n " + PodNs(c) +
               " neigh replace fe80::1 lladdr " + rc->interfaces[0].mac + " dev eth0 nud permanent"),
            0);
  const uint64_t before = Spoofed6();
  ASSERT_OK(testing::SendForgedUdp6(PodNs(c), "2001:db8:1::10", kVpcHost6, 9000, 3));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(c), "2001:db8:1::77", "2001:db8:1::11", 9000, 3));
  // a forges b's address towards the VPC host, then sends with its own.
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::11", kVpcHost6, 9000, 3));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::10", kVpcHost6, 9000, 2));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::10", "2001:db8:1::11", 9000, 2));

  EXPECT_EQ(at_host.WaitFor("2001:db8:1::10", 2), 2) << "a's own IPv6 passes";
  EXPECT_EQ(at_b.WaitFor("2001:db8:1::10", 2), 2) << "a's own IPv6 passes";
  // Every forged packet is counted where the guard drops it.
  auto end = std::chrono::steady_clock::now() + 5s;
  while (Spoofed6() - before < 9 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Spoofed6() - before, 9u);
  EXPECT_EQ(at_host.From("2001:db8:1::11"), 0) << "a forged b's address";
  EXPECT_EQ(at_b.From("2001:db8:1::77"), 0) << "c forged an unused address";
  // 2 of a's own arrived at the host; c's 3 with a's address did not.
  EXPECT_EQ(at_host.From("2001:db8:1::10"), 2);
}

// The pod's egress limit takes its IPv6 too: the host veth's redirect filter
// matches every protocol, so the pod's IPv6 datagrams cross its IFB (an
// IPv4-only filter, `protocol ip`, would let them by unshaped). Counted, not
// timed. (EDT, which keys IPv4 sources, is never used for a dual-stack pod;
// this kernel has no fq, so the IFB path is the only one here anyway.)
TEST_F(DualStackRoot, BandwidthLimitsShapeIpv6Too) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  cni::Bandwidth bw;
  bw.ingress_rate = 10'000'000;
  bw.ingress_burst = 1'000'000;
  bw.egress_rate = 20'000'000;
  bw.egress_burst = 1'000'000;
  a.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(a));
  ASSERT_OK(dp_->Check(a));
  ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6));
  const std::string ifb_tx =
      "ip netns exec " + node_ + " cat /sys/class/net/" + PodIfbName(a.container_id) + "/statistics/tx_packets";
  const long before = std::atol(Capture(ifb_tx).c_str());
  testing::UdpReceiver at_host;
  ASSERT_OK(at_host.Open(host_, 9000, AF_INET6));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::10", kVpcHost6, 9000, 20));
  ASSERT_EQ(at_host.WaitFor("2001:db8:1::10", 20), 20);
  EXPECT_GE(std::atol(Capture(ifb_tx).c_str()) - before, 20) << "the pod's IPv6 did not cross its IFB";
}

// A dual-stack pod another plugin wired, adopted at start: its foreign host
// veth may send with both of its addresses, and no other.
TEST_F(DualStackRoot, AnAdoptedDualStackPodIsGuardedForBothAddresses) {
  auto p = MakePod("z", "198.18.0.30", "2001:db8:1::30");
  ASSERT_EQ(Sh("ip -n " + node_ + " link add cali0123456789a type veth peer name eth0 netns " + PodNs(p)), 0);
  p.host_veth = "cali0123456789a";
  ASSERT_OK(dp_->GuardAdopted(p));
  std::string v6 = Capture("ip netns exec " + node_ + " nft list set inet terway_antispoof allowed_ipv6");
  EXPECT_TRUE(Contains(v6, "\"cali0123456789a\" . 2001:db8:1::30")) << v6;
  std::string v4 = Capture("ip netns exec " + node_ + " nft list set inet terway_antispoof allowed_ipv4");
  EXPECT_TRUE(Contains(v4, "\"cali0123456789a\" . 198.18.0.30")) << v4;
}

// The exclusive-ENI pod: the same ENI becomes its eth0, with its IPv6 on it
// and the default route via the vSwitch's IPv6 gateway; the pod answers the
// vSwitch's solicitations itself.
class ExclusiveDualStackRoot : public DualStackRoot {
 protected:
  void SetUp() override {
    DualStackRoot::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ExclusiveEniOptions o;
    o.host_netns = node_;
    o.eni_network = [](const std::string&, const MacAddr&) -> Result<EniNetwork> {
      return EniNetwork{Ipv4Addr::Parse(kGateway).value(), Ipv4Cidr::Parse("198.18.0.0/24").value()};
    };
    xdp_.emplace(std::move(o));
  }
  std::optional<ExclusiveEniDatapath> xdp_;
};

TEST_F(ExclusiveDualStackRoot, ThePodsEniCarriesItsIpv6ToTheVpcHost) {
  auto x = MakePod("x", "198.18.0.40", "2001:db8:1::40");
  auto r = xdp_->Ensure(x);
  ASSERT_OK(r);
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[1], (cni::IpConfig{"2001:db8:1::40/128", kGateway6, 1}));
  EXPECT_TRUE(Ping6(PodNs(x), kVpcHost6));
  EXPECT_EQ(Tcp6(PodNs(x), kVpcHost6), "ok 2001:db8:1::40\n");
  EXPECT_EQ(Udp6(PodNs(x), kVpcHost6), "ok 2001:db8:1::40\n");
  EXPECT_TRUE(Ping6(host_, "2001:db8:1::40"));
  EXPECT_EQ(Proxies(), "") << "the pod answers for its address on its own ENI";
  EXPECT_FALSE(Contains(Rules6(), "2001:db8:1::40"));
  ASSERT_OK(xdp_->Check(x));

  ASSERT_EQ(Sh("ip -n " + PodNs(x) + " -6 route del default"), 0);
  auto c = xdp_->Check(x);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "default route via 2001:db8:1::fffd dev eth0 onlink is missing in the pod"))
      << c.error().ToString();
  EXPECT_FALSE(Ping6Once(PodNs(x), kVpcHost6));
  ASSERT_OK(xdp_->Ensure(x));
  ASSERT_OK(xdp_->Check(x));
  EXPECT_TRUE(Ping6(PodNs(x), kVpcHost6));

  // Remove: the ENI back on the node, none of the pod's IPv6 on it.
  ASSERT_OK(xdp_->Remove(x));
  std::string parked = Capture("ip -n " + node_ + " -6 addr show");
  EXPECT_FALSE(Contains(parked, "2001:db8:1::40")) << parked;
  EXPECT_TRUE(Contains(Capture("ip -n " + node_ + " link show"), kEniMac));
}

}  // namespace
}  // namespace terway::datapath
