#include "ipam/leftover_ipv6.h"

#include <algorithm>

namespace terway::ipam {

LeftoverIpv6Plan PlanLeftoverIpv6(const std::map<std::string, std::vector<std::string>>& listed,
                                  const std::set<std::string>& held, const std::set<std::string>& deferred) {
  LeftoverIpv6Plan plan;
  for (const auto& [eni_id, ipv6s] : listed) {
    std::vector<std::string> going;
    for (const auto& v6 : ipv6s) {
      if (held.count(v6)) {
        ++plan.held;
      } else if (deferred.count(v6)) {
        ++plan.deferred;
      } else if (std::find(going.begin(), going.end(), v6) == going.end()) {
        going.push_back(v6);
      }
    }
    for (size_t i = 0; i < going.size(); i += kMaxIpsPerCall) {
      const size_t end = std::min(going.size(), i + kMaxIpsPerCall);
      plan.returns.push_back({eni_id, {}, std::vector<std::string>(going.begin() + i, going.begin() + end)});
    }
  }
  return plan;
}

}  // namespace terway::ipam
