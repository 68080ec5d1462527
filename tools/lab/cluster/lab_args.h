// terway-lab's command line, parsed into one typed command. Pure: no I/O, so
// every rule (pod references, key=value lists, node counts) is unit-tested.
//
//   terway-lab [--lab DIR] up --nodes N [--instance-type T[,T...]] [--name NAME] [--vpc-hosts K]
//                             [--eni-mode M[,M...]] [--cni-timeout SECONDS]
//                             [--eniip-virtual-type veth|IPVlan|datapathv2]
//                             [--node-eniip-virtual-type NODE=veth|IPVlan|datapathv2 ...]
//                             [--ip-stack ipv4|dual]
//   terway-lab [--lab DIR] pod add NS/NAME --node N [--labels k=v,...] [--annotations k=v,...]
//                                  [--cni-version V]
//   terway-lab [--lab DIR] pod del NS/NAME | pod check NS/NAME
//   terway-lab [--lab DIR] exec NS/NAME -- CMD [ARG...]
//   terway-lab [--lab DIR] status
//   terway-lab [--lab DIR] down
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace terway::lab {

inline constexpr const char* kDefaultLabDir = "/run/terway-lab/default";

struct PodRef {
  std::string ns;
  std::string name;
  std::string ToString() const { return ns + "/" + name; }
};

struct UpArgs {
  int nodes = 0;
  std::vector<std::string> instance_types;  // per node; the last repeats
  std::string name;                         // world name; empty: generated
  int vpc_hosts = 1;
  // Per node, "shared" or "exclusive"; the last repeats (default shared).
  // An exclusive node is labelled terway-config=eni-exclusive, whose
  // ConfigMap sets eni_mode exclusive: Terway's way for ENI-only node pools.
  std::vector<std::string> eni_modes;
  // How long a kubelet lets the CNI plugin run before it kills it and fails
  // the pod (a real kubelet's runtime request timeout is 2 minutes).
  int cni_timeout_seconds = 120;
  // `--eni-config FILE`: an operator's eni_conf, run as given (the lab fills
  // in only the emulator's endpoints when the file leaves them out).
  std::string eni_config_file;
  // `--node-label NODE:KEY=VALUE` (repeatable): labels of the node objects,
  // e.g. upstream's k8s.aliyun.com/exclusive-mode-eni-type=eniOnly.
  std::map<std::string, std::map<std::string, std::string>> node_labels;
  // `--eniip-virtual-type`: the CNI conf's eniip_virtual_type of every node
  // (upstream keeps it in eni-config's 10-terway.conf); IPVlan and
  // datapathv2 select terwayd's eBPF datapath. Canonical spelling.
  std::string eniip_virtual_type = "veth";
  // `--node-eniip-virtual-type NODE=VALUE` (repeatable): one node's own.
  std::map<std::string, std::string> node_eniip_virtual_types;
  // `--ip-stack ipv4|dual`: upstream's eni_conf `ip_stack`. dual gives the
  // world's VPC an IPv6 /56 and each vSwitch an IPv6 /64, and the cluster's
  // eni-config `"ip_stack": "dual"`.
  std::string ip_stack = "ipv4";
};

// "ipv4" or "dual" (lowercase, upstream's spellings); an error naming `flag`
// and the accepted values otherwise.
Result<std::string> ParseIpStack(const std::string& flag, const std::string& text);

// "veth", "IPVlan" or "datapathv2" for any case of those (terwayd's
// spellings); an error naming `flag` and the accepted values otherwise.
Result<std::string> ParseEniipVirtualType(const std::string& flag, const std::string& text);
// True for the values terwayd serves with the eBPF datapath.
bool IsEbpfVirtualType(const std::string& canonical);
// The virtual type of node `name`: its own, else the cluster's.
std::string VirtualTypeOfNode(const UpArgs& up, const std::string& name);

// The ENI mode of node i (0-based) as `up --eni-mode` gave it.
std::string EniModeOfNode(const std::vector<std::string>& modes, int i);

struct PodAddArgs {
  PodRef pod;
  std::string node;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string cni_version = "1.0.0";
};

struct PodDelArgs {
  PodRef pod;
};

struct PodCheckArgs {
  PodRef pod;
};

struct ExecArgs {
  PodRef pod;
  std::vector<std::string> command;
};

// Internal: the daemon `up` starts (API stand-in + kubelets).
struct ControlPlaneArgs {};

// `terwayd kill NODE` (SIGKILL, as a crash) / `terwayd start NODE`.
struct TerwaydArgs {
  std::string node;
  bool start = false;
};

// `vpcsim kill` (SIGKILL, as a crash) / `vpcsim start`: the emulated cloud
// goes away and comes back from its state on disk; its fabric (the VPC's
// namespaces and links) stays up meanwhile, as a real VPC's data plane does
// when its control plane fails.
struct VpcsimArgs {
  bool start = false;
};

struct StatusArgs {};
struct DownArgs {};
struct HelpArgs {};

using LabAction =
    std::variant<HelpArgs, UpArgs, PodAddArgs, PodDelArgs, PodCheckArgs, ExecArgs, StatusArgs, DownArgs,
                 ControlPlaneArgs, TerwaydArgs, VpcsimArgs>;

struct LabCommand {
  std::string lab_dir = kDefaultLabDir;
  LabAction action;
};

// args excludes argv[0]. `default_lab_dir` is what --lab defaults to (the
// caller passes $TERWAY_LAB_DIR when set).
Result<LabCommand> ParseLabArgs(const std::vector<std::string>& args,
                                const std::string& default_lab_dir = kDefaultLabDir);

// "ns/name" with both parts Kubernetes names (lowercase DNS labels).
Result<PodRef> ParsePodRef(const std::string& text);
// "k=v,k2=v2" (empty string: no pairs). Keys are Kubernetes label keys
// (optional DNS prefix + '/' + name); values may be empty.
Result<std::map<std::string, std::string>> ParseKeyValues(const std::string& text,
                                                          const std::string& what);
// "ecs.g7.large,ecs.vpcsim.tiny".
Result<std::vector<std::string>> ParseInstanceTypes(const std::string& text);
// The instance type of node i (0-based): the list's i-th, the last repeating,
// or the default when the list is empty.
std::string InstanceTypeOfNode(const std::vector<std::string>& types, int i);
// A world name: 1-8 characters of [a-z0-9], starting with a letter (it
// prefixes namespace and link names, which the kernel caps at 15 characters).
Status ValidateWorldName(const std::string& name);

std::string LabUsage();

inline constexpr const char* kDefaultInstanceType = "ecs.g7.large";

}  // namespace terway::lab
