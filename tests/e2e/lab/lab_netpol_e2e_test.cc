// NetworkPolicy on terway-lab, with real traffic, as the upstream Kubernetes
// suite (test/e2e/network/netpol) states it: namespaces x, y, z; pods a, b,
// c in each, labelled pod=<name>, spread over two nodes; servers on TCP 80
// and 81 (and UDP 80, SCTP 80 where the kernel has SCTP). Each case applies
// policies with kubectl and waits until the whole reachability matrix equals
// its expectation at one moment (bounded), so a case passes only when every
// node enforces exactly what Kubernetes specifies. Then policy updates, pod
// and namespace label updates, deletion, Calico ordering with Deny and Pass,
// explain/show through terway-cli, a new pod isolated from its first packet,
// and the switch that turns policy off.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "e2e/lab/lab_fixture.h"
#include "e2e/lab/netpol_probe.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

struct Target {
  L4 proto;
  uint16_t port;
};

// Run on both datapaths (issue 14): veth + policy routing, and the eBPF
// datapath (eniip_virtual_type datapathv2), whose policed pods must keep the
// same semantics.
class LabNetpol : public LabTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    LabTest::SetUp();
    virtual_type_ = GetParam();
  }

  // from, to: "ns/pod"; the answer Kubernetes requires.
  using Expect = std::function<bool(const std::string& from, const std::string& to, Target t)>;

  void TearDown() override {
    servers_.clear();  // threads inside the pods' namespaces end before `down`
    LabTest::TearDown();
  }

  void StartServers(const std::string& key) {
    std::vector<PodServers::Listen> listens = {{L4::kTcp, 80}, {L4::kTcp, 81}, {L4::kUdp, 80}};
    if (sctp_) listens.push_back({L4::kSctp, 80});
    auto s = std::make_unique<PodServers>();
    Status st = s->Start(PodNetns(key), listens);
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    servers_.push_back(std::move(s));
  }

  // x, y, z with pods a, b, c over node1 and node2.
  void SetUpWorld() {
    sctp_ = KernelHasSctp();
    Up(2);
    for (const char* ns : {"x", "y", "z"}) {
      Apply(std::string("ns-") + ns, fmt::format("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \"{0}\"\n"
                                                 "  labels:\n    ns: \"{0}\"\n",
                                                 ns));
    }
    int i = 0;
    for (const char* ns : {"x", "y", "z"}) {
      for (const char* pod : {"a", "b", "c"}) {
        Apply(fmt::format("pod-{}-{}", ns, pod), PodYaml(ns, pod, i++ % 2 == 0 ? "node1" : "node2"));
      }
    }
    for (const char* ns : {"x", "y", "z"}) {
      for (const char* pod : {"a", "b", "c"}) {
        std::string key = fmt::format("{}/{}", ns, pod);
        std::string ip = WaitPodIp(ns, pod);
        ASSERT_FALSE(ip.empty());
        ips_[key] = Ipv4Addr::Parse(ip).value();
        keys_.push_back(key);
        StartServers(key);
      }
    }
    ExpectPodsOnTheEbpfDatapath();
  }

  // Probes every ordered pair of distinct pods on every target until the
  // matrix equals `expect`, or fails after `deadline` listing the cells
  // that differ.
  void ExpectMatrix(const std::string& name, const Expect& expect, std::vector<Target> targets = {},
                    std::chrono::seconds deadline = 30s) {
    SCOPED_TRACE(name);
    if (targets.empty()) targets = {{L4::kTcp, 80}, {L4::kTcp, 81}};
    std::vector<ProbeCheck> checks;
    for (const auto& from : keys_) {
      for (const auto& to : keys_) {
        if (from == to) continue;  // loopback never crosses the node (upstream: AllowLoopback)
        for (const auto& t : targets) {
          if (t.proto == L4::kSctp && !sctp_) continue;
          checks.push_back({fmt::format("{} -> {} {}/{}", from, to, t.port, L4Name(t.proto)),
                            {PodNetns(from), t.proto, ips_[to], t.port},
                            expect(from, to, t)});
        }
      }
    }
    EXPECT_EQ(ProbeUntilExpected(checks, deadline), "")
        << name << ": the matrix did not converge\n" << NodePolicyTables();
  }

  void DeleteAllPolicies() {
    for (const char* ns : {"x", "y", "z"}) {
      auto r = Kubectl({"delete", "networkpolicies.networking.k8s.io", "--all", "-n", ns});
      EXPECT_EQ(r.exit_code, 0) << r.output;
      auto c = Kubectl({"delete", "networkpolicies.projectcalico.org", "--all", "-n", ns});
      EXPECT_EQ(c.exit_code, 0) << c.output;
    }
    auto g = Kubectl({"delete", "globalnetworkpolicies.projectcalico.org", "--all"});
    EXPECT_EQ(g.exit_code, 0) << g.output;
  }

  std::string Socket(int node) { return State()["nodes"][node]["socket"]; }

  CommandResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("terway-cli")};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 30s);
  }

  static std::string Ns(const std::string& key) { return key.substr(0, key.find('/')); }
  static std::string Name(const std::string& key) { return key.substr(key.find('/') + 1); }

  bool sctp_ = false;
  std::map<std::string, Ipv4Addr> ips_;
  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<PodServers>> servers_;
};

std::string NetPol(const std::string& ns, const std::string& name, const std::string& spec) {
  return fmt::format("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {}\n  namespace: \"{}\"\n"
                     "spec:\n{}",
                     name, ns, spec);
}

TEST_P(LabNetpol, UpstreamCasesWithRealTraffic) {
  SetUpWorld();
  if (HasFatalFailure()) return;
  auto all = [](const std::string&, const std::string&, Target) { return true; };
  ExpectMatrix("no policy: everything reaches everything", all);

  // --- default deny ingress in x
  Apply("deny-x", NetPol("x", "default-deny-ingress", "  podSelector: {}\n  policyTypes: [Ingress]\n"));
  ExpectMatrix("default-deny-ingress in x", [](auto&, const std::string& to, Target) { return Ns(to) != "x"; });
  // Egress from x is not isolated by an ingress-only policy.
  DeleteAllPolicies();

  // --- podSelector within the policy's namespace
  Apply("from-b", NetPol("x", "allow-x-a-from-b", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
)"));
  ExpectMatrix("x/a only from pods b of namespace x", [](const std::string& from, const std::string& to, Target) {
    return to != "x/a" || from == "x/b";
  });
  // Pod label update: y/c does not match (other namespace), x/c gains pod2
  // and the policy is updated to select pod2=updated.
  Apply("from-b", NetPol("x", "allow-x-a-from-b", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod2: updated}}
)"));
  ExpectMatrix("policy update: nobody carries pod2=updated yet",
               [](auto&, const std::string& to, Target) { return to != "x/a"; });
  ASSERT_EQ(Kubectl({"label", "pod", "c", "-n", "x", "pod2=updated"}).exit_code, 0);
  ExpectMatrix("pod label update: x/c now matches",
               [](const std::string& from, const std::string& to, Target) { return to != "x/a" || from == "x/c"; });
  ASSERT_EQ(Kubectl({"label", "pod", "c", "-n", "x", "pod2-"}).exit_code, 0);
  DeleteAllPolicies();

  // --- namespaceSelector with matchExpressions; then a namespace label update
  Apply("ns-expr", NetPol("x", "allow-from-y", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: ns, operator: In, values: ["y"]}]
)"));
  ExpectMatrix("x/a from namespace y only",
               [](const std::string& from, const std::string& to, Target) { return to != "x/a" || Ns(from) == "y"; });
  Apply("ns-expr", NetPol("x", "allow-from-y", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns2: updated}}
)"));
  ExpectMatrix("no namespace carries ns2=updated", [](auto&, const std::string& to, Target) { return to != "x/a"; });
  ASSERT_EQ(Kubectl({"label", "namespace", "z", "ns2=updated"}).exit_code, 0);
  ExpectMatrix("namespace label update: z now matches",
               [](const std::string& from, const std::string& to, Target) { return to != "x/a" || Ns(from) == "z"; });
  ASSERT_EQ(Kubectl({"label", "namespace", "z", "ns2-"}).exit_code, 0);
  DeleteAllPolicies();

  // --- one peer with both selectors is AND; two peers are OR
  Apply("and", NetPol("x", "and", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: "y"}}
      podSelector: {matchLabels: {pod: b}}
)"));
  ExpectMatrix("AND: only y/b", [](const std::string& from, const std::string& to, Target) {
    return to != "x/a" || from == "y/b";
  });
  Apply("and", NetPol("x", "and", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: "y"}}
    - podSelector: {matchLabels: {pod: b}}
)"));
  ExpectMatrix("OR: namespace y or x/b", [](const std::string& from, const std::string& to, Target) {
    return to != "x/a" || Ns(from) == "y" || from == "x/b";
  });
  DeleteAllPolicies();

  // --- ports: a number, a named port, an endPort range; other ports denied
  Apply("port", NetPol("x", "port-81", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]
    ports: [{port: 81}]
)"));
  ExpectMatrix("x/a: only port 81, only from y", [](const std::string& from, const std::string& to, Target t) {
    return to != "x/a" || (t.port == 81 && Ns(from) == "y");
  });
  Apply("port", NetPol("x", "port-81", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: serve-81-tcp, protocol: TCP}]
)"));
  ExpectMatrix("named port serve-81-tcp", [](auto&, const std::string& to, Target t) {
    return to != "x/a" || t.port == 81;
  });
  Apply("port", NetPol("x", "port-81", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: 81, endPort: 90, protocol: TCP}]
)"));
  ExpectMatrix("endPort 81-90", [](auto&, const std::string& to, Target t) { return to != "x/a" || t.port == 81; });
  DeleteAllPolicies();

  // --- protocols: a TCP rule isolates UDP and SCTP (SCTP is never TCP)
  Apply("tcp-only", NetPol("x", "tcp-only", R"(  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports: [{port: 80, protocol: TCP}]
)"));
  ExpectMatrix("TCP 80 only: UDP 80 and SCTP 80 denied",
               [](auto&, const std::string& to, Target t) { return to != "x/a" || t.proto == L4::kTcp; },
               {{L4::kTcp, 80}, {L4::kUdp, 80}, {L4::kSctp, 80}});
  if (!sctp_) std::cout << "[ NOTE ] SCTP probes skipped: this kernel cannot open SCTP sockets\n";
  DeleteAllPolicies();

  // --- ipBlock with except, matched against pod IPs
  Apply("ipblock", NetPol("x", "ipblock", fmt::format(R"(  podSelector: {{matchLabels: {{pod: a}}}}
  ingress:
  - from:
    - ipBlock: {{cidr: 198.18.0.0/15, except: ["{}/32"]}}
)",
                                                     ips_["y/b"].ToString())));
  ExpectMatrix("ipBlock minus y/b's IP", [](const std::string& from, const std::string& to, Target) {
    return to != "x/a" || from != "y/b";
  });
  DeleteAllPolicies();

  // --- egress: default deny egress in x, then allow to namespace y (replies
  // of allowed connections pass: stateful)
  Apply("eg", NetPol("x", "deny-egress", "  podSelector: {}\n  policyTypes: [Egress]\n"));
  ExpectMatrix("default-deny-egress in x", [](const std::string& from, auto&, Target) { return Ns(from) != "x"; });
  Apply("eg2", NetPol("x", "to-y", R"(  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {ns: "y"}}}]
)"));
  ExpectMatrix("x may reach y only (policies are additive)",
               [](const std::string& from, const std::string& to, Target) { return Ns(from) != "x" || Ns(to) == "y"; });
  // A connection needs the source's egress and the destination's ingress.
  Apply("y-in", NetPol("y", "deny-ingress", "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n"));
  ExpectMatrix("egress allowed but y/a's ingress denies", [](const std::string& from, const std::string& to, Target) {
    if (to == "y/a") return false;
    return Ns(from) != "x" || Ns(to) == "y";
  });

  // Explain through terway-cli, from the model the kernel enforces: x/a
  // runs on node1 (placement order), y/a on node2.
  auto why = Cli({"policy", "explain", "--socket", Socket(0), "--from", "x/a", "--to", "z/b", "--port", "80/TCP"});
  EXPECT_EQ(why.exit_code, 0) << why.output;
  EXPECT_NE(why.output.find("DENY"), std::string::npos) << why.output;
  EXPECT_NE(why.output.find("k8s:x/"), std::string::npos) << why.output;
  auto ok = Cli({"policy", "explain", "--socket", Socket(0), "--from", "x/a", "--to", "y/b", "--port", "80/TCP"});
  EXPECT_NE(ok.output.find("ALLOW"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("k8s:x/to-y"), std::string::npos) << ok.output;
  auto show = Cli({"policy", "show", "--socket", Socket(0)});
  EXPECT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("x/a egress"), std::string::npos) << show.output;
  EXPECT_NE(show.output.find(" pkts "), std::string::npos) << show.output;
  auto bad = Cli({"policy", "explain", "--socket", Socket(0), "--from", "x/a", "--to", "y/b", "--port", "http"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("80/TCP"), std::string::npos) << bad.output;

  // --- deletion restores everything
  DeleteAllPolicies();
  ExpectMatrix("all policies deleted", all);

  // --- Calico: a GlobalNetworkPolicy Deny (order 10) ranks before the
  // Kubernetes allow (order 1000)
  Apply("k8s-allow", NetPol("x", "allow-all", "  podSelector: {matchLabels: {pod: a}}\n  ingress: [{}]\n"));
  Apply("gnp", R"(apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: deny-y-b
spec:
  order: 10
  selector: pod == 'a' && projectcalico.org/namespace == 'x'
  types: [Ingress]
  ingress:
  - action: Deny
    source:
      selector: pod == 'b'
      namespaceSelector: ns == 'y'
)");
  ExpectMatrix("Calico Deny before the Kubernetes allow", [](const std::string& from, const std::string& to, Target) {
    return to != "x/a" || from != "y/b";
  });
  DeleteAllPolicies();
  // Pass skips the rest of the tier (the Kubernetes default deny) for y.
  Apply("k8s-deny", NetPol("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n"));
  Apply("cnp", R"(apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: pass-y
  namespace: "x"
spec:
  order: 1
  selector: all()
  types: [Ingress]
  ingress:
  - action: Pass
    source:
      namespaceSelector: ns == 'y'
)");
  ExpectMatrix("Calico Pass lets y past the Kubernetes deny", [](const std::string& from, const std::string& to, Target) {
    return Ns(to) != "x" || Ns(from) == "y";
  });
  DeleteAllPolicies();
  ExpectMatrix("clean again", all);
}

TEST_P(LabNetpol, NewPodIsIsolatedFromItsFirstPacket) {
  Up(1);
  Apply("ns", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n  labels:\n    ns: x\n");
  // Pods labelled app=guarded take port 81 only.
  Apply("guard", NetPol("x", "guard", R"(  podSelector: {matchLabels: {app: guarded}}
  ingress:
  - ports: [{port: 81}]
)"));
  Apply("client", PodYaml("x", "client", "node1"));
  ASSERT_FALSE(WaitPodIp("x", "client").empty());
  ExpectPodsOnTheEbpfDatapath();
  const std::string client_netns = PodNetns("x/client");

  Apply("new", PodYaml("x", "new", "node1", {{"app", "guarded"}}));
  // Start the server and the probes the moment the sandbox exists, while
  // its ADD may still be running: no probe on port 80 may ever get through.
  std::string netns;
  ASSERT_TRUE(WaitFor([&] { return !(netns = PodNetns("x/new")).empty(); }, 120s, 5ms));
  PodServers server;
  Status st = server.Start(netns, {{L4::kTcp, 80}, {L4::kTcp, 81}});
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  std::string ip;
  int probes = 0, port81_ok = 0;
  auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until && port81_ok < 3) {
    if (ip.empty()) ip = KubectlGet("pod", "new", "{.status.podIP}", "x");
    if (ip.empty()) {
      // The kubelet writes the IP after ADD; the address is already on the
      // pod's eth0 (what a peer could reach) as soon as the datapath ran.
      ip = Capture("ip -n " + netns + " -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1");
      while (!ip.empty() && (ip.back() == '\n' || ip.back() == ' ')) ip.pop_back();
    }
    if (ip.empty()) continue;
    Ipv4Addr addr = Ipv4Addr::Parse(ip).value();
    auto got = ProbeAll({{client_netns, L4::kTcp, addr, 80}, {client_netns, L4::kTcp, addr, 81}}, 300ms);
    probes++;
    EXPECT_FALSE(got[0]) << "port 80 of the new pod answered on probe " << probes << ": it ran unprotected";
    if (got[1]) port81_ok++;
  }
  EXPECT_GE(port81_ok, 3) << "port 81 never answered: the probes prove nothing (" << probes << " rounds)";
}

TEST_P(LabNetpol, DisabledPolicyLoadsNoRulesAndWatchesNoPolicies) {
  Up(1);
  auto patch = Kubectl({"patch", "configmap", "eni-config", "-n", "kube-system", "--type", "merge", "-p",
                        R"({"data":{"disable_network_policy":"true"}})"});
  ASSERT_EQ(patch.exit_code, 0) << patch.output;
  ASSERT_EQ(Lab({"terwayd", "kill", "node1"}).exit_code, 0);
  // What the API served per resource from here on: the restarted terwayd
  // must not list or watch network policies at all.
  auto reads = [&] {
    auto r = Kubectl({"get", "--raw", "/lab/reads"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return nlohmann::json::parse(r.output, nullptr, false);
  };
  auto count = [](const nlohmann::json& j, const std::string& res, const char* verb) {
    return j.contains(res) && j[res].contains(verb) ? j[res][verb].get<int>() : 0;
  };
  const nlohmann::json before = reads();
  ASSERT_EQ(Lab({"terwayd", "start", "node1"}).exit_code, 0);
  Apply("ns", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n");
  Apply("deny", NetPol("x", "deny", "  podSelector: {}\n  policyTypes: [Ingress]\n"));
  Apply("a", PodYaml("x", "a", "node1"));
  Apply("b", PodYaml("x", "b", "node1"));
  std::string a = WaitPodIp("x", "a");
  ASSERT_FALSE(WaitPodIp("x", "b").empty());
  ASSERT_FALSE(a.empty());
  PodServers server;
  Status st = server.Start(PodNetns("x/a"), {{L4::kTcp, 80}});
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  auto got = ProbeAll({{PodNetns("x/b"), L4::kTcp, Ipv4Addr::Parse(a).value(), 80}}, 2000ms);
  EXPECT_TRUE(got[0]) << "policy is disabled, yet x/b cannot reach x/a";
  EXPECT_EQ(Capture("ip netns exec " + NodeNetns(0) + " nft list table inet terway 2>&1 | grep -c chain"), "0\n");
  // The log holds both runs: the restarted terwayd's part follows its
  // "disabled" line.
  const std::string log = ReadFile(State()["nodes"][0]["log"].get<std::string>());
  const size_t disabled = log.rfind("network policy is disabled");
  ASSERT_NE(disabled, std::string::npos) << log;
  EXPECT_EQ(log.find("policy: enforcing", disabled), std::string::npos) << log;
  const nlohmann::json after = reads();
  for (const char* res : {"networking.k8s.io/v1/networkpolicies", "projectcalico.org/v3/networkpolicies",
                          "projectcalico.org/v3/globalnetworkpolicies", "v1/namespaces"}) {
    // (Not "get": the test's own kubectl apply reads the policy by name.)
    for (const char* verb : {"list", "watch"}) {
      EXPECT_EQ(count(after, res, verb), count(before, res, verb)) << verb << " " << res << ": " << after.dump();
    }
  }
  // The control: the same terwayd did list and watch its node's pods.
  EXPECT_GT(count(after, "v1/pods", "watch"), count(before, "v1/pods", "watch")) << after.dump();
  auto show = Cli({"policy", "show", "--socket", Socket(0)});
  EXPECT_NE(show.exit_code, 0);
  EXPECT_NE(show.output.find("disable_network_policy"), std::string::npos) << show.output;
}

INSTANTIATE_TEST_SUITE_P(VirtualType, LabNetpol, ::testing::Values("veth", "datapathv2"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace terway::testing
