// The daemon's end of the CNI <-> terwayd protocol (src/cni/protocol.h): a
// unix stream socket, one request per connection, one JSON line each way.
//
// The socket is created mode 0600 (root only: whoever can talk to it can take
// and free pod addresses). A stale socket file from a killed daemon is
// replaced, but a socket that still answers is refused, so two daemons never
// serve one node.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "cni/protocol.h"
#include "common/result.h"

namespace terway::daemon {

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual cni::protocol::Reply Handle(const cni::protocol::Request& req) = 0;
};

struct RpcServerOptions {
  std::string socket_path = cni::protocol::kDefaultSocketPath;
  // Concurrent requests served at once; more wait in the listen backlog.
  // Pod starts are bursty (a node schedules dozens at once) and an allocate
  // may wait for the pool to grow, so this is generous.
  int max_in_flight = 256;
  // A client that connects and sends nothing is dropped after this long.
  std::chrono::milliseconds read_timeout{10000};
};

class RpcServer {
 public:
  RpcServer(RpcServerOptions opts, RequestHandler* handler)
      : opts_(std::move(opts)), handler_(handler) {}
  ~RpcServer() { Stop(); }

  // Binds the socket and starts accepting on a background thread.
  Status Start();
  // Stops accepting, waits for in-flight requests, removes the socket file.
  void Stop();

 private:
  void AcceptLoop();
  void Serve(int fd);

  RpcServerOptions opts_;
  RequestHandler* handler_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

}  // namespace terway::daemon
