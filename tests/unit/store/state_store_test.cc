#include "store/state_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "test_util.h"
#include "unit/store/store_faults.h"

namespace terway::store {
namespace {

namespace fs = std::filesystem;

// A temporary directory removed on scope exit, also when an assertion fails.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("terway-store-" + testing::UniqueSuffix());
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

AllocationRecord Alloc(const std::string& cid, const std::string& pod, const std::string& ip) {
  AllocationRecord r;
  r.container_id = cid;
  r.pod_namespace = "default";
  r.pod_name = pod;
  r.pod_uid = "uid-" + pod;
  r.ip = ip;
  r.eni_id = "eni-1";
  r.ifname = "eth0";
  r.created_unix = 1700000000;
  return r;
}

std::unique_ptr<StateStore> MustOpen(const std::string& path) {
  auto s = StateStore::Open(path);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().ToString());
  return s.ok() ? std::move(s).value() : nullptr;
}

TEST(StateStore, CreatesSchemaAtCurrentVersionAndReopens) {
  TempDir dir;
  {
    auto s = MustOpen(dir.File("state.db"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->SchemaVersion(), kSchemaVersion);
    ASSERT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  }
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->SchemaVersion(), kSchemaVersion);
  auto all = s->ListAllocations();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0], Alloc("c1", "p1", "198.18.0.10"));
}

TEST(StateStore, RefusesDatabaseFromNewerVersion) {
  TempDir dir;
  {
    auto db = Database::Open(dir.File("state.db"));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE schema_version (version INTEGER NOT NULL);"
                            "INSERT INTO schema_version VALUES (99)").ok());
  }
  auto s = StateStore::Open(dir.File("state.db"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(s.error().ToString().find("newer"), std::string::npos) << s.error().ToString();
}

// A database as terwayd with schema 1 left it: the v1 tables (verbatim from
// the released migration 0 -> 1), version 1, one allocation, its ENI and IP.
constexpr const char* kSchemaV1Database = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE enis (
  eni_id       TEXT PRIMARY KEY,
  mac          TEXT NOT NULL,
  vswitch_id   TEXT NOT NULL,
  primary_ip   TEXT NOT NULL,
  is_primary   INTEGER NOT NULL DEFAULT 0,
  created_unix INTEGER NOT NULL
);
CREATE TABLE ips (
  ip              TEXT PRIMARY KEY,
  eni_id          TEXT NOT NULL REFERENCES enis(eni_id) ON DELETE CASCADE,
  idle_since_unix INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ips_eni ON ips(eni_id);
CREATE TABLE allocations (
  container_id  TEXT PRIMARY KEY,
  pod_namespace TEXT NOT NULL,
  pod_name      TEXT NOT NULL,
  pod_uid       TEXT NOT NULL,
  ip            TEXT NOT NULL UNIQUE,
  eni_id        TEXT NOT NULL,
  ifname        TEXT NOT NULL,
  created_unix  INTEGER NOT NULL,
  state         TEXT NOT NULL,
  sticky        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX allocations_pod ON allocations(pod_namespace, pod_name);
CREATE TABLE reservations (
  pod_namespace TEXT NOT NULL,
  pod_name      TEXT NOT NULL,
  ip            TEXT NOT NULL UNIQUE,
  eni_id        TEXT NOT NULL,
  expires_unix  INTEGER NOT NULL,
  PRIMARY KEY (pod_namespace, pod_name)
);
INSERT INTO enis VALUES ('eni-1', '00:16:3e:00:00:01', 'vsw-a', '198.18.0.9', 0, 1700000000);
INSERT INTO ips VALUES ('198.18.0.10', 'eni-1', 0);
INSERT INTO allocations VALUES ('c1', 'default', 'p1', 'uid-p1', '198.18.0.10', 'eni-1', 'eth0',
                                1700000000, 'allocated', 1);
)sql";

TEST(StateStore, MigratesSchemaOneInPlaceKeepingAllocations) {
  TempDir dir;
  {
    auto db = Database::Open(dir.File("state.db"));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec(kSchemaV1Database).ok());
  }
  {
    auto s = MustOpen(dir.File("state.db"));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->SchemaVersion(), kSchemaVersion);
    auto all = s->ListAllocations();
    ASSERT_TRUE(all.ok()) << all.error().ToString();
    ASSERT_EQ(all->size(), 1u);
    AllocationRecord want = Alloc("c1", "p1", "198.18.0.10");
    want.sticky = true;
    EXPECT_EQ((*all)[0], want);  // netns, datapath_mode, bandwidth, host_stack_cidrs unknown ("")
    auto enis = s->ListEnis();
    ASSERT_TRUE(enis.ok());
    ASSERT_EQ(enis->size(), 1u);
    EXPECT_EQ((*enis)[0].mac, "00:16:3e:00:00:01");
    EXPECT_TRUE(s->CheckIntegrity().ok());
    // The new columns work after the migration.
    AllocationRecord c2 = Alloc("c2", "p2", "198.18.0.11");
    c2.netns = "/var/run/netns/p2";
    c2.datapath_mode = "shared";
    c2.host_stack_cidrs = "169.254.20.10/32,172.31.0.0/16";  // schema 4
    ASSERT_TRUE(s->Allocate(c2).ok());
    // Schema 3: the limit is recorded and updated in place.
    ASSERT_TRUE(s->SetBandwidth("c2", R"({"ingress_rate":10000000})").ok());
    auto got = s->FindByContainer("c2");
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->bandwidth, R"({"ingress_rate":10000000})");
    auto gone = s->SetBandwidth("nobody", "{}");
    ASSERT_FALSE(gone.ok());
    EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  }
  // Reopening a migrated database runs no migration again and keeps both.
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  auto c2 = s->FindByContainer("c2");
  ASSERT_TRUE(c2.ok() && c2->has_value());
  EXPECT_EQ((*c2)->netns, "/var/run/netns/p2");
  EXPECT_EQ((*c2)->host_stack_cidrs, "169.254.20.10/32,172.31.0.0/16");
  EXPECT_EQ((*c2)->datapath_mode, "shared");
  auto c1 = s->FindByContainer("c1");
  ASSERT_TRUE(c1.ok() && c1->has_value());
  EXPECT_EQ((*c1)->netns, "");
}

// A database as terwayd with schema 5 left it (the v1 tables plus the
// released migrations 1..5 verbatim, version 5) on an IPv4-only node: an
// idle IP, an allocated IP and a reservation.
std::string SchemaV5Database() {
  std::string sql = kSchemaV1Database;
  sql += R"sql(
UPDATE schema_version SET version = 5;
ALTER TABLE allocations ADD COLUMN netns TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN datapath_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN bandwidth TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN host_stack_cidrs TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN host_veth TEXT NOT NULL DEFAULT '';
INSERT INTO ips VALUES ('198.18.0.11', 'eni-1', 1700000100);
INSERT INTO ips VALUES ('198.18.0.12', 'eni-1', 1700000100);
INSERT INTO reservations VALUES ('default', 'sts-0', '198.18.0.12', 'eni-1', 1700009999);
)sql";
  return sql;
}

// 5 -> 6: the rows of an IPv4-only node stay as they were (no IPv6) and keep
// working; dual-stack pairs and allocations are recorded after it, and the
// schema refuses one IPv6 in two places.
TEST(StateStore, MigratesSchemaFiveToDualStackKeepingIpv4Rows) {
  TempDir dir;
  {
    auto db = Database::Open(dir.File("state.db"));
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec(SchemaV5Database()).ok());
  }
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->SchemaVersion(), 6);
  auto ips = s->ListIps();
  ASSERT_TRUE(ips.ok()) << ips.error().ToString();
  ASSERT_EQ(ips->size(), 3u);
  for (const auto& ip : *ips) EXPECT_EQ(ip.ipv6, "") << ip.ip;
  auto c1 = s->FindByContainer("c1");
  ASSERT_TRUE(c1.ok() && c1->has_value());
  EXPECT_EQ((*c1)->ipv6, "");
  EXPECT_EQ((*c1)->origin, "");
  // IPv4-only rows keep working: release, reservation, allocate.
  ASSERT_TRUE(s->Release("c1", 1700000200, std::nullopt).ok());
  ASSERT_TRUE(s->Allocate(Alloc("c3", "p3", "198.18.0.10")).ok());
  auto res = s->FindReservation({"default", "sts-0"});
  ASSERT_TRUE(res.ok() && res->has_value());

  // Dual stack on the migrated database: pair an idle IPv4, allocate the pair.
  ASSERT_TRUE(s->SetIpv6("198.18.0.11", "2001:db8::11").ok());
  auto taken = s->SetIpv6("198.18.0.12", "2001:db8::11");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::kConflict);
  auto missing = s->SetIpv6("198.18.0.99", "2001:db8::99");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  AllocationRecord dual = Alloc("c4", "p4", "198.18.0.11");
  dual.ipv6 = "2001:db8::11";
  ASSERT_TRUE(s->Allocate(dual).ok());
  // A pod's pair never changes under it.
  auto busy = s->SetIpv6("198.18.0.11", "");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code, ErrorCode::kConflict);
  // One IPv6 never goes to two pods.
  AllocationRecord twice = Alloc("c5", "p5", "198.18.0.13");
  twice.ipv6 = "2001:db8::11";
  EXPECT_FALSE(s->Allocate(twice).ok());
  // IPv4-only allocations ("" IPv6) are not caught by that rule.
  ASSERT_TRUE(s->Allocate(Alloc("c6", "p6", "198.18.0.14")).ok());
  s.reset();

  // Reopened: no migration runs again, the pair and the allocation are kept.
  s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  auto got = s->FindByContainer("c4");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->ipv6, "2001:db8::11");
  ips = s->ListIps();
  ASSERT_TRUE(ips.ok());
  std::map<std::string, std::string> pairs;
  for (const auto& ip : *ips) pairs[ip.ip] = ip.ipv6;
  EXPECT_EQ(pairs["198.18.0.11"], "2001:db8::11");
  EXPECT_EQ(pairs["198.18.0.12"], "");
  // Unpairing an idle slot, and a new row recorded with its pair.
  ASSERT_TRUE(s->Release("c4", 1700000300, std::nullopt).ok());
  ASSERT_TRUE(s->SetIpv6("198.18.0.11", "").ok());
  ASSERT_TRUE(s->AddIps({{"198.18.0.20", "eni-1", 1700000400, "2001:db8::11"}}).ok());
  EXPECT_TRUE(s->CheckIntegrity().ok());
}

TEST(StateStore, UsesWalJournal) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  auto db = Database::Open(dir.File("state.db"));
  ASSERT_TRUE(db.ok());
  auto q = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*q->Step());
  EXPECT_EQ(q->Text(0), "wal");
}

TEST(StateStore, AllocateIsIdempotentPerContainer) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  // A retried ADD with the same container id gets the first IP back, even if
  // the caller proposes another one.
  auto again = s->Allocate(Alloc("c1", "p1", "198.18.0.11"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ip, "198.18.0.10");
  EXPECT_EQ(s->ListAllocations()->size(), 1u);
}

TEST(StateStore, OneIpCannotGoToTwoPods) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  auto second = s->Allocate(Alloc("c2", "p2", "198.18.0.10"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kConflict);
  EXPECT_NE(second.error().ToString().find("198.18.0.10"), std::string::npos);
  // The failed transaction left nothing behind.
  EXPECT_EQ(s->ListAllocations()->size(), 1u);
  EXPECT_FALSE(s->FindByContainer("c2")->has_value());
}

TEST(StateStore, ReleaseIsIdempotentAndMarksIpIdle) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->UpsertEni({"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.5", false, 1}).ok());
  ASSERT_TRUE(s->AddIps({{"198.18.0.10", "eni-1", 100, ""}}).ok());
  ASSERT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  EXPECT_EQ(s->ListIps()->at(0).idle_since_unix, 0);
  auto r = s->Release("c1", 500, std::nullopt);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->ip, "198.18.0.10");
  EXPECT_EQ(s->ListIps()->at(0).idle_since_unix, 500);
  auto r2 = s->Release("c1", 600, std::nullopt);
  ASSERT_TRUE(r2.ok());
  EXPECT_FALSE(r2->has_value());
}

TEST(StateStore, ReleaseWithReservationKeepsIpForThatPodOnly) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->Allocate(Alloc("c1", "web-0", "198.18.0.10")).ok());
  ReservationRecord res{"default", "web-0", "198.18.0.10", "eni-1", 2000};
  ASSERT_TRUE(s->Release("c1", 1000, res).ok());
  auto found = s->FindReservation({"default", "web-0"});
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, res);
  // Another pod cannot take the reserved IP.
  auto other = s->Allocate(Alloc("c2", "web-1", "198.18.0.10"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kConflict);
  // The owner can, and consuming the reservation deletes it atomically.
  ASSERT_TRUE(s->Allocate(Alloc("c3", "web-0", "198.18.0.10"), true).ok());
  EXPECT_FALSE(s->FindReservation({"default", "web-0"})->has_value());
}

TEST(StateStore, ExpireReservationsReturnsOnlyExpired) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutReservation({"ns", "a", "198.18.0.1", "eni-1", 100}).ok());
  ASSERT_TRUE(s->PutReservation({"ns", "b", "198.18.0.2", "eni-1", 200}).ok());
  auto gone = s->ExpireReservations(150);
  ASSERT_TRUE(gone.ok());
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_EQ((*gone)[0].pod_name, "a");
  auto left = s->ListReservations();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].pod_name, "b");
}

TEST(StateStore, EniDeletionRefusedWhileAnIpIsAllocatedAndCascadesIps) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->UpsertEni({"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.5", false, 1}).ok());
  ASSERT_TRUE(s->AddIps({{"198.18.0.5", "eni-1", 1, ""}, {"198.18.0.10", "eni-1", 1, ""}}).ok());
  ASSERT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  auto st = s->DeleteEni("eni-1");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kConflict);
  EXPECT_FALSE(s->RemoveIps({"198.18.0.10"}).ok());
  ASSERT_TRUE(s->Release("c1", 2, std::nullopt).ok());
  ASSERT_TRUE(s->DeleteEni("eni-1").ok());
  EXPECT_TRUE(s->ListEnis()->empty());
  EXPECT_TRUE(s->ListIps()->empty());
  EXPECT_TRUE(s->CheckIntegrity().ok());
}

// The failure seam the pool's tests use (store_faults.h): an armed write
// fails after the first `pass_first` matching ones and its transaction
// leaves the database as it was; other writes and disarmed ones go through.
TEST(StateStore, InjectedWriteFailuresRollBackAndStopWhenCleared) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  auto faults = testing::StoreFaults::Open(dir.File("state.db"));
  ASSERT_TRUE(faults.ok()) << faults.error().ToString();
  ASSERT_TRUE(s->UpsertEni({"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.5", false, 1}).ok());
  ASSERT_TRUE(s->AddIps({{"198.18.0.10", "eni-1", 1, "2001:db8::a"}, {"198.18.0.11", "eni-1", 1, "2001:db8::b"}}).ok());

  ASSERT_TRUE((*faults)->Fail(testing::StoreWrite::kUnpairIpv6, /*pass_first=*/1).ok());
  EXPECT_TRUE(s->SetIpv6("198.18.0.10", "").ok());
  auto failed = s->SetIpv6("198.18.0.11", "");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().ToString().find("injected store failure"), std::string::npos) << failed.error().ToString();
  EXPECT_TRUE(s->SetIpv6("198.18.0.10", "2001:db8::a").ok()) << "pairing is not armed";
  EXPECT_TRUE(s->Allocate(Alloc("c0", "p0", "198.18.0.10")).ok()) << "allocating is not armed";
  ASSERT_TRUE(s->Release("c0", 2, std::nullopt).ok());

  ASSERT_TRUE((*faults)->Fail(testing::StoreWrite::kAllocate).ok());
  EXPECT_FALSE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  EXPECT_TRUE(s->ListAllocations()->empty());
  ASSERT_TRUE((*faults)->Clear().ok());
  EXPECT_TRUE(s->Allocate(Alloc("c1", "p1", "198.18.0.10")).ok());
  EXPECT_TRUE(s->SetIpv6("198.18.0.11", "").ok());

  auto rows = s->ListIps();
  ASSERT_TRUE(rows.ok());
  std::map<std::string, std::string> pairs;
  for (const auto& r : *rows) pairs[r.ip] = r.ipv6;
  EXPECT_EQ(pairs, (std::map<std::string, std::string>{{"198.18.0.10", "2001:db8::a"}, {"198.18.0.11", ""}}));
  EXPECT_TRUE(s->CheckIntegrity().ok());
}

TEST(StateStore, ConcurrentWritersNeverShareAnIp) {
  TempDir dir;
  auto s = MustOpen(dir.File("state.db"));
  ASSERT_TRUE(s);
  // 8 threads race for 20 IPs, each thread trying every IP: every IP must end
  // with exactly one owner.
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        (void)s->Allocate(Alloc(fmt::format("c{}-{}", t, i), fmt::format("p{}-{}", t, i),
                                fmt::format("198.18.1.{}", i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  auto all = s->ListAllocations();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 20u);
  std::set<std::string> ips;
  for (const auto& a : *all) EXPECT_TRUE(ips.insert(a.ip).second) << a.ip;
}

// A child process allocates and releases in a loop until it is SIGKILLed at
// an arbitrary moment; the reopened database must be intact and every
// invariant must hold.
TEST(StateStore, SurvivesKill9DuringWrites) {
  TempDir dir;
  const std::string path = dir.File("state.db");
  {
    auto s = MustOpen(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->UpsertEni({"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.5", false, 1}).ok());
  }
  for (int round = 0; round < 3; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = StateStore::Open(path);
      if (!s.ok()) _exit(2);
      for (int64_t i = 0;; ++i) {
        std::string ip = fmt::format("198.18.2.{}", i % 200);
        std::string cid = fmt::format("r{}-c{}", round, i);
        if (!(*s)->AddIps({{ip, "eni-1", i, ""}}).ok()) _exit(3);
        auto a = (*s)->Allocate(Alloc(cid, fmt::format("p{}", i % 50), ip));
        // The IP may still belong to an earlier pod: that is the invariant
        // doing its job, not a failure.
        if (!a.ok() && a.error().code != ErrorCode::kConflict) _exit(4);
        if (i % 3 == 0) {
          ReservationRecord res{"default", fmt::format("p{}", i % 50), ip, "eni-1", i + 100};
          if (a.ok() && !(*s)->Release(cid, i, res).ok()) _exit(5);
        }
      }
    }
    // Reaps the child even if an assertion below returns early.
    struct ChildGuard {
      pid_t pid;
      bool reaped = false;
      ~ChildGuard() {
        if (reaped) return;
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    } guard{pid};
    // Kill it at a different moment each round, after it has done real work.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + 37 * round));
      auto probe = StateStore::Open(path);
      ASSERT_TRUE(probe.ok());
      if ((*probe)->ListAllocations()->size() > static_cast<size_t>(10 * (round + 1))) break;
    }
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    guard.reaped = true;
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited on its own with " << WEXITSTATUS(status);

    auto s = MustOpen(path);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->CheckIntegrity().ok()) << s->CheckIntegrity().error().ToString();
    auto all = s->ListAllocations();
    ASSERT_TRUE(all.ok());
    EXPECT_FALSE(all->empty());
    std::set<std::string> ips;
    for (const auto& a : *all) EXPECT_TRUE(ips.insert(a.ip).second) << "IP twice: " << a.ip;
    // A reserved IP is never allocated to a different pod.
    auto reservations = s->ListReservations();
    ASSERT_TRUE(reservations.ok());
    for (const auto& r : reservations.value()) {
      for (const auto& a : all.value()) {
        if (a.ip == r.ip) {
          EXPECT_EQ(a.pod_name, r.pod_name) << r.ip;
        }
      }
    }
  }
}

}  // namespace
}  // namespace terway::store
