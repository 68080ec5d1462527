// The eBPF datapath's decisions (bpf/lib/dp_decide.h), compiled as C++: the
// same header the BPF programs include.
#include "bpf/lib/dp_decide.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

namespace {

uint32_t Ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;  // network order
}

terway_dp_endpoint Ep(uint32_t host_ifindex, uint32_t flags = 0) {
  terway_dp_endpoint e{};
  e.host_ifindex = host_ifindex;
  e.eni_ifindex = 3;
  e.gateway = Ip("198.18.0.1");
  e.flags = flags;
  return e;
}

TEST(DpDecide, APodIsPolicedWhenShapedOrIsolatedOrThePolicyMapIsNotSynced) {
  terway_dp_endpoint plain = Ep(10), shaped = Ep(10, TERWAY_DP_EP_SHAPED);
  EXPECT_FALSE(terway_dp_policed(&plain, 1, 0)) << "synced, not isolated, no limit: the fast path";
  EXPECT_TRUE(terway_dp_policed(&plain, 1, 1)) << "a chain may isolate it";
  EXPECT_TRUE(terway_dp_policed(&plain, 0, 0)) << "policy map not authoritative: every pod, fail closed";
  EXPECT_TRUE(terway_dp_policed(&shaped, 1, 0)) << "its limit's qdiscs are in the stack's path only";
  EXPECT_TRUE(terway_dp_policed(&shaped, 0, 0));
  EXPECT_TRUE(terway_dp_policed(&shaped, 1, 1));
}

TEST(DpDecide, FromPodSpoofedSourceIsDroppedBeforeAnythingElse) {
  terway_dp_endpoint a = Ep(10), b = Ep(11);
  // No endpoint owns the source.
  EXPECT_EQ(terway_dp_from_pod_decide(nullptr, 0, 10, &b, 0, 0, Ip("198.18.0.21"), 64), TERWAY_DP_DROP_SPOOF);
  // Another pod's address, from pod a's veth: even towards the stack.
  EXPECT_EQ(terway_dp_from_pod_decide(&b, 0, 10, nullptr, 0, 1, Ip("10.96.0.10"), 64), TERWAY_DP_DROP_SPOOF);
  // Policed pods are checked too.
  terway_dp_endpoint p = Ep(11, TERWAY_DP_EP_SHAPED);
  EXPECT_EQ(terway_dp_from_pod_decide(&p, 1, 10, nullptr, 0, 0, Ip("8.8.8.8"), 64), TERWAY_DP_DROP_SPOOF);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, &b, 0, 0, Ip("198.18.0.21"), 64), TERWAY_DP_TO_POD);
}

TEST(DpDecide, FromPodStackDestinationsAndPolicedPodsTakeTheStack) {
  terway_dp_endpoint a = Ep(10), b = Ep(11);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 1, Ip("10.96.0.10"), 64), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, &b, 0, 1, Ip("198.18.0.21"), 64), TERWAY_DP_TO_STACK)
      << "a host_stack_cidr covering a pod wins";
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, &b, 1, 0, Ip("198.18.0.21"), 64), TERWAY_DP_TO_STACK)
      << "to a policed pod";
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 1, 10, &b, 0, 0, Ip("198.18.0.21"), 64), TERWAY_DP_TO_STACK)
      << "from a policed pod";
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 1, 10, nullptr, 0, 0, Ip("198.18.9.9"), 64), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 0, Ip("224.0.0.251"), 64), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 0, Ip("255.255.255.255"), 64), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 0, Ip("198.18.9.9"), 1), TERWAY_DP_TO_STACK)
      << "an expiring TTL gets its ICMP error from the stack";
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, &a, 0, 0, Ip("198.18.0.20"), 64), TERWAY_DP_TO_STACK);
}

TEST(DpDecide, FromPodOtherDestinationsLeaveThroughTheEni) {
  terway_dp_endpoint a = Ep(10);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 0, Ip("198.18.9.9"), 64), TERWAY_DP_TO_ENI);
  EXPECT_EQ(terway_dp_from_pod_decide(&a, 0, 10, nullptr, 0, 0, Ip("198.18.9.9"), 2), TERWAY_DP_TO_ENI);
  terway_dp_endpoint nogw = a;
  nogw.gateway = 0;
  EXPECT_EQ(terway_dp_from_pod_decide(&nogw, 0, 10, nullptr, 0, 0, Ip("198.18.9.9"), 64), TERWAY_DP_TO_STACK);
}

// bpf/dp_pod_veth_ingress.c looks up an input of terway_dp_from_pod_decide
// only when the stages before it (terway_dp_from_pod_source_ok,
// terway_dp_from_pod_stack_bound) leave the verdict open, and passes 0/NULL
// for the rest. Over every combination of inputs: the verdict from what the
// program looks up is the verdict from everything. Fails if decide reads
// an input before the stage that guards its lookup (say the destination
// before the stack prefixes).
TEST(DpDecide, FromPodInputsTheProgramSkipsCannotChangeTheVerdict) {
  terway_dp_endpoint a = Ep(10), b = Ep(11), c = Ep(12), shaped = Ep(10, TERWAY_DP_EP_SHAPED), nogw = Ep(10);
  nogw.gateway = 0;
  const terway_dp_endpoint* srcs[] = {nullptr, &a, &b, &shaped, &nogw};
  const terway_dp_endpoint* dsts[] = {nullptr, &a, &b, &c};
  const uint32_t daddrs[] = {Ip("198.18.0.21"), Ip("198.18.9.9"), Ip("224.0.0.251"), Ip("255.255.255.255"),
                             Ip("10.96.0.10")};
  const uint8_t ttls[] = {0, 1, 2, 64};
  int combinations = 0, decided_early = 0;
  for (const terway_dp_endpoint* src : srcs) {
    for (int src_policed : {0, 1}) {
      for (int in_stack : {0, 1}) {
        for (uint32_t daddr : daddrs) {
          for (uint8_t ttl : ttls) {
            for (const terway_dp_endpoint* dst : dsts) {
              for (int dst_policed : {0, 1}) {
                ++combinations;
                terway_dp_verdict all =
                    terway_dp_from_pod_decide(src, src_policed, 10, dst, dst_policed, in_stack, daddr, ttl);
                // What the program passes (its lookups, in its order).
                const terway_dp_endpoint* l_dst = nullptr;
                int l_in_stack = 0, l_src_policed = 0, l_dst_policed = 0;
                if (terway_dp_from_pod_source_ok(src, 10) && !terway_dp_is_group_address(daddr)) {
                  l_in_stack = in_stack;
                  if (!l_in_stack) {
                    l_src_policed = src_policed;
                    if (!terway_dp_from_pod_stack_bound(l_src_policed, l_in_stack, daddr, ttl)) {
                      l_dst = dst;
                      l_dst_policed = dst_policed;
                    }
                  }
                }
                if (l_dst != dst) ++decided_early;
                ASSERT_EQ(terway_dp_from_pod_decide(src, l_src_policed, 10, l_dst, l_dst_policed, l_in_stack, daddr,
                                                    ttl),
                          all)
                    << "src " << (src ? src->host_ifindex : 0) << " policed " << src_policed << " in_stack "
                    << in_stack << " daddr " << daddr << " ttl " << int(ttl) << " dst "
                    << (dst ? dst->host_ifindex : 0) << " policed " << dst_policed;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(decided_early, combinations / 2) << "most combinations need no destination lookup";
}

TEST(DpDecide, FromEniOnlyUnpolicedPodsOfThisEni) {
  terway_dp_endpoint a = Ep(10);
  EXPECT_EQ(terway_dp_from_eni_decide(&a, 0, 3, 63), TERWAY_DP_TO_POD);
  EXPECT_EQ(terway_dp_from_eni_decide(nullptr, 0, 3, 63), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_eni_decide(&a, 1, 3, 63), TERWAY_DP_TO_STACK);
  EXPECT_EQ(terway_dp_from_eni_decide(&a, 0, 4, 63), TERWAY_DP_TO_STACK) << "another ENI: the stack routes it";
  EXPECT_EQ(terway_dp_from_eni_decide(&a, 0, 3, 1), TERWAY_DP_TO_STACK);
}

TEST(DpDecide, AFlowConntrackTracksOrCannotBeAskedAboutTakesTheStackInsteadOfARedirect) {
  for (terway_dp_verdict v : {TERWAY_DP_TO_POD, TERWAY_DP_TO_ENI}) {
    EXPECT_EQ(terway_dp_after_conntrack(v, TERWAY_DP_CT_UNTRACKED), v) << "a flow the stack never saw stays fast";
    EXPECT_EQ(terway_dp_after_conntrack(v, TERWAY_DP_CT_TRACKED), TERWAY_DP_TO_STACK) << "NAT/policy in the stack";
    EXPECT_EQ(terway_dp_after_conntrack(v, TERWAY_DP_CT_CANNOT_ASK), TERWAY_DP_TO_STACK) << "ICMP, fragments";
  }
  // Verdicts that are not redirects are never turned into one.
  EXPECT_EQ(terway_dp_after_conntrack(TERWAY_DP_DROP_SPOOF, TERWAY_DP_CT_UNTRACKED), TERWAY_DP_DROP_SPOOF);
  EXPECT_EQ(terway_dp_after_conntrack(TERWAY_DP_DROP_SPOOF, TERWAY_DP_CT_TRACKED), TERWAY_DP_DROP_SPOOF)
      << "a spoofed packet is dropped even when its tuple is tracked";
  EXPECT_EQ(terway_dp_after_conntrack(TERWAY_DP_TO_STACK, TERWAY_DP_CT_UNTRACKED), TERWAY_DP_TO_STACK);
}

}  // namespace
