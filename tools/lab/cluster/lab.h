// The lab: a Terway cluster on this machine. vpcsim (the emulated region and
// its VPC fabric) and one terwayd per node run as daemons; pods are named
// network namespaces wired by the real `terway` CNI plugin, run exactly as a
// container runtime runs it. Every command loads the lab state, acts, and
// saves it, so separate invocations work on the same lab.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "tools/lab/cluster/lab_args.h"
#include "tools/lab/cluster/lab_state.h"

namespace terway::lab {

// The binaries the lab drives.
struct LabBinaries {
  std::string vpcsim;
  std::string terwayd;
  std::string terway;  // the CNI plugin
  std::string terway_cli;
};

// Finds them next to terway-lab: in a build tree (cmd/<name>/<name>) or an
// install dir (all in one directory); $TERWAY_LAB_BIN_DIR overrides.
Result<LabBinaries> FindLabBinaries();

// runtimeConfig.bandwidth as containerd's CRI plugin derives it from a pod's
// kubernetes.io/ingress-bandwidth and egress-bandwidth annotations (rates in
// bits/s, bursts math.MaxInt32); nullopt without them; an annotation that is
// not a Kubernetes quantity fails the sandbox, as it does there.
Result<std::optional<nlohmann::json>> RuntimeBandwidth(const std::map<std::string, std::string>& annotations);

// What a kubelet asks of its container runtime for a pod's sandbox: Lab in
// the lab, a fake in the kubelet's tests. Both may run for several pods at
// once; when cancel turns true the runtime gives up promptly.
class SandboxRuntime {
 public:
  virtual ~SandboxRuntime() = default;
  // The pod's IPs once its sandbox is wired: one per family, IPv4 first
  // (PodIpsOfCniResult).
  virtual Result<std::vector<std::string>> RunSandboxAdd(const std::string& dir, const PodAddArgs& args,
                                            const std::atomic<bool>* cancel) = 0;
  // kNotFound when the pod has no sandbox.
  virtual Status RunSandboxDel(const std::string& dir, const PodRef& pod, const std::atomic<bool>* cancel) = 0;
};

class Lab : public SandboxRuntime {
 public:
  // Progress and results go to out, warnings to err.
  Lab(LabBinaries bins, std::ostream& out, std::ostream& err)
      : bins_(std::move(bins)), out_(out), err_(err) {}

  // On failure, everything it started is torn down again.
  Status Up(const std::string& dir, const UpArgs& args);
  // Creates the Pod object and waits for the node's kubelet: returns the
  // pod's IP once Running. On failure (the kubelet ran DEL and removed the
  // namespace) the object is deleted again and the error carries the CNI's.
  Result<std::string> AddPod(const std::string& dir, const PodAddArgs& args);
  Status CheckPod(const std::string& dir, const PodRef& pod);
  // Deletes the Pod object and waits until its kubelet has run DEL and
  // removed the pod's namespace.
  Status DelPod(const std::string& dir, const PodRef& pod);
  // What a runtime does for a pod sandbox (the kubelet calls these): the
  // pod's namespace + CNI ADD, recorded in lab.json; returns the IP. On
  // failure (a plugin killed at the CNI timeout too) the plugin's DEL runs
  // and the pod's namespace is removed. The lab lock is held only to record
  // the pod and its IP, not while the plugin runs: pods of every node are
  // wired in parallel. When cancel turns true (the control plane stops) the
  // plugin is killed and the pod left recorded for `down`.
  Result<std::vector<std::string>> RunSandboxAdd(const std::string& dir, const PodAddArgs& args,
                                    const std::atomic<bool>* cancel = nullptr) override;
  // CNI DEL (skipped when the node's terwayd is down) + namespace removal.
  // The caller makes sure no other operation on this pod runs meanwhile
  // (the kubelet runs one pod's ADD and DEL in order).
  Status RunSandboxDel(const std::string& dir, const PodRef& pod,
                       const std::atomic<bool>* cancel = nullptr) override;
  // The control-plane daemon: API stand-in (host loopback + each node's
  // namespace), Node objects, ConfigMap eni-config, a kubelet per node.
  // Returns when SIGTERM/SIGINT arrives (blocked by the caller).
  Status RunControlPlane(const std::string& dir);
  // SIGKILL (start=false) or start again (start=true) a node's terwayd.
  Status Terwayd(const std::string& dir, const TerwaydArgs& args);
  // SIGKILL (start=false) or start again (start=true) vpcsim, from its state
  // and on the port it had (another one, recorded, if that one is taken).
  Status Vpcsim(const std::string& dir, const VpcsimArgs& args);
  // Replaces this process with the command, inside the pod's namespace.
  Status Exec(const std::string& dir, const ExecArgs& args);
  Status PrintStatus(const std::string& dir);
  // Idempotent; works with dead processes and half-done states.
  Status Down(const std::string& dir);

 private:
  Status StartWorld(LabState& s, const UpArgs& args);
  Status StartNodes(LabState& s, const UpArgs& args);
  Status StartControlPlane(LabState& s);
  // Writes the node's eni.json and conflist and starts its terwayd (n.terwayd);
  // the caller records it in lab.json.
  Status StartTerwayd(const LabState& s, NodeRecord& n);
  Status WaitTerwaydReady(const NodeRecord& n);
  Result<int> MaxPods(const LabState& s, const std::string& instance_type, const std::string& eni_mode);
  Result<CommandOutput> RunPlugin(const NodeRecord& n, const PodRecord& p, const std::string& command,
                                  std::chrono::seconds timeout, const std::atomic<bool>* cancel = nullptr);
  // down's work; the caller holds the lifecycle lock.
  Status TearDown(const std::string& dir);

  LabBinaries bins_;
  std::ostream& out_;
  std::ostream& err_;
};

// eni_conf of the lab's nodes: written to each node's eni.json and, as key
// eni_conf, to ConfigMap kube-system/eni-config.
nlohmann::json LabEniConf(const LabState& s);
// The lab world's VPC: inside 198.18.0.0/15, the benchmarking range, never
// routed anywhere real.
inline constexpr char kLabVpcCidr[] = "198.18.0.0/16";

// The pod IPs a kubelet reports (status.podIPs) from a CNI ADD result: the
// first address of each family among `ips`, IPv4 first, as Kubernetes orders
// a dual-stack pod's addresses (it allows one per family), without the
// prefix length. An error when the result has no usable address.
Result<std::vector<std::string>> PodIpsOfCniResult(const nlohmann::json& result);

// The CNI conf of eni-config's key 10-terway.conf, as upstream ships it
// (the cluster's eniip_virtual_type; absent for veth, upstream's default).
nlohmann::json LabCniConf(const std::string& eniip_virtual_type);
// "eBPF (eniip_virtual_type datapathv2; ...)" for status.
std::string DescribeNodeDatapath(const NodeRecord& n);

// "pod NS/NAME is not in the lab", with where to look.
Error PodNotFound(const PodRef& ref);

// "code 100: no IP address available (node has ...)" from the plugin's
// stdout (a CNI error object), or its raw output when that is not JSON.
std::string DescribeCniFailure(const CommandOutput& o);

}  // namespace terway::lab
