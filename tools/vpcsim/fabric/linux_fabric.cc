#include "tools/vpcsim/fabric/linux_fabric.h"

#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/strings.h"
#include "netlink/names.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"
#include "tools/vpcsim/fabric/nft.h"

namespace terway::vpcsim {

namespace nl = terway::netlink;

namespace {

constexpr size_t kMaxNetnsName = 255;  // a file name under /var/run/netns

bool IsNotFound(const Status& s) { return !s.ok() && s.error().code == ErrorCode::kNotFound; }

// The router-side port's alias: "<instance-id> <eni-id> <mac>". It is how a
// restarted vpcsim, DetachEni (which is not told the MAC) and Destroy find
// what was plugged where, with no state outside the kernel.
struct PortAlias {
  std::string instance_id;
  std::string eni_id;
  std::optional<MacAddr> mac;
};

std::optional<PortAlias> ParsePortAlias(const std::string& alias) {
  auto parts = Split(alias, ' ', true);
  if (parts.size() != 3) return std::nullopt;
  auto mac = MacAddr::Parse(parts[2]);
  if (!mac.ok()) return std::nullopt;
  return PortAlias{parts[0], parts[1], *mac};
}

std::string NftElement(const std::string& port, const nl::InetAddr& ip) {
  return "\"" + port + "\" . " + ip.ToString();
}

// The nft set of allowed (port . source) pairs for the address's family.
const char* AllowedSet(const nl::InetAddr& ip) { return ip.is_v4() ? "allowed" : "allowed6"; }

// Duplicate address detection probes (a solicitation from ::) are dropped:
// the router's proxy entry for an address the ENI holds would answer the
// ENI's own probe and fail its DAD, and the cloud already guarantees that an
// address has one holder (probes reach nobody else: the ports are isolated).
constexpr const char* kDadProbeRule =
    "ether type ip6 ip6 saddr :: icmpv6 type nd-neighbor-solicit counter drop";
constexpr const char* kDadProbeMatch = "nd-neighbor-solicit";

// IPv6 anti-spoofing: the set and its rules. Link-local and unspecified
// sources pass: neighbour discovery (and DAD) use them, and they reach only the
// router (isolated ports, never forwarded).
std::string Ipv6AntiSpoofLines(const std::string& table) {
  return fmt::format(
      "add set bridge {0} allowed6 {{ type ifname . ipv6_addr; }}\n"
      "add rule bridge {0} prerouting {1}\n"
      "add rule bridge {0} prerouting ether type ip6 ip6 saddr fe80::/10 accept\n"
      "add rule bridge {0} prerouting ether type ip6 ip6 saddr :: accept\n"
      "add rule bridge {0} prerouting ether type ip6 iifname . ip6 saddr != @allowed6 counter drop\n",
      table, kDadProbeRule);
}

// The anti-spoofing table. The bridge family's prerouting hook sees every
// frame entering from a port (i.e. leaving an ENI) before the router does;
// locally generated frames (router -> ENI) do not pass it. What is neither
// IPv4 nor IPv6 (ARP in particular) is not matched and passes.
std::string AntiSpoofTableScript(const std::string& table) {
  return fmt::format(
             "add table bridge {0}\n"
             "delete table bridge {0}\n"
             "table bridge {0} {{\n"
             "  set allowed {{ type ifname . ipv4_addr; }}\n"
             "  chain prerouting {{\n"
             "    type filter hook prerouting priority -200; policy accept;\n"
             "    ether type ip iifname . ip saddr != @allowed counter drop\n"
             "  }}\n"
             "}}\n",
             table) +
         Ipv6AntiSpoofLines(table);
}

}  // namespace

LinuxFabric::LinuxFabric(std::string world_prefix) : prefix_(std::move(world_prefix)) {}

std::string LinuxFabric::RouterNetns() const { return prefix_ + "-vpc"; }
std::string LinuxFabric::InstanceNetns(const std::string& instance_id) const {
  return prefix_ + "-" + instance_id;
}
std::string LinuxFabric::BridgeName(const std::string& vswitch_id) {
  return nl::HashedLinkName("br-", vswitch_id);
}
std::string LinuxFabric::PortName(const std::string& eni_id) { return nl::HashedLinkName("en-", eni_id); }

Result<nl::Handle*> LinuxFabric::Router() {
  if (router_) return &*router_;
  if (!nl::NetnsExists(RouterNetns())) {
    return Errorf(ErrorCode::kNotFound, "VPC router namespace {} does not exist (EnsureVpc first)",
                  RouterNetns());
  }
  TERWAY_ASSIGN_OR_RETURN(nl::Handle h, nl::Handle::OpenIn(RouterNetns()));
  router_.emplace(std::move(h));
  return &*router_;
}

static Status EnsureNetns(const std::string& name) {
  if (name.size() > kMaxNetnsName) {
    return Errorf(ErrorCode::kInvalidArgument, "namespace name {} is longer than {} bytes", name,
                  kMaxNetnsName);
  }
  if (nl::NetnsExists(name)) return Ok();
  Status s = nl::CreateNamedNetns(name);
  if (!s.ok() && s.error().code != ErrorCode::kAlreadyExists) return s;
  return Ok();
}

static Status SetLoUp(nl::Handle& h) {
  TERWAY_ASSIGN_OR_RETURN(nl::Link lo, h.GetLink("lo"));
  return h.SetLinkUp(lo.index);
}

Status LinuxFabric::EnsureVpc(const std::string& vpc_id, const Ipv4Cidr& cidr) {
  std::lock_guard lock(mu_);
  std::string ctx = "ensuring VPC " + vpc_id + " (" + cidr.ToString() + ") in namespace " + RouterNetns();
  TERWAY_TRY_CTX(EnsureNetns(RouterNetns()), ctx);
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Handle * h, Router(), ctx);
  TERWAY_TRY_CTX(SetLoUp(*h), ctx);
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Link lo, h->GetLink("lo"), ctx);
  for (const char* a : {kMetadataAddress, kApiAddress}) {
    TERWAY_ASSIGN_OR_RETURN_CTX(Ipv4Addr ip, Ipv4Addr::Parse(a), ctx);
    nl::Address addr;
    addr.link_index = lo.index;
    addr.local = nl::InetPrefix::Host(ip);
    TERWAY_TRY_CTX(h->EnsureAddress(addr), ctx);
  }
  // The router forwards; reverse-path filtering is off so that only the
  // nftables set decides which sources an ENI may use (one mechanism, tested).
  for (auto [k, v] : {std::pair{"net.ipv4.ip_forward", "1"}, std::pair{"net.ipv4.conf.all.rp_filter", "0"},
                      std::pair{"net.ipv4.conf.default.rp_filter", "0"},
                      std::pair{"net.ipv6.conf.all.forwarding", "1"}}) {
    TERWAY_TRY_CTX(nl::SetSysctl(RouterNetns(), k, v), ctx);
  }
  // Addresses of the VPC that no attached ENI holds are dropped by the router
  // (ICMP unreachable), never ARPed for.
  nl::Route unreach;
  unreach.dst = cidr;
  unreach.type = nl::RouteType::kUnreachable;
  TERWAY_TRY_CTX(h->ReplaceRoute(unreach), ctx);
  TERWAY_TRY_CTX(EnsureAntiSpoofTable(), ctx);
  return Ok();
}

Status LinuxFabric::EnsureAntiSpoofTable() {
  // Re-creating the table would empty the allowed set of a live world, so an
  // existing chain is left alone; one from before IPv6 gains the IPv6 set and
  // rules, and one from before proxy NDP the rule dropping DAD probes (first
  // in the chain, where it belongs: before `saddr :: accept`).
  auto chain = RunNftJson(RouterNetns(), fmt::format("list chain bridge {} prerouting", kNftTable));
  if (chain.ok()) {
    if (!RunNft(RouterNetns(), fmt::format("list set bridge {} allowed6", kNftTable)).ok()) {
      return RunNft(RouterNetns(), Ipv6AntiSpoofLines(kNftTable));
    }
    if (chain->find(kDadProbeMatch) != std::string::npos) return Ok();
    return RunNft(RouterNetns(), fmt::format("insert rule bridge {} prerouting {}", kNftTable, kDadProbeRule));
  }
  return RunNft(RouterNetns(), AntiSpoofTableScript(kNftTable));
}

Status LinuxFabric::EnsureVSwitch(const FabricVSwitch& vsw) {
  std::lock_guard lock(mu_);
  std::string name = BridgeName(vsw.vswitch_id);
  std::string ctx = "ensuring vSwitch " + vsw.vswitch_id + " (bridge " + name + ")";
  if (!vsw.cidr.Contains(vsw.gateway)) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: gateway {} is outside {}", ctx, vsw.gateway.ToString(),
                  vsw.cidr.ToString());
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Handle * h, Router(), ctx);
  TERWAY_ASSIGN_OR_RETURN_CTX(MacAddr gw_mac, MacAddr::Parse(kGatewayMac), ctx);
  if (!h->LinkExists(name)) {
    Status s = h->CreateBridge(name, gw_mac);
    if (!s.ok() && s.error().code != ErrorCode::kAlreadyExists) return std::move(s).error().Wrap(ctx);
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Link br, h->GetLink(name), ctx);
  TERWAY_TRY_CTX(h->SetAlias(br.index, vsw.vswitch_id), ctx);
  // proxy_arp_pvlan: answer ARP for a target routed out of the same bridge
  // the request came in on, so the gateway answers for every IP of the
  // vSwitch (isolated ports never see each other's ARP). proxy_delay 0: the
  // default delays proxied answers by up to 0.8 s.
  for (auto [k, v] : {std::pair{"net/ipv4/conf/" + name + "/proxy_arp_pvlan", "1"},
                      std::pair{"net/ipv4/conf/" + name + "/forwarding", "1"},
                      std::pair{"net/ipv4/neigh/" + name + "/proxy_delay", "0"}}) {
    TERWAY_TRY_CTX(nl::SetSysctl(RouterNetns(), k, v), ctx);
  }
  nl::Address gw;
  gw.link_index = br.index;
  gw.local = nl::InetPrefix(vsw.gateway, vsw.cidr.prefix_len());
  // No connected route: the router must not ARP for unassigned IPs of the
  // subnet; it knows each assigned IP through its own /32 route.
  gw.noprefixroute = true;
  TERWAY_TRY_CTX(h->EnsureAddress(gw), ctx);
  if (vsw.ipv6_cidr) TERWAY_TRY_CTX(EnsureVSwitchIpv6(*h, br.index, vsw), ctx);
  TERWAY_TRY_CTX(h->SetLinkUp(br.index), ctx);
  vswitches_[vsw.vswitch_id] = vsw;
  return Ok();
}

Status LinuxFabric::EnsureVSwitchIpv6(nl::Handle& h, int bridge_index, const FabricVSwitch& vsw) {
  const std::string name = BridgeName(vsw.vswitch_id);
  if (!vsw.ipv6_cidr->Contains(vsw.ipv6_gateway)) {
    return Errorf(ErrorCode::kInvalidArgument, "IPv6 gateway {} is outside {}", vsw.ipv6_gateway.ToString(),
                  vsw.ipv6_cidr->ToString());
  }
  // DAD off before the address goes on: a tentative gateway would not answer
  // neighbour solicitations for its first second.
  // proxy_ndp: the bridge answers neighbour solicitations for every address
  // an attached ENI holds (a proxy entry each, see SetEniIpsLocked), as a
  // VPC's vSwitch does, so an instance may treat the whole /64 as on-link.
  // proxy_delay 0: multicast solicitations would otherwise be answered after
  // a random delay of up to 0.8 s.
  for (auto [k, v] : {std::pair{"net/ipv6/conf/" + name + "/accept_dad", "0"},
                      std::pair{"net/ipv6/conf/" + name + "/forwarding", "1"},
                      std::pair{"net/ipv6/conf/" + name + "/proxy_ndp", "1"},
                      std::pair{"net/ipv6/neigh/" + name + "/proxy_delay", "0"}}) {
    TERWAY_TRY(nl::SetSysctl(RouterNetns(), k, v));
  }
  nl::Address gw;
  gw.link_index = bridge_index;
  gw.local = nl::InetPrefix(vsw.ipv6_gateway, vsw.ipv6_cidr->prefix_len());
  gw.noprefixroute = true;  // as for IPv4: each held address has its own /128
  TERWAY_TRY(h.EnsureAddress(gw));
  // Addresses of the block that no attached ENI holds are refused, never
  // solicited.
  nl::Route unreach;
  unreach.dst = *vsw.ipv6_cidr;
  unreach.type = nl::RouteType::kUnreachable;
  return h.ReplaceRoute(unreach);
}

Status LinuxFabric::PlugEni(const std::string& instance_id, const FabricEni& eni, const std::string& ifname) {
  TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
  auto vsw = vswitches_.find(eni.vswitch_id);
  if (vsw == vswitches_.end()) {
    return Errorf(ErrorCode::kNotFound, "vSwitch {} of ENI {} is not in the fabric (EnsureVSwitch first)",
                  eni.vswitch_id, eni.eni_id);
  }
  TERWAY_ASSIGN_OR_RETURN(nl::Link br, h->GetLink(BridgeName(eni.vswitch_id)));
  std::string port = PortName(eni.eni_id);
  auto link = h->GetLink(port);
  if (!link.ok()) {
    if (link.error().code != ErrorCode::kNotFound) return std::move(link).error();
    nl::VethSpec spec;
    spec.name = port;
    spec.peer_name = ifname;
    spec.peer_netns = InstanceNetns(instance_id);
    spec.peer_mac = eni.mac;
    TERWAY_TRY(h->CreateVeth(spec));
    link = h->GetLink(port);
    if (!link.ok()) return std::move(link).error();
  }
  int idx = link->index;
  TERWAY_TRY(h->SetAlias(idx, instance_id + " " + eni.eni_id + " " + eni.mac.ToString()));
  if (link->master_index != br.index) TERWAY_TRY(h->SetMaster(idx, br.index));
  // Isolated: an ENI never reaches another ENI at L2; everything crosses the
  // router, as in a VPC.
  TERWAY_TRY(h->SetBridgePortIsolated(idx, true));
  TERWAY_TRY(h->SetLinkUp(idx));
  nl::FdbEntry fdb;
  fdb.port_index = idx;
  fdb.mac = eni.mac;
  TERWAY_TRY(h->ReplaceFdb(fdb));
  return Ok();
}

Status LinuxFabric::EnsureInstance(const std::string& instance_id, const FabricEni& primary) {
  std::lock_guard lock(mu_);
  std::string ns = InstanceNetns(instance_id);
  std::string ctx = "ensuring instance " + instance_id + " (namespace " + ns + ")";
  if (primary.ips.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: primary ENI {} has no IP", ctx, primary.eni_id);
  }
  auto vsw = vswitches_.find(primary.vswitch_id);
  if (vsw == vswitches_.end()) {
    return Errorf(ErrorCode::kNotFound, "{}: vSwitch {} is not in the fabric (EnsureVSwitch first)", ctx,
                  primary.vswitch_id);
  }
  TERWAY_TRY_CTX(EnsureNetns(ns), ctx);
  instances_.insert(instance_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Handle inst, nl::Handle::OpenIn(ns), ctx);
  TERWAY_TRY_CTX(SetLoUp(inst), ctx);
  TERWAY_TRY_CTX(PlugEni(instance_id, primary, "eth0"), ctx + ": plugging primary ENI " + primary.eni_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(nl::Link eth0, inst.GetLink("eth0"), ctx);
  nl::Address addr;
  addr.link_index = eth0.index;
  addr.local = nl::InetPrefix(primary.ips.front(), vsw->second.cidr.prefix_len());
  TERWAY_TRY_CTX(inst.EnsureAddress(addr), ctx);
  if (!primary.ipv6s.empty()) {
    TERWAY_TRY_CTX(EnsureInstanceIpv6Addresses(inst, eth0.index, instance_id, primary, vsw->second), ctx);
  }
  TERWAY_TRY_CTX(inst.SetLinkUp(eth0.index), ctx);
  nl::Route def;
  def.dst = Ipv4Cidr(Ipv4Addr(0), 0);
  def.gateway = nl::InetAddr(vsw->second.gateway);
  def.oif = eth0.index;
  TERWAY_TRY_CTX(inst.ReplaceRoute(def), ctx);
  if (!primary.ipv6s.empty()) {
    // Via the gateway the metadata service names (ipv6-gateway, a global
    // address of the vSwitch's /64), as the datapath routes pods' IPv6;
    // onlink, as the datapath does for a global gateway: eth0 holds a /128,
    // so no connected route says the gateway is on it.
    nl::Route def6;
    def6.dst = nl::InetPrefix(nl::InetAddr(Ipv6Addr()), 0);
    def6.gateway = nl::InetAddr(vsw->second.ipv6_gateway);
    def6.oif = eth0.index;
    def6.onlink = true;
    TERWAY_TRY_CTX(inst.ReplaceRoute(def6), ctx);
  }
  TERWAY_TRY_CTX(SetEniIpsLocked(primary), ctx);
  return Ok();
}

Status LinuxFabric::EnsureInstanceIpv6Addresses(nl::Handle& inst, int eth0_index, const std::string& instance_id,
                                                const FabricEni& primary, const FabricVSwitch& vsw) {
  if (!vsw.ipv6_cidr) {
    return Errorf(ErrorCode::kInvalidArgument, "primary ENI {} holds IPv6 but vSwitch {} has no IPv6 in the fabric",
                  primary.eni_id, vsw.vswitch_id);
  }
  const std::string ns = InstanceNetns(instance_id);
  // IPv6 on whatever the namespace's defaults say, and no duplicate address
  // detection on eth0 (its link-local included, set before the link comes
  // up): the cloud makes each address unique, the router drops DAD probes
  // (its proxy entries would answer them), and a tentative address would
  // not be a source for its first second.
  for (auto [k, v] : {std::pair{"net/ipv6/conf/lo/disable_ipv6", "0"},
                      std::pair{"net/ipv6/conf/eth0/disable_ipv6", "0"},
                      std::pair{"net/ipv6/conf/eth0/accept_dad", "0"}}) {
    TERWAY_TRY(nl::SetSysctl(ns, k, v));
  }
  for (const auto& ip : primary.ipv6s) {
    // A /128, not the vSwitch's /64 (as an exclusive-ENI pod holds its
    // IPv6): a /64 on eth0 puts a connected route in the main table through
    // which the kernel resolves the gateway, and it then refuses a node
    // agent's `default via <gateway> dev ethN onlink table T` for another
    // ENI (IPv6 checks an onlink gateway against the main table: "device
    // mismatch", EINVAL) -- terwayd's route for pods' IPv6. Everything of the
    // vSwitch is reached through the gateway instead, as in the VPC.
    nl::Address a;
    a.link_index = eth0_index;
    a.local = nl::InetPrefix::Host(nl::InetAddr(ip));
    a.nodad = true;
    TERWAY_TRY(inst.EnsureAddress(a));
  }
  return Ok();
}

Status LinuxFabric::AttachEni(const std::string& instance_id, const FabricEni& eni, int device_index) {
  std::lock_guard lock(mu_);
  std::string ifname = "eth" + std::to_string(device_index);
  std::string ctx = "attaching ENI " + eni.eni_id + " to instance " + instance_id + " as " + ifname;
  if (device_index < 0) return Errorf(ErrorCode::kInvalidArgument, "{}: bad device index", ctx);
  if (!nl::NetnsExists(InstanceNetns(instance_id))) {
    return Errorf(ErrorCode::kNotFound, "{}: instance namespace {} does not exist", ctx,
                  InstanceNetns(instance_id));
  }
  TERWAY_TRY_CTX(PlugEni(instance_id, eni, ifname), ctx);
  TERWAY_TRY_CTX(SetEniIpsLocked(eni), ctx);
  return Ok();
}

Result<std::map<std::string, std::set<nl::InetAddr>>> LinuxFabric::AllowedSources() {
  std::map<std::string, std::set<nl::InetAddr>> out;
  for (const char* set_name : {"allowed", "allowed6"}) {
    auto text = RunNftJson(RouterNetns(), fmt::format("list set bridge {} {}", kNftTable, set_name));
    // A table from before IPv6 has no allowed6 until EnsureVpc upgrades it.
    if (!text.ok() && text.error().code == ErrorCode::kNotFound && std::string(set_name) == "allowed6") continue;
    if (!text.ok()) return std::move(text).error();
    try {
      auto doc = nlohmann::json::parse(*text);
      for (const auto& item : doc.at("nftables")) {
        if (!item.contains("set")) continue;
        const auto& set = item.at("set");
        if (!set.contains("elem")) continue;
        for (auto elem : set.at("elem")) {
          // Plain elements are {"concat": [...]}; elements with extra state
          // (counters, timeouts) wrap it as {"elem": {"val": {...}}}.
          if (elem.contains("elem")) elem = elem.at("elem").at("val");
          const auto& parts = elem.at("concat");
          if (parts.size() != 2) continue;
          TERWAY_ASSIGN_OR_RETURN(nl::InetAddr ip, nl::InetAddr::Parse(parts.at(1).get<std::string>()));
          out[parts.at(0).get<std::string>()].insert(ip);
        }
      }
    } catch (const std::exception& e) {
      return Errorf(ErrorCode::kInternal, "parsing nft's JSON listing of the {} set: {}", set_name, e.what());
    }
  }
  return out;
}

Status LinuxFabric::UnrouteIps(const std::string& port, const std::optional<MacAddr>& mac,
                               const std::set<nl::InetAddr>& ips) {
  if (ips.empty()) return Ok();
  // One batch per family (callers pass elements they just listed); should one
  // have vanished meanwhile the batch fails as a whole, and each element is
  // then deleted on its own, tolerating the missing ones.
  std::map<std::string, std::vector<std::string>> elems;  // set -> elements
  for (const auto& ip : ips) elems[AllowedSet(ip)].push_back(NftElement(port, ip));
  for (const auto& [set_name, list] : elems) {
    auto del = [&](const std::string& what) {
      return RunNft(RouterNetns(),
                    fmt::format("delete element bridge {} {} {{ {} }}", kNftTable, set_name, what));
    };
    if (!del(Join(list, ", ")).ok()) {
      for (const auto& e : list) {
        Status s = del(e);
        if (!s.ok() && !IsNotFound(s)) return s;
      }
    }
  }
  if (!mac) return Ok();
  TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
  TERWAY_ASSIGN_OR_RETURN(auto neighbours, h->ListNeighbors(0, 0));
  for (const auto& n : neighbours) {
    // Only this ENI's entries: an IP that moved to another ENI keeps the
    // route and neighbour that now point there.
    if (!n.permanent || n.mac != *mac || !ips.count(n.ip)) continue;
    nl::Route r;
    r.dst = nl::InetPrefix::Host(n.ip);
    r.oif = n.link_index;
    TERWAY_TRY(h->DeleteRouteIfExists(r));
    TERWAY_TRY(h->DeleteNeighborIfExists(n));
    // The proxy entry is the bridge's, not the ENI's: it goes with the
    // neighbour, so an address that moved keeps the one its new holder needs.
    if (!n.ip.is_v4()) TERWAY_TRY(h->DeleteProxyNeighborIfExists(nl::ProxyNeighbor{n.link_index, n.ip}));
  }
  return Ok();
}

Status LinuxFabric::SetEniIpsLocked(const FabricEni& eni) {
  TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
  std::string port = PortName(eni.eni_id);
  TERWAY_ASSIGN_OR_RETURN(auto allowed, AllowedSources());
  std::set<nl::InetAddr> current = allowed[port];
  std::set<nl::InetAddr> desired(eni.ips.begin(), eni.ips.end());
  desired.insert(eni.ipv6s.begin(), eni.ipv6s.end());
  auto link = h->GetLink(port);
  if (!link.ok()) {
    if (link.error().code != ErrorCode::kNotFound) return std::move(link).error();
    // Not attached: the router delivers none of its IPs.
    return UnrouteIps(port, eni.mac, current);
  }
  if (!eni.ipv6s.empty()) {
    auto vsw = vswitches_.find(eni.vswitch_id);
    if (vsw == vswitches_.end() || !vsw->second.ipv6_cidr) {
      return Errorf(ErrorCode::kInvalidArgument, "ENI {} holds IPv6 but vSwitch {} has no IPv6 in the fabric",
                    eni.eni_id, eni.vswitch_id);
    }
  }
  std::set<nl::InetAddr> stale;
  for (const auto& ip : current) {
    if (!desired.count(ip)) stale.insert(ip);
  }
  TERWAY_TRY(UnrouteIps(port, eni.mac, stale));
  if (desired.empty()) return Ok();
  TERWAY_ASSIGN_OR_RETURN(nl::Link br, h->GetLink(BridgeName(eni.vswitch_id)));
  std::map<std::string, std::vector<std::string>> elems;  // set -> elements
  for (const auto& ip : desired) {
    nl::Route r;
    r.dst = nl::InetPrefix::Host(ip);
    r.oif = br.index;
    TERWAY_TRY(h->ReplaceRoute(r));
    nl::Neighbor n;
    n.link_index = br.index;
    n.ip = ip;
    n.mac = eni.mac;
    TERWAY_TRY(h->ReplaceNeighbor(n));
    // IPv4 needs nothing more (proxy_arp_pvlan answers for every routed IP);
    // IPv6 proxy NDP answers only for listed addresses.
    if (!ip.is_v4()) TERWAY_TRY(h->ReplaceProxyNeighbor(nl::ProxyNeighbor{br.index, ip}));
    elems[AllowedSet(ip)].push_back(NftElement(port, ip));
  }
  // `add element` of an existing element is a no-op, so this is idempotent.
  std::string script;
  for (const auto& [set_name, list] : elems) {
    script += fmt::format("add element bridge {} {} {{ {} }}\n", kNftTable, set_name, Join(list, ", "));
  }
  return RunNft(RouterNetns(), script);
}

Status LinuxFabric::SetEniIps(const FabricEni& eni) {
  std::lock_guard lock(mu_);
  Status s = SetEniIpsLocked(eni);
  if (!s.ok()) return std::move(s).error().Wrap("setting the IPs of ENI " + eni.eni_id);
  return Ok();
}

Status LinuxFabric::DetachEniLocked(const std::string& eni_id) {
  if (!nl::NetnsExists(RouterNetns())) return Ok();  // the whole world is gone
  TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
  std::string port = PortName(eni_id);
  TERWAY_ASSIGN_OR_RETURN(auto allowed, AllowedSources());
  std::optional<MacAddr> mac;
  auto link = h->GetLink(port);
  if (link.ok()) {
    if (auto alias = ParsePortAlias(link->alias)) mac = alias->mac;
  } else if (link.error().code != ErrorCode::kNotFound) {
    return std::move(link).error();
  }
  TERWAY_TRY(UnrouteIps(port, mac, allowed[port]));
  // Deleting the router end removes the pair, wherever the ENI end is now
  // (instance namespace or a pod's namespace).
  return h->DeleteLinkIfExists(port);
}

Status LinuxFabric::DetachEni(const std::string& instance_id, const std::string& eni_id) {
  std::lock_guard lock(mu_);
  Status s = DetachEniLocked(eni_id);
  if (!s.ok()) return std::move(s).error().Wrap("detaching ENI " + eni_id + " from instance " + instance_id);
  return Ok();
}

Result<std::set<std::string>> LinuxFabric::InstancesWithPorts() {
  std::set<std::string> out;
  if (!nl::NetnsExists(RouterNetns())) return out;
  TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
  TERWAY_ASSIGN_OR_RETURN(auto links, h->ListLinks());
  for (const auto& l : links) {
    if (auto a = ParsePortAlias(l.alias)) out.insert(a->instance_id);
  }
  return out;
}

Status LinuxFabric::RemoveInstanceLocked(const std::string& instance_id) {
  if (nl::NetnsExists(RouterNetns())) {
    TERWAY_ASSIGN_OR_RETURN(nl::Handle * h, Router());
    TERWAY_ASSIGN_OR_RETURN(auto links, h->ListLinks());
    for (const auto& l : links) {
      auto a = ParsePortAlias(l.alias);
      if (a && a->instance_id == instance_id) TERWAY_TRY(DetachEniLocked(a->eni_id));
    }
  }
  TERWAY_TRY(nl::DeleteNamedNetns(InstanceNetns(instance_id)));
  instances_.erase(instance_id);
  return Ok();
}

Status LinuxFabric::RemoveInstance(const std::string& instance_id) {
  std::lock_guard lock(mu_);
  Status s = RemoveInstanceLocked(instance_id);
  if (!s.ok()) return std::move(s).error().Wrap("removing instance " + instance_id);
  return Ok();
}

Status LinuxFabric::Destroy() {
  std::lock_guard lock(mu_);
  std::string ctx = "destroying fabric world " + prefix_;
  std::set<std::string> ids = instances_;
  auto with_ports = InstancesWithPorts();
  if (with_ports.ok()) {
    ids.insert(with_ports->begin(), with_ports->end());
  } else {
    log::Warn("fabric_destroy_scan_failed world={} error={}", prefix_, with_ports.error().ToString());
  }
  // Keep going on errors: a half-destroyed world is worse than a reported one.
  std::optional<Error> first;
  for (const auto& id : ids) {
    Status s = RemoveInstanceLocked(id);
    if (!s.ok() && !first) first = std::move(s).error().Wrap("removing instance " + id);
  }
  if (nl::NetnsExists(RouterNetns())) {
    Status s = RunNft(RouterNetns(), fmt::format("delete table bridge {}", kNftTable));
    if (!s.ok() && !IsNotFound(s) && !first) first = std::move(s).error();
  }
  // The cached socket holds a reference to the router namespace: drop it so
  // the namespace (with its bridges) dies when its file is unmounted.
  router_.reset();
  Status s = nl::DeleteNamedNetns(RouterNetns());
  if (!s.ok() && !first) first = std::move(s).error();
  vswitches_.clear();
  instances_.clear();
  if (first) return std::move(*first).Wrap(ctx);
  return Ok();
}

}  // namespace terway::vpcsim
