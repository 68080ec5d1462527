#include "daemon/metrics.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

TEST(Metrics, CountersAndGaugesRender) {
  Metrics m;
  m.DeclareCounter("terway_cloud_api_calls_total", "OpenAPI calls by action and result");
  m.DeclareGauge("terway_pool_idle_ips", "Idle IPs in the pool");
  m.Inc("terway_cloud_api_calls_total", {{"action", "AssignPrivateIpAddresses"}, {"code", "ok"}});
  m.Inc("terway_cloud_api_calls_total", {{"action", "AssignPrivateIpAddresses"}, {"code", "ok"}}, 2);
  m.Set("terway_pool_idle_ips", {}, 7);
  EXPECT_EQ(m.Get("terway_cloud_api_calls_total",
                  {{"action", "AssignPrivateIpAddresses"}, {"code", "ok"}}), 3);
  std::string text = m.Render();
  EXPECT_NE(text.find("# TYPE terway_cloud_api_calls_total counter\n"), std::string::npos);
}

}  // namespace
}  // namespace terway::daemon

namespace terway::daemon {
namespace {

TEST(Metrics, RenderedLinesAreExact) {
  Metrics m;
  m.DeclareGauge("terway_pool_idle_ips", "Idle IPs in the pool");
  m.Set("terway_pool_idle_ips", {{"node", "a\"b"}}, 7);
  EXPECT_EQ(m.Render(),
            "# HELP terway_pool_idle_ips Idle IPs in the pool\n"
            "# TYPE terway_pool_idle_ips gauge\n"
            "terway_pool_idle_ips{node=\"a\\\"b\"} 7\n");
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Metrics m;
  m.DeclareHistogram("lat_seconds", "latency", {0.1, 1});
  m.Observe("lat_seconds", {{"op", "add"}}, 0.05);
  m.Observe("lat_seconds", {{"op", "add"}}, 0.5);
  m.Observe("lat_seconds", {{"op", "add"}}, 5);
  std::string t = m.Render();
  EXPECT_NE(t.find("lat_seconds_bucket{op=\"add\",le=\"0.1\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{op=\"add\",le=\"1\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_bucket{op=\"add\",le=\"+Inf\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_count{op=\"add\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("lat_seconds_sum{op=\"add\"} 5.55\n"), std::string::npos) << t;
  EXPECT_EQ(m.Get("lat_seconds", {{"op", "add"}}), 3);
}

}  // namespace
}  // namespace terway::daemon
