// LinuxFabric: the emulated VPC's data plane built from real Linux objects
// (topology in ../fabric.h). Everything of one world lives inside its own
// namespaces: "<prefix>-vpc" (the router) and "<prefix>-<instance-id>" (one
// per ECS instance); the root namespace only holds their bind-mount files.
//
// Router namespace:
//   lo                 100.100.100.200/32, 100.100.0.1/32
//   br-<hash(vsw)>     one bridge per vSwitch, MAC ee:ff:ff:ff:ff:ff (the MAC
//                      Alibaba Cloud's vSwitch gateway answers with), gateway
//                      address with noprefixroute, proxy_arp_pvlan so the
//                      gateway answers ARP for every IP inside the vSwitch
//   en-<hash(eni)>     router end of an ENI's veth: an isolated bridge port,
//                      alias "<instance-id> <eni-id> <mac>" so a restarted
//                      vpcsim (or Destroy) finds what it plugged
//                      and, with IPv6, <block>:ffff:ffff:ffff:fff7/64 (DAD off)
//   routes             unreachable <vpc cidr> and each IPv6 vSwitch /64;
//                      <ip>/32 and <ipv6>/128 dev <bridge> per IP held by an
//                      attached ENI, with a permanent neighbour ip->ENI MAC
//                      and, for IPv6, a proxy NDP entry on the bridge
//   nft                table bridge vpcsim: sets "allowed" (port . IPv4) and
//                      "allowed6" (port . IPv6); a packet from a port with any
//                      other source is dropped (IPv6 link-local and :: pass,
//                      but DAD probes are dropped: proxy NDP would answer them)
// Instance namespace: lo up; eth0 = primary ENI (configured: its IPv4 with
// the vSwitch's mask and a default route via the gateway; with IPv6, its
// IPv6s as /128, nodad, and a default route via the vSwitch's IPv6 gateway,
// onlink);
// ethN = attached ENIs, down and unconfigured until the node's agent takes them.
//
// Thread-safe: one mutex serialises all operations (they are rare and each is
// a handful of netlink requests).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "netlink/handle.h"
#include "tools/vpcsim/fabric.h"

namespace terway::vpcsim {

class LinuxFabric : public Fabric {
 public:
  explicit LinuxFabric(std::string world_prefix);
  ~LinuxFabric() override = default;

  Status EnsureVpc(const std::string& vpc_id, const Ipv4Cidr& cidr) override;
  Status EnsureVSwitch(const FabricVSwitch& vsw) override;
  Status EnsureInstance(const std::string& instance_id, const FabricEni& primary) override;
  Status RemoveInstance(const std::string& instance_id) override;
  Status AttachEni(const std::string& instance_id, const FabricEni& eni, int device_index) override;
  Status DetachEni(const std::string& instance_id, const std::string& eni_id) override;
  Status SetEniIps(const FabricEni& eni) override;

  std::string RouterNetns() const override;
  std::string InstanceNetns(const std::string& instance_id) const override;

  Status Destroy() override;

  // Link names inside the router namespace (for tests and debugging).
  static std::string BridgeName(const std::string& vswitch_id);
  static std::string PortName(const std::string& eni_id);
  static constexpr const char* kNftTable = "vpcsim";
  static constexpr const char* kGatewayMac = "ee:ff:ff:ff:ff:ff";

 private:
  Result<netlink::Handle*> Router();
  Status EnsureAntiSpoofTable();
  Status PlugEni(const std::string& instance_id, const FabricEni& eni, const std::string& ifname);
  Status SetEniIpsLocked(const FabricEni& eni);
  Status DetachEniLocked(const std::string& eni_id);
  Status RemoveInstanceLocked(const std::string& instance_id);
  // The IPv6 side of a vSwitch: gateway address (DAD off), unreachable /64.
  Status EnsureVSwitchIpv6(netlink::Handle& h, int bridge_index, const FabricVSwitch& vsw);
  // The primary ENI's IPv6s on the instance's eth0 (before it comes up).
  Status EnsureInstanceIpv6Addresses(netlink::Handle& inst, int eth0_index, const std::string& instance_id,
                                     const FabricEni& primary, const FabricVSwitch& vsw);
  // Source IPs (both families) the anti-spoofing sets allow per port.
  Result<std::map<std::string, std::set<netlink::InetAddr>>> AllowedSources();
  // Removes routes, neighbours and nft elements of ips for one port.
  Status UnrouteIps(const std::string& port, const std::optional<MacAddr>& mac,
                    const std::set<netlink::InetAddr>& ips);
  // Instance ids that own a port in the router (from the port aliases).
  Result<std::set<std::string>> InstancesWithPorts();

  std::mutex mu_;
  const std::string prefix_;
  std::optional<netlink::Handle> router_;
  std::map<std::string, FabricVSwitch> vswitches_;
  std::set<std::string> instances_;
};

}  // namespace terway::vpcsim
