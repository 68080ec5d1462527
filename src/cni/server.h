// Server-side helpers of the CNI <-> terwayd protocol, for terwayd (and the
// in-test daemon): create the listening socket with the right permissions,
// and serve one connection (read one request, call the handler, write one
// reply). Threading is the caller's choice.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "cni/daemon_client.h"
#include "cni/protocol.h"
#include "common/result.h"

namespace terway::cni::protocol {

// Binds a unix stream socket at `path` with mode 0600 (root only: a pod
// process must not be able to allocate or release IPs) and listens. Creates
// the parent directory (0700) if missing and removes a stale socket file
// left by a crashed daemon. Returns the listening fd (CLOEXEC).
Result<int> ListenUnix(const std::string& path, int backlog = 128);

// What a handler gets besides the request: when the client stops waiting.
using RequestHandler = std::function<Reply(const Request& req, Deadline deadline)>;

// Serves one accepted connection: waits at most `read_timeout` for the
// request frame, answers malformed ones with class "invalid" (the handler is
// not called), otherwise calls `handler` with the request's deadline
// (receipt + deadline_ms, or `default_budget` when the client sent none) and
// writes its reply. Does not close `fd`.
Status ServeConnection(int fd, const RequestHandler& handler,
                       std::chrono::milliseconds read_timeout = std::chrono::seconds(5),
                       std::chrono::milliseconds default_budget = std::chrono::seconds(60));

}  // namespace terway::cni::protocol
