// What the pool's files share and nothing else includes: facts read off
// cloud errors and ENI descriptions.
#pragma once

#include <string>
#include <vector>

#include "cloud/types.h"
#include "common/result.h"

namespace terway::ipam::pool_detail {

inline bool IsThrottling(const Error& e) { return e.cloud_code.rfind("Throttling", 0) == 0; }

// Whether a failed call may still have been carried out by the cloud.
// Throttling and caller errors are refusals: nothing happened. A 5xx, a
// timeout or a broken connection may have come after the work was done.
inline bool MaybeApplied(const Error& e) {
  if (IsThrottling(e)) return false;
  if (!e.cloud_code.empty() && !e.retryable) return false;  // InvalidParameter, quota, ...
  return true;
}

inline std::vector<std::string> EniIps(const cloud::NetworkInterface& eni, std::string* primary) {
  std::vector<std::string> ips;
  for (const auto& p : eni.private_ip_sets) {
    ips.push_back(p.address);
    if (p.primary) *primary = p.address;
  }
  if (primary->empty()) *primary = eni.private_ip_address;
  if (ips.empty() && !eni.private_ip_address.empty()) ips.push_back(eni.private_ip_address);
  return ips;
}

inline std::string TagValue(const cloud::NetworkInterface& eni, const std::string& key) {
  for (const auto& t : eni.tags) {
    if (t.key == key) return t.value;
  }
  return "";
}

}  // namespace terway::ipam::pool_detail
