#include "tools/vpcsim/query.h"

#include <map>

#include "common/strings.h"

namespace terway::vpcsim {

Result<cloud::QueryParams> ParseFormEncoded(std::string_view text) {
  cloud::QueryParams out;
  if (text.size() > 1 << 20) return MakeError(ErrorCode::kInvalidArgument, "request too large");
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t amp = text.find('&', pos);
    if (amp == std::string_view::npos) amp = text.size();
    std::string_view seg = text.substr(pos, amp - pos);
    pos = amp + 1;
    if (seg.empty()) continue;
    size_t eq = seg.find('=');
    std::string_view rk = seg.substr(0, eq);
    std::string_view rv = eq == std::string_view::npos ? std::string_view() : seg.substr(eq + 1);
    std::string k, v;
    if (!cloud::PercentDecode(rk, &k) || !cloud::PercentDecode(rv, &v)) {
      return Errorf(ErrorCode::kInvalidArgument, "bad percent-encoding in '{}'",
                    std::string(seg.substr(0, 64)));
    }
    if (k.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty parameter name");
    if (!out.emplace(std::move(k), std::move(v)).second) {
      return Errorf(ErrorCode::kInvalidArgument, "parameter '{}' given twice",
                    std::string(rk.substr(0, 64)));
    }
  }
  return out;
}

Result<std::vector<std::string>> RepeatList(const cloud::QueryParams& p, std::string_view prefix,
                                            size_t max) {
  std::map<size_t, std::string> byIndex;
  std::string pre = std::string(prefix) + ".";
  for (auto it = p.lower_bound(pre); it != p.end() && StartsWith(it->first, pre); ++it) {
    std::string_view idx = std::string_view(it->first).substr(pre.size());
    if (idx.empty() || idx.size() > 6) {
      return Errorf(ErrorCode::kInvalidArgument, "bad list index in {}", it->first);
    }
    size_t n = 0;
    for (char c : idx) {
      if (c < '0' || c > '9') return Errorf(ErrorCode::kInvalidArgument, "bad list index in {}", it->first);
      n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (n < 1 || n > max) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: index {} out of range 1..{}", prefix, n, max);
    }
    byIndex[n] = it->second;
  }
  std::vector<std::string> out;
  for (auto& [n, v] : byIndex) out.push_back(v);
  return out;
}

}  // namespace terway::vpcsim
