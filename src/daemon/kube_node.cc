#include "daemon/kube_node.h"

#include <set>

#include "common/log.h"
#include "qos/annotations.h"

namespace terway::daemon {

PodMetadata PodMetadataFromPod(const k8s::Pod& pod) {
  PodMetadata m;
  m.uid = pod.metadata.uid;
  m.labels = pod.metadata.labels;
  m.annotations = pod.metadata.annotations;
  for (const auto& o : pod.metadata.owner_references) {
    if (o.controller) {
      m.owner_kind = o.kind;
      break;
    }
  }
  if (m.owner_kind.empty() && !pod.metadata.owner_references.empty()) {
    m.owner_kind = pod.metadata.owner_references.front().kind;
  }
  return m;
}

std::vector<ipam::LivePod> MergeLivePods(const std::vector<k8s::Pod>& cached,
                                         const std::vector<std::pair<std::string, std::string>>& protected_pods) {
  std::vector<ipam::LivePod> out;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& p : cached) {
    out.push_back({p.metadata.namespace_, p.metadata.name, p.metadata.uid});
    seen.insert({p.metadata.namespace_, p.metadata.name});
  }
  for (const auto& [ns, name] : protected_pods) {
    // uid unknown: the pool then matches by namespace/name alone.
    if (seen.insert({ns, name}).second) out.push_back({ns, name, ""});
  }
  return out;
}

bool PoolCannotGrow(const Error& e) { return e.code == ErrorCode::kExhausted; }

bool BandwidthAnnotationsChanged(const k8s::Pod& before, const k8s::Pod& after) {
  return qos::BandwidthAnnotationsDiffer(before.metadata.annotations, after.metadata.annotations);
}

KubeNode::KubeNode(std::shared_ptr<k8s::RestClient> client, KubeNodeOptions opts, Metrics* metrics)
    : client_(std::move(client)),
      opts_(std::move(opts)),
      metrics_(metrics),
      pods_lw_(*client_, k8s::resources::kPods),
      nodes_lw_(*client_, k8s::resources::kNodes),
      reporter_(*client_, opts_.node_name),
      events_(*client_, opts_.node_name) {}

Result<std::unique_ptr<KubeNode>> KubeNode::Create(std::shared_ptr<k8s::RestClient> client, KubeNodeOptions opts,
                                                   Metrics* metrics) {
  std::unique_ptr<KubeNode> k(new KubeNode(std::move(client), std::move(opts), metrics));
  metrics->DeclareCounter("terway_k8s_writes_total", "Writes to the Kubernetes API by kind and result");
  metrics->DeclareCounter("terway_pod_bandwidth_changes_total",
                          "Pod bandwidth annotation changes handed to the CNI service");
  metrics->DeclareCounter("terway_k8s_pod_lookups_total",
                          "Pod lookups of ADD by source (cache, api, missing)");
  k8s::ReflectorOptions po;
  po.field_selector = "spec.nodeName=" + k->opts_.node_name;
  k8s::CacheHandlers<k8s::Pod> ph;
  KubeNode* self = k.get();
  ph.on_update = [self](const k8s::Pod& before, const k8s::Pod& after) {
    // Kernel work (tc) does not belong on the watch thread.
    if (BandwidthAnnotationsChanged(before, after)) self->QueueBandwidthUpdate(after);
  };
  k->pods_ = std::make_unique<k8s::Cache<k8s::Pod>>(k->pods_lw_, po, ph);
  k8s::ReflectorOptions no;
  no.field_selector = "metadata.name=" + k->opts_.node_name;
  k8s::CacheHandlers<k8s::Node> nh;
  const std::string node_name = k->opts_.node_name;
  auto log_label = [node_name](const k8s::Node& n) {
    if (IgnoredByTerway(n.metadata.labels)) {
      log::Warn("node {} is labelled {}=true: terwayd serves no pods on it (remove the label to serve)",
                node_name, kIgnoreByTerwayLabel);
    }
  };
  nh.on_add = log_label;
  nh.on_update = [log_label](const k8s::Node&, const k8s::Node& n) { log_label(n); };
  k->node_ = std::make_unique<k8s::Cache<k8s::Node>>(k->nodes_lw_, no, nh);
  k->pods_->Start();
  k->node_->Start();
  if (!k->pods_->WaitForSync(k->opts_.sync_timeout) || !k->node_->WaitForSync(k->opts_.sync_timeout)) {
    return Errorf(ErrorCode::kUnavailable,
                  "the Kubernetes API did not list the pods of node {} and the node within {} ms; check "
                  "the API server and that the node object exists",
                  k->opts_.node_name, k->opts_.sync_timeout.count());
  }
  if (!k->node_->Get(k->opts_.node_name)) {
    return Errorf(ErrorCode::kNotFound,
                  "node {} does not exist in the Kubernetes API; pass the node's name with --node-name "
                  "(or $NODE_NAME)",
                  k->opts_.node_name);
  }
  k->writer_ = std::thread([p = k.get()] { p->Writer(); });
  k->bandwidth_worker_ = std::thread([p = k.get()] { p->BandwidthWorker(); });
  log::Info("kubernetes: node {} synced, {} pod(s) on it", k->opts_.node_name, k->pods_->Size());
  return k;
}

KubeNode::~KubeNode() { Shutdown(); }

void KubeNode::Shutdown() {
  {
    std::lock_guard l(listener_mu_);
    bandwidth_listener_ = nullptr;
  }
  {
    std::lock_guard l(write_mu_);
    stop_ = true;
  }
  write_cv_.notify_all();
  bandwidth_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (bandwidth_worker_.joinable()) bandwidth_worker_.join();
  if (pods_) pods_->Stop();
  if (node_) node_->Stop();
}

std::vector<k8s::Pod> KubeNode::Pods() const { return pods_->List(); }

void KubeNode::Enqueue(std::string write, std::function<Status()> fn) {
  {
    std::lock_guard l(write_mu_);
    // Bounded: an unreachable API must not grow terwayd's memory without end.
    if (writes_.size() >= 1000) {
      log::Warn("kubernetes write {} dropped: {} writes are queued (API unreachable?)", write, writes_.size());
      metrics_->Inc("terway_k8s_writes_total", {{"write", write}, {"result", "dropped"}});
      return;
    }
    writes_.emplace_back(std::move(write), std::move(fn));
  }
  write_cv_.notify_one();
}

void KubeNode::Writer() {
  std::unique_lock l(write_mu_);
  while (true) {
    write_cv_.wait(l, [this] { return stop_ || !writes_.empty(); });
    if (stop_) return;
    auto [what, fn] = std::move(writes_.front());
    writes_.pop_front();
    l.unlock();
    Status st = fn();
    if (!st.ok()) log::Warn("kubernetes write {} failed (not retried): {}", what, st.error().ToString());
    metrics_->Inc("terway_k8s_writes_total", {{"write", what}, {"result", st.ok() ? "ok" : "error"}});
    l.lock();
  }
}

void KubeNode::QueueBandwidthUpdate(const k8s::Pod& pod) {
  {
    std::lock_guard l(write_mu_);
    std::pair<std::string, std::string> key{pod.metadata.namespace_, pod.metadata.name};
    auto [it, fresh] = bandwidth_pending_.insert_or_assign(key, pod.metadata.annotations);
    if (fresh) bandwidth_order_.push_back(std::move(key));
  }
  bandwidth_cv_.notify_one();
}

void KubeNode::BandwidthWorker() {
  std::unique_lock l(write_mu_);
  while (true) {
    bandwidth_cv_.wait(l, [this] { return stop_ || !bandwidth_order_.empty(); });
    if (stop_) return;
    auto key = std::move(bandwidth_order_.front());
    bandwidth_order_.pop_front();
    auto node = bandwidth_pending_.extract(key);
    l.unlock();
    BandwidthListener listener;
    {
      std::lock_guard ll(listener_mu_);
      listener = bandwidth_listener_;
    }
    if (listener) listener(key.first, key.second, node.mapped());
    // Before the listener is set nobody applies it; the daemon reconciles
    // every pod's bandwidth when it sets the listener.
    metrics_->Inc("terway_pod_bandwidth_changes_total", {{"result", listener ? "delivered" : "before_listener"}});
    l.lock();
  }
}

void KubeNode::ReportCapacity(int max_pods, bool exclusive_eni) {
  Enqueue("max_available_ip", [this, max_pods] { return reporter_.SetMaxAvailableIp(max_pods); });
  // Exclusive-ENI pods request aliyun/eni; shared-ENI nodes do not offer it.
  if (exclusive_eni) Enqueue("eni_capacity", [this, max_pods] { return reporter_.SetEniCapacity(max_pods); });
  SetSufficientIp(true, "the node's pool can serve pods");
}

void KubeNode::SetSufficientIp(bool sufficient, const std::string& message) {
  {
    std::lock_guard l(mu_);
    // Written on change only: one PATCH per ADD would load the API for nothing.
    if (sufficient_ip_ == sufficient) return;
    sufficient_ip_ = sufficient;
  }
  Enqueue("sufficient_ip", [this, sufficient, message] { return reporter_.SetSufficientIp(sufficient, message); });
}

Result<std::vector<ipam::LivePod>> KubeNode::LivePods(
    const std::vector<std::pair<std::string, std::string>>& held) {
  if (!pods_->reflector().synced()) {
    return MakeError(ErrorCode::kUnavailable, "the pod cache has not synced with the Kubernetes API");
  }
  auto cached = pods_->List();
  std::set<std::pair<std::string, std::string>> in_cache;
  for (const auto& p : cached) in_cache.insert({p.metadata.namespace_, p.metadata.name});
  std::vector<std::pair<std::string, std::string>> keep;
  {
    std::lock_guard l(mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = recent_adds_.begin(); it != recent_adds_.end();) {
      if (now - it->second > opts_.allocation_grace) {
        it = recent_adds_.erase(it);
      } else {
        keep.push_back(it->first);
        ++it;
      }
    }
  }
  for (const auto& key : held) {
    if (in_cache.count(key)) continue;
    // Not in the cache: gone, or created after the cache's last event. Ask.
    auto got = client_->Get(k8s::resources::kPods, key.first, key.second);
    if (got.ok()) {
      auto pod = k8s::ParsePod(*got);
      if (pod.ok() && pod->node_name == opts_.node_name) keep.push_back(key);
      continue;
    }
    if (got.error().code != ErrorCode::kNotFound) {
      return std::move(got).error().Wrap(fmt::format("confirming that pod {}/{} is gone", key.first, key.second));
    }
  }
  return MergeLivePods(cached, keep);
}

std::string KubeNode::NodeRefusal() {
  auto n = node_->Get(opts_.node_name);
  if (n && IgnoredByTerway(n->metadata.labels)) {
    return fmt::format("node {} is labelled {}=true: terway does not serve pods on it; remove the label "
                       "(kubectl label node {} {}-) to serve pods",
                       opts_.node_name, kIgnoreByTerwayLabel, opts_.node_name, kIgnoreByTerwayLabel);
  }
  return "";
}

Result<std::optional<PodMetadata>> KubeNode::Lookup(const std::string& ns, const std::string& name) {
  if (auto p = pods_->Get(ns + "/" + name)) {
    metrics_->Inc("terway_k8s_pod_lookups_total", {{"source", "cache"}});
    return std::optional<PodMetadata>(PodMetadataFromPod(*p));
  }
  // The runtime can be faster than our watch: the kubelet saw the pod first.
  auto got = client_->Get(k8s::resources::kPods, ns, name);
  if (!got.ok()) {
    if (got.error().code == ErrorCode::kNotFound) {
      metrics_->Inc("terway_k8s_pod_lookups_total", {{"source", "missing"}});
      return std::optional<PodMetadata>();
    }
    return std::move(got).error().Wrap(fmt::format("reading pod {}/{} from the Kubernetes API", ns, name));
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto pod, k8s::ParsePod(*got), fmt::format("pod {}/{}", ns, name));
  metrics_->Inc("terway_k8s_pod_lookups_total", {{"source", "api"}});
  return std::optional<PodMetadata>(PodMetadataFromPod(pod));
}

std::optional<PodMetadata> KubeNode::Cached(const std::string& ns, const std::string& name) {
  if (auto p = pods_->Get(ns + "/" + name)) return PodMetadataFromPod(*p);
  return std::nullopt;
}

void KubeNode::AllocationStarted(const std::string& ns, const std::string& name) {
  std::lock_guard l(mu_);
  recent_adds_[{ns, name}] = std::chrono::steady_clock::now();
}

void KubeNode::Allocated(const std::string& ns, const std::string& name, const std::vector<std::string>& ips,
                         bool in_api) {
  // A sandbox of no Kubernetes pod (podman on the node) has no object to
  // annotate: the PATCH would only 404. Both families on a dual-stack node,
  // comma-separated as upstream writes them.
  if (in_api && opts_.patch_pod_ips) {
    Enqueue("pod_ips", [this, ns, name, ips] { return k8s::SetPodIps(*client_, ns, name, ips); });
  }
  SetSufficientIp(true, "the node's pool can serve pods");
}

void KubeNode::Released(const std::string&, const std::string&) {
  // An address is free again: a node marked insufficient can take the next
  // pod (written on change only, see SetSufficientIp).
  SetSufficientIp(true, "an address was released; the node's pool can serve pods");
}

void KubeNode::SetBandwidthListener(BandwidthListener l) {
  std::lock_guard lock(listener_mu_);
  bandwidth_listener_ = std::move(l);
}

void KubeNode::PodWarning(const std::string& ns, const std::string& name, const std::string& uid,
                          const std::string& reason, const std::string& message) {
  ObjectWarning(k8s::ObjectReference{"Pod", ns, name, uid, "v1"}, reason, message);
}

void KubeNode::ObjectWarning(const k8s::ObjectReference& object, const std::string& reason,
                             const std::string& message) {
  Enqueue("event", [this, object, reason, message] {
    return events_.Record(object, k8s::EventType::kWarning, reason, message);
  });
}

void KubeNode::AllocationFailed(const std::string& ns, const std::string& name, const std::string& uid,
                                const Error& e) {
  k8s::ObjectReference pod{"Pod", ns, name, uid, "v1"};
  std::string message = e.ToString();
  Enqueue("event", [this, pod, message] {
    return events_.Record(pod, k8s::EventType::kWarning, "AllocIPFailed", message);
  });
  if (PoolCannotGrow(e)) SetSufficientIp(false, message);
}

}  // namespace terway::daemon
