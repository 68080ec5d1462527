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

TEST(NetnsRoot, SpawnedThreadLivesInTheNamespace) {
  TERWAY_REQUIRE_ROOT();
  std::string name = "tnsp" + testing::UniqueSuffix();
  struct Guard {
    std::string n;
    ~Guard() { (void)DeleteNamedNetns(n); }
  } guard{name};
  ASSERT_TRUE(CreateNamedNetns(name).ok());
  // A link only this namespace has, seen from the spawned thread.
  {
    auto h = Handle::OpenIn(name);
    ASSERT_TRUE(h.ok());
    VethSpec spec;
    spec.name = "sp0";
    spec.peer_name = "sp1";
    ASSERT_TRUE(h->CreateVeth(spec).ok());
  }
  bool saw = false;
  auto t = SpawnInNetns(name, [&] {
    auto h = Handle::Open();
    saw = h.ok() && h->LinkExists("sp0");
  });
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  t->join();
  EXPECT_TRUE(saw);
  auto here = Handle::Open();
  ASSERT_TRUE(here.ok());
  EXPECT_FALSE(here->LinkExists("sp0"));

  auto bad = SpawnInNetns("tnsp-missing-" + testing::UniqueSuffix(), [] {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace terway::netlink
