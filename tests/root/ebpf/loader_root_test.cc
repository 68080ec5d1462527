// The eBPF datapath's loader in the real kernel: pins, reuse across a
// restart (a second loader on the same bpffs directory), replacement of an
// incompatible pin, the host-stack prefix set, and attach / inspect /
// detach on a veth inside a namespace of the test.
#include <bpf/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "ebpf/attach.h"
#include "ebpf/detect.h"
#include "ebpf/programs.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "common/strings.h"
#include "root/ebpf/ebpf_test_env.h"
#include "root/scratch_netns.h"

namespace terway::ebpf {
namespace {

using terway::testing::Capture;

bool Exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

Endpoint Ep(const char* ip, int host_ifindex) {
  Endpoint e;
  e.ip = *Ipv4Addr::Parse(ip);
  e.host_ifindex = host_ifindex;
  e.eni_ifindex = 3;
  e.gateway = *Ipv4Addr::Parse("198.18.0.1");
  e.pod_mac = *MacAddr::Parse("02:00:00:00:00:14");
  e.host_mac = *MacAddr::Parse("ee:ee:ee:ee:ee:01");
  return e;
}

TEST(EbpfLoaderRoot, PinsMapsAndASecondLoaderReusesThemWithEntriesIntact) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  const LoaderOptions o = fs.Options();
  std::vector<uint32_t> first_maps;
  {
    auto dp = DatapathPrograms::Load(o);
    ASSERT_TRUE(dp.ok()) << dp.error().ToString();
    EXPECT_TRUE((*dp)->replaced_pins().empty());
    for (const char* m :
         {"terway_dp_ep", "terway_dp_stack", "terway_dp_policy", "terway_dp_policy_state", "terway_dp_cnt"}) {
      EXPECT_TRUE(Exists(o.PinDir() + "/" + m)) << m;
    }
    auto synced = (*dp)->PolicySynced();
    ASSERT_TRUE(synced.ok()) << synced.error().ToString();
    EXPECT_FALSE(*synced) << "a fresh policy map is not authoritative: every pod policed";
    ASSERT_TRUE((*dp)->UpsertEndpoint(Ep("198.18.0.20", 7)).ok());
    ASSERT_TRUE((*dp)->UpsertEndpoint(Ep("198.18.0.21", 8)).ok());
    ASSERT_TRUE((*dp)->AddPolicyPod(*Ipv4Addr::Parse("198.18.0.21")).ok());
    ASSERT_TRUE((*dp)->AddPolicyPod(*Ipv4Addr::Parse("198.18.0.21")).ok());  // idempotent
    ASSERT_TRUE((*dp)->SetPolicySynced(true).ok());
    first_maps = (*dp)->map_ids();
    ASSERT_EQ(first_maps.size(), 5u);
  }  // terwayd "dies": its programs and fds go, the pins stay
  auto again = DatapathPrograms::Load(o);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ((*again)->map_ids(), first_maps) << "the restarted loader uses the very same maps";
  auto eps = (*again)->ListEndpoints();
  ASSERT_TRUE(eps.ok()) << eps.error().ToString();
  ASSERT_EQ(eps->size(), 2u);
  auto a = (*again)->GetEndpoint(*Ipv4Addr::Parse("198.18.0.20"));
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ(**a, Ep("198.18.0.20", 7));
  auto policy = (*again)->ListPolicyPods();
  ASSERT_TRUE(policy.ok()) << policy.error().ToString();
  EXPECT_EQ(*policy, std::set<Ipv4Addr>{*Ipv4Addr::Parse("198.18.0.21")}) << "the policy map survives too";
  EXPECT_TRUE(*(*again)->PolicySynced());
  ASSERT_TRUE((*again)->DeletePolicyPod(*Ipv4Addr::Parse("198.18.0.21")).ok());
  EXPECT_TRUE((*again)->DeletePolicyPod(*Ipv4Addr::Parse("198.18.0.21")).ok()) << "deleting twice is fine";
  EXPECT_TRUE((*again)->ListPolicyPods()->empty());

  // Bad input changes nothing; deleting twice is fine.
  Endpoint bad = Ep("198.18.0.20", 0);
  EXPECT_FALSE((*again)->UpsertEndpoint(bad).ok());
  EXPECT_EQ(**(*again)->GetEndpoint(*Ipv4Addr::Parse("198.18.0.20")), Ep("198.18.0.20", 7));
  ASSERT_TRUE((*again)->DeleteEndpoint(*Ipv4Addr::Parse("198.18.0.20")).ok());
  EXPECT_TRUE((*again)->DeleteEndpoint(*Ipv4Addr::Parse("198.18.0.20")).ok());
  EXPECT_FALSE((*again)->GetEndpoint(*Ipv4Addr::Parse("198.18.0.20"))->has_value());

  // Node cleanup removes the pins; a later load starts empty.
  ASSERT_TRUE(DatapathPrograms::RemovePins(o).ok());
  EXPECT_FALSE(Exists(o.PinDir()));
  again->reset();
  auto fresh = DatapathPrograms::Load(o);
  ASSERT_TRUE(fresh.ok()) << fresh.error().ToString();
  EXPECT_TRUE((*fresh)->ListEndpoints()->empty());
  EXPECT_FALSE(*(*fresh)->PolicySynced());
}

TEST(EbpfLoaderRoot, APinOfAnotherLayoutIsReplacedAndSaidSo) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  const LoaderOptions o = fs.Options();
  ASSERT_TRUE(EnsurePinDir(o).ok());
  // An older build's endpoint map: same name, smaller value.
  int old = bpf_map_create(BPF_MAP_TYPE_HASH, "terway_dp_ep", 4, 16, 128, nullptr);
  ASSERT_GE(old, 0) << std::strerror(errno);
  const std::string pin = o.PinDir() + "/terway_dp_ep";
  ASSERT_EQ(bpf_obj_pin(old, pin.c_str()), 0) << std::strerror(errno);
  close(old);
  auto dp = DatapathPrograms::Load(o);
  ASSERT_TRUE(dp.ok()) << dp.error().ToString();
  ASSERT_EQ((*dp)->replaced_pins(), std::vector<std::string>{pin});
  EXPECT_TRUE((*dp)->UpsertEndpoint(Ep("198.18.0.20", 7)).ok());
  // ... and the replacement is the map the next load reuses.
  auto next = DatapathPrograms::Load(o);
  ASSERT_TRUE(next.ok()) << next.error().ToString();
  EXPECT_TRUE((*next)->replaced_pins().empty());
  EXPECT_EQ((*next)->ListEndpoints()->size(), 1u);
}

TEST(EbpfLoaderRoot, WithoutABpffsAndWithoutMountingTheErrorSaysHow) {
  TERWAY_REQUIRE_ROOT();
  char tmpl[] = "/tmp/twnobpffs.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  LoaderOptions o;
  o.bpffs = tmpl;
  o.mount_bpffs = false;
  auto dp = DatapathPrograms::Load(o);
  rmdir(tmpl);
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.error().ToString().find("mount -t bpf"), std::string::npos) << dp.error().ToString();
}

TEST(EbpfLoaderRoot, StackPrefixesAreSyncedToExactlyTheGivenSetPlusMetadata) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  auto dp = DatapathPrograms::Load(fs.Options());
  ASSERT_TRUE(dp.ok()) << dp.error().ToString();
  StackPrefix svc{*Ipv4Cidr::Parse("10.96.0.0/12"), StackPrefixKind::kService};
  StackPrefix node{*Ipv4Cidr::Parse("198.18.0.10/32"), StackPrefixKind::kNode};
  StackPrefix host{*Ipv4Cidr::Parse("192.168.77.0/24"), StackPrefixKind::kHostCidr};
  ASSERT_TRUE((*dp)->SyncStackPrefixes({svc, node, host}).ok());
  auto got = (*dp)->ListStackPrefixes();
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  std::vector<StackPrefix> want{svc, node, host, BuiltinStackPrefixes()[0]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*got, want);
  ASSERT_TRUE((*dp)->SyncStackPrefixes({svc}).ok());
  want = {svc, BuiltinStackPrefixes()[0]};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(*(*dp)->ListStackPrefixes(), want) << "stale prefixes go";
  std::vector<StackPrefix> too_many;
  for (uint32_t i = 0; i < TERWAY_DP_MAX_STACK_PREFIXES + 1; ++i) {
    too_many.push_back({Ipv4Cidr(Ipv4Addr(0x0A000000u + (i << 8)), 24), StackPrefixKind::kHostCidr});
  }
  EXPECT_FALSE((*dp)->SyncStackPrefixes(too_many).ok());
  EXPECT_EQ(*(*dp)->ListStackPrefixes(), want) << "a refused set changes nothing";
}

TEST(EbpfLoaderRoot, AttachKeepsAnIdenticalProgramAcrossRestartAndReplacesAStaleOne) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  terway::testing::ScratchNetns scratch("twebpfl");
  ASSERT_OK(scratch.created);
  const std::string& ns = scratch.name;
  auto h = netlink::Handle::OpenIn(ns);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  netlink::VethSpec v;
  v.name = "twhost0";
  v.peer_name = "eth0";
  ASSERT_TRUE(h->CreateVeth(v).ok());
  auto link = h->GetLink("twhost0");
  ASSERT_TRUE(link.ok());
  const int ifx = link->index;

  auto first = DatapathPrograms::Load(fs.Options());
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  auto st = Inspect(*h, ifx, Hook::kPodVeth, **first);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(st->state, AttachState::kMissing);
  ASSERT_TRUE(Attach(*h, ifx, Hook::kPodVeth, **first).ok());
  EXPECT_EQ(Inspect(*h, ifx, Hook::kPodVeth, **first)->state, AttachState::kCurrent);
  EXPECT_EQ(Inspect(*h, ifx, Hook::kEni, **first)->state, AttachState::kStale) << "the ENI program is other code";
  const uint32_t first_id = (*first)->from_pod_id();
  first->reset();  // terwayd restarts: the filter keeps the old program running

  auto second = DatapathPrograms::Load(fs.Options());
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  ASSERT_NE((*second)->from_pod_id(), first_id);
  EXPECT_EQ(Inspect(*h, ifx, Hook::kPodVeth, **second)->state, AttachState::kCurrent)
      << "same code, same maps: restart repair leaves it alone";
  ASSERT_TRUE(Attach(*h, ifx, Hook::kPodVeth, **second).ok());
  auto filters = h->ListFilters(ifx, netlink::kTcClsactIngress);
  ASSERT_TRUE(filters.ok());
  ASSERT_EQ(filters->size(), 1u);
  EXPECT_EQ((*filters)[0].bpf_id, first_id) << "the running filter was not replaced";

  // Programs on other maps (another pin directory) are stale: replaced.
  auto other = DatapathPrograms::Load(fs.Options("elsewhere"));
  ASSERT_TRUE(other.ok()) << other.error().ToString();
  auto stale = Inspect(*h, ifx, Hook::kPodVeth, **other);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->state, AttachState::kStale);
  EXPECT_NE(stale->detail.find("other maps"), std::string::npos) << stale->detail;
  ASSERT_TRUE(Attach(*h, ifx, Hook::kPodVeth, **other).ok());
  filters = h->ListFilters(ifx, netlink::kTcClsactIngress);
  ASSERT_EQ(filters->size(), 1u);
  EXPECT_EQ((*filters)[0].bpf_id, (*other)->from_pod_id());
  EXPECT_EQ((*filters)[0].bpf_name, DatapathPrograms::kFromPodName);

  // Detach leaves no filter; twice is fine, and so is a link that is gone.
  ASSERT_TRUE(Detach(*h, ifx).ok());
  EXPECT_TRUE(h->ListFilters(ifx, netlink::kTcClsactIngress)->empty());
  EXPECT_EQ(Inspect(*h, ifx, Hook::kPodVeth, **other)->state, AttachState::kMissing);
  EXPECT_TRUE(Detach(*h, ifx).ok());
  ASSERT_TRUE(h->DeleteLink(ifx).ok());
  EXPECT_TRUE(Detach(*h, ifx).ok());
}

// AttachRecord trusts what this process attached only while the link keeps
// its clsact; Forget makes the next Attach read the kernel again; a failed
// Attach is not remembered.
TEST(EbpfLoaderRoot, AttachRecordReadsTheKernelAgainAfterTheClsactWentOrForget) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  terway::testing::ScratchNetns scratch("twebpfr");
  ASSERT_OK(scratch.created);
  auto h = netlink::Handle::OpenIn(scratch.name);
  ASSERT_OK(h);
  netlink::VethSpec v;
  v.name = "eth1";
  v.peer_name = "vsw0";
  ASSERT_OK(h->CreateVeth(v));
  auto link = h->GetLink("eth1");
  ASSERT_OK(link);
  const int ifx = link->index;
  auto mine = DatapathPrograms::Load(fs.Options());
  ASSERT_OK(mine);
  auto other = DatapathPrograms::Load(fs.Options("elsewhere"));
  ASSERT_OK(other);
  auto filter_id = [&]() -> uint32_t {
    auto f = h->ListFilters(ifx, netlink::kTcClsactIngress);
    EXPECT_TRUE(f.ok() && f->size() == 1u);
    return f.ok() && f->size() == 1u ? (*f)[0].bpf_id : 0;
  };

  AttachRecord record;
  EXPECT_FALSE(record.Remembers(ifx, Hook::kEni, **mine));
  ASSERT_OK(record.Attach(*h, ifx, Hook::kEni, **mine));
  EXPECT_EQ(filter_id(), (*mine)->from_eni_id());
  EXPECT_TRUE(record.Remembers(ifx, Hook::kEni, **mine));
  EXPECT_FALSE(record.Remembers(ifx, Hook::kPodVeth, **mine)) << "another program is not the one attached";

  // The clsact deleted (as a move between namespaces does): attached again.
  ASSERT_OK(h->DeleteClsactIfExists(ifx));
  ASSERT_OK(record.Attach(*h, ifx, Hook::kEni, **mine));
  EXPECT_EQ(filter_id(), (*mine)->from_eni_id());

  // Another program put in its place: trusted until Check says Forget.
  ASSERT_OK(Attach(*h, ifx, Hook::kEni, **other));
  ASSERT_OK(record.Attach(*h, ifx, Hook::kEni, **mine));
  EXPECT_EQ(filter_id(), (*other)->from_eni_id()) << "the record skips reading the filters";
  record.Forget(ifx);
  ASSERT_OK(record.Attach(*h, ifx, Hook::kEni, **mine));
  EXPECT_EQ(filter_id(), (*mine)->from_eni_id()) << "after Forget the stale filter is replaced";
  ASSERT_OK(Attach(*h, ifx, Hook::kEni, **other));
  record.ForgetAll();
  ASSERT_OK(record.Attach(*h, ifx, Hook::kEni, **mine));
  EXPECT_EQ(filter_id(), (*mine)->from_eni_id()) << "after ForgetAll too";

  // A failed Attach leaves nothing remembered.
  ASSERT_OK(h->DeleteLink(ifx));
  EXPECT_FALSE(record.Attach(*h, ifx, Hook::kEni, **mine).ok());
  EXPECT_FALSE(record.Remembers(ifx, Hook::kEni, **mine));
}

// At start, an earlier run's filters that this run's programs and maps are
// not are removed (they would read maps nobody writes any more); this run's own,
// and filters of other programs, stay.
TEST(EbpfLoaderRoot, DetachForeignRemovesOnlyAnEarlierRunsFilters) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  terway::testing::ScratchNetns scratch("twebpff");
  ASSERT_OK(scratch.created);
  const std::string& ns = scratch.name;
  auto h = netlink::Handle::OpenIn(ns);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  std::vector<int> ifx;
  for (const char* name : {"twa", "twb", "eni1"}) {
    netlink::VethSpec v;
    v.name = name;
    v.peer_name = std::string(name) + "p";
    ASSERT_TRUE(h->CreateVeth(v).ok());
    ifx.push_back(h->GetLink(name)->index);
  }
  auto earlier = DatapathPrograms::Load(fs.Options("earlier"));
  ASSERT_TRUE(earlier.ok()) << earlier.error().ToString();
  auto now = DatapathPrograms::Load(fs.Options("now"));
  ASSERT_TRUE(now.ok()) << now.error().ToString();
  ASSERT_TRUE(Attach(*h, ifx[0], Hook::kPodVeth, **earlier).ok());  // an earlier run's pod
  ASSERT_TRUE(Attach(*h, ifx[1], Hook::kPodVeth, **now).ok());      // this run's pod
  ASSERT_TRUE(Attach(*h, ifx[2], Hook::kEni, **earlier).ok());      // an earlier run's ENI
  auto filters_on = [&](int i) { return h->ListFilters(ifx[i], netlink::kTcClsactIngress)->size(); };

  auto sweep = DetachForeign(*h, now->get());
  ASSERT_TRUE(sweep.ok()) << sweep.error().ToString();
  EXPECT_EQ(sweep->removed.size(), 2u) << Join(sweep->removed, "; ");
  EXPECT_TRUE(sweep->left.empty()) << Join(sweep->left, "; ");
  EXPECT_EQ(filters_on(0), 0u) << "the earlier run's pod filter reads maps this run never writes";
  EXPECT_EQ(filters_on(1), 1u) << "this run's own filter stays";
  EXPECT_EQ(filters_on(2), 0u);

  // No eBPF datapath in this run: every filter of ours goes.
  sweep = DetachForeign(*h, nullptr);
  ASSERT_TRUE(sweep.ok());
  EXPECT_EQ(sweep->removed.size(), 1u);
  EXPECT_EQ(filters_on(1), 0u);
  sweep = DetachForeign(*h, nullptr);
  ASSERT_TRUE(sweep.ok());
  EXPECT_TRUE(sweep->removed.empty()) << "nothing left: a second pass removes nothing";
}

// A filter that cannot be removed does not stop the sweep: the other links
// are still cleaned, and the one left is named with its cause (the daemon
// reports it and sweeps again).
TEST(EbpfLoaderRoot, DetachForeignGoesOnPastALinkItCannotCleanAndNamesIt) {
  TERWAY_REQUIRE_ROOT();
  testing::PrivateBpffs fs;
  TERWAY_REQUIRE_BPFFS(fs);
  terway::testing::ScratchNetns scratch("twebpfg");
  ASSERT_OK(scratch.created);
  auto h = netlink::Handle::OpenIn(scratch.name);
  ASSERT_OK(h);
  auto earlier = DatapathPrograms::Load(fs.Options("earlier"));
  ASSERT_OK(earlier);
  std::map<std::string, int> ifx;
  for (const char* name : {"twa", "twb", "twc"}) {
    netlink::VethSpec v;
    v.name = name;
    v.peer_name = std::string(name) + "p";
    ASSERT_OK(h->CreateVeth(v));
    ifx[name] = h->GetLink(name)->index;
    ASSERT_OK(Attach(*h, ifx[name], Hook::kPodVeth, **earlier));
  }
  auto failing_on_twb = [&](netlink::Handle& hh, int index) -> Status {
    if (index == ifx["twb"]) return Errorf(ErrorCode::kUnavailable, "netlink said EBUSY (injected)");
    return hh.DeleteFiltersIfExist(index, netlink::kTcClsactIngress, kDatapathFilterPriority);
  };
  auto sweep = DetachForeign(*h, nullptr, failing_on_twb);
  ASSERT_OK(sweep);
  EXPECT_EQ(sweep->removed.size(), 2u) << Join(sweep->removed, "; ");
  ASSERT_EQ(sweep->left.size(), 1u) << Join(sweep->left, "; ");
  EXPECT_NE(sweep->left[0].find("twb: terway_from_pod"), std::string::npos) << sweep->left[0];
  EXPECT_NE(sweep->left[0].find("EBUSY (injected)"), std::string::npos) << sweep->left[0];
  for (const char* name : {"twa", "twc"}) {
    EXPECT_TRUE(h->ListFilters(ifx[name], netlink::kTcClsactIngress)->empty()) << name;
  }
  // The next sweep (the failure gone) finishes the job.
  sweep = DetachForeign(*h, nullptr);
  ASSERT_OK(sweep);
  EXPECT_EQ(sweep->removed.size(), 1u);
  EXPECT_TRUE(sweep->left.empty());
  EXPECT_TRUE(h->ListFilters(ifx["twb"], netlink::kTcClsactIngress)->empty());
}

// This project's kernel (6.18) has everything the mode needs; the probe
// leaves its scratch namespace behind on no path.
TEST(EbpfLoaderRoot, DetectsSupportOnThisKernelAndCleansUpItsProbe) {
  TERWAY_REQUIRE_ROOT();
  Status s = DetectSupport();
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(Capture("ip netns list | grep -c twbpfprobe"), "0\n");
}

}  // namespace
}  // namespace terway::ebpf
