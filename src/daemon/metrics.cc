#include "daemon/metrics.h"

#include <algorithm>

#include <fmt/format.h>

namespace terway::daemon {

namespace {
std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string FormatValue(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v))) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return fmt::format("{}", v);
}

// Adds one more label to an already-rendered "{a="b"}" key.
std::string WithLabel(const std::string& key, const std::string& name, const std::string& value) {
  std::string extra = fmt::format("{}=\"{}\"", name, value);
  if (key.empty()) return "{" + extra + "}";
  return key.substr(0, key.size() - 1) + "," + extra + "}";
}
}  // namespace

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
}

std::string Metrics::Key(const Labels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); i++) {
    if (i) out += ",";
    out += fmt::format("{}=\"{}\"", labels[i].first, EscapeLabelValue(labels[i].second));
  }
  return out + "}";
}

void Metrics::DeclareCounter(const std::string& name, const std::string& help) {
  std::lock_guard l(mu_);
  families_[name] = Family{help, "counter", {}};
}

void Metrics::DeclareGauge(const std::string& name, const std::string& help) {
  std::lock_guard l(mu_);
  families_[name] = Family{help, "gauge", {}};
}

void Metrics::DeclareHistogram(const std::string& name, const std::string& help,
                               std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  std::lock_guard l(mu_);
  families_[name] = Family{help, "histogram", std::move(buckets)};
}

void Metrics::Inc(const std::string& name, const Labels& labels, double by) {
  std::lock_guard l(mu_);
  values_[name][Key(labels)] += by;
}

void Metrics::Set(const std::string& name, const Labels& labels, double value) {
  std::lock_guard l(mu_);
  values_[name][Key(labels)] = value;
}

void Metrics::Observe(const std::string& name, const Labels& labels, double value) {
  std::lock_guard l(mu_);
  auto& fam = families_[name];
  if (fam.type != "histogram") {
    fam.type = "histogram";
    if (fam.buckets.empty()) fam.buckets = LatencyBuckets();
  }
  auto& h = histograms_[name][Key(labels)];
  if (h.counts.size() != fam.buckets.size()) h.counts.assign(fam.buckets.size(), 0);
  for (size_t i = 0; i < fam.buckets.size(); i++) {
    if (value <= fam.buckets[i]) {
      h.counts[i]++;
      break;
    }
  }
  h.count++;
  h.sum += value;
}

double Metrics::Get(const std::string& name, const Labels& labels) const {
  std::lock_guard l(mu_);
  auto it = values_.find(name);
  if (it != values_.end()) {
    auto v = it->second.find(Key(labels));
    if (v != it->second.end()) return v->second;
  }
  auto hit = histograms_.find(name);
  if (hit != histograms_.end()) {
    auto h = hit->second.find(Key(labels));
    if (h != hit->second.end()) return static_cast<double>(h->second.count);
  }
  return 0;
}

std::string Metrics::Render() const {
  std::lock_guard l(mu_);
  std::string out;
  std::map<std::string, bool> names;
  for (const auto& [n, _] : families_) names[n] = true;
  for (const auto& [n, _] : values_) names[n] = true;
  for (const auto& [n, _] : histograms_) names[n] = true;
  for (const auto& [name, _] : names) {
    auto fit = families_.find(name);
    if (fit != families_.end()) {
      if (!fit->second.help.empty()) out += fmt::format("# HELP {} {}\n", name, fit->second.help);
      out += fmt::format("# TYPE {} {}\n", name, fit->second.type);
    }
    if (auto vit = values_.find(name); vit != values_.end()) {
      for (const auto& [key, v] : vit->second) out += fmt::format("{}{} {}\n", name, key, FormatValue(v));
    }
    if (auto hit = histograms_.find(name); hit != histograms_.end()) {
      const auto& buckets = fit->second.buckets;
      for (const auto& [key, h] : hit->second) {
        uint64_t cum = 0;
        for (size_t i = 0; i < buckets.size(); i++) {
          cum += h.counts[i];
          out += fmt::format("{}_bucket{} {}\n", name, WithLabel(key, "le", FormatValue(buckets[i])), cum);
        }
        out += fmt::format("{}_bucket{} {}\n", name, WithLabel(key, "le", "+Inf"), h.count);
        out += fmt::format("{}_sum{} {}\n", name, key, FormatValue(h.sum));
        out += fmt::format("{}_count{} {}\n", name, key, h.count);
      }
    }
  }
  return out;
}

}  // namespace terway::daemon
