#include "k8s/reporter.h"

#include <ctime>

#include <fmt/format.h>

namespace terway::k8s {
namespace {

// Bounds the aggregation memory of a long-running daemon; dropping it only
// means the next repeat starts a fresh Event.
constexpr size_t kMaxRememberedEvents = 4096;

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

}  // namespace

std::string FormatKubeTime(Clock::TimePoint t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

NodeReporter::NodeReporter(RestClient& client, std::string node_name, const Clock& clock)
    : client_(client), node_name_(std::move(node_name)), clock_(clock) {}

Status NodeReporter::SetMaxAvailableIp(int max_pods) {
  if (max_pods < 0) {
    return Errorf(ErrorCode::kInvalidArgument, "max-available-ip of node {} must not be negative, got {}", node_name_,
                  max_pods);
  }
  // A merge patch of one annotation leaves every other annotation alone.
  Json patch = {{"metadata", {{"annotations", {{kMaxAvailableIpAnnotation, std::to_string(max_pods)}}}}}};
  auto r = client_.Patch(resources::kNodes, "", node_name_, PatchType::kMerge, patch);
  if (!r.ok()) {
    return std::move(r).error().Wrap(fmt::format("annotating node {} with {}", node_name_, kMaxAvailableIpAnnotation));
  }
  return Ok();
}

Status NodeReporter::SetEniCapacity(int enis) {
  if (enis < 0) {
    return Errorf(ErrorCode::kInvalidArgument, "{} capacity of node {} must not be negative, got {}", kEniResource,
                  node_name_, enis);
  }
  // Quantities are strings in the API; capacity and allocatable both, since
  // the scheduler fits pods against allocatable. A merge patch of the two
  // maps keeps the kubelet's cpu/memory/pods entries.
  const std::string q = std::to_string(enis);
  Json patch = {{"status", {{"capacity", {{kEniResource, q}}}, {"allocatable", {{kEniResource, q}}}}}};
  auto r = client_.Patch(resources::kNodes, "", node_name_, PatchType::kMerge, patch, "status");
  if (!r.ok()) return std::move(r).error().Wrap(fmt::format("setting {} on node {}", kEniResource, node_name_));
  return Ok();
}

Status NodeReporter::SetSufficientIp(bool sufficient, const std::string& message) {
  Status last;
  for (int attempt = 0; attempt < kConflictAttempts; ++attempt) {
    last = TrySetSufficientIp(sufficient, message);
    if (last.ok() || last.error().code != ErrorCode::kConflict) break;
  }
  if (!last.ok()) {
    return std::move(last).error().Wrap(fmt::format("setting condition {} on node {}", kSufficientIpCondition,
                                                    node_name_));
  }
  return Ok();
}

Status NodeReporter::TrySetSufficientIp(bool sufficient, const std::string& message) {
  TERWAY_ASSIGN_OR_RETURN(Json raw, client_.Get(resources::kNodes, "", node_name_));
  TERWAY_ASSIGN_OR_RETURN(Node node, ParseNode(raw));
  const std::string status = sufficient ? "True" : "False";
  const std::string now = FormatKubeTime(clock_.Now());
  std::string transition = now;
  for (const auto& c : node.conditions) {
    if (c.type == kSufficientIpCondition && c.status == status && !c.last_transition_time.empty()) {
      transition = c.last_transition_time;
    }
  }
  Json condition = {{"type", kSufficientIpCondition},
                    {"status", status},
                    {"reason", sufficient ? kSufficientIpReason : kInsufficientIpReason},
                    {"message", message},
                    {"lastHeartbeatTime", now},
                    {"lastTransitionTime", transition}};
  // Strategic merge: node conditions merge by "type", so only ours changes.
  // (A JSON merge patch would replace the whole list, wiping the kubelet's
  // Ready condition.) The resourceVersion makes the write conditional on
  // what we read, so a status flip racing another writer is re-evaluated.
  Json patch = {{"metadata", {{"resourceVersion", node.metadata.resource_version}}},
                {"status", {{"conditions", Json::array({condition})}}}};
  auto r = client_.Patch(resources::kNodes, "", node_name_, PatchType::kStrategicMerge, patch, "status");
  if (!r.ok()) return std::move(r).error();
  return Ok();
}

Status SetPodIps(RestClient& client, const std::string& ns, const std::string& pod,
                 const std::vector<std::string>& ips) {
  // null deletes the key under merge-patch semantics.
  Json value = ips.empty() ? Json(nullptr) : Json(Join(ips, ","));
  Json patch = {{"metadata", {{"annotations", {{kPodIpsAnnotation, value}}}}}};
  auto r = client.Patch(resources::kPods, ns, pod, PatchType::kMerge, patch);
  if (!r.ok()) return std::move(r).error().Wrap(fmt::format("annotating pod {}/{} with {}", ns, pod, kPodIpsAnnotation));
  return Ok();
}

EventRecorder::EventRecorder(RestClient& client, std::string host, const Clock& clock)
    : client_(client), host_(std::move(host)), clock_(clock) {}

Status EventRecorder::Record(const ObjectReference& involved, EventType type, const std::string& reason,
                             const std::string& message) {
  const std::string type_name = type == EventType::kWarning ? "Warning" : "Normal";
  const std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}\x1f{}", involved.kind, involved.namespace_,
                                      involved.name, involved.uid, type_name, reason, message);
  // Held across the request: events are rare (failures), and serialising
  // them keeps a repeat from racing the create of its first occurrence.
  std::lock_guard l(mu_);
  auto it = written_.find(key);
  if (it == written_.end()) return Create(involved, type, reason, message, key);

  Written& w = it->second;
  const int32_t count = w.count + 1;
  Json patch = {{"count", count}, {"lastTimestamp", FormatKubeTime(clock_.Now())}};
  auto r = client_.Patch(resources::kEvents, w.ns, w.name, PatchType::kStrategicMerge, patch);
  if (r.ok()) {
    w.count = count;
    return Ok();
  }
  // Events expire (the API server's event TTL, an hour by default): start
  // a new one rather than failing the report.
  if (r.error().code == ErrorCode::kNotFound) {
    written_.erase(it);
    return Create(involved, type, reason, message, key);
  }
  return std::move(r).error().Wrap(fmt::format("updating event {}/{}", w.ns, w.name));
}

Status EventRecorder::Create(const ObjectReference& involved, EventType type, const std::string& reason,
                             const std::string& message, const std::string& key) {
  const auto now = clock_.Now();
  const std::string ts = FormatKubeTime(now);
  Event e;
  // client-go's naming: the object's name and a unique hex suffix.
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  e.metadata.name = fmt::format("{}.{:x}", involved.name, static_cast<uint64_t>(nanos));
  e.metadata.namespace_ = involved.namespace_.empty() ? "default" : involved.namespace_;
  e.involved_object = involved;
  e.reason = reason;
  e.message = message;
  e.type = type == EventType::kWarning ? "Warning" : "Normal";
  e.source_component = kEventComponent;
  e.source_host = host_;
  e.first_timestamp = ts;
  e.last_timestamp = ts;
  e.count = 1;
  auto r = client_.Create(resources::kEvents, e.metadata.namespace_, EventToJson(e));
  if (!r.ok()) {
    return std::move(r).error().Wrap(fmt::format("creating event {} for {} {}", reason, involved.kind, involved.name));
  }
  if (written_.size() >= kMaxRememberedEvents) written_.clear();
  written_[key] = Written{e.metadata.namespace_, e.metadata.name, 1};
  return Ok();
}

}  // namespace terway::k8s
