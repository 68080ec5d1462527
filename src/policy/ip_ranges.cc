#include "policy/ip_ranges.h"

#include <algorithm>

namespace terway::policy {

namespace {

constexpr IpKey kMaxKey = ~IpKey{0};
constexpr IpKey kIpv4MappedLast = kIpv4MappedBase | 0xffffffffu;

Ipv6Addr Ipv6Of(IpKey k) {
  std::array<uint8_t, 16> b{};
  for (int i = 15; i >= 0; i--, k >>= 8) b[i] = static_cast<uint8_t>(k & 0xff);
  return Ipv6Addr(b);
}

std::string RangeText(IpKey a, IpKey b) {
  std::string first = KeyToString(a);
  return a == b ? first : first + "-" + KeyToString(b);
}

}  // namespace

IpKey KeyOf(const Ipv6Addr& a) {
  IpKey k = 0;
  for (uint8_t byte : a.bytes()) k = (k << 8) | byte;
  return k;
}

std::string KeyToString(IpKey k) {
  if (IsIpv4Key(k)) return Ipv4Addr(static_cast<uint32_t>(k)).ToString();
  return Ipv6Of(k).ToString();
}

Result<IpKey> ParseIpKey(std::string_view text) {
  if (auto a = Ipv4Addr::Parse(text); a.ok()) return KeyOf(*a);
  auto a6 = Ipv6Addr::Parse(text);
  if (!a6.ok()) {
    return Errorf(ErrorCode::kInvalidArgument, "{:?} is neither an IPv4 nor an IPv6 address", std::string(text));
  }
  return KeyOf(*a6);
}

void IpRangeSet::Add(const Ipv6Addr& a) {
  IpKey k = KeyOf(a);
  if (!IsIpv4Key(k)) AddRange(k, k);
}

void IpRangeSet::Add(const Ipv6Cidr& c) {
  const int host_bits = 128 - c.prefix_len();
  const IpKey host_mask = host_bits >= 128 ? kMaxKey : (IpKey{1} << host_bits) - 1;
  const IpKey first = KeyOf(c.network()) & ~host_mask;
  IpRangeSet r;
  r.AddRange(first, first | host_mask);
  IpRangeSet mapped;
  mapped.AddRange(kIpv4MappedBase, kIpv4MappedLast);
  r.Subtract(mapped);
  AddAll(r);
}

IpRangeSet IpRangeSet::All() {
  IpRangeSet s;
  s.ranges_.push_back({0, kMaxKey});
  return s;
}

void IpRangeSet::AddRange(IpKey first, IpKey last) {
  if (first > last) std::swap(first, last);
  std::vector<Range> out;
  out.reserve(ranges_.size() + 1);
  bool placed = false;
  for (const auto& r : ranges_) {
    // Disjoint and not adjacent (checked without computing max + 1).
    if (r.second < first && r.second + 1 < first) {
      out.push_back(r);
    } else if (last < r.first && last + 1 < r.first) {
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

void IpRangeSet::AddAll(const IpRangeSet& other) {
  for (const auto& r : other.ranges_) AddRange(r.first, r.second);
}

void IpRangeSet::Subtract(const IpRangeSet& other) {
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

void IpRangeSet::Intersect(const IpRangeSet& other) {
  // Both are sorted and disjoint: one merge pass.
  std::vector<Range> out;
  size_t i = 0, j = 0;
  while (i < ranges_.size() && j < other.ranges_.size()) {
    const Range& a = ranges_[i];
    const Range& b = other.ranges_[j];
    IpKey lo = std::max(a.first, b.first), hi = std::min(a.second, b.second);
    if (lo <= hi) out.push_back({lo, hi});
    if (a.second < b.second) i++;
    else j++;
  }
  ranges_ = std::move(out);
}

bool IpRangeSet::Contains(IpKey v) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v,
                             [](IpKey x, const Range& r) { return x < r.first; });
  if (it == ranges_.begin()) return false;
  --it;
  return v <= it->second;
}

std::string IpRangeSet::ToString() const {
  std::string v4, v6;
  auto put = [](std::string* out, IpKey a, IpKey b) {
    if (!out->empty()) *out += ", ";
    *out += RangeText(a, b);
  };
  for (const auto& [first, last] : ranges_) {
    if (first < kIpv4MappedBase) put(&v6, first, std::min(last, kIpv4MappedBase - 1));
    if (last >= kIpv4MappedBase && first <= kIpv4MappedLast) {
      put(&v4, std::max(first, kIpv4MappedBase), std::min(last, kIpv4MappedLast));
    }
    if (last > kIpv4MappedLast) put(&v6, std::max(first, kIpv4MappedLast + 1), last);
  }
  if (v4.empty()) return v6;
  return v6.empty() ? v4 : v4 + ", " + v6;
}

}  // namespace terway::policy
