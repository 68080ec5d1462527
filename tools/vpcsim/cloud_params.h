// Shared by VpcCloud's action files (cloud*.cc): request parameter parsing
// with the documented error answers, paging, and the ENI-state errors. Not
// part of the emulator's interface (that is cloud.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud/signer.h"
#include "cloud/types.h"
#include "common/result.h"
#include "tools/vpcsim/model.h"

namespace terway::vpcsim {

inline constexpr int kMaxIpsOnDetachedEni = 10;  // an Available ENI holds at most 10 secondary IPs
inline constexpr int kMaxIpv6OnDetachedEni = 10;
// AssignIpv6Addresses and CreateNetworkInterface take at most 10 IPv6 per call.
inline constexpr int kMaxIpv6PerCall = 10;

std::string RandomId(std::string_view prefix, size_t n);

// The parameter's value, or nullopt when absent or empty.
std::optional<std::string> Get(const cloud::QueryParams& p, const std::string& k);
// MissingParameter when absent.
Result<std::string> Require(const cloud::QueryParams& p, const std::string& k);
Error InvalidParam(const std::string& name, const std::string& why);
// A decimal integer within lo..hi, or nullopt when absent.
Result<std::optional<int64_t>> IntParam(const cloud::QueryParams& p, const std::string& k, int64_t lo,
                                        int64_t hi);
// prefix.1 .. prefix.N (at most max).
Result<std::vector<std::string>> ListParam(const cloud::QueryParams& p, const std::string& prefix,
                                           size_t max);
// Tag.N.Key / Tag.N.Value, N = 1..20.
Result<std::vector<cloud::Tag>> TagParams(const cloud::QueryParams& p);
// The request's meaning, without the parameters that only sign or route it:
// what a ClientToken must repeat exactly.
std::string Fingerprint(const std::string& action, const cloud::QueryParams& p);

struct Page {
  bool token_mode = false;
  size_t offset = 0;
  size_t size = 10;
  int64_t page_number = 1;
};

// MaxResults/NextToken (token mode) or PageNumber/PageSize (page mode).
Result<Page> PageParams(const cloud::QueryParams& p, int64_t max_page_size, int64_t max_results);

template <typename T>
std::vector<T> Slice(const std::vector<T>& all, const Page& pg) {
  if (pg.offset >= all.size()) return {};
  size_t end = std::min(all.size(), pg.offset + pg.size);
  return std::vector<T>(all.begin() + static_cast<long>(pg.offset), all.begin() + static_cast<long>(end));
}

void PagingFields(nlohmann::json* out, const Page& pg, size_t total);

// Operation.Conflict: the ENI is Attaching/Detaching.
Error EniConflict(const EniRecord& e);
// InvalidOperation.InvalidEniState: the ENI is not in `expecting`.
Error EniState(const EniRecord& e, const std::string& expecting);
bool Transitional(const EniRecord& e);

}  // namespace terway::vpcsim
