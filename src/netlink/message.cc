#include "netlink/message.h"

#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <net/if.h>

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include <netlink/attr.h>

#include "netlink/names.h"

namespace terway::netlink {

namespace {

Error BuildError(const std::string& what) {
  return Errorf(ErrorCode::kInternal, "building netlink message: {} does not fit", what);
}

Result<NlMsgPtr> NewLinkMsg(int flags, int index) {
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_NEWLINK, flags));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) return BuildError("ifinfomsg");
  return msg;
}

Status PutMac(nl_msg* msg, const MacAddr& mac) {
  if (nla_put(msg, IFLA_ADDRESS, 6, mac.bytes().data()) < 0) return BuildError("IFLA_ADDRESS");
  return Ok();
}

}  // namespace

Result<NlMsgPtr> BuildVethCreate(const VethSpec& spec, int peer_netns_fd) {
  TERWAY_TRY(ValidateLinkName(spec.name));
  TERWAY_TRY(ValidateLinkName(spec.peer_name));
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewLinkMsg(NLM_F_CREATE | NLM_F_EXCL, 0));
  nl_msg* m = msg.get();
  if (nla_put_string(m, IFLA_IFNAME, spec.name.c_str()) < 0) return BuildError("IFLA_IFNAME");
  if (spec.mac) TERWAY_TRY(PutMac(m, *spec.mac));
  if (spec.mtu > 0 && nla_put_u32(m, IFLA_MTU, spec.mtu) < 0) return BuildError("IFLA_MTU");
  nlattr* linkinfo = nla_nest_start(m, IFLA_LINKINFO);
  if (!linkinfo || nla_put_string(m, IFLA_INFO_KIND, "veth") < 0) return BuildError("IFLA_LINKINFO");
  nlattr* data = nla_nest_start(m, IFLA_INFO_DATA);
  nlattr* peer = data ? nla_nest_start(m, VETH_INFO_PEER) : nullptr;
  if (!peer) return BuildError("VETH_INFO_PEER");
  // The peer is described by its own ifinfomsg followed by link attributes.
  ifinfomsg peer_ifi{};
  peer_ifi.ifi_family = AF_UNSPEC;
  if (nlmsg_append(m, &peer_ifi, sizeof(peer_ifi), NLMSG_ALIGNTO) < 0) return BuildError("peer ifinfomsg");
  if (nla_put_string(m, IFLA_IFNAME, spec.peer_name.c_str()) < 0) return BuildError("peer IFLA_IFNAME");
  if (spec.peer_mac) TERWAY_TRY(PutMac(m, *spec.peer_mac));
  if (spec.mtu > 0 && nla_put_u32(m, IFLA_MTU, spec.mtu) < 0) return BuildError("peer IFLA_MTU");
  if (peer_netns_fd >= 0 && nla_put_u32(m, IFLA_NET_NS_FD, peer_netns_fd) < 0) {
    return BuildError("peer IFLA_NET_NS_FD");
  }
  nla_nest_end(m, peer);
  nla_nest_end(m, data);
  nla_nest_end(m, linkinfo);
  return msg;
}

Result<NlMsgPtr> BuildBridgeCreate(const std::string& name, const std::optional<MacAddr>& mac) {
  TERWAY_TRY(ValidateLinkName(name));
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewLinkMsg(NLM_F_CREATE | NLM_F_EXCL, 0));
  nl_msg* m = msg.get();
  if (nla_put_string(m, IFLA_IFNAME, name.c_str()) < 0) return BuildError("IFLA_IFNAME");
  // An explicit MAC also pins it: otherwise a bridge takes the lowest port MAC
  // and changes it as ports come and go, invalidating its neighbours' ARP caches.
  if (mac) TERWAY_TRY(PutMac(m, *mac));
  nlattr* linkinfo = nla_nest_start(m, IFLA_LINKINFO);
  if (!linkinfo || nla_put_string(m, IFLA_INFO_KIND, "bridge") < 0) return BuildError("IFLA_LINKINFO");
  nla_nest_end(m, linkinfo);
  return msg;
}

Result<NlMsgPtr> BuildLinkChange(const LinkChange& c) {
  if (c.index <= 0) return Errorf(ErrorCode::kInvalidArgument, "link change needs an index");
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewLinkMsg(0, c.index));
  nl_msg* m = msg.get();
  if (c.up) {
    auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(nlmsg_hdr(m)));
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = *c.up ? IFF_UP : 0;
  }
  if (c.mtu && nla_put_u32(m, IFLA_MTU, *c.mtu) < 0) return BuildError("IFLA_MTU");
  if (c.mac) TERWAY_TRY(PutMac(m, *c.mac));
  if (c.name) {
    TERWAY_TRY(ValidateLinkName(*c.name));
    if (nla_put_string(m, IFLA_IFNAME, c.name->c_str()) < 0) return BuildError("IFLA_IFNAME");
  }
  if (c.master_index && nla_put_u32(m, IFLA_MASTER, *c.master_index) < 0) return BuildError("IFLA_MASTER");
  if (c.alias && nla_put_string(m, IFLA_IFALIAS, c.alias->c_str()) < 0) return BuildError("IFLA_IFALIAS");
  if (c.netns_fd && nla_put_u32(m, IFLA_NET_NS_FD, *c.netns_fd) < 0) return BuildError("IFLA_NET_NS_FD");
  return msg;
}

Result<NlMsgPtr> BuildBridgePortIsolated(int index, bool isolated) {
  if (index <= 0) return Errorf(ErrorCode::kInvalidArgument, "bridge port change needs an index");
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NewLinkMsg(0, index));
  nl_msg* m = msg.get();
  // Same shape as `ip link set dev X type bridge_slave isolated on`: the
  // master's slave options, changed on the existing port.
  nlattr* linkinfo = nla_nest_start(m, IFLA_LINKINFO);
  if (!linkinfo || nla_put_string(m, IFLA_INFO_SLAVE_KIND, "bridge") < 0) {
    return BuildError("IFLA_INFO_SLAVE_KIND");
  }
  nlattr* data = nla_nest_start(m, IFLA_INFO_SLAVE_DATA);
  if (!data || nla_put_u8(m, IFLA_BRPORT_ISOLATED, isolated ? 1 : 0) < 0) {
    return BuildError("IFLA_BRPORT_ISOLATED");
  }
  nla_nest_end(m, data);
  nla_nest_end(m, linkinfo);
  return msg;
}

Result<NlMsgPtr> BuildLinkDelete(int index) {
  if (index <= 0) return Errorf(ErrorCode::kInvalidArgument, "link delete needs an index");
  NlMsgPtr msg(nlmsg_alloc_simple(RTM_DELLINK, 0));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) return BuildError("ifinfomsg");
  return msg;
}

Result<NlMsgPtr> BuildFdb(bool add, const FdbEntry& e) {
  if (e.port_index <= 0) return Errorf(ErrorCode::kInvalidArgument, "fdb entry needs a port index");
  NlMsgPtr msg(nlmsg_alloc_simple(add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                                  add ? (NLM_F_CREATE | NLM_F_REPLACE) : 0));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ndmsg ndm{};
  ndm.ndm_family = AF_BRIDGE;
  ndm.ndm_ifindex = e.port_index;
  // NUD_PERMANENT would make the MAC "local" (frames to it end at the bridge
  // itself); NUD_NOARP is a static entry that forwards to the port.
  ndm.ndm_state = NUD_NOARP;
  ndm.ndm_flags = NTF_MASTER;
  if (nlmsg_append(msg.get(), &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0) return BuildError("ndmsg");
  if (nla_put(msg.get(), NDA_LLADDR, 6, e.mac.bytes().data()) < 0) return BuildError("NDA_LLADDR");
  return msg;
}

namespace {

Status PutInetAddr(nl_msg* m, int type, const InetAddr& a) {
  if (a.is_v4()) {
    uint32_t be = htonl(a.v4().value());
    if (nla_put(m, type, 4, &be) < 0) return BuildError("address attribute");
  } else if (nla_put(m, type, 16, a.v6().bytes().data()) < 0) {
    return BuildError("address attribute");
  }
  return Ok();
}

Result<NlMsgPtr> NeighMsg(int type, int flags, int family, int ifindex) {
  NlMsgPtr msg(nlmsg_alloc_simple(type, flags));
  if (!msg) return Errorf(ErrorCode::kInternal, "out of memory allocating netlink message");
  ndmsg ndm{};
  ndm.ndm_family = static_cast<uint8_t>(family);
  ndm.ndm_ifindex = ifindex;
  ndm.ndm_flags = NTF_PROXY;
  if (nlmsg_append(msg.get(), &ndm, sizeof(ndm), NLMSG_ALIGNTO) < 0) return BuildError("ndmsg");
  return msg;
}

}  // namespace

Result<NlMsgPtr> BuildProxyNeighbor(bool add, const ProxyNeighbor& n) {
  if (n.link_index <= 0) {
    return Errorf(ErrorCode::kInvalidArgument, "proxy neighbour {} needs a link index", n.ip.ToString());
  }
  TERWAY_ASSIGN_OR_RETURN(NlMsgPtr msg, NeighMsg(add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                                                 add ? (NLM_F_CREATE | NLM_F_REPLACE) : 0, n.ip.family(),
                                                 n.link_index));
  TERWAY_TRY(PutInetAddr(msg.get(), NDA_DST, n.ip));
  return msg;
}

Result<NlMsgPtr> BuildProxyNeighborDump(int family) {
  return NeighMsg(RTM_GETNEIGH, NLM_F_DUMP, family, 0);
}

std::optional<ProxyNeighbor> ParseProxyNeighbor(const nlmsghdr* h) {
  if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) return std::nullopt;
  const auto* ndm = static_cast<const ndmsg*>(NLMSG_DATA(h));
  if (!(ndm->ndm_flags & NTF_PROXY)) return std::nullopt;
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(ndmsg), tb, NDA_MAX, nullptr) != 0 || !tb[NDA_DST]) {
    return std::nullopt;
  }
  ProxyNeighbor n;
  n.link_index = ndm->ndm_ifindex;
  const nlattr* dst = tb[NDA_DST];
  if (ndm->ndm_family == AF_INET && nla_len(dst) == 4) {
    uint32_t be;
    std::memcpy(&be, nla_data(dst), 4);
    n.ip = Ipv4Addr(ntohl(be));
  } else if (ndm->ndm_family == AF_INET6 && nla_len(dst) == 16) {
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), nla_data(dst), 16);
    n.ip = Ipv6Addr(b);
  } else {
    return std::nullopt;
  }
  return n;
}

}  // namespace terway::netlink
