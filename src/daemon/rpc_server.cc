#include "daemon/rpc_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace terway::daemon {

namespace {

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

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
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

}  // namespace

Status RpcServer::Start() {
  TERWAY_ASSIGN_OR_RETURN(sockaddr_un addr, SocketAddress(opts_.socket_path));
  MakeParentDir(opts_.socket_path);
  if (SocketIsLive(addr)) {
    return Errorf(ErrorCode::kAlreadyExists,
                  "another daemon is serving {}; stop it first (two daemons must never manage "
                  "one node)", opts_.socket_path);
  }
  unlink(opts_.socket_path.c_str());  // stale file of a killed daemon
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return SysError("creating the daemon socket");
  // Create it 0600 from the first instant: umask around bind, not a chmod
  // after it, so there is no window in which others can connect.
  mode_t old = umask(0177);
  int rc = bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  umask(old);
  if (rc != 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    return SysError("binding the daemon socket " + opts_.socket_path, err);
  }
  if (listen(listen_fd_, 512) != 0) {
    err = errno;
    close(listen_fd_);
    listen_fd_ = -1;
    return SysError("listening on " + opts_.socket_path, err);
  }
  stopping_ = false;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  log::Info("rpc listening socket={}", opts_.socket_path);
  return Ok();
}

void RpcServer::Stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return in_flight_ == 0; });
  unlink(opts_.socket_path.c_str());
}

void RpcServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int rc = poll(&p, 1, 200);
    if (rc <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      if (stopping_) break;
      log::Warn("rpc accept failed: {}", std::strerror(errno));
      continue;
    }
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return in_flight_ < opts_.max_in_flight || stopping_; });
      in_flight_++;
    }
    std::thread([this, fd] {
      Serve(fd);
      close(fd);
      std::lock_guard l(mu_);
      in_flight_--;
      cv_.notify_all();
    }).detach();
  }
}

void RpcServer::Serve(int fd) {
  namespace proto = cni::protocol;
  proto::FrameReader reader;
  std::optional<std::string> frame;
  auto deadline = std::chrono::steady_clock::now() + opts_.read_timeout;
  char buf[4096];
  while (!(frame = reader.Next())) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return;  // the plugin went away before finishing its request
    if (!reader.Feed(std::string_view(buf, static_cast<size_t>(n))).ok()) {
      WriteAll(fd, proto::EncodeReply(proto::Reply::Fail(proto::ErrorClass::kInvalid,
                                                         "request frame too large")));
      return;
    }
  }
  auto req = proto::DecodeRequest(*frame);
  proto::Reply reply;
  if (!req.ok()) {
    reply = proto::Reply::Fail(proto::ErrorClass::kInvalid,
                               "malformed request: " + req.error().ToString());
  } else {
    reply = handler_->Handle(*req);
  }
  WriteAll(fd, proto::EncodeReply(reply));
}

}  // namespace terway::daemon
