// The qdisc and filter parameters the shaper sends, checked by parsing the
// built messages back (no kernel needed).
#include <linux/rtnetlink.h>

#include <gtest/gtest.h>

#include "netlink/tc_message.h"
#include "qos/annotations.h"
#include "qos/shaper.h"

namespace terway::qos {
namespace {

TEST(TokenBucketFor, BitsBecomeBytesRoundedUp) {
  auto tb = TokenBucketFor(10'000'000, 524'288, 1500);
  EXPECT_EQ(tb.rate_bytes_per_sec, 1'250'000u);
  EXPECT_EQ(tb.burst_bytes, 65'536u);
  EXPECT_EQ(tb.latency_ms, kQueueLatencyMs);
  EXPECT_EQ(TokenBucketFor(1001, 524'288, 1500).rate_bytes_per_sec, 126u);  // 125.125 -> 126
}

TEST(TokenBucketFor, BurstHoldsAtLeastOneFullFrameAndFitsU32) {
  EXPECT_EQ(TokenBucketFor(10'000'000, 8, 1500).burst_bytes, 1514u);
  EXPECT_EQ(TokenBucketFor(10'000'000, 8, 9000).burst_bytes, 9014u);
  EXPECT_EQ(TokenBucketFor(10'000'000, 1ull << 40, 1500).burst_bytes, UINT32_MAX);
}

TEST(TokenBucketFor, QueueLimitIsLatencyOfRatePlusBurst) {
  auto tb = TokenBucketFor(8'000'000, 64 * 1024 * 8, 1500);  // 1 MB/s
  EXPECT_EQ(netlink::TbfQueueLimitBytes(tb), 1'000'000u * kQueueLatencyMs / 1000 + 65'536u);
}

TEST(TbfMessage, RoundTripsRateBurstAndLimit) {
  netlink::TokenBucket tb = TokenBucketFor(50'000'000, DefaultBurstBits(50'000'000), 1500);
  auto msg = netlink::BuildRootTbfReplace(7, tb);
  ASSERT_TRUE(msg.ok()) << msg.error().ToString();
  const nlmsghdr* h = nlmsg_hdr(msg->get());
  EXPECT_EQ(h->nlmsg_type, RTM_NEWQDISC);
  EXPECT_EQ(h->nlmsg_flags & (NLM_F_CREATE | NLM_F_REPLACE), NLM_F_CREATE | NLM_F_REPLACE);
  auto t = netlink::ParseTbf(h);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->link_index, 7);
  EXPECT_EQ(t->parent, netlink::kTcHandleRoot);
  EXPECT_EQ(t->handle, 0x00010000u);
  EXPECT_EQ(t->rate_bytes_per_sec, 6'250'000u);
  EXPECT_EQ(t->burst_bytes, 65'536u);
  EXPECT_EQ(t->limit_bytes, netlink::TbfQueueLimitBytes(tb));
}

TEST(TbfMessage, RatesBeyond32BitsUseRate64) {
  // 100 Gbit/s = 12.5 GB/s: more than the u32 rate field holds.
  netlink::TokenBucket tb = TokenBucketFor(100'000'000'000, DefaultBurstBits(100'000'000'000), 1500);
  auto msg = netlink::BuildRootTbfReplace(3, tb);
  ASSERT_TRUE(msg.ok());
  auto t = netlink::ParseTbf(nlmsg_hdr(msg->get()));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->rate_bytes_per_sec, 12'500'000'000u);
}

TEST(TbfMessage, RefusesZeroRateOrBurst) {
  EXPECT_FALSE(netlink::BuildRootTbfReplace(3, netlink::TokenBucket{0, 1500, 50}).ok());
  EXPECT_FALSE(netlink::BuildRootTbfReplace(3, netlink::TokenBucket{1000, 0, 50}).ok());
}

TEST(RedirectFilterMessage, MatchesEverythingAndRedirectsToTheTarget) {
  auto msg = netlink::BuildRedirectFilterAdd({5, netlink::kTcClsactIngress, kRedirectFilterPriority, 9});
  ASSERT_TRUE(msg.ok()) << msg.error().ToString();
  const nlmsghdr* h = nlmsg_hdr(msg->get());
  EXPECT_EQ(h->nlmsg_type, RTM_NEWTFILTER);
  auto f = netlink::ParseFilter(h);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->link_index, 5);
  EXPECT_EQ(f->parent, netlink::kTcClsactIngress);
  EXPECT_EQ(f->priority, kRedirectFilterPriority);
  EXPECT_EQ(f->protocol, 3);  // ETH_P_ALL: IPv4, IPv6 and ARP alike
  EXPECT_EQ(f->kind, "u32");
  EXPECT_EQ(f->redirect_index, 9);
  EXPECT_EQ(f->mirred_eaction, 1);  // TCA_EGRESS_REDIR
}

TEST(RedirectFilterMessage, NeedsLinkTargetAndPriority) {
  EXPECT_FALSE(netlink::BuildRedirectFilterAdd({0, netlink::kTcClsactIngress, 1, 9}).ok());
  EXPECT_FALSE(netlink::BuildRedirectFilterAdd({5, netlink::kTcClsactIngress, 1, 0}).ok());
  EXPECT_FALSE(netlink::BuildRedirectFilterAdd({5, netlink::kTcClsactIngress, 0, 9}).ok());
}

TEST(IfbMessage, RefusesNamesTheKernelWouldRefuse) {
  EXPECT_TRUE(netlink::BuildIfbCreate("tb0123456789abc").ok());
  EXPECT_FALSE(netlink::BuildIfbCreate("tb0123456789abcd").ok());  // 16 bytes
  EXPECT_FALSE(netlink::BuildIfbCreate("").ok());
}

}  // namespace
}  // namespace terway::qos
