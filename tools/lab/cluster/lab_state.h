// The lab's state file (<lab dir>/lab.json): what one `terway-lab` invocation
// started, so that the next one (pod add, status, down) can find and stop it.
// It is saved after every step of `up` and before every change to a pod, so
// `down` can undo a half-done `up` or `pod add` too.
//
// Two locks, both flock(2) on files of the lab directory:
// - the lab lock (lab.lock) guards lab.json's read-modify-write and nothing
//   else: it is held for the milliseconds of UpdateLabState, never across a
//   plugin run or a wait for a daemon, so the kubelets of every node and the
//   pod commands work in parallel;
// - the lifecycle lock (lifecycle.lock) is held for the whole of `up`,
//   `down` and `terwayd kill|start`: `down` never runs beside an `up` that
//   still starts daemons, nor beside a terwayd being started. Pod operations
//   do not take it; they refuse to start unless the phase is "up", and `down`
//   sets "stopping" first.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "tools/lab/cluster/lab_files.h"
#include "tools/lab/cluster/process.h"

namespace terway::lab {

// A node: an ECS instance of the world with terwayd running in its namespace.
struct NodeRecord {
  std::string name;         // node1, node2, ...
  std::string instance_id;  // i-<world>n1
  std::string instance_type;
  std::string netns;        // <world>-<instance id>
  std::string dir;          // <lab>/nodes/<name>: eni_conf, socket, state db, log, conflist
  std::string socket;
  std::string state_db;
  std::string eni_conf;
  std::string conflist;
  std::string log;
  std::string eni_mode = "shared";  // or "exclusive" (a whole ENI per pod)
  int max_pods = 0;  // max pods of its ENI mode, from DescribeInstanceTypes
  // Extra labels of the node object (`up --node-label`); exclusive ENI
  // chosen by upstream's label rather than by the lab's terway-config.
  std::map<std::string, std::string> labels;
  bool exclusive_by_label = false;
  // The conflist's eniip_virtual_type (veth, IPVlan, datapathv2); the
  // latter two are served with terwayd's eBPF datapath.
  std::string eniip_virtual_type = "veth";
  // terwayd's --bpffs: a bpf filesystem of this node's own (<dir>/bpffs),
  // mounted by the lab for eBPF nodes, so that the terwayds of one machine
  // never see (nor GC) each other's pins; `down` unmounts it.
  std::string bpffs;
  DaemonId terwayd;
  // terwayd's kubeconfig: the API stand-in as seen from inside the node's
  // namespace (its own listener on the namespace's loopback).
  std::string kubeconfig;
};

// A plain VPC host: an instance without terwayd (a peer for pod traffic).
struct HostRecord {
  std::string name;  // host1, ...
  std::string instance_id;
  std::string netns;
  std::string ip;  // primary private IP of eth0
  // Its IPv6 on eth0 (the primary ENI's, `up --ip-stack dual`); "" without.
  // Default-initialised so that IPv4-only aggregate initialisers stay valid.
  std::string ipv6 = {};
};

struct PodRecord {
  std::string ns;
  std::string name;
  std::string node;          // node name
  std::string container_id;
  std::string netns;         // named namespace
  std::string ifname = "eth0";
  std::string cni_version;
  std::string ip;            // empty while ADD has not succeeded
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  nlohmann::json result;     // the ADD result, the runtime's cache (prevResult of CHECK/DEL)

  std::string Key() const { return ns + "/" + name; }
};

struct LabState {
  std::string dir;        // the lab directory (not saved: where it was loaded from)
  std::string world;      // world name, prefixes every namespace of the lab
  // "starting" during up, "up" once every node is ready, "stopping" from
  // the start of down.
  std::string phase;
  // How long the kubelets let the CNI plugin run (ADD, DEL) before killing
  // it; a killed ADD fails the pod (`up --cni-timeout`).
  int cni_timeout_seconds = 120;
  std::string vswitch;
  std::string vswitch_cidr;
  // `up --ip-stack`: "ipv4" or "dual" (eni_conf's ip_stack). With dual the
  // VPC has an IPv6 /56 and the vSwitch a /64 of it; "" otherwise.
  std::string ip_stack = "ipv4";
  std::string vpc_ipv6_cidr;
  std::string vswitch_ipv6_cidr;
  std::string zone;
  std::string access_key;
  std::string access_secret;
  // An operator's eni_conf (`up --eni-config`), as given; "" = the lab's.
  std::string operator_eni_conf;
  // The cluster's eniip_virtual_type (eni-config's 10-terway.conf).
  std::string eniip_virtual_type = "veth";
  std::string vpcsim_state;  // vpcsim --state dir
  std::string vpcsim_log;
  int vpcsim_port = 0;
  DaemonId vpcsim;
  // The control plane: the API stand-in and one "kubelet" per node, in one
  // `terway-lab control-plane` daemon. kubeconfig reaches it from the host.
  DaemonId control_plane;
  std::string control_plane_log;
  std::string kubeconfig;
  std::vector<NodeRecord> nodes;
  std::vector<HostRecord> hosts;
  std::vector<PodRecord> pods;

  // Lookups; nullptr when absent. A node is named by its name (node1), its
  // number (1) or its instance id.
  NodeRecord* FindNode(const std::string& selector);
  PodRecord* FindPod(const std::string& ns, const std::string& name);
  void RemovePod(const std::string& ns, const std::string& name);
  std::string NodeNames() const;  // "node1, node2" for error messages
  std::chrono::seconds cni_timeout() const { return std::chrono::seconds(cni_timeout_seconds); }
};

nlohmann::json LabStateToJson(const LabState& s);
Result<LabState> LabStateFromJson(const nlohmann::json& j);

std::string LabStatePath(const std::string& lab_dir);
// "no lab at DIR", with the command that starts one.
Error NoLabError(const std::string& lab_dir);
// kNotFound (NoLabError) when the lab directory holds no state file.
// Reads without a lock: lab.json is replaced by rename, never half-written.
Result<LabState> LoadLabState(const std::string& lab_dir);
// Writes without the lock: only for a caller that holds it (UpdateLabState).
Status SaveLabState(const LabState& s);

Result<FileLock> AcquireLabLock(const std::string& lab_dir);
Result<FileLock> AcquireLifecycleLock(const std::string& lab_dir);
// Under the lab lock: loads lab.json, applies change, and saves the result
// unless change fails (then lab.json stays as it was). change must be quick:
// every pod operation of every node waits while it runs.
Status UpdateLabState(const std::string& lab_dir, const std::function<Status(LabState&)>& change);
// Under the lab lock: replaces lab.json with s. For `up`, which builds the
// state in memory and is its only writer until the phase is "up".
Status StoreLabState(const LabState& s);

// A CNI container id for a pod of this world: [A-Za-z0-9._-], unique per
// world, namespace and name.
std::string PodContainerId(const std::string& world, const std::string& ns,
                           const std::string& name);
// The pod's named network namespace: <world>-pod-<ns>-<name>.
std::string PodNetnsName(const std::string& world, const std::string& ns,
                         const std::string& name);

}  // namespace terway::lab
