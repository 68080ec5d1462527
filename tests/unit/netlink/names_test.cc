#include "netlink/names.h"

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace terway::netlink {
namespace {

TEST(HashedLinkName, FitsTheKernelLimitAndKeepsThePrefix) {
  for (const std::string& id : std::vector<std::string>{"", "eni-1", "eni-2ze8f3k1x9abcdefghijklmnop", std::string(300, 'x')}) {
    std::string n = HashedLinkName("en-", id);
    EXPECT_EQ(n.size(), kMaxLinkNameLen) << id;
    EXPECT_EQ(n.rfind("en-", 0), 0u) << n;
    EXPECT_TRUE(ValidateLinkName(n).ok()) << n;
  }
}

TEST(HashedLinkName, LongPrefixIsCutToLeaveAtLeast32BitsOfHash) {
  std::string n = HashedLinkName("averyverylongprefix", "eni-1");
  EXPECT_EQ(n.size(), kMaxLinkNameLen);
  EXPECT_EQ(n.substr(0, 7), "averyve");
}

// The names are a contract with the kernel state of a running world: a
// restarted vpcsim must find the links it made before. Changing the hash
// breaks that, so its output is pinned.
TEST(HashedLinkName, IsStableAcrossReleases) {
  EXPECT_EQ(HashedLinkName("en-", "eni-a"), "en-42a95b4a8537");
  EXPECT_EQ(HashedLinkName("br-", "vsw-2zeabc"), "br-b751ab11b52e");
}

TEST(HashedLinkName, SimilarIdsDoNotCollide) {
  std::set<std::string> names;
  for (int i = 0; i < 20000; ++i) names.insert(HashedLinkName("en-", "eni-2ze" + std::to_string(i)));
  EXPECT_EQ(names.size(), 20000u);
  // Ids differing only in their last character differ in the first hex digits
  // too (the hash avalanches), so truncation keeps them apart.
  std::string a = HashedLinkName("en-", "eni-0000a");
  std::string b = HashedLinkName("en-", "eni-0000b");
  EXPECT_NE(a.substr(3, 4), b.substr(3, 4));
}

TEST(ValidateLinkName, RejectsWhatTheKernelRejects) {
  EXPECT_TRUE(ValidateLinkName("eth0").ok());
  EXPECT_TRUE(ValidateLinkName("a23456789012345").ok());
  for (std::string bad : {"", "a234567890123456", "a/b", "a:b", "a b", ".", ".."}) {
    Status s = ValidateLinkName(bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace terway::netlink
