// Part of the wiring engine (wiring_engine.h): what an earlier wiring of the
// same pod left for an address the pod no longer has.
//
// A pod wired again with another address (restart repair after its
// allocation changed, e.g. a new IPv6) keeps its veth, and with it what the
// earlier wiring made for the old address: the host route to it, its rules,
// its proxy-NDP entry, the address in the pod. A plan names only the pod's
// current addresses, so the old ones are found through the pod's veth: every
// single-address route of the main table through a veth the plan owns leads
// to an address of that pod, and one the plan does not have is of an earlier
// address. Left behind, that address -- which the pool may give to another
// pod -- stays routed to this pod, and its rules and proxy entry stay too.
//
// Only the engine calls these: Apply removes what it finds, Diff names it,
// Remove takes the rules and proxy entries of such addresses with the pod's.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/wiring_plan.h"
#include "netlink/handle.h"

namespace terway::datapath {

// A route through an owned veth of `ns`: the way to an address of the pod.
struct VethRoute {
  std::string veth;
  netlink::Route route;  // as the kernel reports it (so deleting it matches it exactly)
};

// The single-address routes (an IPv4 /32, an IPv6 /128) of the main table
// through each veth the namespace's plan owns (a veth missing: none) that
// the plan does not have (same destination on the same veth): the ways to
// addresses the pod no longer has.
Result<std::vector<VethRoute>> FindStaleVethRoutes(netlink::Handle& h, const NamespacePlan& ns);

// Removes what the wiring made for the address a VethRoute leads to: the
// route itself (only through that veth, by its index) and the veth's
// neighbour entry for it (learnt from traffic), then -- unless the
// main table routes the address through another link now (another pod of the
// node holds it: its rules and proxy entry are its own) -- the rules for the
// address at the priorities of the plan's owned rules ("from X" or "to X",
// any table) and its proxy entries on every link. Each is "gone" = success.
Status ForgetVethAddress(netlink::Handle& h, const NamespacePlan& ns, const VethRoute& r);

// The addresses on the pod's end of an owned veth (`dev` in the peer's
// namespace plan) that are single-address (/32, /128), not IPv6 link-local
// (the kernel's own), and not the plan's: left from an earlier address.
// dev missing: none.
Result<std::vector<netlink::Address>> FindStalePeerAddresses(netlink::Handle& h, const NamespacePlan& peer_ns,
                                                             const std::string& dev);

// "route 2001:db8:1::10/128 dev tw0123456789abc" (as differences name it).
std::string DescribeVethRoute(const VethRoute& r);

}  // namespace terway::datapath
