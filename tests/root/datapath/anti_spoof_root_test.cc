// Anti-spoofing with real traffic on the emulated VPC's Linux fabric: a pod
// that forges its source (raw socket) reaches nobody -- not a pod on its
// node, not its node, not a pod on another instance -- while its honest
// packets pass. The VPC alone would not stop it: the router accepts any
// source the ENI holds, and pod a1 shares its ENI with pod a3, whose
// address it forges (the NetworkPolicy bypass of issue 12: the allowed
// client's IP). Without the table every forged packet arrives (the control
// in the first test).
#include "datapath/anti_spoof.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>
#include <string>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "datapath/shared_eni.h"
#include "netlink/handle.h"
#include "root/datapath/spoof_traffic.h"
#include "root/datapath/vpc_world.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace vpc_world;
using netlink::InetAddr;
using testing::Capture;

constexpr uint16_t kPort = 7001;

uint64_t Dropped(AntiSpoofTable& t, const std::string& family) {
  auto d = t.ReadDrops();
  EXPECT_TRUE(d.ok()) << d.error().ToString();
  if (!d.ok()) return 0;
  for (const auto& x : *d) {
    if (x.family == family) return x.packets;
  }
  ADD_FAILURE() << "no drop counter for " << family;
  return 0;
}

class AntiSpoofVpcRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    ASSERT_OK(w_.fabric.EnsureVpc("vpc-test", Ipv4Cidr::Parse("198.18.0.0/16").value()));
    ASSERT_OK(w_.fabric.EnsureVSwitch({"vsw-one", Ipv4Cidr::Parse("198.18.1.0/24").value(), Ip("198.18.1.253")}));
    ASSERT_OK(w_.fabric.EnsureInstance("i-a", eni_a_));
    ASSERT_OK(w_.fabric.EnsureInstance("i-b", eni_b_));
    ASSERT_OK(w_.fabric.SetEniIps(eni_a_));
    ASSERT_OK(w_.fabric.AttachEni("i-a", eni_a2_, 1));
    ASSERT_OK(w_.fabric.AttachEni("i-b", eni_b2_, 1));
    node_a_ = w_.fabric.InstanceNetns("i-a");
    node_b_ = w_.fabric.InstanceNetns("i-b");
    dp_a_ = std::make_unique<SharedEniDatapath>(SharedEniOptions{node_a_, 1500, VSwitchOne});
    dp_b_ = std::make_unique<SharedEniDatapath>(SharedEniOptions{node_b_, 1500, VSwitchOne});
    table_a_ = std::make_unique<AntiSpoofTable>(node_a_);
    // a1 forges; a3 shares a1's ENI (the address a1 forges); a2 is on the
    // same node, another ENI; b1 on the other instance.
    a1_ = MakePod("a1", eni_a2_, "198.18.1.21");
    a3_ = MakePod("a3", eni_a2_, "198.18.1.20");
    a2_ = MakePod("a2", eni_a_, "198.18.1.12");
    b1_ = MakePod("b1", eni_b2_, "198.18.1.31");
    for (auto* p : {&a1_, &a3_, &a2_}) ASSERT_OK(dp_a_->Ensure(*p));
    ASSERT_OK(dp_b_->Ensure(b1_));
    for (auto* p : {&a1_, &a3_, &a2_}) ASSERT_OK(dp_a_->Check(*p));
    ASSERT_TRUE(PingFrom(Ns(a1_), "198.18.1.31")) << "a1 -> b1 across the VPC";
    ASSERT_TRUE(PingFrom(Ns(a1_), "198.18.1.12")) << "a1 -> a2 on its node";
  }

  PodNetwork MakePod(const std::string& tag, const vpcsim::FabricEni& eni, const char* ip) {
    std::string ns = "tap" + tag + w_.s;
    w_.pod_netns.push_back(ns);
    Status st = netlink::CreateNamedNetns(ns);
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    PodNetwork p;
    p.container_id = "ctr-" + tag + "-" + w_.s;
    p.netns = netlink::NetnsPath(ns);
    p.ifname = "eth0";
    p.pod_namespace = "default";
    p.pod_name = tag;
    p.ip.ip = ip;
    p.ip.eni_id = eni.eni_id;
    p.ip.eni_mac = eni.mac.ToString();
    p.ip.eni_primary_ip = eni.ips[0].ToString();
    p.ip.vswitch_id = eni.vswitch_id;
    return p;
  }
  static std::string Ns(const PodNetwork& p) { return p.netns.substr(p.netns.rfind('/') + 1); }

  // What arrived of one attack: per receiver, forged and honest datagrams.
  struct Seen {
    int forged = 0, honest = 0;
  };
  struct Attack {
    Seen pod_same_node, node, pod_other_node;
    uint64_t dropped = 0;  // by the table, meanwhile
  };
  // a1 sends 5 forged datagrams to each target, then 5 honest ones on the
  // same path: once the honest ones are in, forged ones that got through
  // are in too. Forged sources: a3's address (held by a1's own ENI, so the
  // VPC accepts it) towards b1 and a2; an unused vSwitch address towards
  // the node.
  Attack Run() {
    Attack out;
    testing::UdpReceiver at_a2, at_node, at_b1;
    EXPECT_TRUE(at_a2.Open(Ns(a2_), kPort).ok());
    EXPECT_TRUE(at_node.Open(node_a_, kPort).ok());
    EXPECT_TRUE(at_b1.Open(Ns(b1_), kPort).ok());
    const uint64_t before = Dropped(*table_a_, "ipv4");
    const Ipv4Addr self = Ip("198.18.1.21"), a3 = Ip("198.18.1.20"), stray = Ip("198.18.1.99");
    struct Target {
      Ipv4Addr dst, forged;
      testing::UdpReceiver* rx;
      Seen* seen;
    };
    const Target targets[] = {{Ip("198.18.1.12"), a3, &at_a2, &out.pod_same_node},
                              {Ip("198.18.1.10"), stray, &at_node, &out.node},
                              {Ip("198.18.1.31"), a3, &at_b1, &out.pod_other_node}};
    for (const auto& t : targets) ExpectOk(testing::SendForgedUdp(Ns(a1_), t.forged, t.dst, kPort, 5));
    for (const auto& t : targets) ExpectOk(testing::SendForgedUdp(Ns(a1_), self, t.dst, kPort, 5));
    for (const auto& t : targets) {
      t.seen->honest = t.rx->WaitFor(self, 5);
      t.seen->forged = t.rx->From(t.forged);
    }
    out.dropped = Dropped(*table_a_, "ipv4") - before;
    return out;
  }
  static void ExpectOk(const Status& s) { EXPECT_TRUE(s.ok()) << s.error().ToString(); }

  const vpcsim::FabricEni eni_a_ = Eni("eni-a", "00:16:3e:00:00:0a", {"198.18.1.10", "198.18.1.12"});
  const vpcsim::FabricEni eni_b_ = Eni("eni-b", "00:16:3e:00:00:0b", {"198.18.1.11"});
  const vpcsim::FabricEni eni_a2_ = Eni("eni-a2", "00:16:3e:00:00:a2", {"198.18.1.20", "198.18.1.21"});
  const vpcsim::FabricEni eni_b2_ = Eni("eni-b2", "00:16:3e:00:00:b2", {"198.18.1.30", "198.18.1.31"});
  VpcWorld w_{"tas"};
  std::string node_a_, node_b_;
  std::unique_ptr<SharedEniDatapath> dp_a_, dp_b_;
  std::unique_ptr<AntiSpoofTable> table_a_;
  PodNetwork a1_, a2_, a3_, b1_;
};

TEST_F(AntiSpoofVpcRoot, ForgedSourcesReachNobodyHonestOnesPass) {
  Attack guarded = Run();
  EXPECT_EQ(guarded.pod_same_node.honest, 5);
  EXPECT_EQ(guarded.node.honest, 5);
  EXPECT_EQ(guarded.pod_other_node.honest, 5);
  EXPECT_EQ(guarded.pod_same_node.forged, 0) << "a pod on the same node received a forged source";
  EXPECT_EQ(guarded.node.forged, 0) << "the node received a forged source";
  EXPECT_EQ(guarded.pod_other_node.forged, 0) << "a pod on another instance received a forged source";
  EXPECT_EQ(guarded.dropped, 15u) << "every forged packet is counted as dropped";

  // The control: without the table every forged packet arrives -- the
  // defect this table fixes (host veths are loose whatever their own
  // rp_filter says). Check names it; the next change (here a1's repair)
  // recreates the table with every running pod's element, taken from the
  // host veths' aliases, so no pod waits for its own repair.
  ASSERT_EQ(std::system(("ip netns exec " + node_a_ + " nft delete table inet terway_antispoof").c_str()), 0);
  Attack open = Run();
  EXPECT_EQ(open.pod_same_node.forged, 5);
  EXPECT_EQ(open.node.forged, 5);
  EXPECT_EQ(open.pod_other_node.forged, 5) << "the VPC accepts a3's address from the ENI a1 shares with it";
  for (auto* p : {&a1_, &a3_, &a2_}) {
    auto broken = dp_a_->Check(*p);
    ASSERT_FALSE(broken.ok());
    EXPECT_NE(broken.error().ToString().find("table inet terway_antispoof is missing"), std::string::npos)
        << broken.error().ToString();
  }
  ASSERT_OK(dp_a_->Ensure(a1_));
  for (auto* p : {&a1_, &a3_, &a2_}) ASSERT_OK(dp_a_->Check(*p));
  EXPECT_TRUE(PingFrom(Ns(a2_), "198.18.1.21")) << "a2 works without a repair of its own";

  // Fail closed: a veth of ours without its element passes nothing; Check
  // names it and Ensure puts it back.
  ASSERT_OK(table_a_->Revoke(HostVethName(a2_.container_id), {InetAddr(Ip("198.18.1.12"))}));
  EXPECT_FALSE(PingOnce(Ns(a2_), "198.18.1.21")) << "a guarded veth without an element is closed, not open";
  auto a2_broken = dp_a_->Check(a2_);
  ASSERT_FALSE(a2_broken.ok());
  EXPECT_NE(a2_broken.error().ToString().find("element " + HostVethName(a2_.container_id) + " . 198.18.1.12"),
            std::string::npos)
      << a2_broken.error().ToString();
  ASSERT_OK(dp_a_->Ensure(a2_));
  ASSERT_OK(dp_a_->Check(a2_));
  Attack repaired = Run();
  EXPECT_EQ(repaired.pod_same_node.honest, 5);
  EXPECT_EQ(repaired.pod_other_node.honest, 5);
  EXPECT_EQ(repaired.pod_same_node.forged + repaired.node.forged + repaired.pod_other_node.forged, 0);
  EXPECT_EQ(repaired.dropped, 15u);

  // Remove takes the pod's element; nothing else.
  ASSERT_OK(dp_a_->Remove(a3_));
  auto st = table_a_->List();
  ASSERT_OK(st);
  EXPECT_EQ(st->allowed, (std::set<AntiSpoofElement>{{HostVethName(a1_.container_id), InetAddr(Ip("198.18.1.21"))},
                                                      {HostVethName(a2_.container_id), InetAddr(Ip("198.18.1.12"))}}));
  EXPECT_TRUE(st->guarded.empty()) << "tw* veths are guarded by the wildcard, not listed";
}

TEST_F(AntiSpoofVpcRoot, TheTableSurvivesABrokenStructureWithItsElementsAndCounts) {
  Attack first = Run();
  ASSERT_EQ(first.dropped, 15u);
  // Someone flushes the hook chain: nothing is guarded until the repair.
  ASSERT_EQ(std::system(("ip netns exec " + node_a_ + " nft flush chain inet terway_antispoof prerouting").c_str()), 0);
  auto broken = dp_a_->Check(a1_);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().ToString().find("chain prerouting has 0 rules, not 2"), std::string::npos)
      << broken.error().ToString();
  ASSERT_OK(table_a_->Ensure());
  for (auto* p : {&a1_, &a3_, &a2_}) ASSERT_OK(dp_a_->Check(*p));
  EXPECT_GE(Dropped(*table_a_, "ipv4"), 15u) << "the counter kept its value through the repair";
  Attack again = Run();
  EXPECT_EQ(again.pod_same_node.forged + again.node.forged + again.pod_other_node.forged, 0);
  EXPECT_EQ(again.pod_other_node.honest, 5);
}

TEST_F(AntiSpoofVpcRoot, Ipv6PassesOnlyLinkLocalAndTheAllowedSources) {
  const std::string veth = HostVethName(a1_.container_id);
  std::string disabled = Capture("ip netns exec " + node_a_ + " cat /proc/sys/net/ipv6/conf/" + veth + "/disable_ipv6");
  if (disabled != "0\n") GTEST_SKIP() << "IPv6 is disabled on the node's veths (disable_ipv6=" << disabled << ")";
  // Link-local traffic (neighbour discovery, MLD, DAD, a ping to the host
  // veth's link-local address) passes without an element.
  std::string host_ll;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    std::string a = Capture("ip -n " + node_a_ + " -6 -o addr show dev " + veth + " scope link");
    size_t at = a.find("inet6 ");
    if (at != std::string::npos && a.find("tentative") == std::string::npos) {
      host_ll = a.substr(at + 6, a.find('/', at) - at - 6);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < end);
  ASSERT_FALSE(host_ll.empty()) << "the host veth got no usable link-local address";
  EXPECT_TRUE(PingFrom(Ns(a1_), "-6 " + host_ll + "%eth0")) << "link-local ping to the host veth";
  EXPECT_EQ(Dropped(*table_a_, "ipv6"), 0u) << "link-local traffic that cannot be forwarded is not spoofing";

  // Any other IPv6 source is dropped and counted.
  std::string mac = Capture("ip netns exec " + node_a_ + " cat /sys/class/net/" + veth + "/address");
  mac.erase(mac.find_last_not_of('\n') + 1);
  ASSERT_EQ(std::system(("ip -n " + Ns(a1_) + " -6 route add 2001:db8::/64 dev eth0 && ip -n " + Ns(a1_) +
                         " -6 neigh replace 2001:db8::1 lladdr " + mac + " dev eth0 nud permanent")
                            .c_str()),
            0);
  ASSERT_OK(testing::SendForgedUdp6(Ns(a1_), "2001:db8::99", "2001:db8::1", kPort, 4));
  // The family is one set away: an IPv6 element lets its source through.
  ASSERT_OK(table_a_->Allow(veth, {InetAddr(Ip("198.18.1.21")), InetAddr::Parse("2001:db8::21").value()}));
  ASSERT_OK(testing::SendForgedUdp6(Ns(a1_), "2001:db8::21", "2001:db8::1", kPort, 3));
  ASSERT_OK(testing::SendForgedUdp6(Ns(a1_), "2001:db8::99", "2001:db8::1", kPort, 1));
  EXPECT_EQ(Dropped(*table_a_, "ipv6"), 5u) << "4 + 1 forged; the 3 from the allowed address pass";
  // Allow is exact: Ensure puts the pod back to its one IPv4 address.
  ASSERT_OK(dp_a_->Ensure(a1_));
  auto st = table_a_->List();
  ASSERT_OK(st);
  EXPECT_EQ(st->AllowedOn(veth), std::set<InetAddr>{InetAddr(Ip("198.18.1.21"))});
}

// Host veths of other naming schemes (upstream Terway's cali + 11 hex chars,
// adopted at a takeover) are guarded only once listed through the API; GC
// forgets interfaces that are gone.
TEST_F(AntiSpoofVpcRoot, AnotherNamingSchemeIsGuardedThroughTheApiAndCollected) {
  const std::string tw = HostVethName(a1_.container_id);
  const std::string cali = "cali0123456789a";
  // Renaming needs the link down, which drops its routes: put the pod's host
  // route back on the new name, as upstream Terway wires it.
  ASSERT_EQ(std::system(("ip -n " + node_a_ + " link set " + tw + " down && ip -n " + node_a_ + " link set " + tw +
                         " name " + cali + " && ip -n " + node_a_ + " link set " + cali + " up && ip -n " + node_a_ +
                         " route replace 198.18.1.21/32 dev " + cali + " scope link")
                            .c_str()),
            0);
  ASSERT_TRUE(PingFrom(Ns(a1_), "198.18.1.12")) << "the renamed pod still works";
  Attack unguarded = Run();
  EXPECT_EQ(unguarded.pod_same_node.forged, 5) << "an interface outside tw* is not guarded by the wildcard";

  ASSERT_OK(table_a_->Allow(cali, {InetAddr(Ip("198.18.1.21"))}));
  ASSERT_OK(table_a_->Check(cali, InetAddr(Ip("198.18.1.21"))));
  Attack guarded = Run();
  EXPECT_EQ(guarded.pod_same_node.honest, 5);
  EXPECT_EQ(guarded.pod_other_node.honest, 5);
  EXPECT_EQ(guarded.pod_same_node.forged + guarded.node.forged + guarded.pod_other_node.forged, 0);
  EXPECT_EQ(guarded.dropped, 15u);

  // Revoke keeps the interface guarded: with no element it passes nothing.
  ASSERT_OK(table_a_->Revoke(cali, {InetAddr(Ip("198.18.1.21"))}));
  EXPECT_FALSE(PingOnce(Ns(a1_), "198.18.1.12"));
  ASSERT_OK(table_a_->Allow(cali, {InetAddr(Ip("198.18.1.21"))}));
  EXPECT_TRUE(PingFrom(Ns(a1_), "198.18.1.12"));

  // GC: the tw element's interface is gone (renamed); the cali one is live.
  // The datapath's GC keeps the pod (its alias survived the rename).
  auto removed = dp_a_->CollectGarbage({a1_.container_id, a2_.container_id, a3_.container_id});
  ASSERT_OK(removed);
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0], "anti-spoofing element " + tw + " . 198.18.1.21");
  auto st = table_a_->List();
  ASSERT_OK(st);
  EXPECT_TRUE(st->Guards(cali));
  EXPECT_EQ(st->AllowedOn(cali).size(), 1u);
  EXPECT_EQ(st->guarded, std::set<std::string>{cali});
  // The cali pod goes away: its element and guard follow.
  ASSERT_EQ(std::system(("ip -n " + node_a_ + " link del " + cali).c_str()), 0);
  auto gone = table_a_->CollectGarbage();
  ASSERT_OK(gone);
  EXPECT_EQ(*gone, (std::vector<std::string>{"anti-spoofing element " + cali + " . 198.18.1.21",
                                             "anti-spoofing guard of " + cali}));
  st = table_a_->List();
  ASSERT_OK(st);
  EXPECT_FALSE(st->Guards(cali));
  EXPECT_EQ(st->allowed.size(), 2u) << "a2's and a3's elements stay";

  // Names that could escape the nft string or become wildcards are refused
  // and change nothing.
  auto bad = table_a_->Allow("tw*", {InetAddr(Ip("198.18.1.21"))});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().ToString().find("'*'"), std::string::npos) << bad.error().ToString();
  auto same = table_a_->List();
  ASSERT_OK(same);
  EXPECT_EQ(same->allowed, st->allowed);
}

TEST_F(AntiSpoofVpcRoot, GcCollectsTheElementOfAPodWhoseNetnsVanished) {
  // The sandbox is destroyed without a DEL: its veth pair goes with it.
  ASSERT_OK(netlink::DeleteNamedNetns(Ns(a3_)));
  auto removed = dp_a_->CollectGarbage({a1_.container_id, a2_.container_id});
  ASSERT_OK(removed);
  const std::string line = "anti-spoofing element " + HostVethName(a3_.container_id) + " . 198.18.1.20";
  EXPECT_NE(std::find(removed->begin(), removed->end(), line), removed->end()) << ::testing::PrintToString(*removed);
  auto st = table_a_->List();
  ASSERT_OK(st);
  EXPECT_TRUE(st->AllowedOn(HostVethName(a3_.container_id)).empty());
  EXPECT_EQ(st->allowed.size(), 2u);
  ASSERT_OK(dp_a_->Check(a1_));
}

}  // namespace
}  // namespace terway::datapath
