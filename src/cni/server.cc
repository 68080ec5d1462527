#include "cni/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace terway::cni::protocol {

Result<int> ListenUnix(const std::string& path, int backlog) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  TERWAY_TRY(CheckSocketPath(path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Errorf(ErrorCode::kPermission, "creating {}: {}", dir.string(), ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  // A socket file outlives its daemon; bind() fails with EADDRINUSE on it.
  // Only remove sockets, never a regular file someone put there.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Errorf(ErrorCode::kAlreadyExists, "{} exists and is not a socket; refusing to replace it", path);
    if (unlink(path.c_str()) != 0) return SysError("removing stale socket " + path);
  }

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError("creating unix socket");
  // umask while binding so the socket is never, even briefly, reachable by
  // others; chmod afterwards as well in case the umask was wider.
  mode_t old = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  umask(old);
  if (rc != 0) {
    close(fd);
    return SysError("binding " + path, bind_errno);
  }
  if (chmod(path.c_str(), 0600) != 0 || listen(fd, backlog) != 0) {
    Error e = SysError("preparing " + path);
    close(fd);
    return e;
  }
  return fd;
}

Status ServeConnection(int fd, const RequestHandler& handler, std::chrono::milliseconds read_timeout,
                       std::chrono::milliseconds default_budget) {
  const auto received_by = std::chrono::steady_clock::now() + read_timeout;
  TERWAY_ASSIGN_OR_RETURN_CTX(std::string frame, ReadFrame(fd, received_by), "reading a CNI request");
  const auto now = std::chrono::steady_clock::now();
  auto req = DecodeRequest(frame);
  Reply reply;
  Deadline deadline = now + default_budget;
  if (!req.ok()) {
    reply = Reply::Fail(ErrorClass::kInvalid, req.error().ToString());
  } else {
    if (req->deadline_ms) deadline = now + std::chrono::milliseconds(req->deadline_ms);
    reply = handler(*req, deadline);
  }
  // The reply is small; give the client a short grace past its deadline to
  // read it (it may have stopped listening, which only costs us EPIPE).
  TERWAY_TRY_CTX(WriteFrame(fd, EncodeReply(reply), std::max(deadline, now) + std::chrono::seconds(1)),
                 "writing a CNI reply");
  if (!req.ok()) return std::move(req).error().Wrap("decoding a CNI request");
  return Ok();
}

}  // namespace terway::cni::protocol
