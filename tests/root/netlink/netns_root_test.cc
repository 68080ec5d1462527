#include "netlink/netns.h"

#include <gtest/gtest.h>

#include "netlink/handle.h"
#include "test_util.h"

namespace terway::netlink {
namespace {

TEST(NetnsRoot, CreateRunDelete) {
  TERWAY_REQUIRE_ROOT();
  std::string name = "tnns" + testing::UniqueSuffix();
  struct Guard {
    std::string n;
    ~Guard() { (void)DeleteNamedNetns(n); }
  } guard{name};
  ASSERT_TRUE(CreateNamedNetns(name).ok());
  EXPECT_TRUE(NetnsExists(name));
  auto again = CreateNamedNetns(name);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);

  // Inside, only lo exists; the caller's thread never changed namespace.
  int links = -1;
  Status s = RunInNetns(name, [&]() -> Status {
    auto h = Handle::Open();
    if (!h.ok()) return std::move(h).error();
    auto l = h->ListLinks();
    if (!l.ok()) return std::move(l).error();
    links = static_cast<int>(l->size());
    return Ok();
  });
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(links, 1);
  auto here = Handle::Open();
  ASSERT_TRUE(here.ok());
  EXPECT_TRUE(here->LinkExists("lo"));

  ASSERT_TRUE(DeleteNamedNetns(name).ok());
  EXPECT_FALSE(NetnsExists(name));
  EXPECT_TRUE(DeleteNamedNetns(name).ok()) << "idempotent";
  EXPECT_FALSE(RunInNetns(name, [] { return Ok(); }).ok());
}

}  // namespace
}  // namespace terway::netlink
