#include "daemon/request_lanes.h"

#include <exception>

#include <fmt/format.h>

#include "common/log.h"

namespace terway::daemon {

namespace proto = cni::protocol;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr const char* kQueueDepth = "terway_rpc_queue_depth";
constexpr const char* kRunning = "terway_rpc_running";
constexpr const char* kRejected = "terway_rpc_rejected_total";
constexpr const char* kQueueWait = "terway_rpc_queue_wait_seconds";

// "allocate for pod default/web container 3f2a" for error messages.
std::string Describe(const proto::Request& req) {
  std::string s(proto::OpName(req.op));
  if (!req.pod.name.empty()) s += fmt::format(" for pod {}/{}", req.pod.namespace_, req.pod.name);
  if (!req.container_id.empty()) s += fmt::format(" container {}", req.container_id.substr(0, 12));
  return s;
}

int64_t MillisBetween(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

std::string_view LaneName(Lane lane) {
  switch (lane) {
    case Lane::kAdd: return "add";
    case Lane::kRelease: return "release";
    case Lane::kControl: return "control";
  }
  return "unknown";
}

Lane LaneOf(proto::Op op) {
  switch (op) {
    case proto::Op::kAllocate: return Lane::kAdd;
    case proto::Op::kRelease:
    case proto::Op::kGc: return Lane::kRelease;
    case proto::Op::kStatus:
    case proto::Op::kGet:
    case proto::Op::kPolicyExplain:
    case proto::Op::kPolicyShow:
    case proto::Op::kInspect: return Lane::kControl;
  }
  return Lane::kControl;
}

void RequestLanes::DeclareMetrics(Metrics* metrics) {
  if (metrics == nullptr) return;
  metrics->DeclareGauge(kQueueDepth, "CNI socket requests waiting for a worker, by lane");
  metrics->DeclareGauge(kRunning, "CNI socket requests being handled, by lane");
  metrics->DeclareCounter(kRejected,
                          "CNI socket requests answered without being handled, by lane and reason "
                          "(queue_full, deadline_passed, stopping, malformed)");
  metrics->DeclareHistogram(kQueueWait, "Time CNI socket requests waited for a worker, by lane",
                            LatencyBuckets());
}

RequestLanes::RequestLanes(std::array<LaneLimits, kLaneCount> limits, RequestHandler* handler,
                           ReplySink sink, Metrics* metrics)
    : handler_(handler), sink_(std::move(sink)), metrics_(metrics) {
  for (size_t i = 0; i < kLaneCount; i++) lanes_[i].limits = limits[i];
  DeclareMetrics(metrics_);
  std::lock_guard l(mu_);
  for (size_t i = 0; i < kLaneCount; i++) PublishDepth(static_cast<Lane>(i));
}

RequestLanes::~RequestLanes() {
  Close();
  Join();
}

void RequestLanes::Start() {
  for (size_t i = 0; i < kLaneCount; i++) {
    auto& lane = lanes_[i];
    for (int w = 0; w < lane.limits.workers; w++)
      lane.workers.emplace_back([this, i] { Work(static_cast<Lane>(i)); });
  }
}

std::optional<proto::Reply> RequestLanes::Submit(LaneJob job) {
  const Lane lane = LaneOf(job.request.op);
  auto& st = lanes_[static_cast<size_t>(lane)];
  bool closed = false;
  {
    std::lock_guard l(mu_);
    closed = closed_;
    if (!closed) {
      const int occupied = st.running + static_cast<int>(st.queue.size());
      if (occupied < st.limits.workers + st.limits.queue) {
        st.queue.push_back(std::move(job));
        PublishDepth(lane);
        st.work.notify_one();
        return std::nullopt;
      }
    }
  }
  if (closed) {
    Reject(lane, "stopping");
    return proto::Reply::Fail(proto::ErrorClass::kUnavailable,
                              fmt::format("terwayd is stopping and did not start {}; retry once it is back",
                                          Describe(job.request)));
  }
  Reject(lane, "queue_full");
  return proto::Reply::Fail(
      proto::ErrorClass::kRetryable,
      fmt::format("terwayd's {} lane is full ({} requests running and {} waiting, its limits); {} was not "
                  "started; try again later",
                  LaneName(lane), st.limits.workers, st.limits.queue, Describe(job.request)));
}

void RequestLanes::Close() {
  std::vector<LaneJob> queued;
  {
    std::lock_guard l(mu_);
    if (closed_) return;
    closed_ = true;
    for (size_t i = 0; i < kLaneCount; i++) {
      auto& st = lanes_[i];
      for (auto& job : st.queue) queued.push_back(std::move(job));
      st.queue.clear();
      PublishDepth(static_cast<Lane>(i));
      st.work.notify_all();
    }
  }
  for (auto& job : queued) {
    Reject(LaneOf(job.request.op), "stopping");
    sink_(job.connection,
          proto::Reply::Fail(proto::ErrorClass::kUnavailable,
                             fmt::format("terwayd is stopping and did not start {}; retry once it is back",
                                         Describe(job.request))));
  }
}

void RequestLanes::Join() {
  for (auto& st : lanes_) {
    for (auto& t : st.workers)
      if (t.joinable()) t.join();
    st.workers.clear();
  }
}

std::string RequestLanes::Running() const {
  std::lock_guard l(mu_);
  std::string s;
  for (size_t i = 0; i < kLaneCount; i++) {
    if (!s.empty()) s += ' ';
    s += fmt::format("{}={}", LaneName(static_cast<Lane>(i)), lanes_[i].running);
  }
  return s;
}

void RequestLanes::Work(Lane lane) {
  auto& st = lanes_[static_cast<size_t>(lane)];
  std::unique_lock l(mu_);
  while (true) {
    st.work.wait(l, [&] { return closed_ || !st.queue.empty(); });
    if (st.queue.empty()) return;  // closed, and Close answered what was queued
    LaneJob job = std::move(st.queue.front());
    st.queue.pop_front();
    st.running++;
    PublishDepth(lane);
    l.unlock();
    const uint64_t connection = job.connection;
    proto::Reply reply = Answer(lane, job);
    // The reply leaves before the worker counts itself free, so whoever sees
    // a lane idle has seen every reply of it.
    sink_(connection, std::move(reply));
    l.lock();
    st.running--;
    PublishDepth(lane);
  }
}

proto::Reply RequestLanes::Answer(Lane lane, LaneJob& job) {
  const auto now = SteadyClock::now();
  if (metrics_ != nullptr) {
    metrics_->Observe(kQueueWait, {{"lane", std::string(LaneName(lane))}},
                      std::chrono::duration<double>(now - job.received).count());
  }
  if (job.deadline.has_value()) {
    if (now >= *job.deadline) {
      Reject(lane, "deadline_passed");
      return proto::Reply::Fail(
          proto::ErrorClass::kTimeout,
          fmt::format("{} waited {} ms in terwayd's {} lane, past its deadline of {} ms, and was not started; "
                      "the node is busy, the runtime will retry",
                      Describe(job.request), MillisBetween(job.received, now), LaneName(lane),
                      job.request.deadline_ms));
    }
    // What is left of the client's budget, rounded up so a handler never
    // sees 0 ("no deadline") for a request that has one.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*job.deadline - now).count();
    job.request.deadline_ms = static_cast<uint32_t>(std::max<int64_t>(left, 1));
  }
  // The handler is the module boundary: an exception escaping a worker
  // would end terwayd and with it every node-local request.
  try {
    return handler_->Handle(job.request);
  } catch (const std::exception& e) {
    log::Error("rpc handler threw op={} error={}", proto::OpName(job.request.op), e.what());
    return proto::Reply::Fail(proto::ErrorClass::kInternal,
                              fmt::format("terwayd failed handling {}: {} (a bug; please report it with "
                                          "terwayd's log)",
                                          Describe(job.request), e.what()));
  }
}

void RequestLanes::PublishDepth(Lane lane) {
  if (metrics_ == nullptr) return;
  const auto& st = lanes_[static_cast<size_t>(lane)];
  const Labels labels{{"lane", std::string(LaneName(lane))}};
  metrics_->Set(kQueueDepth, labels, static_cast<double>(st.queue.size()));
  metrics_->Set(kRunning, labels, st.running);
}

void RequestLanes::Reject(Lane lane, const char* reason) {
  if (metrics_ != nullptr) metrics_->Inc(kRejected, {{"lane", std::string(LaneName(lane))}, {"reason", reason}});
}

}  // namespace terway::daemon
