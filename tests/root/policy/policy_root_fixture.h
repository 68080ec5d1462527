// The fixture of the policy root tests: one "node" namespace and three
// "pod" namespaces wired as the shared-ENI datapath wires them (pod eth0
// IP/32, default via 169.254.1.1 with a permanent neighbour to the host veth;
// on the node podIP/32 dev tw*), so pod-to-pod traffic crosses the node's
// forward hook; TCP 80 and UDP 81 servers in every pod.
//
//   x/a 198.18.10.1  x/b 198.18.10.2  y/c 198.18.10.3   node: 198.18.0.1 on lo
//
// Everything is removed by the fixture's destructor, also on failure.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "e2e/lab/netpol_probe.h"
#include "k8s/types.h"
#include "netlink/netns.h"
#include "policy/calico_policy.h"
#include "policy/compiler.h"
#include "policy/k8s_policy.h"
#include "policy/nft_batch.h"
#include "policy/nft_render.h"
#include "policy/nft_table.h"
#include "policy/policy_show.h"
#include "test_util.h"


namespace terway::policy::testing {

using ::terway::testing::Capture;

inline int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct TestPod {
  std::string ns_name;  // Kubernetes namespace
  std::string name;
  std::string ip;
  std::string netns;  // network namespace
  std::string host_veth;
};

class PolicyNftRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    s_ = terway::testing::UniqueSuffix();
    node_ = "twpn" + s_;
    Own(node_);
    ASSERT_EQ(Sh("ip -n " + node_ + " link set lo up && ip -n " + node_ + " addr add 198.18.0.1/32 dev lo && " +
                 "ip netns exec " + node_ + " sysctl -qw net.ipv4.ip_forward=1"),
              0);
    pods_ = {{"x", "a", "198.18.10.1", "", ""}, {"x", "b", "198.18.10.2", "", ""}, {"y", "c", "198.18.10.3", "", ""}};
    for (auto& p : pods_) {
      p.netns = "twp" + p.name + s_;
      p.host_veth = "tw" + p.name + s_;
      Own(p.netns);
      ASSERT_EQ(Sh("ip -n " + node_ + " link add " + p.host_veth + " type veth peer name eth0 netns " + p.netns), 0);
      std::string mac = Capture("cat /dev/null; ip -n " + node_ + " -br link show " + p.host_veth + " | awk '{print $3}'");
      while (!mac.empty() && (mac.back() == '\n' || mac.back() == ' ')) mac.pop_back();
      ASSERT_FALSE(mac.empty());
      std::string pn = "ip -n " + p.netns + " ";
      ASSERT_EQ(Sh(pn + "link set lo up && " + pn + "link set eth0 up && " + pn + "addr add " + p.ip +
                   "/32 dev eth0 && " + pn + "route add 169.254.1.1 dev eth0 scope link && " + pn +
                   "route add default via 169.254.1.1 dev eth0 && " + pn + "neigh add 169.254.1.1 lladdr " + mac +
                   " dev eth0 nud permanent"),
                0);
      ASSERT_EQ(Sh("ip -n " + node_ + " link set " + p.host_veth + " up && ip -n " + node_ + " route add " + p.ip +
                   "/32 dev " + p.host_veth + " scope link"),
                0);
      // Servers: TCP 80 and UDP 81 answer "ok" to whoever reaches them.
      Spawn({"ip", "netns", "exec", p.netns, "socat", "TCP4-LISTEN:80,reuseaddr,fork", "EXEC:/bin/echo ok"});
      ASSERT_TRUE(WaitListening(p.netns, "-ltn", ":80")) << "TCP server in " << p.netns;
      StartUdpServer(p.netns);
    }
  }

  // UDP 81 answers "ok" to every datagram. In-process (a thread inside the
  // pod's namespace): socat's forking UDP server wedged after its first
  // datagram when run under ctest.
  void StartUdpServer(const std::string& netns) {
    auto bound = std::make_shared<std::promise<bool>>();
    auto ready = bound->get_future();
    auto t = netlink::SpawnInNetns(netns, [this, bound] {
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(81);
      bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      bound->set_value(ok);
      while (ok && !stop_) {
        pollfd pfd{fd, POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0) continue;
        char buf[512];
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        if (recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) < 0) continue;
        (void)sendto(fd, "ok\n", 3, 0, reinterpret_cast<sockaddr*>(&peer), len);
      }
      if (fd >= 0) close(fd);
    });
    ASSERT_TRUE(t.ok()) << t.error().ToString();
    threads_.push_back(std::move(*t));
    ASSERT_EQ(ready.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    ASSERT_TRUE(ready.get()) << "UDP server in " << netns;
  }

  ~PolicyNftRoot() override {
    stop_ = true;
    for (auto& t : threads_) t.join();
    for (pid_t pid : pids_) {
      kill(-pid, SIGKILL);  // the server's process group: socat and its forks
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
      freopen("/dev/null", "w", stdout);
      freopen("/dev/null", "w", stderr);
      execvp(a[0], a.data());
      _exit(127);
    }
    setpgid(pid, pid);
    pids_.push_back(pid);
  }

  // Readiness by polling the socket table, bounded to 5 s.
  static bool WaitListening(const std::string& netns, const std::string& flags, const std::string& port) {
    for (int i = 0; i < 100; i++) {
      if (Capture("ip netns exec " + netns + " ss -H " + flags + " 2>/dev/null").find(port + " ") != std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  const TestPod& Pod(const std::string& name) {
    for (const auto& p : pods_)
      if (p.name == name) return p;
    return pods_[0];
  }

  // True when the server's "ok" came back: the request passed and so did the
  // reply. A dropped flow ends by socat's own 2 s timeouts.
  bool Tcp(const std::string& from_netns, const std::string& to_ip) {
    return Capture("ip netns exec " + from_netns + " timeout 6 socat -t 2 -T 2 - TCP4:" + to_ip +
                   ":80,connect-timeout=2 </dev/null 2>/dev/null") == "ok\n";
  }
  bool Udp(const std::string& from_netns, const std::string& to_ip) {
    return Capture("echo ping | ip netns exec " + from_netns + " timeout 6 socat -t 2 -T 2 - UDP4:" + to_ip +
                   ":81 2>/dev/null") == "ok\n";
  }

  PolicyInputs Inputs() {
    PolicyInputs in;
    in.namespaces = {{"x", {}}, {"y", {}}};
    for (const auto& p : pods_) {
      PodInfo i;
      i.namespace_ = p.ns_name;
      i.name = p.name;
      i.labels = {{"pod", p.name}};
      i.ip = Ipv4Addr::Parse(p.ip).value();
      i.node = "node-1";
      in.pods.push_back(i);
    }
    in.node_ips["node-1"] = {Ipv4Addr::Parse("198.18.0.1").value()};
    const char* k8s_policies[] = {
        // b: TCP 80 from x/a; UDP 81 from c in any namespace.
        R"({"metadata":{"name":"b-in","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"b"}},
            "ingress":[{"from":[{"podSelector":{"matchLabels":{"pod":"a"}}}],"ports":[{"port":80}]},
                       {"from":[{"namespaceSelector":{},"podSelector":{"matchLabels":{"pod":"c"}}}],
                        "ports":[{"protocol":"UDP","port":81}]}]}})",
        // a and c: ingress isolated with no rules (replies must still reach them).
        R"({"metadata":{"name":"a-in","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"pod":"a"}},"policyTypes":["Ingress"]}})",
        R"({"metadata":{"name":"c-in","namespace":"y"},"spec":{"podSelector":{"matchLabels":{"pod":"c"}},"policyTypes":["Ingress"]}})",
        // c: egress only UDP 81 into 198.18.10.0/24 except a.
        R"({"metadata":{"name":"c-out","namespace":"y"},"spec":{"podSelector":{"matchLabels":{"pod":"c"}},"policyTypes":["Egress"],
            "egress":[{"to":[{"ipBlock":{"cidr":"198.18.10.0/24","except":["198.18.10.1/32"]}}],
                       "ports":[{"protocol":"UDP","port":81}]}]}})",
    };
    for (const char* text : k8s_policies) {
      auto np = k8s::ParseNetworkPolicy(nlohmann::json::parse(text));
      EXPECT_TRUE(np.ok()) << np.error().ToString();
      auto p = PolicyFromK8s(*np);
      EXPECT_TRUE(p.ok()) << p.error().ToString();
      in.policies.push_back(*p);
    }
    return in;
  }

  struct Flow {
    const char* from;
    const char* to;
    Protocol proto;
    bool want;
  };

  // Probes each flow for real and checks Explain on the same compiled model.
  void ExpectFlows(const CompiledPolicy& cp, const std::vector<Flow>& flows) {
    for (const auto& f : flows) {
      const TestPod& src = Pod(f.from);
      const TestPod& dst = Pod(f.to);
      bool got = f.proto == Protocol::kTCP ? Tcp(src.netns, dst.ip) : Udp(src.netns, dst.ip);
      EXPECT_EQ(got, f.want) << f.from << " -> " << f.to << " " << ProtocolName(f.proto) << "\n"
                             << Capture("ip netns exec " + node_ + " nft list table inet terway");
      auto e = cp.Explain(src.ns_name + "/" + src.name, dst.ns_name + "/" + dst.name, f.proto,
                          f.proto == Protocol::kTCP ? 80 : 81);
      ASSERT_TRUE(e.ok()) << e.error().ToString();
      EXPECT_EQ(e->allowed, f.want) << e->ToString();
    }
  }

  std::string s_, node_;
  std::vector<std::string> owned_;
  std::vector<pid_t> pids_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::vector<TestPod> pods_;
};

}  // namespace terway::policy::testing
