// EbpfEniDatapath's record of the ENIs it attached terway_from_eni to
// (ebpf::AttachRecord): an ADD trusts it instead of reading the ENI's
// filters, so every way the kernel can lose the filter must still end with
// the program attached -- through the next ADD (the link lost its clsact),
// through Check and repair, or through the first ADD after the daemon's next
// pod GC round (the filter alone was deleted). The world is
// ebpf_eni_root_fixture.h's; "eth1" is the ENI.
#include <string>

#include <gtest/gtest.h>

#include "datapath/layout.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "root/datapath/ebpf_eni_root_fixture.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace shared_eni_world;  // NOLINT: the world's constants and helpers

int EniIndex(netlink::Handle& h) {
  auto l = h.GetLink("eth1");
  EXPECT_TRUE(l.ok()) << l.error().ToString();
  return l.ok() ? l->index : 0;
}

TEST_F(EbpfEniRoot, AnEniFilterDeletedAloneIsNamedByCheckAndReattachedByRepair) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  ASSERT_OK(ebpf_->Check(a));
  {
    auto h = Node();
    ASSERT_OK(ebpf::Detach(h, EniIndex(h)));  // tc filter del, the clsact stays
  }
  ASSERT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kMissing);
  auto c = ebpf_->Check(a);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.error().ToString(), "ENI ingress on ENI eni-test is not attached")) << c.error().ToString();
  // Repair (restart repair, or the runtime's ADD after a failed CHECK).
  ASSERT_OK(ebpf_->Ensure(a));
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent)
      << "Check forgets the record, so the repair reads the kernel and attaches";
  ASSERT_OK(ebpf_->Check(a));
}

// Without a Check: the daemon's pod GC round (RecheckEniPrograms) makes the
// next ADD of the ENI's pods read its filters again.
TEST_F(EbpfEniRoot, AnEniFilterDeletedAloneIsReattachedByTheFirstAddAfterARecheck) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  {
    auto h = Node();
    ASSERT_OK(ebpf::Detach(h, EniIndex(h)));  // tc filter del, the clsact stays
  }
  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(b));
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kMissing)
      << "between rechecks an ADD trusts the record (the point of it)";
  ebpf_->RecheckEniPrograms();
  auto c = MakePod("c", "198.18.0.12");
  ASSERT_OK(ebpf_->Ensure(c));
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent);
  ASSERT_OK(ebpf_->Check(a));
}

// A link moved out of the namespace and back keeps its ifindex (when free)
// but loses its qdiscs and filters: the record must not be trusted then.
TEST_F(EbpfEniRoot, AnEniMovedAwayAndBackUnderItsIfindexGetsItsProgramAtTheNextAdd) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  auto h = Node();
  const int before = EniIndex(h);
  const std::string away = "twda" + testing::UniqueSuffix();
  ASSERT_OK(netlink::CreateNamedNetns(away));
  owned_.push_back(away);  // removed by the fixture, also on failure
  ASSERT_EQ(Sh("ip -n " + node_ + " link set eth1 netns " + away), 0);
  ASSERT_EQ(Sh("ip -n " + away + " link set eth1 netns " + node_ + " && ip -n " + node_ + " link set eth1 up"), 0);
  if (EniIndex(h) != before) GTEST_SKIP() << "the kernel gave the moved link another ifindex";
  ASSERT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kMissing) << "a move drops the link's filters";

  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(b));
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent)
      << "the clsact was gone, so the record was not trusted";
  ASSERT_OK(ebpf_->Check(b));
}

// A detached and re-attached ENI comes back as a new link: a new ifindex,
// which the record never saw.
TEST_F(EbpfEniRoot, AnEniRecreatedUnderANewIfindexGetsItsProgramAtTheNextAdd) {
  auto a = MakePod("a", "198.18.0.10");
  ASSERT_OK(ebpf_->Ensure(a));
  auto h = Node();
  const int before = EniIndex(h);
  ASSERT_OK(h.DeleteLink(before));  // and its peer vsw0 with it
  {
    netlink::VethSpec eni;
    eni.name = "eth1";
    eni.peer_name = "vsw0";
    eni.peer_netns = vsw_;
    eni.mac = MacAddr::Parse(kEniMac).value();
    ASSERT_OK(h.CreateVeth(eni));
  }
  ASSERT_EQ(Sh("ip -n " + vsw_ + " link set vsw0 up && ip -n " + vsw_ + " addr add " + kGateway + "/24 dev vsw0"), 0);
  const int after = EniIndex(h);
  ASSERT_NE(after, before);

  auto b = MakePod("b", "198.18.0.11");
  ASSERT_OK(ebpf_->Ensure(b));
  EXPECT_EQ(State("eth1", ebpf::Hook::kEni), ebpf::AttachState::kCurrent);
  auto ep = programs_->GetEndpoint(Ipv4Addr::Parse("198.18.0.11").value());
  ASSERT_OK(ep);
  ASSERT_TRUE(ep->has_value());
  EXPECT_EQ((*ep)->eni_ifindex, after);
  ASSERT_OK(ebpf_->Check(b));
  ebpf::Counters before_talk = Count();
  EXPECT_TRUE(Talk(b, kGateway)) << "pod -> VPC host through the new ENI link";
  EXPECT_GE(Count().eni_to_pod, before_talk.eni_to_pod + 3) << "replies through the new link's program";
}

}  // namespace
}  // namespace terway::datapath
