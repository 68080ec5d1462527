// Which ENI mode a node runs, from everything that may say so, as upstream
// Terway decides it:
//  - the node label k8s.aliyun.com/exclusive-mode-eni-type, value "eniOnly"
//    (compared case-insensitively, as upstream's NodeExclusiveENIMode does),
//    makes the node exclusive-ENI whatever eni_conf says: upstream's daemon
//    switches itself to ENIOnly when it sees the label at start;
//  - terwayd's -daemon-mode ENIOnly (older upstream releases' cluster-wide
//    exclusive mode) makes every node exclusive; ENIMultiIP (upstream's
//    chart) leaves the choice to the label and eni_conf;
//  - else eni_conf `eni_mode` (our key; the node's terway-config override
//    may set it), default shared.
// Upstream takes the label into account only on a node created with it (its
// controlplane refuses a node whose mode changed); we refuse to start in a
// mode other than the one the node's running pods were set up in
// (CheckEniModeSwitch), and let a node without pods switch.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/eni_config.h"

namespace terway::config {

inline constexpr char kExclusiveEniModeLabel[] = "k8s.aliyun.com/exclusive-mode-eni-type";
inline constexpr char kExclusiveEniOnly[] = "eniOnly";

// terwayd's -daemon-mode: "" (not given), "ENIMultiIP" or "ENIOnly".
inline constexpr char kDaemonModeMultiIp[] = "ENIMultiIP";
inline constexpr char kDaemonModeEniOnly[] = "ENIOnly";

bool LabelsSelectExclusiveEni(const std::map<std::string, std::string>& labels);

struct EniModeChoice {
  EniMode mode = EniMode::kShared;
  std::string source;  // what decided, for logs and errors
  std::vector<std::string> warnings;
};

// node_labels: the node's labels (empty without a Kubernetes API).
Result<EniModeChoice> ResolveEniMode(const EniConfig& c, const std::map<std::string, std::string>& node_labels,
                                     const std::string& daemon_mode);

// recorded_modes: the datapath mode of every pod the node's state database
// holds ("shared", "exclusive"; "" for IPAM-only records, which say
// nothing). An error naming the pods' mode and the way out when they differ
// from the chosen mode: their wiring cannot be carried over.
Status CheckEniModeSwitch(const EniModeChoice& choice, const std::vector<std::string>& recorded_modes);

}  // namespace terway::config
