// What terwayd writes back to Kubernetes: the node's IP capacity and health
// as the scheduler and operators see them, the IPs of each pod, and Events
// when an allocation fails. Terway's names throughout, so dashboards and
// scripts written for Terway keep working.
//
// Each writer is one PATCH with the smallest body that expresses the change,
// so it never overwrites fields other controllers own (the kubelet's
// conditions and capacity, other annotations). Where a write depends on what
// is stored (a condition's lastTransitionTime), the patch carries the read
// resourceVersion and a 409 Conflict re-reads and retries.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "k8s/client.h"
#include "k8s/types.h"

namespace terway::k8s {

inline constexpr char kMaxAvailableIpAnnotation[] = "k8s.aliyun.com/max-available-ip";
inline constexpr char kPodIpsAnnotation[] = "k8s.aliyun.com/pod-ips";
// Extended resource of exclusive-ENI nodes: one unit per ENI a pod can own.
inline constexpr char kEniResource[] = "aliyun/eni";
inline constexpr char kSufficientIpCondition[] = "SufficientIP";
inline constexpr char kSufficientIpReason[] = "SufficientIP";
inline constexpr char kInsufficientIpReason[] = "InsufficientIP";
// Event source component, as Terway's daemon reports itself.
inline constexpr char kEventComponent[] = "terwayd";

// Attempts of a read-modify-write before a conflict is returned to the caller.
inline constexpr int kConflictAttempts = 5;

// Kubernetes timestamps (metav1.Time): RFC 3339 in UTC, whole seconds.
std::string FormatKubeTime(Clock::TimePoint t);

// Writes to this node's object.
class NodeReporter {
 public:
  NodeReporter(RestClient& client, std::string node_name, const Clock& clock = RealClock::Instance());

  // Annotation k8s.aliyun.com/max-available-ip = max_pods (the node's pod
  // capacity from its instance type and mode).
  Status SetMaxAvailableIp(int max_pods);

  // status.capacity and status.allocatable "aliyun/eni" = enis, through the
  // nodes/status subresource (the main resource ignores status writes).
  Status SetEniCapacity(int enis);

  // Sets or refreshes condition SufficientIP: status True (reason
  // SufficientIP) or False (reason InsufficientIP) with the message;
  // lastHeartbeatTime is always now, lastTransitionTime only moves when the
  // status flips.
  Status SetSufficientIp(bool sufficient, const std::string& message);

  const std::string& node_name() const { return node_name_; }

 private:
  Status TrySetSufficientIp(bool sufficient, const std::string& message);

  RestClient& client_;
  std::string node_name_;
  const Clock& clock_;
};

// Annotation k8s.aliyun.com/pod-ips = the pod's IPs, comma-separated (IPv4
// first, as Terway lists them). An empty list removes the annotation.
Status SetPodIps(RestClient& client, const std::string& ns, const std::string& pod,
                 const std::vector<std::string>& ips);

enum class EventType { kNormal, kWarning };

// v1 Events from source terwayd. Like client-go's recorder, a repeat of the
// same (object, type, reason, message) bumps count and lastTimestamp of the
// event already written instead of creating another, so a pod stuck in
// allocation failures does not flood etcd.
class EventRecorder {
 public:
  EventRecorder(RestClient& client, std::string host, const Clock& clock = RealClock::Instance());

  // involved.namespace_ empty (a Node): the event goes to "default", where
  // kubectl describe node looks for it.
  Status Record(const ObjectReference& involved, EventType type, const std::string& reason,
                const std::string& message);

 private:
  struct Written {
    std::string ns;
    std::string name;
    int32_t count = 0;
  };
  Status Create(const ObjectReference& involved, EventType type, const std::string& reason,
                const std::string& message, const std::string& key);

  RestClient& client_;
  std::string host_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Written> written_;  // by aggregation key
};

}  // namespace terway::k8s
