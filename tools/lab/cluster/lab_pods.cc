// Lab commands on pods and daemons of a lab that is up: `pod add/del` through
// the API (the kubelet runs the CNI plugin), `terwayd` and `vpcsim` restarts.
#include "tools/lab/cluster/lab.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "k8s/client.h"
#include "k8s/config.h"
#include "tools/lab/cluster/kubelet.h"
#include "tools/lab/cluster/lab_files.h"

namespace terway::lab {

using nlohmann::json;

namespace {

// How long `pod add` waits for Running or Failed: the kubelet's ADD, then
// after a failure its DEL, each bounded by the CNI timeout.
std::chrono::seconds PodAddDeadline(const LabState& s) { return 2 * s.cni_timeout() + std::chrono::seconds(30); }
// How long `pod del` waits for the kubelet's DEL: it may first wait for the
// pod's own ADD (and that ADD's undo), which the kubelet runs before it.
std::chrono::seconds PodDelDeadline(const LabState& s) { return 2 * s.cni_timeout() + std::chrono::seconds(30); }

Result<std::unique_ptr<k8s::RestClient>> LabApiClient(const LabState& s) {
  if (s.kubeconfig.empty() || !DaemonAlive(s.control_plane)) {
    return Errorf(ErrorCode::kUnavailable,
                  "the lab's control plane (API stand-in and kubelets) is not running (pid {}); see {}, then "
                  "`terway-lab --lab {} down` and up again",
                  s.control_plane.pid, s.control_plane_log, s.dir);
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto cfg, k8s::LoadKubeconfig(s.kubeconfig), "the lab's kubeconfig");
  cfg.qps = 100;
  cfg.burst = 200;
  cfg.user_agent = "terway-lab";
  return k8s::RestClient::FromConfig(cfg);
}

}  // namespace

Result<std::string> Lab::AddPod(const std::string& dir, const PodAddArgs& args) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  const std::string key = args.pod.ToString();
  if (s.phase != "up") {
    return Errorf(ErrorCode::kUnavailable,
                  "the lab in {} is not up (phase '{}'); run `terway-lab --lab {} down` and up again",
                  dir, s.phase, dir);
  }
  if (auto* p = s.FindPod(args.pod.ns, args.pod.name)) {
    return Errorf(ErrorCode::kAlreadyExists,
                  "pod {} already exists on {} with IP {}; delete it first (`terway-lab pod del {}`)",
                  key, p->node, p->ip.empty() ? "(none)" : p->ip, key);
  }
  NodeRecord* node = s.FindNode(args.node);
  if (!node) {
    return Errorf(ErrorCode::kNotFound, "pod {}: no node '{}' in the lab (nodes: {})", key,
                  args.node, s.NodeNames());
  }
  TERWAY_ASSIGN_OR_RETURN(auto client, LabApiClient(s));
  auto ns = client->Create(k8s::resources::kNamespaces, "",
                           {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", args.pod.ns}}}});
  if (!ns.ok() && ns.error().code != ErrorCode::kAlreadyExists) {
    return std::move(ns).error().Wrap("creating namespace " + args.pod.ns);
  }
  json annotations = args.annotations;
  annotations[kCniVersionAnnotation] = args.cni_version;
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"name", args.pod.name},
                {"namespace", args.pod.ns},
                {"labels", json(args.labels)},
                {"annotations", annotations}}},
              {"spec",
               {{"nodeName", node->name},
                {"containers", json::array({{{"name", "main"}, {"image", "terway-lab/netns"}}})}}}};
  auto created = client->Create(k8s::resources::kPods, args.pod.ns, pod);
  if (!created.ok()) {
    if (created.error().code == ErrorCode::kAlreadyExists) {
      return Errorf(ErrorCode::kAlreadyExists,
                    "pod {} already exists in the lab's API; delete it first (`terway-lab pod del {}`)", key, key);
    }
    return std::move(created).error().Wrap("creating pod " + key);
  }
  // The kubelet of the node runs ADD and writes the outcome into the status.
  std::string ip, failure, last = "no status yet";
  bool done = WaitUntil(
      [&] {
        auto got = client->Get(k8s::resources::kPods, args.pod.ns, args.pod.name);
        if (!got.ok()) {
          last = got.error().ToString();
          return false;
        }
        const json st = got->value("status", json::object());
        const std::string phase = st.value("phase", "");
        if (phase == "Running" && st.value("podIP", "") != "") {
          ip = st.value("podIP", "");
          return true;
        }
        if (phase == "Failed") {
          failure = st.value("message", "(no message)");
          return true;
        }
        last = phase.empty() ? "no status yet" : "phase " + phase;
        return false;
      },
      PodAddDeadline(s), std::chrono::milliseconds(50));
  if (done && !ip.empty()) return ip;
  // The kubelet already ran DEL and removed the namespace; drop the object
  // so the name can be used again, as `pod add` always allowed.
  auto del = client->Delete(k8s::resources::kPods, args.pod.ns, args.pod.name);
  if (!del.ok() && del.error().code != ErrorCode::kNotFound) {
    err_ << fmt::format("terway-lab: warning: deleting failed pod {}: {}\n", key, del.error().ToString());
  }
  if (!done) {
    return Errorf(ErrorCode::kTimeout, "pod {} on {} not Running within {} s ({}); see the kubelet's log {}",
                  key, node->name, PodAddDeadline(s).count(), last, s.control_plane_log);
  }
  return Error(ErrorCode::kUnavailable, failure);
}

Status Lab::DelPod(const std::string& dir, const PodRef& ref) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  const bool recorded = s.FindPod(ref.ns, ref.name) != nullptr;
  auto client = LabApiClient(s);
  if (!client.ok()) {
    // No kubelet to do it: tear the sandbox down directly.
    if (!recorded) return PodNotFound(ref);
    err_ << "terway-lab: warning: " << client.error().ToString() << "; removing the pod's sandbox directly\n";
    return RunSandboxDel(dir, ref);
  }
  auto del = (*client)->Delete(k8s::resources::kPods, ref.ns, ref.name);
  if (!del.ok()) {
    if (del.error().code != ErrorCode::kNotFound) return std::move(del).error().Wrap("deleting pod " + ref.ToString());
    if (!recorded) return PodNotFound(ref);
    // A sandbox without an object (the API lost it): nobody will DEL it.
    return RunSandboxDel(dir, ref);
  }
  if (!recorded) return Ok();  // a pod that never got a sandbox (failed or pending)
  bool gone = WaitUntil(
      [&] {
        auto now = LoadLabState(dir);
        return now.ok() && now->FindPod(ref.ns, ref.name) == nullptr;
      },
      PodDelDeadline(s), std::chrono::milliseconds(50));
  if (!gone) {
    return Errorf(ErrorCode::kTimeout,
                  "pod {} was deleted but its kubelet did not remove the sandbox within {} s; see {} (DEL "
                  "errors), or `terway-lab down`",
                  ref.ToString(), PodDelDeadline(s).count(), s.control_plane_log);
  }
  return Ok();
}

Status Lab::Terwayd(const std::string& dir, const TerwaydArgs& args) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  // Not beside an `up` or a `down`; pods keep going meanwhile.
  TERWAY_ASSIGN_OR_RETURN(auto lifecycle, AcquireLifecycleLock(dir));
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  NodeRecord* n = s.FindNode(args.node);
  if (!n) return Errorf(ErrorCode::kNotFound, "no node '{}' in the lab (nodes: {})", args.node, s.NodeNames());
  if (!args.start) {
    if (!DaemonAlive(n->terwayd)) {
      return Errorf(ErrorCode::kNotFound, "terwayd on {} is not running", n->name);
    }
    // SIGKILL: a crash, no shutdown path runs.
    kill(n->terwayd.pid, SIGKILL);
    if (!WaitUntil([&] { return !DaemonAlive(n->terwayd); }, std::chrono::seconds(10))) {
      return Errorf(ErrorCode::kTimeout, "terwayd on {} (pid {}) survived SIGKILL for 10 s", n->name, n->terwayd.pid);
    }
    out_ << fmt::format("terwayd on {} killed (pid {})\n", n->name, n->terwayd.pid);
    return Ok();
  }
  if (DaemonAlive(n->terwayd)) {
    return Errorf(ErrorCode::kAlreadyExists, "terwayd on {} is already running (pid {})", n->name, n->terwayd.pid);
  }
  TERWAY_TRY(StartTerwayd(s, *n));
  const std::string node_name = n->name;
  const DaemonId started = n->terwayd;
  TERWAY_TRY(UpdateLabState(dir, [&](LabState& st) -> Status {
    NodeRecord* rec = st.FindNode(node_name);
    if (!rec) return Errorf(ErrorCode::kNotFound, "node {} left lab.json while its terwayd started", node_name);
    rec->terwayd = started;
    return Ok();
  }));
  TERWAY_TRY(WaitTerwaydReady(*n));
  out_ << fmt::format("terwayd on {} started (pid {})\n", n->name, n->terwayd.pid);
  return Ok();
}

Status Lab::Vpcsim(const std::string& dir, const VpcsimArgs& args) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  // Without the lifecycle lock: a `terwayd start` holds it while its terwayd
  // waits for the cloud, and only a running vpcsim lets it finish. A `down`
  // meanwhile is noticed when the new process is recorded (below).
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  if (s.phase != "up") {
    return Errorf(ErrorCode::kUnavailable, "the lab is {}, not up: vpcsim is left alone", s.phase);
  }
  if (!args.start) {
    if (!DaemonAlive(s.vpcsim)) return Errorf(ErrorCode::kNotFound, "vpcsim (pid {}) is not running", s.vpcsim.pid);
    // SIGKILL: a crash; its state on disk and its fabric stay.
    kill(s.vpcsim.pid, SIGKILL);
    if (!WaitUntil([&] { return !DaemonAlive(s.vpcsim); }, std::chrono::seconds(10))) {
      return Errorf(ErrorCode::kTimeout, "vpcsim (pid {}) survived SIGKILL for 10 s", s.vpcsim.pid);
    }
    out_ << fmt::format("vpcsim killed (pid {})\n", s.vpcsim.pid);
    return Ok();
  }
  if (DaemonAlive(s.vpcsim)) {
    return Errorf(ErrorCode::kAlreadyExists, "vpcsim is already running (pid {})", s.vpcsim.pid);
  }
  const std::string port_file = s.dir + "/vpcsim.port";
  DaemonId started;
  int port = 0;
  // The port it had first, so clients that read it before keep working;
  // any free one if that is taken meanwhile.
  for (int want : {s.vpcsim_port, 0}) {
    unlink(port_file.c_str());
    TERWAY_ASSIGN_OR_RETURN_CTX(
        started,
        StartDaemon({{bins_.vpcsim, "serve", "--world", s.dir + "/world.yaml", "--state", s.vpcsim_state, "--listen",
                      fmt::format("127.0.0.1:{}", want), "--port-file", port_file, "--fabric", "linux"},
                     "",
                     s.vpcsim_log}),
        "starting vpcsim");
    bool up = WaitUntil([&] { return !TrimTrailing(ReadTextFile(port_file)).empty() || !DaemonAlive(started); },
                        std::chrono::seconds(90));
    if (up && DaemonAlive(started)) {
      port = std::atoi(TrimTrailing(ReadTextFile(port_file)).c_str());
      break;
    }
    (void)StopDaemon(started);
    if (want == 0 || !up) {
      return Errorf(ErrorCode::kUnavailable, "vpcsim {}; its log {}:\n{}",
                    up ? "exited while starting" : "did not bind its port within 90 s", s.vpcsim_log,
                    QuoteLogTail(s.vpcsim_log));
    }
  }
  Status recorded = UpdateLabState(dir, [&](LabState& st) -> Status {
    if (st.phase != "up") return Errorf(ErrorCode::kUnavailable, "the lab went {} while vpcsim started", st.phase);
    st.vpcsim = started;
    st.vpcsim_port = port;
    return Ok();
  });
  if (!recorded.ok()) {
    (void)StopDaemon(started);  // nobody would ever stop it
    return recorded;
  }
  out_ << fmt::format("vpcsim started (pid {}, port {})\n", started.pid, port);
  return Ok();
}

}  // namespace terway::lab
