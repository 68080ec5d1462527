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
#include "policy_root_fixture.h"

namespace terway::policy {
namespace {

using ::terway::testing::Capture;
using testing::PolicyNftRoot;
using testing::Sh;
using testing::TestPod;

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
                           "ip daddr . meta l4proto . sctp dport @t_", ". sctp . 9100",
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
