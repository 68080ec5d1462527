// terwayd serving a network that asks eniip_virtual_type IPVlan with the
// eBPF datapath, set up as a container runtime does it (the real `terway`
// plugin, the network configuration on stdin) on the emulated VPC: pods on
// one node and on two reach each other and a VPC host on the fast path (the
// programs' counters, read through the node's pinned maps), CHECK passes,
// a restarted terwayd finds its pods by their entries, DEL leaves no entry.
// These terwayds run without an API, so policy is off: terwayd itself
// writes the policy map (no pod isolated) when the programs load, and the
// gauge terway_ebpf_datapath_policy_synced says so -- absent before.
// Each terwayd pins its maps in a bpf filesystem of the test's own
// (--bpffs), unmounted at the end, also on failure.
#include <gtest/gtest.h>

#include "../../root/ebpf/ebpf_test_env.h"
#include "../../root/ebpf/traffic_topology.h"
#include "e2e/terwayd/cni_exec.h"
#include "ebpf/detect.h"
#include "ebpf/programs.h"

namespace terway::testing {
namespace {

class TerwaydEbpf : public ::testing::Test {
 protected:
  // The network asks for the eBPF datapath as upstream Terway's do.
  static CniConf EbpfConf() {
    CniConf c;
    c.extra = {{"eniip_virtual_type", "IPVlan"}};
    return c;
  }
  std::string AddEbpfPod(TerwaydNode* node, PodNs* ns, const std::string& pod) {
    return AddPod(node, world_->name(), ns, pod, nullptr, EbpfConf());
  }
  // A TCP exchange from `from_ns` to an echo server in `to_ns` at `ip`: the
  // fast path carries TCP and UDP (ICMP takes the stack: conntrack cannot be
  // asked about it), so the counters are driven with TCP; one exchange is at
  // least three packets each way.
  bool Talk(const std::string& from_ns, const std::string& to_ns, const std::string& ip) {
    int port = 7200 + next_port_++;
    ebpf::testing::Child server({"ip", "netns", "exec", to_ns, "socat",
                                 "TCP-LISTEN:" + std::to_string(port) + ",fork,reuseaddr", "EXEC:cat"});
    return !ebpf::testing::TcpEcho(from_ns, ip, port, "terway-ebpf-" + std::to_string(port)).empty();
  }
  int next_port_ = 0;
  // The sample line of terway_ebpf_datapath_policy_synced on the node's
  // /metrics ("" when absent).
  static std::string PolicySyncedSample(TerwaydNode* node) {
    auto m = node->Metrics();
    EXPECT_TRUE(m.ok()) << m.error().ToString();
    if (!m.ok()) return "?";
    const std::string name = "\nterway_ebpf_datapath_policy_synced ";
    auto at = m->find(name);
    if (at == std::string::npos) return "";
    return m->substr(at + 1, m->find('\n', at + 1) - at - 1);
  }
  // The node's maps, shared through its pins (a loader of our own).
  std::unique_ptr<ebpf::DatapathPrograms> NodeMaps(const ebpf::testing::PrivateBpffs& fs) {
    auto p = ebpf::DatapathPrograms::Load(fs.Options());
    EXPECT_TRUE(p.ok()) << p.error().ToString();
    return p.ok() ? std::move(*p) : nullptr;
  }

  std::unique_ptr<VpcsimWorld> world_;
};

TEST_F(TerwaydEbpf, IpvlanNetworksTakeTheFastPathAndSurviveARestart) {
  TERWAY_REQUIRE_ROOT();
  if (Status st = ebpf::DetectSupport(); !st.ok()) GTEST_SKIP() << st.error().ToString();
  ebpf::testing::PrivateBpffs fs0, fs1;
  TERWAY_REQUIRE_BPFFS(fs0);
  TERWAY_REQUIRE_BPFFS(fs1);
  WorldSpec ws;
  ws.instance_type = "ecs.g7.large";
  ws.instances = 3;  // two nodes and a plain VPC host
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  world_ = std::move(w).value();
  std::vector<std::unique_ptr<TerwaydNode>> nodes;
  for (int i = 0; i < 2; i++) {
    TerwaydSpec ts;
    ts.instance_id = world_->instances()[i];
    ts.datapath = "shared";
    ts.extra_args = {"--bpffs", (i == 0 ? fs0 : fs1).dir()};
    auto n = TerwaydNode::Start(world_.get(), ts);
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    ASSERT_TRUE((*n)->WaitReady().ok()) << (*n)->process().Log();
    nodes.push_back(std::move(n).value());
  }
  EXPECT_NE(std::system(("test -e " + fs0.dir() + "/terway").c_str()), 0) << "nothing pinned before an eBPF pod";
  EXPECT_EQ(PolicySyncedSample(nodes[0].get()), "") << "no program loaded: no map to be in sync";
  PodNs a, b, c;
  std::string ip_a = AddEbpfPod(nodes[0].get(), &a, "pa");
  std::string ip_c = AddEbpfPod(nodes[0].get(), &c, "pc");
  std::string ip_b = AddEbpfPod(nodes[1].get(), &b, "pb");
  ASSERT_FALSE(ip_a.empty() || ip_b.empty() || ip_c.empty()) << nodes[0]->process().Log();
  // Policy is off: the load wrote the empty set, authoritative (the ADD
  // that loaded the programs ran the hook before it returned).
  EXPECT_EQ(PolicySyncedSample(nodes[0].get()), "terway_ebpf_datapath_policy_synced 1");
  EXPECT_EQ(PolicySyncedSample(nodes[1].get()), "terway_ebpf_datapath_policy_synced 1");
  auto maps = NodeMaps(fs0);
  ASSERT_NE(maps, nullptr);
  auto entries = maps->ListEndpoints();
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(entries->size(), 2u) << "one entry per eBPF pod of node 0";
  ebpf::Counters before = maps->ReadCounters().value();
  EXPECT_TRUE(Talk(a.name, c.name, ip_c)) << "same-node pod to pod";
  ebpf::Counters mid = maps->ReadCounters().value();
  EXPECT_GE(mid.pod_to_pod, before.pod_to_pod + 6) << ebpf::ToString(mid);
  EXPECT_TRUE(Talk(a.name, b.name, ip_b)) << "cross-node pod to pod";
  std::string host_ns = world_->InstanceNetns(world_->instances()[2]);
  std::string vpc_host = Eth0Ip(host_ns);
  EXPECT_TRUE(Talk(a.name, host_ns, vpc_host)) << "pod to VPC host " << vpc_host;
  EXPECT_TRUE(Ping(host_ns, ip_b)) << "VPC host to pod";
  ebpf::Counters after = maps->ReadCounters().value();
  EXPECT_GE(after.pod_to_eni, mid.pod_to_eni + 6) << ebpf::ToString(after);
  EXPECT_GE(after.eni_to_pod, mid.eni_to_pod + 6) << ebpf::ToString(after);

  auto check = CniExec("CHECK", nodes[0].get(), a, EbpfConf());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // A restart: the pins were left, so the programs load at start and the
  // repair finds both pods by their entries.
  nodes[0]->Stop();
  ASSERT_TRUE(nodes[0]->Restart().ok());
  ASSERT_TRUE(nodes[0]->WaitReady().ok()) << nodes[0]->process().Log();
  check = CniExec("CHECK", nodes[0].get(), a, EbpfConf());
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_EQ(maps->ListEndpoints().value().size(), 2u);
  before = maps->ReadCounters().value();
  EXPECT_TRUE(Talk(a.name, c.name, ip_c));
  EXPECT_GE(maps->ReadCounters().value().pod_to_pod, before.pod_to_pod + 6);

  for (auto* p : {&a, &c}) {
    auto del = CniExec("DEL", nodes[0].get(), *p, EbpfConf());
    EXPECT_EQ(del.exit_code, 0) << del.output;
  }
  EXPECT_TRUE(maps->ListEndpoints().value().empty()) << "DEL leaves no entry";
  auto del_b = CniExec("DEL", nodes[1].get(), b, EbpfConf());
  EXPECT_EQ(del_b.exit_code, 0) << del_b.output;
  maps.reset();
  nodes.clear();  // the terwayds stop before their bpffs is unmounted
}

}  // namespace
}  // namespace terway::testing
