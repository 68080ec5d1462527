// A node whose eni_conf went from ip_stack dual back to ipv4: its ENIs still
// hold the IPv6s they were given, which the IPv4 pool would otherwise keep
// assigned in the cloud for good. Reconcile gives back every one no pod
// holds; an IPv6 a pod from the dual-stack period still holds (its
// allocation records it, and its sandbox is wired with it) stays until that
// pod's teardown has released it. This file decides which, without I/O.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ipam/engine.h"

namespace terway::ipam {

struct LeftoverIpv6Plan {
  // IPv6s only, grouped by ENI, at most kMaxIpsPerCall per action.
  std::vector<UnassignAction> returns;
  // Listed IPv6s kept because a pod holds them (or its teardown is due).
  int held = 0;
  // Listed IPv6s no pod holds that stay this round all the same.
  int deferred = 0;
};

// `listed`: each ENI the pool manages -> the IPv6s the cloud lists on it.
// `held`: IPv6s pods hold. `deferred`: IPv6s to leave for the next round
// (their stored pairing could not be cleared first).
LeftoverIpv6Plan PlanLeftoverIpv6(const std::map<std::string, std::vector<std::string>>& listed,
                                  const std::set<std::string>& held, const std::set<std::string>& deferred);

}  // namespace terway::ipam
