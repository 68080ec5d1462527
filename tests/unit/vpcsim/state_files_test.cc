// vpcsim's state directory holds secrets (issued STS credentials, the way to
// the unauthenticated admin API): 0700, and every file in it 0600 from its
// creation, whatever the umask (the tests run with umask 0); an older
// vpcsim's world-readable state is tightened when it is opened again.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tools/vpcsim/state_store.h"

namespace terway::vpcsim {
namespace {

namespace fs = std::filesystem;

class StateFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    old_umask_ = umask(0);
    char tmpl[] = "/tmp/vpcsim-state-files-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    umask(old_umask_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static unsigned Mode(const std::string& p) {
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) return 01000;  // missing: matches no mode
    return st.st_mode & 07777;
  }
  mode_t old_umask_ = 022;
  std::string dir_;
};

TEST_F(StateFiles, ANewStateIsOwnerOnlyFromTheStart) {
  const std::string state = dir_ + "/lab/vpcsim";
  auto store = StateStore::Open(state);
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  // A write makes SQLite create its WAL and shared-memory files.
  ASSERT_TRUE((*store)->SetMeta("fabric", "none").ok());
  EXPECT_EQ(Mode(dir_ + "/lab"), 0700u);
  EXPECT_EQ(Mode(state), 0700u);
  for (const char* f : {"/vpcsim.db", "/vpcsim.db-wal", "/vpcsim.db-shm"}) {
    EXPECT_EQ(Mode(state + f), 0600u) << f;
  }
}

TEST_F(StateFiles, AnOlderWorldReadableStateIsTightenedOnOpen) {
  const std::string state = dir_ + "/vpcsim";
  {
    auto store = StateStore::Open(state);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    ASSERT_TRUE((*store)->SetMeta("world_name", "old").ok());
  }
  // What an older vpcsim left: SQLite's 0644 and a 0755 directory.
  chmod(state.c_str(), 0755);
  std::ofstream(state + "/endpoint") << "127.0.0.1:1\n";
  for (const char* f : {"/vpcsim.db", "/endpoint"}) chmod((state + f).c_str(), 0644);
  ASSERT_TRUE(PrepareStateDir(state).ok());
  EXPECT_EQ(Mode(state), 0700u);
  EXPECT_EQ(Mode(state + "/vpcsim.db"), 0600u);
  EXPECT_EQ(Mode(state + "/endpoint"), 0600u);
  auto again = StateStore::Open(state);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  auto snap = (*again)->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->meta["world_name"], "old") << "tightening kept the state";
}

// A state written before ENIs carried a resource group opens, keeps its ENIs
// (in the default group), and stores a group from then on.
TEST_F(StateFiles, AnOlderSchemaGainsTheResourceGroupColumn) {
  const std::string state = dir_ + "/old";
  ASSERT_TRUE(fs::create_directories(state));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((state + "/vpcsim.db").c_str(), &db), SQLITE_OK);
  const char* old_schema = R"sql(
    CREATE TABLE enis(
      id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL,
      vswitch_id TEXT NOT NULL, instance_id TEXT NOT NULL, device_index INTEGER NOT NULL,
      mac TEXT NOT NULL UNIQUE, primary_ip TEXT NOT NULL, security_groups TEXT NOT NULL,
      tags TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
      created_at INTEGER NOT NULL, transition_at_ms INTEGER NOT NULL);
    INSERT INTO enis VALUES('eni-old', 1, 'Available', 'Secondary', 'vsw-a', '', 0, '00:16:3e:00:00:01',
                            '198.18.0.10', '["sg"]', '[]', '', '', 0, 0);)sql";
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);

  auto store = StateStore::Open(state);
  ASSERT_TRUE(store.ok()) << store.error().ToString();
  auto snap = (*store)->Load();
  ASSERT_TRUE(snap.ok()) << snap.error().ToString();
  ASSERT_EQ(snap->enis.size(), 1u);
  EXPECT_EQ(snap->enis[0].id, "eni-old");
  EXPECT_EQ(snap->enis[0].resource_group_id, "");
  EniRecord e = snap->enis[0];
  e.resource_group_id = "rg-a";
  ASSERT_TRUE((*store)->PutEni(e).ok());
  store->reset();
  auto again = StateStore::Open(state);  // a second open finds the column present
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  auto snap2 = (*again)->Load();
  ASSERT_TRUE(snap2.ok()) << snap2.error().ToString();
  EXPECT_EQ(snap2->enis.at(0).resource_group_id, "rg-a");
}

}  // namespace
}  // namespace terway::vpcsim
