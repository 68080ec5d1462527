// The layer-4 part of a compiled rule as disjoint alternatives
// (PortMatch, compiler.h): protocol and notProtocol, icmp and notICMP,
// ports and notPorts on either side. Each operation narrows every
// alternative, splitting one where a single nft rule cannot say it
// (notICMP with a code; notPorts of several protocols on a rule of any
// protocol), and drops those that can no longer match. Pure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "policy/compiler.h"

namespace terway::policy {

using Alternatives = std::vector<PortMatch>;

// One alternative with no terms: any packet.
inline Alternatives AnyPacket() { return {PortMatch{}}; }
bool IsAnyPacket(const Alternatives& alts);

void RequireProtocol(Alternatives* alts, Protocol p);
void ExcludeProtocol(Alternatives* alts, Protocol p);
// Whether an alternative can match a packet of IP family 4 or 6 at all (0:
// either): ICMP type/code terms are of one family (icmp: IPv4, icmpv6: IPv6).
bool AlternativeInFamily(const PortMatch& m, int family);

void RequireIcmp(Alternatives* alts, const IcmpMatch& m, Protocol icmp = Protocol::kICMP);
// Calico's notICMP read as iptables renders it: not (type T and code C);
// like every ICMP match it matches ICMP packets only.
void ExcludeIcmp(Alternatives* alts, const IcmpMatch& m, Protocol icmp = Protocol::kICMP);

enum class PortSide { kDestination, kSource };

// One way a port list can be met: a port of `protocol` in `ranges` (empty:
// any port of it), or (peer address, protocol, peer's port) in a tuple set
// (protocol none: the set's tuples say which).
struct PortOption {
  std::optional<Protocol> protocol;
  PortRanges ranges;
  std::optional<size_t> tuple_set;
};

// The packet's port on `side` meets one of `options` (none: matches
// nothing). Options are made disjoint first (a tuple option leaves out the
// numeric ranges of its protocol), so a packet meets at most one.
void RequirePorts(Alternatives* alts, PortSide side, std::vector<PortOption> options);
// The packet's port on `side` is in none of the ranges listed for its
// protocol.
void ExcludePorts(Alternatives* alts, PortSide side, const std::map<Protocol, PortRanges>& by_protocol);

// Sorted, merged, inclusive.
PortRanges NormalizeRanges(PortRanges r);
bool InRanges(const PortRanges& r, uint16_t port);

// A canonical text of an alternative (for finding repeated rules).
std::string MatchKey(const PortMatch& m);

}  // namespace terway::policy
