// A dual-stack pod on the eBPF datapath (issue 14 x issue 15), against the
// real kernel: the EbpfEniRoot world (ebpf_eni_root_fixture.h) with the IPv6
// VPC host behind its vSwitch (dual_stack_world.h):
//
//   pods ──veth── node (eth1 = ENI, tc programs) ──── vsw0 vswitch vsw1 ──── host0 VPC host
//                                                     198.18.0.253/24        2001:db8:2::10/64
//                                                     2001:db8:1::fffd/64
//
// The programs move IPv4 TCP/UDP and hand everything else -- IPv6 included --
// to the host stack, which carries the veth mode's IPv6 wiring (/128 routes,
// rules, proxy NDP on the ENI, fe80::1 in the pod) and judges IPv6 sources
// with the anti-spoofing table. Also here, for both flavours: a pod wired
// again with another IPv6 keeps nothing of the old one.
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "root/datapath/dual_stack_world.h"
#include "root/datapath/ebpf_eni_root_fixture.h"
#include "root/datapath/spoof_traffic.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the world's constants and helpers
using namespace std::chrono_literals;

class EbpfDualStackRoot : public EbpfEniRoot {
 protected:
  void SetUp() override {
    EbpfEniRoot::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    host_ = "twdh" + s_;
    owned_.push_back(host_);
    ASSERT_OK(AddVpcHost6(vsw_, host_));
    ASSERT_OK(host_servers_.Start(host_));
  }

  std::string Rules6() { return Capture("ip -n " + node_ + " -6 rule show"); }
  std::string Routes6() { return Capture("ip -n " + node_ + " -6 route show table all"); }
  std::string Proxies() { return Capture("ip -n " + node_ + " -6 neigh show proxy"); }
  std::string Neighbours6() { return Capture("ip -n " + node_ + " -6 neigh show"); }
  std::string PodAddrs6(const PodNetwork& p) { return Capture("ip -n " + PodNs(p) + " -6 addr show dev eth0"); }
  std::string AllowedIpv6() {
    return Capture("ip netns exec " + node_ + " nft list set inet terway_antispoof allowed_ipv6");
  }
  uint64_t Spoofed6() {
    std::string c = Capture("ip netns exec " + node_ + " nft list counter inet terway_antispoof spoofed_ipv6");
    auto at = c.find("packets ");
    return at == std::string::npos ? 0 : std::stoull(c.substr(at + 8));
  }
  // Everything of the node's wiring that names `ip`, for failure messages
  // and the "nothing left" checks.
  std::string Mentions(const std::string& ip) {
    std::string out;
    for (const auto& [what, text] : {std::pair{"rule", Rules6()}, {"route", Routes6()}, {"proxy", Proxies()},
                                     {"neighbour", Neighbours6()}, {"anti-spoofing", AllowedIpv6()}}) {
      if (Contains(text, ip)) out += std::string(what) + ": " + text + "\n";
    }
    return out;
  }

  std::string host_;
  EchoServers6 host_servers_;
};

TEST_F(EbpfDualStackRoot, Ipv6TakesTheStackWhileIpv4TakesTheFastPath) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  auto r = ebpf_->Ensure(a);
  ASSERT_OK(r);
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0], (cni::IpConfig{"198.18.0.10/32", "169.254.1.1", 1}));
  EXPECT_EQ(r->ips[1], (cni::IpConfig{"2001:db8:1::10/128", "fe80::1", 1}));
  ASSERT_EQ(r->routes.size(), 2u);
  EXPECT_EQ(r->routes[1].dst, "::/0");
  EXPECT_EQ(r->routes[1].gw, "fe80::1");
  ASSERT_OK(ebpf_->Ensure(b));
  std::string addrs = Capture("ip -n " + PodNs(a) + " addr show dev eth0");
  EXPECT_TRUE(Contains(addrs, "inet 198.18.0.10/32") && Contains(addrs, "inet6 2001:db8:1::10/128")) << addrs;
  // The eBPF flavour's own objects, keyed by the pod's IPv4.
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  EXPECT_EQ(entries->size(), 2u);
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent);
  EchoServers6 b_servers;
  ASSERT_OK(b_servers.Start(PodNs(b)));
  ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6)) << Routes6() << Proxies();  // neighbours resolved

  // IPv6 -- ICMPv6, TCP, UDP -- pod to pod, pod to the VPC host and back,
  // each with the pod's own source: all of it through the stack.
  const ebpf::Counters before = Count();
  EXPECT_TRUE(Ping6(PodNs(a), "2001:db8:1::11"));
  EXPECT_EQ(Tcp6(PodNs(a), "2001:db8:1::11"), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Udp6(PodNs(a), "2001:db8:1::11"), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Udp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");
  EXPECT_EQ(Tcp6(PodNs(b), kVpcHost6), "ok 2001:db8:1::11\n");
  EXPECT_TRUE(Ping6(host_, "2001:db8:1::11")) << "a connection the pod did not start";
  const ebpf::Counters v6 = Count();
  EXPECT_EQ(v6.pod_to_pod, before.pod_to_pod) << ebpf::ToString(v6);
  EXPECT_EQ(v6.pod_to_eni, before.pod_to_eni) << ebpf::ToString(v6);
  EXPECT_EQ(v6.eni_to_pod, before.eni_to_pod) << ebpf::ToString(v6);
  EXPECT_EQ(v6.drop_spoof, before.drop_spoof) << ebpf::ToString(v6);
  // Every exchange above is at least a request and a reply through each
  // program: handed on, never lost.
  EXPECT_GE(v6.pod_to_stack, before.pod_to_stack + 12) << ebpf::ToString(v6);
  EXPECT_GE(v6.eni_to_stack, before.eni_to_stack + 4) << ebpf::ToString(v6);

  // IPv4 of the same pods, on the fast path as before.
  EXPECT_TRUE(Talk(a, "198.18.0.11")) << "pod -> pod on the node";
  const ebpf::Counters mid = Count();
  EXPECT_GE(mid.pod_to_pod, v6.pod_to_pod + 6) << ebpf::ToString(mid);
  EXPECT_TRUE(Talk(a, kGateway)) << "pod -> VPC host";
  const ebpf::Counters after = Count();
  EXPECT_GE(after.pod_to_eni, mid.pod_to_eni + 3) << ebpf::ToString(after);
  EXPECT_GE(after.eni_to_pod, mid.eni_to_pod + 3) << ebpf::ToString(after);

  auto c = ebpf_->Check(a);
  ASSERT_OK(c);
  EXPECT_EQ(*c, *r);
}

// The program hands IPv6 to the stack without judging its source; the
// anti-spoofing table does, for a pod of this flavour as for a veth pod.
TEST_F(EbpfDualStackRoot, AForgedIpv6SourceIsDroppedAndThePodsOwnPasses) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  ASSERT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
  ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6));  // paths and neighbours ready
  ASSERT_TRUE(Ping6(PodNs(a), "2001:db8:1::11"));
  testing::UdpReceiver at_host, at_b;
  ASSERT_OK(at_host.Open(host_, 9000, AF_INET6));
  ASSERT_OK(at_b.Open(PodNs(b), 9000, AF_INET6));

  const uint64_t spoofed = Spoofed6();
  const ebpf::Counters before = Count();
  // a forges b's address and an unused one of the vSwitch, towards the VPC
  // host and towards b; then sends with its own.
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::11", kVpcHost6, 9000, 3));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::77", "2001:db8:1::11", 9000, 3));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::10", kVpcHost6, 9000, 2));
  ASSERT_OK(testing::SendForgedUdp6(PodNs(a), "2001:db8:1::10", "2001:db8:1::11", 9000, 2));

  EXPECT_EQ(at_host.WaitFor("2001:db8:1::10", 2), 2) << "a's own IPv6 passes";
  EXPECT_EQ(at_b.WaitFor("2001:db8:1::10", 2), 2) << "a's own IPv6 passes";
  auto end = std::chrono::steady_clock::now() + 5s;
  while (Spoofed6() - spoofed < 6 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(Spoofed6() - spoofed, 6u) << "every forged datagram, counted where the table drops it";
  EXPECT_EQ(at_host.From("2001:db8:1::11"), 0) << "a forged b's address";
  EXPECT_EQ(at_b.From("2001:db8:1::77"), 0) << "a forged an unused address";
  const ebpf::Counters after = Count();
  EXPECT_GE(after.pod_to_stack, before.pod_to_stack + 10) << "the program handed all ten to the stack";
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << ebpf::ToString(after);
  EXPECT_EQ(after.pod_to_eni, before.pod_to_eni) << ebpf::ToString(after);
}

TEST_F(EbpfDualStackRoot, CheckCoversBothFamiliesAndNamesADeletedIpv6RouteOrAddress) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto r = ebpf_->Ensure(a);
  ASSERT_OK(r);
  auto c = ebpf_->Check(a);
  ASSERT_OK(c);
  EXPECT_EQ(*c, *r) << "both families in the result";
  const std::string veth = HostVethName(a.container_id);
  auto expect_named = [&](const std::string& what) {
    auto bad = ebpf_->Check(a);
    ASSERT_FALSE(bad.ok()) << what;
    EXPECT_TRUE(Contains(bad.error().ToString(), what)) << bad.error().ToString();
  };

  // The host's /128 route: without it nothing reaches the pod's IPv6.
  ASSERT_EQ(Sh("ip -n " + node_ + " -6 route del 2001:db8:1::10/128 dev " + veth), 0);
  expect_named("route 2001:db8:1::10/128 dev " + veth + " is missing in the host");
  EXPECT_FALSE(Ping6Once(host_, "2001:db8:1::10"));
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
  EXPECT_TRUE(Ping6(host_, "2001:db8:1::10"));

  // The pod's IPv6 address.
  ASSERT_EQ(Sh("ip -n " + PodNs(a) + " -6 addr del 2001:db8:1::10/128 dev eth0"), 0);
  expect_named("address 2001:db8:1::10/128 on eth0 is missing in the pod");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
  EXPECT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");

  // IPv4 in the same Check: the host's /32 route, and the eBPF entry.
  ASSERT_EQ(Sh("ip -n " + node_ + " route del 198.18.0.10/32 dev " + veth), 0);
  expect_named("route 198.18.0.10/32 dev " + veth + " is missing in the host");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(programs_->DeleteEndpoint(Ipv4Addr::Parse("198.18.0.10").value()));
  expect_named("eBPF endpoint entry (198.18.0.10) is missing");
  ASSERT_OK(ebpf_->Ensure(a));
  c = ebpf_->Check(a);
  ASSERT_OK(c);
  EXPECT_EQ(*c, *r);
}

TEST_F(EbpfDualStackRoot, DelLeavesNoIpv6RouteNeighbourProxyProgramOrEntry) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  auto b = MakePod("b", "198.18.0.11", "2001:db8:1::11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  // Traffic first, so the node has neighbour entries for the pods (and the
  // check below has something to find gone).
  ASSERT_TRUE(Ping6(host_, "2001:db8:1::10"));
  ASSERT_TRUE(Ping6(host_, "2001:db8:1::11"));
  ASSERT_TRUE(Contains(Neighbours6(), "2001:db8:1::10")) << Neighbours6();
  ASSERT_TRUE(Contains(Proxies(), "2001:db8:1::10")) << Proxies();
  ASSERT_OK(ebpf_->Remove(a));
  ASSERT_OK(ebpf_->Remove(a));  // twice
  // b's netns is destroyed first: DEL must still take everything.
  ASSERT_OK(netlink::DeleteNamedNetns(PodNs(b)));
  ASSERT_OK(ebpf_->Remove(b));
  for (const char* ip : {"2001:db8:1::10", "2001:db8:1::11"}) EXPECT_EQ(Mentions(ip), "") << ip;
  for (const char* ip : {"198.18.0.10", "198.18.0.11"}) {
    EXPECT_FALSE(Contains(Rules(), ip)) << Rules();
    EXPECT_FALSE(Contains(AllRoutes(), ip)) << AllRoutes();
  }
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  EXPECT_TRUE(entries->empty()) << entries->size() << " endpoint entries left";
  // No program is left on a pod's link (their veths are gone); the ENI's
  // stays for the next pod.
  std::string links = Links();
  EXPECT_FALSE(Contains(links, HostVethName(a.container_id)) || Contains(links, HostVethName(b.container_id)))
      << links;
  std::string filters = Capture("ip netns exec " + node_ + " bpftool net show");
  EXPECT_FALSE(Contains(filters, "tw")) << filters;
  EXPECT_TRUE(Contains(filters, "eth1(")) << filters;
}

// DEL of a pod whose record says another IPv6 than its wiring has (its
// allocation changed, no repair ran yet): the plan names the new address,
// the veth leads to the old one, and both go.
TEST_F(EbpfDualStackRoot, DelOfAPodWiredWithAnEarlierIpv6TakesThatOneToo) {
  auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
  ASSERT_OK(ebpf_->Ensure(a));
  PodNetwork recorded = a;
  recorded.ipv6 = PodIpv6{"2001:db8:1::20", kGateway6};
  recorded.virtual_type = VirtualType::kUnknown;
  ASSERT_OK(ebpf_->Remove(recorded));
  EXPECT_EQ(Mentions("2001:db8:1::10"), "");
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  EXPECT_TRUE(entries->empty());
}

// A pod wired again with another IPv6 (restart repair after its allocation
// changed) keeps nothing of the old one: the old address may go to another
// pod, and must not stay routed, proxied or configured here. Run in both
// flavours; the eBPF one by a restarted datapath on the same pins, as
// terwayd's repair does (the pod's flavour read from its entry).
class RewiredIpv6 : public EbpfDualStackRoot {
 protected:
  void Rewire(VirtualType flavour) {
    auto a = MakePod("a", "198.18.0.10", "2001:db8:1::10");
    a.virtual_type = flavour;
    ASSERT_OK(ebpf_->Ensure(a));
    ASSERT_TRUE(Ping6(PodNs(a), kVpcHost6));  // paths and neighbours ready
    ASSERT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::10\n");
    const std::string veth = HostVethName(a.container_id);

    PodNetwork moved = a;
    moved.ipv6 = PodIpv6{"2001:db8:1::20", kGateway6};
    if (flavour == VirtualType::kEbpf) moved.virtual_type = VirtualType::kUnknown;  // a recorded pod
    // Before the repair, Check names what is left of the old address.
    auto stale = ebpf_->Check(moved);
    ASSERT_FALSE(stale.ok());
    EXPECT_TRUE(Contains(stale.error().ToString(), "route 2001:db8:1::10/128 dev " + veth +
                                                       " leads to an address the pod no longer has in the host"))
        << stale.error().ToString();
    EXPECT_TRUE(Contains(stale.error().ToString(), "address 2001:db8:1::10/128 on eth0 is no longer the pod's in "
                                                   "the pod"))
        << stale.error().ToString();

    std::unique_ptr<ebpf::DatapathPrograms> reloaded;
    std::optional<EbpfEniDatapath> restarted;
    EbpfEniDatapath* dp = &*ebpf_;
    if (flavour == VirtualType::kEbpf) {
      ASSERT_NO_FATAL_FAILURE(Restart(reloaded, restarted));
      dp = &*restarted;
      auto f = dp->FlavourOf(moved);
      ASSERT_OK(f);
      ASSERT_EQ(*f, VirtualType::kEbpf) << "the recorded pod's flavour, from its entry";
    }
    auto r = dp->Ensure(moved);
    ASSERT_OK(r);
    EXPECT_EQ(r->ips[1], (cni::IpConfig{"2001:db8:1::20/128", "fe80::1", 1}));
    EXPECT_EQ(Mentions("2001:db8:1::10"), "") << "the old IPv6 is left";
    EXPECT_FALSE(Contains(PodAddrs6(a), "2001:db8:1::10")) << PodAddrs6(a);
    EXPECT_TRUE(Contains(Proxies(), "2001:db8:1::20")) << Proxies();
    ASSERT_OK(dp->Check(moved));
    EXPECT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::20\n");
    // The VPC, once it forgets who held the old address, finds nobody.
    ASSERT_EQ(Sh("ip -n " + vsw_ + " -6 neigh flush dev vsw0"), 0);
    EXPECT_FALSE(Ping6Once(host_, "2001:db8:1::10"));
    EXPECT_TRUE(Ping6(host_, "2001:db8:1::20"));
    if (flavour == VirtualType::kEbpf) {
      EXPECT_EQ(State(veth, ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
      const ebpf::Counters before = Count();
      EXPECT_TRUE(Talk(a, kGateway));
      EXPECT_GE(Count().pod_to_eni, before.pod_to_eni + 3) << "IPv4 still on the fast path";
    }

    // The pool gives the pod's current address to another pod of the node
    // before the first pod's next repair (which moves it on to a third):
    // the other pod gets the whole wiring, and the repair takes none of it
    // -- only the address left in the first pod.
    auto c = MakePod("c", "198.18.0.12", "2001:db8:1::20");
    c.virtual_type = flavour;
    ASSERT_OK(dp->Ensure(c));
    PodNetwork again = moved;
    again.ipv6 = PodIpv6{"2001:db8:1::30", kGateway6};
    ASSERT_OK(dp->Ensure(again));
    ASSERT_OK(dp->Check(again));
    ASSERT_OK(dp->Check(c));
    EXPECT_TRUE(Contains(Proxies(), "2001:db8:1::20")) << Proxies();
    EXPECT_FALSE(Contains(PodAddrs6(a), "2001:db8:1::20")) << PodAddrs6(a);
    EXPECT_EQ(Tcp6(PodNs(c), kVpcHost6), "ok 2001:db8:1::20\n");
    EXPECT_EQ(Tcp6(PodNs(a), kVpcHost6), "ok 2001:db8:1::30\n");

    // Back to IPv4 only: nothing of its IPv6 stays with the first pod.
    PodNetwork v4only = again;
    v4only.ipv6.reset();
    ASSERT_OK(dp->Ensure(v4only));
    ASSERT_OK(dp->Check(v4only));
    EXPECT_EQ(Mentions("2001:db8:1::30"), "");
    EXPECT_EQ(Capture("ip -n " + PodNs(a) + " -6 addr show scope global"), "");
    ASSERT_OK(dp->Check(c));
  }
};

TEST_F(RewiredIpv6, AnEbpfPodKeepsNothingOfItsOldIpv6) { Rewire(VirtualType::kEbpf); }
TEST_F(RewiredIpv6, AVethPodKeepsNothingOfItsOldIpv6) { Rewire(VirtualType::kVeth); }

// The same for the IPv4 side of the engine's fix: a veth pod wired again
// with another IPv4 gets a new veth (its alias names the address), and the
// old address's rules go too -- found through the old veth before it goes.
TEST_F(EbpfDualStackRoot, AVethPodRewiredWithAnotherIpv4KeepsNoRuleOfTheOldOne) {
  auto a = MakePod("a", "198.18.0.10");
  a.virtual_type = VirtualType::kVeth;
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_TRUE(Contains(Rules(), "198.18.0.10")) << Rules();
  PodNetwork moved = a;
  moved.ip.ip = "198.18.0.30";
  EXPECT_EQ(Sh("ip -n " + vsw_ + " neigh replace 198.18.0.30 lladdr " + kEniMac + " dev vsw0 nud permanent"), 0);
  ASSERT_OK(ebpf_->Ensure(moved));
  EXPECT_FALSE(Contains(Rules(), "198.18.0.10 ")) << Rules();
  EXPECT_FALSE(Contains(AllRoutes(), "198.18.0.10 ")) << AllRoutes();
  ASSERT_OK(ebpf_->Check(moved));
  EXPECT_TRUE(Ping(a, kGateway));
}

}  // namespace
}  // namespace terway::datapath
