// The plugin's side of the terwayd protocol: one request, one reply, over a
// unix socket, bounded by a deadline. No threads, no event loop, no RPC
// framework: `terway` is exec'd per pod and must start in about a millisecond.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "cni/protocol.h"
#include "common/result.h"

namespace terway::cni {

class DaemonClient {
 public:
  virtual ~DaemonClient() = default;
  // Transport failures are Errors: kUnavailable when nothing listens on the
  // socket (connect refused / no such file), kTimeout when the deadline
  // passes, kInvalidArgument for a reply that does not decode. Errors the
  // daemon reports arrive inside the Reply.
  virtual Result<protocol::Reply> Call(const protocol::Request& req) = 0;
};

// Talks to terwayd at `socket_path`; each Call waits at most `timeout` and
// tells the daemon (deadline_ms) a little less, so the daemon's own "gave up"
// answer reaches us before we stop listening.
std::unique_ptr<DaemonClient> MakeUnixDaemonClient(std::string socket_path, std::chrono::milliseconds timeout);

// Blocking frame I/O on a connected stream socket with an absolute deadline
// on CLOCK_MONOTONIC (shared by the client, the test daemon and any simple
// server). ReadFrame returns the frame without its '\n'; EOF before a newline
// is kUnavailable, a frame over max_bytes kInvalidArgument.
using Deadline = std::chrono::steady_clock::time_point;
Status WriteFrame(int fd, std::string_view frame, Deadline deadline);
Result<std::string> ReadFrame(int fd, Deadline deadline, size_t max_bytes = protocol::kMaxFrameBytes);

}  // namespace terway::cni
