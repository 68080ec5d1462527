// The daemon's end of the CNI <-> terwayd protocol (src/cni/protocol.h): a
// unix stream socket, one request per connection, one JSON line each way.
//
// The socket is created mode 0600 (root only: whoever can talk to it can take
// and free pod addresses). A stale socket file from a killed daemon is
// replaced, but a socket that still answers is refused, so two daemons never
// serve one node.
//
// Nothing a client does can starve the daemon:
// - One event loop thread accepts connections and reads them (non-blocking,
//   epoll). A connection holds no worker until its whole request frame has
//   arrived, so idle or slow clients cost a file descriptor and a buffer,
//   never a request slot.
// - The frame must be complete within `read_timeout` of the connect (a
//   deadline for the whole frame, not per read: a client dripping a byte at a
//   time is dropped as surely as an idle one). The plugin writes its request
//   right after connecting, so 2 s is a wide margin.
// - At most `max_connections` are open. When one more arrives, the OLDEST
//   connection that has not finished sending its request (or not taken its
//   reply) is dropped, not the new one. Why oldest: refusing new connections
//   would let whoever fills the table first keep everyone out for as long as
//   it likes; dropping the oldest means an attacker must open
//   max_connections connections in the few microseconds between a plugin's
//   connect and its write to push that plugin out, and every connection it
//   holds dies within read_timeout anyway. A random victim would be kinder to
//   nobody: the attacker's connections are the old ones. Connections whose
//   request is being handled are never dropped: they are bounded by the lanes.
// - Requests are handled in lanes by operation class (request_lanes.h): ADD,
//   DEL/GC and control (STATUS, CHECK, policy queries) each have their own
//   workers and queue, so DEL and STATUS never wait behind ADDs blocked on the
//   cloud. A full lane answers "retryable" at once.
// - Replies are written without blocking; a client that does not take its
//   reply within `write_timeout` is dropped. The loop never waits on a peer.
// - Buffered request bytes of all connections together are capped
//   (`max_buffered_bytes`); past it the oldest incomplete connection goes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cni/protocol.h"
#include "common/result.h"
#include "daemon/metrics.h"
#include "daemon/request_lanes.h"

namespace terway::daemon {

struct RpcServerOptions {
  std::string socket_path = cni::protocol::kDefaultSocketPath;
  // Connections open at once (reading, handled, or writing the reply). Must
  // exceed the lanes' workers + queues together, so that a full table always
  // has a connection that may be dropped. Each costs a file descriptor.
  int max_connections = 512;
  // The whole request frame must arrive within this long of the connect.
  std::chrono::milliseconds read_timeout{2000};
  // The client must take its whole reply within this long of it being ready.
  std::chrono::milliseconds write_timeout{2000};
  size_t max_frame_bytes = cni::protocol::kMaxFrameBytes;
  // Request bytes buffered over all connections that are still reading.
  size_t max_buffered_bytes = size_t{64} << 20;
  // Lanes (see request_lanes.h). Pod starts come in bursts (a node schedules
  // dozens of pods at once) and an ADD may wait for the pool to grow, so the
  // add lane is the widest; what waits in a queue has its deadline running.
  LaneLimits add_lane{32, 128};
  LaneLimits release_lane{8, 128};
  LaneLimits control_lane{4, 32};
  // Gauges and counters for the operator (terway_rpc_*); may be null.
  Metrics* metrics = nullptr;
};

class RpcServer {
 public:
  RpcServer(RpcServerOptions opts, RequestHandler* handler);
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Binds the socket and starts the event loop and the lanes' workers.
  Status Start();
  // Stops accepting (connecting then fails at once), drops connections still
  // sending their request, answers queued requests "unavailable", lets the
  // running handlers finish and delivers their replies, then removes the
  // socket file. Running handlers are bounded by the deadlines they were
  // given (the client's budget); while Stop waits it logs which lanes still
  // run something every few seconds.
  void Stop();

 private:
  enum class Phase { kReading, kHandling, kWriting };
  struct Connection {
    int fd = -1;
    Phase phase = Phase::kReading;
    std::unique_ptr<cni::protocol::FrameReader> reader;
    size_t counted_bytes = 0;  // this connection's share of buffered_bytes_
    std::string reply;
    size_t sent = 0;
    std::chrono::steady_clock::time_point accepted;
    std::chrono::steady_clock::time_point deadline;  // reading or writing
  };
  Status Bind();
  Status OpenEventLoop();
  void DeclareMetrics();
  void Loop();
  int LoopTimeoutMillis() const;
  void AcceptAll();
  void OnEvent(uint64_t id, uint32_t events);
  void OnReadable(uint64_t id);
  void OnFrame(uint64_t id, std::string frame);
  void SendReply(uint64_t id, std::string frame);
  void FlushReply(uint64_t id);
  void TakeReplies();
  void ExpireDeadlines();
  // reason is the metric label; answer, if any, is sent best effort to a
  // connection still reading (one that is writing already has its reply).
  // Buffer pressure only drops readers: a reply in flight holds no request bytes.
  bool DropOldestIncomplete(const char* reason, bool reading_only = false);
  void Drop(uint64_t id, const char* reason, const std::optional<cni::protocol::Reply>& answer);
  void CloseConnection(uint64_t id);
  void SetDeadline(Connection& c, uint64_t id, std::chrono::steady_clock::time_point at);
  void ClearDeadline(Connection& c, uint64_t id);
  void CountBuffered(Connection& c);
  void BeginStopping();
  void RemoveSocketFile();
  void PublishConnections();
  void Wake();
  void CloseFds();

  RpcServerOptions opts_;
  RequestHandler* handler_;
  std::unique_ptr<RequestLanes> lanes_;
  int listen_fd_ = -1;
  dev_t socket_dev_ = 0;  // the inode we bound, so Stop never removes a successor's socket
  ino_t socket_ino_ = 0;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: replies are ready, or Stop was called
  std::thread loop_;
  bool started_ = false;
  std::atomic<bool> stop_requested_{false};

  // Replies from the lanes' workers, handed to the loop.
  std::mutex replies_mu_;
  std::vector<std::pair<uint64_t, std::string>> replies_;

  // Loop thread only.
  uint64_t next_id_ = 0;
  std::map<uint64_t, Connection> connections_;
  std::set<uint64_t> droppable_;  // reading or writing, in accept order
  std::set<std::pair<std::chrono::steady_clock::time_point, uint64_t>> deadlines_;
  size_t buffered_bytes_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point accept_resume_;  // after running out of file descriptors
  bool accept_paused_ = false;
  std::chrono::steady_clock::time_point next_drop_warning_;
  uint64_t drops_since_warning_ = 0;
  std::chrono::steady_clock::time_point next_stop_report_;
};

}  // namespace terway::daemon
