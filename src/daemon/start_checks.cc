#include "daemon/start_checks.h"

#include <map>

#include "common/log.h"
#include "common/strings.h"
#include "daemon/daemon.h"

namespace terway::daemon {

Result<VSwitchChoice> VSwitchesForIpStack(ipam::IpStack stack, const std::vector<std::string>& candidates,
                                          const std::vector<cloud::VSwitch>& described,
                                          const std::string& config_source) {
  VSwitchChoice out;
  if (stack != ipam::IpStack::kDual) {
    out.usable = candidates;
    return out;
  }
  std::map<std::string, const cloud::VSwitch*> by_id;
  for (const auto& v : described) by_id[v.vswitch_id] = &v;
  for (const auto& id : candidates) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      out.skipped.push_back(id + " (DescribeVSwitches does not list it in this node's VPC)");
    } else if (it->second->ipv6_cidr_block.empty()) {
      out.skipped.push_back(id + " (no IPv6 CIDR block: IPv6 is not enabled on it)");
    } else {
      out.usable.push_back(id);
    }
  }
  if (out.usable.empty()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "ip_stack is dual but none of this node's vSwitches can give an ENI IPv6 addresses: {}; every "
                  "AssignIpv6Addresses there would fail (InvalidVSwitch.Ipv6NotTurnOn), so no pod could get its "
                  "IPv6. Enable IPv6 on the vSwitch (and its VPC), list a vSwitch with an IPv6 block in eni_conf "
                  "\"vswitches\", or set ip_stack to ipv4 (eni_conf from {})",
                  candidates.empty() ? std::string("none configured") : Join(out.skipped, ", "), config_source);
  }
  return out;
}

Result<VSwitchChoice> CheckVSwitchesForIpStack(ipam::EniProvider& provider, ipam::IpStack stack,
                                               const std::vector<std::string>& candidates,
                                               const std::string& config_source) {
  if (stack != ipam::IpStack::kDual) return VSwitchesForIpStack(stack, candidates, {}, config_source);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto described, provider.DescribeVSwitches(candidates),
                              fmt::format("describing vSwitches {} for their IPv6 blocks (ip_stack dual)",
                                          Join(candidates, ", ")));
  return VSwitchesForIpStack(stack, candidates, described, config_source);
}

// ---------------------------------------------------------------------------
// The daemon's step (declared in daemon.h)

Result<std::vector<std::string>> Daemon::VSwitchesForNewEnis(const std::vector<std::string>& candidates) {
  const ipam::IpStack stack = config_.ip_stack;
  VSwitchChoice choice;
  // DescribeVSwitches not answering (yet) is waited out; a configuration
  // that cannot work (kInvalidArgument) ends the start at once.
  TERWAY_TRY(WaitOut("describing this node's vSwitches (ip_stack dual needs their IPv6 blocks)", [&]() -> Status {
    TERWAY_ASSIGN_OR_RETURN(choice, CheckVSwitchesForIpStack(*provider_, stack, candidates, config_source_));
    return Ok();
  }));
  if (!choice.skipped.empty()) {
    // Checked at start: a vSwitch IPv6 is enabled on later is used after
    // terwayd's next start.
    const std::string message = fmt::format(
        "ip_stack is dual: new ENIs of this node avoid {} (AssignIpv6Addresses there fails "
        "InvalidVSwitch.Ipv6NotTurnOn) and use {}; enable IPv6 on those vSwitches and restart terwayd to use them",
        Join(choice.skipped, ", "), Join(choice.usable, ", "));
    log::Warn("vswitches_skipped {}", message);
    if (kube_) {
      kube_->ObjectWarning(k8s::ObjectReference{"Node", "", opts_.node_name, opts_.node_name, "v1"},
                           kVSwitchWithoutIpv6EventReason, message);
    }
  }
  return choice.usable;
}

}  // namespace terway::daemon
