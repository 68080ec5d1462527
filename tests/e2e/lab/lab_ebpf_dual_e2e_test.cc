// A dual-stack cluster whose nodes run the eBPF datapath (issue 14 x issue
// 15): `terway-lab up --ip-stack dual --eniip-virtual-type datapathv2`. Each
// pod holds an IPv4 and an IPv6 of one ENI and is an eBPF pod (its node's
// pinned endpoint map has its entry); pods talk IPv6 -- TCP, UDP and ping -6
// -- on one node and across nodes with their own addresses, all of it handed
// to the host stack by the programs (their fast-path counters stand still),
// and IPv4 between the same pods takes the fast path as before.
#include <map>
#include <string>

#include "e2e/lab/lab_dual_stack.h"

namespace terway::testing {
namespace {

class LabEbpfDual : public LabDualStackTest {
 protected:
  // The programs' packet counters of node i, from one scrape (-1: not
  // exported, which fails every comparison below).
  struct FastPath {
    double pod_to_pod, pod_to_eni, eni_to_pod, pod_to_stack, eni_to_stack;
  };
  FastPath Counters(int i) {
    const auto m = NodeMetrics(i);
    auto packets = [&](const std::string& path) {
      auto it = m.find("terway_ebpf_datapath_packets_total{path=\"" + path + "\"}");
      return it == m.end() ? -1 : it->second;
    };
    return {packets("pod_to_pod"), packets("pod_to_eni"), packets("eni_to_pod"), packets("pod_to_stack"),
            packets("eni_to_stack")};
  }
  // ping -6 from a pod, its replies counted.
  void ExpectPing6(const std::string& from, const std::string& to) {
    auto ping = Exec(from, {"/usr/bin/ping", "-6", "-c", "2", "-i", "0.2", "-W", "3", to});
    EXPECT_EQ(ping.exit_code, 0) << "ping -6 " << from << " -> " << to << ": " << ping.output;
  }
};

TEST_F(LabEbpfDual, PodsTalkIpv6ThroughTheStackAndIpv4OnTheFastPath) {
  virtual_type_ = "datapathv2";  // ExpectPodsOnTheEbpfDatapath checks every node's entries
  UpDual(2, {"--eniip-virtual-type", virtual_type_});
  ASSERT_EQ(State()["nodes"][0]["eniip_virtual_type"], "datapathv2");
  ASSERT_EQ(State()["nodes"][1]["eniip_virtual_type"], "datapathv2");
  ASSERT_FALSE(AddPod("default/a", "node1").empty());
  ASSERT_FALSE(AddPod("default/b", "node1").empty());
  ASSERT_FALSE(AddPod("team/c", "node2").empty());
  ExpectPodIps("default/a", 0, true);
  ExpectPodIps("default/b", 0, true);
  ExpectPodIps("team/c", 1, true);
  ExpectPodsOnTheEbpfDatapath();
  if (HasFailure()) return;
  const auto a = PodIps("default/a"), b = PodIps("default/b"), c = PodIps("team/c");
  StartWhoAmI("a", "default/a", "", /*ipv6=*/true);
  StartWhoAmI("c", "team/c", "", /*ipv6=*/true);

  // IPv6: the programs hand every packet to the stack, which routes it
  // with the pods' IPv6 wiring; the servers see the pods' own addresses.
  const FastPath v6_before[2] = {Counters(0), Counters(1)};
  for (int i : {0, 1}) {
    ASSERT_GE(v6_before[i].pod_to_pod, 0) << "node" << i + 1 << "'s terwayd exports no eBPF packet counters";
  }
  ExpectReach("default/b", "", b[1], a[1], "tcp");  // same node
  ExpectReach("default/a", "", a[1], c[1], "tcp");  // node1 -> node2
  ExpectReach("team/c", "", c[1], a[1], "tcp");     // node2 -> node1
  ExpectReach("team/c", "", c[1], a[1], "udp");
  ExpectPing6("default/b", a[1]);
  ExpectPing6("default/a", c[1]);
  ExpectPing6("team/c", b[1]);
  const FastPath v6_after[2] = {Counters(0), Counters(1)};
  for (int i : {0, 1}) {
    const FastPath &x = v6_before[i], &y = v6_after[i];
    EXPECT_EQ(y.pod_to_pod, x.pod_to_pod) << "node" << i + 1 << ": IPv6 went peer to peer";
    EXPECT_EQ(y.pod_to_eni, x.pod_to_eni) << "node" << i + 1 << ": IPv6 was redirected to the ENI";
    EXPECT_EQ(y.eni_to_pod, x.eni_to_pod) << "node" << i + 1 << ": IPv6 was redirected into a pod";
    EXPECT_GT(y.pod_to_stack, x.pod_to_stack) << "node" << i + 1;
    EXPECT_GT(y.eni_to_stack, x.eni_to_stack) << "node" << i + 1;
  }

  // IPv4 between the same pods: the fast path, as on an IPv4-only cluster.
  ExpectReach("default/b", "", b[0], a[0], "tcp");
  ExpectReach("default/a", "", a[0], c[0], "tcp");
  ExpectReach("team/c", "", c[0], a[0], "udp");
  const FastPath v4_after[2] = {Counters(0), Counters(1)};
  EXPECT_GT(v4_after[0].pod_to_pod, v6_after[0].pod_to_pod) << "node1: b -> a peer to peer";
  for (int i : {0, 1}) {
    EXPECT_GT(v4_after[i].pod_to_eni, v6_after[i].pod_to_eni) << "node" << i + 1;
    EXPECT_GT(v4_after[i].eni_to_pod, v6_after[i].eni_to_pod) << "node" << i + 1;
  }
}

}  // namespace
}  // namespace terway::testing
