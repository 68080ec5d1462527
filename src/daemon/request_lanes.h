// Request lanes: terwayd handles CNI socket requests in lanes by operation
// class, each with its own bounded workers and queue, so one slow class
// cannot delay another. An ADD may wait for the cloud (the pool growing, an
// ENI attaching) up to its deadline; DEL must still free addresses and
// STATUS must still answer the runtime while dozens of ADDs wait.
//
//   lane     ops                                          why its own lane
//   add      allocate                                      waits for the cloud
//   release  release, gc                                   frees addresses: must not wait behind ADD
//   control  status, get, policy_explain, policy_show,     cheap reads; the runtime's health probe
//            inspect (terway-cli's views)
//
// A lane holds at most `workers` running and `queue` waiting requests; one
// more is refused at once with class "retryable" (the plugin answers CNI code
// 11, "try again later", and the runtime retries) rather than waiting without
// bound. A request whose deadline passes while it waits is answered "timeout"
// without being handled: nobody is waiting for its answer any more, and
// starting an ADD then would allocate an address for a sandbox the runtime
// has already given up on.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cni/protocol.h"
#include "daemon/metrics.h"

namespace terway::daemon {

// What terwayd does with one request (the CNI service implements it).
//
// The request's deadline_ms is the time left when the handler starts, not
// what the client sent: the time the request waited in its lane is already
// taken off, so a handler that honours deadline_ms stops when the client
// stops waiting.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual cni::protocol::Reply Handle(const cni::protocol::Request& req) = 0;
};

enum class Lane { kAdd = 0, kRelease = 1, kControl = 2 };
inline constexpr size_t kLaneCount = 3;
std::string_view LaneName(Lane lane);
Lane LaneOf(cni::protocol::Op op);

struct LaneLimits {
  int workers = 1;  // handlers running at once (threads)
  int queue = 0;    // requests waiting for a worker; one more is refused
};

// One request read off a connection, waiting for a worker.
struct LaneJob {
  uint64_t connection = 0;  // the server's id for the reply
  cni::protocol::Request request;
  std::chrono::steady_clock::time_point received;
  // received + deadline_ms; none when the client sent no deadline.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

class RequestLanes {
 public:
  // Called on a worker thread (or on Close's caller for queued requests)
  // with every request's reply, exactly once per accepted job.
  using ReplySink = std::function<void(uint64_t connection, cni::protocol::Reply reply)>;

  // limits are indexed by Lane. metrics may be null.
  RequestLanes(std::array<LaneLimits, kLaneCount> limits, RequestHandler* handler, ReplySink sink,
               Metrics* metrics);
  ~RequestLanes();
  RequestLanes(const RequestLanes&) = delete;
  RequestLanes& operator=(const RequestLanes&) = delete;

  // Starts every lane's workers.
  void Start();
  // Queues the job on its operation's lane. Returns the reply to send at once
  // instead when the lane is full ("retryable") or closed ("unavailable").
  std::optional<cni::protocol::Reply> Submit(LaneJob job);
  // Refuses further jobs and answers the queued ones "unavailable" (through
  // the sink, on this thread); running handlers go on.
  void Close();
  // Waits for the workers, i.e. for the running handlers to return. Their
  // bound is the request deadlines they were given.
  void Join();

  // For the operator's log while stopping: "add=2 release=0 control=0".
  std::string Running() const;

  // Declares the lane metrics (idempotent); metrics may be null.
  static void DeclareMetrics(Metrics* metrics);

 private:
  struct LaneState {
    LaneLimits limits;
    std::deque<LaneJob> queue;
    int running = 0;
    std::condition_variable work;
    std::vector<std::thread> workers;
  };
  void Work(Lane lane);
  // Handles one dequeued job (no lock held).
  cni::protocol::Reply Answer(Lane lane, LaneJob& job);
  void PublishDepth(Lane lane);  // mu_ held
  void Reject(Lane lane, const char* reason);

  RequestHandler* handler_;
  ReplySink sink_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::array<LaneState, kLaneCount> lanes_;
  bool closed_ = false;
};

}  // namespace terway::daemon
