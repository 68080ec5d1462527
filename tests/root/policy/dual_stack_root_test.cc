// Dual stack with real packets: the rendered table in a node namespace the
// test creates, three dual-stack pod namespaces on one L2 segment of that
// node (a bridge whose IPv4/IPv6 traffic passes the node's netfilter
// hooks, nf_call_ip6tables), so pod-to-pod traffic and the pods' neighbour
// discovery cross the forward hook. Addresses: fd00:18:10::/64 and
// 198.18.20.0/24 only, inside the test's namespaces.
//
//   x/a fd00:18:10::1 198.18.20.1   x/b fd00:18:10::2 198.18.20.2   y/c fd00:18:10::3 198.18.20.3
//
// Every verdict is checked against Explain too. Everything is removed by the
// fixture's destructor, also on failure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netlink/netns.h"
#include "policy/calico_policy.h"
#include "policy/compiler.h"
#include "policy/k8s_policy.h"
#include "policy/nft_table.h"
#include "test_util.h"

namespace terway::policy {
namespace {

using ::terway::testing::Capture;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct DualPod {
  std::string ns_name, name, ip6, ip4, netns;
};

class DualStackRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    s_ = terway::testing::UniqueSuffix();
    node_ = "twdn" + s_;
    Own(node_);
    table_.emplace(node_);
    const std::string br = "twbr" + s_, n = "ip -n " + node_ + " ";
    ASSERT_EQ(Sh(n + "link set lo up && " + n + "link add " + br +
                 " type bridge nf_call_iptables 1 nf_call_ip6tables 1 && " + n + "link set " + br + " up"),
              0);
    pods_ = {{"x", "a", "fd00:18:10::1", "198.18.20.1", ""},
             {"x", "b", "fd00:18:10::2", "198.18.20.2", ""},
             {"y", "c", "fd00:18:10::3", "198.18.20.3", ""}};
    for (auto& p : pods_) {
      p.netns = "twd" + p.name + s_;
      Own(p.netns);
      const std::string veth = "tw" + p.name + s_, pn = "ip -n " + p.netns + " ";
      // No link-local address: every packet of the pod, neighbour discovery
      // included, carries its pod address, so the pod maps see all of it.
      ASSERT_EQ(Sh(n + "link add " + veth + " type veth peer name eth0 netns " + p.netns + " && " + n + "link set " +
                   veth + " master " + br + " up && " + pn + "link set eth0 addrgenmode none && " + pn +
                   "link set lo up && " + pn + "link set eth0 up && " + pn + "addr add " + p.ip6 +
                   "/64 dev eth0 nodad && " + pn + "addr add " + p.ip4 + "/24 dev eth0"),
                0);
      // TCP 80 over both families (a v6 socket takes IPv4 as mapped).
      Spawn({"ip", "netns", "exec", p.netns, "socat", "TCP6-LISTEN:80,reuseaddr,fork", "EXEC:/bin/echo ok"});
      ASSERT_TRUE(WaitListening(p.netns)) << "TCP server in " << p.netns;
    }
  }

  ~DualStackRoot() override {
    for (pid_t pid : pids_) {
      kill(-pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    for (const auto& ns : owned_) (void)netlink::DeleteNamedNetns(ns);
  }

  void Own(const std::string& ns) {
    owned_.push_back(ns);
    ASSERT_TRUE(netlink::CreateNamedNetns(ns).ok()) << ns;
  }

  void Spawn(std::vector<std::string> argv) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      setpgid(0, 0);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      (void)!freopen("/dev/null", "w", stdout);
      (void)!freopen("/dev/null", "w", stderr);
      execvp(a[0], a.data());
      _exit(127);
    }
    setpgid(pid, pid);
    pids_.push_back(pid);
  }

  static bool WaitListening(const std::string& netns) {
    for (int i = 0; i < 100; i++) {
      if (Capture("ip netns exec " + netns + " ss -H -ltn 2>/dev/null").find(":80 ") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  const DualPod& Pod(const std::string& name) const {
    for (const auto& p : pods_)
      if (p.name == name) return p;
    return pods_[0];
  }

  // The server's "ok" came back: request and reply both passed.
  bool Tcp6(const std::string& from, const std::string& to) {
    return Capture("ip netns exec " + Pod(from).netns + " timeout 6 socat -t 2 -T 2 - TCP6:[" + Pod(to).ip6 +
                   "]:80,connect-timeout=2 </dev/null 2>/dev/null") == "ok\n";
  }
  bool Tcp4(const std::string& from, const std::string& to) {
    return Capture("ip netns exec " + Pod(from).netns + " timeout 6 socat -t 2 -T 2 - TCP4:" + Pod(to).ip4 +
                   ":80,connect-timeout=2 </dev/null 2>/dev/null") == "ok\n";
  }
  bool Ping6(const std::string& from, const std::string& to) {
    return Sh("ip netns exec " + Pod(from).netns + " ping -6 -n -c 1 -W 2 " + Pod(to).ip6) == 0;
  }

  PolicyInputs Inputs(const std::vector<Policy>& policies) {
    PolicyInputs in;
    in.namespaces = {{"x", {}}, {"y", {}}};
    for (const auto& p : pods_) {
      PodInfo i;
      i.namespace_ = p.ns_name;
      i.name = p.name;
      i.labels = {{"pod", p.name}};
      i.ip = Ipv4Addr::Parse(p.ip4).value();
      i.ipv6 = Ipv6Addr::Parse(p.ip6).value();
      i.node = "node-1";
      in.pods.push_back(i);
    }
    in.policies = policies;
    return in;
  }

  static Policy K8s(const char* json) {
    auto np = k8s::ParseNetworkPolicy(nlohmann::json::parse(json));
    EXPECT_TRUE(np.ok());
    auto p = PolicyFromK8s(*np);
    EXPECT_TRUE(p.ok()) << p.error().ToString();
    return *p;
  }
  static Policy Calico(const char* json) {
    auto p = PolicyFromCalico(nlohmann::json::parse(json));
    EXPECT_TRUE(p.ok()) << p.error().ToString();
    return *p;
  }

  // Applies the compile to the node namespace; returns it for Explain.
  CompiledPolicy Enforce(const std::vector<Policy>& policies) {
    CompiledPolicy cp = PolicyCompiler({"node-1"}).Compile(Inputs(policies));
    Status st = table_->Apply(cp);
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    return cp;
  }

  // Explain's verdict for pod -> pod in a family, for the same flow.
  static bool Explained(const CompiledPolicy& cp, const std::string& from, const std::string& to, Packet pkt) {
    auto e = cp.Explain(from, to, pkt);
    EXPECT_TRUE(e.ok()) << e.error().ToString();
    return e.ok() && e->allowed;
  }
  static Packet Tcp6Packet() {
    Packet p = Packet::Of(Protocol::kTCP, 80);
    p.ip_version = 6;
    return p;
  }

  std::string s_, node_;
  std::vector<DualPod> pods_;
  std::vector<std::string> owned_;
  std::vector<pid_t> pids_;
  std::optional<NftPolicyTable> table_;  // in node_ only
};

// ipBlock fd00:18:10::/64 except y/c's /128: x/a reaches x/b over IPv6,
// y/c does not; over IPv4 nothing does (the block admits no IPv4 address),
// while unisolated pods keep talking in both families.
TEST_F(DualStackRoot, Ipv6IpBlockAllowsAndItsExceptDenies) {
  ASSERT_TRUE(Tcp6("a", "b") && Tcp4("a", "b") && Tcp6("c", "b")) << "the segment works before any policy";
  CompiledPolicy cp = Enforce({K8s(R"({"metadata":{"name":"b-in","namespace":"x"},"spec":{
      "podSelector":{"matchLabels":{"pod":"b"}},
      "ingress":[{"from":[{"ipBlock":{"cidr":"fd00:18:10::/64","except":["fd00:18:10::3/128"]}}]}]}})")});
  EXPECT_TRUE(Tcp6("a", "b"));
  EXPECT_TRUE(Explained(cp, "x/a", "x/b", Tcp6Packet()));
  EXPECT_FALSE(Tcp6("c", "b"));
  EXPECT_FALSE(Explained(cp, "y/c", "x/b", Tcp6Packet()));
  EXPECT_FALSE(Tcp4("a", "b"));
  EXPECT_FALSE(Explained(cp, "x/a", "x/b", Packet::Of(Protocol::kTCP, 80)));
  EXPECT_TRUE(Tcp6("b", "c"));  // y/c is not isolated; the reply of b's connection passes
  EXPECT_TRUE(Tcp4("c", "a"));
}

// Calico ICMPv6 echo request allowed, nothing else: ping -6 passes, TCP over
// IPv6 does not; the same policy in ipVersion 4 would allow no IPv6 at all.
TEST_F(DualStackRoot, Icmpv6EchoRuleAllowsPingOnly) {
  CompiledPolicy cp = Enforce({Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"b-ping","namespace":"x"},"spec":{
      "selector":"pod == 'b'","types":["Ingress"],
      "ingress":[{"action":"Allow","protocol":"ICMPv6","icmp":{"type":128}}]}})")});
  EXPECT_TRUE(Ping6("a", "b"));
  Packet echo;
  echo.protocol = Protocol::kICMPv6;
  echo.icmp_type = 128;
  echo.ip_version = 6;
  EXPECT_TRUE(Explained(cp, "x/a", "x/b", echo));
  EXPECT_FALSE(Tcp6("a", "b"));
  EXPECT_FALSE(Explained(cp, "x/a", "x/b", Tcp6Packet()));

  cp = Enforce({Calico(R"({"kind":"NetworkPolicy","metadata":{"name":"b-ping","namespace":"x"},"spec":{
      "selector":"pod == 'b'","types":["Ingress"],"ingress":[{"action":"Allow","ipVersion":4}]}})")});
  EXPECT_FALSE(Ping6("a", "b"));
  EXPECT_FALSE(Explained(cp, "x/a", "x/b", echo));
  EXPECT_TRUE(Tcp4("a", "b"));
}

// Every pod isolated both ways, only x/a -> x/b TCP 80 allowed: after the
// neighbour caches are flushed the two still resolve each other (their
// neighbour discovery crosses the forward hook with their pod addresses)
// and talk; the pods no rule allows stay cut off.
TEST_F(DualStackRoot, NeighbourDiscoveryWorksUnderFullIsolation) {
  CompiledPolicy cp = Enforce({
      K8s(R"({"metadata":{"name":"deny-x","namespace":"x"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}})"),
      K8s(R"({"metadata":{"name":"deny-y","namespace":"y"},"spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}})"),
      K8s(R"({"metadata":{"name":"a-to-b","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},
          "policyTypes":["Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"pod":"b"}}}],"ports":[{"port":80}]}]}})"),
      K8s(R"({"metadata":{"name":"b-from-a","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"b"}},
          "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"a"}}}],"ports":[{"port":80}]}]}})"),
  });
  for (const auto& p : pods_) ASSERT_EQ(Sh("ip -n " + p.netns + " -6 neigh flush dev eth0"), 0);
  ASSERT_EQ(Capture("ip -n " + Pod("a").netns + " -6 neigh show " + Pod("b").ip6), "");
  EXPECT_TRUE(Tcp6("a", "b"));
  EXPECT_TRUE(Explained(cp, "x/a", "x/b", Tcp6Packet()));
  EXPECT_NE(Capture("ip -n " + Pod("a").netns + " -6 neigh show " + Pod("b").ip6).find("lladdr"), std::string::npos)
      << "x/a resolved x/b";
  EXPECT_FALSE(Tcp6("b", "a"));
  EXPECT_FALSE(Tcp6("c", "b"));
  EXPECT_FALSE(Ping6("a", "b"));  // ICMPv6 echo is policy's, unlike neighbour discovery
}

}  // namespace
}  // namespace terway::policy
