// The world of the SharedEniDatapath root tests, built from namespaces (no
// vpcsim):
//
//   pod netns(es)  eth0 ──veth── tw<hash>  node netns  eth1 ──veth── vsw0  vswitch netns
//                                          (the "ENI": MAC 02:00:00:00:e0:01,  198.18.0.253/24: the
//                                           DOWN, no address, as an attached    vSwitch gateway; pod IPs
//                                           ENI appears on an instance)         -> ENI MAC as permanent
//                                                                               neighbours, as the VPC
//                                                                               router keeps them
// Every namespace is removed by the fixture's destructor, also on failure.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "datapath/shared_eni.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::datapath::shared_eni_world {

constexpr const char* kEniMac = "02:00:00:00:e0:01";
constexpr const char* kGateway = "198.18.0.253";
// The vSwitch's IPv6 side: its gateway on vsw0 (a global address, as the
// metadata service may report one). Unlike IPv4, the "VPC router" keeps no
// permanent neighbours for pod IPv6s: it solicits them on vsw0, and the
// node must answer for its pods (proxy NDP).
constexpr const char* kGateway6 = "2001:db8:1::fffd";

using ::terway::testing::Capture;
inline int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
inline bool Contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

class SharedEniRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    s_ = testing::UniqueSuffix();
    node_ = "twdn" + s_;
    vsw_ = "twdv" + s_;
    owned_ = {node_, vsw_};
    ASSERT_OK(netlink::CreateNamedNetns(node_));
    ASSERT_OK(netlink::CreateNamedNetns(vsw_));
    {
      auto node = netlink::Handle::OpenIn(node_);
      ASSERT_OK(node);
      netlink::VethSpec eni;
      eni.name = "eth1";
      eni.peer_name = "vsw0";
      eni.peer_netns = vsw_;
      eni.mac = MacAddr::Parse(kEniMac).value();
      ASSERT_OK(node->CreateVeth(eni));
    }
    // A real instance always has lo up (and so a local routing table).
    ASSERT_EQ(Sh("ip -n " + node_ + " link set lo up"), 0);
    ASSERT_EQ(Sh("ip -n " + vsw_ + " link set lo up && ip -n " + vsw_ + " link set vsw0 up && ip -n " + vsw_ +
                 " addr add " + kGateway + "/24 dev vsw0"),
              0);
    ASSERT_EQ(Sh("ip netns exec " + vsw_ + " sysctl -qw net.ipv6.conf.all.forwarding=1 && ip -n " + vsw_ +
                 " -6 addr add " + kGateway6 + "/64 dev vsw0 nodad"),
              0);
    // What the far side sees: echo requests by source address.
    ASSERT_EQ(Sh("ip netns exec " + vsw_ + " nft add table ip seen && ip netns exec " + vsw_ +
                 " nft add chain ip seen in '{ type filter hook input priority 0; }'"),
              0);
    SharedEniOptions o;
    o.host_netns = node_;
    o.mtu = 1500;
    o.eni_network = [this](const std::string& eni_id, const MacAddr&) -> Result<EniNetwork> {
      ++lookups_;
      if (eni_id != "eni-test") return Errorf(ErrorCode::kNotFound, "unknown ENI {}", eni_id);
      return EniNetwork{Ipv4Addr::Parse(kGateway).value(), Ipv4Cidr::Parse("198.18.0.0/24").value()};
    };
    dp_.emplace(std::move(o));
  }

  ~SharedEniRoot() override {
    for (const auto& ns : owned_) (void)netlink::DeleteNamedNetns(ns);
  }

  // A pod netns and its PodNetwork; the vSwitch learns the IP -> ENI MAC.
  // ipv6 non-empty: a dual-stack pod (its gateway the vSwitch's kGateway6).
  PodNetwork MakePod(const std::string& tag, const std::string& ip, const std::string& ipv6 = "") {
    std::string ns = "twdp" + tag + s_;
    owned_.push_back(ns);
    auto st = netlink::CreateNamedNetns(ns);
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    EXPECT_EQ(Sh("ip -n " + vsw_ + " neigh replace " + ip + " lladdr " + kEniMac + " dev vsw0 nud permanent"), 0);
    EXPECT_EQ(Sh("ip netns exec " + vsw_ + " nft add rule ip seen in ip saddr " + ip +
                 " icmp type echo-request counter"),
              0);
    PodNetwork p;
    p.container_id = "ctr-" + tag + "-" + s_;
    p.netns = netlink::NetnsPath(ns);
    p.ifname = "eth0";
    p.pod_namespace = "default";
    p.pod_name = "pod-" + tag;
    p.ip.ip = ip;
    p.ip.eni_id = "eni-test";
    p.ip.eni_mac = kEniMac;
    p.ip.eni_primary_ip = "198.18.0.2";
    p.ip.vswitch_id = "vsw-test";
    if (!ipv6.empty()) p.ipv6 = PodIpv6{ipv6, kGateway6};
    return p;
  }
  std::string PodNs(const PodNetwork& p) { return p.netns.substr(p.netns.rfind('/') + 1); }

  bool Ping(const PodNetwork& p) {
    return Sh("ip netns exec " + PodNs(p) + " ping -c 2 -i 0.2 -W 2 " + kGateway) == 0;
  }
  long EniTxPackets() {
    return std::atol(Capture("ip netns exec " + node_ + " cat /sys/class/net/eth1/statistics/tx_packets").c_str());
  }
  std::string Rules() { return Capture("ip -n " + node_ + " -4 rule show"); }
  std::string AllRoutes() { return Capture("ip -n " + node_ + " -4 route show table all"); }
  std::string Links() { return Capture("ip -n " + node_ + " link show"); }

  std::string s_, node_, vsw_;
  std::vector<std::string> owned_;
  std::optional<SharedEniDatapath> dp_;
  int lookups_ = 0;
};

}  // namespace terway::datapath::shared_eni_world
