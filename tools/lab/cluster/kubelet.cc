#include "tools/lab/cluster/kubelet.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "common/log.h"
#include "common/strings.h"
#include "k8s/config.h"
#include "k8s/reporter.h"
#include "netlink/netns.h"
#include "tools/lab/apiserver/server.h"
#include "tools/lab/cluster/lab_files.h"
#include "tools/lab/cluster/process.h"

namespace terway::lab {

using nlohmann::json;

namespace {
// ConfigMap (kube-system) with eni_conf {"eni_mode": "exclusive"}: the
// per-node override an exclusive-ENI node's terway-config label names.
constexpr const char* kExclusiveEniConfig = "eni-exclusive";

std::string Now() { return k8s::FormatKubeTime(RealClock::Instance().Now()); }
}  // namespace

json RunningPodStatus(const std::vector<std::string>& pod_ips, const std::string& host_ip, const std::string& now) {
  json ips = json::array();
  for (const auto& ip : pod_ips) ips.push_back({{"ip", ip}});
  json conditions = json::array();
  for (const char* type : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
    conditions.push_back({{"type", type}, {"status", "True"}, {"lastTransitionTime", now}});
  }
  return {{"status",
           {{"phase", "Running"},
            {"podIP", pod_ips.empty() ? std::string() : pod_ips.front()},
            {"podIPs", ips},
            {"hostIP", host_ip},
            {"startTime", now},
            {"conditions", conditions},
            {"reason", nullptr},
            {"message", nullptr}}}};
}

json FailedPodStatus(const std::string& message, const std::string& now) {
  return {{"status",
           {{"phase", "Failed"},
            {"reason", "FailedCreatePodSandBox"},
            {"message", message},
            {"conditions",
             json::array({{{"type", "Ready"}, {"status", "False"}, {"reason", "FailedCreatePodSandBox"},
                           {"lastTransitionTime", now}}})}}}};
}

bool NeedsSandbox(const k8s::Pod& pod) {
  if (pod.metadata.deletion_timestamp || pod.host_network) return false;
  return pod.phase.empty() || pod.phase == "Pending";
}

LabKubelet::LabKubelet(SandboxRuntime& runtime, std::string lab_dir, NodeRecord node, std::string host_ip,
                       k8s::RestClient& client)
    : runtime_(runtime),
      dir_(std::move(lab_dir)),
      node_(std::move(node)),
      host_ip_(std::move(host_ip)),
      client_(client),
      lw_(client_, k8s::resources::kPods) {
  k8s::ReflectorOptions ro;
  ro.field_selector = "spec.nodeName=" + node_.name;
  k8s::CacheHandlers<k8s::Pod> h;
  h.on_add = [this](const k8s::Pod& p) {
    if (NeedsSandbox(p)) Enqueue({true, p});
  };
  h.on_update = [this](const k8s::Pod&, const k8s::Pod& p) {
    if (NeedsSandbox(p)) Enqueue({true, p});
  };
  h.on_delete = [this](const k8s::Pod& p) { Enqueue({false, p}); };
  pods_ = std::make_unique<k8s::Cache<k8s::Pod>>(lw_, ro, h);
}

LabKubelet::~LabKubelet() { Stop(); }

void LabKubelet::Start() { pods_->Start(); }

void LabKubelet::Stop() {
  pods_->Stop();  // no new work
  std::vector<std::thread> threads;
  {
    std::unique_lock l(mu_);
    stop_ = true;
    cancel_ = true;
    for (auto& [key, w] : workers_) {
      if (w.thread.joinable()) threads.push_back(std::move(w.thread));
    }
    for (auto& t : finished_) threads.push_back(std::move(t));
    finished_.clear();
  }
  for (auto& t : threads) t.join();
}

void LabKubelet::JoinFinishedLocked(std::unique_lock<std::mutex>& l) {
  // A finished worker has handed in its thread and only returns: joining it
  // takes no time, but is done without our lock all the same.
  std::vector<std::thread> done;
  done.swap(finished_);
  l.unlock();
  for (auto& t : done) t.join();
  l.lock();
}

void LabKubelet::Enqueue(Task t) {
  std::unique_lock l(mu_);
  if (stop_) return;
  JoinFinishedLocked(l);
  if (t.add) {
    // Our own status write and terwayd's pod-ips annotation arrive as
    // updates before the phase is set: one ADD per pod (by uid).
    if (!started_.insert(t.pod.metadata.uid).second) return;
  } else {
    started_.erase(t.pod.metadata.uid);
  }
  const std::string key = t.pod.metadata.Key();
  PodWorker& w = workers_[key];
  w.tasks.push_back(std::move(t));
  if (!w.thread.joinable()) w.thread = std::thread([this, key] { Work(key); });
}

void LabKubelet::Work(const std::string& key) {
  std::unique_lock l(mu_);
  while (true) {
    auto it = workers_.find(key);
    if (stop_ || it == workers_.end() || it->second.tasks.empty()) {
      // Out of work: hand our thread in to be joined, and leave the map
      // (the next task of this pod starts a new worker).
      if (it != workers_.end()) {
        if (it->second.thread.joinable()) finished_.push_back(std::move(it->second.thread));
        workers_.erase(it);
      }
      return;
    }
    Task t = std::move(it->second.tasks.front());
    it->second.tasks.pop_front();
    l.unlock();
    if (t.add) {
      SandboxAdd(t.pod);
    } else {
      SandboxDel(t.pod);
    }
    l.lock();
  }
}

void LabKubelet::SandboxAdd(const k8s::Pod& pod) {
  const std::string key = pod.metadata.Key();
  PodAddArgs args;
  args.pod = {pod.metadata.namespace_, pod.metadata.name};
  args.node = node_.name;
  args.labels = pod.metadata.labels;
  args.annotations = pod.metadata.annotations;
  if (auto it = pod.metadata.annotations.find(kCniVersionAnnotation); it != pod.metadata.annotations.end()) {
    args.cni_version = it->second;
  }
  log::Info("kubelet {}: pod {} ADD (CNI {})", node_.name, key, args.cni_version);
  auto ip = runtime_.RunSandboxAdd(dir_, args, &cancel_);
  json patch;
  if (ip.ok()) {
    log::Info("kubelet {}: pod {} Running with IPs {}", node_.name, key, Join(*ip, ","));
    patch = RunningPodStatus(*ip, host_ip_, Now());
  } else {
    std::string message = ip.error().ToString();
    log::Warn("kubelet {}: pod {} sandbox failed: {}", node_.name, key, message);
    RecordEvent(pod, "Warning", "FailedCreatePodSandBox", message);
    patch = FailedPodStatus(message, Now());
  }
  auto st = client_.Patch(k8s::resources::kPods, pod.metadata.namespace_, pod.metadata.name, k8s::PatchType::kMerge,
                          patch, "status");
  if (!st.ok()) {
    // Deleted meanwhile: its DELETED event is queued behind us and runs DEL.
    log::Warn("kubelet {}: writing the status of pod {}: {}", node_.name, key, st.error().ToString());
  }
}

void LabKubelet::SandboxDel(const k8s::Pod& pod) {
  const std::string key = pod.metadata.Key();
  PodRef ref{pod.metadata.namespace_, pod.metadata.name};
  Status st = runtime_.RunSandboxDel(dir_, ref, &cancel_);
  if (!st.ok() && st.error().code == ErrorCode::kNotFound) {
    log::Info("kubelet {}: pod {} deleted; it had no sandbox", node_.name, key);
    return;
  }
  if (!st.ok()) {
    // The sandbox stays recorded in lab.json; `terway-lab down` removes it.
    log::Warn("kubelet {}: DEL of deleted pod {} failed: {}", node_.name, key, st.error().ToString());
    return;
  }
  log::Info("kubelet {}: pod {} deleted: DEL done, namespace removed", node_.name, key);
}

void LabKubelet::RecordEvent(const k8s::Pod& pod, const std::string& type, const std::string& reason,
                             const std::string& message) {
  const std::string now = Now();
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata",
              {{"name", fmt::format("{}.{:x}", pod.metadata.name,
                                    std::chrono::steady_clock::now().time_since_epoch().count())},
               {"namespace", pod.metadata.namespace_}}},
             {"involvedObject",
              {{"kind", "Pod"}, {"apiVersion", "v1"}, {"namespace", pod.metadata.namespace_},
               {"name", pod.metadata.name}, {"uid", pod.metadata.uid}}},
             {"type", type},
             {"reason", reason},
             {"message", message},
             {"source", {{"component", "kubelet"}, {"host", node_.name}}},
             {"firstTimestamp", now},
             {"lastTimestamp", now},
             {"count", 1}};
  auto r = client_.Create(k8s::resources::kEvents, pod.metadata.namespace_, ev);
  if (!r.ok()) log::Warn("kubelet {}: event for pod {}: {}", node_.name, pod.metadata.Key(), r.error().ToString());
}

namespace {

std::string NodeInternalIp(const NodeRecord& n) {
  auto r = RunCommand({"/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"}, n.netns);
  if (!r.ok()) return "";
  auto pos = r->out.find("inet ");
  if (pos == std::string::npos) return "";
  std::string ip = r->out.substr(pos + 5);
  return ip.substr(0, ip.find('/'));
}

Status CreateIfMissing(k8s::RestClient& c, const k8s::ResourceRef& r, const std::string& ns, const json& obj) {
  auto got = c.Create(r, ns, obj);
  if (got.ok() || got.error().code == ErrorCode::kAlreadyExists) return Ok();
  return std::move(got).error().Wrap(fmt::format("creating {} {}", r.kind, obj["metadata"].value("name", "")));
}

json NodeObject(const LabState& s, const NodeRecord& n, const std::string& ip) {
  json labels = {{"kubernetes.io/hostname", n.name},
                 {"kubernetes.io/os", "linux"},
                 {"kubernetes.io/arch", "amd64"},
                 {"node.kubernetes.io/instance-type", n.instance_type},
                 {"beta.kubernetes.io/instance-type", n.instance_type},
                 {"topology.kubernetes.io/region", "cn-hangzhou"},
                 {"topology.kubernetes.io/zone", s.zone}};
  if (n.eni_mode == "exclusive" && !n.exclusive_by_label) labels["terway-config"] = kExclusiveEniConfig;
  for (const auto& [k, v] : n.labels) labels[k] = v;
  json quantity = {{"pods", std::to_string(n.max_pods)}, {"cpu", "2"}, {"memory", "8Gi"}};
  json addresses = json::array({{{"type", "Hostname"}, {"address", n.name}}});
  if (!ip.empty()) addresses.push_back({{"type", "InternalIP"}, {"address", ip}});
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", n.name}, {"labels", labels}}},
          // Alibaba Cloud's form: <region>.<instance id>.
          {"spec", {{"providerID", "cn-hangzhou." + n.instance_id}}},
          {"status",
           {{"capacity", quantity},
            {"allocatable", quantity},
            {"addresses", addresses},
            {"conditions",
             json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"},
                           {"message", "lab kubelet is posting ready status"}}})}}}};
}

}  // namespace

Status Lab::RunControlPlane(const std::string& dir) {
  // Signals reach only this thread's sigwait, never a server or kubelet thread.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  log::Init("terway-lab-control-plane", "info");
  // Read without a lock (lab.json is replaced by rename); `up`, which
  // started us, holds the lifecycle lock while it waits for us.
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  auto store = NewDefaultStore();
  // One store, one listener per network: kubectl on the host's loopback,
  // each node's terwayd on its own namespace's loopback (the instance has no
  // route to the host; a real cluster reaches the API over the VPC).
  ApiServer host(store);
  TERWAY_TRY_CTX(host.Start(), "starting the API stand-in on the host's loopback");
  const std::string kubeconfig = dir + "/kubeconfig";
  TERWAY_TRY(host.WriteKubeconfig(kubeconfig));
  std::vector<std::unique_ptr<ApiServer>> node_servers;
  for (const auto& n : s.nodes) {
    auto srv = std::make_unique<ApiServer>(store);
    ApiServer* p = srv.get();
    TERWAY_TRY_CTX(netlink::RunInNetns(n.netns, [p] { return p->Start(); }),
                   fmt::format("starting the API stand-in inside node {}'s namespace {}", n.name, n.netns));
    TERWAY_TRY(srv->WriteKubeconfig(n.dir + "/kubeconfig"));
    node_servers.push_back(std::move(srv));
  }
  TERWAY_ASSIGN_OR_RETURN(auto cfg, k8s::LoadKubeconfig(kubeconfig));
  // Our own API: no reason to throttle the kubelets of a lab.
  cfg.qps = 200;
  cfg.burst = 400;
  cfg.user_agent = "terway-lab-kubelet";
  auto client = k8s::RestClient::FromConfig(cfg);
  for (const char* ns : {"default", "kube-system"}) {
    TERWAY_TRY(CreateIfMissing(*client, k8s::resources::kNamespaces, "",
                               {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}));
  }
  TERWAY_TRY(CreateIfMissing(*client, k8s::resources::kConfigMaps, "kube-system",
                             {{"apiVersion", "v1"},
                              {"kind", "ConfigMap"},
                              {"metadata", {{"name", "eni-config"}, {"namespace", "kube-system"}}},
                              {"data",
                               {{"eni_conf", LabEniConf(s).dump(2)},
                                {"10-terway.conf", LabCniConf(s.eniip_virtual_type).dump(2)}}}}));
  // The override exclusive-ENI nodes name with their terway-config label.
  TERWAY_TRY(CreateIfMissing(*client, k8s::resources::kConfigMaps, "kube-system",
                             {{"apiVersion", "v1"},
                              {"kind", "ConfigMap"},
                              {"metadata", {{"name", kExclusiveEniConfig}, {"namespace", "kube-system"}}},
                              {"data", {{"eni_conf", R"({"eni_mode": "exclusive"})"}}}}));
  std::vector<std::unique_ptr<LabKubelet>> kubelets;
  for (const auto& n : s.nodes) {
    std::string ip = NodeInternalIp(n);
    TERWAY_TRY(CreateIfMissing(*client, k8s::resources::kNodes, "", NodeObject(s, n, ip)));
    kubelets.push_back(std::make_unique<LabKubelet>(*this, dir, n, ip, *client));
  }
  for (auto& k : kubelets) k->Start();
  TERWAY_TRY(WriteTextFileAtomic(dir + "/control-plane.ready", host.url() + "\n"));
  log::Info("control plane ready: API {} ({} node listener(s)), {} kubelet(s)", host.url(), node_servers.size(),
            kubelets.size());
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("control plane stopping on signal {}", sig);
  for (auto& k : kubelets) k->Stop();
  for (auto& srv : node_servers) srv->Stop();
  host.Stop();
  return Ok();
}

}  // namespace terway::lab
