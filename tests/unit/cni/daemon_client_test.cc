// The unix-socket client against the in-test daemon: round trip, deadline
// propagation, and each transport failure class.
#include "cni/daemon_client.h"

#include <gtest/gtest.h>

#include "unit/cni/fake_daemon.h"

namespace terway::cni {
namespace {

using namespace std::chrono_literals;
using testing::FakeDaemon;

protocol::Request AllocateRequest() {
  protocol::Request r;
  r.op = protocol::Op::kAllocate;
  r.container_id = "c1";
  r.ifname = "eth0";
  return r;
}

TEST(UnixDaemonClient, RoundTripAndDeadline) {
  FakeDaemon daemon([](const protocol::Request& r) { return testing::PodNetworkReply(r); });
  auto client = MakeUnixDaemonClient(daemon.socket_path(), 5000ms);
  auto reply = client->Call(AllocateRequest());
  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  ASSERT_TRUE(reply->result.has_value());
  EXPECT_EQ(reply->result->ips.at(0).address, "198.18.0.10/32");
  auto seen = daemon.requests();
  ASSERT_EQ(seen.size(), 1u);
  // The daemon is told less than the client waits, so its answer arrives.
  EXPECT_GT(seen[0].deadline_ms, 0u);
  EXPECT_LT(seen[0].deadline_ms, 5000u);
  EXPECT_GE(seen[0].deadline_ms, 4000u);
}

TEST(UnixDaemonClient, NothingListeningIsUnavailable) {
  testing::TempDir dir;
  auto client = MakeUnixDaemonClient(dir.path() + "/absent.socket", 1000ms);
  auto reply = client->Call(AllocateRequest());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(reply.error().ToString().find("absent.socket"), std::string::npos);
}

TEST(UnixDaemonClient, SilentDaemonTimesOut) {
  FakeDaemon daemon([](const protocol::Request& r) { return testing::PodNetworkReply(r); });
  daemon.set_mode(FakeDaemon::Mode::kSilent);
  auto client = MakeUnixDaemonClient(daemon.socket_path(), 200ms);
  auto start = std::chrono::steady_clock::now();
  auto reply = client->Call(AllocateRequest());
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kTimeout);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
}

TEST(UnixDaemonClient, HangUpIsUnavailable) {
  FakeDaemon daemon([](const protocol::Request& r) { return testing::PodNetworkReply(r); });
  daemon.set_mode(FakeDaemon::Mode::kHangUp);
  auto reply = MakeUnixDaemonClient(daemon.socket_path(), 2000ms)->Call(AllocateRequest());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kUnavailable);
}

TEST(UnixDaemonClient, GarbageReplyIsInvalid) {
  FakeDaemon daemon([](const protocol::Request& r) { return testing::PodNetworkReply(r); });
  daemon.set_mode(FakeDaemon::Mode::kGarbage);
  auto reply = MakeUnixDaemonClient(daemon.socket_path(), 2000ms)->Call(AllocateRequest());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kInvalidArgument);
}

TEST(UnixDaemonClient, TooLongSocketPathIsRejected) {
  auto reply = MakeUnixDaemonClient(std::string(200, 'x'), 1000ms)->Call(AllocateRequest());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace terway::cni
