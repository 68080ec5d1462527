// The hand-built link messages, parsed back attribute by attribute.
#include "netlink/message.h"

#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>

#include <string>

#include <gtest/gtest.h>
#include <netlink/attr.h>

namespace terway::netlink {
namespace {

MacAddr Mac(const char* s) { return MacAddr::Parse(s).value(); }

// Top-level attributes of an RTM_*LINK message.
struct Parsed {
  nlmsghdr* hdr = nullptr;
  ifinfomsg* ifi = nullptr;
  nlattr* tb[IFLA_MAX + 1] = {};
};

Parsed ParseLink(nl_msg* msg) {
  Parsed p;
  p.hdr = nlmsg_hdr(msg);
  p.ifi = static_cast<ifinfomsg*>(nlmsg_data(p.hdr));
  EXPECT_EQ(nlmsg_parse(p.hdr, sizeof(ifinfomsg), p.tb, IFLA_MAX, nullptr), 0);
  return p;
}

std::string MacOf(nlattr* a) {
  EXPECT_NE(a, nullptr);
  if (!a) return "";
  EXPECT_EQ(nla_len(a), 6);
  std::array<uint8_t, 6> b{};
  std::memcpy(b.data(), nla_data(a), 6);
  return MacAddr(b).ToString();
}

TEST(BuildVethCreate, PutsThePeerInItsNamespaceWithItsMac) {
  VethSpec spec;
  spec.name = "en-1";
  spec.peer_name = "eth1";
  spec.peer_mac = Mac("00:16:3e:00:00:01");
  spec.mtu = 1400;
  auto msg = BuildVethCreate(spec, 42);
  ASSERT_TRUE(msg.ok()) << msg.error().ToString();
  Parsed p = ParseLink(msg->get());
  EXPECT_EQ(p.hdr->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(p.hdr->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  ASSERT_NE(p.tb[IFLA_IFNAME], nullptr);
  EXPECT_STREQ(nla_get_string(p.tb[IFLA_IFNAME]), "en-1");
  EXPECT_EQ(p.tb[IFLA_ADDRESS], nullptr) << "own MAC left to the kernel";
  EXPECT_EQ(p.tb[IFLA_NET_NS_FD], nullptr) << "this end stays";
  ASSERT_NE(p.tb[IFLA_MTU], nullptr);
  EXPECT_EQ(nla_get_u32(p.tb[IFLA_MTU]), 1400u);

  nlattr* info[IFLA_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(info, IFLA_INFO_MAX, p.tb[IFLA_LINKINFO], nullptr), 0);
  EXPECT_STREQ(nla_get_string(info[IFLA_INFO_KIND]), "veth");
  nlattr* data[VETH_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(data, VETH_INFO_MAX, info[IFLA_INFO_DATA], nullptr), 0);
  nlattr* peer = data[VETH_INFO_PEER];
  ASSERT_NE(peer, nullptr);
  // Payload: ifinfomsg, then the peer's attributes.
  ASSERT_GE(nla_len(peer), static_cast<int>(sizeof(ifinfomsg)));
  auto* peer_attrs = reinterpret_cast<nlattr*>(static_cast<char*>(nla_data(peer)) + NLMSG_ALIGN(sizeof(ifinfomsg)));
  nlattr* ptb[IFLA_MAX + 1] = {};
  ASSERT_EQ(nla_parse(ptb, IFLA_MAX, peer_attrs, nla_len(peer) - NLMSG_ALIGN(sizeof(ifinfomsg)), nullptr), 0);
  EXPECT_STREQ(nla_get_string(ptb[IFLA_IFNAME]), "eth1");
  EXPECT_EQ(MacOf(ptb[IFLA_ADDRESS]), "00:16:3e:00:00:01");
  ASSERT_NE(ptb[IFLA_NET_NS_FD], nullptr);
  EXPECT_EQ(nla_get_u32(ptb[IFLA_NET_NS_FD]), 42u);
}

TEST(BuildVethCreate, SameNamespaceAndBadNames) {
  VethSpec spec;
  spec.name = "a";
  spec.peer_name = "b";
  auto msg = BuildVethCreate(spec, -1);
  ASSERT_TRUE(msg.ok());
  Parsed p = ParseLink(msg->get());
  nlattr* info[IFLA_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(info, IFLA_INFO_MAX, p.tb[IFLA_LINKINFO], nullptr), 0);
  nlattr* data[VETH_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(data, VETH_INFO_MAX, info[IFLA_INFO_DATA], nullptr), 0);
  nlattr* peer = data[VETH_INFO_PEER];
  auto* peer_attrs = reinterpret_cast<nlattr*>(static_cast<char*>(nla_data(peer)) + NLMSG_ALIGN(sizeof(ifinfomsg)));
  nlattr* ptb[IFLA_MAX + 1] = {};
  ASSERT_EQ(nla_parse(ptb, IFLA_MAX, peer_attrs, nla_len(peer) - NLMSG_ALIGN(sizeof(ifinfomsg)), nullptr), 0);
  EXPECT_EQ(ptb[IFLA_NET_NS_FD], nullptr);
  EXPECT_EQ(ptb[IFLA_ADDRESS], nullptr);

  spec.peer_name = "a-name-longer-than-15";
  auto bad = BuildVethCreate(spec, -1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(BuildBridgeCreate, PinsTheMac) {
  auto msg = BuildBridgeCreate("br-x", Mac("ee:ff:ff:ff:ff:ff"));
  ASSERT_TRUE(msg.ok());
  Parsed p = ParseLink(msg->get());
  EXPECT_STREQ(nla_get_string(p.tb[IFLA_IFNAME]), "br-x");
  EXPECT_EQ(MacOf(p.tb[IFLA_ADDRESS]), "ee:ff:ff:ff:ff:ff");
  nlattr* info[IFLA_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(info, IFLA_INFO_MAX, p.tb[IFLA_LINKINFO], nullptr), 0);
  EXPECT_STREQ(nla_get_string(info[IFLA_INFO_KIND]), "bridge");
}

TEST(BuildBridgePortIsolated, UsesTheBridgeSlaveOptions) {
  for (bool on : {true, false}) {
    auto msg = BuildBridgePortIsolated(7, on);
    ASSERT_TRUE(msg.ok());
    Parsed p = ParseLink(msg->get());
    EXPECT_EQ(p.ifi->ifi_index, 7);
    EXPECT_EQ(p.hdr->nlmsg_flags & NLM_F_CREATE, 0) << "changes an existing port only";
    nlattr* info[IFLA_INFO_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(info, IFLA_INFO_MAX, p.tb[IFLA_LINKINFO], nullptr), 0);
    EXPECT_EQ(info[IFLA_INFO_KIND], nullptr);
    EXPECT_STREQ(nla_get_string(info[IFLA_INFO_SLAVE_KIND]), "bridge");
    nlattr* port[IFLA_BRPORT_MAX + 1] = {};
    ASSERT_EQ(nla_parse_nested(port, IFLA_BRPORT_MAX, info[IFLA_INFO_SLAVE_DATA], nullptr), 0);
    ASSERT_NE(port[IFLA_BRPORT_ISOLATED], nullptr);
    EXPECT_EQ(nla_get_u8(port[IFLA_BRPORT_ISOLATED]), on ? 1 : 0);
  }
  EXPECT_FALSE(BuildBridgePortIsolated(0, true).ok());
}

TEST(BuildLinkChange, OnlyTheGivenFields) {
  LinkChange c;
  c.index = 3;
  c.up = true;
  c.master_index = 0;  // release from the bridge: an explicit 0
  auto msg = BuildLinkChange(c);
  ASSERT_TRUE(msg.ok());
  Parsed p = ParseLink(msg->get());
  EXPECT_EQ(p.ifi->ifi_index, 3);
  EXPECT_EQ(p.ifi->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(p.ifi->ifi_flags, static_cast<unsigned>(IFF_UP));
  ASSERT_NE(p.tb[IFLA_MASTER], nullptr);
  EXPECT_EQ(nla_get_u32(p.tb[IFLA_MASTER]), 0u);
  EXPECT_EQ(p.tb[IFLA_MTU], nullptr);
  EXPECT_EQ(p.tb[IFLA_IFNAME], nullptr);
  EXPECT_EQ(p.tb[IFLA_NET_NS_FD], nullptr);

  LinkChange d;
  d.index = 3;
  d.up = false;
  d.name = "eth9";
  d.netns_fd = 5;
  d.alias = "i-1 eni-1 00:16:3e:00:00:01";
  auto dmsg = BuildLinkChange(d);
  ASSERT_TRUE(dmsg.ok());
  Parsed q = ParseLink(dmsg->get());
  EXPECT_EQ(q.ifi->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(q.ifi->ifi_flags, 0u);
  EXPECT_STREQ(nla_get_string(q.tb[IFLA_IFNAME]), "eth9");
  EXPECT_EQ(nla_get_u32(q.tb[IFLA_NET_NS_FD]), 5u);
  EXPECT_STREQ(nla_get_string(q.tb[IFLA_IFALIAS]), "i-1 eni-1 00:16:3e:00:00:01");

  EXPECT_FALSE(BuildLinkChange(LinkChange{}).ok());
}

TEST(BuildFdb, IsStaticNotLocal) {
  FdbEntry e;
  e.port_index = 9;
  e.mac = Mac("00:16:3e:aa:bb:cc");
  auto msg = BuildFdb(true, e);
  ASSERT_TRUE(msg.ok());
  nlmsghdr* hdr = nlmsg_hdr(msg->get());
  EXPECT_EQ(hdr->nlmsg_type, RTM_NEWNEIGH);
  auto* ndm = static_cast<ndmsg*>(nlmsg_data(hdr));
  EXPECT_EQ(ndm->ndm_family, AF_BRIDGE);
  EXPECT_EQ(ndm->ndm_ifindex, 9);
  EXPECT_EQ(ndm->ndm_state, NUD_NOARP);
  EXPECT_EQ(ndm->ndm_flags, NTF_MASTER);
  nlattr* tb[NDA_MAX + 1] = {};
  ASSERT_EQ(nlmsg_parse(hdr, sizeof(ndmsg), tb, NDA_MAX, nullptr), 0);
  EXPECT_EQ(MacOf(tb[NDA_LLADDR]), "00:16:3e:aa:bb:cc");
  EXPECT_EQ(nlmsg_hdr(BuildFdb(false, e).value().get())->nlmsg_type, RTM_DELNEIGH);
}

ProxyNeighbor Proxy(int index, const char* ip) { return {index, InetAddr::Parse(ip).value()}; }

TEST(BuildProxyNeighbor, IsAProxyEntryOfTheAddressFamily) {
  auto msg = BuildProxyNeighbor(true, Proxy(7, "2001:db8:1::10"));
  ASSERT_TRUE(msg.ok()) << msg.error().ToString();
  nlmsghdr* hdr = nlmsg_hdr(msg->get());
  EXPECT_EQ(hdr->nlmsg_type, RTM_NEWNEIGH);
  EXPECT_EQ(hdr->nlmsg_flags & (NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_REPLACE);
  auto* ndm = static_cast<ndmsg*>(nlmsg_data(hdr));
  EXPECT_EQ(ndm->ndm_family, AF_INET6);
  EXPECT_EQ(ndm->ndm_ifindex, 7);
  EXPECT_EQ(ndm->ndm_flags, NTF_PROXY);
  nlattr* tb[NDA_MAX + 1] = {};
  ASSERT_EQ(nlmsg_parse(hdr, sizeof(ndmsg), tb, NDA_MAX, nullptr), 0);
  ASSERT_NE(tb[NDA_DST], nullptr);
  EXPECT_EQ(nla_len(tb[NDA_DST]), 16);
  EXPECT_EQ(tb[NDA_LLADDR], nullptr);  // the kernel answers with the link's own MAC
  // What the dump parser reads back is what was asked for.
  EXPECT_EQ(ParseProxyNeighbor(hdr), Proxy(7, "2001:db8:1::10"));

  auto del = BuildProxyNeighbor(false, Proxy(7, "2001:db8:1::10"));
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(nlmsg_hdr(del->get())->nlmsg_type, RTM_DELNEIGH);
  EXPECT_EQ(static_cast<ndmsg*>(nlmsg_data(nlmsg_hdr(del->get())))->ndm_flags, NTF_PROXY);

  auto v4 = BuildProxyNeighbor(true, Proxy(3, "198.18.0.10"));
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(static_cast<ndmsg*>(nlmsg_data(nlmsg_hdr(v4->get())))->ndm_family, AF_INET);
  EXPECT_EQ(ParseProxyNeighbor(nlmsg_hdr(v4->get())), Proxy(3, "198.18.0.10"));

  EXPECT_FALSE(BuildProxyNeighbor(true, Proxy(0, "2001:db8:1::10")).ok());
}

TEST(BuildProxyNeighborDump, AsksForProxyEntriesOnly) {
  auto msg = BuildProxyNeighborDump(AF_INET6);
  ASSERT_TRUE(msg.ok());
  nlmsghdr* hdr = nlmsg_hdr(msg->get());
  EXPECT_EQ(hdr->nlmsg_type, RTM_GETNEIGH);
  EXPECT_TRUE(hdr->nlmsg_flags & NLM_F_DUMP);
  auto* ndm = static_cast<ndmsg*>(nlmsg_data(hdr));
  EXPECT_EQ(ndm->ndm_family, AF_INET6);
  EXPECT_EQ(ndm->ndm_flags, NTF_PROXY);  // exactly: any other bit and the kernel dumps neighbours
}

TEST(ParseProxyNeighbor, IgnoresOrdinaryNeighbours) {
  auto msg = BuildProxyNeighbor(true, Proxy(7, "2001:db8:1::10"));
  ASSERT_TRUE(msg.ok());
  static_cast<ndmsg*>(nlmsg_data(nlmsg_hdr(msg->get())))->ndm_flags = 0;
  EXPECT_EQ(ParseProxyNeighbor(nlmsg_hdr(msg->get())), std::nullopt);
}

}  // namespace
}  // namespace terway::netlink
