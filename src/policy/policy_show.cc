#include "policy/policy_show.h"

#include <map>

#include <fmt/format.h>

namespace terway::policy {

namespace {

std::string FailClosedSection(const CompiledPolicy& cp) {
  std::string out;
  for (const auto& p : cp.policies()) {
    for (const auto& n : p.fail_closed) {
      out += fmt::format("  {} {}: {}; enforced as: {}\n", p.Id(), n.where, n.why, n.enforced_as);
    }
  }
  return out.empty() ? out : "fail closed:\n" + out;
}

std::string PeerText(const CompiledPolicy& cp, const CompiledRule& r) {
  std::string peer = r.peer_set ? cp.sets()[*r.peer_set].key : "any";
  if (r.peer_not_set) peer += " but " + cp.sets()[*r.peer_not_set].key;
  for (size_t t : r.tuple_sets) peer += " & " + cp.sets()[t].key;
  return peer;
}

}  // namespace

std::string FormatPolicyShow(const CompiledPolicy& cp, const std::vector<RuleCounter>& counters) {
  std::map<std::string, const RuleCounter*> by_name;
  for (const auto& c : counters) by_name[c.name] = &c;
  auto count = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? std::string("-") : fmt::format("{} pkts {} bytes", it->second->packets, it->second->bytes);
  };
  std::string out = FailClosedSection(cp);
  for (const auto& chain : cp.chains()) {
    out += fmt::format("{} {} ({}):\n", cp.pods()[chain.pod].Key(), DirectionName(chain.direction), chain.name);
    const bool named = chain.tiers.size() > 1 || chain.tiers[0].tier != kDefaultTier;
    for (const auto& part : chain.tiers) {
      if (named) out += fmt::format("  tier {} ({}):\n", part.tier, part.chain);
      for (size_t i = part.first_rule; i < part.end_rule; i++) {
        const CompiledRule& r = chain.rules[i];
        out += fmt::format("  {:<50} peer {:<40} {}\n", cp.DescribeRule(r), PeerText(cp, r), count(r.counter));
      }
      if (part.known && part.default_pass) out += fmt::format("  {:<50}\n", "default pass");
      else out += fmt::format("  {:<50} {:<45} {}\n", "default deny", "", count(part.chain + "_drop"));
    }
  }
  return out;
}

}  // namespace terway::policy
