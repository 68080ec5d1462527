#include "qos/annotations.h"

#include <cctype>
#include <cstdint>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace terway::qos {
namespace {

// A decimal number "12", "1.5", ".5", "3." with an optional sign, kept
// exact: value = mantissa / 10^frac_digits. Floating point would turn "1G"
// into 999999999.99 and round it wrongly.
using u128 = unsigned __int128;
constexpr size_t kMaxDigits = 30;  // 10^30 < 2^100: exact in 128 bits

struct Number {
  u128 mantissa = 0;
  int frac_digits = 0;
  bool negative = false;
  bool too_long = false;
  size_t length = 0;  // characters consumed; 0: no number
};

Number ReadNumber(std::string_view s) {
  Number n;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    n.negative = s[i] == '-';
    ++i;
  }
  size_t digits = 0;
  bool in_fraction = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.' && !in_fraction) {
      in_fraction = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    if (++digits > kMaxDigits) n.too_long = true;
    if (!n.too_long) {
      n.mantissa = n.mantissa * 10 + static_cast<unsigned>(c - '0');
      if (in_fraction) ++n.frac_digits;
    }
  }
  n.length = digits ? i : 0;
  return n;
}

u128 Pow10(int e) {
  u128 r = 1;
  while (e-- > 0) r *= 10;
  return r;
}

constexpr u128 kSaturated = static_cast<u128>(UINT64_MAX);

uint64_t Saturate(u128 v) { return v > kSaturated ? UINT64_MAX : static_cast<uint64_t>(v); }

// ceil(mantissa * 10^exp10 * 2^exp2 / 10^frac_digits) as bits/s, rounding up
// like resource.Quantity.Value(); huge values saturate (the range check
// rejects them with the original text).
uint64_t Scale(const Number& n, int exp10, int exp2) {
  if (n.mantissa == 0) return 0;
  u128 v = n.mantissa;
  for (int i = 0; i < exp2; ++i) {
    if (v > kSaturated) return UINT64_MAX;
    v <<= 1;
  }
  int t = exp10 - n.frac_digits;
  if (t >= 0) {
    for (int i = 0; i < t; ++i) {
      if (v > kSaturated) return UINT64_MAX;
      v *= 10;
    }
    return Saturate(v);
  }
  if (-t > 38) return 1;  // a positive amount far below one bit
  u128 d = Pow10(-t);
  return Saturate(v / d + (v % d ? 1 : 0));
}

}  // namespace

Result<uint64_t> ParseKubernetesQuantity(std::string_view text) {
  if (text.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty quantity");
  Number n = ReadNumber(text);
  if (n.length == 0) return MakeError(ErrorCode::kInvalidArgument, "does not start with a number");
  if (n.too_long) return MakeError(ErrorCode::kInvalidArgument, "too many digits");
  if (n.negative && n.mantissa != 0) return MakeError(ErrorCode::kInvalidArgument, "negative");
  std::string_view suffix = text.substr(n.length);
  int exp10 = 0;
  int exp2 = 0;
  if (suffix.empty()) {
  } else if (suffix.size() == 2 && suffix[1] == 'i') {
    // Binary SI: Ki Mi Gi Ti Pi Ei (capital K only, as Kubernetes).
    static constexpr std::string_view kBinary = "KMGTPE";
    size_t pos = kBinary.find(suffix[0]);
    if (pos == std::string_view::npos)
      return Errorf(ErrorCode::kInvalidArgument, "unknown suffix \"{}\"", suffix);
    exp2 = 10 * static_cast<int>(pos + 1);
  } else if (suffix.size() == 1 && std::string_view("numkMGTPE").find(suffix[0]) != std::string_view::npos) {
    switch (suffix[0]) {
      case 'n': exp10 = -9; break;
      case 'u': exp10 = -6; break;
      case 'm': exp10 = -3; break;
      case 'k': exp10 = 3; break;
      case 'M': exp10 = 6; break;
      case 'G': exp10 = 9; break;
      case 'T': exp10 = 12; break;
      case 'P': exp10 = 15; break;
      case 'E': exp10 = 18; break;
    }
  } else if (suffix[0] == 'e' || suffix[0] == 'E') {
    // Decimal exponent: "1e6", "5E+3".
    std::string_view exp = suffix.substr(1);
    Number e = ReadNumber(exp);
    if (e.length == 0 || e.length != exp.size() || e.frac_digits != 0 || exp.find('.') != std::string_view::npos)
      return Errorf(ErrorCode::kInvalidArgument, "bad exponent \"{}\"", suffix);
    if (e.mantissa > 30) return MakeError(ErrorCode::kInvalidArgument, "exponent too large");
    exp10 = static_cast<int>(e.mantissa) * (e.negative ? -1 : 1);
  } else {
    return Errorf(ErrorCode::kInvalidArgument, "unknown suffix \"{}\"", suffix);
  }
  return Scale(n, exp10, exp2);
}

Result<uint64_t> ParseLegacyTerwayBandwidth(std::string_view text) {
  // Terway trims spaces and upper-cases before parsing.
  size_t b = text.find_first_not_of(" \t");
  size_t e = text.find_last_not_of(" \t");
  if (b == std::string_view::npos) return MakeError(ErrorCode::kInvalidArgument, "empty value");
  std::string s(text.substr(b, e - b + 1));
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Number n = ReadNumber(s);
  if (n.length == 0) return MakeError(ErrorCode::kInvalidArgument, "does not start with a number");
  if (n.too_long) return MakeError(ErrorCode::kInvalidArgument, "too many digits");
  if (n.negative) return MakeError(ErrorCode::kInvalidArgument, "negative");
  std::string_view unit = std::string_view(s).substr(n.length);
  // Terway requires a unit (a bare number is an error there too).
  if (unit.empty())
    return MakeError(ErrorCode::kInvalidArgument, "needs a unit (B, K, M, G or T: bytes per second)");
  static constexpr std::string_view kUnits = "BKMGT";
  size_t pos = kUnits.find(unit[0]);
  std::string_view rest = unit.substr(1);
  bool ok = pos != std::string_view::npos &&
            (rest.empty() || (pos > 0 && (rest == "B" || rest == "IB")));
  if (!ok) return Errorf(ErrorCode::kInvalidArgument, "unknown unit \"{}\" (B, K, M, G or T: bytes per second)", unit);
  // bytes/s * 2^(10*pos) * 8 bits
  return Scale(n, 0, 10 * static_cast<int>(pos) + 3);
}

uint64_t DefaultBurstBits(uint64_t rate_bits_per_sec) {
  constexpr uint64_t kMinBurstBits = 64 * 1024 * 8;
  uint64_t ten_ms = rate_bits_per_sec / 100;
  return ten_ms > kMinBurstBits ? ten_ms : kMinBurstBits;
}

namespace {

enum class Family { kKubernetes, kLegacy };

// One direction: the rate from whichever annotation applies, 0 if none.
Result<uint64_t> DirectionRate(const std::map<std::string, std::string>& annotations, std::string_view standard,
                               std::string_view legacy) {
  std::optional<uint64_t> chosen;
  for (auto [key, family] : {std::pair{standard, Family::kKubernetes}, std::pair{legacy, Family::kLegacy}}) {
    auto it = annotations.find(std::string(key));
    if (it == annotations.end()) continue;
    const std::string& value = it->second;
    auto rate = family == Family::kKubernetes ? ParseKubernetesQuantity(value) : ParseLegacyTerwayBandwidth(value);
    const char* want = family == Family::kKubernetes
                           ? "a Kubernetes quantity in bits per second such as 10M, 1G, 500k or 1Mi"
                           : "bytes per second with a unit such as 1M, 512K or 1G (multiples of 1024)";
    if (!rate.ok()) {
      return Errorf(ErrorCode::kInvalidArgument, "annotation {}=\"{}\": {}; want {}", key, value,
                    rate.error().message, want);
    }
    if (*rate < kMinRateBitsPerSec || *rate > kMaxRateBitsPerSec) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "annotation {}=\"{}\": {} bit/s is outside the accepted range 1 kbit/s .. 100 Gbit/s", key,
                    value, *rate);
    }
    if (!chosen) chosen = *rate;  // the standard annotation comes first and wins
  }
  return chosen.value_or(0);
}

}  // namespace

bool BandwidthAnnotationsDiffer(const std::map<std::string, std::string>& a,
                                const std::map<std::string, std::string>& b) {
  for (std::string_view key : {kIngressAnnotation, kEgressAnnotation, kLegacyIngressAnnotation,
                               kLegacyEgressAnnotation}) {
    auto x = a.find(std::string(key));
    auto y = b.find(std::string(key));
    const bool hx = x != a.end(), hy = y != b.end();
    if (hx != hy || (hx && x->second != y->second)) return true;
  }
  return false;
}

Result<std::optional<cni::Bandwidth>> ParseBandwidthAnnotations(
    const std::map<std::string, std::string>& annotations) {
  bool any = false;
  for (auto key : {kIngressAnnotation, kEgressAnnotation, kLegacyIngressAnnotation, kLegacyEgressAnnotation}) {
    if (annotations.count(std::string(key))) any = true;
  }
  if (!any) return std::optional<cni::Bandwidth>();
  cni::Bandwidth bw;
  TERWAY_ASSIGN_OR_RETURN(bw.ingress_rate, DirectionRate(annotations, kIngressAnnotation, kLegacyIngressAnnotation));
  TERWAY_ASSIGN_OR_RETURN(bw.egress_rate, DirectionRate(annotations, kEgressAnnotation, kLegacyEgressAnnotation));
  if (bw.ingress_rate) bw.ingress_burst = DefaultBurstBits(bw.ingress_rate);
  if (bw.egress_rate) bw.egress_burst = DefaultBurstBits(bw.egress_rate);
  return std::optional<cni::Bandwidth>(bw);
}

cni::Bandwidth NormalizeRuntimeBandwidth(cni::Bandwidth b) {
  for (auto [rate, burst] : {std::pair{&b.ingress_rate, &b.ingress_burst}, {&b.egress_rate, &b.egress_burst}}) {
    if (*rate != 0 && (*burst == 0 || *burst >= kRuntimeUnlimitedBurst)) *burst = DefaultBurstBits(*rate);
  }
  return b;
}

std::string EncodeBandwidth(const std::optional<cni::Bandwidth>& bw) {
  if (!bw) return "";
  nlohmann::json j = {{"ingress_rate", bw->ingress_rate}, {"ingress_burst", bw->ingress_burst},
                      {"egress_rate", bw->egress_rate}, {"egress_burst", bw->egress_burst}};
  return j.dump();
}

Result<std::optional<cni::Bandwidth>> DecodeBandwidth(const std::string& text) {
  if (text.empty()) return std::optional<cni::Bandwidth>();
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Errorf(ErrorCode::kInvalidArgument, "stored bandwidth {:?} is not a JSON object", text);
  }
  cni::Bandwidth b;
  for (auto [key, field] : {std::pair{"ingress_rate", &b.ingress_rate}, {"ingress_burst", &b.ingress_burst},
                            {"egress_rate", &b.egress_rate}, {"egress_burst", &b.egress_burst}}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_number_unsigned()) {
      return Errorf(ErrorCode::kInvalidArgument, "stored bandwidth {:?}: {} is not a non-negative integer", text, key);
    }
    *field = it->get<uint64_t>();
  }
  return std::optional<cni::Bandwidth>(b);
}

}  // namespace terway::qos
