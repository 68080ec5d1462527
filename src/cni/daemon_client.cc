#include "cni/daemon_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace terway::cni {

namespace {

int MillisLeft(Deadline deadline) {
  // Round up: poll() must not wake before the deadline and then report a
  // timeout that has not happened yet.
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 0x7fffffff ? 0x7fffffff : static_cast<int>(left.count());
}

// Waits until fd is ready for `events` or the deadline passes.
Status WaitFd(int fd, short events, Deadline deadline, const char* what) {
  while (true) {
    int ms = MillisLeft(deadline);
    if (ms == 0) return Errorf(ErrorCode::kTimeout, "timed out {}", what);
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return SysError(std::string("poll while ") + what);
    }
    if (n > 0) return Ok();
  }
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class UnixDaemonClient : public DaemonClient {
 public:
  UnixDaemonClient(std::string path, std::chrono::milliseconds timeout)
      : path_(std::move(path)), timeout_(timeout) {}

  Result<protocol::Reply> Call(const protocol::Request& req_in) override {
    const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
    protocol::Request req = req_in;
    // Leave the daemon a tenth of the budget (at least 100 ms, when there is
    // that much) to send its "deadline exceeded" reply before we give up.
    auto margin = std::max<int64_t>(timeout_.count() / 10, timeout_.count() > 200 ? 100 : 0);
    req.deadline_ms = static_cast<uint32_t>(std::max<int64_t>(timeout_.count() - margin, 1));

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // The plugin checks the path before it gets here (as a configuration
    // error); this keeps the memcpy below safe for any other caller.
    TERWAY_TRY(protocol::CheckSocketPath(path_));
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);

    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd.get() < 0) return SysError("creating unix socket");
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      int err = errno;
      // A unix-socket connect either succeeds at once or fails; EAGAIN means
      // the daemon's accept backlog is full: busy, not down.
      if (err == EAGAIN)
        return Error(ErrorCode::kConflict, fmt::format("terwayd at {} is overloaded (accept queue full)", path_));
      Error e = SysError(fmt::format("connecting to terwayd at {}", path_), err);
      e.code = (err == ENOENT || err == ECONNREFUSED) ? ErrorCode::kUnavailable : ErrorCode::kKernel;
      return e;
    }
    TERWAY_TRY_CTX(WriteFrame(fd.get(), protocol::EncodeRequest(req), deadline),
                   fmt::format("sending {} to terwayd at {}", protocol::OpName(req.op), path_));
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string frame, ReadFrame(fd.get(), deadline),
                                fmt::format("waiting for terwayd at {} to answer {}", path_,
                                            protocol::OpName(req.op)));
    return protocol::DecodeReply(frame);
  }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::unique_ptr<DaemonClient> MakeUnixDaemonClient(std::string socket_path, std::chrono::milliseconds timeout) {
  return std::make_unique<UnixDaemonClient>(std::move(socket_path), timeout);
}

Status WriteFrame(int fd, std::string_view frame, Deadline deadline) {
  while (!frame.empty()) {
    // MSG_NOSIGNAL: a daemon that hung up must give us EPIPE, not kill us.
    ssize_t n = send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      frame.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TERWAY_TRY(WaitFd(fd, POLLOUT, deadline, "writing a frame"));
      continue;
    }
    Error e = SysError("writing a frame");
    if (errno == EPIPE || errno == ECONNRESET) e.code = ErrorCode::kUnavailable;
    return e;
  }
  return Ok();
}

Result<std::string> ReadFrame(int fd, Deadline deadline, size_t max_bytes) {
  std::string buf;
  char chunk[4096];
  while (true) {
    ssize_t n = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      // One request per connection: the peer sends exactly one frame, so
      // anything after the newline is a protocol violation we can ignore.
      std::string_view got(chunk, static_cast<size_t>(n));
      auto nl = got.find('\n');
      buf.append(got.substr(0, nl));
      if (buf.size() > max_bytes)
        return Errorf(ErrorCode::kInvalidArgument, "frame exceeds {} bytes", max_bytes);
      if (nl != std::string_view::npos) return buf;
      continue;
    }
    if (n == 0)
      return Error(ErrorCode::kUnavailable, buf.empty() ? "peer closed the connection without answering"
                                                        : "peer closed the connection in the middle of a frame");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      TERWAY_TRY(WaitFd(fd, POLLIN, deadline, "reading a frame"));
      continue;
    }
    Error e = SysError("reading a frame");
    if (errno == ECONNRESET) e.code = ErrorCode::kUnavailable;
    return e;
  }
}

}  // namespace terway::cni
