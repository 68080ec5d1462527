// Adopt on a dual-stack node after a lost database: the pool re-read the
// cloud and paired its IPv4s and IPv6s its own way, which need not be the
// pairs the running sandboxes were given. Adopting (IPv4, IPv6) as a sandbox
// holds it re-pairs the slot -- a swap with the idle slot that had the IPv6,
// or the ENI's spare -- and refuses (changing nothing) an IPv6 another pod
// holds or one of another ENI, so no IPv6 is ever recorded for two pods.
// Store writes that fail leave memory and the database alike.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "dual_stack_pool_fixture.h"
#include "ipam/exclusive.h"
#include "store/sqlite.h"

namespace terway::ipam {
namespace {

using namespace dual_stack_test;  // NOLINT: the fixture and its helpers

class DualStackAdopt : public DualStackPoolTest {
 protected:
  // terwayd restarts with an empty database: the pool knows only what the
  // cloud lists, and pairs it as it pleases.
  void LoseDatabase() {
    pool_.reset();
    store_.reset();
    for (const char* f : {"state.db", "state.db-wal", "state.db-shm"}) fs::remove(dir_ / f);
    auto st = store::StateStore::Open((dir_ / "state.db").string());
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    Restart();
  }
  // The pool's slots in address order, after LoseDatabase.
  std::vector<std::string> Slots() {
    std::vector<std::string> out;
    for (const auto& [v4, v6] : Pairs()) {
      if (!v6.empty()) out.push_back(v4);
    }
    return out;
  }
  PodIdentity Sandbox(const std::string& name) {
    PodIdentity p = Pod(name);
    p.origin = store::kOriginRuntime;
    return p;
  }
  std::map<std::string, std::string> StoredPairs() {
    std::map<std::string, std::string> out;
    auto ips = store_->ListIps();
    EXPECT_TRUE(ips.ok());
    for (const auto& r : *ips) out[r.ip] = r.ipv6;
    return out;
  }
  // IPv4 -> IPv6 of every allocation in the store.
  std::map<std::string, std::string> StoredAllocations() {
    std::map<std::string, std::string> out;
    auto all = store_->ListAllocations();
    EXPECT_TRUE(all.ok());
    for (const auto& a : *all) out[a.ip] = a.ipv6;
    return out;
  }
  std::map<std::string, std::string> InUse() {
    std::map<std::string, std::string> out;
    for (const auto& a : pool_->Contents().addresses) {
      if (a.use == IpUse::kInUse) out[a.ip] = a.ipv6;
    }
    return out;
  }
  // What a restarted daemon would load is what the pool serves from.
  void ExpectMemoryMatchesStore() {
    EXPECT_EQ(Pairs(), StoredPairs());
    EXPECT_EQ(InUse(), StoredAllocations());
    std::set<std::string> paired;
    for (const auto& [v4, v6] : Pairs()) {
      if (!v6.empty()) {
        EXPECT_TRUE(paired.insert(v6).second) << v6 << " paired twice";
      }
    }
    for (const auto& v6 : SpareIpv6()) EXPECT_EQ(paired.count(v6), 0u) << v6 << " both spare and paired";
    ExpectCloudMatchesPool();
  }
  // A write the database refuses (a full disk, an I/O error), through a
  // trigger on a second connection: the pool's store sees it at once.
  void FailWrites(const std::string& name, const std::string& trigger_body) {
    auto db = store::Database::Open((dir_ / "state.db").string());
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    Status st = (*db)->Exec(fmt::format("CREATE TRIGGER {} {} BEGIN SELECT RAISE(ABORT, 'injected write failure'); END",
                                        name, trigger_body));
    ASSERT_TRUE(st.ok()) << st.error().ToString();
  }
  void HealWrites(const std::string& name) {
    auto db = store::Database::Open((dir_ / "state.db").string());
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("DROP TRIGGER " + name).ok());
  }
};

// The sandboxes hold the pairs in a rotation of the pool's: a -> b's IPv6,
// b -> c's, c -> a's. Each adoption swaps with the idle slot that had the
// IPv6; the last finds its pair in place.
TEST_F(DualStackAdopt, LostDatabaseSwapsPairsSoEachSandboxKeepsItsOwn) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  const auto slots = Slots();
  ASSERT_GE(slots.size(), 4u);
  auto p = Pairs();  // as the pool paired them on re-reading the cloud
  const std::string a = slots[0], b = slots[1], c = slots[2], d = slots[3];
  const std::map<std::string, std::string> truth = {{a, p[b]}, {b, p[c]}, {c, p[a]}};

  auto got_a = pool_->Adopt(Sandbox("a"), a, p[b]);
  ASSERT_TRUE(got_a.ok()) << got_a.error().ToString();
  EXPECT_EQ(got_a->ipv6, p[b]);
  EXPECT_EQ(Pairs()[b], p[a]) << "the swap gives b a's old IPv6";
  ASSERT_TRUE(pool_->Adopt(Sandbox("b"), b, p[c]).ok());
  ASSERT_TRUE(pool_->Adopt(Sandbox("c"), c, p[a]).ok());
  // A sandbox without a known IPv6 (adopted last) gets its slot's pair.
  auto got_d = pool_->Adopt(Sandbox("d"), d, "");
  ASSERT_TRUE(got_d.ok());
  EXPECT_EQ(got_d->ipv6, p[d]);

  auto expected = truth;
  expected[d] = p[d];
  EXPECT_EQ(StoredAllocations(), expected) << "every pod recorded with its own pair";
  for (const auto& [name, v4] : std::map<std::string, std::string>{{"a", a}, {"b", b}, {"c", c}}) {
    auto rec = pool_->Get("c-" + name);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    EXPECT_EQ((*rec)->ipv6, truth.at(v4)) << name;
  }
  ExpectMemoryMatchesStore();

  // New pods never get a sandbox's IPv6, also after a restart.
  Restart();
  EXPECT_EQ(StoredAllocations(), expected);
  std::set<std::string> handed;
  for (const auto& [v4, v6] : expected) handed.insert(v6);
  for (int i = 0; i < 2; ++i) {
    auto got = pool_->Allocate(Pod("new" + std::to_string(i)), milliseconds(0));
    ASSERT_TRUE(got.ok()) << got.error().ToString();
    EXPECT_TRUE(handed.insert(got->ipv6).second) << got->ipv6 << " handed out twice";
  }
  ExpectMemoryMatchesStore();
}

// The slot that had the IPv6 takes the adopted slot's old one -- or, when
// the adopted slot had none, is left unpaired (served by no pod) until a
// refill pairs it.
TEST_F(DualStackAdopt, TheSlotThatHadTheIpv6IsLeftUnpairedWhenThereIsNothingToSwap) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  const auto slots = Slots();
  auto p = Pairs();
  const std::string a = slots[0], b = slots[1];
  cloud_->DropIpv6BehindOurBack(p[a]);
  ASSERT_TRUE(pool_->Reconcile().ok());
  ASSERT_EQ(Pairs()[a], "");

  ASSERT_TRUE(pool_->Adopt(Sandbox("a"), a, p[b]).ok());
  EXPECT_EQ(Pairs()[a], p[b]);
  EXPECT_EQ(Pairs()[b], "");
  EXPECT_EQ(pool_->Stats().unpaired, 1);
  ExpectMemoryMatchesStore();
  ASSERT_TRUE(pool_->RefillOnce().ok());
  EXPECT_NE(Pairs()[b], "") << "paired again by the refill";
  ExpectMemoryMatchesStore();
}

// An IPv6 the pool holds as a spare of the slot's ENI is taken; the slot's
// old IPv6 becomes a spare.
TEST_F(DualStackAdopt, TakesTheEnisSpareIpv6) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  const auto slots = Slots();
  auto p = Pairs();
  const std::string a = slots[0];
  const std::string spare = cloud_->AddIpv6BehindOurBack(EniOfIpv4(a));
  ASSERT_FALSE(spare.empty());
  ASSERT_TRUE(pool_->Reconcile().ok());
  ASSERT_EQ(SpareIpv6(), (std::set<std::string>{spare}));

  auto got = pool_->Adopt(Sandbox("a"), a, spare);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->ipv6, spare);
  EXPECT_EQ(StoredAllocations()[a], spare);
  EXPECT_EQ(SpareIpv6(), (std::set<std::string>{p[a]}));
  ExpectMemoryMatchesStore();
}

// Two sandboxes claim one IPv6: the second adoption is refused, naming the
// pod that holds it, and changes nothing.
TEST_F(DualStackAdopt, RefusesAnIpv6AnotherPodHolds) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  const auto slots = Slots();
  auto p = Pairs();
  const std::string a = slots[0], b = slots[1];
  ASSERT_TRUE(pool_->Adopt(Sandbox("a"), a, p[a]).ok());
  const auto pairs = Pairs();
  const auto stored = StoredPairs();

  auto refused = pool_->Adopt(Sandbox("b"), b, p[a]);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  const std::string msg = refused.error().ToString();
  EXPECT_NE(msg.find("c-a"), std::string::npos) << msg;
  EXPECT_NE(msg.find(a), std::string::npos) << msg;
  EXPECT_NE(msg.find(b), std::string::npos) << msg;
  EXPECT_EQ(Pairs(), pairs);
  EXPECT_EQ(StoredPairs(), stored);
  EXPECT_EQ(StoredAllocations(), (std::map<std::string, std::string>{{a, p[a]}}));
  // A repeated adoption of the same sandbox is no conflict; with another
  // IPv6 it is.
  EXPECT_TRUE(pool_->Adopt(Sandbox("a"), a, p[a]).ok());
  EXPECT_EQ(pool_->Adopt(Sandbox("a"), a, p[b]).error().code, ErrorCode::kConflict);
  ExpectMemoryMatchesStore();
}

// A pair is always one ENI's: an IPv6 of another ENI (paired there or
// spare) is refused, an IPv6 the cloud does not list is not found; nothing
// changes either way.
TEST_F(DualStackAdopt, RefusesAnIpv6OfAnotherEniOrUnknownToTheCloud) {
  Make(8, 8);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  std::map<std::string, std::vector<std::string>> by_eni;
  for (const auto& v4 : Slots()) by_eni[EniOfIpv4(v4)].push_back(v4);
  ASSERT_EQ(by_eni.size(), 2u) << "the test needs two ENIs";
  const std::string a = by_eni.begin()->second[0];
  const std::string x = by_eni.rbegin()->second[0];
  const std::string other_eni = by_eni.rbegin()->first;
  auto p = Pairs();
  const std::string spare = cloud_->AddIpv6BehindOurBack(other_eni);
  ASSERT_TRUE(pool_->Reconcile().ok());
  ASSERT_EQ(SpareIpv6().count(spare), 1u);
  const auto pairs = Pairs();
  const auto stored = StoredPairs();

  for (const std::string& v6 : {p[x], spare}) {
    auto refused = pool_->Adopt(Sandbox("a"), a, v6);
    ASSERT_FALSE(refused.ok()) << v6;
    EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
    EXPECT_NE(refused.error().ToString().find(other_eni), std::string::npos) << refused.error().ToString();
    EXPECT_NE(refused.error().ToString().find("one ENI"), std::string::npos) << refused.error().ToString();
  }
  auto unknown = pool_->Adopt(Sandbox("a"), a, "fd00:ffff::99");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(pool_->Adopt(Sandbox("a"), a, "not-an-ip").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Pairs(), pairs);
  EXPECT_EQ(StoredPairs(), stored);
  EXPECT_TRUE(StoredAllocations().empty());
  EXPECT_EQ(SpareIpv6().count(spare), 1u);
  ExpectMemoryMatchesStore();
}

// The store refuses a write in the middle of a swap: the undo restores
// both slots; if the undo is refused too, memory follows the store (the
// other slot unpaired, its IPv6 a spare); a refused allocation row leaves
// the new pairs in both. Either way nothing is recorded for the pod, and
// memory and database agree.
TEST_F(DualStackAdopt, FailedStoreWritesLeaveMemoryAndDatabaseAlike) {
  Make(6, 6);
  ASSERT_TRUE(pool_->RefillOnce().ok());
  LoseDatabase();
  const auto slots = Slots();
  auto p = Pairs();
  const std::string a = slots[0], b = slots[1];

  // The adopted slot's pairing is refused: both slots as they were.
  FailWrites("fail_a", fmt::format("BEFORE UPDATE OF ipv6 ON ips WHEN NEW.ip = '{}' AND NEW.ipv6 <> ''", a));
  auto failed = pool_->Adopt(Sandbox("a"), a, p[b]);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().ToString().find("injected write failure"), std::string::npos) << failed.error().ToString();
  EXPECT_EQ(Pairs(), p);
  ExpectMemoryMatchesStore();

  // ... and the undo too: b is unpaired in both, its IPv6 a spare.
  FailWrites("fail_b", fmt::format("BEFORE UPDATE OF ipv6 ON ips WHEN NEW.ip = '{}' AND NEW.ipv6 <> ''", b));
  ASSERT_FALSE(pool_->Adopt(Sandbox("a"), a, p[b]).ok());
  EXPECT_EQ(Pairs()[a], p[a]);
  EXPECT_EQ(Pairs()[b], "");
  EXPECT_EQ(SpareIpv6(), (std::set<std::string>{p[b]}));
  EXPECT_EQ(pool_->Stats().unpaired, 1);
  ExpectMemoryMatchesStore();
  HealWrites("fail_a");
  HealWrites("fail_b");

  // The allocation row is refused: the slot is the sandbox's pair in both
  // (taken from the spares), the pod is not recorded; a retry records it.
  FailWrites("fail_alloc", "BEFORE INSERT ON allocations");
  ASSERT_FALSE(pool_->Adopt(Sandbox("a"), a, p[b]).ok());
  EXPECT_EQ(Pairs()[a], p[b]);
  EXPECT_TRUE(StoredAllocations().empty());
  ExpectMemoryMatchesStore();
  HealWrites("fail_alloc");
  auto got = pool_->Adopt(Sandbox("a"), a, p[b]);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(StoredAllocations(), (std::map<std::string, std::string>{{a, p[b]}}));
  ExpectMemoryMatchesStore();
}

// Exclusive ENI: the pod's IPv6 is its ENI's; a sandbox claiming another
// one is refused.
TEST(DualStackExclusiveAdopt, ThePodsIpv6MustBeItsEnis) {
  auto dir = fs::temp_directory_path() / ("terway-dual-excl-adopt-" + terway::testing::UniqueSuffix());
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } cleanup{dir};
  FakeCloud cloud({4, 10, 6}, "i-x", {{"vsw-a", 100}});
  FakeClock clock;
  PoolOptions o;
  o.instance_id = "i-x";
  o.instance_type = "ecs.test";
  o.vswitch_ids = {"vsw-a"};
  o.config.eni_tags["creator"] = "terway";
  o.config.ip_stack = IpStack::kDual;
  IpAllocation p1;
  {
    auto st = store::StateStore::Open((dir / "before.db").string());
    ASSERT_TRUE(st.ok());
    auto a = ExclusiveEniAllocator::Create(o, &cloud, st->get(), &clock);
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    auto got = (*a)->Allocate(Pod("p1"));
    ASSERT_TRUE(got.ok()) << got.error().ToString();
    p1 = *got;
  }
  const std::string extra = cloud.AddIpv6BehindOurBack(p1.eni_id);  // the ENI's second IPv6
  ASSERT_FALSE(extra.empty());
  auto st = store::StateStore::Open((dir / "lost.db").string());  // the database is lost
  ASSERT_TRUE(st.ok());
  auto a = ExclusiveEniAllocator::Create(o, &cloud, st->get(), &clock);
  ASSERT_TRUE(a.ok());
  auto refused = (*a)->Adopt(Pod("p1"), p1.ip, "fd00:ffff::1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  auto none = (*st)->FindByContainer("c-p1");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  // The sandbox's own IPv6 is recorded, also when it is not the ENI's first.
  auto got = (*a)->Adopt(Pod("p1"), p1.ip, extra);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->ipv6, extra);
  auto rec = (*st)->FindByContainer("c-p1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->ipv6, extra);
}

}  // namespace
}  // namespace terway::ipam
