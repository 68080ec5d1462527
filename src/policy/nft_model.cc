#include "policy/nft_model.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/strings.h"
#include "policy/l4_match.h"

namespace terway::policy {

namespace {

// nft's name for a protocol where it has one we already wrote, else the
// number (nft accepts both).
std::string NftProto(Protocol p) {
  switch (p.number()) {
    case 6: return "tcp";
    case 17: return "udp";
    case 132: return "sctp";
    case 1: return "icmp";
  }
  return std::to_string(p.number());
}

// The address term of a rule's peer in a family (0: a rule for both
// families names no address, so this is never asked for it).
std::string AddressTerm(int family, Direction d) {
  return fmt::format("{} {}", family == 6 ? "ip6" : "ip", d == Direction::kIngress ? "saddr" : "daddr");
}

// A set in the family a rule is written for: the model's name for IPv4,
// its IPv6 twin's otherwise.
std::string SetNameIn(int family, const std::string& name) { return family == 6 ? Ipv6SetName(name) : name; }

std::string Comment(const std::string& text) {
  // nft comments are at most 128 bytes and quoted; policy ids are DNS names.
  std::string s;
  for (char c : text) s += c == '"' ? '\'' : c;
  if (s.size() > 120) s.resize(120);
  return "comment \"" + s + "\"";
}

// What allowing means in a chain: ingress accepts; an egress chain returns
// so the forward chain goes on to the destination's ingress chain.
std::string AllowVerdict(Direction d) { return d == Direction::kEgress ? "return" : "accept"; }

// Where a Pass goes from tier part `part`: the next part's chain, or past
// the last part the namespace profile, which allows.
std::string PassVerdict(const PodChain& chain, size_t part) {
  if (part + 1 < chain.tiers.size()) return "goto " + chain.tiers[part + 1].chain;
  return AllowVerdict(chain.direction);
}

std::string Verdict(const PodChain& chain, size_t part, Action a) {
  switch (a) {
    case Action::kDeny: return "drop";
    case Action::kLog: return "";
    case Action::kAllow: return AllowVerdict(chain.direction);
    case Action::kPass: return PassVerdict(chain, part);
  }
  return "drop";
}

std::string Elements(const PortRanges& r) {
  std::vector<std::string> e;
  for (const auto& [a, b] : r) e.push_back(a == b ? std::to_string(a) : fmt::format("{}-{}", a, b));
  return "{ " + Join(e, ", ") + " }";
}

// A port match on one side: "tcp dport { 80 } ", "tcp sport != { 1-1023 } ".
std::string PortTerm(Protocol p, const char* side, const PortRanges& r, bool negated) {
  if (r.empty()) return "";
  return fmt::format("{} {} {}{} ", NftProto(p), side, negated ? "!= " : "", Elements(r));
}

// The layer-4 part of one alternative, with its trailing space: "" for any
// packet; a port or ICMP match implies its protocol, so the protocol is
// written alone only when nothing else names it.
std::string L4Match(const PortMatch& m, Direction d, const std::vector<IpSet>& sets, int family) {
  std::string s;
  const bool icmp = m.icmp_type || m.icmp_code || m.not_icmp_type || m.not_icmp_code;
  const bool ports = !m.ranges.empty() || !m.not_ranges.empty() || !m.source_ranges.empty() ||
                     !m.not_source_ranges.empty();
  if (m.protocol && !icmp && !ports) s += fmt::format("meta l4proto {} ", NftProto(*m.protocol));
  if (m.not_protocols.size() == 1) s += fmt::format("meta l4proto != {} ", NftProto(m.not_protocols[0]));
  if (m.not_protocols.size() > 1) {
    std::vector<std::string> names;
    for (Protocol p : m.not_protocols) names.push_back(NftProto(p));
    s += "meta l4proto != { " + Join(names, ", ") + " } ";
  }
  // ICMP terms are ICMPv6 ones under protocol ICMPv6 (Calico's icmp with
  // protocol ICMPv6): nft's icmpv6 match, which implies IPv6.
  const char* icmp_kw = m.protocol == Protocol::kICMPv6 ? "icmpv6" : "icmp";
  if (m.icmp_type) s += fmt::format("{} type {} ", icmp_kw, *m.icmp_type);
  if (m.icmp_code) s += fmt::format("{} code {} ", icmp_kw, *m.icmp_code);
  if (m.not_icmp_type) s += fmt::format("{} type != {} ", icmp_kw, *m.not_icmp_type);
  if (m.not_icmp_code) s += fmt::format("{} code != {} ", icmp_kw, *m.not_icmp_code);
  if (m.protocol && m.protocol->HasPorts()) {
    s += PortTerm(*m.protocol, "sport", m.source_ranges, false);
    s += PortTerm(*m.protocol, "sport", m.not_source_ranges, true);
    s += PortTerm(*m.protocol, "dport", m.ranges, false);
    s += PortTerm(*m.protocol, "dport", m.not_ranges, true);
  }
  if (m.tuple_set) {
    s += fmt::format("{} . meta l4proto . th {} @{} ", AddressTerm(family, d),
                     d == Direction::kIngress ? "sport" : "dport",
                     SetNameIn(family, sets[*m.tuple_set].name));
  }
  return s;
}


// The peer terms of a rule in one family, with their trailing space.
std::string PeerMatch(const CompiledPolicy& cp, const CompiledRule& r, int family) {
  const bool in = r.direction == Direction::kIngress;
  const std::string addr = AddressTerm(family, r.direction);
  const std::string tuple = addr + (in ? " . meta l4proto . th sport" : " . meta l4proto . th dport");
  auto name = [&](size_t i) { return SetNameIn(family, cp.sets()[i].name); };
  std::string s;
  if (r.peer_set) s += fmt::format("{} @{} ", addr, name(*r.peer_set));
  if (r.peer_not_set) s += fmt::format("{} != @{} ", addr, name(*r.peer_not_set));
  for (size_t t : r.tuple_sets) s += fmt::format("{} @{} ", tuple, name(t));
  for (size_t t : r.not_tuple_sets) s += fmt::format("{} != @{} ", tuple, name(t));
  return s;
}

bool NamesAddresses(const CompiledRule& r) {
  if (r.peer_set || r.peer_not_set || !r.tuple_sets.empty() || !r.not_tuple_sets.empty()) return true;
  return std::any_of(r.ports.begin(), r.ports.end(), [](const PortMatch& m) { return m.tuple_set.has_value(); });
}

// One nft rule per family and layer-4 alternative (one when the rule has
// neither), each: peer terms, layer-4 match, the rule's counter, log,
// verdict, and a comment naming the policy rule. A rule naming addresses
// is written once per family, against each half of its sets (`ip saddr
// @s_x`, `ip6 saddr @s6_x`): a packet is of one family, so it matches at
// most one of them and the shared counter counts it once. A rule of one
// family (ipVersion) without addresses says so with `meta nfproto`.
void RenderRule(const CompiledPolicy& cp, const PodChain& chain, size_t part, const CompiledRule& r,
                std::vector<std::string>* out) {
  std::string tail = fmt::format("counter name \"{}\" ", r.counter);
  if (r.action == Action::kLog) tail += fmt::format("log prefix \"terway {} \" ", r.counter);
  tail += Verdict(chain, part, r.action);
  tail += " " + Comment(cp.DescribeRule(r));
  const bool addresses = NamesAddresses(r);
  std::vector<int> families = r.ip_version ? std::vector<int>{*r.ip_version}
                              : addresses  ? std::vector<int>{4, 6}
                                           : std::vector<int>{0};
  for (int family : families) {
    std::string match = PeerMatch(cp, r, family);
    if (!addresses && family != 0) match = fmt::format("meta nfproto {} ", family == 6 ? "ipv6" : "ipv4") + match;
    if (r.ports.empty()) out->push_back(match + tail);
    for (const auto& m : r.ports) {
      if (AlternativeInFamily(m, family)) out->push_back(match + L4Match(m, r.direction, cp.sets(), family) + tail);
    }
  }
}

// A tier part's end: its default action.
std::string PartEnd(const PodChain& chain, size_t i, const PodInfo& pod, NftModel* m) {
  const TierPart& part = chain.tiers[i];
  const std::string what = fmt::format("{} of {}", DirectionName(chain.direction), pod.Key());
  if (part.known && part.default_pass) {
    return fmt::format("{} {}", PassVerdict(chain, i), Comment(fmt::format("{}: tier {} passes", what, part.tier)));
  }
  // Reaching the end: some policy selects the pod and nothing allowed it.
  m->counters.insert(part.chain + "_drop");
  std::string why =
      part.tier == kDefaultTier ? "no rule matched" : fmt::format("no rule matched in tier {}", part.tier);
  return fmt::format("counter name \"{}_drop\" drop {}", part.chain, Comment(fmt::format("{}: {}", what, why)));
}

std::string TupleElements(const std::set<AddressPortTuple>& t) {
  std::vector<std::string> e;
  for (const auto& x : t) e.push_back(fmt::format("{} . {} . {}", KeyToString(x.address), x.protocol, x.port));
  return Join(e, ", ");
}

}  // namespace

std::string Ipv6SetName(const std::string& name) {
  return name.empty() ? name : name.substr(0, 1) + "6" + name.substr(1);
}

std::string ModelSetName(const std::string& kernel_name) {
  const bool twin = kernel_name.size() > 3 && (kernel_name[0] == 's' || kernel_name[0] == 't') &&
                    kernel_name.compare(1, 2, "6_") == 0;
  if (twin) {
    return kernel_name.substr(0, 1) + kernel_name.substr(2);
  }
  return kernel_name;
}

std::pair<std::string, std::string> SplitElementsByFamily(const std::string& elements) {
  std::string v4, v6;
  size_t i = 0;
  while (i < elements.size()) {
    size_t e = elements.find(", ", i);
    if (e == std::string::npos) e = elements.size();
    if (e > i) {
      std::string* out = elements.find(':', i) < e ? &v6 : &v4;
      *out += (out->empty() ? "" : ", ") + elements.substr(i, e - i);
    }
    i = e + 2;
  }
  return {v4, v6};
}

NftModel ModelOf(const CompiledPolicy& cp) {
  NftModel m;
  for (const auto& set : cp.sets()) {
    if (set.is_tuples) m.tuple_sets[set.name] = TupleElements(set.tuples);
    else m.sets[set.name] = set.addresses.Empty() ? "" : set.addresses.ToString();
  }
  for (const auto& chain : cp.chains()) {
    const PodInfo& pod = cp.pods()[chain.pod];
    auto& map = chain.direction == Direction::kIngress ? m.ingress : m.egress;
    map[pod.ip->ToString()] = chain.name;
    if (pod.ipv6) map[pod.ipv6->ToString()] = chain.name;
    for (size_t i = 0; i < chain.tiers.size(); i++) {
      const TierPart& part = chain.tiers[i];
      std::vector<std::string>& rules = m.chains[part.chain];
      for (size_t r = part.first_rule; r < part.end_rule; r++) {
        RenderRule(cp, chain, i, chain.rules[r], &rules);
        m.counters.insert(chain.rules[r].counter);
      }
      rules.push_back(PartEnd(chain, i, pod, &m));
    }
  }
  return m;
}

NftObjects ObjectsOf(const NftModel& m) {
  NftObjects o;
  o.chains.insert("forward");
  o.maps = {"pod_ingress", "pod_egress", "pod_ingress6", "pod_egress6"};
  for (const auto* sets : {&m.sets, &m.tuple_sets}) {
    for (const auto& [name, elems] : *sets) {
      o.sets.insert(name);
      o.sets.insert(Ipv6SetName(name));
    }
  }
  for (const auto& [name, rules] : m.chains) o.chains.insert(name);
  o.counters = m.counters;
  return o;
}

NftObjects ObjectsOf(const CompiledPolicy& cp) { return ObjectsOf(ModelOf(cp)); }

}  // namespace terway::policy
