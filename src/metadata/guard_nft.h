// The metadata guard's nftables table: pure rendering, no kernel access.
//
//   table ip terway_metadata
//     set exempt_pods     pod IPs that reach the metadata service directly
//     set guarded_ifaces  pods' host links named outside the guarded prefixes
//     chain steer        (nat prerouting) from a pod's host link, TCP to
//                         100.100.100.200:80 -> DNAT to the proxy, except
//                         exempt pods
//     chain fence        (filter forward) anything else from a pod's host
//                         link to 100.100.100.200 (other ports, UDP, and
//                         flows older than a withdrawn exemption) -> reject,
//                         except exempt pods
//     chain proxy_input  (filter input) the proxy's address answers only
//                         pods' host links and the node itself (lo)
//
// Pod traffic is recognised by the link it arrives on (the host side of its
// veth: prefix "tw", plus explicit names), not by source address: an address
// can be forged or reused, the link a packet came in on cannot.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/result.h"

namespace terway::metadata {

inline constexpr const char* kGuardFamily = "ip";
inline constexpr const char* kGuardTable = "terway_metadata";

struct GuardTableSpec {
  Ipv4Addr metadata_ip;          // 100.100.100.200
  uint16_t metadata_port = 80;
  Ipv4Addr proxy_ip;             // the proxy's node-local address
  uint16_t proxy_port = 80;
  std::vector<std::string> guarded_prefixes;  // host links whose name starts so ("tw")
};

struct GuardMembers {
  std::set<Ipv4Addr> exempt_pods;
  std::set<std::string> guarded_ifaces;
};

// A link name the kernel accepts (1..15 bytes, no '/', whitespace, quotes,
// or '*', which nft would read as a wildcard). Names the object on error.
Status ValidateInterfaceName(std::string_view name);
// Prefixes follow the same rules (they become "<prefix>*" in the rules).
Status ValidateSpec(const GuardTableSpec& spec);

// The whole table in one transaction: creates it, or replaces an existing
// one (a restart) atomically, so pods are never unguarded in between.
std::string RenderGuardTable(const GuardTableSpec& spec, const GuardMembers& members);

// One element added (present) or removed. Removal is "add then delete" in
// one batch, so it succeeds whether or not the element was there.
std::string RenderExemptPod(Ipv4Addr ip, bool present);
std::string RenderGuardedInterface(std::string_view name, bool present);

// Deletes the table if it exists (metadata_credentials_for_pods: allow).
std::string RenderRemoveGuardTable();

}  // namespace terway::metadata
