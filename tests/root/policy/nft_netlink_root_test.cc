// Our netlink encoding of delta scripts (policy/nft_netlink.h) against
// libnftables running the same scripts: two node namespaces start from the
// same table; random walks of cluster changes (tests/unit/policy's
// generator) are compiled incrementally and each delta goes to one
// namespace through our encoder, to the other through libnftables. After
// every step both kernels must list the same table (rules, sets with their
// elements, maps, counters; handles aside). Also: a script with a command
// the encoder does not know is refused before anything is sent, a batch the
// kernel refuses changes nothing, and element lists longer than one netlink
// attribute holds arrive whole.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "netlink/netns.h"
#include "policy/incremental.h"
#include "policy/nft_batch.h"
#include "policy/nft_netlink.h"
#include "policy/nft_render.h"
#include "test_util.h"
#include "unit/policy/random_world.h"

namespace terway::policy {
namespace {

using Json = nlohmann::json;

// The table as nft lists it, without handles (which count per namespace).
Json Listing(const std::string& netns) {
  std::string out;
  Status s = RunNftBatch(netns, "list table inet terway", &out);
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  Json j = Json::parse(out, nullptr, false);
  std::function<void(Json&)> strip = [&](Json& v) {
    if (v.is_object()) {
      v.erase("handle");
      for (auto& [k, x] : v.items()) strip(x);
    } else if (v.is_array()) {
      for (auto& x : v) strip(x);
    }
  };
  strip(j);
  return j;
}

class NftNetlinkRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    const std::string s = terway::testing::UniqueSuffix();
    ours_ = "twno" + s;
    theirs_ = "twnt" + s;
    for (const auto& n : {ours_, theirs_}) {
      ASSERT_TRUE(netlink::CreateNamedNetns(n).ok());
      created_.push_back(n);
    }
  }
  void TearDown() override {
    for (const auto& n : created_) (void)netlink::DeleteNamedNetns(n);
  }
  // Both namespaces get `model` whole, through libnftables.
  void Start(const NftModel& model) {
    const std::string script = RenderNftScript(model);
    for (const auto& n : {ours_, theirs_}) {
      ASSERT_TRUE(RunNftBatch(n, "add table inet terway\ndelete table inet terway\n").ok());
      Status s = RunNftBatch(n, script);
      ASSERT_TRUE(s.ok()) << s.error().ToString();
    }
  }

  std::string ours_, theirs_;
  std::vector<std::string> created_;
};

TEST_F(NftNetlinkRoot, RandomDeltasBuildTheTableLibnftablesBuilds) {
  int sent = 0, rules = 0, fallbacks = 0;
  for (uint32_t seed = 1; seed <= 6; seed++) {
    testing::Walk walk(seed);
    walk.Start(18, 10);
    auto first = walk.inc().Update();
    ASSERT_TRUE(first.ok());
    Start(walk.inc().model());
    if (HasFailure()) return;
    for (int step = 0; step < 25; step++) {
      std::string what = walk.Step();
      auto change = walk.inc().Update();
      ASSERT_TRUE(change.ok()) << change.error().ToString();
      if (change->empty()) continue;
      const std::string script = RenderNftDelta(change->from, change->to);
      Status netlink = RunNftBatchNetlink(ours_, script);
      if (!netlink.ok() && netlink.error().code == ErrorCode::kUnsupported) {
        // A statement the encoder does not know (Calico's tuple sets, ICMP
        // types, ...): the table's path sends it through libnftables.
        fallbacks++;
        netlink = RunNftBatch(ours_, script);
      }
      ASSERT_TRUE(netlink.ok()) << "seed " << seed << " step " << step << " (" << what
                                << "): " << netlink.error().ToString() << "\n" << script;
      Status lib = RunNftBatch(theirs_, script);
      ASSERT_TRUE(lib.ok()) << lib.error().ToString() << "\n" << script;
      Json a = Listing(ours_), b = Listing(theirs_);
      ASSERT_EQ(a, b) << "seed " << seed << " step " << step << " (" << what << ")\nscript:\n" << script
                      << "\nours:\n" << a.dump(1) << "\nlibnftables:\n" << b.dump(1);
      sent++;
      rules += static_cast<int>(std::count(script.begin(), script.end(), '\n'));
    }
  }
  EXPECT_GT(sent, 50);  // the walks did send changes
  EXPECT_GT(rules, 500);
  EXPECT_LT(fallbacks, sent / 2) << "most changes go through our encoder";
}

TEST_F(NftNetlinkRoot, LongElementListsAndPortShapes) {
  NftModel m;
  // 5,000 separate addresses: several netlink messages of elements.
  IpRangeSet many;
  for (uint32_t i = 0; i < 5000; i++) many.Add(Ipv4Addr(0xc6120000u + 2 * i));  // 198.18.0.0, .2, ...
  m.sets["s_many"] = many.ToString();
  m.sets["s_edge"] = "0.0.0.0-10.255.255.255, 255.255.255.0-255.255.255.255";
  m.counters = {"c1", "chain_a_drop"};
  m.chains["chain_a"] = {
      "ip saddr @s_many tcp dport { 80 } counter name \"c1\" accept comment \"one port\"",
      "ip daddr @s_edge udp dport { 8000-8100 } counter name \"c1\" return comment \"one range\"",
      "sctp dport { 1, 3-5, 4-9, 10, 65535 } counter name \"c1\" accept comment \"merged\"",
      "meta l4proto icmp counter name \"c1\" log prefix \"terway c1 \"  comment \"log\"",
      "ip saddr != @s_edge meta l4proto != udp counter name \"c1\" goto chain_b comment \"pass\"",
      "meta l4proto 47 counter name \"c1\" accept comment \"a protocol by number\"",
      "tcp sport { 1024-65535 } counter name \"c1\" accept comment \"source ports\"",
      "udp dport != { 53 } counter name \"c1\" drop",
      "tcp dport != { 8000-8100 } counter name \"c1\" jump chain_b",
      "counter name \"chain_a_drop\" drop comment \"ingress of x/a: no rule matched\"",
  };
  m.chains["chain_b"] = {"counter name \"c1\" return"};
  m.ingress["198.18.0.2"] = "chain_a";
  NftModel empty;
  const std::string script = RenderNftDelta(empty, m);
  Start(empty);
  Status s = RunNftBatchNetlink(ours_, script);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  Status lib = RunNftBatch(theirs_, script);
  ASSERT_TRUE(lib.ok()) << lib.error().ToString();
  EXPECT_EQ(Listing(ours_), Listing(theirs_));
  // And back to nothing.
  const std::string back = RenderNftDelta(m, empty);
  ASSERT_TRUE(RunNftBatchNetlink(ours_, back).ok());
  ASSERT_TRUE(RunNftBatch(theirs_, back).ok());
  EXPECT_EQ(Listing(ours_), Listing(theirs_));
}

// A set changes by the elements that differ; when an address joins two
// ranges into one, the two go and the one comes, in one transaction.
TEST_F(NftNetlinkRoot, SetsChangeByTheirElementsRangesMerging) {
  NftModel a;
  a.sets["s_x"] = "198.18.0.1, 198.18.0.3, 198.18.0.7-198.18.0.9";
  a.counters = {"c1"};
  a.chains["ch"] = {"ip saddr @s_x counter name \"c1\" accept"};
  NftModel b = a;
  b.sets["s_x"] = "198.18.0.1-198.18.0.3, 198.18.0.8-198.18.0.9, 255.255.255.255";
  NftModel c = a;
  c.sets["s_x"] = "";
  Start(a);
  for (const auto& [from, to] : {std::pair{&a, &b}, {&b, &c}, {&c, &a}, {&a, &c}, {&c, &b}}) {
    const std::string script = RenderNftDelta(*from, *to);
    EXPECT_EQ(script.find("flush set"), std::string::npos) << script;
    Status s = RunNftBatchNetlink(ours_, script);
    ASSERT_TRUE(s.ok()) << s.error().ToString() << "\n" << script;
    ASSERT_TRUE(RunNftBatch(theirs_, script).ok()) << script;
    ASSERT_EQ(Listing(ours_), Listing(theirs_)) << script;
  }
  // The kernel holds b's elements now, nothing else.
  const std::string listed = Listing(ours_).dump();
  EXPECT_NE(listed.find("198.18.0.1"), std::string::npos) << listed;
  EXPECT_EQ(listed.find("198.18.0.7"), std::string::npos) << listed;
}

TEST_F(NftNetlinkRoot, UnknownCommandsAreRefusedBeforeAnythingIsSent) {
  Start(NftModel{});
  Json before = Listing(ours_);
  Status s = RunNftBatchNetlink(ours_, "add counter inet terway c1\nadd rule inet terway forward ip saddr 1.2.3.4 "
                                       "ct state new accept\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(s.error().message.find("ct"), std::string::npos) << s.error().message;
  EXPECT_EQ(Listing(ours_), before);  // c1 was not added either
}

TEST_F(NftNetlinkRoot, ARefusedBatchChangesNothing) {
  Start(NftModel{});
  Json before = Listing(ours_);
  // The counter would be fine; the chain to delete does not exist: the
  // kernel refuses the transaction, so the counter is not there either.
  Status s = RunNftBatchNetlink(ours_, "add counter inet terway c1\ndelete chain inet terway nosuchchain\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kKernel);
  EXPECT_NE(s.error().message.find("delete chain inet terway nosuchchain"), std::string::npos) << s.error().message;
  EXPECT_EQ(Listing(ours_), before);
}

TEST(NftNetlinkEncode, KnowsWhatTheRendererWritesAndRefusesTheRest) {
  NftModel m;
  m.sets["s_a"] = "198.18.0.1, 198.18.0.5-198.18.0.9";
  m.counters = {"c1"};
  m.chains["in_a"] = {"ip saddr @s_a tcp dport { 80, 443 } counter name \"c1\" accept comment \"Allow by k8s:x/p "
                      "ingress[0]\""};
  m.egress["198.18.0.1"] = "in_a";
  // Dual stack: the IPv6 half of the set (s6_a), the ip6 twin rule and the
  // IPv6 pod map are ours too.
  m.sets["s_a"] += ", fd00::1, fd00::10-fd00::1f";
  m.chains["in_a"].push_back("ip6 saddr != @s6_a counter name \"c1\" drop comment \"Deny by k8s:x/p ingress[1]\"");
  m.egress["fd00::1"] = "in_a";
  auto batch = EncodeNftBatch(RenderNftDelta(NftModel{}, m));
  ASSERT_TRUE(batch.ok()) << batch.error().ToString();
  EXPECT_GT(batch->size(), 200u);
  for (const char* foreign : {"add rule inet terway in_a ip saddr 1.2.3.4 accept",
                              "add rule inet terway in_a icmp type 8 accept",
                              "add rule inet terway in_a tcp dport != { 80, 443 } accept",
                              "add element inet terway t_x { 1.2.3.4 . tcp . 80 }",
                              "add set inet terway s_b { type ipv4_addr; }", "add table inet terway",
                              "add rule ip filter input accept"}) {
    auto r = EncodeNftBatch(foreign);
    ASSERT_FALSE(r.ok()) << foreign;
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported) << foreign;
  }
}

}  // namespace
}  // namespace terway::policy
