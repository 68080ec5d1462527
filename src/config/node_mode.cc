#include "config/node_mode.h"

#include <algorithm>
#include <cctype>

namespace terway::config {
namespace {
std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
}  // namespace

bool LabelsSelectExclusiveEni(const std::map<std::string, std::string>& labels) {
  auto it = labels.find(kExclusiveEniModeLabel);
  return it != labels.end() && Lower(it->second) == Lower(kExclusiveEniOnly);
}

Result<EniModeChoice> ResolveEniMode(const EniConfig& c, const std::map<std::string, std::string>& node_labels,
                                     const std::string& daemon_mode) {
  if (!daemon_mode.empty() && daemon_mode != kDaemonModeMultiIp && daemon_mode != kDaemonModeEniOnly) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "-daemon-mode {} is not supported: use ENIMultiIP (shared ENI; a node labelled {}={} runs "
                  "exclusive ENI) or ENIOnly (exclusive ENI on every node); Terway's VPC mode (pods routed "
                  "without ENI addresses) is not implemented",
                  daemon_mode, kExclusiveEniModeLabel, kExclusiveEniOnly);
  }
  EniModeChoice out;
  const bool shared_asked = c.eni_mode_set && c.eni_mode == EniMode::kShared;
  if (LabelsSelectExclusiveEni(node_labels)) {
    out.mode = EniMode::kExclusive;
    out.source = fmt::format("node label {}={}", kExclusiveEniModeLabel, node_labels.at(kExclusiveEniModeLabel));
    if (shared_asked) {
      out.warnings.push_back(fmt::format("eni_conf eni_mode \"shared\" is overridden by the {}: the label decides, "
                                         "as in Terway",
                                         out.source));
    }
    return out;
  }
  if (daemon_mode == kDaemonModeEniOnly) {
    if (shared_asked) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "-daemon-mode ENIOnly asks for exclusive ENI but eni_conf eni_mode is \"shared\": drop one "
                    "of them (or use -daemon-mode ENIMultiIP)");
    }
    out.mode = EniMode::kExclusive;
    out.source = "-daemon-mode ENIOnly";
    return out;
  }
  out.mode = c.eni_mode;
  out.source = c.eni_mode_set ? fmt::format("eni_conf eni_mode \"{}\"", ipam::EniModeName(c.eni_mode))
                              : "the default (shared ENI)";
  return out;
}

Status CheckEniModeSwitch(const EniModeChoice& choice, const std::vector<std::string>& recorded_modes) {
  const std::string want = ipam::EniModeName(choice.mode);
  std::map<std::string, int> other;
  for (const auto& m : recorded_modes) {
    if (!m.empty() && m != want) ++other[m];
  }
  if (other.empty()) return Ok();
  const auto& [mode, count] = *other.begin();
  return Errorf(ErrorCode::kInvalidArgument,
                "this node runs {} pod(s) set up with {} ENI, but {} selects {} ENI: a node's mode is chosen when "
                "it is created (as in Terway, whose exclusive-ENI label takes effect on new nodes only); drain "
                "the node first (a node without pods may switch) or undo the change ({})",
                count, mode, choice.source, want,
                choice.mode == EniMode::kExclusive ? fmt::format("remove the {} label", kExclusiveEniModeLabel)
                                                   : "restore the label or eni_mode");
}

}  // namespace terway::config
