// Builders for the rtnetlink link messages that libnl-route 3.7 cannot build
// for us: a veth whose peer is created directly in another namespace with a
// chosen MAC, bridge-port flags (IFLA_BRPORT_ISOLATED has no libnl setter),
// and plain link changes. Pure: they allocate a message and never touch the
// kernel, so unit tests check the exact attributes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <netlink/msg.h>

#include "common/result.h"
#include "netlink/types.h"

namespace terway::netlink {

struct NlMsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using NlMsgPtr = std::unique_ptr<nl_msg, NlMsgDeleter>;

// Changes to an existing link (RTM_NEWLINK on ifi_index); unset fields are
// left alone.
struct LinkChange {
  int index = 0;
  std::optional<bool> up;
  std::optional<int> mtu;
  std::optional<MacAddr> mac;
  std::optional<std::string> name;
  std::optional<int> master_index;   // 0 = release from master
  std::optional<std::string> alias;
  std::optional<int> netns_fd;       // move into this namespace
};

// peer_netns_fd < 0: the peer stays in the sender's namespace.
Result<NlMsgPtr> BuildVethCreate(const VethSpec& spec, int peer_netns_fd);
Result<NlMsgPtr> BuildBridgeCreate(const std::string& name, const std::optional<MacAddr>& mac);
Result<NlMsgPtr> BuildLinkChange(const LinkChange& change);
Result<NlMsgPtr> BuildBridgePortIsolated(int index, bool isolated);
Result<NlMsgPtr> BuildLinkDelete(int index);
// RTM_NEWNEIGH / RTM_DELNEIGH for a static (NUD_NOARP, not "local") FDB
// entry of the port's master bridge (NTF_MASTER), as `bridge fdb ... static`.
Result<NlMsgPtr> BuildFdb(bool add, const FdbEntry& e);
// RTM_NEWNEIGH (create or replace) / RTM_DELNEIGH of a proxy entry
// (NTF_PROXY), as `ip neigh add|del proxy <ip> dev <link>`. Built here
// rather than through libnl's neighbour object so the exact message is
// unit-tested, and because its cache never sends the proxy dump below.
Result<NlMsgPtr> BuildProxyNeighbor(bool add, const ProxyNeighbor& n);
// The dump of proxy entries of one family (0: both): the kernel lists them
// only when the request's ndm_flags is exactly NTF_PROXY.
Result<NlMsgPtr> BuildProxyNeighborDump(int family);
// One reply of that dump; nullopt for anything that is not a proxy entry
// of IPv4 or IPv6.
std::optional<ProxyNeighbor> ParseProxyNeighbor(const nlmsghdr* h);

}  // namespace terway::netlink
