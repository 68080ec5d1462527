#include "policy/l4_match.h"

#include <algorithm>


namespace terway::policy {

namespace {

// Narrows one alternative to protocol p; false when it cannot carry p.
bool Narrow(PortMatch* m, Protocol p) {
  if (m->protocol) return *m->protocol == p;
  if (std::find(m->not_protocols.begin(), m->not_protocols.end(), p) != m->not_protocols.end()) return false;
  m->protocol = p;
  m->not_protocols.clear();  // implied by the protocol
  return true;
}

PortRanges Intersect(const PortRanges& a, const PortRanges& b) {
  if (a.empty()) return b;  // empty: any port
  if (b.empty()) return a;
  PortRanges out;
  for (const auto& [a1, a2] : a) {
    for (const auto& [b1, b2] : b) {
      uint16_t lo = std::max(a1, b1), hi = std::min(a2, b2);
      if (lo <= hi) out.push_back({lo, hi});
    }
  }
  return NormalizeRanges(std::move(out));
}

PortRanges& Ranges(PortMatch* m, PortSide side) {
  return side == PortSide::kDestination ? m->ranges : m->source_ranges;
}
PortRanges& NotRanges(PortMatch* m, PortSide side) {
  return side == PortSide::kDestination ? m->not_ranges : m->not_source_ranges;
}

void AppendRanges(const PortRanges& r, std::string* k) {
  for (const auto& [a, b] : r) {
    *k += std::to_string(a);
    *k += '-';
    *k += std::to_string(b);
    *k += ',';
  }
}

// Merges range options by protocol (an empty range list: every port) and
// makes tuple options disjoint from them.
std::vector<PortOption> Disjoint(std::vector<PortOption> options) {
  std::map<std::optional<Protocol>, PortOption> ranged;
  std::vector<PortOption> tuples;
  for (auto& o : options) {
    if (o.tuple_set) {
      tuples.push_back(std::move(o));
      continue;
    }
    auto [it, fresh] = ranged.try_emplace(o.protocol, o);
    if (fresh) continue;
    PortOption& m = it->second;
    if (m.ranges.empty() || o.ranges.empty()) m.ranges.clear();  // every port already
    else m.ranges.insert(m.ranges.end(), o.ranges.begin(), o.ranges.end());
  }
  std::vector<PortOption> out;
  for (auto& [p, o] : ranged) {
    o.ranges = NormalizeRanges(std::move(o.ranges));
    out.push_back(std::move(o));
  }
  for (auto& t : tuples) {
    auto it = ranged.find(t.protocol);
    if (it != ranged.end() && it->second.ranges.empty()) continue;  // wholly covered
    if (it != ranged.end()) t.ranges.clear();
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

bool PortMatch::Matches(const std::vector<IpSet>& sets, Direction d, IpKey peer, const Packet& pkt) const {
  if (protocol && pkt.protocol != *protocol) return false;
  for (Protocol p : not_protocols) {
    if (pkt.protocol == p) return false;
  }
  const bool icmp_terms = icmp_type || icmp_code || not_icmp_type || not_icmp_code;
  if (icmp_terms) {
    // nft's icmp / icmpv6 matches carry their own "ICMP only" dependency:
    // the alternative's protocol (ICMPv6 for Calico's protocol ICMPv6).
    if (pkt.protocol != protocol.value_or(Protocol::kICMP)) return false;
    if (icmp_type && pkt.icmp_type != *icmp_type) return false;
    if (icmp_code && pkt.icmp_code != *icmp_code) return false;
    if (not_icmp_type && pkt.icmp_type == *not_icmp_type) return false;
    if (not_icmp_code && pkt.icmp_code == *not_icmp_code) return false;
  }
  if (!ranges.empty() && !InRanges(ranges, pkt.destination_port)) return false;
  if (InRanges(not_ranges, pkt.destination_port)) return false;
  if (!source_ranges.empty() && !InRanges(source_ranges, pkt.source_port)) return false;
  if (InRanges(not_source_ranges, pkt.source_port)) return false;
  if (tuple_set) {
    uint16_t peer_port = d == Direction::kEgress ? pkt.destination_port : pkt.source_port;
    if (!sets[*tuple_set].Contains(peer, pkt.protocol, peer_port)) return false;
  }
  return true;
}

bool IsAnyPacket(const Alternatives& alts) {
  if (alts.size() != 1) return false;
  const PortMatch& m = alts[0];
  return !m.protocol && m.not_protocols.empty() && !m.icmp_type && !m.icmp_code && !m.not_icmp_type &&
         !m.not_icmp_code && m.ranges.empty() && m.not_ranges.empty() && m.source_ranges.empty() &&
         m.not_source_ranges.empty() && !m.tuple_set;
}

PortRanges NormalizeRanges(PortRanges r) {
  std::sort(r.begin(), r.end());
  PortRanges out;
  for (const auto& [a, b] : r) {
    if (!out.empty() && uint32_t{a} <= uint32_t{out.back().second} + 1) {
      out.back().second = std::max(out.back().second, b);
    } else {
      out.push_back({a, b});
    }
  }
  return out;
}

bool InRanges(const PortRanges& r, uint16_t port) {
  for (const auto& [a, b] : r) {
    if (port >= a && port <= b) return true;
  }
  return false;
}

void RequireProtocol(Alternatives* alts, Protocol p) {
  std::erase_if(*alts, [&](PortMatch& m) { return !Narrow(&m, p); });
}

void ExcludeProtocol(Alternatives* alts, Protocol p) {
  std::erase_if(*alts, [&](PortMatch& m) {
    if (m.protocol) return *m.protocol == p;
    if (std::find(m.not_protocols.begin(), m.not_protocols.end(), p) == m.not_protocols.end()) {
      m.not_protocols.push_back(p);
      std::sort(m.not_protocols.begin(), m.not_protocols.end());
    }
    return false;
  });
}

bool AlternativeInFamily(const PortMatch& m, int family) {
  const bool icmp = m.icmp_type || m.icmp_code || m.not_icmp_type || m.not_icmp_code;
  if (!icmp || family == 0) return true;
  return (m.protocol == Protocol::kICMPv6) == (family == 6);
}

void RequireIcmp(Alternatives* alts, const IcmpMatch& m, Protocol icmp) {
  RequireProtocol(alts, icmp);
  std::erase_if(*alts, [&](PortMatch& a) {
    if (a.icmp_type && *a.icmp_type != m.type) return true;
    if (m.code && a.icmp_code && *a.icmp_code != *m.code) return true;
    if (a.not_icmp_type && *a.not_icmp_type == m.type) return true;
    if (m.code && a.not_icmp_code && *a.not_icmp_code == *m.code) return true;
    a.icmp_type = m.type;
    if (m.code) a.icmp_code = m.code;
    return false;
  });
}

void ExcludeIcmp(Alternatives* alts, const IcmpMatch& m, Protocol icmp) {
  RequireProtocol(alts, icmp);
  Alternatives out;
  for (auto& a : *alts) {
    if (a.icmp_type) {
      if (*a.icmp_type != m.type) {
        out.push_back(a);  // another type: never excluded
      } else if (m.code && !(a.icmp_code && *a.icmp_code == *m.code)) {
        if (!a.icmp_code) a.not_icmp_code = m.code;
        out.push_back(a);
      }
      continue;
    }
    // Type free: not type T; and, with a code, also type T with another code.
    PortMatch other_type = a;
    other_type.not_icmp_type = m.type;
    out.push_back(other_type);
    if (m.code) {
      PortMatch same_type = a;
      same_type.icmp_type = m.type;
      same_type.not_icmp_code = m.code;
      out.push_back(same_type);
    }
  }
  *alts = std::move(out);
}

void RequirePorts(Alternatives* alts, PortSide side, std::vector<PortOption> options) {
  Alternatives out;
  for (const auto& a : *alts) {
    for (const auto& o : Disjoint(options)) {
      PortMatch m = a;
      if (o.protocol && !Narrow(&m, *o.protocol)) continue;
      if (o.tuple_set) {
        m.tuple_set = o.tuple_set;
        // Disjoint from the numeric option of the same protocol.
        auto numeric = std::find_if(options.begin(), options.end(),
                                    [&](const PortOption& x) { return !x.tuple_set && x.protocol == o.protocol; });
        if (numeric != options.end()) {
          PortRanges cut;
          for (const auto& x : options) {
            if (!x.tuple_set && x.protocol == o.protocol) cut.insert(cut.end(), x.ranges.begin(), x.ranges.end());
          }
          PortRanges& nr = NotRanges(&m, side);
          nr.insert(nr.end(), cut.begin(), cut.end());
          nr = NormalizeRanges(std::move(nr));
        }
      } else {
        PortRanges& r = Ranges(&m, side);
        bool was_any = r.empty();
        r = Intersect(r, o.ranges);
        if (!was_any && !o.ranges.empty() && r.empty()) continue;  // disjoint ranges
      }
      out.push_back(std::move(m));
    }
  }
  *alts = std::move(out);
}

void ExcludePorts(Alternatives* alts, PortSide side, const std::map<Protocol, PortRanges>& by_protocol) {
  if (by_protocol.empty()) return;
  Alternatives out;
  auto exclude = [&](PortMatch m, const PortRanges& r) {
    PortRanges& nr = NotRanges(&m, side);
    nr.insert(nr.end(), r.begin(), r.end());
    nr = NormalizeRanges(std::move(nr));
    out.push_back(std::move(m));
  };
  for (const auto& a : *alts) {
    if (a.protocol) {
      auto it = by_protocol.find(*a.protocol);
      if (it == by_protocol.end()) out.push_back(a);
      else exclude(a, it->second);
      continue;
    }
    // Any protocol: one alternative per protocol with exclusions, one for
    // every other protocol.
    PortMatch rest = a;
    for (const auto& [p, r] : by_protocol) {
      PortMatch m = a;
      if (Narrow(&m, p)) exclude(m, r);
      if (std::find(rest.not_protocols.begin(), rest.not_protocols.end(), p) == rest.not_protocols.end()) {
        rest.not_protocols.push_back(p);
      }
    }
    std::sort(rest.not_protocols.begin(), rest.not_protocols.end());
    out.push_back(std::move(rest));
  }
  *alts = std::move(out);
}

std::string MatchKey(const PortMatch& m) {
  // Hot (once per compiled rule when pruning): plain appends, no format.
  auto opt = [](const std::optional<uint8_t>& o, std::string* k) {
    *k += o ? std::to_string(*o) : "*";
    *k += '/';
  };
  std::string k = m.protocol ? std::to_string(m.protocol->number()) : "*";
  k += '!';
  for (Protocol p : m.not_protocols) {
    k += std::to_string(p.number());
    k += ',';
  }
  k += "|i";
  opt(m.icmp_type, &k);
  opt(m.icmp_code, &k);
  opt(m.not_icmp_type, &k);
  opt(m.not_icmp_code, &k);
  k += "|d";
  AppendRanges(m.ranges, &k);
  k += '!';
  AppendRanges(m.not_ranges, &k);
  k += "|s";
  AppendRanges(m.source_ranges, &k);
  k += '!';
  AppendRanges(m.not_source_ranges, &k);
  k += "|t";
  k += m.tuple_set ? std::to_string(*m.tuple_set) : "*";
  return k;
}

}  // namespace terway::policy
