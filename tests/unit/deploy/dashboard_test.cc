// deploy/grafana/terway-dashboard.json: valid JSON, the panels the operator
// needs, and every metric any panel or variable queries is one terwayd
// exports. "Exports" is read from the source: the names passed to
// Declare{Counter,Gauge,Histogram} in src/daemon (directly or through a
// named constant), plus _bucket/_sum/_count for histograms. A dashboard that
// queries a name nobody exports shows "No data" forever; this catches it.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace terway {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Metric names terwayd declares, with the suffixes a histogram renders.
std::set<std::string> ExportedMetricNames() {
  std::string sources;
  for (const auto& e : fs::directory_iterator(fs::path(testing::SourceDir()) / "src" / "daemon")) {
    auto ext = e.path().extension();
    if (ext == ".cc" || ext == ".h") sources += ReadAll(e.path()) + "\n";
  }
  std::map<std::string, std::string> constants;  // kName -> "value"
  std::regex constant(R"re(constexpr\s+const\s+char\s*\*\s*(k\w+)\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)")re");
  for (std::sregex_iterator it(sources.begin(), sources.end(), constant), end; it != end; ++it)
    constants[(*it)[1]] = (*it)[2];
  std::set<std::string> names;
  std::regex declare(R"re(Declare(Counter|Gauge|Histogram)\(\s*(?:"([a-zA-Z_:][a-zA-Z0-9_:]*)"|(k\w+)))re");
  for (std::sregex_iterator it(sources.begin(), sources.end(), declare), end; it != end; ++it) {
    std::string name = (*it)[2].matched ? std::string((*it)[2]) : constants[(*it)[3]];
    if (name.empty()) continue;
    names.insert(name);
    if ((*it)[1] == "Histogram")
      for (const char* s : {"_bucket", "_sum", "_count"}) names.insert(name + s);
  }
  return names;
}

// Metric names a PromQL expression selects: identifiers that are not
// functions, keywords, label names (inside {} or by/without/on/ignoring
// lists), durations, strings or Grafana variables.
std::set<std::string> MetricNamesIn(std::string expr) {
  expr = std::regex_replace(expr, std::regex(R"re("(\\.|[^"\\])*")re"), "\"\"");
  expr = std::regex_replace(expr, std::regex(R"re(\{[^}]*\})re"), " ");
  expr = std::regex_replace(expr, std::regex(R"re(\[[^\]]*\])re"), " ");
  expr = std::regex_replace(expr, std::regex(R"re(\$\{?\w+\}?)re"), " ");
  expr = std::regex_replace(
      expr, std::regex(R"re(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))re"), " ");
  static const std::set<std::string> kKeywords = {"and", "or", "unless", "bool", "offset", "by", "without",
                                                  "on", "ignoring", "group_left", "group_right", "inf", "nan"};
  std::set<std::string> out;
  std::regex ident(R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?)re");
  for (std::sregex_iterator it(expr.begin(), expr.end(), ident), end; it != end; ++it) {
    if ((*it)[2].matched) continue;  // a function call
    // A letter right after a digit is a number's exponent or a duration unit.
    auto pos = it->position(0);
    if (pos > 0 && (std::isdigit(static_cast<unsigned char>(expr[pos - 1])) || expr[pos - 1] == '.')) continue;
    std::string name = (*it)[1];
    if (!kKeywords.count(name)) out.insert(name);
  }
  return out;
}

// Every PromQL expression in the dashboard: panel targets and query variables.
std::vector<std::string> DashboardQueries(const nlohmann::json& dash) {
  std::vector<std::string> out;
  for (const auto& p : dash.at("panels"))
    for (const auto& t : p.value("targets", nlohmann::json::array()))
      if (t.contains("expr")) out.push_back(t.at("expr").get<std::string>());
  for (const auto& v : dash.at("templating").at("list")) {
    if (v.value("type", "") != "query") continue;
    std::string q = v.at("query").is_object() ? v.at("query").value("query", "") : v.at("query").get<std::string>();
    std::smatch m;  // label_values(metric, label)
    if (std::regex_search(q, m, std::regex(R"re(label_values\(\s*([^,]+),)re"))) out.push_back(m[1]);
  }
  return out;
}

nlohmann::json LoadDashboard() {
  auto path = fs::path(testing::SourceDir()) / "deploy" / "grafana" / "terway-dashboard.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);  // throws (fails the test) on invalid JSON
}

TEST(GrafanaDashboardTest, ParserFindsMetricNamesOnly) {
  EXPECT_EQ(MetricNamesIn("histogram_quantile(0.99, sum by (le, rpc_api) "
                          "(rate(terway_rpc_latency_bucket{instance=~\"$instance\"}[$__rate_interval])))"),
            (std::set<std::string>{"terway_rpc_latency_bucket"}));
  EXPECT_EQ(MetricNamesIn("a_total / on(instance) group_left b{x=\"y or z\"} offset 5m > 1e3"),
            (std::set<std::string>{"a_total", "b"}));
}

TEST(GrafanaDashboardTest, ExportedNamesIncludeUpstreamsAndOurs) {
  auto names = ExportedMetricNames();
  for (const char* n : {"terway_pool_ips", "terway_resource_pool_idle_count", "terway_rpc_latency_bucket",
                        "terway_rpc_connections", "terway_policy_fail_closed"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("terway_resource_pool_disposed_count"));  // upstream's, not exported by us
}

TEST(GrafanaDashboardTest, EveryQueriedMetricIsExported) {
  auto dash = LoadDashboard();
  auto exported = ExportedMetricNames();
  auto queries = DashboardQueries(dash);
  ASSERT_FALSE(queries.empty());
  std::set<std::string> queried;
  for (const auto& q : queries) {
    auto names = MetricNamesIn(q);
    EXPECT_FALSE(names.empty()) << "no metric in query: " << q;
    for (const auto& n : names) {
      queried.insert(n);
      EXPECT_TRUE(exported.count(n)) << "the dashboard queries " << n << " (in \"" << q
                                     << "\"), which terwayd does not export";
    }
  }
  // The panels the operator asked for, by what they read.
  for (const char* n : {"terway_resource_pool_total_count", "terway_resource_pool_idle_count", "terway_pool_ips",
                        "terway_rpc_latency_bucket", "terway_pool_enis", "terway_policy_fail_closed",
                        "terway_antispoof_dropped_packets_total"})
    EXPECT_TRUE(queried.count(n)) << "no panel reads " << n;
  std::set<std::string> titles;
  for (const auto& p : dash.at("panels")) {
    EXPECT_TRUE(p.contains("title") && p.contains("gridPos") && p.contains("type")) << p.dump();
    EXPECT_TRUE(titles.insert(p.value("title", "")).second) << "duplicate panel title " << p.value("title", "");
  }
}

TEST(GrafanaDashboardTest, AQueryOfAnUnexportedNameIsCaught) {
  auto exported = ExportedMetricNames();
  auto names = MetricNamesIn("rate(terway_resource_pool_disposed_count{instance=~\"$instance\"}[5m])");
  ASSERT_EQ(names, (std::set<std::string>{"terway_resource_pool_disposed_count"}));
  EXPECT_FALSE(exported.count(*names.begin()));
}

}  // namespace
}  // namespace terway
