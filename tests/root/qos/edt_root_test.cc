// The EDT pacing program in the real kernel. Its arithmetic is proven with
// BPF_PROG_TEST_RUN (the kernel runs the verified program on crafted packets
// and hands back the departure time it stamped): this needs no fq.
// Attaching it as a direct-action cls_bpf filter on a link's egress hook is
// proven on a veth. The whole EDT path (program + fq on the ENI, iperf3 from
// a pod through a forwarding node) needs the fq qdisc: it skips, saying so,
// on a kernel without it (this project's kernel lacks fq).
#include "qos/edt.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "netlink/handle.h"
#include "netlink/netns.h"
#include "qos/shaper.h"
#include "root/qos/iperf_meter.h"
#include "root/scratch_netns.h"
#include "test_util.h"

namespace terway::qos {
namespace {

using terway::testing::Capture;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// An Ethernet + IPv4 frame of `len` bytes in all.
std::vector<uint8_t> Ipv4Frame(size_t len, uint16_t ethertype = ETH_P_IP) {
  std::vector<uint8_t> f(len, 0);
  auto* eth = reinterpret_cast<ethhdr*>(f.data());
  eth->h_proto = htons(ethertype);
  auto* ip = reinterpret_cast<iphdr*>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = 17;
  ip->tot_len = htons(static_cast<uint16_t>(len - sizeof(ethhdr)));
  ip->saddr = htonl(0xC6120A01);  // 198.18.10.1
  ip->daddr = htonl(0xC6120A02);
  return f;
}

struct TestRun {
  uint32_t retval = 0;
  uint64_t tstamp = 0;
};

TestRun RunOnce(int prog_fd, const std::vector<uint8_t>& frame, int ifindex) {
  __sk_buff in{}, out{};
  in.ifindex = static_cast<uint32_t>(ifindex);
  std::vector<uint8_t> data_out(frame.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = data_out.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()),
              .data_size_out = static_cast<uint32_t>(data_out.size()), .ctx_in = &in, .ctx_out = &out,
              .ctx_size_in = sizeof(in), .ctx_size_out = sizeof(out), .repeat = 1);
  int rc = bpf_prog_test_run_opts(prog_fd, &opts);
  EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
  return {opts.retval, out.tstamp};
}

TEST(EdtRoot, PacesAtTheRateAndDropsBeyondTheHorizon) {
  TERWAY_REQUIRE_ROOT();
  auto edt = EdtProgram::Load();
  ASSERT_TRUE(edt.ok()) << edt.error().ToString();
  const int lo = 1;  // loopback: the device the test runs pretend the packet is on
  const Ipv4Addr pod = *Ipv4Addr::Parse("198.18.10.1");  // Ipv4Frame's source
  // 1,250-byte packets at 12,500 B/s: one every 100 ms; horizon 250 ms.
  ASSERT_TRUE((*edt)->SetRate(pod, 12'500, 250'000'000).ok());
  auto frame = Ipv4Frame(1250);
  // Another pod's packets and non-IP frames are not this pod's budget.
  auto other = Ipv4Frame(1250);
  reinterpret_cast<iphdr*>(other.data() + sizeof(ethhdr))->saddr = htonl(0xC6120A09);
  TestRun unlimited = RunOnce((*edt)->prog_fd(), other, lo);
  EXPECT_EQ(unlimited.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(unlimited.tstamp, 0u);
  TestRun arp = RunOnce((*edt)->prog_fd(), Ipv4Frame(1250, ETH_P_ARP), lo);
  EXPECT_EQ(arp.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(arp.tstamp, 0u);
  TestRun first = RunOnce((*edt)->prog_fd(), frame, lo);
  EXPECT_EQ(first.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(first.tstamp, 0u) << "an idle pod's first packet leaves at once";
  TestRun second = RunOnce((*edt)->prog_fd(), frame, lo);
  TestRun third = RunOnce((*edt)->prog_fd(), frame, lo);
  EXPECT_EQ(second.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(third.retval, static_cast<uint32_t>(TC_ACT_OK));
  ASSERT_GT(second.tstamp, 0u) << "the second packet is held back";
  EXPECT_EQ(third.tstamp - second.tstamp, 100'000'000u) << "one packet per 100 ms";
  TestRun fourth = RunOnce((*edt)->prog_fd(), frame, lo);  // 300 ms ahead: past the horizon
  EXPECT_EQ(fourth.retval, static_cast<uint32_t>(TC_ACT_SHOT));
  auto st = (*edt)->Get(pod);
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->drops, 1u);
  EXPECT_EQ((*st)->t_last, third.tstamp) << "a dropped packet does not move the pace";

  // A link without an entry passes untouched; entries are listed and go.
  ASSERT_TRUE((*edt)->Clear(pod).ok());
  TestRun free = RunOnce((*edt)->prog_fd(), frame, lo);
  EXPECT_EQ(free.retval, static_cast<uint32_t>(TC_ACT_OK));
  EXPECT_EQ(free.tstamp, 0u);
  auto addresses = (*edt)->Addresses();
  ASSERT_TRUE(addresses.ok());
  EXPECT_TRUE(addresses->empty());
  EXPECT_TRUE((*edt)->Clear(pod).ok()) << "clearing twice is fine";
}

TEST(EdtRoot, AttachesAsADirectActionFilter) {
  TERWAY_REQUIRE_ROOT();
  terway::testing::ScratchNetns scratch("twedt");
  ASSERT_OK(scratch.created);
  const std::string& ns = scratch.name;
  auto edt = EdtProgram::Load();
  ASSERT_TRUE(edt.ok()) << edt.error().ToString();
  auto h = netlink::Handle::OpenIn(ns);
  ASSERT_TRUE(h.ok());
  netlink::VethSpec v;
  v.name = "pod0";
  v.peer_name = "pod1";
  ASSERT_TRUE(h->CreateVeth(v).ok());
  auto link = h->GetLink("pod0");
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE(h->EnsureClsact(link->index).ok());
  ASSERT_TRUE(h->AddBpfFilter({link->index, netlink::kTcClsactEgress, kEdtFilterPriority, (*edt)->prog_fd(),
                               EdtProgram::kName})
                  .ok());
  auto filters = h->ListFilters(link->index, netlink::kTcClsactEgress);
  ASSERT_TRUE(filters.ok());
  ASSERT_EQ(filters->size(), 1u);
  EXPECT_EQ((*filters)[0].kind, "bpf");
  EXPECT_EQ((*filters)[0].priority, kEdtFilterPriority);
  EXPECT_EQ((*filters)[0].bpf_id, (*edt)->prog_id()) << "the filter runs this terwayd's program";
  EXPECT_EQ((*filters)[0].bpf_name.rfind(EdtProgram::kName, 0), 0u) << (*filters)[0].bpf_name;
  EXPECT_NE(Capture("ip netns exec " + ns + " tc filter show dev pod0 egress").find("direct-action"),
            std::string::npos);
}

// The whole path where the kernel has fq: a pod, a forwarding node, a peer
// behind the node's "ENI"; the shaper (EDT backend: program on the ENI's
// egress, fq at its root) limits the pod's egress to 20 Mbit/s; iperf3 out of
// the pod lands within 10%.
TEST(EdtRoot, ShapesAPodsEgressThroughFqOnItsEni) {
  TERWAY_REQUIRE_ROOT();
  const std::string s = terway::testing::UniqueSuffix();
  const std::string node = "twen" + s, pod = "twep" + s, peer = "twer" + s;
  struct Cleanup {
    std::vector<std::string> ns;
    ~Cleanup() {
      for (const auto& n : ns) (void)netlink::DeleteNamedNetns(n);
    }
  } cleanup{{node, pod, peer}};
  for (const auto& n : {node, pod, peer}) ASSERT_TRUE(netlink::CreateNamedNetns(n).ok());
  auto h = netlink::Handle::OpenIn(node);
  ASSERT_TRUE(h.ok());
  if (Status fq = ProbeFqQdisc(*h, "twfqprobe"); !fq.ok()) {
    GTEST_SKIP() << "kernel lacks the fq qdisc, which EDT needs (" << fq.error().ToString()
                 << "); terwayd uses TBF here";
  }
  ASSERT_EQ(Sh("ip -n " + node + " link add veth0 type veth peer name eth0 netns " + pod +
               " && ip -n " + node + " link add eni0 type veth peer name eth0 netns " + peer +
               " && ip netns exec " + node + " sysctl -qw net.ipv4.ip_forward=1"
               " && ip -n " + node + " link set veth0 up && ip -n " + node + " link set eni0 up"
               " && ip -n " + node + " addr add 198.18.20.1/24 dev veth0 && ip -n " + node +
               " addr add 198.18.21.1/24 dev eni0"
               " && ip -n " + pod + " link set eth0 up && ip -n " + pod + " addr add 198.18.20.2/24 dev eth0"
               " && ip -n " + pod + " route add default via 198.18.20.1"
               " && ip -n " + peer + " link set eth0 up && ip -n " + peer + " addr add 198.18.21.2/24 dev eth0"
               " && ip -n " + peer + " route add default via 198.18.21.1"),
            0);
  terway::testing::IperfServer server;
  ASSERT_TRUE(server.Start(peer, 5201).ok());
  BandwidthShaper shaper;
  ASSERT_EQ(shaper.Backend(*h), ShapingBackend::kEdt) << shaper.BackendReason();
  PodShapingLinks links{"veth0", "twedtifb", "terway-pod-ifb:edt-test", "eni0", *Ipv4Addr::Parse("198.18.20.2")};
  ASSERT_TRUE(shaper.Apply(*h, links, cni::Bandwidth{0, 0, 20'000'000, 0}).ok());
  ASSERT_TRUE(shaper.Check(*h, links, cni::Bandwidth{0, 0, 20'000'000, 0}).ok());
  EXPECT_NE(Capture("ip netns exec " + node + " tc qdisc show dev eni0").find("fq"), std::string::npos);
  auto mbit = terway::testing::IperfMedian(pod, "198.18.21.2", server, /*reverse=*/false);
  ASSERT_TRUE(mbit.ok()) << mbit.error().ToString();
  EXPECT_GE(*mbit / 1e6, 18.0);
  EXPECT_LE(*mbit / 1e6, 22.0);
  ASSERT_TRUE(shaper.Remove(*h, links).ok());
  EXPECT_TRUE(shaper.Check(*h, links, std::nullopt).ok()) << "the pod's EDT rate is gone";
}

}  // namespace
}  // namespace terway::qos
