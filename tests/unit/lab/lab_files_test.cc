// The lab's files are owner-only from their creation whatever the caller's
// umask (the tests run with umask 0, so only the creation mode protects
// them), an older lab's files are tightened, and a lock whose file is
// removed under a waiter is not held twice.
#include "tools/lab/cluster/lab_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "tools/lab/cluster/process.h"

namespace terway::lab {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class LabFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    old_umask_ = umask(0);  // what a careless caller could have
    char tmpl[] = "/tmp/lab-files-test-XXXXXX";
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
    if (lstat(p.c_str(), &st) != 0) return 01000;  // "missing": matches no mode
    return st.st_mode & 07777;
  }
  // A file as an older terway-lab (or a umask-0 open) wrote it.
  static void WriteOpen(const std::string& p, mode_t mode, const std::string& text = "x") {
    std::ofstream(p) << text;
    chmod(p.c_str(), mode);
  }

  mode_t old_umask_ = 022;
  std::string dir_;
};

TEST_F(LabFiles, AtomicWritesAreOwnerOnlyEvenOverAWorldReadableLeftover) {
  const std::string path = dir_ + "/lab.json";
  WriteOpen(path, 0644, "old");
  WriteOpen(path + ".tmp", 0666, "stale");  // an interrupted write of an older lab
  ASSERT_TRUE(WriteTextFileAtomic(path, "secret").ok());
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(ReadTextFile(path), "secret");
  EXPECT_EQ(Mode(path + ".tmp"), 01000u) << "the temp file is gone";
  ASSERT_TRUE(WriteTextFileAtomic(dir_ + "/fresh.yaml", "key").ok());
  EXPECT_EQ(Mode(dir_ + "/fresh.yaml"), 0600u);
}

TEST_F(LabFiles, DirectoriesAreCreated0700AndLogs0600) {
  ASSERT_TRUE(MakePrivateDirs(dir_ + "/lab/nodes/node1/net.d").ok());
  for (const char* d : {"/lab", "/lab/nodes", "/lab/nodes/node1", "/lab/nodes/node1/net.d"}) {
    EXPECT_EQ(Mode(dir_ + d), 0700u) << d;
  }
  EXPECT_TRUE(MakePrivateDirs(dir_ + "/lab").ok()) << "an existing directory is fine";
  WriteOpen(dir_ + "/afile", 0600);
  EXPECT_FALSE(MakePrivateDirs(dir_ + "/afile").ok());
  auto fd = OpenPrivateLog(dir_ + "/lab/terwayd.log");
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_TRUE(fcntl(*fd, F_GETFD) & FD_CLOEXEC);
  close(*fd);
  EXPECT_EQ(Mode(dir_ + "/lab/terwayd.log"), 0600u);
}

TEST_F(LabFiles, AnOlderLabIsTightenedWithoutFollowingLinksOrTouchingOthersFiles) {
  const std::string lab = dir_ + "/lab";
  fs::create_directories(lab + "/nodes/node1/net.d");
  fs::create_directories(lab + "/vpcsim");
  for (const char* d : {"", "/nodes", "/nodes/node1", "/nodes/node1/net.d", "/vpcsim"}) {
    chmod((lab + d).c_str(), 0755);
  }
  for (const char* f : {"/lab.json", "/world.yaml", "/kubeconfig", "/vpcsim.log", "/nodes/node1/eni.json",
                        "/nodes/node1/net.d/10-terway.conflist", "/vpcsim/vpcsim.db", "/vpcsim/endpoint"}) {
    WriteOpen(lab + f, 0644);
  }
  WriteOpen(lab + "/notes.txt", 0644);  // the user's, in a --lab directory
  WriteOpen(dir_ + "/outside", 0644);
  fs::create_symlink(dir_ + "/outside", lab + "/nodes/node1/link");
  ASSERT_TRUE(TightenLabFiles(lab).ok());
  for (const char* d : {"", "/nodes", "/nodes/node1", "/nodes/node1/net.d", "/vpcsim"}) {
    EXPECT_EQ(Mode(lab + d), 0700u) << d;
  }
  for (const char* f : {"/lab.json", "/world.yaml", "/kubeconfig", "/vpcsim.log", "/nodes/node1/eni.json",
                        "/nodes/node1/net.d/10-terway.conflist", "/vpcsim/vpcsim.db", "/vpcsim/endpoint"}) {
    EXPECT_EQ(Mode(lab + f), 0600u) << f;
  }
  EXPECT_EQ(Mode(lab + "/notes.txt"), 0644u) << "not the lab's";
  EXPECT_EQ(Mode(dir_ + "/outside"), 0644u) << "a symlink was followed";
}

// True once some process waits for a flock on the file with this inode (a
// "-> FLOCK ... <major>:<minor>:<inode> ..." line in /proc/locks).
bool SomeoneWaitsForTheFlockOf(ino_t inode) {
  std::ifstream in("/proc/locks");
  const std::string id = ":" + std::to_string(inode) + " ";
  for (std::string line; std::getline(in, line);) {
    if (line.find("-> FLOCK") != std::string::npos && line.find(id) != std::string::npos) return true;
  }
  return false;
}

TEST_F(LabFiles, AWaiterWhoseLockFileWasRemovedLocksTheNewFile) {
  const std::string path = dir_ + "/lab.lock";
  auto first = FileLock::Acquire(path);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(Mode(path), 0600u);
  std::atomic<bool> got{false};
  std::optional<FileLock> second;
  std::thread waiter([&] {
    auto l = FileLock::Acquire(path);
    if (l.ok()) second.emplace(std::move(l).value());
    got = true;
  });
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  ASSERT_TRUE(WaitUntil([&] { return SomeoneWaitsForTheFlockOf(st.st_ino); }, 10s, 5ms));
  // As `down` does: the file goes while its holder still holds it.
  unlink(path.c_str());
  { FileLock gone = std::move(first).value(); }
  waiter.join();
  ASSERT_TRUE(second.has_value());
  // The waiter must hold the file now at that path, or a third party could
  // lock it beside the waiter.
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << "the waiter did not create the lock file again";
  EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0) << "two holders of one lock";
  close(fd);
}

}  // namespace
}  // namespace terway::lab
