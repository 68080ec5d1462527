// `terway-cli policy show`: the compiled model next to the kernel's
// counters, so an operator sees which rule of which policy a pod's traffic
// hits. Pure: the daemon reads the counters (NftPolicyTable::ReadCounters).
#pragma once

#include <string>
#include <vector>

#include "policy/compiler.h"
#include "policy/nft_model.h"

namespace terway::policy {

// First, when any policy is enforced on the safe side, a "fail closed:"
// section with one line per note (policy, where, why, what is enforced).
// Then per pod chain: a header line "<pod> <direction> (<chain>):", and
// per tier taking part (named "  tier <name> (<chain>):" unless the chain
// is the default tier alone) each rule with its peer and counter values,
// then the tier's default action. A counter the kernel did not report
// shows "-".
std::string FormatPolicyShow(const CompiledPolicy& policy, const std::vector<RuleCounter>& counters);

}  // namespace terway::policy
