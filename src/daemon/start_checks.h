// Start-up checks of eni_conf against what the cloud reports, made before
// the node serves. The decisions are pure functions; the daemon makes the
// cloud calls (CheckVSwitchesForIpStack is the one edge).
#pragma once

#include <string>
#include <vector>

#include "cloud/types.h"
#include "common/result.h"
#include "ipam/pool_config.h"
#include "ipam/provider.h"

namespace terway::daemon {

// The node's candidate vSwitches for new ENIs, as ip_stack allows them.
struct VSwitchChoice {
  std::vector<std::string> usable;   // configuration order kept
  std::vector<std::string> skipped;  // "<id> (<why>)", for the operator
};

// ip_stack dual: a new ENI takes its IPv6s from its vSwitch's IPv6 block,
// and on a vSwitch without one every AssignIpv6Addresses (and every
// CreateNetworkInterface asking IPv6s) fails with
// InvalidVSwitch.Ipv6NotTurnOn: such vSwitches (and any DescribeVSwitches
// does not list) are skipped, and when none is left the node cannot serve a
// dual-stack pod: kInvalidArgument naming each vSwitch, the cause and the
// fix. ip_stack ipv4: every candidate, no check. `config_source` names
// where eni_conf came from, for the fix.
Result<VSwitchChoice> VSwitchesForIpStack(ipam::IpStack stack, const std::vector<std::string>& candidates,
                                          const std::vector<cloud::VSwitch>& described,
                                          const std::string& config_source);

// The same with the cloud's DescribeVSwitches (dual only; an ipv4 node asks
// nothing). A failed call is returned as it is: the caller waits it out.
Result<VSwitchChoice> CheckVSwitchesForIpStack(ipam::EniProvider& provider, ipam::IpStack stack,
                                               const std::vector<std::string>& candidates,
                                               const std::string& config_source);

}  // namespace terway::daemon
