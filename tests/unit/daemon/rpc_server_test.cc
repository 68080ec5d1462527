// terwayd's CNI socket server under idle, slow, greedy and stuck clients, on
// a temp socket without root. The handler is scripted: requests of an op can
// be held on a latch (an ADD waiting for the cloud) and every call is
// recorded, so the tests see what reached the handler and what did not.
//
// No assertion is on latency: "not delayed" is shown by order (STATUS is
// answered while the idle clients are provably still connected, with read
// deadlines far longer than any test step), and waits are on conditions with
// generous limits.
#include "daemon/rpc_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "cni/daemon_client.h"
#include "test_util.h"

namespace terway::daemon {
namespace {

namespace proto = cni::protocol;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

// Polls `done` until it holds or `within` passes (for conditions with no
// notification of their own, such as a metric or a peer's close).
bool WaitUntil(const std::function<bool()>& done, seconds within = seconds(20)) {
  const auto until = SteadyClock::now() + within;
  while (!done()) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

class ScriptedHandler : public RequestHandler {
 public:
  proto::Reply Handle(const proto::Request& req) override {
    std::unique_lock l(mu_);
    seen_.push_back(req);
    cv_.notify_all();
    cv_.wait(l, [&] { return held_.count(req.op) == 0; });
    proto::Reply r;
    if (req.op == proto::Op::kStatus) r.status = proto::DaemonStatus{true, true, ""};
    if (req.op == proto::Op::kPolicyShow) r.text = policy_text_;
    return r;
  }
  void Hold(proto::Op op) {
    std::lock_guard l(mu_);
    held_.insert(op);
  }
  void Release(proto::Op op) {
    std::lock_guard l(mu_);
    held_.erase(op);
    cv_.notify_all();
  }
  void ReleaseAll() {
    std::lock_guard l(mu_);
    held_.clear();
    cv_.notify_all();
  }
  void SetPolicyText(std::string text) {
    std::lock_guard l(mu_);
    policy_text_ = std::move(text);
  }
  std::vector<proto::Request> Seen(proto::Op op) const {
    std::lock_guard l(mu_);
    std::vector<proto::Request> out;
    for (const auto& r : seen_)
      if (r.op == op) out.push_back(r);
    return out;
  }
  size_t Calls(proto::Op op) const { return Seen(op).size(); }
  bool WaitForCalls(proto::Op op, size_t n, seconds within = seconds(20)) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, within, [&] {
      size_t c = 0;
      for (const auto& r : seen_) c += r.op == op;
      return c >= n;
    });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<proto::Op> held_;
  std::vector<proto::Request> seen_;
  std::string policy_text_;
};

std::string Frame(proto::Op op, const std::string& container_id = "", uint32_t deadline_ms = 0) {
  proto::Request r;
  r.op = op;
  r.container_id = container_id;
  r.deadline_ms = deadline_ms;
  r.pod.namespace_ = "default";
  r.pod.name = container_id.empty() ? "" : "pod-" + container_id;
  return proto::EncodeRequest(r);
}

// One client connection driven by hand: what an idle, slow or greedy client does.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    connected_ = fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool Send(std::string_view bytes) {
    return cni::WriteFrame(fd_, bytes, SteadyClock::now() + seconds(10)).ok();
  }
  // The reply frame, or nothing when the server closed without one or the
  // wait ran out.
  std::optional<proto::Reply> ReadReply(seconds within = seconds(20)) {
    auto frame = cni::ReadFrame(fd_, SteadyClock::now() + within);
    if (!frame.ok()) return std::nullopt;
    auto reply = proto::DecodeReply(*frame);
    if (!reply.ok()) return std::nullopt;
    return *reply;
  }
  // Nothing has arrived and the server has not closed: the connection is
  // still held open by the server, untouched.
  bool Untouched() const {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) == 0;
  }
  // True once the server closed the connection (after any reply).
  bool ClosedByServer() {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    char buf[4096];
    while (true) {
      ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        received_.append(buf, static_cast<size_t>(n));
        continue;
      }
      return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    }
  }
  // The server closed its end, seen without reading (reading would let a
  // server blocked on writing the reply go on).
  bool HungUpWithoutReading() const {
    pollfd p{fd_, POLLRDHUP, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
  }
  // What ClosedByServer read before the close.
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

std::vector<std::unique_ptr<RawClient>> OpenIdle(const std::string& path, int n) {
  std::vector<std::unique_ptr<RawClient>> out;
  for (int i = 0; i < n; i++) out.push_back(std::make_unique<RawClient>(path));
  return out;
}

class RpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/terway-rpc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    opts_.socket_path = dir_ + "/eni.socket";
    opts_.metrics = &metrics_;
  }
  void TearDown() override {
    handler_.ReleaseAll();
    if (server_) server_->Stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartServer() {
    server_ = std::make_unique<RpcServer>(opts_, &handler_);
    ASSERT_OK(server_->Start());
  }
  // Through the plugin's own client, as `terway` asks.
  Result<proto::Reply> Call(proto::Op op, const std::string& container_id = "") {
    proto::Request r;
    r.op = op;
    r.container_id = container_id;
    r.pod.namespace_ = "default";
    r.pod.name = "pod-" + container_id;
    return cni::MakeUnixDaemonClient(opts_.socket_path, seconds(20))->Call(r);
  }
  double Metric(const std::string& name, const Labels& labels = {}) { return metrics_.Get(name, labels); }

  std::string dir_;
  Metrics metrics_;
  ScriptedHandler handler_;
  RpcServerOptions opts_;
  std::unique_ptr<RpcServer> server_;
};

// The attack measured on the old server: 300 connections that send nothing
// held every request slot until their read timeout, so a STATUS waited for
// them. Here they hold no worker: STATUS is handled while all 300 are still
// connected, with their read deadline far away.
TEST_F(RpcServerTest, IdleConnectionsDoNotDelayStatus) {
  opts_.read_timeout = seconds(60);
  StartServer();
  auto idle = OpenIdle(opts_.socket_path, 300);
  for (const auto& c : idle) ASSERT_TRUE(c->connected());

  auto st = Call(proto::Op::kStatus);
  ASSERT_OK(st);
  ASSERT_TRUE(st->ok()) << st->error->message;
  ASSERT_TRUE(st->status.has_value());
  EXPECT_EQ(handler_.Calls(proto::Op::kStatus), 1u);
  // Answered before any idle client was dropped: it did not wait for them.
  for (size_t i = 0; i < idle.size(); i++) ASSERT_TRUE(idle[i]->Untouched()) << "idle client " << i;
  // The server holds all 300 (the STATUS connection closes after its reply).
  EXPECT_TRUE(WaitUntil([&] { return Metric("terway_rpc_connections") == 300; }))
      << Metric("terway_rpc_connections");
}

// ADDs stuck on the cloud (held on a latch) fill the add lane and more; DEL
// and STATUS still reach the handler at once, and the ADDs beyond the lane's
// workers and queue are answered "retryable" instead of waiting.
TEST_F(RpcServerTest, AddsBlockedOnTheCloudDoNotBlockReleaseAndStatus) {
  StartServer();
  handler_.Hold(proto::Op::kAllocate);
  std::vector<std::unique_ptr<RawClient>> adds;
  for (int i = 0; i < 300; i++) {
    adds.push_back(std::make_unique<RawClient>(opts_.socket_path));
    ASSERT_TRUE(adds.back()->Send(Frame(proto::Op::kAllocate, "add" + std::to_string(i))));
  }
  ASSERT_TRUE(handler_.WaitForCalls(proto::Op::kAllocate, static_cast<size_t>(opts_.add_lane.workers)));

  auto del = Call(proto::Op::kRelease, "gone");
  ASSERT_OK(del);
  EXPECT_TRUE(del->ok());
  auto st = Call(proto::Op::kStatus);
  ASSERT_OK(st);
  EXPECT_TRUE(st->ok());
  EXPECT_EQ(handler_.Calls(proto::Op::kRelease), 1u);
  EXPECT_EQ(handler_.Calls(proto::Op::kStatus), 1u);
  EXPECT_EQ(handler_.Calls(proto::Op::kAllocate), static_cast<size_t>(opts_.add_lane.workers));

  handler_.Release(proto::Op::kAllocate);
  int ok = 0, retryable = 0;
  for (auto& c : adds) {
    auto r = c->ReadReply();
    ASSERT_TRUE(r.has_value());
    if (r->ok()) ok++;
    else if (r->error->cls == proto::ErrorClass::kRetryable) retryable++;
  }
  EXPECT_EQ(ok, opts_.add_lane.workers + opts_.add_lane.queue);
  EXPECT_EQ(retryable, 300 - ok);
}

TEST_F(RpcServerTest, FullLaneAnswersRetryableNamingTheLaneAndItsLimits) {
  opts_.add_lane = {1, 1};
  StartServer();
  handler_.Hold(proto::Op::kAllocate);
  RawClient running(opts_.socket_path);
  ASSERT_TRUE(running.Send(Frame(proto::Op::kAllocate, "a")));
  ASSERT_TRUE(handler_.WaitForCalls(proto::Op::kAllocate, 1));
  RawClient queued(opts_.socket_path);
  ASSERT_TRUE(queued.Send(Frame(proto::Op::kAllocate, "b")));
  ASSERT_TRUE(WaitUntil([&] { return Metric("terway_rpc_queue_depth", {{"lane", "add"}}) == 1; }));

  auto refused = Call(proto::Op::kAllocate, "c");
  ASSERT_OK(refused);
  ASSERT_FALSE(refused->ok());
  EXPECT_EQ(refused->error->cls, proto::ErrorClass::kRetryable);
  EXPECT_NE(refused->error->message.find("add lane is full (1 requests running and 1 waiting"), std::string::npos)
      << refused->error->message;
  EXPECT_EQ(Metric("terway_rpc_rejected_total", {{"lane", "add"}, {"reason", "queue_full"}}), 1);
  // Other lanes are not affected.
  auto st = Call(proto::Op::kStatus);
  ASSERT_OK(st);
  EXPECT_TRUE(st->ok());

  handler_.Release(proto::Op::kAllocate);
  auto a = running.ReadReply();
  auto b = queued.ReadReply();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_TRUE(a->ok());
  EXPECT_TRUE(b->ok());
  EXPECT_EQ(handler_.Calls(proto::Op::kAllocate), 2u);  // "c" never reached the handler
}

// A queued request whose client stopped waiting is not started; one still
// within its budget is started with what is left of it.
TEST_F(RpcServerTest, RequestWhoseDeadlinePassedInTheQueueIsAnsweredTimeoutWithoutHandling) {
  opts_.add_lane = {1, 2};
  StartServer();
  handler_.Hold(proto::Op::kAllocate);
  RawClient running(opts_.socket_path);
  ASSERT_TRUE(running.Send(Frame(proto::Op::kAllocate, "a")));
  ASSERT_TRUE(handler_.WaitForCalls(proto::Op::kAllocate, 1));
  RawClient hurried(opts_.socket_path);
  ASSERT_TRUE(hurried.Send(Frame(proto::Op::kAllocate, "b", 300)));
  RawClient patient(opts_.socket_path);
  ASSERT_TRUE(patient.Send(Frame(proto::Op::kAllocate, "c", 60000)));
  ASSERT_TRUE(WaitUntil([&] { return Metric("terway_rpc_queue_depth", {{"lane", "add"}}) == 2; }));
  const auto queued_by = SteadyClock::now();  // both were received before this
  // The condition is the passing of b's deadline itself.
  const auto past_deadline = queued_by + milliseconds(400);
  ASSERT_TRUE(WaitUntil([&] { return SteadyClock::now() >= past_deadline; }));
  const auto released = SteadyClock::now();
  handler_.Release(proto::Op::kAllocate);

  auto b = hurried.ReadReply();
  ASSERT_TRUE(b.has_value());
  ASSERT_FALSE(b->ok());
  EXPECT_EQ(b->error->cls, proto::ErrorClass::kTimeout);
  EXPECT_NE(b->error->message.find("was not started"), std::string::npos) << b->error->message;
  auto c = patient.ReadReply();
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->ok());
  auto seen = handler_.Seen(proto::Op::kAllocate);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].container_id, "a");
  EXPECT_EQ(seen[1].container_id, "c");
  // c waited at least (released - queued_by) after its receipt: the handler
  // got its budget minus that.
  const auto waited = std::chrono::duration_cast<milliseconds>(released - queued_by).count();
  EXPECT_LE(seen[1].deadline_ms, 60000 - waited + 1);
  EXPECT_GT(seen[1].deadline_ms, 0u);
  EXPECT_EQ(Metric("terway_rpc_rejected_total", {{"lane", "add"}, {"reason", "deadline_passed"}}), 1);
}

// Slowloris: 260 clients (more than the old server's 256 slots) each drip a
// request a byte per 100 ms and never finish it. Progress does not extend the
// deadline: each is answered "timeout" and closed at its read deadline, not
// before; meanwhile a STATUS is served while every dripper is still connected.
TEST_F(RpcServerTest, SlowClientsAreDroppedAtTheirDeadlineAndHoldNoSlot) {
  opts_.read_timeout = milliseconds(3000);
  StartServer();
  struct Dripper {
    std::unique_ptr<RawClient> conn;
    SteadyClock::time_point connecting;
    std::optional<SteadyClock::time_point> closed;
  };
  std::vector<Dripper> drippers;
  for (int i = 0; i < 260; i++) {
    Dripper d;
    d.connecting = SteadyClock::now();
    d.conn = std::make_unique<RawClient>(opts_.socket_path);
    ASSERT_TRUE(d.conn->connected());
    ASSERT_TRUE(d.conn->Send("{\"v\":1,"));
    drippers.push_back(std::move(d));
  }
  auto status = std::async(std::launch::async, [&] { return Call(proto::Op::kStatus); });
  bool status_seen = false;
  bool all_open_at_status = false;
  const auto give_up = SteadyClock::now() + seconds(30);
  size_t open = drippers.size();
  while (open > 0 && SteadyClock::now() < give_up) {
    if (!status_seen && status.wait_for(milliseconds(0)) == std::future_status::ready) {
      // Any dripper the server closed before answering STATUS shows it now.
      status_seen = true;
      all_open_at_status = true;
      for (auto& d : drippers) {
        if (!d.closed && d.conn->ClosedByServer()) {
          d.closed = SteadyClock::now();
          open--;
        }
        if (d.closed) all_open_at_status = false;
      }
    }
    for (auto& d : drippers) {
      if (d.closed) continue;
      if (d.conn->ClosedByServer()) {
        d.closed = SteadyClock::now();
        open--;
      } else {
        d.conn->Send(" ");  // JSON whitespace: forever almost a request
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(open, 0u) << "slow clients were never dropped";
  ASSERT_TRUE(status_seen);
  EXPECT_TRUE(all_open_at_status) << "STATUS was answered only after slow clients were dropped";
  auto st = status.get();
  ASSERT_OK(st);
  EXPECT_TRUE(st->ok());
  for (auto& d : drippers) {
    EXPECT_GE(*d.closed - d.connecting, opts_.read_timeout) << "dropped before its deadline";
    auto reply = proto::DecodeReply(d.conn->received());
    ASSERT_OK(reply);
    ASSERT_FALSE(reply->ok());
    EXPECT_EQ(reply->error->cls, proto::ErrorClass::kTimeout);
    EXPECT_NE(reply->error->message.find("no complete request within 3000 ms"), std::string::npos)
        << reply->error->message;
  }
  EXPECT_EQ(Metric("terway_rpc_connections_dropped_total", {{"reason", "read_deadline"}}), 260);
  EXPECT_EQ(handler_.Calls(proto::Op::kStatus), 1u);
}

// 260 clients ask for a reply larger than a socket buffer and never read it.
// The control lane's single worker hands each reply to the event loop and
// goes on, so all 260 are handled and a STATUS after them is answered.
TEST_F(RpcServerTest, ClientsThatNeverReadTheirReplyBlockNobody) {
  opts_.control_lane = {1, 300};
  opts_.max_connections = 1024;
  opts_.write_timeout = seconds(60);
  // Over the server's socket send buffer (net.core.wmem_default, 208 KiB
  // here), so no reply fits without the client reading.
  handler_.SetPolicyText(std::string(320 << 10, 'x'));
  StartServer();
  std::vector<std::unique_ptr<RawClient>> deaf;
  for (int i = 0; i < 260; i++) {
    deaf.push_back(std::make_unique<RawClient>(opts_.socket_path));
    ASSERT_TRUE(deaf.back()->Send(Frame(proto::Op::kPolicyShow)));
  }
  // Generous: 260 replies of 320 KiB are encoded one after another (slow
  // under sanitizers).
  ASSERT_TRUE(handler_.WaitForCalls(proto::Op::kPolicyShow, 260, seconds(120)));
  auto st = Call(proto::Op::kStatus);
  ASSERT_OK(st);
  EXPECT_TRUE(st->ok());
  // The deaf clients' replies are still pending, not dropped.
  EXPECT_GE(Metric("terway_rpc_connections"), 260);
  EXPECT_EQ(Metric("terway_rpc_connections_dropped_total", {{"reason", "write_deadline"}}), 0);
}

TEST_F(RpcServerTest, ClientThatNeverReadsIsDroppedAtTheWriteDeadline) {
  opts_.write_timeout = milliseconds(300);
  handler_.SetPolicyText(std::string(320 << 10, 'x'));
  StartServer();
  RawClient deaf(opts_.socket_path);
  ASSERT_TRUE(deaf.Send(Frame(proto::Op::kPolicyShow)));
  ASSERT_TRUE(WaitUntil([&] { return deaf.HungUpWithoutReading(); })) << "the deaf client is still held";
  EXPECT_EQ(Metric("terway_rpc_connections_dropped_total", {{"reason", "write_deadline"}}), 1);
  EXPECT_EQ(Metric("terway_rpc_connections"), 0);
  EXPECT_EQ(handler_.Calls(proto::Op::kPolicyShow), 1u);
}

// A full connection table drops its oldest incomplete connection, not the
// newcomer: whoever filled the table first cannot keep others out.
TEST_F(RpcServerTest, FullConnectionTableDropsTheOldestIncompleteNotTheNewest) {
  opts_.max_connections = 8;
  opts_.add_lane = opts_.release_lane = opts_.control_lane = {1, 1};
  opts_.read_timeout = seconds(60);
  StartServer();
  // Accepted in connect order (the listen backlog is FIFO): these 8 before the STATUS.
  auto idle = OpenIdle(opts_.socket_path, 8);

  auto st = Call(proto::Op::kStatus);
  ASSERT_OK(st);
  EXPECT_TRUE(st->ok());
  ASSERT_TRUE(WaitUntil([&] { return idle[0]->ClosedByServer(); }));
  auto reply = proto::DecodeReply(idle[0]->received());
  ASSERT_OK(reply);
  ASSERT_FALSE(reply->ok());
  EXPECT_EQ(reply->error->cls, proto::ErrorClass::kRetryable);
  EXPECT_NE(reply->error->message.find("connection_cap"), std::string::npos) << reply->error->message;
  for (size_t i = 1; i < idle.size(); i++) EXPECT_TRUE(idle[i]->Untouched()) << "idle client " << i;
  EXPECT_EQ(Metric("terway_rpc_connections_dropped_total", {{"reason", "connection_cap"}}), 1);
}

TEST_F(RpcServerTest, BufferedBytesOverTheCapDropTheOldestIncomplete) {
  opts_.max_frame_bytes = 2048;
  opts_.max_buffered_bytes = 4096;
  opts_.read_timeout = seconds(60);
  StartServer();
  auto slow = OpenIdle(opts_.socket_path, 3);
  ASSERT_TRUE(slow[0]->Send(std::string(1500, ' ')));
  ASSERT_TRUE(slow[1]->Send(std::string(1500, ' ')));
  ASSERT_TRUE(WaitUntil([&] { return Metric("terway_rpc_connections") == 3; }));
  ASSERT_TRUE(slow[2]->Send(std::string(1500, ' ')));
  ASSERT_TRUE(WaitUntil([&] { return slow[0]->ClosedByServer(); }));
  EXPECT_TRUE(slow[1]->Untouched());
  EXPECT_TRUE(slow[2]->Untouched());
  EXPECT_EQ(Metric("terway_rpc_connections_dropped_total", {{"reason", "buffer_cap"}}), 1);
}

TEST_F(RpcServerTest, OversizedFrameIsAnsweredInvalidAndDropped) {
  opts_.max_frame_bytes = 1024;
  StartServer();
  RawClient big(opts_.socket_path);
  ASSERT_TRUE(big.Send(std::string(2000, ' ')));
  auto r = big.ReadReply();
  ASSERT_TRUE(r.has_value());
  ASSERT_FALSE(r->ok());
  EXPECT_EQ(r->error->cls, proto::ErrorClass::kInvalid);
  EXPECT_NE(r->error->message.find("too large"), std::string::npos);
  ASSERT_TRUE(WaitUntil([&] { return big.ClosedByServer(); }));
  EXPECT_EQ(handler_.Calls(proto::Op::kStatus), 0u);
}

TEST_F(RpcServerTest, MalformedRequestIsAnsweredInvalidWithoutTheHandler) {
  StartServer();
  RawClient bad(opts_.socket_path);
  ASSERT_TRUE(bad.Send("{\"v\":1,\"op\":\"explode\"}\n"));
  auto r = bad.ReadReply();
  ASSERT_TRUE(r.has_value());
  ASSERT_FALSE(r->ok());
  EXPECT_EQ(r->error->cls, proto::ErrorClass::kInvalid);
  EXPECT_EQ(Metric("terway_rpc_rejected_total", {{"lane", "none"}, {"reason", "malformed"}}), 1);
}

// Stop with one ADD running and one queued: connecting fails at once, the
// queued ADD is answered "unavailable" without being started, Stop waits for
// the running one, delivers its reply, and then removes the socket.
TEST_F(RpcServerTest, StopAnswersQueuedRequestsAndWaitsForRunningOnes) {
  opts_.add_lane = {1, 2};
  StartServer();
  handler_.Hold(proto::Op::kAllocate);
  RawClient running(opts_.socket_path);
  ASSERT_TRUE(running.Send(Frame(proto::Op::kAllocate, "a")));
  ASSERT_TRUE(handler_.WaitForCalls(proto::Op::kAllocate, 1));
  RawClient queued(opts_.socket_path);
  ASSERT_TRUE(queued.Send(Frame(proto::Op::kAllocate, "b")));
  ASSERT_TRUE(WaitUntil([&] { return Metric("terway_rpc_queue_depth", {{"lane", "add"}}) == 1; }));

  auto stopped = std::async(std::launch::async, [&] { server_->Stop(); });
  // Declared after the future so it runs first if an assertion returns
  // early: the future's destructor waits for Stop, which waits for the handler.
  struct ReleaseOnExit {
    ScriptedHandler& handler;
    ~ReleaseOnExit() { handler.ReleaseAll(); }
  } release_on_exit{handler_};
  auto b = queued.ReadReply();
  ASSERT_TRUE(b.has_value());
  ASSERT_FALSE(b->ok());
  EXPECT_EQ(b->error->cls, proto::ErrorClass::kUnavailable);
  ASSERT_TRUE(WaitUntil([&] { return !RawClient(opts_.socket_path).connected(); }))
      << "still accepting while stopping";
  // The running handler holds Stop.
  EXPECT_EQ(stopped.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_TRUE(std::filesystem::exists(opts_.socket_path));

  handler_.Release(proto::Op::kAllocate);
  auto a = running.ReadReply();
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->ok());
  ASSERT_EQ(stopped.wait_for(seconds(20)), std::future_status::ready);
  EXPECT_FALSE(std::filesystem::exists(opts_.socket_path));
  ASSERT_EQ(handler_.Calls(proto::Op::kAllocate), 1u);
  EXPECT_EQ(Metric("terway_rpc_rejected_total", {{"lane", "add"}, {"reason", "stopping"}}), 1);
}

TEST_F(RpcServerTest, SocketIsRootOnlyReplacesAStaleFileAndRefusesALiveOne) {
  // A stale socket of a killed daemon: bound, never listening.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, opts_.socket_path.c_str(), opts_.socket_path.size() + 1);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    close(fd);
  }
  StartServer();
  struct stat st {};
  ASSERT_EQ(stat(opts_.socket_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto reply = Call(proto::Op::kStatus);
  ASSERT_OK(reply);
  EXPECT_TRUE(reply->ok());

  RpcServer second(opts_, &handler_);
  auto s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
}

TEST_F(RpcServerTest, LimitsThatCouldLeaveNothingToDropAreRefused) {
  opts_.max_connections = 10;  // below the default lanes' 332 workers + queues
  RpcServer server(opts_, &handler_);
  auto s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(opts_.socket_path));
}

}  // namespace
}  // namespace terway::daemon
