// EbpfEniDatapath against the real kernel, in the SharedEniRoot world
// (shared_eni_root_fixture.h, no vpcsim):
//
//   pod netns(es)  eth0 ──veth── tw<hash>  node netns  eth1 ──veth── vsw0  vswitch netns
//                                          (the "ENI", no address)        198.18.0.253/24: the
//                                                                          vSwitch gateway (a VPC host);
//                                                                          2001:db8:1::fffd/64 for IPv6
// The programs are loaded with their maps pinned in a bpf filesystem of the
// test's own (mounted on a temporary directory, unmounted at the end, also
// on failure); every namespace is removed by the fixture, also on failure.
// The world's veth-mode datapath (SharedEniRoot::dp_) is replaced by
// `ebpf_`, which serves pods of both flavours.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "datapath/ebpf_eni.h"
#include "datapath/pod_shaping.h"
#include "ebpf/attach.h"
#include "ebpf/detect.h"
#include "root/datapath/shared_eni_root_fixture.h"
#include "root/ebpf/ebpf_test_env.h"
#include "root/ebpf/traffic_topology.h"

namespace terway::datapath {

class EbpfEniRoot : public shared_eni_world::SharedEniRoot {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    TERWAY_REQUIRE_BPFFS(fs_);
    if (Status st = ebpf::DetectSupport(); !st.ok()) GTEST_SKIP() << st.error().ToString();
    SharedEniRoot::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dp_.reset();  // every pod of these tests goes through ebpf_
    auto programs = ebpf::DatapathPrograms::Load(fs_.Options());
    ASSERT_OK(programs);
    programs_ = std::move(*programs);
    EbpfEniOptions o;
    o.shared.host_netns = node_;
    o.shared.mtu = 1500;
    o.shared.eni_network = [this](const std::string& eni_id, const MacAddr&) -> Result<EniNetwork> {
      if (gateway_lookup_fails_) return Errorf(ErrorCode::kUnavailable, "metadata service not answering");
      if (eni_id != "eni-test") return Errorf(ErrorCode::kNotFound, "unknown ENI {}", eni_id);
      return EniNetwork{Ipv4Addr::Parse(shared_eni_world::kGateway).value(),
                        Ipv4Cidr::Parse("198.18.0.0/24").value()};
    };
    o.programs = programs_.get();
    // As terwayd wires it to the policy controller's MayIsolate.
    o.may_isolate = [this](Ipv4Addr ip) { return may_isolate_.count(ip) > 0; };
    options_ = o;
    ebpf_.emplace(std::move(o));
    ASSERT_OK(ebpf_->LoadPrograms());
    // As the policy controller's first apply does: no pod isolated, the
    // policy map authoritative (a fresh one polices every pod).
    ASSERT_OK(ebpf_->PolicyIsolationApplied({}));
  }

  ~EbpfEniRoot() override {
    ebpf_.reset();
    programs_.reset();
  }

  // The world's pod (SharedEniRoot::MakePod: its netns, the vSwitch's
  // neighbour entry), asking for the eBPF flavour; ipv6 non-empty: dual stack.
  PodNetwork MakePod(const std::string& tag, const std::string& ip, const std::string& ipv6 = "") {
    PodNetwork p = SharedEniRoot::MakePod(tag, ip, ipv6);
    p.virtual_type = VirtualType::kEbpf;
    ns_by_ip_[ip] = PodNs(p);
    return p;
  }
  using SharedEniRoot::Ping;
  bool Ping(const PodNetwork& from, const std::string& to) {
    return shared_eni_world::Sh("ip netns exec " + PodNs(from) + " ping -c 3 -i 0.2 -W 2 " + to) == 0;
  }
  // A TCP exchange from the pod to `to` (a pod of this test or the VPC host)
  // with an echo server there: the fast path carries TCP and UDP only (ICMP
  // takes the stack: conntrack cannot be asked about it), so the programs'
  // counters are driven with TCP. One exchange is at least three packets
  // each way (handshake, data, close).
  bool Talk(const PodNetwork& from, const std::string& to) {
    std::string ns = to == shared_eni_world::kGateway ? vsw_ : ns_by_ip_[to];
    EXPECT_FALSE(ns.empty()) << "no namespace of this test has " << to;
    int port = 7100 + next_port_++;
    ebpf::testing::Child server({"ip", "netns", "exec", ns, "socat",
                                 "TCP-LISTEN:" + std::to_string(port) + ",fork,reuseaddr", "EXEC:cat"});
    return !ebpf::testing::TcpEcho(PodNs(from), to, port, "terway-ebpf-" + std::to_string(port)).empty();
  }
  ebpf::Counters Count() {
    auto c = programs_->ReadCounters();
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    return c.ok() ? *c : ebpf::Counters{};
  }
  // The datapath as a restarted terwayd has it: the programs loaded again
  // from the same pins, then LoadPrograms. Declare `programs` before `dp`
  // (the datapath uses them).
  void Restart(std::unique_ptr<ebpf::DatapathPrograms>& programs, std::optional<EbpfEniDatapath>& dp) {
    auto loaded = ebpf::DatapathPrograms::Load(fs_.Options());
    ASSERT_OK(loaded);
    programs = std::move(*loaded);
    EbpfEniOptions o = options_;
    o.programs = programs.get();
    dp.emplace(std::move(o));
    ASSERT_OK(dp->LoadPrograms());
  }
  netlink::Handle Node() { return netlink::Handle::OpenIn(node_).value(); }
  ebpf::AttachState State(const std::string& link, ebpf::Hook hook) {
    auto h = Node();
    auto l = h.GetLink(link);
    EXPECT_TRUE(l.ok());
    auto s = ebpf::Inspect(h, l.ok() ? l->index : 0, hook, *programs_);
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    return s.ok() ? s->state : ebpf::AttachState::kStale;
  }
  // The policy map as the programs see it: its members and whether it is
  // authoritative.
  std::set<std::string> PolicyPods() {
    auto pods = programs_->ListPolicyPods();
    EXPECT_TRUE(pods.ok()) << pods.error().ToString();
    std::set<std::string> out;
    if (pods.ok()) {
      for (const auto& ip : *pods) out.insert(ip.ToString());
    }
    return out;
  }
  bool PolicySynced() {
    auto s = programs_->PolicySynced();
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    return s.ok() && *s;
  }
  bool Shaped(const char* ip) {
    auto ep = programs_->GetEndpoint(Ipv4Addr::Parse(ip).value());
    EXPECT_TRUE(ep.ok() && ep->has_value()) << ip;
    return ep.ok() && ep->has_value() && (*ep)->shaped;
  }
  // Packets the pod's IFB (its egress shaping) received: `tc -s` of its root qdisc.
  uint64_t IfbPackets(const PodNetwork& pod) {
    std::string out = shared_eni_world::Capture("tc -s -n " + node_ + " qdisc show dev " + PodIfbName(pod.container_id));
    size_t at = out.find(" bytes ");
    EXPECT_NE(at, std::string::npos) << out;
    return at == std::string::npos ? 0 : std::stoull(out.substr(at + 7));
  }

  ebpf::testing::PrivateBpffs fs_;
  std::map<std::string, std::string> ns_by_ip_;  // pod address -> its namespace
  int next_port_ = 0;
  std::unique_ptr<ebpf::DatapathPrograms> programs_;
  std::optional<EbpfEniDatapath> ebpf_;
  bool gateway_lookup_fails_ = false;
  std::set<Ipv4Addr> may_isolate_;  // what the policy controller would say
  EbpfEniOptions options_;
};

}  // namespace terway::datapath
