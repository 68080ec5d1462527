// EniLinkCache against the kernel: the remembered ifindex is used only while
// the link there still has the ENI's MAC; a detached and re-attached ENI (a
// new link, a new index) or a link whose MAC changed is found again by the
// dump, and a vanished ENI is an error, not a stale answer.
#include "datapath/eni_link_cache.h"

#include <gtest/gtest.h>

#include "root/scratch_netns.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

const MacAddr kEniMac = MacAddr::Parse("02:00:00:00:e1:01").value();
const MacAddr kOtherMac = MacAddr::Parse("02:00:00:00:e1:02").value();

Status AddEni(netlink::Handle& h, const std::string& name, const MacAddr& mac) {
  netlink::VethSpec v;
  v.name = name;
  v.peer_name = name + "p";
  v.mac = mac;
  return h.CreateVeth(v);
}

TEST(EniLinkCacheRoot, FollowsTheEniAcrossANewIndexAndAChangedMac) {
  TERWAY_REQUIRE_ROOT();
  terway::testing::ScratchNetns ns("twelc");
  ASSERT_OK(ns.created);
  auto h = netlink::Handle::OpenIn(ns.name);
  ASSERT_OK(h);
  ASSERT_OK(AddEni(*h, "eth1", kEniMac));
  EniLinkCache cache;
  auto first = cache.Find(*h, kEniMac);
  ASSERT_OK(first);
  EXPECT_EQ(first->name, "eth1");
  auto again = cache.Find(*h, kEniMac);
  ASSERT_OK(again);
  EXPECT_EQ(again->index, first->index);

  // Detached and attached again: a new link with a new index.
  ASSERT_OK(h->DeleteLink(first->index));
  ASSERT_OK(AddEni(*h, "eth2", kEniMac));
  auto moved = cache.Find(*h, kEniMac);
  ASSERT_OK(moved);
  EXPECT_EQ(moved->name, "eth2");
  EXPECT_NE(moved->index, first->index);

  // The link at the remembered index now has another MAC: not the ENI.
  ASSERT_OK(h->SetMac(moved->index, kOtherMac));
  auto gone = cache.Find(*h, kEniMac);
  EXPECT_FALSE(gone.ok()) << "found " << gone->name << " with MAC " << gone->mac.ToString();
  ASSERT_OK(AddEni(*h, "eth3", kEniMac));
  auto back = cache.Find(*h, kEniMac);
  ASSERT_OK(back);
  EXPECT_EQ(back->name, "eth3");
}

}  // namespace
}  // namespace terway::datapath
