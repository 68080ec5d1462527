// Decoding nft's JSON listings, which is how the table learns what the
// kernel holds (whole replacement, Verify) and reads counters. The
// listings are nft 1.0.6's own output; the kernel round trip is proven in
// tests/root/policy.
#include "policy/nft_table.h"

#include <gtest/gtest.h>

namespace terway::policy {
namespace {

constexpr const char* kMeta =
    R"({"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}})";

std::string Listing(const std::string& items) { return std::string(R"({"nftables": [)") + kMeta + items + "]}"; }

TEST(NftTable, ListedObjectsAreOursOnly) {
  // `list chains inet` names every inet table's chains: another table's
  // `forward` must not count as ours.
  auto chains = ParseListedObjects(Listing(
      R"(, {"chain": {"family": "inet", "table": "terway", "name": "in_1", "handle": 1}},
           {"chain": {"family": "inet", "table": "terway", "name": "forward", "handle": 2, "type": "filter",
                      "hook": "forward", "prio": 0, "policy": "accept"}},
           {"chain": {"family": "inet", "table": "other", "name": "eg_9", "handle": 1}})"));
  ASSERT_TRUE(chains.ok()) << chains.error().ToString();
  EXPECT_EQ(*chains, (NftObjects{{"forward", "in_1"}, {}, {}, {}}));

  auto sets_maps_counters = ParseListedObjects(Listing(
      R"(, {"set": {"family": "inet", "name": "s_1", "table": "terway", "type": "ipv4_addr", "handle": 4,
                    "flags": ["interval"], "elem": [{"range": ["198.18.1.1", "198.18.1.3"]}]}},
           {"map": {"family": "inet", "name": "pod_ingress", "table": "terway", "type": "ipv4_addr", "handle": 5,
                    "map": "verdict"}},
           {"counter": {"family": "inet", "name": "c1", "table": "terway", "handle": 3, "packets": 0, "bytes": 0}},
           {"set": {"family": "inet", "name": "s_9", "table": "other", "type": "ipv4_addr", "handle": 4}})"));
  ASSERT_TRUE(sets_maps_counters.ok()) << sets_maps_counters.error().ToString();
  EXPECT_EQ(*sets_maps_counters, (NftObjects{{}, {"s_1"}, {"pod_ingress"}, {"c1"}}));

  // No table: only the metainfo.
  auto none = ParseListedObjects(Listing(""));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, NftObjects{});
}

TEST(NftTable, ListedCountersWithTheirValues) {
  auto counters = ParseListedCounters(Listing(
      R"(, {"counter": {"family": "inet", "name": "c1", "table": "terway", "handle": 3, "packets": 7, "bytes": 420}},
           {"counter": {"family": "inet", "name": "in_1_drop", "table": "terway", "handle": 6}},
           {"counter": {"family": "inet", "table": "terway", "handle": 7, "packets": 1, "bytes": 1}})"));
  ASSERT_TRUE(counters.ok()) << counters.error().ToString();
  ASSERT_EQ(counters->size(), 2u);  // the nameless entry is skipped
  EXPECT_EQ((*counters)[0].name, "c1");
  EXPECT_EQ((*counters)[0].packets, 7u);
  EXPECT_EQ((*counters)[0].bytes, 420u);
  EXPECT_EQ((*counters)[1].name, "in_1_drop");
  EXPECT_EQ((*counters)[1].packets, 0u);
  EXPECT_EQ((*counters)[1].bytes, 0u);
}

TEST(NftTable, OutputThatIsNotAListingIsAnError) {
  for (const char* bad : {"", "not json", R"({"other": []})", R"({"nftables": {}})"}) {
    auto objects = ParseListedObjects(bad);
    ASSERT_FALSE(objects.ok()) << bad;
    EXPECT_EQ(objects.error().code, ErrorCode::kInternal);
    EXPECT_EQ(objects.error().ToString(), "unexpected nft JSON output");
    EXPECT_FALSE(ParseListedCounters(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace terway::policy
