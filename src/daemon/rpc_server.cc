#include "daemon/rpc_server.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace terway::daemon {

namespace proto = cni::protocol;
using SteadyClock = std::chrono::steady_clock;

namespace {

// epoll tags: connections are numbered from kFirstConnection up, never reused,
// so an event for a connection closed earlier in the same batch finds nothing.
constexpr uint64_t kListenTag = 0;
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kFirstConnection = 2;

constexpr int kAcceptBatch = 64;       // per wake-up, so reading stays fair under a connect flood
constexpr size_t kReadChunk = 64 << 10;
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr auto kDropWarningEvery = std::chrono::seconds(10);
constexpr auto kStopReportEvery = std::chrono::seconds(5);

constexpr const char* kConnectionsGauge = "terway_rpc_connections";
constexpr const char* kDroppedCounter = "terway_rpc_connections_dropped_total";
constexpr const char* kRejectedCounter = "terway_rpc_rejected_total";

Result<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Errorf(ErrorCode::kInvalidArgument, "socket path {} is longer than {} bytes", path,
                  sizeof(addr.sun_path) - 1);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// True if some process accepts connections on the socket path.
bool SocketIsLive(const sockaddr_un& addr) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return live;
}

void MakeParentDir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return;
  std::string dir = path.substr(0, slash);
  // mkdir -p, best effort: bind() reports the real error if this fails.
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i == dir.size() || dir[i] == '/') mkdir(dir.substr(0, i).c_str(), 0700);
  }
}

Status CheckOptions(const RpcServerOptions& o) {
  int held = 0;
  const std::pair<const char*, const LaneLimits*> lanes[] = {
      {"add", &o.add_lane}, {"release", &o.release_lane}, {"control", &o.control_lane}};
  for (const auto& [name, l] : lanes) {
    if (l->workers < 1 || l->queue < 0) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "rpc {} lane: {} workers and queue {}: a lane needs at least one worker and a queue of "
                    "zero or more",
                    name, l->workers, l->queue);
    }
    held += l->workers + l->queue;
  }
  if (o.max_connections <= held) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "rpc max_connections {} must exceed the lanes' workers and queues together ({}), or a full "
                  "connection table could hold nothing to drop",
                  o.max_connections, held);
  }
  if (o.read_timeout.count() <= 0 || o.write_timeout.count() <= 0 || o.max_frame_bytes == 0 ||
      o.max_buffered_bytes < o.max_frame_bytes) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "rpc read/write timeouts must be positive and max_buffered_bytes ({}) at least one frame "
                  "({})",
                  o.max_buffered_bytes, o.max_frame_bytes);
  }
  return Ok();
}

// Each open connection is a descriptor: a limit below the table means
// accept fails (EMFILE) before the table is full.
void WarnIfFewDescriptors(int max_connections) {
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < static_cast<rlim_t>(max_connections) + 64) {
    log::Warn("rpc file descriptor limit {} is close to max_connections {}: raise it (systemd LimitNOFILE, "
              "ulimit -n), or the oldest incomplete connections are dropped early when descriptors run out",
              nofile.rlim_cur, max_connections);
  }
}

int64_t Millis(SteadyClock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

RpcServer::RpcServer(RpcServerOptions opts, RequestHandler* handler)
    : opts_(std::move(opts)), handler_(handler) {}

RpcServer::~RpcServer() { Stop(); }

Status RpcServer::Start() {
  if (started_) return Errorf(ErrorCode::kAlreadyExists, "rpc server on {} is already running", opts_.socket_path);
  TERWAY_TRY(CheckOptions(opts_));
  TERWAY_TRY(Bind());
  if (Status loop = OpenEventLoop(); !loop.ok()) {
    CloseFds();
    RemoveSocketFile();
    return loop;
  }
  WarnIfFewDescriptors(opts_.max_connections);
  DeclareMetrics();
  lanes_ = std::make_unique<RequestLanes>(
      std::array<LaneLimits, kLaneCount>{opts_.add_lane, opts_.release_lane, opts_.control_lane}, handler_,
      [this](uint64_t id, proto::Reply reply) {
        std::string frame = proto::EncodeReply(reply);
        {
          std::lock_guard l(replies_mu_);
          replies_.emplace_back(id, std::move(frame));
        }
        Wake();
      },
      opts_.metrics);
  lanes_->Start();

  next_id_ = kFirstConnection;
  stopping_ = false;
  accept_paused_ = false;
  stop_requested_ = false;
  PublishConnections();
  loop_ = std::thread([this] { Loop(); });
  started_ = true;
  log::Info("rpc listening socket={} max_connections={} read_timeout_ms={} lanes add={}+{} release={}+{} "
            "control={}+{}",
            opts_.socket_path, opts_.max_connections, opts_.read_timeout.count(), opts_.add_lane.workers,
            opts_.add_lane.queue, opts_.release_lane.workers, opts_.release_lane.queue,
            opts_.control_lane.workers, opts_.control_lane.queue);
  return Ok();
}

Status RpcServer::OpenEventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return SysError("creating the rpc event loop (epoll)");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return SysError("creating the rpc event loop (eventfd)");
  epoll_event listen_ev{};
  listen_ev.events = EPOLLIN;
  listen_ev.data.u64 = kListenTag;
  epoll_event wake_ev{};
  wake_ev.events = EPOLLIN;
  wake_ev.data.u64 = kWakeTag;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &listen_ev) != 0 ||
      epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake_ev) != 0) {
    return SysError("registering the daemon socket with epoll");
  }
  return Ok();
}

void RpcServer::DeclareMetrics() {
  if (opts_.metrics == nullptr) return;
  opts_.metrics->DeclareGauge(kConnectionsGauge, "Connections open on the CNI socket");
  opts_.metrics->DeclareCounter(kDroppedCounter,
                                "CNI socket connections dropped by terwayd, by reason (read_deadline, "
                                "write_deadline, connection_cap, buffer_cap, fd_limit, frame_too_large, "
                                "stopping)");
}

Status RpcServer::Bind() {
  TERWAY_ASSIGN_OR_RETURN(sockaddr_un addr, SocketAddress(opts_.socket_path));
  MakeParentDir(opts_.socket_path);
  if (SocketIsLive(addr)) {
    return Errorf(ErrorCode::kAlreadyExists,
                  "another daemon is serving {}; stop it first (two daemons must never manage "
                  "one node)", opts_.socket_path);
  }
  unlink(opts_.socket_path.c_str());  // stale file of a killed daemon
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return SysError("creating the daemon socket");
  // Create it 0600 from the first instant: umask around bind, not a chmod
  // after it, so there is no window in which others can connect.
  mode_t old = umask(0177);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  if (rc != 0) {
    CloseFds();
    return SysError("binding the daemon socket " + opts_.socket_path, err);
  }
  struct stat st {};
  if (stat(opts_.socket_path.c_str(), &st) == 0) {
    socket_dev_ = st.st_dev;
    socket_ino_ = st.st_ino;
  }
  if (listen(listen_fd_, 512) != 0) {
    err = errno;
    CloseFds();
    RemoveSocketFile();
    return SysError("listening on " + opts_.socket_path, err);
  }
  return Ok();
}

void RpcServer::Stop() {
  if (!started_) return;
  started_ = false;
  stop_requested_ = true;
  Wake();
  loop_.join();
  // The loop ends once every accepted request has been answered, so the
  // workers are idle or on their way out.
  lanes_->Close();  // no-op after a normal drain; frees the workers if the loop died
  lanes_->Join();
  lanes_.reset();
  CloseFds();
  RemoveSocketFile();
  log::Info("rpc stopped socket={}", opts_.socket_path);
}

void RpcServer::CloseFds() {
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void RpcServer::RemoveSocketFile() {
  // Only our own socket: a daemon started while this one drained may have
  // replaced the file already.
  struct stat st {};
  if (stat(opts_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_)
    unlink(opts_.socket_path.c_str());
}

void RpcServer::Wake() {
  uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop wakes anyway.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void RpcServer::PublishConnections() {
  if (opts_.metrics != nullptr) opts_.metrics->Set(kConnectionsGauge, {}, static_cast<double>(connections_.size()));
}

// ---- the event loop (loop thread only below) ----

void RpcServer::Loop() {
  std::array<epoll_event, 128> events{};
  while (true) {
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), LoopTimeoutMillis());
    if (n < 0 && errno != EINTR) {
      log::Error("rpc epoll_wait failed: {}; the CNI socket stops serving", std::strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        AcceptAll();
      } else if (tag == kWakeTag) {
        uint64_t count = 0;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof(count));
      } else {
        OnEvent(tag, events[i].events);
      }
    }
    TakeReplies();
    if (stop_requested_ && !stopping_) BeginStopping();
    ExpireDeadlines();
    const auto now = SteadyClock::now();
    if (accept_paused_ && now >= accept_resume_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) == 0) accept_paused_ = false;
      else accept_resume_ = now + kAcceptPause;
    }
    if (stopping_) {
      if (connections_.empty()) break;
      if (now >= next_stop_report_) {
        log::Warn("rpc stopping: waiting for {} connections; running requests: {}", connections_.size(),
                  lanes_->Running());
        next_stop_report_ = now + kStopReportEvery;
      }
    }
  }
  for (auto& [id, c] : connections_) close(c.fd);
  connections_.clear();
  droppable_.clear();
  deadlines_.clear();
  buffered_bytes_ = 0;
}

int RpcServer::LoopTimeoutMillis() const {
  std::optional<SteadyClock::time_point> next;
  auto consider = [&](SteadyClock::time_point t) {
    if (!next || t < *next) next = t;
  };
  if (!deadlines_.empty()) consider(deadlines_.begin()->first);
  if (accept_paused_) consider(accept_resume_);
  if (stopping_) consider(next_stop_report_);
  if (!next) return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - SteadyClock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
}

void RpcServer::AcceptAll() {
  const auto now = SteadyClock::now();
  for (int i = 0; i < kAcceptBatch; i++) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: make room by the rule of a full table. With
        // nothing to drop, stop watching the listen socket for a moment; it
        // would report readable in a busy loop otherwise.
        log::Warn("rpc accept: {}; dropping the oldest incomplete connection", std::strerror(errno));
        if (!DropOldestIncomplete("fd_limit")) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
          accept_paused_ = true;
          accept_resume_ = now + kAcceptPause;
        }
        break;
      }
      log::Warn("rpc accept failed: {}", std::strerror(errno));
      break;
    }
    if (static_cast<int>(connections_.size()) >= opts_.max_connections) DropOldestIncomplete("connection_cap");
    const uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      log::Warn("rpc: cannot watch an accepted connection: {}", std::strerror(errno));
      close(fd);
      continue;
    }
    Connection& c = connections_[id];
    c.fd = fd;
    c.accepted = now;
    c.reader = std::make_unique<proto::FrameReader>(opts_.max_frame_bytes);
    droppable_.insert(id);
    SetDeadline(c, id, now + opts_.read_timeout);
  }
  PublishConnections();
}

void RpcServer::OnEvent(uint64_t id, uint32_t /*events*/) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  // Errors and hang-ups surface in recv/send, which say what happened.
  if (it->second.phase == Phase::kReading) OnReadable(id);
  else if (it->second.phase == Phase::kWriting) FlushReply(id);
}

void RpcServer::OnReadable(uint64_t id) {
  Connection& c = connections_.at(id);
  std::array<char, kReadChunk> buf;
  ssize_t n = recv(c.fd, buf.data(), buf.size(), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    CloseConnection(id);  // the client gave up before finishing its request: nobody to answer
    return;
  }
  Status fed = c.reader->Feed(std::string_view(buf.data(), static_cast<size_t>(n)));
  if (!fed.ok()) {
    Drop(id, "frame_too_large",
         proto::Reply::Fail(proto::ErrorClass::kInvalid, "request frame too large: " + fed.error().message));
    return;
  }
  if (auto frame = c.reader->Next()) {
    OnFrame(id, std::move(*frame));
    return;
  }
  CountBuffered(c);
  while (buffered_bytes_ > opts_.max_buffered_bytes && DropOldestIncomplete("buffer_cap", /*reading_only=*/true)) {
  }
}

void RpcServer::OnFrame(uint64_t id, std::string frame) {
  Connection& c = connections_.at(id);
  const auto now = SteadyClock::now();
  c.phase = Phase::kHandling;
  droppable_.erase(id);
  ClearDeadline(c, id);
  // Not watched while handled: a hang-up would report forever on a
  // level-triggered fd, and the reply's send finds out anyway.
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  buffered_bytes_ -= c.counted_bytes;
  c.counted_bytes = 0;
  c.reader.reset();  // bytes after the frame are ignored: one request per connection

  auto req = proto::DecodeRequest(frame);
  if (!req.ok()) {
    if (opts_.metrics != nullptr) opts_.metrics->Inc(kRejectedCounter, {{"lane", "none"}, {"reason", "malformed"}});
    SendReply(id, proto::EncodeReply(proto::Reply::Fail(proto::ErrorClass::kInvalid,
                                                    "malformed request: " + req.error().ToString())));
    return;
  }
  LaneJob job;
  job.connection = id;
  job.received = now;
  if (req->deadline_ms > 0) job.deadline = now + std::chrono::milliseconds(req->deadline_ms);
  job.request = std::move(req).value();
  if (auto refusal = lanes_->Submit(std::move(job))) SendReply(id, proto::EncodeReply(*refusal));
}

void RpcServer::TakeReplies() {
  std::vector<std::pair<uint64_t, std::string>> ready;
  {
    std::lock_guard l(replies_mu_);
    ready.swap(replies_);
  }
  for (auto& [id, frame] : ready) SendReply(id, std::move(frame));
}

void RpcServer::SendReply(uint64_t id, std::string frame) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  it->second.reply = std::move(frame);
  it->second.sent = 0;
  FlushReply(id);
}

void RpcServer::FlushReply(uint64_t id) {
  Connection& c = connections_.at(id);
  while (c.sent < c.reply.size()) {
    ssize_t n = send(c.fd, c.reply.data() + c.sent, c.reply.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c.phase != Phase::kWriting) {
        // The client is not reading yet: finish when it does, or drop it.
        c.phase = Phase::kWriting;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = id;
        if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
          CloseConnection(id);
          return;
        }
        droppable_.insert(id);
        SetDeadline(c, id, SteadyClock::now() + opts_.write_timeout);
      }
      return;
    }
    CloseConnection(id);  // the client went away (its plugin timed out): nothing to deliver
    return;
  }
  CloseConnection(id);
}

void RpcServer::ExpireDeadlines() {
  const auto now = SteadyClock::now();
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uint64_t id = deadlines_.begin()->second;
    const Connection& c = connections_.at(id);
    if (c.phase == Phase::kReading) {
      Drop(id, "read_deadline",
           proto::Reply::Fail(proto::ErrorClass::kTimeout,
                              fmt::format("terwayd received no complete request within {} ms of the connect "
                                          "and dropped the connection (the plugin sends its request at once: "
                                          "this client is stuck or far too slow)",
                                          opts_.read_timeout.count())));
    } else {
      Drop(id, "write_deadline", std::nullopt);
    }
  }
}

bool RpcServer::DropOldestIncomplete(const char* reason, bool reading_only) {
  auto victim = droppable_.begin();
  if (reading_only) {
    while (victim != droppable_.end() && connections_.at(*victim).phase != Phase::kReading) ++victim;
  }
  if (victim == droppable_.end()) return false;
  const uint64_t id = *victim;
  const auto age = SteadyClock::now() - connections_.at(id).accepted;
  Drop(id, reason,
       proto::Reply::Fail(proto::ErrorClass::kRetryable,
                          fmt::format("terwayd dropped this connection ({}): it was the oldest of {} open "
                                      "connections and had no complete request after {} ms; retry, sending the "
                                      "request right after connecting",
                                      reason, connections_.size(), Millis(age))));
  return true;
}

void RpcServer::Drop(uint64_t id, const char* reason, const std::optional<proto::Reply>& answer) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (answer.has_value() && it->second.phase == Phase::kReading) {
    // Best effort, never waiting: a client that does not read gets nothing.
    std::string frame = proto::EncodeReply(*answer);
    [[maybe_unused]] ssize_t n = send(it->second.fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  if (opts_.metrics != nullptr) opts_.metrics->Inc(kDroppedCounter, {{"reason", reason}});
  // An attacker can make drops happen by the thousand: one line per
  // interval, the counter has the rest.
  const auto now = SteadyClock::now();
  drops_since_warning_++;
  if (now >= next_drop_warning_) {
    log::Warn("rpc dropping connections: latest reason={}, {} dropped since the last such line ({} counts "
              "them by reason)",
              reason, drops_since_warning_, kDroppedCounter);
    drops_since_warning_ = 0;
    next_drop_warning_ = now + kDropWarningEvery;
  }
  CloseConnection(id);
}

void RpcServer::CloseConnection(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  ClearDeadline(c, id);
  droppable_.erase(id);
  buffered_bytes_ -= c.counted_bytes;
  const int fd = c.fd;
  connections_.erase(it);
  // Counted before the peer can see the close.
  PublishConnections();
  close(fd);  // also leaves the epoll set: the fd is never duplicated
}

void RpcServer::SetDeadline(Connection& c, uint64_t id, SteadyClock::time_point at) {
  deadlines_.erase({c.deadline, id});
  c.deadline = at;
  deadlines_.insert({at, id});
}

void RpcServer::ClearDeadline(Connection& c, uint64_t id) { deadlines_.erase({c.deadline, id}); }

void RpcServer::CountBuffered(Connection& c) {
  buffered_bytes_ = buffered_bytes_ - c.counted_bytes + c.reader->buffered();
  c.counted_bytes = c.reader->buffered();
}

void RpcServer::BeginStopping() {
  stopping_ = true;
  if (!accept_paused_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  accept_paused_ = false;
  // Connecting fails from here on (ECONNREFUSED): the plugin reports the
  // daemon unavailable and the runtime retries against the next terwayd.
  close(listen_fd_);
  listen_fd_ = -1;
  std::vector<uint64_t> reading;
  for (uint64_t id : droppable_)
    if (connections_.at(id).phase == Phase::kReading) reading.push_back(id);
  for (uint64_t id : reading) {
    Drop(id, "stopping",
         proto::Reply::Fail(proto::ErrorClass::kUnavailable, "terwayd is stopping; retry once it is back"));
  }
  lanes_->Close();  // queued requests are answered "unavailable"
  TakeReplies();
  next_stop_report_ = SteadyClock::now() + kStopReportEvery;
  log::Info("rpc stopping socket={}: no longer accepting; running requests: {}", opts_.socket_path,
            lanes_->Running());
}

}  // namespace terway::daemon
