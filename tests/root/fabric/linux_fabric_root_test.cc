// LinuxFabric with real packets. Every world lives in namespaces named with a
// per-run suffix; all traffic stays inside them (198.18.0.0/15 addresses).
#include "tools/vpcsim/fabric/linux_fabric.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "common/strings.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::vpcsim {
namespace {

namespace nl = terway::netlink;
using namespace std::chrono_literals;

Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }
Ipv4Cidr Cidr(const char* s) { return Ipv4Cidr::Parse(s).value(); }
MacAddr Mac(const char* s) { return MacAddr::Parse(s).value(); }


bool Eventually(const std::function<bool()>& f, std::chrono::milliseconds deadline = 8s) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return f();
}

int Run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

using ::terway::testing::Capture;

// One ping with a one-second answer window.
bool PingOnce(const std::string& ns, Ipv4Addr dst, const std::string& src = "") {
  std::string cmd = "ip netns exec " + ns + " ping -n -q -c 1 -W 1";
  if (!src.empty()) cmd += " -I " + src;
  return Run(cmd + " " + dst.ToString()) == 0;
}
bool Reaches(const std::string& ns, Ipv4Addr dst, const std::string& src = "") {
  return Eventually([&] { return PingOnce(ns, dst, src); });
}
// A negative check can only wait: two one-second pings. Every test pairs it
// with a positive control on the same path, so a broken setup cannot pass.
bool NeverReaches(const std::string& ns, Ipv4Addr dst, const std::string& src = "") {
  return !PingOnce(ns, dst, src) && !PingOnce(ns, dst, src);
}

struct NetnsGuard {
  std::string name;
  ~NetnsGuard() { (void)nl::DeleteNamedNetns(name); }
};

// A world that is destroyed whatever happens to the test.
struct World {
  std::string prefix = "tf" + testing::UniqueSuffix();
  LinuxFabric fabric{prefix};
  FabricVSwitch vsw1{"vsw-one", Cidr("198.18.1.0/24"), Ip("198.18.1.253")};
  FabricVSwitch vsw2{"vsw-two", Cidr("198.18.2.0/24"), Ip("198.18.2.253")};
  ~World() {
    Status s = fabric.Destroy();
    EXPECT_TRUE(s.ok()) << s.error().ToString();
  }
  Status Build() {
    TERWAY_TRY(fabric.EnsureVpc("vpc-test", Cidr("198.18.0.0/16")));
    TERWAY_TRY(fabric.EnsureVSwitch(vsw1));
    return fabric.EnsureVSwitch(vsw2);
  }
};

FabricEni Eni(const char* id, const char* mac, const char* vsw, std::vector<const char*> ips) {
  FabricEni e{id, Mac(mac), vsw, {}};
  for (auto* ip : ips) e.ips.push_back(Ip(ip));
  return e;
}

// Instances of the tests: a and b on vSwitch one, c on vSwitch two.
const FabricEni kEniA = Eni("eni-a", "00:16:3e:00:00:0a", "vsw-one", {"198.18.1.10"});
const FabricEni kEniB = Eni("eni-b", "00:16:3e:00:00:0b", "vsw-one", {"198.18.1.11"});
const FabricEni kEniC = Eni("eni-c", "00:16:3e:00:00:0c", "vsw-two", {"198.18.2.10"});
// A secondary ENI of a, holding .20 (its primary) and .21.
const FabricEni kEniA2 = Eni("eni-a2", "00:16:3e:00:00:a2", "vsw-one", {"198.18.1.20", "198.18.1.21"});

Status BuildThree(World& w) {
  TERWAY_TRY(w.Build());
  TERWAY_TRY(w.fabric.EnsureInstance("i-a", kEniA));
  TERWAY_TRY(w.fabric.EnsureInstance("i-b", kEniB));
  return w.fabric.EnsureInstance("i-c", kEniC);
}

// Packets the anti-spoofing rule containing `rule` dropped (-1: no such rule).
long DropCount(World& w, const std::string& rule) {
  std::string rules = Capture("ip netns exec " + w.fabric.RouterNetns() + " nft list chain bridge " +
                              LinuxFabric::kNftTable + " prerouting");
  for (const auto& line : Split(rules, '\n', true)) {
    if (line.find(rule) == std::string::npos) continue;
    auto at = line.find("counter packets ");
    if (at == std::string::npos) return -1;
    return std::stol(line.substr(at + std::string("counter packets ").size()));
  }
  return -1;
}

// Runs a shell command inside an instance.
int InNs(const std::string& ns, const std::string& cmd) { return Run("ip netns exec " + ns + " " + cmd); }

TEST(LinuxFabricRoot, InstancesReachEachOtherThroughTheRouter) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string c = w.fabric.InstanceNetns("i-c");

  EXPECT_TRUE(Reaches(a, Ip("198.18.1.11"))) << "same vSwitch";
  EXPECT_TRUE(Reaches(a, Ip("198.18.2.10"))) << "across vSwitches";
  EXPECT_TRUE(Reaches(c, Ip("198.18.1.11"))) << "across vSwitches, other direction";
  EXPECT_TRUE(Reaches(a, Ip("198.18.1.253"))) << "the gateway";
  EXPECT_TRUE(Reaches(a, Ip(kMetadataAddress))) << "metadata address on the router";
  EXPECT_TRUE(Reaches(c, Ip(kApiAddress))) << "API address on the router";

  // No L2 between instances: a resolved b (same subnet) to the gateway's
  // MAC, i.e. the packet crossed the router.
  auto h = nl::Handle::OpenIn(a);
  ASSERT_OK(h);
  auto neigh = h->ListNeighbors(0, AF_INET);
  ASSERT_OK(neigh);
  bool found = false;
  for (const auto& n : *neigh) {
    if (n.ip == nl::InetAddr(Ip("198.18.1.11"))) {
      found = true;
      EXPECT_EQ(n.mac.ToString(), LinuxFabric::kGatewayMac);
    }
  }
  EXPECT_TRUE(found) << "a has no neighbour entry for b";

  // Every ENI port is isolated on its bridge (so b's ARP never reached a).
  std::string ports = Capture("ip netns exec " + w.fabric.RouterNetns() + " bridge -d link show");
  for (const char* eni : {"eni-a", "eni-b", "eni-c"}) {
    std::string port = LinuxFabric::PortName(eni);
    size_t at = ports.find(port + "@");
    ASSERT_NE(at, std::string::npos) << port << " not on a bridge: " << ports;
    size_t next = ports.find("\n", ports.find("\n", at) + 1);
    size_t iso = ports.find("isolated on", at);
    EXPECT_TRUE(iso != std::string::npos && (next == std::string::npos || iso < ports.find(": ", next)))
        << port << " is not isolated: " << ports;
  }

  // An address of the VPC that no ENI holds is dropped by the router.
  EXPECT_TRUE(NeverReaches(a, Ip("198.18.1.99")));
  EXPECT_TRUE(NeverReaches(a, Ip("198.18.2.99")));
}

TEST(LinuxFabricRoot, AttachedEniIsDownUnconfiguredWithItsMac) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));
  auto h = nl::Handle::OpenIn(w.fabric.InstanceNetns("i-a"));
  ASSERT_OK(h);
  auto eth1 = h->GetLink("eth1");
  ASSERT_OK(eth1);
  EXPECT_EQ(eth1->mac, kEniA2.mac);
  EXPECT_FALSE(eth1->admin_up);
  auto addrs = h->ListAddresses(eth1->index, AF_INET);
  ASSERT_OK(addrs);
  EXPECT_TRUE(addrs->empty());
  auto eth0 = h->GetLink("eth0");
  ASSERT_OK(eth0);
  EXPECT_EQ(eth0->mac, kEniA.mac);
  EXPECT_TRUE(eth0->admin_up);
  // Attaching to an instance that does not exist names the cause.
  Status s = w.fabric.AttachEni("i-nope", kEniA2, 2);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
}

// Configures eth1 as a node agent would: up, the secondary IP, and policy
// routing so replies from it leave through eth1.
void ConfigureEth1(const std::string& ns, const char* ip) {
  ASSERT_EQ(InNs(ns, "ip link set eth1 up"), 0);
  ASSERT_EQ(InNs(ns, std::string("ip addr add ") + ip + "/32 dev eth1"), 0);
  ASSERT_EQ(InNs(ns, "ip route add 198.18.1.253/32 dev eth1 table 101"), 0);
  ASSERT_EQ(InNs(ns, "ip route add default via 198.18.1.253 dev eth1 onlink table 101"), 0);
  ASSERT_EQ(InNs(ns, std::string("ip rule add from ") + ip + " lookup 101 pref 1000"), 0);
}

TEST(LinuxFabricRoot, SecondaryIpReachableOnlyThroughItsEni) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string b = w.fabric.InstanceNetns("i-b");
  std::string c = w.fabric.InstanceNetns("i-c");
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));

  // Wrong: the secondary IP of eth1 configured on eth0. Requests arrive on
  // eth1 (the router delivers to eth1's MAC, which is down) and nothing leaves
  // eth0 with that source.
  ASSERT_EQ(InNs(a, "ip addr add 198.18.1.21/32 dev eth0"), 0);
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.1.21")));
  EXPECT_TRUE(NeverReaches(c, Ip("198.18.1.21")));
  ASSERT_EQ(InNs(a, "ip addr del 198.18.1.21/32 dev eth0"), 0);

  // Right: on eth1, with its own route table.
  ConfigureEth1(a, "198.18.1.21");
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.21")));
  EXPECT_TRUE(Reaches(c, Ip("198.18.1.21")));
  // Positive control for the negative above: the primary IP still works.
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.10")));

  // Taking the IP away from the ENI (SetEniIps) stops delivery.
  FabricEni shrunk = kEniA2;
  shrunk.ips = {Ip("198.18.1.20")};
  ASSERT_OK(w.fabric.SetEniIps(shrunk));
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.1.21")));
  ASSERT_OK(w.fabric.SetEniIps(kEniA2));
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.21")));
}

// A UDP receiver in one namespace; datagrams carry a one-byte tag.
class UdpReceiver {
 public:
  explicit UdpReceiver(const std::string& ns) {
    Status s = nl::RunInNetns(ns, [&]() -> Status {
      fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) return SysError("socket");
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return SysError("bind");
      socklen_t len = sizeof sa;
      getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      port_ = ntohs(sa.sin_port);
      return Ok();
    });
    EXPECT_TRUE(s.ok()) << s.error().ToString();
  }
  ~UdpReceiver() {
    if (fd_ >= 0) close(fd_);
  }
  uint16_t port() const { return port_; }
  // Waits up to deadline for a datagram; returns (tag, source) or tag 0.
  std::pair<char, std::string> Receive(std::chrono::milliseconds deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(deadline.count())) <= 0) return {0, ""};
    char tag = 0;
    sockaddr_in from{};
    socklen_t len = sizeof from;
    if (recvfrom(fd_, &tag, 1, 0, reinterpret_cast<sockaddr*>(&from), &len) != 1) return {0, ""};
    return {tag, Ipv4Addr(ntohl(from.sin_addr.s_addr)).ToString()};
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

Status SendUdp(const std::string& ns, Ipv4Addr src, Ipv4Addr dst, uint16_t port, char tag) {
  return nl::RunInNetns(ns, [&]() -> Status {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return SysError("socket");
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = src.network_order();
    Status s;
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) s = SysError("bind " + src.ToString());
    sa.sin_addr.s_addr = dst.network_order();
    sa.sin_port = htons(port);
    if (s.ok() && sendto(fd, &tag, 1, 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 1) {
      s = SysError("sendto " + dst.ToString());
    }
    close(fd);
    return s;
  });
}

TEST(LinuxFabricRoot, SpoofedSourceIsDropped) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string c = w.fabric.InstanceNetns("i-c");
  // a claims b's address (a real, routable VPC IP) on its own eth0.
  ASSERT_EQ(InNs(a, "ip addr add 198.18.1.11/32 dev eth0"), 0);
  ASSERT_TRUE(Reaches(a, Ip("198.18.2.10")));  // ARP and routes are warm

  UdpReceiver rx(c);
  ASSERT_NE(rx.port(), 0);
  for (int i = 0; i < 3; ++i) ASSERT_OK(SendUdp(a, Ip("198.18.1.11"), Ip("198.18.2.10"), rx.port(), 'S'));
  ASSERT_OK(SendUdp(a, Ip("198.18.1.10"), Ip("198.18.2.10"), rx.port(), 'L'));
  // The legitimate datagram, sent last on the same path, arrives; none of
  // the spoofed ones came before it or comes after it.
  auto [tag, from] = rx.Receive(5000ms);
  EXPECT_EQ(tag, 'L');
  EXPECT_EQ(from, "198.18.1.10");
  EXPECT_EQ(rx.Receive(300ms).first, 0);

  // The IPv4 rule counted the drops.
  EXPECT_GT(DropCount(w, "ip saddr != @allowed "), 0) << "IPv4 anti-spoofing rule";
}

TEST(LinuxFabricRoot, IpMovesBetweenEnis) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string b = w.fabric.InstanceNetns("i-b");
  std::string c = w.fabric.InstanceNetns("i-c");
  FabricEni eni_b = kEniB;
  eni_b.ips.push_back(Ip("198.18.1.30"));
  ASSERT_OK(w.fabric.SetEniIps(eni_b));
  ASSERT_EQ(InNs(b, "ip addr add 198.18.1.30/32 dev eth0"), 0);
  ASSERT_TRUE(Reaches(c, Ip("198.18.1.30")));

  // The control plane assigns it to a first, then unassigns it from b: the
  // second call must not undo the first.
  FabricEni eni_a = kEniA;
  eni_a.ips.push_back(Ip("198.18.1.30"));
  ASSERT_OK(w.fabric.SetEniIps(eni_a));
  ASSERT_OK(w.fabric.SetEniIps(kEniB));
  ASSERT_EQ(InNs(b, "ip addr del 198.18.1.30/32 dev eth0"), 0);
  ASSERT_EQ(InNs(a, "ip addr add 198.18.1.30/32 dev eth0"), 0);
  EXPECT_TRUE(Reaches(c, Ip("198.18.1.30")));

  // b may no longer send from it.
  ASSERT_EQ(InNs(a, "ip addr del 198.18.1.30/32 dev eth0"), 0);
  ASSERT_EQ(InNs(b, "ip addr add 198.18.1.30/32 dev eth0"), 0);
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.2.10"), "198.18.1.30"));
  EXPECT_TRUE(Reaches(b, Ip("198.18.2.10"), "198.18.1.11"));  // control
}

TEST(LinuxFabricRoot, DetachedEniIsGoneAndItsIpUnreachable) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string b = w.fabric.InstanceNetns("i-b");
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));
  ConfigureEth1(a, "198.18.1.21");
  ASSERT_TRUE(Reaches(b, Ip("198.18.1.21")));

  ASSERT_OK(w.fabric.DetachEni("i-a", "eni-a2"));
  auto h = nl::Handle::OpenIn(a);
  ASSERT_OK(h);
  EXPECT_FALSE(h->LinkExists("eth1"));
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.1.21")));
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.10")));  // control
  // The router forgot the IP: no /32 route remains.
  auto r = nl::Handle::OpenIn(w.fabric.RouterNetns());
  ASSERT_OK(r);
  auto routes = r->ListRoutes(AF_INET);
  ASSERT_OK(routes);
  for (const auto& rt : *routes) {
    EXPECT_NE(rt.dst.ToString(), "198.18.1.21/32");
    EXPECT_NE(rt.dst.ToString(), "198.18.1.20/32");
  }
  // Detaching again is harmless.
  ASSERT_OK(w.fabric.DetachEni("i-a", "eni-a2"));
}

TEST(LinuxFabricRoot, DetachFindsAnEniMovedIntoAPodNamespace) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  NetnsGuard pod{"tfpod" + testing::UniqueSuffix()};
  ASSERT_OK(nl::CreateNamedNetns(pod.name));
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));
  // An exclusive-ENI datapath moves the ENI into the pod as eth0.
  ASSERT_EQ(InNs(w.fabric.InstanceNetns("i-a"), "ip link set eth1 netns " + pod.name), 0);
  ASSERT_EQ(InNs(pod.name, "ip link set eth1 name eth0"), 0);
  ASSERT_EQ(InNs(pod.name, "ip link set eth0 up"), 0);
  ASSERT_EQ(InNs(pod.name, "ip link set lo up"), 0);
  ASSERT_EQ(InNs(pod.name, "ip addr add 198.18.1.20/24 dev eth0"), 0);
  ASSERT_EQ(InNs(pod.name, "ip route add default via 198.18.1.253"), 0);
  ASSERT_TRUE(Reaches(pod.name, Ip("198.18.2.10")));

  ASSERT_OK(w.fabric.DetachEni("i-a", "eni-a2"));
  auto h = nl::Handle::OpenIn(pod.name);
  ASSERT_OK(h);
  EXPECT_FALSE(h->LinkExists("eth0"));
}

TEST(LinuxFabricRoot, ReplayingEveryEnsureIsHarmless) {
  TERWAY_REQUIRE_ROOT();
  World w;
  ASSERT_OK(BuildThree(w));
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));
  ConfigureEth1(w.fabric.InstanceNetns("i-a"), "198.18.1.21");
  std::string b = w.fabric.InstanceNetns("i-b");
  ASSERT_TRUE(Reaches(b, Ip("198.18.1.21")));

  // A restarted control plane replays its state, twice for good measure, on
  // a fresh fabric object (no memory of the first).
  for (int round = 0; round < 2; ++round) {
    LinuxFabric replay(w.prefix);
    ASSERT_OK(replay.EnsureVpc("vpc-test", Cidr("198.18.0.0/16")));
    ASSERT_OK(replay.EnsureVSwitch(w.vsw1));
    ASSERT_OK(replay.EnsureVSwitch(w.vsw2));
    ASSERT_OK(replay.EnsureInstance("i-a", kEniA));
    ASSERT_OK(replay.EnsureInstance("i-b", kEniB));
    ASSERT_OK(replay.EnsureInstance("i-c", kEniC));
    ASSERT_OK(replay.AttachEni("i-a", kEniA2, 1));
    ASSERT_OK(replay.SetEniIps(kEniA2));
    ASSERT_OK(replay.SetEniIps(kEniB));
  }
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.21")));
  EXPECT_TRUE(Reaches(b, Ip("198.18.2.10")));
  // The anti-spoofing set still holds exactly the assigned IPs, once each.
  std::string set = Capture("ip netns exec " + w.fabric.RouterNetns() + " nft list set bridge " +
                            LinuxFabric::kNftTable + " allowed");
  for (const char* ip : {"198.18.1.10", "198.18.1.11", "198.18.2.10", "198.18.1.20", "198.18.1.21"}) {
    EXPECT_NE(set.find(ip), std::string::npos) << ip << " missing from " << set;
  }
  // Idempotent removal too.
  ASSERT_OK(w.fabric.RemoveInstance("i-c"));
  ASSERT_OK(w.fabric.RemoveInstance("i-c"));
  EXPECT_FALSE(nl::NetnsExists(w.fabric.InstanceNetns("i-c")));
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.2.10")));
}

TEST(LinuxFabricRoot, MisuseGetsAnErrorNamingTheCause) {
  TERWAY_REQUIRE_ROOT();
  World w;
  Status s = w.fabric.EnsureVSwitch(w.vsw1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_NE(s.error().ToString().find("EnsureVpc"), std::string::npos) << s.error().ToString();
  ASSERT_OK(w.Build());

  FabricVSwitch bad_gw{"vsw-bad", Cidr("198.18.3.0/24"), Ip("198.18.4.253")};
  s = w.fabric.EnsureVSwitch(bad_gw);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);

  FabricEni unknown_vsw = kEniA;
  unknown_vsw.vswitch_id = "vsw-nope";
  s = w.fabric.EnsureInstance("i-a", unknown_vsw);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_NE(s.error().ToString().find("vsw-nope"), std::string::npos) << s.error().ToString();

  FabricEni no_ip = kEniA;
  no_ip.ips.clear();
  s = w.fabric.EnsureInstance("i-a", no_ip);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);

  s = w.fabric.EnsureInstance(std::string(300, 'i'), kEniA);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);

  // IPs of an ENI that is not attached anywhere are accepted and routed
  // nowhere; attaching it later makes them live.
  ASSERT_OK(w.fabric.EnsureInstance("i-a", kEniA));
  ASSERT_OK(w.fabric.EnsureInstance("i-b", kEniB));
  ASSERT_OK(w.fabric.SetEniIps(kEniA2));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string b = w.fabric.InstanceNetns("i-b");
  EXPECT_TRUE(NeverReaches(b, Ip("198.18.1.21")));
  ASSERT_OK(w.fabric.AttachEni("i-a", kEniA2, 1));
  ConfigureEth1(a, "198.18.1.21");
  EXPECT_TRUE(Reaches(b, Ip("198.18.1.21")));
  // A second ENI on the same device index is refused by the kernel (name taken).
  FabricEni other = Eni("eni-a3", "00:16:3e:00:00:a3", "vsw-one", {"198.18.1.40"});
  s = w.fabric.AttachEni("i-a", other, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists) << s.error().ToString();
}

TEST(LinuxFabricRoot, WorldsBuiltConcurrentlyAreIndependent) {
  TERWAY_REQUIRE_ROOT();
  auto w1 = std::make_unique<World>();
  World w2;
  // Same ids and addresses in both: nothing may collide.
  Status s1, s2;
  std::thread t1([&] { s1 = BuildThree(*w1); });
  std::thread t2([&] { s2 = BuildThree(w2); });
  t1.join();
  t2.join();
  ASSERT_OK(s1);
  ASSERT_OK(s2);
  EXPECT_TRUE(Reaches(w1->fabric.InstanceNetns("i-a"), Ip("198.18.2.10")));
  EXPECT_TRUE(Reaches(w2.fabric.InstanceNetns("i-a"), Ip("198.18.2.10")));
  std::string w2_a = w2.fabric.InstanceNetns("i-a");
  ASSERT_OK(w1->fabric.Destroy());
  w1.reset();
  EXPECT_TRUE(Reaches(w2_a, Ip("198.18.2.10")));
  EXPECT_TRUE(Reaches(w2_a, Ip("198.18.1.11")));
}

// Links of a world by the names it gives them, visible in the root namespace.
std::string WorldLinksInRoot() {
  std::string links = Capture("ip -o link show");
  std::string found;
  for (const char* eni : {"eni-a", "eni-b", "eni-c", "eni-a2"}) {
    if (links.find(LinuxFabric::PortName(eni)) != std::string::npos) found += LinuxFabric::PortName(eni) + " ";
  }
  for (const char* vsw : {"vsw-one", "vsw-two"}) {
    if (links.find(LinuxFabric::BridgeName(vsw)) != std::string::npos) found += LinuxFabric::BridgeName(vsw) + " ";
  }
  return found;
}

// ---- IPv6 ---------------------------------------------------------------

Ipv6Addr Ip6(const char* s) { return Ipv6Addr::Parse(s).value(); }

bool Ping6Once(const std::string& ns, const std::string& dst, const std::string& src = "") {
  std::string cmd = "ip netns exec " + ns + " ping -6 -n -q -c 1 -W 1";
  if (!src.empty()) cmd += " -I " + src;
  return Run(cmd + " " + dst) == 0;
}
bool Reaches6(const std::string& ns, const std::string& dst, const std::string& src = "") {
  return Eventually([&] { return Ping6Once(ns, dst, src); });
}
bool NeverReaches6(const std::string& ns, const std::string& dst, const std::string& src = "") {
  return !Ping6Once(ns, dst, src) && !Ping6Once(ns, dst, src);
}

// A dual-stack world: both vSwitches with an IPv6 /64 of a unique local /56.
struct World6 : World {
  World6() {
    vsw1.ipv6_cidr = Ipv6Cidr::Parse("fd00:c612:0:1::/64").value();
    vsw1.ipv6_gateway = Ip6("fd00:c612:0:1:ffff:ffff:ffff:fff7");
    vsw2.ipv6_cidr = Ipv6Cidr::Parse("fd00:c612:0:2::/64").value();
    vsw2.ipv6_gateway = Ip6("fd00:c612:0:2:ffff:ffff:ffff:fff7");
  }
};

FabricEni WithV6(FabricEni e, std::vector<const char*> v6) {
  for (auto* a : v6) e.ipv6s.push_back(Ip6(a));
  return e;
}
const FabricEni kEniA6 = WithV6(kEniA, {"fd00:c612:0:1::10", "fd00:c612:0:1::12"});
const FabricEni kEniB6 = WithV6(kEniB, {"fd00:c612:0:1::11"});
const FabricEni kEniC6 = WithV6(kEniC, {"fd00:c612:0:2::10"});

// Three dual-stack instances; the fabric configures each one's IPv6 on eth0
// (RunInstances' Ipv6AddressCount: the primary ENI's addresses come with the
// instance).
Status BuildThree6(World6& w) {
  TERWAY_TRY(w.Build());
  TERWAY_TRY(w.fabric.EnsureInstance("i-a", kEniA6));
  TERWAY_TRY(w.fabric.EnsureInstance("i-b", kEniB6));
  return w.fabric.EnsureInstance("i-c", kEniC6);
}

// Echo requests from src that reached the namespace (an nft counter there).
Status CountEchoFrom(const std::string& ns, const std::string& src) {
  std::string script = "add table inet probe\n"
                       "add chain inet probe in { type filter hook input priority 0; }\n"
                       "add rule inet probe in ip6 saddr " + src + " icmpv6 type echo-request counter\n";
  if (Run("printf '" + script + "' | ip netns exec " + ns + " nft -f -") != 0) {
    return Errorf(ErrorCode::kInternal, "installing the probe counter in {}", ns);
  }
  return Ok();
}
long EchoCount(const std::string& ns) {
  std::string out = Capture("ip netns exec " + ns + " nft list chain inet probe in");
  auto at = out.find("counter packets ");
  return at == std::string::npos ? -1 : std::stol(out.substr(at + std::string("counter packets ").size()));
}

TEST(LinuxFabricRoot, Ipv6InstancesReachEachOtherThroughTheRouter) {
  TERWAY_REQUIRE_ROOT();
  World6 w;
  ASSERT_OK(BuildThree6(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string c = w.fabric.InstanceNetns("i-c");
  // eth0 as the fabric configures it: each address a /128 without DAD, and
  // the default route via the vSwitch's IPv6 gateway (no /64 on eth0, whose
  // connected route would make the kernel refuse an agent's onlink route
  // through another ENI).
  std::string addrs = Capture("ip netns exec " + a + " ip -6 -o addr show dev eth0 scope global");
  EXPECT_NE(addrs.find("fd00:c612:0:1::10/128"), std::string::npos) << addrs;
  EXPECT_NE(addrs.find("fd00:c612:0:1::12/128"), std::string::npos) << addrs;
  EXPECT_EQ(addrs.find("tentative"), std::string::npos) << addrs;
  EXPECT_NE(Capture("ip netns exec " + a + " ip -6 route show default")
                .find("default via fd00:c612:0:1:ffff:ffff:ffff:fff7 dev eth0"),
            std::string::npos);
  EXPECT_EQ(Capture("ip netns exec " + a + " ip -6 route show fd00:c612:0:1::/64"), "");
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:1:ffff:ffff:ffff:fff7")) << "the vSwitch's IPv6 gateway";
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:1::11")) << "same vSwitch";
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:2::10")) << "across vSwitches";
  EXPECT_TRUE(Reaches6(c, "fd00:c612:0:1::12")) << "a's second address, other direction";
  // IPv4 still works next to it.
  EXPECT_TRUE(Reaches(a, Ip("198.18.2.10")));
  // An address of the block that no ENI holds is refused by the router.
  ASSERT_EQ(InNs(c, "ip -6 addr add fd00:c612:0:1::77/128 dev eth0 nodad"), 0);
  EXPECT_TRUE(NeverReaches6(a, "fd00:c612:0:1::77"));
  // The router's view: a /128 and a permanent neighbour per held address.
  std::string routes = Capture("ip netns exec " + w.fabric.RouterNetns() + " ip -6 route show");
  EXPECT_NE(routes.find("fd00:c612:0:1::12 dev " + LinuxFabric::BridgeName("vsw-one")), std::string::npos)
      << routes;
  EXPECT_NE(routes.find("unreachable fd00:c612:0:1::/64"), std::string::npos) << routes;
}

TEST(LinuxFabricRoot, Ipv6SpoofedSourceIsDroppedAndAddressesFollowTheirEni) {
  TERWAY_REQUIRE_ROOT();
  World6 w;
  ASSERT_OK(BuildThree6(w));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string c = w.fabric.InstanceNetns("i-c");
  // a claims b's address on its own eth0 and pings c from it.
  ASSERT_EQ(InNs(a, "ip -6 addr add fd00:c612:0:1::11/128 dev eth0 nodad"), 0);
  // Positive control on the same path, from a's own address (source address
  // selection could pick either).
  ASSERT_TRUE(Reaches6(a, "fd00:c612:0:2::10", "fd00:c612:0:1::10"));
  ASSERT_OK(CountEchoFrom(c, "fd00:c612:0:1::11"));
  EXPECT_FALSE(Ping6Once(a, "fd00:c612:0:2::10", "fd00:c612:0:1::11"));
  EXPECT_FALSE(Ping6Once(a, "fd00:c612:0:2::10", "fd00:c612:0:1::11"));
  EXPECT_EQ(EchoCount(c), 0) << "a spoofed echo request reached c";
  EXPECT_GT(DropCount(w, "ip6 saddr != @allowed6"), 0) << "IPv6 anti-spoofing rule";

  // a's second address is taken from it: no longer delivered to a, and a may
  // no longer send from it; the first address still works.
  ASSERT_TRUE(Reaches6(c, "fd00:c612:0:1::12"));
  FabricEni fewer = kEniA6;
  fewer.ipv6s = {Ip6("fd00:c612:0:1::10")};
  ASSERT_OK(w.fabric.SetEniIps(fewer));
  EXPECT_TRUE(NeverReaches6(c, "fd00:c612:0:1::12"));
  EXPECT_TRUE(NeverReaches6(a, "fd00:c612:0:2::10", "fd00:c612:0:1::12"));
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:2::10", "fd00:c612:0:1::10"));
  // Given to b, it reaches b.
  std::string b = w.fabric.InstanceNetns("i-b");
  FabricEni more = kEniB6;
  more.ipv6s.push_back(Ip6("fd00:c612:0:1::12"));
  ASSERT_OK(w.fabric.SetEniIps(more));
  ASSERT_EQ(InNs(a, "ip -6 addr del fd00:c612:0:1::12/128 dev eth0"), 0);
  ASSERT_EQ(InNs(b, "ip -6 addr add fd00:c612:0:1::12/128 dev eth0 nodad"), 0);
  EXPECT_TRUE(Reaches6(c, "fd00:c612:0:1::12"));
  // Detaching b's ENI takes all its addresses with it.
  ASSERT_OK(w.fabric.DetachEni("i-b", "eni-b"));
  EXPECT_TRUE(NeverReaches6(c, "fd00:c612:0:1::11"));
  std::string routes = Capture("ip netns exec " + w.fabric.RouterNetns() + " ip -6 route show");
  EXPECT_EQ(routes.find("fd00:c612:0:1::11 "), std::string::npos) << routes;
}

// A router table from before IPv6 (only the IPv4 set) gains the IPv6 set and
// rules on EnsureVpc, and keeps its IPv4 elements.
TEST(LinuxFabricRoot, AnOlderAntiSpoofTableGainsTheIpv6Set) {
  TERWAY_REQUIRE_ROOT();
  World6 w;
  NetnsGuard guard{w.fabric.RouterNetns()};
  ASSERT_OK(nl::CreateNamedNetns(w.fabric.RouterNetns()));
  std::string old_table = std::string("table bridge ") + LinuxFabric::kNftTable + " {\n"
                          "  set allowed { type ifname . ipv4_addr; elements = { \"en-old\" . 198.18.1.99 } }\n"
                          "  chain prerouting { type filter hook prerouting priority -200; policy accept;\n"
                          "    ether type ip iifname . ip saddr != @allowed counter drop\n  }\n}\n";
  ASSERT_EQ(vpcsim::Run("printf '" + old_table + "' | ip netns exec " + w.fabric.RouterNetns() + " nft -f -"), 0);
  ASSERT_OK(w.Build());
  std::string table = Capture("ip netns exec " + w.fabric.RouterNetns() + " nft list table bridge " +
                              LinuxFabric::kNftTable);
  EXPECT_NE(table.find("set allowed6"), std::string::npos) << table;
  EXPECT_NE(table.find("ip6 saddr != @allowed6"), std::string::npos) << table;
  EXPECT_NE(table.find("198.18.1.99"), std::string::npos) << "the IPv4 elements were kept:\n" << table;
  ASSERT_OK(BuildThree6(w));
  EXPECT_TRUE(Reaches6(w.fabric.InstanceNetns("i-a"), "fd00:c612:0:2::10"));
}

// The router's proxy NDP entries (`ip -6 neigh show proxy`) on a bridge.
std::string ProxyEntries(World6& w, const std::string& vsw) {
  return Capture("ip netns exec " + w.fabric.RouterNetns() + " ip -6 neigh show proxy dev " +
                 LinuxFabric::BridgeName(vsw));
}

// An instance that takes its vSwitch's /64 as on-link (no default route, no
// gateway) solicits its peers directly: the vSwitch answers for every address
// an attached ENI holds, and stops when the address is taken away.
TEST(LinuxFabricRoot, Ipv6PeersAnswerNeighbourDiscoveryOnAnOnLinkSlash64) {
  TERWAY_REQUIRE_ROOT();
  World6 w;
  ASSERT_OK(w.Build());
  // b as the fabric configures it, gateway-routed (its answers go back
  // through the router); a created without IPv6, then given its addresses
  // (routed by the router) and configured by hand with only the on-link /64:
  // its sole way to b is a solicitation for b.
  ASSERT_OK(w.fabric.EnsureInstance("i-a", kEniA));
  ASSERT_OK(w.fabric.SetEniIps(kEniA6));
  ASSERT_OK(w.fabric.EnsureInstance("i-b", kEniB6));
  std::string a = w.fabric.InstanceNetns("i-a");
  std::string b = w.fabric.InstanceNetns("i-b");
  ASSERT_EQ(InNs(a, "ip -6 addr add fd00:c612:0:1::10/64 dev eth0 nodad"), 0);
  ASSERT_EQ(Capture("ip netns exec " + a + " ip -6 route show default"), "");
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:1::11")) << "a peer on the same vSwitch, solicited on-link";
  std::string neigh = Capture("ip netns exec " + a + " ip -6 neigh show fd00:c612:0:1::11 dev eth0");
  EXPECT_NE(neigh.find(std::string("lladdr ") + LinuxFabric::kGatewayMac), std::string::npos)
      << "answered by the vSwitch, with its MAC: " << neigh;
  EXPECT_NE(ProxyEntries(w, "vsw-one").find("fd00:c612:0:1::11"), std::string::npos) << ProxyEntries(w, "vsw-one");

  // An address added without nodad passes DAD: the router's proxy entry for
  // it does not answer the ENI's own probe.
  ASSERT_EQ(InNs(a, "ip -6 addr add fd00:c612:0:1::12/128 dev eth0"), 0);
  EXPECT_TRUE(Eventually([&] {
    std::string addr = Capture("ip netns exec " + a + " ip -6 addr show dev eth0");
    return addr.find("fd00:c612:0:1::12/128 scope global") != std::string::npos &&
           addr.find("tentative") == std::string::npos && addr.find("dadfailed") == std::string::npos;
  })) << Capture("ip netns exec " + a + " ip -6 addr show dev eth0");

  // b loses the address: the proxy entry goes (a's cached neighbour is
  // flushed so that it must solicit again), and nothing answers for it.
  FabricEni none = kEniB6;
  none.ipv6s.clear();
  ASSERT_OK(w.fabric.SetEniIps(none));
  EXPECT_EQ(ProxyEntries(w, "vsw-one").find("fd00:c612:0:1::11"), std::string::npos) << ProxyEntries(w, "vsw-one");
  EXPECT_NE(ProxyEntries(w, "vsw-one").find("fd00:c612:0:1::10"), std::string::npos) << "a's own stays";
  ASSERT_EQ(InNs(a, "ip -6 neigh flush dev eth0"), 0);
  EXPECT_TRUE(NeverReaches6(a, "fd00:c612:0:1::11"));
  // Given back, it answers again; detaching the ENI takes the entry too.
  ASSERT_OK(w.fabric.SetEniIps(kEniB6));
  EXPECT_TRUE(Reaches6(a, "fd00:c612:0:1::11"));
  ASSERT_OK(w.fabric.DetachEni("i-b", "eni-b"));
  EXPECT_EQ(ProxyEntries(w, "vsw-one").find("fd00:c612:0:1::11"), std::string::npos) << ProxyEntries(w, "vsw-one");
}

// A router table from before proxy NDP (IPv6 set, no DAD rule) gains the rule
// dropping DAD probes on EnsureVpc, once.
TEST(LinuxFabricRoot, AnOlderIpv6TableGainsTheDadRuleOnce) {
  TERWAY_REQUIRE_ROOT();
  World6 w;
  ASSERT_OK(w.Build());
  std::string list = "ip netns exec " + w.fabric.RouterNetns() + " nft -a list chain bridge " +
                     LinuxFabric::kNftTable + " prerouting";
  std::string chain = Capture(list);
  auto at = chain.find("nd-neighbor-solicit");
  ASSERT_NE(at, std::string::npos) << chain;
  auto handle = chain.find("# handle ", at);
  ASSERT_NE(handle, std::string::npos) << chain;
  std::string id = chain.substr(handle + 9, chain.find('\n', handle) - handle - 9);
  ASSERT_EQ(InNs(w.fabric.RouterNetns(),
                 std::string("nft delete rule bridge ") + LinuxFabric::kNftTable + " prerouting handle " + id),
            0);
  ASSERT_EQ(Capture(list).find("nd-neighbor-solicit"), std::string::npos);
  ASSERT_OK(w.Build());
  ASSERT_OK(w.Build());
  chain = Capture(list);
  at = chain.find("nd-neighbor-solicit");
  ASSERT_NE(at, std::string::npos) << chain;
  EXPECT_EQ(chain.find("nd-neighbor-solicit", at + 1), std::string::npos) << "added once:\n" << chain;
  EXPECT_LT(at, chain.find("ip6 saddr :: accept")) << "before the rule accepting :: sources:\n" << chain;
}

TEST(LinuxFabricRoot, DestroyLeavesNothingBehind) {
  TERWAY_REQUIRE_ROOT();
  auto w = std::make_unique<World>();
  ASSERT_OK(BuildThree(*w));
  ASSERT_OK(w->fabric.AttachEni("i-a", kEniA2, 1));
  std::string prefix = w->prefix;
  std::string router = w->fabric.RouterNetns();
  EXPECT_NE(Capture("ip netns list").find(router), std::string::npos);
  EXPECT_NE(Capture("ip netns exec " + router + " nft list tables").find(LinuxFabric::kNftTable),
            std::string::npos);
  EXPECT_NE(Capture("ip netns exec " + router + " ip -o link show").find(LinuxFabric::PortName("eni-a2")),
            std::string::npos);
  // Nothing of the world is in the root namespace, even while it runs.
  EXPECT_EQ(WorldLinksInRoot(), "");
  std::string root_tables = Capture("nft list tables");
  EXPECT_EQ(root_tables.find(std::string("bridge ") + LinuxFabric::kNftTable), std::string::npos) << root_tables;

  ASSERT_OK(w->fabric.Destroy());
  EXPECT_EQ(Capture("ip netns list").find(prefix + "-"), std::string::npos) << Capture("ip netns list");
  EXPECT_EQ(Capture("ls /var/run/netns").find(prefix + "-"), std::string::npos);
  EXPECT_EQ(WorldLinksInRoot(), "");
  root_tables = Capture("nft list tables");
  EXPECT_EQ(root_tables.find(std::string("bridge ") + LinuxFabric::kNftTable), std::string::npos) << root_tables;
  // Destroying twice is harmless (the guard destroys again).
  w.reset();
}

}  // namespace
}  // namespace terway::vpcsim
