#include "policy/policy_show.h"

#include <map>

#include <fmt/format.h>

namespace terway::policy {

std::string FormatPolicyShow(const CompiledPolicy& cp, const std::vector<RuleCounter>& counters) {
  std::map<std::string, const RuleCounter*> by_name;
  for (const auto& c : counters) by_name[c.name] = &c;
  auto count = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? std::string("-") : fmt::format("{} pkts {} bytes", it->second->packets, it->second->bytes);
  };
  std::string out;
  for (const auto& chain : cp.chains()) {
    out += fmt::format("{} {} ({}):\n", cp.pods()[chain.pod].Key(), DirectionName(chain.direction), chain.name);
    for (const auto& r : chain.rules) {
      std::string peer = r.peer_set ? cp.sets()[*r.peer_set].key : "any";
      out += fmt::format("  {:<50} peer {:<40} {}\n", cp.DescribeRule(r), peer, count(r.counter));
    }
    out += fmt::format("  {:<50} {:<45} {}\n", "default deny", "", count(chain.name + "_drop"));
  }
  return out;
}

}  // namespace terway::policy
