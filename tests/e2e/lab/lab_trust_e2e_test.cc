// The lab as a trusted piece of the machine, with the real terway-lab: its
// secrets are owner-only from the start (the tests run it with umask 0) and
// an older lab's are tightened; the CNI plugin (run by a kubelet or by
// terway-lab) and the control plane hold no inheritable descriptor; a hung
// ADD holds up its own pod only, and is killed at the CNI timeout with the
// pod Failed; `down` waits for an `up` in progress and leaves nothing.
//
// lab_stand_in (installed as `terway` and `terway-cli`, beside the real
// binaries) records what each plugin run inherited and hangs on request.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "e2e/lab/lab_fixture.h"

namespace terway::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class LabTrust : public LabTest {
 protected:
  void SetUp() override {
    LabTest::SetUp();
    if (IsSkipped()) return;
    // Whatever the lab writes must be owner-only by its own doing.
    old_umask_ = umask(0);
    bin_ = dir_.File("bin");
    fs::create_directories(bin_ + "/fds");
    const std::string stand_in = BinaryDir() + "/tests/e2e/lab/lab_stand_in";
    ASSERT_EQ(access(stand_in.c_str(), X_OK), 0) << "build lab_stand_in: " << stand_in;
    for (const char* real : {"vpcsim", "terwayd"}) fs::create_symlink(BinaryPath(real), bin_ + "/" + real);
    fs::create_symlink(BinaryPath("terway"), bin_ + "/terway.real");
    fs::create_symlink(BinaryPath("terway-cli"), bin_ + "/terway-cli.real");
    fs::create_symlink(stand_in, bin_ + "/terway");
    fs::create_symlink(stand_in, bin_ + "/terway-cli");
    Touch("release-up");  // `up` goes straight through unless a test removes it
    setenv("TERWAY_LAB_BIN_DIR", bin_.c_str(), 1);
  }

  void TearDown() override {
    if (!bin_.empty()) {
      // Lets every stand-in still waiting go, so down finds nothing hung.
      Touch("release-up");
      for (const auto& e : fs::directory_iterator(bin_)) {
        std::string name = e.path().filename();
        if (name.rfind("stuck-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".pid") {
          Touch("release-" + name.substr(6, name.size() - 10));
        }
      }
    }
    LabTest::TearDown();
    unsetenv("TERWAY_LAB_BIN_DIR");
    umask(old_umask_);
  }

  void Touch(const std::string& name) { std::ofstream(bin_ + "/" + name) << "\n"; }

  // The pid of the hung ADD of pod `name`, once it runs.
  pid_t StuckPid(const std::string& name) {
    const std::string file = bin_ + "/stuck-" + name + ".pid";
    if (!WaitFor([&] { return !ReadFile(file).empty(); }, 60s)) return 0;
    return std::atoi(ReadFile(file).c_str());
  }
  static bool Alive(pid_t pid) {
    std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    auto paren = stat.rfind(')');
    return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] != 'Z';
  }

  // Mode bits of p (without following a symlink); 01000 when missing.
  static unsigned Mode(const std::string& p) {
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0) return 01000;
    return st.st_mode & 07777;
  }

  // "fd -> target" lines of every plugin run that inherited a descriptor.
  std::string InheritedByPlugins(int* runs) {
    std::string out;
    *runs = 0;
    for (const auto& e : fs::directory_iterator(bin_ + "/fds")) {
      (*runs)++;
      std::string fds = ReadFile(e.path());
      if (!fds.empty()) out += e.path().filename().string() + ":\n" + fds;
    }
    return out;
  }

  std::string bin_;
  mode_t old_umask_ = 022;
};

TEST_F(LabTrust, SecretsAreOwnerOnlyFromTheStartAndAnOlderLabIsTightened) {
  Up(1, "", 0);
  ASSERT_FALSE(AddPod("default/web", "node1").empty());
  // The files that hold secrets are there (the check below is not vacuous).
  for (const char* f : {"lab.json", "world.yaml", "kubeconfig", "vpcsim/vpcsim.db", "vpcsim/endpoint",
                        "nodes/node1/eni.json", "nodes/node1/kubeconfig", "nodes/node1/terwayd.db",
                        "control-plane.log", "vpcsim.log", "nodes/node1/terwayd.log"}) {
    EXPECT_NE(Mode(lab_dir_ + "/" + f), 01000u) << f << " missing";
  }
  EXPECT_NE(ReadFile(lab_dir_ + "/world.yaml").find("secret:"), std::string::npos);
  std::string open_to_others;
  auto check = [&](const fs::path& p) {
    unsigned m = Mode(p);
    if (m != 01000 && !fs::is_symlink(fs::symlink_status(p)) && (m & 077)) {
      open_to_others += fmt::format("  {:o} {}\n", m, p.string());
    }
  };
  check(lab_dir_);
  for (const auto& e : fs::recursive_directory_iterator(lab_dir_)) check(e.path());
  EXPECT_EQ(open_to_others, "") << "readable or writable by group or others:\n" << open_to_others;
  // An older terway-lab left them world-readable: the next command tightens.
  chmod((lab_dir_ + "/lab.json").c_str(), 0644);
  chmod((lab_dir_ + "/vpcsim/vpcsim.db").c_str(), 0644);
  chmod((lab_dir_ + "/nodes").c_str(), 0755);
  auto st = Lab({"status"});
  EXPECT_EQ(st.exit_code, 0) << st.output;
  EXPECT_EQ(Mode(lab_dir_ + "/lab.json"), 0600u);
  EXPECT_EQ(Mode(lab_dir_ + "/vpcsim/vpcsim.db"), 0600u);
  EXPECT_EQ(Mode(lab_dir_ + "/nodes"), 0700u);
}

TEST_F(LabTrust, PluginsAndTheControlPlaneHoldNoInheritableDescriptor) {
  Up(1, "", 0);
  ASSERT_FALSE(AddPod("default/a", "node1").empty());  // ADD by the kubelet
  auto check = Lab({"pod", "check", "default/a"});     // CHECK by terway-lab itself
  EXPECT_EQ(check.exit_code, 0) << check.output;
  auto del = Lab({"pod", "del", "default/a"});  // DEL by the kubelet
  EXPECT_EQ(del.exit_code, 0) << del.output;
  int runs = 0;
  std::string inherited = InheritedByPlugins(&runs);
  EXPECT_GE(runs, 3) << "ADD, CHECK and DEL each ran the plugin";
  EXPECT_EQ(inherited, "") << "the plugin inherited descriptors:\n" << inherited;
  // The control plane's own descriptors (API listeners and connections,
  // watches, curl's) are all close-on-exec.
  const int cp = State()["control_plane"]["process"]["pid"].get<int>();
  ASSERT_GT(cp, 0);
  std::string inheritable;
  int sockets = 0;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(cp) + "/fd")) {
    int fd = std::atoi(e.path().filename().c_str());
    std::error_code ec;
    std::string target = fs::read_symlink(e.path(), ec).string();
    sockets += target.rfind("socket:", 0) == 0 ? 1 : 0;
    if (fd <= 2) continue;
    std::string info = ReadFile("/proc/" + std::to_string(cp) + "/fdinfo/" + std::to_string(fd));
    auto pos = info.find("flags:");
    if (pos == std::string::npos) continue;  // closed meanwhile
    unsigned long flags = std::stoul(info.substr(pos + 6), nullptr, 8);
    if (!(flags & 02000000)) inheritable += fmt::format("  {} -> {}\n", fd, target);
  }
  EXPECT_GE(sockets, 4) << "listeners, watches and their connections";
  EXPECT_EQ(inheritable, "") << "control plane descriptors without close-on-exec:\n" << inheritable;
}

TEST_F(LabTrust, AHungAddHoldsUpOnlyItsOwnPod) {
  Up(2, "", 0);
  ProcessOptions po;
  po.argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "pod", "add", "default/stuck-1", "--node", "node1"};
  po.log_path = dir_.File("stuck-1.log");
  auto stuck_add = Process::Start(po);
  ASSERT_TRUE(stuck_add.ok()) << stuck_add.error().ToString();
  pid_t stuck = StuckPid("stuck-1");
  ASSERT_GT(stuck, 0) << "the kubelet never ran the ADD of stuck-1: " << ReadFile(po.log_path);
  // Everything else goes on while that ADD hangs, on its node and another.
  auto other_node = Lab({"pod", "add", "default/b", "--node", "node2"}, 60s);
  EXPECT_EQ(other_node.exit_code, 0) << other_node.output;
  EXPECT_TRUE(Alive(stuck)) << "the hung ADD ended before the other node's pod was added";
  auto same_node = Lab({"pod", "add", "default/c", "--node", "node1"}, 60s);
  EXPECT_EQ(same_node.exit_code, 0) << same_node.output;
  auto status = Lab({"status"}, 60s);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("default/stuck-1"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("(adding)"), std::string::npos) << status.output;
  auto check = Lab({"pod", "check", "default/c"}, 60s);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  auto del = Lab({"pod", "del", "default/b"}, 60s);
  EXPECT_EQ(del.exit_code, 0) << del.output;
  EXPECT_TRUE(Alive(stuck)) << "the hung ADD ended while the other pods were worked on";
  // Let it go: the ADD fails, the pod with it, and the kubelet cleans up.
  Touch("release-stuck-1");
  EXPECT_TRUE(WaitFor([&] { return !stuck_add->running(); }, 90s));
  EXPECT_NE(ReadFile(po.log_path).find("released by the test"), std::string::npos) << ReadFile(po.log_path);
  EXPECT_EQ(PodNetns("default/stuck-1"), "") << "the failed pod stayed in lab.json";
}

TEST_F(LabTrust, AHungAddIsKilledAtTheCniTimeoutAndThePodFails) {
  auto up = Lab({"up", "--nodes", "1", "--name", world_, "--vpc-hosts", "0", "--cni-timeout", "3"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  ProcessOptions po;
  po.argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "pod", "add", "default/stuck-2", "--node", "node1"};
  po.log_path = dir_.File("stuck-2.log");
  auto stuck_add = Process::Start(po);
  ASSERT_TRUE(stuck_add.ok()) << stuck_add.error().ToString();
  pid_t stuck = StuckPid("stuck-2");
  ASSERT_GT(stuck, 0) << ReadFile(po.log_path);
  // Never released: the kubelet's timeout is all that ends it.
  ASSERT_TRUE(WaitFor([&] { return !stuck_add->running(); }, 60s)) << "pod add never returned";
  const std::string out = ReadFile(po.log_path);
  EXPECT_NE(out.find("terway ADD did not finish within 3 s and was killed"), std::string::npos) << out;
  EXPECT_EQ(out.find("released by the test"), std::string::npos) << out;
  EXPECT_FALSE(Alive(stuck)) << "the hung plugin survived its timeout";
  EXPECT_EQ(PodNetns("default/stuck-2"), "") << "the failed pod stayed in lab.json";
  // The node still serves.
  EXPECT_FALSE(AddPod("default/after", "node1").empty());
}

TEST_F(LabTrust, DownWaitsForAnUpInProgressAndLeavesNothing) {
  unlink((bin_ + "/release-up").c_str());  // `up` stops at max pods, mid-way
  ProcessOptions up;
  up.argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "up", "--nodes", "1", "--name", world_,
             "--vpc-hosts", "0"};
  up.log_path = dir_.File("up.log");
  auto up_run = Process::Start(up);
  ASSERT_TRUE(up_run.ok()) << up_run.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return !ReadFile(bin_ + "/up-gated").empty(); }, 60s)) << ReadFile(up.log_path);
  ProcessOptions down;
  down.argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "down"};
  down.log_path = dir_.File("down.log");
  auto down_run = Process::Start(down);
  ASSERT_TRUE(down_run.ok()) << down_run.error().ToString();
  // down waits on the lifecycle lock that up holds.
  struct stat lock {};
  ASSERT_EQ(stat((lab_dir_ + "/lifecycle.lock").c_str(), &lock), 0);
  const std::string waiter = ":" + std::to_string(lock.st_ino) + " ";
  EXPECT_TRUE(WaitFor(
      [&] {
        std::ifstream in("/proc/locks");
        for (std::string line; std::getline(in, line);) {
          if (line.find("-> FLOCK") != std::string::npos && line.find(waiter) != std::string::npos) return true;
        }
        return false;
      },
      30s))
      << "down did not wait for up: " << ReadFile(down.log_path);
  Touch("release-up");
  EXPECT_TRUE(WaitFor([&] { return !up_run->running(); }, 120s)) << ReadFile(up.log_path);
  EXPECT_TRUE(WaitFor([&] { return !down_run->running(); }, 120s)) << ReadFile(down.log_path);
  EXPECT_NE(ReadFile(up.log_path).find("is up"), std::string::npos) << ReadFile(up.log_path);
  EXPECT_NE(ReadFile(down.log_path).find("is down"), std::string::npos) << ReadFile(down.log_path);
  EXPECT_EQ(WorldNetns(), "");
  EXPECT_FALSE(fs::exists(lab_dir_)) << "down left the lab directory";
  // No process of this lab is left (vpcsim, terwayd and the control plane
  // all name the lab directory on their command line).
  std::string left;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string cmdline = ReadFile(e.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(lab_dir_ + "/") != std::string::npos || cmdline.find(lab_dir_ + " ") != std::string::npos) {
      left += e.path().filename().string() + ": " + cmdline + "\n";
    }
  }
  EXPECT_EQ(left, "") << "processes of the lab left after down:\n" << left;
}

}  // namespace
}  // namespace terway::testing
