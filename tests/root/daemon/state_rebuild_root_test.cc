// terwayd's state rebuild reading a node's kernel: which host veths belong to
// pods (ours by alias, upstream Terway's by name and /32 route), with which
// address, in which pod namespace -- on a machine where other nodes' pods
// reuse the same interface indexes (every pod's eth0 is index 2).
#include "daemon/state_rebuild.h"

#include <gtest/gtest.h>

#include <map>

#include "datapath/layout.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::daemon {
namespace {

class StateRebuildRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, veths)";
    const std::string s = testing::UniqueSuffix().substr(0, 6);
    for (const char* n : {"n1", "n2", "pa", "pb", "pu", "px"}) {
      names_[n] = std::string("trb") + n + s;
      ASSERT_TRUE(netlink::CreateNamedNetns(names_[n]).ok());
    }
  }
  void TearDown() override {
    for (const auto& [k, v] : names_) (void)netlink::DeleteNamedNetns(v);
  }
  // A pod wired from `node`: a veth host -> eth0 in `pod`, the pod's address
  // on eth0, a /32 route to it on the node side, and (ours) the owner alias.
  void Wire(const std::string& node, const std::string& pod, const std::string& host_veth, const std::string& ip,
            const std::string& container_id) {
    auto h = netlink::Handle::OpenIn(names_[node]);
    ASSERT_TRUE(h.ok()) << h.error().ToString();
    netlink::VethSpec v;
    v.name = host_veth;
    v.peer_name = "eth0";
    v.peer_netns = names_[pod];
    ASSERT_TRUE(h->CreateVeth(v).ok());
    auto link = h->GetLink(host_veth);
    ASSERT_TRUE(link.ok());
    ASSERT_TRUE(h->SetLinkUp(link->index).ok());
    if (!container_id.empty()) {
      ASSERT_TRUE(h->SetAlias(link->index, datapath::PodLinkAlias(*Ipv4Addr::Parse(ip), container_id)).ok());
    }
    netlink::Route r;
    r.dst = netlink::InetPrefix::Host(*Ipv4Addr::Parse(ip));
    r.oif = link->index;
    ASSERT_TRUE(h->AddRoute(r).ok());
    auto p = netlink::Handle::OpenIn(names_[pod]);
    ASSERT_TRUE(p.ok());
    auto eth0 = p->GetLink("eth0");
    ASSERT_TRUE(eth0.ok());
    ASSERT_TRUE(p->AddAddress({eth0->index, *netlink::InetPrefix::Parse(ip + "/32")}).ok());
  }

  // The pod's IPv6 as a dual-stack datapath wires it: its /128 on eth0, and
  // (route) the /128 route through the host veth on the node.
  void WireIpv6(const std::string& node, const std::string& pod, const std::string& host_veth,
                const std::string& ipv6, bool route) {
    auto v6 = netlink::InetAddr::Parse(ipv6);
    ASSERT_TRUE(v6.ok());
    if (route) {
      auto h = netlink::Handle::OpenIn(names_[node]);
      ASSERT_TRUE(h.ok());
      auto link = h->GetLink(host_veth);
      ASSERT_TRUE(link.ok());
      netlink::Route r;
      r.dst = netlink::InetPrefix::Host(*v6);
      r.oif = link->index;
      Status st = h->AddRoute(r);
      ASSERT_TRUE(st.ok()) << st.error().ToString();
    }
    auto p = netlink::Handle::OpenIn(names_[pod]);
    ASSERT_TRUE(p.ok());
    auto eth0 = p->GetLink("eth0");
    ASSERT_TRUE(eth0.ok());
    netlink::Address a{eth0->index, netlink::InetPrefix::Host(*v6)};
    a.nodad = true;
    Status st = p->AddAddress(a);
    ASSERT_TRUE(st.ok()) << st.error().ToString();
  }

  std::vector<HostSandbox> Discover(const std::string& node, bool ipv6) {
    std::vector<HostSandbox> found;
    Status st = netlink::RunInNetns(names_[node], [&]() -> Status {
      TERWAY_ASSIGN_OR_RETURN(found, DiscoverHostSandboxes("/var/run/netns", ipv6));
      return Ok();
    });
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    return found;
  }

  std::map<std::string, std::string> names_;
};

// Dual stack: each pod's IPv6 is the /128 route through its host veth, or,
// where there is none (an exclusive ENI's, a lost route), the one global
// /128 in its namespace; never another node's.
TEST_F(StateRebuildRoot, FindsEachPodsIpv6) {
  Wire("n1", "pa", "tw0000000000a01", "198.18.7.1", "c-a");
  WireIpv6("n1", "pa", "tw0000000000a01", "fd00::7:1", /*route=*/true);
  Wire("n1", "pu", "cali0123456789a", "198.18.7.3", "");
  WireIpv6("n1", "pu", "cali0123456789a", "fd00::7:3", /*route=*/false);
  Wire("n1", "px", "tw0000000000a02", "198.18.7.5", "c-v4");  // IPv4 only
  Wire("n2", "pb", "tw0000000000b01", "198.18.7.2", "c-b");
  WireIpv6("n2", "pb", "tw0000000000b01", "fd00::7:2", /*route=*/true);

  std::map<std::string, std::string> v6;
  for (const auto& s : Discover("n1", /*ipv6=*/true)) v6[s.ip] = s.ipv6;
  EXPECT_EQ(v6, (std::map<std::string, std::string>{
                    {"198.18.7.1", "fd00::7:1"}, {"198.18.7.3", "fd00::7:3"}, {"198.18.7.5", ""}}));
  // An IPv4-only node reads no IPv6.
  for (const auto& s : Discover("n1", /*ipv6=*/false)) EXPECT_EQ(s.ipv6, "") << s.ip;
}

TEST_F(StateRebuildRoot, FindsEachPodsAddressAndNamespaceOnItsOwnNode) {
  Wire("n1", "pa", "tw0000000000a01", "198.18.7.1", "c-a");
  Wire("n1", "pu", "cali0123456789a", "198.18.7.3", "");  // upstream Terway's wiring
  // Another node's pods: same indexes on their side, other namespaces.
  Wire("n2", "pb", "tw0000000000b01", "198.18.7.2", "c-b");
  Wire("n2", "px", "cali0123456789b", "198.18.7.4", "");
  // A veth that is no pod's (no alias, not cali): ignored.
  {
    auto h = netlink::Handle::OpenIn(names_["n1"]);
    ASSERT_TRUE(h.ok());
    netlink::VethSpec v;
    v.name = "other0";
    v.peer_name = "other1";
    v.peer_netns = names_["n2"];
    ASSERT_TRUE(h->CreateVeth(v).ok());
  }
  std::vector<HostSandbox> found;
  Status st = netlink::RunInNetns(names_["n1"], [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN(found, DiscoverHostSandboxes());
    return Ok();
  });
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  std::map<std::string, HostSandbox> by_ip;
  for (const auto& s : found) by_ip[s.ip] = s;
  ASSERT_EQ(by_ip.size(), 2u) << "node1 holds two pods";
  EXPECT_EQ(by_ip["198.18.7.1"].host_veth, "tw0000000000a01");
  EXPECT_EQ(by_ip["198.18.7.1"].container_id, "c-a");
  EXPECT_TRUE(netlink::SameNetns(by_ip["198.18.7.1"].netns, names_["pa"])) << by_ip["198.18.7.1"].netns;
  EXPECT_EQ(by_ip["198.18.7.3"].host_veth, "cali0123456789a");
  EXPECT_EQ(by_ip["198.18.7.3"].container_id, "");
  EXPECT_TRUE(netlink::SameNetns(by_ip["198.18.7.3"].netns, names_["pu"])) << by_ip["198.18.7.3"].netns;
}

}  // namespace
}  // namespace terway::daemon
