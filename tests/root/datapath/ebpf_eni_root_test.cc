// EbpfEniDatapath against the real kernel, in the world of
// ebpf_eni_root_fixture.h (the SharedEniRoot world of
// shared_eni_root_fixture.h with the programs loaded in a private bpffs).
#include <set>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "cni/protocol.h"
#include "datapath/layout.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "root/datapath/ebpf_eni_root_fixture.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the world's constants and helpers

TEST_F(EbpfEniRoot, EnsureTwiceWiresTheEntryAndProgramsAndTrafficTakesTheFastPath) {
  auto a = MakePod("a", "198.18.0.10");
  a.service_cidr = Ipv4Cidr::Parse("172.21.0.0/20").value();
  a.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value()};
  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  auto again = ebpf_->Ensure(a);
  ASSERT_OK(again);
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 2u) << "Ensure twice writes one entry per pod";
  auto ep = programs_->GetEndpoint(Ipv4Addr::Parse("198.18.0.10").value());
  ASSERT_OK(ep);
  ASSERT_TRUE(ep->has_value());
  auto h = Node();
  auto veth = h.GetLink(HostVethName(a.container_id));
  auto eni = h.GetLink("eth1");
  ASSERT_OK(veth);
  ASSERT_OK(eni);
  EXPECT_EQ((*ep)->host_ifindex, veth->index);
  EXPECT_EQ((*ep)->host_mac, veth->mac);
  EXPECT_EQ((*ep)->eni_ifindex, eni->index);
  EXPECT_EQ((*ep)->gateway.ToString(), kGateway);
  EXPECT_EQ((*ep)->pod_mac.ToString(), again->interfaces[1].mac);
  EXPECT_FALSE((*ep)->shaped);
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent);
  ASSERT_OK(ebpf_->Check(a));
  // What the pod's network says belongs to the stack is in the map; its
  // ENI's primary IP is not (on a secondary ENI it is a pod's address).
  auto prefixes = programs_->ListStackPrefixes();
  ASSERT_OK(prefixes);
  std::set<std::string> have;
  for (const auto& p : *prefixes) have.insert(p.prefix.ToString() + " " + ebpf::StackPrefixKindName(p.kind));
  EXPECT_TRUE(have.count("172.21.0.0/20 service")) << Join({have.begin(), have.end()}, ", ");
  EXPECT_TRUE(have.count("169.254.20.10/32 host-stack-cidr")) << Join({have.begin(), have.end()}, ", ");
  EXPECT_FALSE(have.count("198.18.0.2/32 node")) << Join({have.begin(), have.end()}, ", ");

  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.11")) << "pod -> pod on the node";
  ebpf::Counters mid = Count();
  EXPECT_GE(mid.pod_to_pod, before.pod_to_pod + 6) << "requests and replies, peer to peer: " << ebpf::ToString(mid);
  EXPECT_TRUE(Talk(a, kGateway)) << "pod -> VPC host";
  ebpf::Counters after = Count();
  EXPECT_GE(after.pod_to_eni, mid.pod_to_eni + 3) << ebpf::ToString(after);
  EXPECT_GE(after.eni_to_pod, mid.eni_to_pod + 3) << "replies straight to the pod: " << ebpf::ToString(after);
}

TEST_F(EbpfEniRoot, CheckNamesADetachedProgramAndADeletedEntryAndEnsureRepairsThem) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
  {
    auto h = Node();
    auto veth = h.GetLink(HostVethName(a.container_id));
    ASSERT_OK(veth);
    ASSERT_OK(ebpf::Detach(h, veth->index));
  }
  auto c = ebpf_->Check(a);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "pod veth ingress on " + HostVethName(a.container_id) +
                                                 " is not attached"))
      << c.error().ToString();
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));

  ASSERT_OK(programs_->DeleteEndpoint(Ipv4Addr::Parse("198.18.0.10").value()));
  c = ebpf_->Check(a);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "eBPF endpoint entry (198.18.0.10) is missing")) << c.error().ToString();
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));

  // An entry that says another thing (a stale SHAPED flag) is named too.
  auto ep = programs_->GetEndpoint(Ipv4Addr::Parse("198.18.0.10").value());
  ASSERT_OK(ep);
  ASSERT_TRUE(ep->has_value());
  ebpf::Endpoint stale = **ep;
  stale.shaped = true;
  ASSERT_OK(programs_->UpsertEndpoint(stale));
  c = ebpf_->Check(a);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "shaped true, want false")) << c.error().ToString();
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
}

TEST_F(EbpfEniRoot, RemoveLeavesNoEntryAndARecordedPodFindsItsFlavourFromTheEntry) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  PodNetwork recorded = a;
  recorded.virtual_type = VirtualType::kUnknown;  // rebuilt from the allocation record
  auto f = ebpf_->FlavourOf(recorded);
  ASSERT_OK(f);
  EXPECT_EQ(*f, VirtualType::kEbpf);
  ASSERT_OK(ebpf_->Check(recorded));
  ASSERT_OK(ebpf_->Remove(recorded));
  auto ep = programs_->GetEndpoint(Ipv4Addr::Parse("198.18.0.10").value());
  ASSERT_OK(ep);
  EXPECT_FALSE(ep->has_value());
  ASSERT_OK(ebpf_->Remove(recorded));  // twice
  f = ebpf_->FlavourOf(recorded);
  ASSERT_OK(f);
  EXPECT_EQ(*f, VirtualType::kVeth);
  EXPECT_FALSE(Contains(Capture("ip -n " + node_ + " link"), HostVethName(a.container_id)));
}

TEST_F(EbpfEniRoot, AVethPodGetsNoEntryAndWorksThroughTheStack) {
  auto a = MakePod("a", "198.18.0.10");
  a.virtual_type = VirtualType::kVeth;
  ASSERT_OK(ebpf_->Ensure(a));
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  EXPECT_TRUE(entries->empty());
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kMissing);
  EXPECT_TRUE(Ping(a, kGateway));
}

// Before the policy controller's first full sync (a fresh map), every pod is
// policed: fail closed.
TEST_F(EbpfEniRoot, PolicedPodsTakeTheHostStack) {
  auto a = MakePod("a", "198.18.0.10");
  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  ASSERT_OK(programs_->SetPolicySynced(false));  // as a fresh map is
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  EXPECT_TRUE(Talk(a, kGateway));
  ebpf::Counters after = Count();
  EXPECT_GE(after.pod_to_stack, before.pod_to_stack + 6) << ebpf::ToString(after);
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << ebpf::ToString(after);
  EXPECT_EQ(after.pod_to_eni, before.pod_to_eni) << ebpf::ToString(after);
  EXPECT_EQ(after.eni_to_pod, before.eni_to_pod) << ebpf::ToString(after);
}

TEST_F(EbpfEniRoot, CollectGarbageDeletesEntriesNoLivePodHolds) {
  auto a = MakePod("a", "198.18.0.10");
  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  auto removed = ebpf_->CollectGarbage({a.container_id});
  ASSERT_OK(removed);
  bool named = false;
  for (const auto& r : *removed) named |= Contains(r, "eBPF endpoint entry 198.18.0.11");
  EXPECT_TRUE(named) << Join(*removed, "; ");
  auto entries = programs_->ListEndpoints();
  ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].ip.ToString(), "198.18.0.10");
}

// The policy controller's full sets: a superset before its chains, exactly
// them after. Isolated pods take the stack; a bandwidth-limited pod stays
// SHAPED whatever policy says (isolation is another map's, another writer's).
TEST_F(EbpfEniRoot, PolicyMapFollowsTheControllersSetsAndNeverTouchesTheShapedFlag) {
  auto a = MakePod("a", "198.18.0.10");
  auto b = MakePod("b", "198.18.0.11");
  auto l = MakePod("l", "198.18.0.12");
  l.bandwidth = cni::Bandwidth{};
  l.bandwidth->ingress_rate = 100 * 1000 * 1000;
  l.bandwidth->ingress_burst = 1000 * 1000;
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  ASSERT_OK(ebpf_->Ensure(l));
  EXPECT_FALSE(Shaped("198.18.0.10"));
  EXPECT_TRUE(Shaped("198.18.0.12"));

  const std::set<Ipv4Addr> isolated = {Ipv4Addr::Parse("198.18.0.10").value(), Ipv4Addr::Parse("198.18.0.12").value()};
  ASSERT_OK(ebpf_->PolicyIsolating(isolated));
  EXPECT_EQ(PolicyPods(), (std::set<std::string>{"198.18.0.10", "198.18.0.12"}));
  ASSERT_OK(ebpf_->PolicyIsolationApplied(isolated));
  EXPECT_TRUE(PolicySynced());
  ASSERT_OK(ebpf_->Check(a));  // the entry is Ensure's: policy changes nothing Check compares
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  ebpf::Counters mid = Count();
  EXPECT_EQ(mid.pod_to_pod, before.pod_to_pod) << ebpf::ToString(mid);
  EXPECT_GE(mid.pod_to_stack, before.pod_to_stack + 6) << ebpf::ToString(mid);

  // The policy goes: before the apply the map keeps its extras (the chains
  // are still there), after it they go.
  ASSERT_OK(ebpf_->PolicyIsolating({}));
  EXPECT_EQ(PolicyPods(), (std::set<std::string>{"198.18.0.10", "198.18.0.12"}));
  ASSERT_OK(ebpf_->PolicyIsolationApplied({}));
  EXPECT_TRUE(PolicyPods().empty());
  EXPECT_TRUE(Shaped("198.18.0.12")) << "its bandwidth limit keeps it on the stack's path";
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  EXPECT_GE(Count().pod_to_pod, mid.pod_to_pod + 6);
}

// A write of the policy map that fails (here: the map is full) falls to the
// safe side -- the map is marked not authoritative, every pod takes the
// stack -- and says so; the next full sync restores exact membership.
TEST_F(EbpfEniRoot, AFailedIsolatingLeavesEveryPodPolicedUntilAFullSync) {
  auto a = MakePod("a", "198.18.0.10");
  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(b));
  // Fill the map behind the datapath's back with addresses of no pod here.
  for (uint32_t i = 0; i < TERWAY_DP_MAX_POLICY_PODS; ++i) {
    ASSERT_OK(programs_->AddPolicyPod(Ipv4Addr((10u << 24) | i)));
  }
  const Ipv4Addr web = Ipv4Addr::Parse("198.18.0.11").value();
  Status st = ebpf_->PolicyIsolating({web});
  ASSERT_FALSE(st.ok()) << "the map is full: " << PolicyPods().size();
  EXPECT_TRUE(Contains(st.error().ToString(), "every pod takes the host stack")) << st.error().ToString();
  EXPECT_FALSE(PolicySynced()) << "fail closed";
  EXPECT_FALSE(PolicyPods().count("198.18.0.11"));
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  ebpf::Counters after = Count();
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << "b is not in the map, yet nobody skips the stack";
  EXPECT_GE(after.pod_to_stack, before.pod_to_stack + 6) << ebpf::ToString(after);

  // A full sync: extras out, the isolated pod in, authoritative again.
  ASSERT_OK(ebpf_->PolicyIsolationApplied({web}));
  EXPECT_EQ(PolicyPods(), std::set<std::string>{"198.18.0.11"});
  EXPECT_TRUE(PolicySynced());
  before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  EXPECT_EQ(Count().pod_to_pod, before.pod_to_pod) << "b is isolated: still the stack";
  ASSERT_OK(ebpf_->PolicyIsolationApplied({}));
  EXPECT_TRUE(Talk(a, "198.18.0.11"));
  EXPECT_GE(Count().pod_to_pod, before.pod_to_pod + 6) << "nobody isolated: the fast path";
}

// The double failure: a write of the policy map fails (the map is full) and
// so does the fail-closed mark (the state map is frozen: the kernel refuses
// every write from user space). The state still says authoritative while
// the map lacks the pod a chain now isolates: the fast path would carry it
// past its chain. The error says so, and Ensure refuses that pod the fast
// path (its ADD fails with CNI's "try again later"), while a pod no chain
// isolates and an isolated pod the map holds are served.
TEST_F(EbpfEniRoot, WhenFailingClosedFailsTooAnIsolatedPodTheMapLacksGetsNoFastPath) {
  auto a = MakePod("a", "198.18.0.10");  // no chain isolates it
  auto b = MakePod("b", "198.18.0.11");  // a new pod a chain isolates
  auto c = MakePod("c", "198.18.0.12");  // isolated since before the failure
  const Ipv4Addr bip = Ipv4Addr::Parse("198.18.0.11").value(), cip = Ipv4Addr::Parse("198.18.0.12").value();
  ASSERT_OK(ebpf_->PolicyIsolating({cip}));
  ASSERT_OK(ebpf_->PolicyIsolationApplied({cip}));
  EXPECT_EQ(ebpf_->PolicyMapSynced(), std::optional<bool>(true));
  for (uint32_t i = 0; i + 1 < TERWAY_DP_MAX_POLICY_PODS; ++i) {
    ASSERT_OK(programs_->AddPolicyPod(Ipv4Addr((10u << 24) | i)));
  }
  int state = bpf_obj_get((programs_->pin_dir() + "/terway_dp_policy_state").c_str());
  ASSERT_GE(state, 0) << std::strerror(errno);
  int frozen = bpf_map_freeze(state);
  int err = errno;
  close(state);
  ASSERT_EQ(frozen, 0) << std::strerror(err);

  may_isolate_ = {bip, cip};
  Status st = ebpf_->PolicyIsolating({bip, cip});
  ASSERT_FALSE(st.ok()) << "the map is full";
  EXPECT_TRUE(PolicyMapFailedOpen(st.error())) << st.error().ToString();
  EXPECT_TRUE(PolicySynced()) << "the state could not be written: still authoritative";
  EXPECT_FALSE(PolicyPods().count("198.18.0.11"));
  EXPECT_EQ(ebpf_->PolicyMapSynced(), std::optional<bool>(false));

  auto refused = ebpf_->Ensure(b);
  ASSERT_FALSE(refused.ok()) << "b would be fast-pathed past its chain";
  const std::string why = refused.error().ToString();
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable) << why;
  EXPECT_EQ(cni::protocol::Reply::FromError(refused.error()).error->cls, cni::protocol::ErrorClass::kUnavailable)
      << "CNI code 11, try again later";
  EXPECT_TRUE(Contains(why, "pod-b")) << why;
  EXPECT_TRUE(Contains(why, "isolated by NetworkPolicy")) << why;
  auto ep = programs_->GetEndpoint(bip);
  ASSERT_OK(ep);
  EXPECT_FALSE(ep->has_value()) << "no entry: nothing carries b past the stack";
  EXPECT_EQ(State(HostVethName(b.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kMissing);

  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Ensure(c));
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, "198.18.0.12"));
  ebpf::Counters after = Count();
  EXPECT_EQ(after.pod_to_pod, before.pod_to_pod) << "c is in the map: the stack, its chain";
  EXPECT_GE(after.pod_to_stack, before.pod_to_stack + 6) << ebpf::ToString(after);
}

// A pod wired again with another IPv4 keeps no entry of the old one: that
// address, which the pool may give to another pod of the node, is not
// redirected to this pod's veth. An entry another pod has written for the
// old address since is that pod's and stays. After a restart the index of
// entries by veth comes from the pinned map, so the same holds.
TEST_F(EbpfEniRoot, APodWiredAgainWithAnotherAddressKeepsNoEntryOfTheOld) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  auto entry = [&](const char* ip) {
    auto ep = programs_->GetEndpoint(Ipv4Addr::Parse(ip).value());
    EXPECT_TRUE(ep.ok()) << ep.error().ToString();
    return ep.ok() ? *ep : std::nullopt;
  };
  const int a_veth = Node().GetLink(HostVethName(a.container_id)).value().index;
  ASSERT_TRUE(entry("198.18.0.10"));

  // a's network with another address, the vSwitch told where it lives.
  auto readdressed = [&](const char* ip) {
    PodNetwork p = a;
    p.ip.ip = ip;
    EXPECT_EQ(Sh("ip -n " + vsw_ + " neigh replace " + ip + " lladdr " + kEniMac + " dev vsw0 nud permanent"), 0);
    return p;
  };
  PodNetwork moved = readdressed("198.18.0.13");
  ASSERT_OK(ebpf_->Ensure(moved));
  EXPECT_FALSE(entry("198.18.0.10")) << "the old address must not lead to a's veth";
  ASSERT_TRUE(entry("198.18.0.13"));
  const int a_veth_now = Node().GetLink(HostVethName(a.container_id)).value().index;
  EXPECT_EQ(entry("198.18.0.13")->host_ifindex, a_veth_now) << "(a new address: a new veth, " << a_veth << " before)";

  // The old address goes to b; a is ensured again (a repair): b's entry stays.
  auto b = MakePod("b", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(b));
  ASSERT_OK(ebpf_->Ensure(moved));
  ASSERT_TRUE(entry("198.18.0.10"));
  EXPECT_NE(entry("198.18.0.10")->host_ifindex, a_veth_now);
  ASSERT_OK(ebpf_->Check(b));
  ns_by_ip_["198.18.0.13"] = PodNs(a);
  EXPECT_TRUE(Talk(b, "198.18.0.13"));

  // A restarted datapath (the same pins) moves a once more.
  std::unique_ptr<ebpf::DatapathPrograms> reloaded;
  std::optional<EbpfEniDatapath> restarted;
  ASSERT_NO_FATAL_FAILURE(Restart(reloaded, restarted));
  ASSERT_OK(restarted->PolicyIsolationApplied({}));
  PodNetwork again = readdressed("198.18.0.14");
  ASSERT_OK(restarted->Ensure(again));
  EXPECT_FALSE(entry("198.18.0.13")) << "found through the pinned map's entries";
  ASSERT_TRUE(entry("198.18.0.14"));
  ASSERT_TRUE(entry("198.18.0.10")) << "b's";
  ASSERT_OK(restarted->Check(b));
  ASSERT_OK(restarted->Remove(again));
  ASSERT_OK(restarted->Remove(b));
  EXPECT_FALSE(entry("198.18.0.14"));
  EXPECT_FALSE(entry("198.18.0.10"));
}

// A failed Ensure (a repair, say) leaves no program or entry of an earlier
// Ensure behind: their SHAPED flag could be stale, so the pod falls back to
// the stack, where the policy table applies.
TEST_F(EbpfEniRoot, AFailedEnsureLeavesThePodOnTheStackOnly) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
  gateway_lookup_fails_ = true;
  EXPECT_FALSE(ebpf_->Ensure(a).ok());
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kMissing);
  auto ep = programs_->GetEndpoint(Ipv4Addr::Parse("198.18.0.10").value());
  ASSERT_OK(ep);
  EXPECT_FALSE(ep->has_value()) << "no entry: the ENI's program hands the pod's packets to the stack";
  gateway_lookup_fails_ = false;
  EXPECT_TRUE(Ping(a, kGateway)) << "the veth wiring still carries the pod";
}

// A restarted terwayd loads programs of its own on the same pins: it finds
// its pods' entries (their recorded networks say no flavour), and the
// programs the old one attached count as current, so repair changes nothing.
TEST_F(EbpfEniRoot, ARestartedDatapathFindsItsPodsByTheirEntries) {
  auto a = MakePod("a", "198.18.0.10");
  a.service_cidr = Ipv4Cidr::Parse("172.21.0.0/20").value();  // learned from the pod's CNI conf
  ASSERT_OK(ebpf_->Ensure(a));
  std::unique_ptr<ebpf::DatapathPrograms> reloaded;
  std::optional<EbpfEniDatapath> restarted;
  ASSERT_NO_FATAL_FAILURE(Restart(reloaded, restarted));
  {
    // terwayd records no pod's service_cidr: the restarted datapath keeps
    // the one the earlier run learned, or running pods' Service traffic
    // would leave through their ENI until the next ADD.
    auto prefixes = reloaded->ListStackPrefixes();
    ASSERT_OK(prefixes);
    std::set<std::string> have;
    for (const auto& p : *prefixes) have.insert(p.prefix.ToString() + " " + ebpf::StackPrefixKindName(p.kind));
    EXPECT_TRUE(have.count("172.21.0.0/20 service")) << Join({have.begin(), have.end()}, ", ");
  }
  PodNetwork recorded = a;
  recorded.virtual_type = VirtualType::kUnknown;
  auto f = restarted->FlavourOf(recorded);
  ASSERT_OK(f);
  EXPECT_EQ(*f, VirtualType::kEbpf);
  {
    auto h = Node();
    auto veth = h.GetLink(HostVethName(a.container_id));
    ASSERT_OK(veth);
    auto st = ebpf::Inspect(h, veth->index, ebpf::Hook::kPodVeth, *reloaded);
    ASSERT_OK(st);
    EXPECT_EQ(st->state, ebpf::AttachState::kCurrent) << "the old program with the same maps is kept";
    // The ENI's program uses fewer maps than the pod's: still the same code
    // on the same maps, so it is kept too (replacing it would hand the ENI's
    // packets to the stack for a moment).
    auto eni = h.GetLink("eth1");
    ASSERT_OK(eni);
    auto est = ebpf::Inspect(h, eni->index, ebpf::Hook::kEni, *reloaded);
    ASSERT_OK(est);
    EXPECT_EQ(est->state, ebpf::AttachState::kCurrent) << est->detail;
  }
  ASSERT_OK(restarted->Ensure(recorded));
  ASSERT_OK(restarted->Check(recorded));
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, kGateway));
  EXPECT_GE(Count().pod_to_eni, before.pod_to_eni + 3);
}

// A bandwidth limit's qdiscs (IFB redirect on the host veth's ingress, after
// our filter) are in the stack's path only: the pod is SHAPED, and its
// program hands its packets on with TC_ACT_UNSPEC, so the IFB still gets
// them -- after the program's anti-spoofing, which it has like every pod.
TEST_F(EbpfEniRoot, ABandwidthLimitedPodKeepsItsProgramAndItsShaping) {
  auto a = MakePod("a", "198.18.0.10");
  a.bandwidth = cni::Bandwidth{};
  a.bandwidth->egress_rate = 100 * 1000 * 1000;
  a.bandwidth->egress_burst = 1000 * 1000;
  ASSERT_OK(ebpf_->Ensure(a));
  EXPECT_TRUE(Shaped("198.18.0.10"));
  EXPECT_EQ(State(HostVethName(a.container_id), ebpf::Hook::kPodVeth), ebpf::AttachState::kCurrent);
  ASSERT_OK(ebpf_->Check(a));

  // Its traffic crosses the IFB (shaped) and the stack, not the fast path.
  uint64_t ifb_before = IfbPackets(a);
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(a, kGateway));
  ebpf::Counters after = Count();
  EXPECT_GE(IfbPackets(a), ifb_before + 3) << "qos's IFB redirect still sees the pod's packets";
  EXPECT_GE(after.pod_to_stack, before.pod_to_stack + 3) << ebpf::ToString(after);
  EXPECT_EQ(after.pod_to_eni, before.pod_to_eni) << ebpf::ToString(after);

  // A forged source is dropped by the program (TC_ACT_SHOT: no later
  // filter, the IFB's included, sees it).
  // The pod claims another address and sends from it (bound explicitly).
  ASSERT_EQ(Sh("ip -n " + PodNs(a) + " addr add 198.18.0.99/32 dev eth0"), 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Sh("echo forged | ip netns exec " + PodNs(a) + " socat - UDP4-SENDTO:" + kGateway +
                 ":9,bind=198.18.0.99"),
              0);
  }
  EXPECT_GE(Count().drop_spoof, after.drop_spoof + 5) << ebpf::ToString(Count());

  // Check wants the program on a limited pod too.
  {
    auto h = Node();
    auto veth = h.GetLink(HostVethName(a.container_id));
    ASSERT_OK(veth);
    ASSERT_OK(ebpf::Detach(h, veth->index));
  }
  auto c = ebpf_->Check(a);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "is not attached")) << c.error().ToString();
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
}

// The SHAPED flag is in the pinned entry: a restarted terwayd (a new
// datapath on the same pins, which has not Ensured the pod yet) does not
// lose it when policy isolation changes, and its first full policy sync
// prunes what the earlier run's policy map held beyond the new set.
TEST_F(EbpfEniRoot, ARestartKeepsTheShapedFlagAndTheFirstFullSyncPrunesThePolicyMap) {
  auto l = MakePod("l", "198.18.0.12");
  l.bandwidth = cni::Bandwidth{};
  l.bandwidth->egress_rate = 100 * 1000 * 1000;
  l.bandwidth->egress_burst = 1000 * 1000;
  ASSERT_OK(ebpf_->Ensure(l));
  const Ipv4Addr lip = Ipv4Addr::Parse("198.18.0.12").value(), gone = Ipv4Addr::Parse("198.18.0.77").value();
  ASSERT_OK(ebpf_->PolicyIsolating({lip, gone}));
  ASSERT_OK(ebpf_->PolicyIsolationApplied({lip, gone}));

  std::unique_ptr<ebpf::DatapathPrograms> reloaded;
  std::optional<EbpfEniDatapath> restarted;
  ASSERT_NO_FATAL_FAILURE(Restart(reloaded, restarted));
  // Until the new controller's first apply, the pins stay as the earlier run
  // left them (in step with its nftables table).
  EXPECT_EQ(PolicyPods(), (std::set<std::string>{"198.18.0.12", "198.18.0.77"}));
  EXPECT_TRUE(PolicySynced());
  // The first apply: nothing isolated any more.
  ASSERT_OK(restarted->PolicyIsolating({}));
  EXPECT_EQ(PolicyPods(), (std::set<std::string>{"198.18.0.12", "198.18.0.77"})) << "extras stay until the apply";
  ASSERT_OK(restarted->PolicyIsolationApplied({}));
  EXPECT_TRUE(PolicyPods().empty()) << "the earlier run's extras are pruned";
  EXPECT_TRUE(PolicySynced());
  EXPECT_TRUE(Shaped("198.18.0.12")) << "an isolation change before repair re-Ensured the pod keeps its limit";
  PodNetwork recorded = l;
  recorded.virtual_type = VirtualType::kUnknown;
  ASSERT_OK(restarted->Check(recorded));
  ebpf::Counters before = Count();
  EXPECT_TRUE(Talk(l, kGateway));
  EXPECT_EQ(Count().pod_to_eni, before.pod_to_eni) << "its traffic still takes the stack (and the IFB)";
}

// terwayd's way: no programs until the first pod asking for the mode, so a
// node without such pods pins nothing.
TEST_F(EbpfEniRoot, ProgramsAreLoadedAtTheFirstEbpfPodOnly) {
  EbpfEniOptions o = options_;
  o.programs = nullptr;
  int loads = 0;
  o.load = [&]() {
    ++loads;
    return ebpf::DatapathPrograms::Load(fs_.Options("lazy"));
  };
  int hooks = 0;
  o.loaded = [&] { ++hooks; };
  EbpfEniDatapath lazy(o);
  const std::string pins = fs_.dir() + "/lazy";
  auto v = MakePod("v", "198.18.0.12");
  v.virtual_type = VirtualType::kVeth;
  ASSERT_OK(lazy.Ensure(v));
  ASSERT_OK(lazy.Check(v));
  PodNetwork recorded = v;
  recorded.virtual_type = VirtualType::kUnknown;
  ASSERT_OK(lazy.Remove(recorded));
  ASSERT_OK(lazy.CollectGarbage({}));
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(lazy.Loaded(), nullptr);
  ASSERT_OK(lazy.PolicyIsolationApplied({}));  // nothing loaded: nothing to write, and no load
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(lazy.PolicyMapSynced(), std::nullopt) << "no map: not 'in sync' (the gauge is absent)";
  EXPECT_NE(Sh("test -e " + pins), 0) << "nothing pinned for veth pods";

  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(lazy.Ensure(a));
  ASSERT_OK(lazy.Ensure(a));
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(hooks, 1) << "the load asks the policy map's writer for a sync, once";
  ASSERT_NE(lazy.Loaded(), nullptr);
  auto synced = lazy.Loaded()->PolicySynced();
  ASSERT_OK(synced);
  EXPECT_FALSE(*synced) << "a fresh policy map polices every pod until its writer syncs it";
  EXPECT_EQ(lazy.PolicyMapSynced(), std::optional<bool>(false));
  ASSERT_OK(lazy.PolicyIsolationApplied({}));  // what the hook's sync does
  EXPECT_EQ(lazy.PolicyMapSynced(), std::optional<bool>(true));
  EXPECT_EQ(Sh("test -e " + pins), 0);
  auto ep = lazy.Loaded()->GetEndpoint(Ipv4Addr::Parse("198.18.0.10").value());
  ASSERT_OK(ep);
  EXPECT_TRUE(ep->has_value());
  ASSERT_OK(lazy.Remove(a));
}

}  // namespace
}  // namespace terway::datapath
