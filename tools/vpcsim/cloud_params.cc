// Request parsing and the reply shapes shared by VpcCloud's actions (see
// cloud_params.h).
#include "tools/vpcsim/cloud_params.h"

#include <random>
#include <set>

#include "common/strings.h"
#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/query.h"

namespace terway::vpcsim {

using nlohmann::json;

Error ApiError(int http_status, std::string code, std::string message) {
  Error e(ErrorCode::kCloud, std::move(message));
  e.cloud_code = std::move(code);
  e.http_status = http_status;
  e.retryable = http_status >= 500 || e.cloud_code.rfind("Throttling", 0) == 0 ||
                e.cloud_code == "Operation.Conflict";
  return e;
}

namespace {

// Parameters that sign and route a request but do not change its meaning:
// left out of the ClientToken fingerprint so that a retry with a fresh nonce,
// timestamp or credential is recognised as the same request.
const std::set<std::string> kCommonParams = {
    "Signature",  "SignatureNonce", "Timestamp", "AccessKeyId", "SecurityToken",
    "SignatureMethod", "SignatureVersion", "Format", "ClientToken", "Version"};

}  // namespace

std::string RandomId(std::string_view prefix, size_t n) {
  static const char kAlpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s(prefix);
  for (size_t i = 0; i < n; i++) s.push_back(kAlpha[rng() % 36]);
  return s;
}

std::optional<std::string> Get(const cloud::QueryParams& p, const std::string& k) {
  auto it = p.find(k);
  if (it == p.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<std::string> Require(const cloud::QueryParams& p, const std::string& k) {
  auto v = Get(p, k);
  if (!v) {
    return ApiError(400, "MissingParameter",
                    fmt::format("The input parameter \"{}\" that is mandatory for processing this "
                                "request is not supplied.", k));
  }
  return *v;
}

Error InvalidParam(const std::string& name, const std::string& why) {
  return ApiError(400, "InvalidParameter",
                  fmt::format("The specified parameter \"{}\" is not valid: {}", name, why));
}

Result<std::optional<int64_t>> IntParam(const cloud::QueryParams& p, const std::string& k, int64_t lo,
                                        int64_t hi) {
  auto v = Get(p, k);
  if (!v) return std::optional<int64_t>();
  if (v->size() > 12) return InvalidParam(k, "not an integer");
  int64_t n = 0;
  bool neg = false;
  size_t i = 0;
  if ((*v)[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == v->size()) return InvalidParam(k, "not an integer");
  for (; i < v->size(); i++) {
    char c = (*v)[i];
    if (c < '0' || c > '9') return InvalidParam(k, "not an integer");
    n = n * 10 + (c - '0');
  }
  if (neg) n = -n;
  if (n < lo || n > hi) return InvalidParam(k, fmt::format("must be within {}..{}", lo, hi));
  return std::optional<int64_t>(n);
}

Result<std::vector<std::string>> ListParam(const cloud::QueryParams& p, const std::string& prefix,
                                           size_t max) {
  auto r = RepeatList(p, prefix, max);
  if (!r.ok()) return InvalidParam(prefix + ".N", r.error().message);
  return r;
}

// Tag.N.Key / Tag.N.Value, N = 1..20.
Result<std::vector<cloud::Tag>> TagParams(const cloud::QueryParams& p) {
  std::vector<cloud::Tag> tags;
  for (int n = 1; n <= 20; n++) {
    auto k = Get(p, fmt::format("Tag.{}.Key", n));
    auto v = Get(p, fmt::format("Tag.{}.Value", n));
    if (!k && v) return InvalidParam(fmt::format("Tag.{}.Key", n), "a tag value needs its key");
    if (k) tags.push_back({*k, v.value_or("")});
  }
  for (auto it = p.lower_bound("Tag."); it != p.end() && StartsWith(it->first, "Tag."); ++it) {
    auto parts = Split(it->first, '.');
    bool ok = parts.size() == 3 && (parts[2] == "Key" || parts[2] == "Value");
    int n = 0;
    if (ok) {
      for (char c : parts[1]) ok = ok && c >= '0' && c <= '9' && parts[1].size() <= 2;
      if (ok) n = std::stoi(parts[1]);
    }
    if (!ok || n < 1 || n > 20) return InvalidParam(it->first, "tags are Tag.N.Key/Tag.N.Value, N = 1..20");
  }
  return tags;
}

std::string Fingerprint(const std::string& action, const cloud::QueryParams& p) {
  cloud::QueryParams q;
  for (const auto& [k, v] : p) {
    if (!kCommonParams.count(k)) q[k] = v;
  }
  q["Action"] = action;
  return cloud::CanonicalizedQuery(q);
}
// MaxResults/NextToken (token mode) or PageNumber/PageSize (page mode).
Result<Page> PageParams(const cloud::QueryParams& p, int64_t max_page_size, int64_t max_results) {
  Page pg;
  auto next = Get(p, "NextToken");
  TERWAY_ASSIGN_OR_RETURN(auto mr, IntParam(p, "MaxResults", 1, max_results));
  if (next || mr) {
    pg.token_mode = true;
    pg.size = static_cast<size_t>(mr.value_or(10));
    if (next) {
      // Our tokens are decimal offsets; anything else was not issued by us.
      if (next->size() > 9 || next->find_first_not_of("0123456789") != std::string::npos) {
        return ApiError(400, "InvalidParameter", "The specified NextToken is not valid.");
      }
      pg.offset = std::stoul(*next);
    }
    return pg;
  }
  TERWAY_ASSIGN_OR_RETURN(auto pn, IntParam(p, "PageNumber", 1, 1000000));
  TERWAY_ASSIGN_OR_RETURN(auto ps, IntParam(p, "PageSize", 1, max_page_size));
  pg.page_number = pn.value_or(1);
  pg.size = static_cast<size_t>(ps.value_or(10));
  pg.offset = static_cast<size_t>(pg.page_number - 1) * pg.size;
  return pg;
}


void PagingFields(json* out, const Page& pg, size_t total) {
  (*out)["TotalCount"] = total;
  if (pg.token_mode) {
    size_t end = pg.offset + pg.size;
    (*out)["NextToken"] = end < total ? std::to_string(end) : "";
    (*out)["MaxResults"] = pg.size;
  } else {
    (*out)["PageNumber"] = pg.page_number;
    (*out)["PageSize"] = pg.size;
  }
}

Error EniConflict(const EniRecord& e) {
  return ApiError(403, "Operation.Conflict",
                  fmt::format("The operation may conflict with other processes: ENI {} is {}.", e.id,
                              e.status));
}

Error EniState(const EniRecord& e, const std::string& expecting) {
  return ApiError(400, "InvalidOperation.InvalidEniState",
                  fmt::format("The operation is not allowed in the current ENI state. Expecting "
                              "status is \"{}\" while current status is \"{}\" (ENI {}).",
                              expecting, e.status, e.id));
}

bool Transitional(const EniRecord& e) {
  return e.status == cloud::kEniAttaching || e.status == cloud::kEniDetaching;
}


}  // namespace terway::vpcsim
