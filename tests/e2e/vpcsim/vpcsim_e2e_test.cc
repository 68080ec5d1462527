// Drives the real `vpcsim serve` binary over HTTP with signed requests: state
// survives a restart (also after kill -9), stop leaves no process, `destroy`
// leaves no state and, with the Linux fabric (root), no namespace. The Linux
// fabric test also reaches the API and the metadata service from inside an
// instance namespace, through the VPC; another gives instances IPv6 of their
// own (ipv6_address_count, RunInstances' Ipv6AddressCount) and checks the
// cloud's, the metadata's and the kernel's view of it, IPv6 between
// instances and the fabric dropping an instance's forged IPv6 source.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/ip.h"
#include "netlink/netns.h"
#include "test_util.h"
#include "unit/vpcsim/signed_request.h"

namespace terway::vpcsim::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A child process killed (and reaped) when the guard goes out of scope.
class Process {
 public:
  explicit Process(std::vector<std::string> args, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "a", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Process() { Kill(SIGKILL); }
  // Sends sig and reaps; returns the exit status (or -signal).
  int Kill(int sig) {
    if (pid_ <= 0) return 0;
    kill(pid_, sig);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

std::string VpcsimBinary() {
#ifdef VPCSIM_BINARY
  return VPCSIM_BINARY;
#else
  return terway::testing::BinaryPath("vpcsim");
#endif
}

int RunCli(const std::vector<std::string>& args, std::string* out) {
  std::string cmd = VpcsimBinary();
  for (const auto& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Polls for the port file the server writes once it listens.
int WaitPort(const std::string& port_file, pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) return port;
    if (waitpid(pid, nullptr, WNOHANG) == pid) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

bool ProcessAlive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// A shell command's exit status and output (stderr too).
int RunShell(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

sockaddr_in6 Sockaddr6(const std::string& ip, uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  EXPECT_EQ(inet_pton(AF_INET6, ip.c_str(), &sa.sin6_addr), 1) << ip;
  return sa;
}

// A UDP socket made inside namespace `ns` (it stays there), bound to
// [ip]:port. freebind: the address need not be the namespace's own -- how a
// test forges another instance's source.
int UdpSocketIn(const std::string& ns, const std::string& ip, uint16_t port, bool freebind) {
  int fd = -1;
  Status s = netlink::RunInNetns(ns, [&]() -> Status {
    fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return MakeError(ErrorCode::kKernel, "socket");
    int one = 1;
    if (freebind && setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof one) != 0) {
      return MakeError(ErrorCode::kKernel, "IP_FREEBIND");
    }
    timeval tv{5, 0};  // a bound on recv: the test fails rather than hangs
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in6 sa = Sockaddr6(ip, port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      return MakeError(ErrorCode::kKernel, "bind [" + ip + "]:" + std::to_string(port) + ": " + strerror(errno));
    }
    return Ok();
  });
  EXPECT_TRUE(s.ok()) << ns << ": " << s.error().ToString();
  if (!s.ok() && fd >= 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

// Closes a descriptor when the test leaves the scope, also on failure.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) close(fd);
  }
};

// No process anywhere still runs with our (unique) state directory.
bool NoProcessMentions(const std::string& needle) {
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/proc", ec)) {
    std::ifstream in(d.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos && cmd.find("vpcsim") != std::string::npos) return false;
  }
  return true;
}

class VpcsimE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = VpcsimBinary();
    ASSERT_TRUE(fs::exists(bin_)) << bin_;
    char tmpl[] = "/tmp/vpcsim-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    state_ = tmp_ + "/state";
    world_name_ = "e" + terway::testing::UniqueSuffix();
    if (world_name_.size() > 8) world_name_ = "e" + world_name_.substr(world_name_.size() - 7);
    std::ifstream in(terway::testing::SourceDir() + "/tools/vpcsim/worlds/default.yaml");
    std::string w((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    w.replace(w.find("name: vs"), 8, "name: " + world_name_);
    std::ofstream(tmp_ + "/world.yaml") << w;
  }
  void TearDown() override {
    server_.reset();
    if (fabric_ == "linux" && fs::exists(state_ + "/vpcsim.db")) {
      std::string out;
      RunCli({"destroy", "--state", state_}, &out);  // also on failure: leave no namespace
    }
    fs::remove_all(tmp_);
  }
  int Start() {
    fs::remove(tmp_ + "/port");
    server_ = std::make_unique<Process>(
        std::vector<std::string>{bin_, "serve", "--world", tmp_ + "/world.yaml", "--state", state_, "--port-file",
                                 tmp_ + "/port", "--fabric", fabric_, "--attach-delay-ms", "100"},
        tmp_ + "/server.log");
    port_ = WaitPort(tmp_ + "/port", server_->pid());
    return port_;
  }
  std::string Log() {
    std::ifstream in(tmp_ + "/server.log");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  json Call(const std::string& action, const cloud::QueryParams& p, int want = 200, const std::string& nonce = "") {
    httplib::Client c("127.0.0.1", port_);
    Credential cred{"LTAIvpcsimDefault", "vpcsim-default-secret", ""};
    std::string q = nonce.empty() ? SignedQuery("GET", action, p, cred, RealClock::Instance().Now())
                                  : SignedQuery("GET", action, p, cred, RealClock::Instance().Now(),
                                                cloud::kEcsApiVersion, nonce);
    auto r = c.Get(("/?" + q).c_str());
    EXPECT_TRUE(r) << action;
    if (!r) return json();
    EXPECT_EQ(r->status, want) << action << ": " << r->body;
    return json::parse(r->body);
  }
  json WaitStatus(const std::string& eni, const std::string& status) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    json e;
    while (std::chrono::steady_clock::now() < deadline) {
      e = Call("DescribeNetworkInterfaces", {{"NetworkInterfaceId.1", eni}})["NetworkInterfaceSets"]
              ["NetworkInterfaceSet"][0];
      if (e["Status"] == status) return e;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << eni << " never reached " << status << ": " << e.dump();
    return e;
  }

  // The instance's primary ENI as DescribeNetworkInterfaces answers it.
  json PrimaryEni(const std::string& instance) {
    auto set = Call("DescribeNetworkInterfaces", {{"InstanceId", instance}, {"Type", "Primary"}})
                   ["NetworkInterfaceSets"]["NetworkInterfaceSet"];
    EXPECT_EQ(set.size(), 1u) << instance << ": " << set.dump();
    return set.empty() ? json::object() : set[0];
  }
  // A metadata path as the instance reads it (loopback, naming the instance).
  std::string Metadata(const std::string& instance, const std::string& path) {
    httplib::Client c("127.0.0.1", port_);
    auto r = c.Get(("/latest/meta-data/" + path).c_str(), {{"X-Vpcsim-Instance-Id", instance}});
    EXPECT_TRUE(r && r->status == 200) << instance << " " << path << ": " << (r ? r->body : "no answer");
    return r ? r->body : "";
  }
  std::string Netns(const std::string& instance) const { return world_name_ + "-" + instance; }
  // Packets the router's anti-spoofing dropped for a source outside allowed6.
  long ForgedIpv6Drops() {
    std::string out;
    EXPECT_EQ(RunShell("ip netns exec " + world_name_ + "-vpc nft list chain bridge vpcsim prerouting", &out), 0)
        << out;
    const std::string rule = "@allowed6 counter packets ";
    auto pos = out.find(rule);
    EXPECT_NE(pos, std::string::npos) << out;
    return pos == std::string::npos ? -1 : std::atol(out.c_str() + pos + rule.size());
  }

  // Create + attach + assign; returns the ENI id.
  std::string BuildState() {
    auto created = Call("CreateNetworkInterface", {{"VSwitchId", "vsw-vpcsim0001"}, {"SecurityGroupId", "sg-vpcsim0001"},
                                                   {"Tag.1.Key", "creator"}, {"Tag.1.Value", "terway"}});
    std::string eni = created["NetworkInterfaceId"];
    Call("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-vpcsim0001"}});
    WaitStatus(eni, "InUse");
    Call("AssignPrivateIpAddresses", {{"NetworkInterfaceId", eni}, {"SecondaryPrivateIpAddressCount", "3"}});
    return eni;
  }

  std::string bin_, tmp_, state_, world_name_, fabric_ = "none";
  std::unique_ptr<Process> server_;
  int port_ = -1;
};

TEST_F(VpcsimE2E, StateSurvivesRestartAndStopLeavesNothing) {
  ASSERT_GT(Start(), 0) << Log();
  std::string eni = BuildState();
  Call("DescribeInstanceTypes", {}, 200, "e2e-nonce-1");
  json before = Call("DescribeNetworkInterfaces", {{"NetworkInterfaceId.1", eni}})["NetworkInterfaceSets"];

  pid_t pid = server_->pid();
  EXPECT_EQ(server_->Kill(SIGTERM), 0) << Log();  // clean stop on SIGTERM
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_TRUE(NoProcessMentions(state_));

  ASSERT_GT(Start(), 0) << Log();
  json after = Call("DescribeNetworkInterfaces", {{"NetworkInterfaceId.1", eni}})["NetworkInterfaceSets"];
  EXPECT_EQ(after, before);
  EXPECT_EQ(after["NetworkInterfaceSet"][0]["PrivateIpSets"]["PrivateIpSet"].size(), 4u);
  // A nonce used before the restart is still refused.
  EXPECT_EQ(Call("DescribeInstanceTypes", {}, 400, "e2e-nonce-1")["Code"], "SignatureNonceUsed");

  // kill -9 in the middle of an attach: the state is still consistent.
  auto created = Call("CreateNetworkInterface", {{"VSwitchId", "vsw-vpcsim0001"}, {"SecurityGroupId", "sg"}});
  std::string second = created["NetworkInterfaceId"];
  Call("AttachNetworkInterface", {{"NetworkInterfaceId", second}, {"InstanceId", "i-vpcsim0001"}});
  server_->Kill(SIGKILL);
  ASSERT_GT(Start(), 0) << Log();
  WaitStatus(second, "InUse");
  EXPECT_EQ(Call("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", "i-vpcsim0001"}}, 400)["Code"],
            "InvalidOperation.InvalidEniState");

  // The CLI reaches the same server.
  std::string out;
  EXPECT_EQ(RunCli({"describe", "--state", state_}, &out), 0) << out;
  EXPECT_NE(out.find(eni), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunCli({"fault", "set", "--state", state_, "--action", "DescribeInstances", "--throttle-rate", "1"}, &out), 0) << out;
  EXPECT_EQ(Call("DescribeInstances", {}, 400)["Code"], "Throttling");
  out.clear();
  EXPECT_EQ(RunCli({"stats", "--state", state_}, &out), 0) << out;
  EXPECT_EQ(json::parse(out)["actions"]["DescribeInstances"]["errors_by_code"]["Throttling"], 1);

  EXPECT_EQ(server_->Kill(SIGINT), 0);
  EXPECT_TRUE(NoProcessMentions(state_));
  out.clear();
  EXPECT_EQ(RunCli({"destroy", "--state", state_}, &out), 0) << out;
  EXPECT_FALSE(fs::exists(state_));
}

TEST_F(VpcsimE2E, SecondServerOnSameStateIsRefused) {
  ASSERT_GT(Start(), 0) << Log();
  std::string out;
  int rc = RunCli({"serve", "--world", tmp_ + "/world.yaml", "--state", state_}, &out);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("another vpcsim"), std::string::npos) << out;
  out.clear();
  EXPECT_NE(RunCli({"destroy", "--state", state_}, &out), 0) << "destroy while serving must be refused";
}

TEST_F(VpcsimE2E, BadWorldFailsWithClearMessage) {
  std::ofstream(tmp_ + "/bad.yaml") << "region: x\nvpc: {id: v, cidr: 10.0.0.0/8, vswitches: []}\n";
  std::string out;
  EXPECT_NE(RunCli({"serve", "--world", tmp_ + "/bad.yaml", "--state", state_}, &out), 0);
  EXPECT_NE(out.find("198.18.0.0/15"), std::string::npos) << out;
}

// With the real fabric: namespaces appear, a process inside an instance
// namespace reaches the API and its own metadata through the VPC, and destroy
// leaves no namespace behind.
TEST_F(VpcsimE2E, LinuxFabricServesInsideTheVpcAndDestroyLeavesNoNamespace) {
  TERWAY_REQUIRE_ROOT();
  fabric_ = "linux";
  ASSERT_GT(Start(), 0) << Log();
  const std::string router = world_name_ + "-vpc";
  const std::string node = world_name_ + "-i-vpcsim0001";
  ASSERT_TRUE(netlink::NetnsExists(router)) << Log();
  ASSERT_TRUE(netlink::NetnsExists(node)) << Log();
  std::string eni = BuildState();

  // From inside the instance: metadata knows who we are by source IP, and a
  // signed API call through 100.100.0.1 works.
  std::string instance_id, api_code;
  int api_status = 0;
  Status s = netlink::RunInNetns(node, [&]() -> Status {
    httplib::Client md("100.100.100.200", 80);
    md.set_connection_timeout(5);
    auto tok = md.Put("/latest/api/token", {{"X-aliyun-ecs-metadata-token-ttl-seconds", "60"}}, "", "text/plain");
    if (!tok || tok->status != 200) return MakeError(ErrorCode::kUnavailable, "metadata token from instance");
    auto r = md.Get("/latest/meta-data/instance-id", {{"X-aliyun-ecs-metadata-token", tok->body}});
    if (!r) return MakeError(ErrorCode::kUnavailable, "metadata from instance");
    instance_id = r->body;
    httplib::Client api("100.100.0.1", 80);
    api.set_connection_timeout(5);
    Credential cred{"LTAIvpcsimDefault", "vpcsim-default-secret", ""};
    auto a = api.Get(("/?" + SignedQuery("GET", "DescribeInstances", {}, cred, RealClock::Instance().Now())).c_str());
    if (!a) return MakeError(ErrorCode::kUnavailable, "API from instance");
    api_status = a->status;
    api_code = a->body;
    return Ok();
  });
  ASSERT_TRUE(s.ok()) << s.error().ToString() << "\n" << Log();
  EXPECT_EQ(instance_id, "i-vpcsim0001");
  EXPECT_EQ(api_status, 200) << api_code;

  // Restart after kill -9: the fabric is still there and the server comes back.
  server_->Kill(SIGKILL);
  EXPECT_TRUE(netlink::NetnsExists(router));
  ASSERT_GT(Start(), 0) << Log();
  WaitStatus(eni, "InUse");
  EXPECT_EQ(server_->Kill(SIGTERM), 0) << Log();
  EXPECT_TRUE(netlink::NetnsExists(node)) << "stop must leave the fabric for the next start";

  std::string out;
  ASSERT_EQ(RunCli({"destroy", "--state", state_}, &out), 0) << out;
  std::error_code ec;
  for (const auto& d : fs::directory_iterator("/var/run/netns", ec)) {
    EXPECT_NE(d.path().filename().string().rfind(world_name_ + "-", 0), 0u) << "left behind: " << d.path();
  }
  EXPECT_TRUE(NoProcessMentions(state_));
}

// An instance created with an IPv6 (the world file's ipv6_address_count, and
// `vpcsim instance add --ipv6-address-count`, RunInstances' Ipv6AddressCount)
// holds it on its primary ENI: DescribeNetworkInterfaces' Ipv6Sets, the
// metadata's ipv6s under the primary MAC, eth0 (a /128, default route via
// the vSwitch's IPv6 gateway); instances reach each other over IPv6 with their
// own addresses, an instance forging another's IPv6 source is dropped by the
// router, and all of it survives a kill -9 of vpcsim.
TEST_F(VpcsimE2E, LinuxFabricGivesInstancesTheirOwnIpv6AndDropsAForgedOne) {
  TERWAY_REQUIRE_ROOT();
  fabric_ = "linux";
  ASSERT_GT(Start(), 0) << Log();
  std::map<std::string, std::string> v6;  // instance -> its IPv6
  for (const std::string id : {"i-e2eb", "i-e2ec"}) {
    std::string out;
    ASSERT_EQ(RunCli({"instance", "add", "--state", state_, "--type", "ecs.g7.large", "--vswitch", "vsw-vpcsim0001",
                      "--id", id, "--ipv6-address-count", "1"},
                     &out),
              0)
        << out;
    auto j = json::parse(out, nullptr, false);
    ASSERT_TRUE(j.is_object() && j["ipv6s"].size() == 1u) << out;
    v6[id] = j["ipv6s"][0];
  }
  const std::string a = "i-vpcsim0001";  // the world file's, with ipv6_address_count 1
  json primary = PrimaryEni(a);
  ASSERT_EQ(primary["Ipv6Sets"]["Ipv6Set"].size(), 1u) << primary.dump();
  v6[a] = primary["Ipv6Sets"]["Ipv6Set"][0]["Ipv6Address"];
  const Ipv6Cidr block = Ipv6Cidr::Parse("fd00:c612::/64").value();
  for (const auto& [id, ip] : v6) {
    auto addr = Ipv6Addr::Parse(ip);
    EXPECT_TRUE(addr.ok() && block.Contains(*addr)) << id << ": " << ip << " is not of vsw-vpcsim0001's block";
    EXPECT_EQ(PrimaryEni(id)["Ipv6Sets"]["Ipv6Set"][0]["Ipv6Address"], ip) << id;
    const std::string mac = Metadata(id, "mac");
    EXPECT_EQ(Metadata(id, "network/interfaces/macs/" + mac + "/ipv6s"), "[" + ip + "]") << id;
    std::string out;
    EXPECT_EQ(RunShell("ip -n " + Netns(id) + " -6 -o addr show dev eth0 scope global", &out), 0) << out;
    EXPECT_NE(out.find(" " + ip + "/128 "), std::string::npos) << id << "'s eth0: " << out;
    out.clear();
    EXPECT_EQ(RunShell("ip -n " + Netns(id) + " -6 route show default", &out), 0) << out;
    EXPECT_NE(out.find("default via fd00:c612::ffff:ffff:ffff:fff7 dev eth0"), std::string::npos)
        << id << ": " << out;
  }
  // ICMPv6 between instances, through the router, both ways.
  auto ping = [&](const std::string& from, const std::string& to) {
    std::string out;
    EXPECT_EQ(RunShell("ip netns exec " + Netns(from) + " ping -6 -c 1 -W 5 " + v6[to], &out), 0)
        << from << " -> " << to << ": " << out;
  };
  ping(a, "i-e2eb");
  ping("i-e2ec", a);

  // UDP from a to i-e2ec with a's own source arrives as sent; a datagram
  // from a forging i-e2eb's source is dropped at the router. The forged one
  // goes first on the same path: had it passed, it would be received first.
  const std::string c = "i-e2ec";
  const long drops_before = ForgedIpv6Drops();
  FdGuard server{UdpSocketIn(Netns(c), v6[c], 7100, false)};
  FdGuard genuine{UdpSocketIn(Netns(a), v6[a], 0, false)};
  FdGuard forged{UdpSocketIn(Netns(a), v6["i-e2eb"], 0, /*freebind=*/true)};
  ASSERT_TRUE(server.fd >= 0 && genuine.fd >= 0 && forged.fd >= 0);
  sockaddr_in6 to = Sockaddr6(v6[c], 7100);
  ASSERT_EQ(sendto(forged.fd, "forged", 6, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 6) << strerror(errno);
  ASSERT_EQ(sendto(genuine.fd, "genuine", 7, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 7) << strerror(errno);
  char buf[64];
  sockaddr_in6 peer{};
  socklen_t peer_len = sizeof peer;
  ssize_t n = recvfrom(server.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
  ASSERT_GT(n, 0) << "nothing from " << a << " reached " << c << " within 5 s: " << strerror(errno);
  EXPECT_EQ(std::string(buf, n), "genuine") << "the forged source passed the router";
  char peer_text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &peer.sin6_addr, peer_text, sizeof peer_text);
  EXPECT_EQ(Ipv6Addr::Parse(peer_text).value(), Ipv6Addr::Parse(v6[a]).value()) << "source as " << c << " saw it";
  ping(a, c);  // a round trip after both: a late forged datagram would be queued by now
  EXPECT_LT(recv(server.fd, buf, sizeof buf, MSG_DONTWAIT), 0) << "a forged datagram reached " << c;
  EXPECT_GE(ForgedIpv6Drops(), drops_before + 1) << "the router's allowed6 rule counted no drop";

  // vpcsim killed and restarted: the same address in the cloud, on eth0, and routed.
  server_->Kill(SIGKILL);
  ASSERT_GT(Start(), 0) << Log();
  EXPECT_EQ(PrimaryEni(a)["Ipv6Sets"]["Ipv6Set"][0]["Ipv6Address"], v6[a]);
  ping("i-e2eb", a);
}

}  // namespace
}  // namespace terway::vpcsim::testing
