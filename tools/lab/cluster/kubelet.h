// The lab's kubelet: one per node, inside the control-plane daemon. It
// watches the Pods bound to its node (field selector spec.nodeName) and does
// what a kubelet with a CNI runtime does for a pod's sandbox: a new pod gets
// its namespace and the real `terway` ADD (Lab::RunSandboxAdd), then status
// Running with its IP through pods/status; a failed ADD becomes status Failed
// with the CNI error and a Warning Event (reason FailedCreatePodSandBox); a
// deleted pod gets DEL and its namespace removed (Lab::RunSandboxDel).
//
// Deletion is immediate in the lab's API (no graceful deletion, no
// finalizers), so the kubelet acts on the DELETED event. As a real kubelet's
// pod workers: each pod has its own worker thread, which runs that pod's
// work in event order (its ADD always finishes before its DEL starts; a pod
// deleted and created again under the same name waits for the old DEL),
// while different pods run in parallel: a hung ADD holds up its own pod only
// (until the CNI timeout kills it). The watch thread never waits for the CNI.
// Stop kills the plugins still running.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/cache.h"
#include "k8s/client.h"
#include "tools/lab/cluster/lab.h"

namespace terway::lab {

// Annotation of a Pod asking the lab's kubelet for a CNI version (default 1.0.0).
inline constexpr char kCniVersionAnnotation[] = "lab.terway.dev/cni-version";

// The status merge patch of a pod whose sandbox is up, and of one that failed.
// pod_ips: one per family, IPv4 first (PodIpsOfCniResult); podIP is the first.
nlohmann::json RunningPodStatus(const std::vector<std::string>& pod_ips, const std::string& host_ip,
                                const std::string& now);
nlohmann::json FailedPodStatus(const std::string& message, const std::string& now);
// True when the kubelet should start this pod's sandbox: not yet started
// (no phase or Pending), not being deleted, not host-network.
bool NeedsSandbox(const k8s::Pod& pod);

class LabKubelet {
 public:
  LabKubelet(SandboxRuntime& runtime, std::string lab_dir, NodeRecord node, std::string host_ip,
             k8s::RestClient& client);
  ~LabKubelet();
  void Start();
  void Stop();

 private:
  struct Task {
    bool add = false;
    k8s::Pod pod;
  };
  // One pod's queue and the thread working it (while it has work).
  struct PodWorker {
    std::deque<Task> tasks;
    std::thread thread;
  };
  void Enqueue(Task t);
  void Work(const std::string& key);
  void JoinFinishedLocked(std::unique_lock<std::mutex>& l);
  void SandboxAdd(const k8s::Pod& pod);
  void SandboxDel(const k8s::Pod& pod);
  void RecordEvent(const k8s::Pod& pod, const std::string& type, const std::string& reason,
                   const std::string& message);

  SandboxRuntime& runtime_;
  std::string dir_;
  NodeRecord node_;
  std::string host_ip_;
  k8s::RestClient& client_;
  k8s::RestListerWatcher lw_;
  std::unique_ptr<k8s::Cache<k8s::Pod>> pods_;

  std::mutex mu_;
  std::map<std::string, PodWorker> workers_;  // by ns/name: the sandbox's identity in the lab
  std::vector<std::thread> finished_;         // workers that ran out of work, to be joined
  std::set<std::string> started_;             // pod uids whose sandbox ADD was queued
  bool stop_ = false;
  std::atomic<bool> cancel_{false};           // kills the plugins still running
};

}  // namespace terway::lab
