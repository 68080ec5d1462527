// What an operator sees when something is wrong: bad configuration stops
// terwayd at start with a message naming the key; a full vSwitch or the
// instance's ENI quota gives pods a clear error naming the cause, and the node
// recovers when capacity returns.
#include <gtest/gtest.h>

#include "cni/daemon_client.h"
#include "e2e/harness/world.h"
#include "test_util.h"

namespace terway::testing {
namespace {

namespace proto = cni::protocol;

struct BadConfig {
  const char* name;
  const char* conf;
  const char* expect;  // substring of the error
};

class TerwaydConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(TerwaydConfigErrors, RefusesToStartNamingTheProblem) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.File("eni.json"), GetParam().conf).ok());
  auto r = RunCommand({BinaryPath("terwayd"), "--config", dir.File("eni.json"), "--socket",
                       dir.File("eni.socket"), "--state", dir.File("state.db"), "--metrics-listen",
                       ""},
                      "", std::chrono::seconds(30));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(GetParam().expect), std::string::npos) << r.output;
  // Nothing was created: no socket, no database.
  EXPECT_TRUE(ReadFile(dir.File("state.db")).empty());
  EXPECT_NE(access(dir.File("eni.socket").c_str(), F_OK), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TerwaydConfigErrors,
    ::testing::Values(
        BadConfig{"WrongType", R"({"max_pool_size": "five"})", "max_pool_size"},
        BadConfig{"BadCidr", R"({"service_cidr": "10.96.0.0/33"})", "service_cidr"},
        BadConfig{"NegativeMin", R"({"min_pool_size": -1, "max_pool_size": 2})", "min_pool_size"},
        BadConfig{"HalfCredentials", R"({"access_key": "LTAIx"})", "access_secret"},
        BadConfig{"NotJson", R"({"max_pool_size": 5,)", "eni_conf"},
        BadConfig{"EmptyFile", "", "eni_conf"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(TerwaydConfig, MissingFileNamesThePath) {
  TempDir dir;
  auto r = RunCommand({BinaryPath("terwayd"), "--config", dir.File("nope.json"), "--socket",
                       dir.File("s"), "--state", dir.File("db"), "--metrics-listen", ""},
                      "", std::chrono::seconds(30));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(dir.File("nope.json")), std::string::npos) << r.output;
}

// A node whose metadata service does not answer yet (booting, a hiccup):
// terwayd waits it out with backoff instead of exiting, and serves once the
// service is back.
TEST(TerwaydStart, WaitsOutAMetadataServiceThatIsDown) {
  TERWAY_REQUIRE_ROOT();
  auto w = VpcsimWorld::Start(WorldSpec{});
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  (*w)->process().Kill9();  // the metadata service (and the API) go away
  TerwaydSpec ts;
  ts.instance_id = (*w)->instances()[0];
  auto n = TerwaydNode::Start(w->get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  bool retrying = WaitFor([&] { return ReadFile((*n)->log_path()).find("retrying in") != std::string::npos; },
                          std::chrono::seconds(60));
  ASSERT_TRUE(retrying) << "terwayd did not say it waits:\n" << ReadFile((*n)->log_path());
  ASSERT_TRUE((*n)->process().running()) << "terwayd gave up:\n" << ReadFile((*n)->log_path());
  ASSERT_TRUE((*w)->Restart(/*kill9=*/true).ok());
  auto ready = (*n)->WaitReady(std::chrono::seconds(90));
  EXPECT_TRUE(ready.ok()) << ready.error().ToString() << "\n" << ReadFile((*n)->log_path());
  EXPECT_TRUE((*n)->process().running());
}

// ip_stack dual on a node whose vSwitch has no IPv6 block (the VPC has one):
// no pod could get its IPv6 (vpcsim answers InvalidVSwitch.Ipv6NotTurnOn as
// ECS does), so terwayd refuses to start, naming the vSwitch, the cause and
// the fix, instead of failing every pod.
TEST(TerwaydStart, DualStackRefusesToStartWhenNoVSwitchHasIpv6) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.vpc_ipv6_cidr = "fd00:c615::/56";
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  TerwaydSpec ts;
  ts.instance_id = (*w)->instances()[0];
  ts.extra_conf = "\"ip_stack\": \"dual\"";
  auto n = TerwaydNode::Start(w->get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return !(*n)->process().running(); }, std::chrono::seconds(60)))
      << "terwayd did not refuse:\n" << ReadFile((*n)->log_path());
  const std::string log = ReadFile((*n)->log_path());
  for (const std::string& part : {(*w)->vswitches()[0] + " (no IPv6 CIDR block", std::string("Ipv6NotTurnOn"),
                                  std::string("Enable IPv6 on the vSwitch"), std::string("set ip_stack to ipv4")}) {
    EXPECT_NE(log.find(part), std::string::npos) << "missing \"" << part << "\" in:\n" << log;
  }
  EXPECT_NE(access((*n)->socket().c_str(), F_OK), 0) << "it served";
}

class TerwaydCapacity : public ::testing::Test {
 protected:
  Result<proto::Reply> Add(const std::string& socket, int i) {
    proto::Request r;
    r.op = proto::Op::kAllocate;
    r.container_id = "cap-" + std::to_string(i);
    r.netns = "/var/run/netns/cap";
    r.ifname = "eth0";
    r.pod.namespace_ = "cap";
    r.pod.name = "pod-" + std::to_string(i);
    r.deadline_ms = 20000;
    return cni::MakeUnixDaemonClient(socket, std::chrono::seconds(30))->Call(r);
  }
  Result<proto::Reply> Del(const std::string& socket, int i) {
    proto::Request r;
    r.op = proto::Op::kRelease;
    r.container_id = "cap-" + std::to_string(i);
    r.pod.namespace_ = "cap";
    r.pod.name = "pod-" + std::to_string(i);
    return cni::MakeUnixDaemonClient(socket, std::chrono::seconds(30))->Call(r);
  }
};

TEST_F(TerwaydCapacity, FullNodeRefusesWithTheReasonAndRecovers) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.vpcsim.tiny";  // 3 ENIs x 3 IPs: (3 - 1) x 3 = 6 pods
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  TerwaydSpec ts;
  ts.instance_id = (*w)->instances()[0];
  auto n = TerwaydNode::Start(w->get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  ASSERT_TRUE((*n)->WaitReady().ok());
  for (int i = 0; i < 6; i++) {
    auto r = Add((*n)->socket(), i);
    ASSERT_TRUE(r.ok() && r->ok()) << "pod " << i << ": "
                                   << (r.ok() ? r->error->message : r.error().ToString());
  }
  auto full = Add((*n)->socket(), 6);
  ASSERT_TRUE(full.ok());
  ASSERT_FALSE(full->ok());
  EXPECT_EQ(full->error->cls, proto::ErrorClass::kExhausted) << full->error->message;
  EXPECT_NE(full->error->message.find("cap/pod-6"), std::string::npos) << full->error->message;
  ASSERT_TRUE(Del((*n)->socket(), 0).ok());
  auto again = Add((*n)->socket(), 6);
  ASSERT_TRUE(again.ok() && again->ok()) << (again.ok() ? again->error->message : "");
}

TEST_F(TerwaydCapacity, ExhaustedVSwitchIsNamedInThePodsError) {
  TERWAY_REQUIRE_ROOT();
  WorldSpec ws;
  ws.instance_type = "ecs.g7.large";
  ws.vswitch_cidr = "198.18.0.0/28";  // 16 addresses: 4 reserved, 1 primary ENI, ~11 for pods
  auto w = VpcsimWorld::Start(ws);
  ASSERT_TRUE(w.ok()) << w.error().ToString();
  TerwaydSpec ts;
  ts.instance_id = (*w)->instances()[0];
  ts.max_pool_size = 0;
  auto n = TerwaydNode::Start(w->get(), ts);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  ASSERT_TRUE((*n)->WaitReady().ok());
  int got = 0;
  std::string last;
  for (int i = 0; i < 20; i++) {
    auto r = Add((*n)->socket(), i);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    if (r->ok()) {
      got++;
      continue;
    }
    last = r->error->message;
    break;
  }
  EXPECT_GT(got, 0);
  EXPECT_LT(got, 20);
  EXPECT_NE(last.find("IpNotEnough"), std::string::npos) << last;
}

}  // namespace
}  // namespace terway::testing
