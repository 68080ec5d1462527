// The vSwitch facts the pool and the exclusive-ENI allocator both hand to
// OrderVSwitches.
#include "ipam/vswitch_ledger.h"

#include <gtest/gtest.h>

namespace terway::ipam {
namespace {

using std::chrono::seconds;

cloud::VSwitch Described(const std::string& id, int64_t available) {
  cloud::VSwitch v;
  v.vswitch_id = id;
  v.available_ip_address_count = available;
  return v;
}

TEST(VSwitchLedger, ViewsFollowTheCloudOurUseAndExhaustion) {
  VSwitchLedger l({"vsw-a", "vsw-b", "vsw-c"});
  Clock::TimePoint t0 = Clock::TimePoint{} + seconds(1000);
  EXPECT_TRUE(l.RefreshDue(t0, seconds(120)));  // never described
  auto unknown = l.Views(t0);
  ASSERT_EQ(unknown.size(), 3u);
  EXPECT_GT(unknown[0].available_ips, 0);  // assume room until told

  l.Record({Described("vsw-a", 5), Described("vsw-b", 50), Described("vsw-c", 0)}, t0);
  EXPECT_FALSE(l.RefreshDue(t0 + seconds(119), seconds(120)));
  EXPECT_TRUE(l.RefreshDue(t0 + seconds(120), seconds(120)));
  EXPECT_EQ(OrderVSwitches(l.Views(t0), VSwitchSelectionPolicy::kMost, 0),
            (std::vector<std::string>{"vsw-b", "vsw-a"}));
  EXPECT_EQ(OrderVSwitches(l.Views(t0), VSwitchSelectionPolicy::kListOrder, 0),
            (std::vector<std::string>{"vsw-a", "vsw-b"}));

  l.Consume("vsw-b", 48);
  EXPECT_EQ(OrderVSwitches(l.Views(t0), VSwitchSelectionPolicy::kMost, 0),
            (std::vector<std::string>{"vsw-a", "vsw-b"}));
  l.MarkExhausted("vsw-a", t0 + seconds(300));
  EXPECT_EQ(OrderVSwitches(l.Views(t0), VSwitchSelectionPolicy::kMost, 0), (std::vector<std::string>{"vsw-b"}));
  // The pause ends, but the count stays 0 until the cloud says otherwise.
  EXPECT_EQ(OrderVSwitches(l.Views(t0 + seconds(301)), VSwitchSelectionPolicy::kMost, 0),
            (std::vector<std::string>{"vsw-b"}));
  l.Record({Described("vsw-a", 7)}, t0 + seconds(301));
  EXPECT_EQ(OrderVSwitches(l.Views(t0 + seconds(301)), VSwitchSelectionPolicy::kMost, 0),
            (std::vector<std::string>{"vsw-a", "vsw-b"}));
}

TEST(VSwitchLedger, NoCandidatesNeverAsksTheCloud) {
  VSwitchLedger l({});
  EXPECT_FALSE(l.RefreshDue(Clock::TimePoint{}, seconds(120)));
  EXPECT_TRUE(l.Views(Clock::TimePoint{}).empty());
}

}  // namespace
}  // namespace terway::ipam
