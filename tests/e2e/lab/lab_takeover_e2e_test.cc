// Lost state under running pods: terwayd's database is deleted while its
// node's pods run, and terwayd restarts. It must rebuild what it lost from
// the kernel, the cloud and the API before serving: the running pods keep
// their addresses and their traffic, new pods get other addresses, and the
// old pods' DELs still free what they held.
#include <set>

#include "e2e/lab/lab_fixture.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;

class LabTakeover : public LabTest {
 protected:
  // A ping from pod `from` to `ip` answered (retried briefly: ARP, routes).
  bool Reaches(const std::string& from, const std::string& ip) {
    return WaitFor(
        [&] {
          auto r = Exec(from, {"/bin/ping", "-c", "1", "-W", "1", ip}, 10s);
          return r.exit_code == 0;
        },
        15s, 200ms);
  }
  std::string NodeDir(const std::string& node) { return lab_dir_ + "/nodes/" + node; }
};

TEST_F(LabTakeover, DatabaseLostUnderRunningPodsNoDuplicateNoBrokenPod) {
  Up(2);
  std::map<std::string, std::string> ips;  // pod -> IP
  for (const auto& [pod, node] : std::vector<std::pair<std::string, std::string>>{
           {"default/a", "node1"}, {"default/b", "node1"}, {"team/c", "node1"}, {"default/far", "node2"}}) {
    ips[pod] = AddPod(pod, node);
    ASSERT_FALSE(ips[pod].empty()) << pod;
  }
  ASSERT_TRUE(Reaches("default/far", ips["default/a"]));

  // The disk under terwayd is lost: kill it, delete the database, restart.
  auto k = Lab({"terwayd", "kill", "node1"});
  ASSERT_EQ(k.exit_code, 0) << k.output;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::string f = NodeDir("node1") + "/terwayd.db" + suffix;
    ASSERT_TRUE(unlink(f.c_str()) == 0 || errno == ENOENT) << f;
  }
  auto s = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(s.exit_code, 0) << s.output;
  const std::string log = ReadFile(NodeDir("node1") + "/terwayd.log");
  EXPECT_NE(log.find("state rebuild"), std::string::npos) << "terwayd said nothing about rebuilding its state";

  // The running pods still work, both ways, across nodes.
  for (const char* pod : {"default/a", "default/b", "team/c"}) {
    EXPECT_TRUE(Reaches("default/far", ips[pod])) << pod << " lost its network across the restart";
    EXPECT_TRUE(Reaches(pod, ips["default/far"])) << pod;
  }
  // New pods on the node get addresses no running pod holds.
  std::set<std::string> seen;
  for (const auto& [pod, ip] : ips) seen.insert(ip);
  for (int i = 0; i < 6; ++i) {
    const std::string pod = "default/new" + std::to_string(i);
    std::string ip = AddPod(pod, "node1");
    ASSERT_FALSE(ip.empty()) << pod;
    EXPECT_TRUE(seen.insert(ip).second) << pod << " got " << ip << ", an address a running pod holds";
    ips[pod] = ip;
  }
  EXPECT_TRUE(Reaches("default/new0", ips["default/a"]));
  // No address is configured in two sandboxes of the node.
  std::map<std::string, std::string> owner;
  for (const auto& [pod, ip] : ips) {
    auto addrs = RunCommand({"/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"}, PodNetns(pod));
    ASSERT_EQ(addrs.exit_code, 0) << pod << ": " << addrs.output;
    EXPECT_NE(addrs.output.find(" " + ip + "/"), std::string::npos) << pod << " no longer has " << ip;
  }
  // The old pods' DELs free their addresses (the records rebuilt from the
  // veths' aliases carry the runtime's container ids).
  auto del = Lab({"pod", "del", "default/a"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  auto status = RunCommand({BinaryPath("terway-cli"), "pods", "--state", NodeDir("node1") + "/terwayd.db"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_EQ(status.output.find(ips["default/a"] + " "), std::string::npos)
      << "the deleted pod's address is still held:\n" << status.output;
  EXPECT_NE(status.output.find(ips["default/b"]), std::string::npos) << status.output;
}

}  // namespace
}  // namespace terway::testing
