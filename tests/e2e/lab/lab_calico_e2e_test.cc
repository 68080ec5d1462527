// Calico parity on terway-lab with real traffic: a migrating user's
// projectcalico.org/v3 policies (and the network sets, tiers, service
// accounts and Services they name) applied with kubectl, then TCP, UDP and
// ICMP probes between pods on two nodes. The cases are data
// (lab_calico_cases.cc, expectations from docs/calico-semantics.md); for each:
// apply, wait until every probe's verdict equals its expectation at one
// moment (bounded), check the fail-closed report where the case names one,
// delete, and wait until every probe passes again (so no case leaks into the
// next). Every probe is a new conntrack flow (netpol_probe.h).
//
// TERWAY_CALICO_CASES=id,id,... runs only the cases whose id contains one of
// the given strings (the world is set up either way).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <set>
#include <map>
#include <regex>

#include "e2e/lab/lab_calico_cases.h"
#include "e2e/lab/lab_fixture.h"
#include "e2e/lab/netpol_probe.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kProbeTimeout = 1500ms;
constexpr auto kConvergeDeadline = 30s;

class LabCalico : public LabTest {
 protected:
  // The world, the baseline and every case `pick` takes (and
  // TERWAY_CALICO_CASES selects), with a summary line per case.
  void RunParityCases(const std::function<bool(const std::string&)>& pick);

  void TearDown() override {
    servers_.clear();  // threads inside the pods' namespaces end before `down`
    LabTest::TearDown();
  }

  struct PodPlan {
    std::string key;
    std::string node;
    std::string service_account;  // "" = none named
    int peer_src_port = 0;        // the container port named peer-src, if any
  };

  static std::string PodYaml(const PodPlan& p) {
    const std::string ns = p.key.substr(0, p.key.find('/'));
    const std::string name = p.key.substr(p.key.find('/') + 1);
    std::string sa = p.service_account.empty() ? "" : "  serviceAccountName: " + p.service_account + "\n";
    std::string peer;
    if (p.peer_src_port != 0) {
      peer = fmt::format("    - {{name: peer-src, containerPort: {}, protocol: TCP}}\n", p.peer_src_port);
    }
    // Quoted: YAML 1.1 (kubectl's parser) reads a bare y or n as a boolean.
    return fmt::format(R"(apiVersion: v1
kind: Pod
metadata:
  name: "{1}"
  namespace: "{0}"
  labels:
    pod: "{1}"
spec:
  nodeName: {2}
{3}  containers:
  - name: server
    image: busybox
    ports:
    - {{name: serve-80-tcp, containerPort: 80, protocol: TCP}}
    - {{name: serve-81-tcp, containerPort: 81, protocol: TCP}}
    - {{name: serve-82-tcp, containerPort: 82, protocol: TCP}}
    - {{name: serve-80-udp, containerPort: 80, protocol: UDP}}
    - {{name: serve-81-udp, containerPort: 81, protocol: UDP}}
{4})",
                       ns, name, p.node, sa, peer);
  }

  // The world of lab_calico_cases.h.
  void SetUpWorld() {
    Up(2);
    for (const char* ns : {"x", "y"}) {
      Apply(std::string("ns-") + ns, fmt::format("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \"{0}\"\n"
                                                 "  labels:\n    ns: \"{0}\"\n",
                                                 ns));
    }
    // Before the pods that run as them (an API server refuses a pod whose
    // ServiceAccount does not exist).
    const std::string sa_file = dir_.File("service-accounts.yaml");
    ASSERT_TRUE(WriteFile(sa_file, R"(apiVersion: v1
kind: ServiceAccount
metadata: {name: frontend, namespace: x, labels: {role: frontend}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: backend, namespace: x, labels: {role: backend}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: frontend, namespace: "y", labels: {role: frontend}}
)")
                    .ok());
    auto sa = Kubectl({"apply", "-f", sa_file});
    ASSERT_EQ(sa.exit_code, 0) << "ServiceAccounts with labels: " << sa.output;

    const std::vector<PodPlan> plan = {{"x/a", "node1", "", 0},
                                       {"x/b", "node2", "frontend", 7070},
                                       {"x/c", "node1", "backend", 0},
                                       {"y/a", "node2", "", 0},
                                       {"y/b", "node1", "frontend", 7071}};
    ASSERT_EQ(plan.size(), CalicoPods().size());
    for (const auto& p : plan) Apply("pod-" + p.key.substr(0, 1) + "-" + p.key.substr(2), PodYaml(p));
    for (const auto& p : plan) {
      const std::string ns = p.key.substr(0, p.key.find('/'));
      const std::string name = p.key.substr(p.key.find('/') + 1);
      std::string ip;
      bool ok = WaitFor(
          [&] {
            ip = KubectlGet("pod", name, "{.status.podIP}", ns);
            return !ip.empty() && !PodNetns(p.key).empty();
          },
          120s);
      ASSERT_TRUE(ok) << "pod " << p.key << " never got an IP; " << ReadFile(lab_dir_ + "/control-plane.log");
      ips_[p.key] = Ipv4Addr::Parse(ip).value();
      netns_[p.key] = PodNetns(p.key);
      auto s = std::make_unique<PodServers>();
      Status st = s->Start(netns_[p.key],
                           {{L4::kTcp, 80}, {L4::kTcp, 81}, {L4::kTcp, 82}, {L4::kUdp, 80}, {L4::kUdp, 81}});
      ASSERT_TRUE(st.ok()) << st.error().ToString();
      servers_.push_back(std::move(s));
    }
    ExpectPodsOnTheEbpfDatapath();
  }

  // "${ns/pod}" -> the pod's IP; a placeholder naming no pod fails the case.
  std::string Expand(std::string yaml) {
    for (const auto& [key, ip] : ips_) {
      const std::string token = "${" + key + "}";
      for (size_t at; (at = yaml.find(token)) != std::string::npos;) yaml.replace(at, token.size(), ip.ToString());
    }
    Check(yaml.find("${") == std::string::npos, "a placeholder names no pod of the world:\n" + yaml);
    return yaml;
  }

  static std::vector<std::string> Documents(const std::string& yaml) {
    std::vector<std::string> docs;
    size_t start = 0;
    while (true) {
      size_t sep = yaml.find("---\n", start);
      docs.push_back(yaml.substr(start, sep == std::string::npos ? std::string::npos : sep - start));
      if (sep == std::string::npos) break;
      start = sep + 4;
    }
    return docs;
  }

  // Probes until every verdict equals its expectation at once, or the
  // deadline; "" or the probes that differ. Each round: fresh source ports.
  std::string Converge(const std::vector<Probe>& probes, bool all_allowed) {
    std::string diff;
    auto until = std::chrono::steady_clock::now() + kConvergeDeadline;
    int rounds = 0;
    while (true) {
      rounds++;
      std::vector<ProbeSpec> specs;
      for (const auto& p : probes) {
        const Target& t = p.target;
        ProbeSpec s{netns_[p.from], t.proto, ips_[p.to], t.port};
        if (t.src_first != 0) s.src_port = FreshPortIn(t.src_first, t.src_last);
        s.icmp_type = t.icmp_type;
        s.icmp_code = t.icmp_code;
        specs.push_back(s);
      }
      auto got = ProbeAllResults(specs, kProbeTimeout);
      diff.clear();
      for (size_t i = 0; i < probes.size(); i++) {
        const Probe& p = probes[i];
        const bool want = all_allowed || p.allow;
        if (!got[i].error.empty()) {
          diff += fmt::format("  {} -> {} {}: probe failed: {}\n", p.from, p.to, p.target.ToString(), got[i].error);
        } else if (got[i].allowed != want) {
          diff += fmt::format("  {} -> {} {} (source port/id {}): got {}, want {}\n", p.from, p.to,
                              p.target.ToString(), got[i].src_port, got[i].allowed ? "allowed" : "denied",
                              want ? "allowed" : "denied");
        }
      }
      if (diff.empty() || std::chrono::steady_clock::now() > until) break;
      std::this_thread::sleep_for(200ms);  // between rounds; a round with drops already waited 1.5 s
    }
    return diff.empty() ? "" : fmt::format("after {} rounds in {} s:\n{}", rounds, kConvergeDeadline.count(), diff);
  }

  std::string Diagnostics(const std::vector<std::string>& names) {
    std::string out;
    for (int i = 0; i < 2; i++) {
      out += fmt::format("--- node{} nft:\n{}", i + 1,
                         Capture("ip netns exec " + NodeNetns(i) + " nft list table inet terway 2>&1 | head -120"));
      // What terwayd said about this case's policies (a refusal names them).
      const std::string log = ReadFile(State()["nodes"][i]["log"].get<std::string>());
      std::string lines;
      for (const auto& line : Split(log)) {
        for (const auto& n : names) {
          if (!n.empty() && line.find(n) != std::string::npos) {
            lines += line + "\n";
            break;
          }
        }
      }
      if (lines.size() > 4000) lines = "..." + lines.substr(lines.size() - 4000);
      out += fmt::format("--- node{} terwayd log lines naming the case's objects:\n{}", i + 1, lines);
    }
    return out;
  }

  // metadata.name of every object in the YAML (for the diagnostics).
  static std::vector<std::string> Names(const std::string& yaml) {
    std::vector<std::string> names;
    static const std::regex name_re(R"re(\n\s*name: "?([A-Za-z0-9.-]+)"?)re");
    for (auto it = std::sregex_iterator(yaml.begin(), yaml.end(), name_re); it != std::sregex_iterator(); ++it) {
      names.push_back((*it)[1]);
    }
    return names;
  }

  std::string Socket(int node) { return State()["nodes"][node]["socket"]; }

  CommandResult Cli(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("terway-cli")};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", 30s);
  }

  // terway_policy_fail_closed summed over its series on a node; -1 when the
  // metric is absent.
  double FailClosedMetric(int node) {
    std::string port = ReadFile(State()["nodes"][node]["dir"].get<std::string>() + "/metrics.port");
    while (!port.empty() && (port.back() == '\n' || port.back() == ' ')) port.pop_back();
    auto r = RunCommand({"/usr/bin/curl", "-sf", "http://127.0.0.1:" + port + "/metrics"}, NodeNetns(node), 10s);
    double sum = -1;
    for (const auto& line : Split(r.output)) {
      if (line.rfind("terway_policy_fail_closed", 0) != 0) continue;
      const std::string name = line.substr(0, line.find_first_of("{ "));
      if (name != "terway_policy_fail_closed") continue;
      sum = std::max(sum, 0.0) + std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
    }
    return sum;
  }

  // The Warning Event PolicyNotEnforcedAsWritten on the Calico policy
  // ns/name, as `kubectl get events` lists it: "" when found, else what was
  // seen.
  std::string FindFailClosedEvent(const std::string& ns, const std::string& name) {
    auto r = Kubectl(
        {"get", "events", "-n", ns, "--field-selector", "reason=PolicyNotEnforcedAsWritten", "-o", "json"});
    if (r.exit_code != 0) return "kubectl get events: " + r.output;
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (!j.is_object() || !j.contains("items")) return "not a list: " + r.output;
    for (const auto& e : j["items"]) {
      const auto& o = e.value("involvedObject", nlohmann::json::object());
      if (o.value("name", "") == name && o.value("namespace", "") == ns && o.value("kind", "") == "NetworkPolicy" &&
          o.value("apiVersion", "").rfind("projectcalico.org/", 0) == 0 && e.value("type", "") == "Warning" &&
          !e.value("message", "").empty()) {
        return "";
      }
    }
    return "no Warning event on projectcalico.org NetworkPolicy " + ns + "/" + name + " among: " + j["items"].dump();
  }

  // Records a failure of the running case; returns cond.
  static bool Check(bool cond, const std::string& what) {
    if (!cond) ADD_FAILURE() << what;
    return cond;
  }

  // Event, policy show and metric of a case with a fail-closed policy. The
  // policy's pods are on node1 (x/a).
  bool FailClosedReported(const CalicoCase& c) {
    const std::string ns = c.fail_closed_policy.substr(0, c.fail_closed_policy.find('/'));
    const std::string name = c.fail_closed_policy.substr(c.fail_closed_policy.find('/') + 1);
    bool ok = true;
    std::string event = "not looked for";
    WaitFor([&] { return (event = FindFailClosedEvent(ns, name)).empty(); }, 30s, 200ms);
    ok &= Check(event.empty(), "the Event that tells the user: " + event);
    auto show = Cli({"policy", "show", "--socket", Socket(0)});
    ok &= Check(show.exit_code == 0, "terway-cli policy show: " + show.output);
    ok &= Check(show.output.find(name) != std::string::npos,
                "policy show does not name " + name + ":\n" + show.output);
    ok &= Check(show.output.find(c.fail_closed_field) != std::string::npos,
                "policy show does not name the field " + c.fail_closed_field + ":\n" + show.output);
    double metric = -1;
    WaitFor([&] { return (metric = FailClosedMetric(0)) > 0; }, 10s, 200ms);
    ok &= Check(metric > 0, fmt::format("terway_policy_fail_closed on node1 is {} (-1: absent)", metric));
    return ok;
  }

  // kubectl apply of a YAML text (placeholders expanded); kubectl's output.
  CommandResult ApplyYaml(const std::string& yaml, const std::string& file_name) {
    const std::string file = dir_.File(file_name);
    if (!WriteFile(file, yaml).ok()) return {-1, "cannot write " + file};
    return Kubectl({"apply", "-f", file});
  }

  // Apply, converge, report, each step, undo, delete, converge back to all
  // allowed. Returns whether the case held.
  bool RunCase(const CalicoCase& c) {
    SCOPED_TRACE(c.id + ": " + c.what);
    bool ok = true;
    const std::string yaml = Expand(c.yaml);
    std::vector<std::string> docs = Documents(yaml);
    std::vector<std::string> step_docs;
    std::vector<Probe> every_probe = c.probes;
    auto applied = ApplyYaml(yaml, "case-" + c.id + ".yaml");
    ok &= Check(applied.exit_code == 0, "kubectl apply of case " + c.id + ":\n" + yaml + "\n" + applied.output);
    if (applied.exit_code == 0) {
      std::string diff = Converge(c.probes, false);
      ok &= Check(diff.empty(), "case " + c.id + " (" + c.what + "): the verdicts did not converge " + diff + "\n" +
                                    yaml + "\n" + Diagnostics(Names(yaml)));
      if (!c.fail_closed_policy.empty()) ok &= FailClosedReported(c);
      for (size_t i = 0; i < c.then.size() && ok; i++) {
        const CalicoStep& step = c.then[i];
        SCOPED_TRACE("then: " + step.what);
        CommandResult r;
        std::string change;
        if (!step.yaml.empty()) {
          change = Expand(step.yaml);
          for (auto& d : Documents(change)) step_docs.push_back(d);
          r = ApplyYaml(change, fmt::format("case-{}-{}.yaml", c.id, i));
        } else {
          r = Kubectl(step.kubectl);
          for (const auto& a : step.kubectl) change += a + " ";
        }
        ok &= Check(r.exit_code == 0,
                    "case " + c.id + ", " + step.what + ": kubectl failed:\n" + change + "\n" + r.output);
        if (r.exit_code != 0) break;
        std::string step_diff = Converge(step.probes, false);
        ok &= Check(step_diff.empty(), "case " + c.id + " then " + step.what + ": the verdicts did not follow " +
                                           step_diff + "\n" + change + "\n" + Diagnostics(Names(yaml + change)));
        every_probe.insert(every_probe.end(), step.probes.begin(), step.probes.end());
      }
    }
    for (const auto& args : c.undo) {
      auto r = Kubectl(args);
      ok &= Check(r.exit_code == 0, "case " + c.id + ": undo failed: " + r.output);
    }
    // Policies before the tiers and sets they name: documents in reverse;
    // then the steps' documents, which name the same objects (already gone:
    // --ignore-not-found) or new ones.
    std::string reversed;
    for (const std::vector<std::string>* list : {&docs, &step_docs}) {
      for (auto it = list->rbegin(); it != list->rend(); ++it) reversed += (reversed.empty() ? "" : "---\n") + *it;
    }
    const std::string cleanup = dir_.File("case-" + c.id + "-delete.yaml");
    ok &= Check(WriteFile(cleanup, reversed).ok(), "writing " + cleanup);
    auto deleted = Kubectl({"delete", "--ignore-not-found", "-f", cleanup});
    ok &= Check(deleted.exit_code == 0, "kubectl delete of case " + c.id + ":\n" + deleted.output);
    std::string back = Converge(every_probe, true);
    ok &= Check(back.empty(), "case " + c.id + ": deleting its objects did not restore every probe " + back + "\n" +
                                  Diagnostics(Names(yaml)));
    if (!back.empty()) ResetEverything();
    return ok;
  }

  // After a case that did not clean up: remove every policy-related object
  // so the next case starts from nothing.
  void ResetEverything() {
    for (const char* ns : {"x", "y"}) {
      Kubectl({"delete", "networkpolicies.networking.k8s.io,networkpolicies.projectcalico.org,"
                         "networksets.projectcalico.org,services",
               "--all", "-n", ns});
    }
    Kubectl({"delete", "globalnetworkpolicies.projectcalico.org,globalnetworksets.projectcalico.org", "--all"});
    auto tiers = Kubectl({"get", "tiers.projectcalico.org", "-o", "jsonpath={.items[*].metadata.name}"});
    for (const auto& t : Split(std::regex_replace(tiers.output, std::regex(" "), "\n"))) {
      if (!t.empty() && t != "default") Kubectl({"delete", "tiers.projectcalico.org", t});
    }
  }

  std::map<std::string, Ipv4Addr> ips_;
  std::map<std::string, std::string> netns_;
  std::vector<std::unique_ptr<PodServers>> servers_;
};

bool Selected(const std::string& id) {
  const char* env = std::getenv("TERWAY_CALICO_CASES");
  if (env == nullptr || *env == '\0') return true;
  std::string list = env;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string want = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!want.empty() && id.find(want) != std::string::npos) return true;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return false;
}

// The table itself: ids unique, every pod known, and every case can fail:
// it expects some probe denied (with no policy everything is allowed) and
// some allowed (a case that denies everything proves no rule); each step
// changes some verdict (else it proves nothing about following the change).
TEST(LabCalicoCases, EveryCaseCanFail) {
  std::set<std::string> ids;
  const std::set<std::string> pods(CalicoPods().begin(), CalicoPods().end());
  auto check_probes = [&](const std::string& id, const std::vector<Probe>& probes) {
    for (const auto& p : probes) {
      EXPECT_TRUE(pods.count(p.from) && pods.count(p.to) && p.from != p.to) << id << ": " << p.from << " -> " << p.to;
      EXPECT_TRUE(p.target.proto != L4::kIcmp || IcmpReplyType(p.target.icmp_type) >= 0) << id;
      EXPECT_TRUE(p.target.src_first == 0 || p.target.src_last < kFreshPortFirst)
          << id << ": pinned source ports must stay below the fresh pool";
    }
  };
  auto verdicts = [](const std::vector<Probe>& probes) {
    std::map<std::string, bool> out;
    for (const auto& p : probes) out[p.from + ">" + p.to + " " + p.target.ToString()] = p.allow;
    return out;
  };
  for (const auto& c : CalicoCases()) {
    EXPECT_TRUE(ids.insert(c.id).second) << "duplicate id " << c.id;
    check_probes(c.id, c.probes);
    bool denied = false, allowed = false;
    for (const auto& p : c.probes) (p.allow ? allowed : denied) = true;
    EXPECT_TRUE(denied && allowed) << c.id << " expects " << (denied ? "no probe allowed" : "no probe denied");
    auto before = verdicts(c.probes);
    for (const auto& step : c.then) {
      check_probes(c.id, step.probes);
      EXPECT_NE(step.yaml.empty(), step.kubectl.empty()) << c.id << ", " << step.what << ": a YAML or a command";
      auto after = verdicts(step.probes);
      bool changed = false;
      for (const auto& [key, allow] : after) changed |= before.count(key) && before[key] != allow;
      EXPECT_TRUE(changed) << c.id << ", " << step.what << ": no probe changes its verdict";
      before = after;
    }
    EXPECT_TRUE(!c.fail_closed_policy.empty() == !c.fail_closed_field.empty()) << c.id;
  }
}

TEST_F(LabCalico, CalicoParityWithRealTraffic) {
  RunParityCases([](const std::string&) { return true; });
}

// The same cases, every one, on the eBPF datapath (eniip_virtual_type
// datapathv2): policies that select a pod send its traffic through the host
// stack's policy table, the others take the programs' fast path, and a
// policy change under live pods flips them between the two. Every pod is
// checked to be in its node's endpoint map, so a silent fallback to veth
// cannot pass.
TEST_F(LabCalico, CalicoParityOnTheEbpfDatapath) {
  virtual_type_ = "datapathv2";
  RunParityCases([](const std::string&) { return true; });
}

void LabCalico::RunParityCases(const std::function<bool(const std::string&)>& pick) {
  SetUpWorld();
  if (HasFatalFailure()) return;
  std::vector<Probe> baseline;
  for (const auto& from : CalicoPods()) {
    for (const auto& to : CalicoPods()) {
      if (from == to) continue;
      for (const Target& t : {Tcp(80), Tcp(81), Tcp(82), Udp(80), Udp(81), Icmp(8), Icmp(13)}) {
        baseline.push_back({from, to, t, true});
      }
    }
  }
  ASSERT_EQ(Converge(baseline, true), "") << "no policy: everything must reach everything";

  std::string summary;
  int ran = 0, held = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& c : CalicoCases()) {
    if (!Selected(c.id) || !pick(c.id)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    const bool ok = RunCase(c);
    ran++;
    held += ok ? 1 : 0;
    summary += fmt::format("  {:6} {:26} {:5.1f} s  {}\n", ok ? "ok" : "FAILED", c.id,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), c.what);
  }
  std::cout << fmt::format("[ CALICO ] {} of {} cases held in {:.0f} s ({})\n{}", held, ran,
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                           virtual_type_.empty() ? "veth" : virtual_type_, summary);
  EXPECT_GT(ran, 0) << "TERWAY_CALICO_CASES selected no case";
}

}  // namespace
}  // namespace terway::testing
