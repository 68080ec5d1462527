// The real-traffic topology of the eBPF datapath's root tests. Everything
// lives in namespaces of the test: a "node" with two pods' host veths and an
// "ENI" (a veth whose other end is the VPC: the vSwitch gateway 198.18.0.1
// and a VPC host 198.18.1.5). The node has IPv4 forwarding off and no routes
// to the pods until a test calls StackFallback(), so its stack cannot carry
// a single pod packet: whatever gets through was moved by the programs (and
// the counters say which way).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ebpf/attach.h"
#include "ebpf/programs.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "root/ebpf/ebpf_test_env.h"

namespace terway::ebpf::testing {

using terway::testing::Capture;

inline int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// A process of the test (an echo server), in a process group of its own:
// socat's fork option leaves a child per peer (for UDP one that lives on),
// and the whole group is ended, by its id, when the test is done.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execvp(a[0], a.data());
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);  // also here: no race with the kill below
  }
  ~Child() {
    if (pid_ > 0) {
      kill(-pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

 private:
  pid_t pid_ = -1;
};

// Sends `msg` over TCP from `ns` to addr:port and returns what the echo
// server sent back; retried until `deadline` (the server may still be
// starting). Empty when it never answered.
inline std::string TcpEcho(const std::string& ns, const std::string& addr, int port, const std::string& msg,
                    std::chrono::seconds deadline = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    std::string out = Capture("echo " + msg + " | ip netns exec " + ns + " socat -T2 - TCP:" + addr + ":" +
                              std::to_string(port) + ",connect-timeout=1 2>/dev/null");
    if (out.find(msg) != std::string::npos) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

// The same over UDP (a connected socket: an answer from any other address
// than addr:port is not taken).
inline std::string UdpEcho(const std::string& ns, const std::string& addr, int port, const std::string& msg,
                           std::chrono::seconds deadline = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    std::string out = Capture("echo " + msg + " | ip netns exec " + ns + " socat -T1 - UDP:" + addr + ":" +
                              std::to_string(port) + " 2>/dev/null");
    if (out.find(msg) != std::string::npos) return out;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return "";
}

inline bool Ping(const std::string& ns, const std::string& dst, const std::string& src = "") {
  return Sh("ip netns exec " + ns + " ping -c 2 -i 0.2 -W 2 " + (src.empty() ? "" : "-I " + src + " ") + dst) == 0;
}

class EbpfTraffic : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    TERWAY_REQUIRE_BPFFS(fs_);
    const std::string s = terway::testing::UniqueSuffix();
    node_ = "twebn" + s;
    a_ = "twebA" + s;
    b_ = "twebB" + s;
    vpc_ = "twebv" + s;
    for (const auto& n : {node_, a_, b_, vpc_}) {
      ASSERT_TRUE(netlink::CreateNamedNetns(n).ok());
      created_.push_back(n);
    }
    const std::string N = "ip -n " + node_ + " ";
    ASSERT_EQ(Sh(N + "link set lo up && " + N + "addr add 198.18.0.10/32 dev lo"  // the node's own address
                 " && " + N + "link add twa type veth peer name eth0 netns " + a_ +
                 " && " + N + "link add twb type veth peer name eth0 netns " + b_ +
                 " && " + N + "link add eni0 type veth peer name gw0 netns " + vpc_ +
                 " && " + N + "link set twa up && " + N + "link set twb up && " + N + "link set eni0 up"),
              0);
    ASSERT_EQ(Capture("ip netns exec " + node_ + " sysctl -n net.ipv4.ip_forward"), "0\n")
        << "the node must not forward: only the programs may";
    auto h = netlink::Handle::OpenIn(node_);
    ASSERT_TRUE(h.ok()) << h.error().ToString();
    node_h_ = std::make_unique<netlink::Handle>(std::move(*h));
    auto twa = node_h_->GetLink("twa"), twb = node_h_->GetLink("twb"), eni = node_h_->GetLink("eni0");
    ASSERT_TRUE(twa.ok() && twb.ok() && eni.ok());
    twa_ = twa->index;
    twb_ = twb->index;
    eni_ = eni->index;
    ASSERT_NO_FATAL_FAILURE(Pod(a_, "198.18.0.20", *twa, &ep_a_));
    ASSERT_NO_FATAL_FAILURE(Pod(b_, "198.18.0.21", *twb, &ep_b_));
    // The VPC: the gateway, a VPC host, and the vSwitch's knowledge of
    // which ENI (MAC) holds which pod IP (it does not ARP for them).
    const std::string V = "ip -n " + vpc_ + " ";
    const std::string eni_mac = eni->mac.ToString();
    ASSERT_EQ(Sh(V + "link set lo up && " + V + "addr add 198.18.1.5/32 dev lo && " + V + "link set gw0 up && " + V +
                 "addr add 198.18.0.1/24 dev gw0"
                 " && " + V + "neigh add 198.18.0.20 lladdr " + eni_mac + " dev gw0 nud permanent"
                 " && " + V + "neigh add 198.18.0.21 lladdr " + eni_mac + " dev gw0 nud permanent"
                 " && " + V + "neigh add 198.18.0.10 lladdr " + eni_mac + " dev gw0 nud permanent"),
              0);
    auto dp = DatapathPrograms::Load(fs_.Options());
    ASSERT_TRUE(dp.ok()) << dp.error().ToString();
    dp_ = std::move(*dp);
    ASSERT_TRUE(dp_->SyncStackPrefixes({{*Ipv4Cidr::Parse("198.18.0.10/32"), StackPrefixKind::kNode}}).ok());
    ASSERT_TRUE(dp_->SetPolicySynced(true).ok());  // no pod isolated (a fresh map polices every pod)
    ASSERT_TRUE(dp_->UpsertEndpoint(ep_a_).ok());
    ASSERT_TRUE(dp_->UpsertEndpoint(ep_b_).ok());
    ASSERT_TRUE(Attach(*node_h_, eni_, Hook::kEni, *dp_).ok());
    ASSERT_TRUE(Attach(*node_h_, twa_, Hook::kPodVeth, *dp_).ok());
    ASSERT_TRUE(Attach(*node_h_, twb_, Hook::kPodVeth, *dp_).ok());
  }

  // What the caller of the eBPF datapath keeps for the stack path (veth
  // mode's): IPv4 forwarding and a host route per pod.
  void StackFallback() {
    const std::string N = "ip -n " + node_ + " ";
    ASSERT_EQ(Sh("ip netns exec " + node_ + " sysctl -qw net.ipv4.ip_forward=1 && " + N +
                 "route add 198.18.0.20/32 dev twa scope link && " + N +
                 "route add 198.18.0.21/32 dev twb scope link"),
              0);
  }

  void TearDown() override {
    node_h_.reset();  // a handle keeps its namespace alive
    for (const auto& n : created_) (void)netlink::DeleteNamedNetns(n);
  }

  // A pod as shared-ENI mode wires it: ip/32 on eth0, default via
  // 169.254.1.1 with a permanent neighbour to the host veth's MAC.
  void Pod(const std::string& ns, const std::string& ip, const netlink::Link& host, Endpoint* ep) {
    const std::string P = "ip -n " + ns + " ";
    ASSERT_EQ(Sh(P + "link set lo up && " + P + "link set eth0 up && " + P + "addr add " + ip + "/32 dev eth0 && " +
                 P + "route add 169.254.1.1 dev eth0 scope link && " + P +
                 "route add default via 169.254.1.1 dev eth0 && " + P + "neigh add 169.254.1.1 lladdr " +
                 host.mac.ToString() + " dev eth0 nud permanent"),
              0);
    auto h = netlink::Handle::OpenIn(ns);
    ASSERT_TRUE(h.ok());
    auto eth0 = h->GetLink("eth0");
    ASSERT_TRUE(eth0.ok());
    ep->ip = *Ipv4Addr::Parse(ip);
    ep->host_ifindex = host.index;
    ep->eni_ifindex = eni_;
    ep->gateway = *Ipv4Addr::Parse("198.18.0.1");
    ep->pod_mac = eth0->mac;
    ep->host_mac = host.mac;
  }

  Counters Count() {
    auto c = dp_->ReadCounters();
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    return c.ok() ? *c : Counters{};
  }

  PrivateBpffs fs_;
  std::vector<std::string> created_;
  std::string node_, a_, b_, vpc_;
  std::unique_ptr<netlink::Handle> node_h_;
  int twa_ = 0, twb_ = 0, eni_ = 0;
  Endpoint ep_a_, ep_b_;
  std::unique_ptr<DatapathPrograms> dp_;
};

}  // namespace terway::ebpf::testing
