#include "daemon/upstream_metrics.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

bool Has(const std::string& text, const std::string& line) { return text.find(line + "\n") != std::string::npos; }

// One pool snapshot sets our gauges and upstream's terway_resource_pool_*
// (type/ipStack labels as upstream's pkg/metric declares them).
TEST(UpstreamMetrics, PoolSnapshotRendersUnderBothNames) {
  Metrics m;
  DeclarePoolMetrics(m);
  ipam::PoolStats s;
  s.idle = 3;
  s.in_use = 5;
  s.reserved = 1;
  s.releasing = 2;
  s.enis = 2;
  s.unpaired = 4;
  s.spare_ipv6 = 6;
  s.allocations_total = 17;
  ExportPoolStats(m, s);
  std::string text = m.Render();
  EXPECT_TRUE(Has(text, "terway_pool_ips{state=\"unpaired\"} 4")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_spare_ipv6 6")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_ips{state=\"idle\"} 3")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_ips{state=\"in_use\"} 5")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_enis 2")) << text;
  EXPECT_TRUE(Has(text, "# TYPE terway_resource_pool_idle_count gauge")) << text;
  EXPECT_TRUE(Has(text, "terway_resource_pool_idle_count{type=\"LocalIP\",ipStack=\"ipv4\"} 3")) << text;
  EXPECT_TRUE(Has(text, "terway_resource_pool_total_count{type=\"LocalIP\",ipStack=\"ipv4\"} 11")) << text;
  EXPECT_TRUE(Has(text, "# TYPE terway_resource_pool_allocated_count counter")) << text;
  EXPECT_TRUE(Has(text, "terway_resource_pool_allocated_count{type=\"LocalIP\"} 17")) << text;

  // A later snapshot replaces, never adds: the same value, not a second count.
  s.idle = 4;
  s.allocations_total = 18;
  ExportPoolStats(m, s);
  EXPECT_EQ(m.Get(kUpstreamPoolIdle, {{"type", "LocalIP"}, {"ipStack", "ipv4"}}), 4);
  EXPECT_EQ(m.Get("terway_pool_ips", {{"state", "idle"}}), 4);
  EXPECT_EQ(m.Get(kUpstreamPoolAllocated, {{"type", "LocalIP"}}), 18);
}

// ip_stack ipv4 after dual: what the node still holds and what it gave back.
TEST(UpstreamMetrics, LeftoverIpv6sOfAnEarlierDualStackAreReported) {
  Metrics m;
  DeclarePoolMetrics(m);
  ipam::PoolStats s;
  s.leftover_ipv6 = {2, 1, 7, 3};
  ExportPoolStats(m, s);
  std::string text = m.Render();
  EXPECT_TRUE(Has(text, "# TYPE terway_pool_leftover_ipv6 gauge")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_leftover_ipv6{state=\"held_by_pod\"} 2")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_leftover_ipv6{state=\"pending\"} 1")) << text;
  EXPECT_TRUE(Has(text, "# TYPE terway_pool_leftover_ipv6_returned_total counter")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_leftover_ipv6_returned_total{result=\"ok\"} 7")) << text;
  EXPECT_TRUE(Has(text, "terway_pool_leftover_ipv6_returned_total{result=\"failed\"} 3")) << text;
}

TEST(UpstreamMetrics, RpcApiNamesAreUpstreamsForAllocateAndReleaseOnly) {
  EXPECT_EQ(UpstreamRpcApi(cni::protocol::Op::kAllocate), "AllocIP");
  EXPECT_EQ(UpstreamRpcApi(cni::protocol::Op::kRelease), "ReleaseIP");
  EXPECT_EQ(UpstreamRpcApi(cni::protocol::Op::kStatus), "");
  EXPECT_EQ(UpstreamRpcApi(cni::protocol::Op::kGc), "");
  Metrics m;
  DeclareUpstreamRpcLatency(m);
  ObserveUpstreamRpcLatency(m, cni::protocol::Op::kAllocate, false, 0.120);  // 120 ms
  ObserveUpstreamRpcLatency(m, cni::protocol::Op::kGet, false, 0.1);
  std::string text = m.Render();
  EXPECT_TRUE(Has(text, "terway_rpc_latency_bucket{rpc_api=\"AllocIP\",error=\"false\",le=\"100\"} 0")) << text;
  EXPECT_TRUE(Has(text, "terway_rpc_latency_bucket{rpc_api=\"AllocIP\",error=\"false\",le=\"200\"} 1")) << text;
  EXPECT_TRUE(Has(text, "terway_rpc_latency_sum{rpc_api=\"AllocIP\",error=\"false\"} 120")) << text;
  EXPECT_EQ(text.find("rpc_api=\"\""), std::string::npos) << text;
}

}  // namespace
}  // namespace terway::daemon
