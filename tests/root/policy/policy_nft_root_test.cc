// The compiled policy in a real kernel: one "node" namespace and three "pod"
// namespaces wired as the shared-ENI datapath wires them (pod eth0 IP/32,
// default via 169.254.1.1 with a permanent neighbour to the host veth; on the
// node podIP/32 dev tw*), so pod-to-pod traffic crosses the node's forward
// hook. Real TCP and UDP (socat, bounded timeouts) prove allowed flows pass,
// denied flows drop, replies pass, and that Explain agrees with the kernel.
//
//   x/a 198.18.10.1  x/b 198.18.10.2  y/c 198.18.10.3   node: 198.18.0.1 on lo
//
// Everything is removed by the fixture's destructor, also on failure.
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

namespace terway::policy {
namespace {

using ::terway::testing::Capture;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

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

TEST_F(PolicyNftRoot, EnforcesStatefullyAndRemovesEverything) {
  // Without policy everything flows.
  ASSERT_TRUE(Tcp(Pod("a").netns, Pod("b").ip));
  ASSERT_TRUE(Udp(Pod("c").netns, Pod("b").ip));

  PolicyInputs in = Inputs();
  CompiledPolicy cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(cp));
  ExpectFlows(cp, {
                      {"a", "b", Protocol::kTCP, true},   // reply reaches a although a's ingress is closed
                      {"a", "b", Protocol::kUDP, false},  // b allows only UDP from c
                      {"c", "b", Protocol::kUDP, true},   // egress ipBlock + ingress rule; UDP reply to isolated c
                      {"c", "b", Protocol::kTCP, false},  // c's egress is UDP 81 only
                      {"c", "a", Protocol::kUDP, false},  // a is in the except
                      {"b", "a", Protocol::kTCP, false},  // a isolated
                      {"b", "c", Protocol::kTCP, false},  // c isolated
                  });
  // The node reaches its isolated pods (output path, never filtered).
  EXPECT_EQ(Capture("ip netns exec " + node_ + " timeout 6 socat -t 2 -T 2 - TCP4:" + Pod("a").ip +
                    ":80,connect-timeout=2 </dev/null 2>/dev/null"),
            "ok\n");
  EXPECT_TRUE(cp.Explain("198.18.0.1", "x/a", Protocol::kTCP, 80)->allowed);

  // Counters: the rule that let a -> b through counted it, and the default
  // drop of a's ingress counted b's attempt.
  auto counters = table.ReadCounters();
  ASSERT_OK(counters);
  auto b = cp.FindPod("x/b");
  auto a = cp.FindPod("x/a");
  ASSERT_TRUE(b && a);
  const PodChain* b_in = cp.Chain(*b, Direction::kIngress);
  const PodChain* a_in = cp.Chain(*a, Direction::kIngress);
  ASSERT_TRUE(b_in && a_in && !b_in->rules.empty());
  auto value = [&](const std::string& name) -> uint64_t {
    for (const auto& c : *counters)
      if (c.name == name) return c.packets;
    return 0;
  };
  EXPECT_GE(value(b_in->rules[0].counter), 1u) << FormatPolicyShow(cp, *counters);
  EXPECT_GE(value(a_in->name + "_drop"), 1u) << FormatPolicyShow(cp, *counters);
  EXPECT_NE(FormatPolicyShow(cp, *counters).find("Allow by k8s:x/b-in ingress[0]"), std::string::npos);
  const uint64_t b_allowed = value(b_in->rules[0].counter);

  // Re-applying (any change elsewhere in the cluster does) keeps the counts:
  // `policy show` must not reset whenever some pod starts.
  ASSERT_OK(table.Apply(cp));
  auto carried = table.ReadCounters();
  ASSERT_OK(carried);
  uint64_t after = 0;
  for (const auto& c : *carried)
    if (c.name == b_in->rules[0].counter) after = c.packets;
  EXPECT_GE(after, b_allowed) << FormatPolicyShow(cp, *carried);

  // A Calico global Deny ahead of the Kubernetes policies closes a -> b; the
  // re-render replaces the table in one transaction.
  auto deny = PolicyFromCalico(nlohmann::json::parse(R"({"kind":"GlobalNetworkPolicy","metadata":{"name":"no-a"},
      "spec":{"order":10,"selector":"pod == 'b'","ingress":[{"action":"Deny","protocol":"TCP",
      "source":{"selector":"pod == 'a'"}}]}})"));
  ASSERT_OK(deny);
  in.policies.push_back(*deny);
  cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  ASSERT_OK(table.Apply(cp));
  ExpectFlows(cp, {{"a", "b", Protocol::kTCP, false}, {"c", "b", Protocol::kUDP, true}});
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list tables"), "table inet terway\n");

  // Remove leaves nothing of ours; traffic is unfiltered again.
  ASSERT_OK(table.Remove());
  ASSERT_OK(table.Remove());  // idempotent
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list ruleset"), "");
  EXPECT_TRUE(Tcp(Pod("b").netns, Pod("a").ip));
  EXPECT_TRUE(Udp(Pod("a").netns, Pod("b").ip));
}


// Every rule form the renderer can emit is accepted by the kernel in one
// batch: SCTP/ICMP/any-protocol matches, port ranges, Log/Deny/Pass, egress
// named ports (a tuple set), an empty set and a whole-space-minus-holes set.
TEST_F(PolicyNftRoot, EveryRuleFormLoads) {
  PolicyInputs in = Inputs();
  for (auto& p : in.pods) p.ports.push_back({"metrics", 9100, "SCTP"});
  const char* calico[] = {
      R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"forms"},"spec":{"order":1,"types":["Ingress","Egress"],
          "ingress":[{"action":"Log"},
                     {"action":"Deny","protocol":"SCTP","destination":{"ports":[9000,"9100:9200"]}},
                     {"action":"Pass","protocol":"ICMP","source":{"notNets":["198.18.10.0/30","10.0.0.0/8"]}},
                     {"action":"Deny","source":{"selector":"pod == 'nobody'"}}],
          "egress":[{"action":"Allow","protocol":"SCTP","destination":{"ports":["metrics"],"selector":"has(pod)"}},
                    {"action":"Pass","protocol":"UDP"}]}})js",
  };
  for (const char* text : calico) {
    auto p = PolicyFromCalico(nlohmann::json::parse(text));
    ASSERT_OK(p);
    in.policies.push_back(*p);
  }
  CompiledPolicy cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(cp));
  std::string listed = Capture("ip netns exec " + node_ + " nft list table inet terway");
  for (const char* want : {"sctp dport { 9000, 9100-9200 }", "meta l4proto icmp", "log prefix",
                           "ip daddr . meta l4proto . th dport @t_", ". sctp . 9100",
                           "0.0.0.0-9.255.255.255", "ip saddr vmap @pod_egress"}) {
    EXPECT_NE(listed.find(want), std::string::npos) << want << "\n" << listed;
  }
  // One render is one transaction: a batch that fails at its last line
  // leaves the previous table exactly as it was.
  std::string broken = RenderNftScript(PolicyCompiler(CompileOptions{"node-1"}).Compile(Inputs())) +
                       "add rule inet terway no_such_chain drop\n";
  EXPECT_FALSE(RunNftBatch(node_, broken).ok());
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list table inet terway"), listed);

  // And it enforces what Explain says: egress is now isolated by "forms"
  // (only SCTP to named ports and UDP pass); the Kubernetes rules behind the
  // UDP Pass are skipped for egress, but b's ingress rules still decide.
  ExpectFlows(cp, {{"c", "b", Protocol::kUDP, true},   // Pass on c's egress (skips c-out), b-in allows c
                   {"a", "b", Protocol::kUDP, false},  // Pass on egress, b-in has no UDP rule for a
                   {"a", "b", Protocol::kTCP, false}}); // a's egress isolated by forms
  ASSERT_OK(table.Remove());
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list ruleset"), "");
}

// Replacing the table while traffic flows never lets a denied packet
// through, whole or by difference: one transaction, in place, the hook
// registered throughout.
// 1,500 more pods and 1,000 policies make each commit last long enough for
// many probes to land inside it.
TEST_F(PolicyNftRoot, ReplacingTheTableNeverOpensAWindow) {
  PolicyInputs in = Inputs();  // x/a -> x/b over UDP is denied; y/c -> x/b allowed
  in.namespaces.push_back({"bulk", {}});
  for (uint32_t i = 0; i < 1500; i++) {
    PodInfo p;
    p.namespace_ = "bulk";
    p.name = fmt::format("p{}", i);
    p.labels = {{"app", fmt::format("a{}", i % 10)}};
    p.ip = Ipv4Addr(Ipv4Addr::Parse("198.18.64.0").value().value() + i);
    p.node = "node-1";
    in.pods.push_back(p);
  }
  for (int k = 0; k < 1000; k++) {
    auto np = k8s::ParseNetworkPolicy(nlohmann::json::parse(fmt::format(
        R"({{"metadata":{{"name":"np{}","namespace":"bulk"}},"spec":{{"podSelector":{{"matchLabels":{{"app":"a{}"}}}},
            "ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"app":"a{}"}}}}}}],"ports":[{{"port":{}}}]}}]}}}})",
        k, k % 10, (k + 1) % 10, 8000 + k % 100)));
    ASSERT_OK(np);
    auto pol = PolicyFromK8s(*np);
    ASSERT_OK(pol);
    in.policies.push_back(*pol);
  }
  CompiledPolicy one = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  in.pods.back().labels["app"] = "moved";  // a second model that differs
  CompiledPolicy two = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(one));
  const Ipv4Addr b = Ipv4Addr::Parse(Pod("b").ip).value();
  auto probe = [&](const std::string& from, std::chrono::milliseconds timeout) {
    return terway::testing::ProbeOne({from, terway::testing::L4::kUdp, b, 81}, timeout);
  };
  ASSERT_FALSE(probe(Pod("a").netns, std::chrono::milliseconds(200)));
  ASSERT_TRUE(probe(Pod("c").netns, std::chrono::milliseconds(2000)));

  std::atomic<bool> done{false};
  Status applied = Ok();
  std::thread replacer([&] {
    for (int i = 0; i < 6 && applied.ok(); i++) {
      // First by difference (the handle knows the table), then whole (new
      // handles list the kernel's objects and replace everything).
      const CompiledPolicy& m = i % 2 ? one : two;
      if (i < 3) {
        applied = table.Apply(m);
      } else {
        NftPolicyTable fresh(node_);
        applied = fresh.Apply(m);
      }
    }
    done = true;
  });
  int denied_probes = 0, leaked = 0, control_probes = 0, control_ok = 0;
  while (!done) {
    denied_probes++;
    leaked += probe(Pod("a").netns, std::chrono::milliseconds(20)) ? 1 : 0;
    if (denied_probes % 5 == 0) {
      control_probes++;
      control_ok += probe(Pod("c").netns, std::chrono::milliseconds(200)) ? 1 : 0;
    }
  }
  replacer.join();
  ASSERT_OK(applied);
  EXPECT_EQ(leaked, 0) << leaked << " of " << denied_probes << " denied probes got through while the table was replaced";
  EXPECT_GE(denied_probes, 20) << "too few probes landed during the replacements to prove anything";
  EXPECT_GT(control_ok, 0) << "the allowed flow never passed (" << control_probes << " tries): the probes prove nothing";
  ASSERT_OK(table.Remove());
}

// SCTP gets its own rules (never treated as TCP). Needs SCTP sockets in the
// kernel to prove with traffic; this machine's kernel may lack them.
TEST_F(PolicyNftRoot, SctpIsItsOwnProtocol) {
  int fd = socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP);
  if (fd < 0) GTEST_SKIP() << "kernel lacks SCTP sockets (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) failed)";
  close(fd);
  const TestPod& b = Pod("b");
  Spawn({"ip", "netns", "exec", b.netns, "socat", "SCTP4-LISTEN:80,reuseaddr,fork", "EXEC:/bin/echo ok"});
  auto sctp = [&](const std::string& from) {
    return Capture("ip netns exec " + from + " timeout 6 socat -t 2 -T 2 - SCTP4:" + b.ip +
                   ":80,connect-timeout=2 </dev/null 2>/dev/null") == "ok\n";
  };
  PolicyInputs in = Inputs();  // b-in allows TCP 80 from a, nothing over SCTP
  CompiledPolicy cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(cp));
  EXPECT_FALSE(sctp(Pod("a").netns));
  EXPECT_FALSE(cp.Explain("x/a", "x/b", Protocol::kSCTP, 80)->allowed);
  auto np = k8s::ParseNetworkPolicy(nlohmann::json::parse(R"({"metadata":{"name":"sctp","namespace":"x"},
      "spec":{"podSelector":{"matchLabels":{"pod":"b"}},"ingress":[{"ports":[{"protocol":"SCTP","port":80}]}]}})"));
  ASSERT_OK(np);
  auto p = PolicyFromK8s(*np);
  ASSERT_OK(p);
  in.policies.push_back(*p);
  cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  ASSERT_OK(table.Apply(cp));
  EXPECT_TRUE(sctp(Pod("a").netns));
  EXPECT_TRUE(cp.Explain("x/a", "x/b", Protocol::kSCTP, 80)->allowed);
  EXPECT_FALSE(Tcp(Pod("c").netns, b.ip));  // the SCTP rule opens no TCP
  ASSERT_OK(table.Remove());
}

}  // namespace
}  // namespace terway::policy
