// Dual stack against the real kernel, in the SharedEniRoot world
// (shared_eni_root_fixture.h) extended behind its vSwitch by a "VPC host":
//
//   pods ──veth── node (eth1 = ENI) ──── vsw0 vswitch netns vsw1 ──── host0 VPC host netns
//                                        2001:db8:1::fffd/64       2001:db8:2::1/64  2001:db8:2::10/64
//
// The vSwitch routes IPv6 between its two links and resolves pod IPv6s with
// neighbour solicitations on vsw0 (no permanent entries): only the node's
// proxy NDP makes a shared-ENI pod's address answer there. Real ICMPv6, TCP
// and UDP over IPv6 (socat clients with bounded timeouts, in-process
// servers that answer with the peer's address, so the source is checked
// too). The exclusive-ENI pod takes the same ENI as its eth0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "datapath/exclusive_eni.h"
#include "root/datapath/spoof_traffic.h"
#include "shared_eni_root_fixture.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the fixture and its helpers
using namespace std::chrono_literals;

constexpr const char* kVpcHost6 = "2001:db8:2::10";

// TCP [::]:80 and UDP [::]:81 in a namespace, each answering "ok <peer>\n".
class EchoServers6 {
 public:
  ~EchoServers6() {
    stop_ = true;
    if (t_.joinable()) t_.join();
  }
  Status Start(const std::string& netns) {
    auto bound = std::make_shared<std::promise<bool>>();
    auto ready = bound->get_future();
    TERWAY_ASSIGN_OR_RETURN(t_, netlink::SpawnInNetns(netns, [this, bound] { Serve(*bound); }));
    if (ready.wait_for(5s) != std::future_status::ready || !ready.get()) {
      return Errorf(ErrorCode::kKernel, "IPv6 echo servers in {} did not bind", netns);
    }
    return Ok();
  }

 private:
  static int Bound(int type, uint16_t port) {
    int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    if (type == SOCK_STREAM && listen(fd, 8) != 0) return -1;
    return fd;
  }
  static std::string Reply(const sockaddr_in6& peer) {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &peer.sin6_addr, text, sizeof text);
    return std::string("ok ") + text + "\n";
  }
  void Serve(std::promise<bool>& bound) {
    int tcp = Bound(SOCK_STREAM, 80), udp = Bound(SOCK_DGRAM, 81);
    bound.set_value(tcp >= 0 && udp >= 0);
    while (tcp >= 0 && udp >= 0 && !stop_) {
      pollfd p[2] = {{tcp, POLLIN, 0}, {udp, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      sockaddr_in6 peer{};
      socklen_t len = sizeof peer;
      if (p[0].revents & POLLIN) {
        int c = accept4(tcp, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
        if (c >= 0) {
          std::string r = Reply(peer);
          (void)!write(c, r.data(), r.size());
          close(c);
        }
      }
      len = sizeof peer;
      char buf[512];
      if ((p[1].revents & POLLIN) && recvfrom(udp, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) >= 0) {
        std::string r = Reply(peer);
        (void)sendto(udp, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), len);
      }
    }
    if (tcp >= 0) close(tcp);
    if (udp >= 0) close(udp);
  }
  std::atomic<bool> stop_{false};
  std::thread t_;
};

bool Ping6Once(const std::string& ns, const std::string& dst) {
  return Sh("ip netns exec " + ns + " ping -6 -n -q -c 1 -W 1 " + dst) == 0;
}
// Waits up to 8 s for a reply: the first packets also resolve neighbours,
// and a fresh link's link-local may still be tentative.
bool Ping6(const std::string& ns, const std::string& dst) {
  auto end = std::chrono::steady_clock::now() + 8s;
  do {
    if (Ping6Once(ns, dst)) return true;
  } while (std::chrono::steady_clock::now() < end);
  return false;
}
// What the server answered ("ok <source the server saw>\n"), "" when nothing
// came back within socat's 2 s timeouts.
std::string Tcp6(const std::string& ns, const std::string& dst) {
  return Capture("ip netns exec " + ns + " timeout 6 socat -t 2 -T 2 - TCP6:[" + dst +
                 "]:80,connect-timeout=2 </dev/null 2>/dev/null");
}
std::string Udp6(const std::string& ns, const std::string& dst) {
  return Capture("echo ping | ip netns exec " + ns + " timeout 6 socat -t 2 -T 2 - UDP6:[" + dst + "]:81 2>/dev/null");
}

class DualStackRoot : public SharedEniRoot {
 protected:
  void SetUp() override {
    SharedEniRoot::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    host_ = "twdh" + s_;
    owned_.push_back(host_);
    ASSERT_OK(netlink::CreateNamedNetns(host_));
    const std::string v = "ip -n " + vsw_ + " ", h = "ip -n " + host_ + " ";
    ASSERT_EQ(Sh(v + "link add vsw1 type veth peer name host0 netns " + host_), 0);
    ASSERT_EQ(Sh(v + "link set vsw1 up && " + v + "-6 addr add 2001:db8:2::1/64 dev vsw1 nodad"), 0);
    ASSERT_EQ(Sh(h + "link set lo up && " + h + "link set host0 up && " + h + "-6 addr add " + kVpcHost6 +
                 "/64 dev host0 nodad && " + h + "-6 route add default via 2001:db8:2::1 dev host0"),
              0);
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
