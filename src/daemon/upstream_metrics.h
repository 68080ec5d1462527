// Upstream Terway's metric names and labels, exported beside ours where the
// meaning is the same, so an operator's dashboards and alerts keep working
// after the image is swapped (issue 16).
//
// Each upstream series is set from the very value that sets ours (one
// PoolStats snapshot, one measured duration): the two names can never
// disagree, and nothing is counted twice. Facts about upstream (from its
// pkg/metric): pool gauges are labelled type (LocalIP for ENI multi-IP) and
// ipStack (ipv4/ipv6); terway_rpc_latency is a histogram in milliseconds
// labelled rpc_api (AllocIP, ReleaseIP) and error ("true"/"false").
#pragma once

#include <string_view>

#include "cni/protocol.h"
#include "daemon/metrics.h"
#include "ipam/types.h"

namespace terway::daemon {

inline constexpr const char* kUpstreamPoolTotal = "terway_resource_pool_total_count";
inline constexpr const char* kUpstreamPoolIdle = "terway_resource_pool_idle_count";
inline constexpr const char* kUpstreamPoolAllocated = "terway_resource_pool_allocated_count";
inline constexpr const char* kUpstreamRpcLatency = "terway_rpc_latency";

// Our pool families and upstream's.
void DeclarePoolMetrics(Metrics& m);
// Sets our terway_pool_* gauges and upstream's terway_resource_pool_* from
// the same snapshot.
void ExportPoolStats(Metrics& m, const ipam::PoolStats& s);

void DeclareUpstreamRpcLatency(Metrics& m);
// Upstream's rpc_api name for the CNI operations it times; empty for the
// others (upstream has no series for them, so neither do we under its name).
std::string_view UpstreamRpcApi(cni::protocol::Op op);
void ObserveUpstreamRpcLatency(Metrics& m, cni::protocol::Op op, bool failed, double seconds);

}  // namespace terway::daemon
