// The server helpers terwayd uses: socket permissions, stale sockets, and one
// connection served end to end against the real client.
#include "cni/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "unit/cni/fake_daemon.h"

namespace terway::cni::protocol {
namespace {

using namespace std::chrono_literals;
using cni::testing::TempDir;

TEST(ListenUnix, SocketIsRootOnlyAndStaleSocketReplaced) {
  TempDir dir;
  std::string path = dir.path() + "/run/eni/eni.socket";  // parent created
  auto fd = ListenUnix(path);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  close(*fd);  // the file stays behind, as after a crash
  auto again = ListenUnix(path);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  close(*again);
}

TEST(ListenUnix, RefusesToReplaceARegularFile) {
  TempDir dir;
  std::string path = dir.path() + "/eni.socket";
  std::ofstream(path) << "precious";
  auto fd = ListenUnix(path);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().code, ErrorCode::kAlreadyExists);
  std::ifstream in(path);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST(ListenUnix, RejectsOverlongPath) { EXPECT_FALSE(ListenUnix("/tmp/" + std::string(120, 'x')).ok()); }

// Serves exactly one connection on a thread; joins on destruction.
class OneShotServer {
 public:
  explicit OneShotServer(RequestHandler h) : handler_(std::move(h)) {
    auto fd = ListenUnix(dir_.path() + "/s.sock");
    EXPECT_TRUE(fd.ok());
    listen_fd_ = fd.ok() ? *fd : -1;
    thread_ = std::thread([this] {
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      status_ = ServeConnection(c, handler_, 2s);
      close(c);
    });
  }
  ~OneShotServer() {
    if (thread_.joinable()) {
      shutdown(listen_fd_, SHUT_RDWR);
      thread_.join();
    }
    close(listen_fd_);
  }
  std::string path() const { return dir_.path() + "/s.sock"; }
  Status Join() {
    thread_.join();
    return status_;
  }

 private:
  TempDir dir_;
  RequestHandler handler_;
  int listen_fd_ = -1;
  Status status_;
  std::thread thread_;
};

TEST(ServeConnection, PassesTheClientsDeadlineToTheHandler) {
  std::chrono::milliseconds budget{0};
  OneShotServer server([&](const Request& req, Deadline deadline) {
    budget = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    Reply r;
    r.status = DaemonStatus{req.op == Op::kStatus, true, ""};
    return r;
  });
  Request req;
  req.op = Op::kStatus;
  auto reply = MakeUnixDaemonClient(server.path(), 3000ms)->Call(req);
  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  ASSERT_TRUE(reply->status.has_value());
  EXPECT_TRUE(reply->status->ready);
  EXPECT_TRUE(server.Join().ok());
  EXPECT_GT(budget.count(), 1000);
  EXPECT_LE(budget.count(), 3000);
}

TEST(ServeConnection, MalformedRequestGetsInvalidAndSkipsHandler) {
  bool called = false;
  OneShotServer server([&](const Request&, Deadline) {
    called = true;
    return Reply{};
  });
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, server.path().c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto deadline = std::chrono::steady_clock::now() + 3s;
  ASSERT_TRUE(WriteFrame(fd, "{\"v\":1,\"op\":\"teleport\"}\n", deadline).ok());
  auto frame = ReadFrame(fd, deadline);
  close(fd);
  ASSERT_TRUE(frame.ok()) << frame.error().ToString();
  auto reply = DecodeReply(*frame);
  ASSERT_TRUE(reply.ok());
  ASSERT_FALSE(reply->ok());
  EXPECT_EQ(reply->error->cls, ErrorClass::kInvalid);
  EXPECT_NE(reply->error->message.find("teleport"), std::string::npos);
  EXPECT_FALSE(server.Join().ok());
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace terway::cni::protocol
