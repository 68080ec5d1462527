#include "policy/ip_ranges.h"

#include <algorithm>

namespace terway::policy {

Ipv4RangeSet Ipv4RangeSet::All() {
  Ipv4RangeSet s;
  s.ranges_.push_back({0, UINT32_MAX});
  return s;
}

void Ipv4RangeSet::AddRange(uint32_t first, uint32_t last) {
  if (first > last) std::swap(first, last);
  std::vector<Range> out;
  out.reserve(ranges_.size() + 1);
  bool placed = false;
  for (const auto& r : ranges_) {
    // Disjoint and not adjacent (64-bit arithmetic so UINT32_MAX + 1 cannot wrap).
    if (uint64_t{r.second} + 1 < first) {
      out.push_back(r);
    } else if (uint64_t{last} + 1 < r.first) {
      if (!placed) {
        out.push_back({first, last});
        placed = true;
      }
      out.push_back(r);
    } else {
      first = std::min(first, r.first);
      last = std::max(last, r.second);
    }
  }
  if (!placed) out.push_back({first, last});
  ranges_ = std::move(out);
}

void Ipv4RangeSet::AddAll(const Ipv4RangeSet& other) {
  for (const auto& r : other.ranges_) AddRange(r.first, r.second);
}

void Ipv4RangeSet::Subtract(const Ipv4RangeSet& other) {
  for (const auto& cut : other.ranges_) {
    std::vector<Range> out;
    for (const auto& r : ranges_) {
      if (cut.second < r.first || cut.first > r.second) {
        out.push_back(r);
        continue;
      }
      if (cut.first > r.first) out.push_back({r.first, cut.first - 1});
      if (cut.second < r.second) out.push_back({cut.second + 1, r.second});
    }
    ranges_ = std::move(out);
  }
}

void Ipv4RangeSet::Intersect(const Ipv4RangeSet& other) {
  // Both are sorted and disjoint: one merge pass.
  std::vector<Range> out;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < other.ranges_.size()) {
    const Range& a = ranges_[i];
    const Range& b = other.ranges_[j];
    uint32_t lo = std::max(a.first, b.first), hi = std::min(a.second, b.second);
    if (lo <= hi) out.push_back({lo, hi});
    if (a.second < b.second) i++;
    else j++;
  }
  ranges_ = std::move(out);
}

bool Ipv4RangeSet::Contains(Ipv4Addr a) const {
  uint32_t v = a.value();
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v,
                             [](uint32_t x, const Range& r) { return x < r.first; });
  if (it == ranges_.begin()) return false;
  --it;
  return v <= it->second;
}

std::string Ipv4RangeSet::ToString() const {
  std::string out;
  for (const auto& r : ranges_) {
    if (!out.empty()) out += ", ";
    out += Ipv4Addr(r.first).ToString();
    if (r.second != r.first) out += "-" + Ipv4Addr(r.second).ToString();
  }
  return out;
}

}  // namespace terway::policy
