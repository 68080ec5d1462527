// The wiring engine against the real kernel: a shared-ENI plan in a node
// namespace (with an ENI-like veth "eth1") and a pod namespace. Apply twice
// changes nothing; an object deleted by hand is named by Diff and put back by
// Apply; a changed MTU is reported; Remove takes only what the plan owns; a
// plan with BPF slots is refused before anything changes. Every namespace is
// removed by the fixture's destructor, also on failure.
#include "datapath/wiring_engine.h"

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "datapath/wiring_planner.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using ::terway::testing::Capture;
int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
bool Contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class WiringEngineRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    s_ = testing::UniqueSuffix();
    node_ = "twen" + s_;
    vsw_ = "twev" + s_;
    pod_ = "twep" + s_;
    for (const auto& ns : {node_, vsw_, pod_}) {
      ASSERT_OK(netlink::CreateNamedNetns(ns));
      owned_.push_back(ns);
    }
    {
      auto node = netlink::Handle::OpenIn(node_);
      ASSERT_OK(node);
      netlink::VethSpec eni;
      eni.name = "eth1";
      eni.peer_name = "vsw0";
      eni.peer_netns = vsw_;
      eni.mac = MacAddr::Parse("02:00:00:00:e0:01").value();
      ASSERT_OK(node->CreateVeth(eni));
      auto l = node->GetLink("eth1");
      ASSERT_OK(l);
      eni_index_ = l->index;
    }
    // A real instance has lo up (the kernel checks onlink gateways against
    // the local table).
    ASSERT_EQ(Sh("ip -n " + node_ + " link set lo up"), 0);

    PodNetwork pod;
    pod.container_id = "engine-" + s_;
    pod.netns = "/var/run/netns/" + pod_;
    pod.ifname = "eth0";
    pod.pod_namespace = "default";
    pod.pod_name = "engine";
    pod.ip.ip = "198.18.0.10";
    pod.ip.eni_id = "eni-test";
    pod.ip.eni_mac = "02:00:00:00:e0:01";
    pod_net_ = pod;
    SharedEniFacts f;
    f.host_netns = node_;
    f.mtu = 1500;
    f.eni = SharedEniFacts::Eni{"eth1", eni_index_, Ipv4Addr::Parse("198.18.0.253").value()};
    plan_ = PlanSharedEniPod(pod, PodAddrs{Ipv4Addr::Parse("198.18.0.10").value(), MacAddr::Parse("02:00:00:00:e0:01").value()}, f);
    veth_ = HostVethName(pod.container_id);
  }

  ~WiringEngineRoot() override {
    for (const auto& ns : owned_) (void)netlink::DeleteNamedNetns(ns);
  }

  // Everything the plan touches, as the kernel's own tools print it.
  std::string Snapshot() {
    std::string out;
    for (const auto& ns : {node_, pod_}) {
      out += Capture("ip -n " + ns + " -d link show");
      out += Capture("ip -n " + ns + " addr show");
      out += Capture("ip -n " + ns + " route show table all");
      out += Capture("ip -n " + ns + " rule show");
      out += Capture("ip -n " + ns + " neigh show nud permanent");
    }
    return out;
  }

  std::vector<Difference> Diff() {
    auto d = DiffPlan(plan_);
    EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().ToString());
    return d.ok() ? *d : std::vector<Difference>{{"", "diff failed"}};
  }

  std::string s_, node_, vsw_, pod_, veth_;
  std::vector<std::string> owned_;
  int eni_index_ = 0;
  PodNetwork pod_net_;
  WiringPlan plan_;
};

TEST_F(WiringEngineRoot, ApplyTwiceChangesNothing) {
  ApplyReport first;
  ASSERT_OK(ApplyPlan(plan_, first));
  EXPECT_TRUE(first.created_link);
  EXPECT_TRUE(Diff().empty()) << JoinDifferences(Diff());
  std::string before = Snapshot();
  EXPECT_TRUE(Contains(before, "from 198.18.0.10 lookup " + std::to_string(EniTableId(eni_index_)))) << before;

  ApplyReport second;
  ASSERT_OK(ApplyPlan(plan_, second));
  EXPECT_FALSE(second.created_link) << "the pair was ours: kept, not rebuilt";
  EXPECT_EQ(first.report_macs, second.report_macs);
  EXPECT_EQ(Snapshot(), before);
  EXPECT_TRUE(Diff().empty());
}

// One object at a time, deleted behind the engine's back: Diff names exactly
// it, Apply puts it back, Diff is empty again.
TEST_F(WiringEngineRoot, DiffNamesWhatWasDeletedAndApplyRepairsIt) {
  ApplyReport rep;
  ASSERT_OK(ApplyPlan(plan_, rep));
  ASSERT_TRUE(Diff().empty());
  struct Damage {
    std::string command;
    std::string named;
  };
  const std::string table = std::to_string(EniTableId(eni_index_));
  const std::vector<Damage> damages = {
      {"ip -n " + pod_ + " route del default", "default route via 169.254.1.1 dev eth0 is missing in the pod"},
      {"ip -n " + node_ + " rule del from 198.18.0.10 priority 2048",
       "rule 'from 198.18.0.10 lookup " + table + "' (priority 2048) is missing in the host"},
      {"ip -n " + pod_ + " neigh del 169.254.1.1 dev eth0", "permanent neighbour 169.254.1.1 -> "},
      {"ip -n " + pod_ + " addr del 198.18.0.10/32 dev eth0", "address 198.18.0.10/32 on eth0 is missing in the pod"},
      {"ip -n " + node_ + " route del default table " + table,
       "default route via 198.18.0.253 dev eth1 onlink table " + table + " is missing in the host"},
  };
  for (const auto& d : damages) {
    SCOPED_TRACE(d.command);
    ASSERT_EQ(Sh(d.command), 0);
    auto diff = Diff();
    ASSERT_FALSE(diff.empty());
    EXPECT_TRUE(Contains(JoinDifferences(diff), d.named)) << JoinDifferences(diff);
    // Deleting the address also takes the routes through it: those are
    // named too, nothing unrelated is.
    for (const auto& x : diff) EXPECT_EQ(x.what.find(veth_ + " is missing"), std::string::npos) << x.what;
    ASSERT_OK(ApplyPlan(plan_, rep));
    EXPECT_FALSE(rep.created_link);
    EXPECT_TRUE(Diff().empty()) << JoinDifferences(Diff());
  }
}

TEST_F(WiringEngineRoot, DiffReportsAChangedMtuAndAStaleRuleTable) {
  ApplyReport rep;
  ASSERT_OK(ApplyPlan(plan_, rep));
  ASSERT_EQ(Sh("ip -n " + node_ + " link set " + veth_ + " mtu 1400"), 0);
  auto diff = Diff();
  ASSERT_EQ(diff.size(), 1u) << JoinDifferences(diff);
  EXPECT_EQ(diff[0].what, "link " + veth_ + " has MTU 1400 in the host, want 1500");
  EXPECT_EQ(diff[0].ns, "host");

  // A from-rule pointing to another table (the ENI came back with a new
  // ifindex): named, and replaced rather than stacked.
  ASSERT_EQ(Sh("ip -n " + node_ + " rule del from 198.18.0.10 priority 2048"), 0);
  ASSERT_EQ(Sh("ip -n " + node_ + " rule add from 198.18.0.10 priority 2048 lookup 1999"), 0);
  EXPECT_TRUE(Contains(JoinDifferences(Diff()), "points to the wrong table 1999")) << JoinDifferences(Diff());
  ASSERT_OK(ApplyPlan(plan_, rep));
  EXPECT_TRUE(Diff().empty()) << JoinDifferences(Diff());
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " rule show"), "1999"));
  EXPECT_TRUE(Contains(Capture("ip -n " + node_ + " link show " + veth_), "mtu 1500"));
}

TEST_F(WiringEngineRoot, RemoveTakesWhatThePlanOwnsAndKeepsTheEnisTable) {
  ApplyReport rep;
  ASSERT_OK(ApplyPlan(plan_, rep));
  ASSERT_OK(RemovePlan(plan_));
  ASSERT_OK(RemovePlan(plan_));
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " link show"), veth_));
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " rule show"), "198.18.0.10"));
  EXPECT_TRUE(Contains(Capture("ip -n " + node_ + " route show table all"), "default via 198.18.0.253 dev eth1"))
      << "the ENI's table is not the pod's";
  EXPECT_FALSE(Diff().empty());

  // After the pod's netns is gone: Remove succeeds, Diff says so.
  ASSERT_OK(ApplyPlan(plan_, rep));
  ASSERT_OK(netlink::DeleteNamedNetns(pod_));
  ASSERT_OK(RemovePlan(plan_));
  EXPECT_TRUE(Contains(JoinDifferences(Diff()), "network namespace /var/run/netns/" + pod_ + " is gone"));
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " rule show"), "198.18.0.10"));
}

TEST_F(WiringEngineRoot, APlanWithBpfSlotsIsRefusedBeforeAnythingChanges) {
  plan_.namespaces[kHostNs].bpf_programs.push_back({veth_, BpfDirection::kIngress, "from_pod"});
  ApplyReport rep;
  Status s = ApplyPlan(plan_, rep);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported) << s.error().ToString();
  EXPECT_FALSE(rep.created_link);
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " link show"), veth_));
}

}  // namespace
}  // namespace terway::datapath
