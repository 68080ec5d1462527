// A pod's sandbox as a container runtime makes it for the kubelet: the
// pod's network namespace and the real `terway` plugin run with the CNI
// environment and the conflist's configuration (RunPlugin); ADD, CHECK and
// DEL, and `exec` into a pod. The lab lock is held only to record a pod and
// its IP in lab.json, never while the plugin runs.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/ip.h"
#include "netlink/netns.h"
#include "qos/annotations.h"
#include "tools/lab/cluster/lab.h"
#include "tools/lab/cluster/lab_files.h"

namespace terway::lab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

Result<std::optional<json>> RuntimeBandwidth(const std::map<std::string, std::string>& annotations) {
  // As containerd's CRI plugin does for a network whose plugin declares the
  // bandwidth capability: the kubernetes.io annotations (not Terway's
  // legacy ones) become runtimeConfig.bandwidth, rates in bits/s, and the
  // bursts math.MaxInt32 ("unlimited": the kubelet has no burst to give).
  json bw = json::object();
  for (auto [key, rate, burst] : {std::tuple{qos::kIngressAnnotation, "ingressRate", "ingressBurst"},
                                  {qos::kEgressAnnotation, "egressRate", "egressBurst"}}) {
    auto it = annotations.find(std::string(key));
    if (it == annotations.end()) continue;
    auto bits = qos::ParseKubernetesQuantity(it->second);
    if (!bits.ok()) {
      return Errorf(ErrorCode::kInvalidArgument, "failed to parse the pod's {} annotation {:?}: {}", key,
                    it->second, bits.error().message);
    }
    bw[rate] = *bits;
    bw[burst] = 2147483647;
  }
  if (bw.empty()) return std::optional<json>();
  return std::optional<json>(bw);
}

Result<CommandOutput> Lab::RunPlugin(const NodeRecord& n, const PodRecord& p, const std::string& command,
                                     std::chrono::seconds timeout, const std::atomic<bool>* cancel) {
  // The runtime's view: the conflist from net.d, turned into the one plugin's
  // configuration (name and cniVersion copied in, prevResult added for CHECK
  // and DEL from the cached ADD result, where the version has them).
  json conflist = json::parse(ReadTextFile(n.conflist), nullptr, false);
  if (!conflist.is_object() || !conflist.contains("plugins") || conflist["plugins"].empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} is not a CNI conflist; run `down` and `up` again",
                  n.conflist);
  }
  json conf = conflist["plugins"][0];
  conf["name"] = conflist.value("name", "terway");
  conf["cniVersion"] = p.cni_version;
  if ((command == "CHECK" || command == "DEL") && p.cni_version != "0.3.1" && p.result.is_object()) {
    conf["prevResult"] = p.result;
  }
  if (conf.contains("capabilities") && conf["capabilities"].value("bandwidth", false)) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto bw, RuntimeBandwidth(p.annotations), "pod " + p.ns + "/" + p.name);
    if (bw) conf["runtimeConfig"]["bandwidth"] = *bw;
  }
  CommandSpec spec;
  spec.argv = {bins_.terway};
  spec.netns = n.netns;  // the runtime runs in the node's ("host") namespace
  spec.env = {{"CNI_COMMAND", command},
              {"CNI_CONTAINERID", p.container_id},
              {"CNI_NETNS", "/var/run/netns/" + p.netns},
              {"CNI_IFNAME", p.ifname},
              {"CNI_ARGS", fmt::format("IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};"
                                       "K8S_POD_INFRA_CONTAINER_ID={}",
                                       p.ns, p.name, p.container_id)},
              {"CNI_PATH", fs::path(bins_.terway).parent_path().string()}};
  spec.stdin_data = conf.dump();
  spec.timeout = timeout;
  spec.cancel = cancel;
  return RunCommand(spec);
}

Result<std::vector<std::string>> Lab::RunSandboxAdd(const std::string& dir, const PodAddArgs& args,
                                       const std::atomic<bool>* cancel) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  const std::string key = args.pod.ToString();
  PodRecord p;
  NodeRecord node;
  std::chrono::seconds timeout{};
  // Admission, the pod's namespace and its record, under the lab lock (and
  // nothing slow): recorded before ADD, so a `down` after an interrupted add
  // still cleans up.
  TERWAY_TRY(UpdateLabState(dir, [&](LabState& s) -> Status {
    if (s.phase != "up") {
      return Errorf(ErrorCode::kUnavailable,
                    "the lab in {} is not up (phase '{}'); run `terway-lab --lab {} down` and up again", dir,
                    s.phase, dir);
    }
    if (auto* old = s.FindPod(args.pod.ns, args.pod.name)) {
      return Errorf(ErrorCode::kAlreadyExists,
                    "pod {} already exists on {} with IP {}; delete it first (`terway-lab pod del {}`)", key,
                    old->node, old->ip.empty() ? "(none)" : old->ip, key);
    }
    NodeRecord* n = s.FindNode(args.node);
    if (!n) {
      return Errorf(ErrorCode::kNotFound, "pod {}: no node '{}' in the lab (nodes: {})", key, args.node,
                    s.NodeNames());
    }
    if (!DaemonAlive(n->terwayd)) {
      return Errorf(ErrorCode::kUnavailable,
                    "pod {}: terwayd on {} is not running (pid {}); see its log {}, then "
                    "`terway-lab terwayd start {}`",
                    key, n->name, n->terwayd.pid, n->log, n->name);
    }
    node = *n;
    timeout = s.cni_timeout();
    p.ns = args.pod.ns;
    p.name = args.pod.name;
    p.node = n->name;
    p.container_id = PodContainerId(s.world, p.ns, p.name);
    p.netns = PodNetnsName(s.world, p.ns, p.name);
    p.cni_version = args.cni_version;
    p.labels = args.labels;
    p.annotations = args.annotations;
    // A namespace of that name without a pod record is a leftover of an
    // interrupted `pod add`: it holds nothing we track.
    (void)netlink::DeleteNamedNetns(p.netns);
    TERWAY_TRY_CTX(netlink::CreateNamedNetns(p.netns), "creating the namespace of pod " + key);
    s.pods.push_back(p);
    return Ok();
  }));
  // From here on without the lock: the plugin takes as long as the node's
  // terwayd needs (up to the CNI timeout), and no other pod waits for it.
  auto undo = [&](const std::string& why) -> Error {
    auto del = RunPlugin(node, p, "DEL", timeout, cancel);
    if (del.ok() && del->cancelled) {
      // The lab is going down: its `down` runs DEL for the recorded pod.
      return Error(ErrorCode::kUnavailable, why + "; its DEL is left to `down`");
    }
    if (!del.ok() || del->exit_code != 0) {
      err_ << fmt::format("terway-lab: warning: DEL of pod {} after a failed ADD: {}\n", key,
                          del.ok() ? DescribeCniFailure(*del) : del.error().ToString());
    }
    (void)netlink::DeleteNamedNetns(p.netns);
    (void)UpdateLabState(dir, [&](LabState& s) {
      s.RemovePod(p.ns, p.name);
      return Ok();
    });
    return Error(ErrorCode::kUnavailable, why);
  };
  auto lo = RunCommand({"/usr/sbin/ip", "link", "set", "lo", "up"}, p.netns);
  if (!lo.ok() || lo->exit_code != 0) {
    return undo(fmt::format("pod {}: cannot bring lo up in {}: {}", key, p.netns,
                            lo.ok() ? lo->err : lo.error().ToString()));
  }
  auto add = RunPlugin(node, p, "ADD", timeout, cancel);
  if (!add.ok()) return undo(fmt::format("pod {}: running terway ADD: {}", key, add.error().ToString()));
  if (add->cancelled) {
    return Errorf(ErrorCode::kUnavailable,
                  "pod {}: terway ADD stopped: the control plane is shutting down; `down` removes the pod", key);
  }
  if (add->timed_out) {
    return undo(fmt::format("pod {} on {}: terway ADD did not finish within {} s and was killed (the lab's CNI "
                            "timeout, `up --cni-timeout`); see terwayd's log {}",
                            key, node.name, timeout.count(), node.log));
  }
  if (add->exit_code != 0) {
    json j = json::parse(add->out, nullptr, false);
    std::string next = "see terwayd's log " + node.log;
    if (j.is_object() && j.value("code", 0) == 100) {
      int pods_on_node = 0;
      if (auto now = LoadLabState(dir); now.ok()) {
        for (const auto& q : now->pods) pods_on_node += (q.node == node.name && !q.ip.empty()) ? 1 : 0;
      }
      next = fmt::format("{} holds {} pod(s) of max {} ({}): delete a pod there "
                         "(`terway-lab pod del NS/NAME`) or add this one to another node",
                         node.name, pods_on_node, node.max_pods, node.instance_type);
    }
    return undo(fmt::format("pod {} on {}: terway ADD failed: {}; {}", key, node.name,
                            DescribeCniFailure(*add), next));
  }
  json result = json::parse(add->out, nullptr, false);
  auto ips = PodIpsOfCniResult(result);
  if (!ips.ok()) {
    return undo(fmt::format("pod {}: terway ADD answered no usable IP ({}): {}", key, ips.error().message,
                            Trim(add->out)));
  }
  const std::string ip = ips->front();
  bool recorded = false;
  Status saved = UpdateLabState(dir, [&](LabState& s) {
    if (PodRecord* rec = s.FindPod(p.ns, p.name)) {
      rec->ip = ip;
      rec->result = result;
      recorded = true;
    }
    return Ok();
  });
  if (!saved.ok()) return undo(fmt::format("pod {}: recording its IP {}: {}", key, ip, saved.error().ToString()));
  if (!recorded) {
    // Torn down around us (`down` or a direct `pod del` while ADD ran).
    return undo(fmt::format("pod {} was removed from the lab while its ADD ran; its sandbox was undone", key));
  }
  return std::move(ips).value();
}

Result<std::vector<std::string>> PodIpsOfCniResult(const json& result) {
  if (!result.is_object() || !result.contains("ips") || !result["ips"].is_array()) {
    return Errorf(ErrorCode::kInvalidArgument, "the CNI result has no ips list");
  }
  std::string v4, v6;
  for (const auto& entry : result["ips"]) {
    if (!entry.is_object() || !entry.contains("address") || !entry["address"].is_string()) continue;
    std::string addr = entry["address"].get<std::string>();
    addr = addr.substr(0, addr.find('/'));
    if (Ipv4Addr::Parse(addr).ok()) {
      if (v4.empty()) v4 = addr;
    } else if (auto a6 = Ipv6Addr::Parse(addr); a6.ok()) {
      if (v6.empty()) v6 = a6->ToString();  // canonical, as the API server keeps it
    } else {
      return Errorf(ErrorCode::kInvalidArgument, "the CNI result's address '{}' is not an IP address", addr);
    }
  }
  std::vector<std::string> out;
  if (!v4.empty()) out.push_back(v4);
  if (!v6.empty()) out.push_back(v6);
  if (out.empty()) return Errorf(ErrorCode::kInvalidArgument, "the CNI result's ips hold no address");
  return out;
}

Status Lab::CheckPod(const std::string& dir, const PodRef& ref) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  PodRecord* p = s.FindPod(ref.ns, ref.name);
  if (!p) return PodNotFound(ref);
  if (p->ip.empty()) {
    return Errorf(ErrorCode::kUnavailable, "pod {} has no IP yet: its ADD is still running; check again when "
                  "`terway-lab status` shows its IP", ref.ToString());
  }
  NodeRecord* n = s.FindNode(p->node);
  if (!n) {
    return Errorf(ErrorCode::kInternal, "pod {} names node {} which the lab does not have",
                  ref.ToString(), p->node);
  }
  TERWAY_ASSIGN_OR_RETURN(auto r, RunPlugin(*n, *p, "CHECK", s.cni_timeout()));
  if (r.exit_code != 0) {
    return Errorf(ErrorCode::kUnavailable, "pod {} on {}: terway CHECK failed: {}", ref.ToString(),
                  n->name, DescribeCniFailure(r));
  }
  return Ok();
}

Status Lab::RunSandboxDel(const std::string& dir, const PodRef& ref, const std::atomic<bool>* cancel) {
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) return NoLabError(dir);
  // Read without the lock: one pod's operations are serialised by its
  // kubelet (or, with the control plane down, by whoever deletes it).
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  PodRecord* p = s.FindPod(ref.ns, ref.name);
  if (!p) return PodNotFound(ref);
  NodeRecord* n = s.FindNode(p->node);
  if (n && DaemonAlive(n->terwayd)) {
    TERWAY_ASSIGN_OR_RETURN(auto r, RunPlugin(*n, *p, "DEL", s.cni_timeout(), cancel));
    if (r.cancelled) {
      return Errorf(ErrorCode::kUnavailable,
                    "pod {}: terway DEL stopped: the control plane is shutting down; `down` removes the pod",
                    ref.ToString());
    }
    if (r.exit_code != 0) {
      return Errorf(ErrorCode::kUnavailable,
                    "pod {} on {}: terway DEL failed: {}; the pod is kept: retry, or `terway-lab down`",
                    ref.ToString(), n->name, DescribeCniFailure(r));
    }
  } else {
    err_ << fmt::format("terway-lab: warning: terwayd of {} is not running; pod {} is removed without DEL\n",
                        p->node, ref.ToString());
  }
  TERWAY_TRY_CTX(netlink::DeleteNamedNetns(p->netns), "removing the namespace of pod " + ref.ToString());
  return UpdateLabState(dir, [&](LabState& st) {
    st.RemovePod(ref.ns, ref.name);
    return Ok();
  });
}

Status Lab::Exec(const std::string& dir, const ExecArgs& args) {
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  PodRecord* p = s.FindPod(args.pod.ns, args.pod.name);
  if (!p) return PodNotFound(args.pod);
  std::string path = netlink::NetnsPath(p->netns);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SysError(fmt::format("opening the namespace {} of pod {}", path, args.pod.ToString()));
  // terway-lab is single-threaded here, so switching this thread's namespace
  // switches the process's, and exec keeps it.
  if (setns(fd, CLONE_NEWNET) != 0) return SysError("entering the namespace of pod " + args.pod.ToString());
  close(fd);
  // The command gets our stdin, stdout and stderr, nothing else of ours.
  CloseOnExecAboveStderr();
  std::vector<char*> argv;
  for (const auto& a : args.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());
  return SysError(fmt::format("running '{}' in pod {}", args.command[0], args.pod.ToString()));
}

}  // namespace terway::lab
