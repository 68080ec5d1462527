// Prometheus metrics in the text exposition format (version 0.0.4).
//
// A small registry of counters, gauges and histograms keyed by name + label
// set. terwayd serves Render() on its metrics endpoint; benchmarks and tests
// read the same text. Thread safe; updates are a mutex and a map lookup, which
// is far below the cost of anything we measure (a cloud call, a netlink dump).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace terway::daemon {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a family (HELP/TYPE lines). Using an undeclared name also works;
  // it renders as "untyped".
  void DeclareCounter(const std::string& name, const std::string& help);
  void DeclareGauge(const std::string& name, const std::string& help);
  // Buckets are upper bounds in the metric's unit (seconds for latencies).
  void DeclareHistogram(const std::string& name, const std::string& help,
                        std::vector<double> buckets);

  void Inc(const std::string& name, const Labels& labels = {}, double by = 1);
  void Set(const std::string& name, const Labels& labels, double value);
  void Observe(const std::string& name, const Labels& labels, double value);

  double Get(const std::string& name, const Labels& labels = {}) const;
  std::string Render() const;

 private:
  struct Family {
    std::string help;
    std::string type = "untyped";
    std::vector<double> buckets;
  };
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  static std::string Key(const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
  std::map<std::string, std::map<std::string, double>> values_;         // name -> labels -> v
  std::map<std::string, std::map<std::string, Histogram>> histograms_;  // name -> labels -> h
};

// Default latency buckets (seconds), from 100 us to 30 s.
std::vector<double> LatencyBuckets();

}  // namespace terway::daemon
