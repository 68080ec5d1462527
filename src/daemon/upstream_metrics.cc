#include "daemon/upstream_metrics.h"

namespace terway::daemon {
namespace {
// Upstream labels every multi-IP pool series with the pool's type; ours is
// always the node-local ENI pool (upstream's "LocalIP").
const Labels kLocalIpv4 = {{"type", "LocalIP"}, {"ipStack", "ipv4"}};

// Upstream's bucket bounds (ms), so histogram_quantile over its series gives
// the same resolution an operator's alerts were tuned to.
std::vector<double> UpstreamRpcBucketsMs() {
  return {50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 26600, 27600, 29600, 33600, 41600,
          57600, 89600, 110000, 120000};
}
}  // namespace

void DeclarePoolMetrics(Metrics& m) {
  m.DeclareGauge("terway_pool_ips",
                 "Pod IPs of the node's ENIs by state (dual stack: a slot's IPv4; state unpaired = an IPv4 "
                 "still waiting for its IPv6, serving no pod)");
  m.DeclareGauge("terway_pool_spare_ipv6",
                 "Dual stack: IPv6s of the node's ENIs paired with no IPv4 (the next refill pairs them or "
                 "reclaim gives them back)");
  m.DeclareGauge("terway_pool_enis", "ENIs the pool manages");
  m.DeclareGauge("terway_pool_max_pods", "Pods this node can hold");
  m.DeclareGauge("terway_pool_waiting_requests", "Allocations waiting for the pool to grow");
  m.DeclareGauge(kUpstreamPoolTotal,
                 "Upstream Terway's name: pod IPs the node's ENIs hold (idle + in use + reserved + releasing)");
  m.DeclareGauge(kUpstreamPoolIdle, "Upstream Terway's name: idle pod IPs in the pool");
  m.DeclareCounter(kUpstreamPoolAllocated, "Upstream Terway's name: pod IP allocations served since start");
  m.DeclareGauge("terway_pool_leftover_ipv6",
                 "ip_stack ipv4 on a node that ran ip_stack dual: IPv6s its ENIs still hold, by state (held_by_pod: "
                 "a pod started under dual stack holds it, given back after its teardown; pending: no pod holds it, "
                 "its give-back failed and is retried at the next reconcile)");
  m.DeclareCounter("terway_pool_leftover_ipv6_returned_total",
                   "IPv6s given back to the cloud because ip_stack is ipv4 (left from ip_stack dual), by result "
                   "(ok; failed: UnassignIpv6Addresses refused, retried)");
}

void ExportPoolStats(Metrics& m, const ipam::PoolStats& s) {
  m.Set("terway_pool_ips", {{"state", "idle"}}, s.idle);
  m.Set("terway_pool_ips", {{"state", "in_use"}}, s.in_use);
  m.Set("terway_pool_ips", {{"state", "reserved"}}, s.reserved);
  m.Set("terway_pool_ips", {{"state", "releasing"}}, s.releasing);
  m.Set("terway_pool_ips", {{"state", "unpaired"}}, s.unpaired);
  m.Set("terway_pool_spare_ipv6", {}, s.spare_ipv6);
  m.Set("terway_pool_enis", {}, s.enis);
  m.Set("terway_pool_max_pods", {}, s.max_pods);
  m.Set("terway_pool_waiting_requests", {}, s.waiting);
  // An IP counts in upstream's total from assignment to the ENI until it is
  // unassigned; our releasing IPs are still assigned, so they count.
  m.Set(kUpstreamPoolTotal, kLocalIpv4, double(s.idle + s.in_use + s.reserved + s.releasing));
  m.Set(kUpstreamPoolIdle, kLocalIpv4, s.idle);
  // Monotonic in the pool; exported by value like the cloud call counters.
  m.Set(kUpstreamPoolAllocated, {{"type", "LocalIP"}}, double(s.allocations_total));
  m.Set("terway_pool_leftover_ipv6", {{"state", "held_by_pod"}}, s.leftover_ipv6.held);
  m.Set("terway_pool_leftover_ipv6", {{"state", "pending"}}, s.leftover_ipv6.pending);
  m.Set("terway_pool_leftover_ipv6_returned_total", {{"result", "ok"}}, double(s.leftover_ipv6.returned_total));
  m.Set("terway_pool_leftover_ipv6_returned_total", {{"result", "failed"}},
        double(s.leftover_ipv6.return_failures_total));
}

void DeclareUpstreamRpcLatency(Metrics& m) {
  m.DeclareHistogram(kUpstreamRpcLatency,
                     "Upstream Terway's name: CNI allocate/release latency in ms (terway_cni_request_duration_seconds "
                     "in ms)",
                     UpstreamRpcBucketsMs());
}

std::string_view UpstreamRpcApi(cni::protocol::Op op) {
  switch (op) {
    case cni::protocol::Op::kAllocate: return "AllocIP";
    case cni::protocol::Op::kRelease: return "ReleaseIP";
    default: return {};
  }
}

void ObserveUpstreamRpcLatency(Metrics& m, cni::protocol::Op op, bool failed, double seconds) {
  auto api = UpstreamRpcApi(op);
  if (api.empty()) return;
  m.Observe(kUpstreamRpcLatency, {{"rpc_api", std::string(api)}, {"error", failed ? "true" : "false"}},
            seconds * 1000);
}

}  // namespace terway::daemon
