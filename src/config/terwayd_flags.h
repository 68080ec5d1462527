// terwayd's command line: ours and upstream Terway's, in Go's flag syntax
// (what upstream's terwayd uses): -name value, -name=value, --name value,
// --name=value; booleans as -name or -name=false; "--" ends the flags.
// Upstream's DaemonSet runs
//   terwayd -log-level info -daemon-mode ENIMultiIP -config /etc/eni/eni_conf
// and this image must start from that line unchanged.
//
// Upstream's flags (cmd/terway/main.go, plus controller-runtime's
// -kubeconfig and, in older releases, -master):
//   -daemon-mode      ENIMultiIP (the chart's), ENIOnly (older releases'
//                     exclusive ENI on every node); VPC is refused
//   -config           the eni_conf file (read when terwayd runs without an API)
//   -log-level        trace|debug|info|warn|error (upstream: debug or not)
//   -kubeconfig       as ours
//   -master           the API server, overriding the kubeconfig's
//   -readonly-listen  upstream's debug socket for its CLI: accepted and
//                     warned about (terway-cli here talks over the CNI socket)
//   -feature-gates    upstream's feature gates: accepted and warned about
// Anything else is refused naming the flag.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace terway::config {

struct TerwaydCommandLine {
  std::string config_path = "/etc/eni/eni.json";  // eni_conf, as Terway mounts it
  std::string socket_path;                        // "": eni_conf daemon_socket
  std::string state_path;                         // "": eni_conf state_path
  std::string metrics_listen = "127.0.0.1:9190";
  std::string metrics_port_file;
  std::string datapath = "auto";
  bool ebpf_datapath = true;          // --ebpf-datapath auto|off
  std::string bpffs = "/sys/fs/bpf";  // --bpffs: where the eBPF datapath pins its maps (<bpffs>/terway)
  std::string kubeconfig;
  std::string api_server;  // -master
  std::string node_name;
  std::string log_level = "info";
  std::string daemon_mode;  // "", "ENIMultiIP" or "ENIOnly"
  bool help = false;
  // Flags accepted without effect, each saying why.
  std::vector<std::string> warnings;
};

// args: the arguments after the program name.
Result<TerwaydCommandLine> ParseTerwaydCommandLine(const std::vector<std::string>& args);

// The --help text.
std::string TerwaydUsage();

}  // namespace terway::config
