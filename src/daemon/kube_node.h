// KubeNode: terwayd's view of Kubernetes for one node. A cache of the pods
// bound to this node (field selector spec.nodeName) and of the Node object
// itself, read by the CNI service (labels, annotations, owner kind) and by
// the pool's pod garbage collection (live pods); and the writes back:
// max-available-ip, aliyun/eni capacity, SufficientIP, pod-ips, Events.
//
// Writes are best-effort: they run on one writer thread, failures are logged
// and counted (terway_k8s_writes_total{write,result}), and an ADD never
// waits for them or fails because of them. Bandwidth annotation changes go
// to their listener on a thread of their own (tc work must not hold up API
// writes, nor a slow API the shaping), the latest change per pod only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/metrics.h"
#include "daemon/pod_directory.h"
#include "ipam/types.h"
#include "k8s/cache.h"
#include "k8s/client.h"
#include "k8s/reporter.h"

namespace terway::daemon {

// ---- pure parts (unit-tested) ----

// Labels, annotations, uid and the controller's kind (the owner reference
// with controller=true, else the first one).
PodMetadata PodMetadataFromPod(const k8s::Pod& pod);
// The pods whose addresses garbage collection must keep: every cached pod,
// plus pods an ADD started for within the grace period (the cache may not
// have seen them yet), plus pods a direct GET confirmed.
std::vector<ipam::LivePod> MergeLivePods(const std::vector<k8s::Pod>& cached,
                                         const std::vector<std::pair<std::string, std::string>>& protected_pods);
// True when a pod update changed any bandwidth annotation (added, changed
// or removed).
bool BandwidthAnnotationsChanged(const k8s::Pod& before, const k8s::Pod& after);
// True when the error says the node cannot get another address (vSwitch out
// of IPs, ENI quota, max pods): the node's SufficientIP turns False.
bool PoolCannotGrow(const Error& e);

struct KubeNodeOptions {
  std::string node_name;
  // How long an ADD protects its pod from garbage collection regardless of
  // the cache (far above the watch's latency).
  std::chrono::seconds allocation_grace{120};
  // How long Create waits for the first list of pods and of the node.
  std::chrono::milliseconds sync_timeout{30000};
  // eni_conf enable_patch_pod_ips (upstream's default true): annotate served
  // pods with k8s.aliyun.com/pod-ips.
  bool patch_pod_ips = true;
};

class KubeNode : public PodDirectory {
 public:
  // Starts the caches and waits for their first list; an API that does not
  // answer within sync_timeout is an error naming the server's node object.
  static Result<std::unique_ptr<KubeNode>> Create(std::shared_ptr<k8s::RestClient> client, KubeNodeOptions opts,
                                                  Metrics* metrics);
  ~KubeNode() override;

  // Stops the writer and bandwidth threads (dropping what they have
  // queued), the listener and the caches; before the objects a listener
  // uses go away.
  // Idempotent (the destructor calls it too).
  void Shutdown();
  // The pods of this node the cache holds.
  std::vector<k8s::Pod> Pods() const;

  // Node-level reports at start: max pods, aliyun/eni (exclusive ENI only).
  void ReportCapacity(int max_pods, bool exclusive_eni);

  // For pod GC (PodGcOptions::live_pods). held: namespace/name of every pod
  // holding an address; those the cache lacks are confirmed by a GET (a pod
  // the watch has not delivered yet is not freed). An error (cache not
  // synced, API unreachable) makes pod GC trust only vanished namespaces
  // this round.
  Result<std::vector<ipam::LivePod>> LivePods(const std::vector<std::pair<std::string, std::string>>& held);

  // PodDirectory.
  std::string NodeRefusal() override;
  Result<std::optional<PodMetadata>> Lookup(const std::string& ns, const std::string& name) override;
  std::optional<PodMetadata> Cached(const std::string& ns, const std::string& name) override;
  void AllocationStarted(const std::string& ns, const std::string& name) override;
  void Allocated(const std::string& ns, const std::string& name, const std::vector<std::string>& ips,
                 bool in_api) override;
  void Released(const std::string& ns, const std::string& name) override;
  void AllocationFailed(const std::string& ns, const std::string& name, const std::string& uid,
                        const Error& e) override;
  void PodWarning(const std::string& ns, const std::string& name, const std::string& uid, const std::string& reason,
                  const std::string& message) override;
  // A Warning Event on any object (a policy enforced on the safe side),
  // queued on the writer like every other write.
  void ObjectWarning(const k8s::ObjectReference& object, const std::string& reason, const std::string& message);

  // Called (on KubeNode's bandwidth thread, never the watch's) when a pod
  // of this node changes its bandwidth annotations, with all its current
  // annotations; changes queued for one pod are merged into the latest.
  // Set once, before pods change.
  using BandwidthListener = std::function<void(const std::string& ns, const std::string& name,
                                               const std::map<std::string, std::string>& annotations)>;
  void SetBandwidthListener(BandwidthListener l);

 private:
  KubeNode(std::shared_ptr<k8s::RestClient> client, KubeNodeOptions opts, Metrics* metrics);
  void Enqueue(std::string write, std::function<Status()> fn);
  void Writer();
  void QueueBandwidthUpdate(const k8s::Pod& pod);
  void BandwidthWorker();
  void SetSufficientIp(bool sufficient, const std::string& message);

  std::shared_ptr<k8s::RestClient> client_;
  KubeNodeOptions opts_;
  Metrics* metrics_;
  k8s::RestListerWatcher pods_lw_;
  k8s::RestListerWatcher nodes_lw_;
  k8s::NodeReporter reporter_;
  k8s::EventRecorder events_;
  std::unique_ptr<k8s::Cache<k8s::Pod>> pods_;
  std::unique_ptr<k8s::Cache<k8s::Node>> node_;

  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> recent_adds_;
  std::optional<bool> sufficient_ip_;  // last written

  std::mutex listener_mu_;
  BandwidthListener bandwidth_listener_;

  std::mutex write_mu_;
  std::condition_variable write_cv_;
  std::deque<std::pair<std::string, std::function<Status()>>> writes_;
  bool stop_ = false;
  std::thread writer_;

  // Pending bandwidth updates: pods in arrival order, each with its latest
  // annotations (bounded by the pods on the node, never dropped).
  std::condition_variable bandwidth_cv_;  // with write_mu_
  std::deque<std::pair<std::string, std::string>> bandwidth_order_;
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> bandwidth_pending_;
  std::thread bandwidth_worker_;
};

}  // namespace terway::daemon
