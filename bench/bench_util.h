// Small helpers shared by the benchmarks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "e2e/harness/world.h"

namespace terway::bench {

// Nearest-rank percentile of the samples (p in [0, 1]); 0 when empty.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

// OpenAPI calls the emulated cloud has answered so far, by action.
inline std::map<std::string, int64_t> ApiCallsByAction(testing::VpcsimWorld* w) {
  std::map<std::string, int64_t> out;
  auto s = w->Admin("GET", "/admin/stats");
  if (!s.ok()) return out;
  // {"actions": {"AssignPrivateIpAddresses": {"calls": N, ...}, ...}} or a flat map.
  const auto& actions = s->contains("actions") ? (*s)["actions"] : *s;
  for (const auto& [name, v] : actions.items()) {
    if (v.is_object() && v.contains("calls")) out[name] = v["calls"].get<int64_t>();
  }
  return out;
}

inline int64_t TotalApiCalls(testing::VpcsimWorld* w) {
  int64_t total = 0;
  for (const auto& [action, n] : ApiCallsByAction(w)) total += n;
  return total;
}

}  // namespace terway::bench
