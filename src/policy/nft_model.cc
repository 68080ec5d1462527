#include "policy/nft_model.h"

#include <fmt/format.h>

#include "common/strings.h"

namespace terway::policy {

namespace {

const char* NftProto(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "tcp";
    case Protocol::kUDP: return "udp";
    case Protocol::kSCTP: return "sctp";
    case Protocol::kICMP: return "icmp";
  }
  return "tcp";
}

std::string Comment(const std::string& text) {
  // nft comments are at most 128 bytes and quoted; policy ids are DNS names.
  std::string s;
  for (char c : text) s += c == '"' ? '\'' : c;
  if (s.size() > 120) s.resize(120);
  return "comment \"" + s + "\"";
}

std::string Verdict(Action a, Direction d) {
  switch (a) {
    case Action::kDeny: return "drop";
    case Action::kLog: return "";
    // Allow and Pass (to the allowing profile): an egress chain returns so
    // the forward chain goes on to the destination's ingress chain.
    case Action::kAllow:
    case Action::kPass: return d == Direction::kEgress ? "return" : "accept";
  }
  return "drop";
}

// The layer-4 part of a rule's match, with its trailing space: "" for any
// protocol, the protocol alone, or the protocol with its destination ports.
std::string L4Match(const PortMatch& m) {
  if (!m.protocol) return "";
  if (m.all_ports || *m.protocol == Protocol::kICMP) return fmt::format("meta l4proto {} ", NftProto(*m.protocol));
  std::vector<std::string> elems;
  for (const auto& [a, b] : m.ranges) elems.push_back(a == b ? std::to_string(a) : fmt::format("{}-{}", a, b));
  return fmt::format("{} dport {{ {} }} ", NftProto(*m.protocol), Join(elems, ", "));
}

// One nft rule per port match (one when the rule has none), each: peer set
// match, layer-4 match, the rule's counter, log, verdict, and a comment
// naming the policy rule.
void RenderRule(const CompiledPolicy& cp, const CompiledRule& r, std::vector<std::string>* out) {
  std::string match;
  if (r.peer_set) {
    match = fmt::format("ip {} @{} ", r.direction == Direction::kIngress ? "saddr" : "daddr",
                        cp.sets()[*r.peer_set].name);
  }
  std::string tail = fmt::format("counter name \"{}\" ", r.counter);
  if (r.action == Action::kLog) tail += fmt::format("log prefix \"terway {} \" ", r.counter);
  tail += Verdict(r.action, r.direction);
  tail += " " + Comment(cp.DescribeRule(r));
  if (r.ports.empty()) out->push_back(match + tail);
  for (const auto& m : r.ports) out->push_back(match + L4Match(m) + tail);
}

}  // namespace

NftModel ModelOf(const CompiledPolicy& cp) {
  NftModel m;
  for (const auto& set : cp.sets()) m.sets[set.name] = set.addresses.Empty() ? "" : set.addresses.ToString();
  for (const auto& chain : cp.chains()) {
    const PodInfo& pod = cp.pods()[chain.pod];
    (chain.direction == Direction::kIngress ? m.ingress : m.egress)[pod.ip->ToString()] = chain.name;
    std::vector<std::string>& rules = m.chains[chain.name];
    for (const auto& r : chain.rules) {
      RenderRule(cp, r, &rules);
      m.counters.insert(r.counter);
    }
    // Reaching the end: some policy selects the pod and nothing allowed it.
    m.counters.insert(chain.name + "_drop");
    rules.push_back(fmt::format("counter name \"{}_drop\" drop {}", chain.name,
                                Comment(fmt::format("{} of {}: no rule matched", DirectionName(chain.direction),
                                                    pod.Key()))));
  }
  return m;
}

NftObjects ObjectsOf(const NftModel& m) {
  NftObjects o;
  o.chains.insert("forward");
  o.maps = {"pod_ingress", "pod_egress"};
  for (const auto& [name, elems] : m.sets) o.sets.insert(name);
  for (const auto& [name, rules] : m.chains) o.chains.insert(name);
  o.counters = m.counters;
  return o;
}

NftObjects ObjectsOf(const CompiledPolicy& cp) { return ObjectsOf(ModelOf(cp)); }

}  // namespace terway::policy
