// Pod bandwidth from a pod's annotations.
//
// Two families of annotations ask for a per-pod limit:
//   kubernetes.io/ingress-bandwidth, kubernetes.io/egress-bandwidth
//       Kubernetes quantities in bits per second ("10M", "1G", "500k", "1Mi",
//       "2.5M", "1e6"), as the kubelet and the CNI bandwidth plugin read them.
//   k8s.aliyun.com/ingress-bandwidth, k8s.aliyun.com/egress-bandwidth
//       Terway's legacy (deprecated upstream) form: BYTES per second with
//       binary multipliers ("1m" = 1 MiB/s = 8388608 bit/s). See README.md.
//
// "Ingress" is traffic into the pod, "egress" traffic out of it, in both.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cni/config.h"
#include "common/result.h"

namespace terway::qos {

inline constexpr std::string_view kIngressAnnotation = "kubernetes.io/ingress-bandwidth";
inline constexpr std::string_view kEgressAnnotation = "kubernetes.io/egress-bandwidth";
inline constexpr std::string_view kLegacyIngressAnnotation = "k8s.aliyun.com/ingress-bandwidth";
inline constexpr std::string_view kLegacyEgressAnnotation = "k8s.aliyun.com/egress-bandwidth";

// The accepted range of a limit, the same as for runtimeConfig.bandwidth
// (see cni/config.h for why).
inline constexpr uint64_t kMinRateBitsPerSec = cni::kMinBandwidthBitsPerSec;
inline constexpr uint64_t kMaxRateBitsPerSec = cni::kMaxBandwidthBitsPerSec;

// A Kubernetes quantity ("10M", "1Gi", "1.5k", "1e6") as bits per second,
// rounded up to a whole bit as resource.Quantity.Value() does. Errors say
// what is wrong with the text; range checks are the caller's.
Result<uint64_t> ParseKubernetesQuantity(std::string_view text);

// A legacy k8s.aliyun.com value ("1m", "10M", "512K", "1G", "100KB", "2MiB";
// case-insensitive; B/K/M/G/T with an optional B or IB; multipliers of 1024)
// as bits per second (the value is bytes per second, as Terway applied it).
Result<uint64_t> ParseLegacyTerwayBandwidth(std::string_view text);

// The limit a pod's annotations ask for:
//  - nullopt when no bandwidth annotation is present;
//  - per direction, kubernetes.io wins over k8s.aliyun.com when both are set
//    (the standard annotation is what current tooling writes; the legacy one
//    is kept for pods written for Terway before it followed Kubernetes);
//  - every bandwidth annotation present must be valid, shadowed or not: a
//    typo is reported instead of silently leaving the pod unlimited. The
//    error (kInvalidArgument) names the annotation and its value.
// Rates are bits/s, bursts bits (cni::Bandwidth, as runtimeConfig.bandwidth);
// bursts are DefaultBurstBits(rate). A direction without annotation has
// rate 0 = unlimited.
Result<std::optional<cni::Bandwidth>> ParseBandwidthAnnotations(
    const std::map<std::string, std::string>& annotations);

// True when the two annotation sets differ in any bandwidth annotation
// (added, removed or changed value); other annotations are not compared.
bool BandwidthAnnotationsDiffer(const std::map<std::string, std::string>& a,
                                const std::map<std::string, std::string>& b);

// runtimeConfig.bandwidth as runtimes send it: containerd and the kubelet
// have no burst to give and send math.MaxInt32 bits ("unlimited"); a bucket
// that deep lets 256 MiB through at line rate before any limit applies. A
// burst of at least that (or none with a rate) becomes DefaultBurstBits.
inline constexpr uint64_t kRuntimeUnlimitedBurst = 2147483647;
cni::Bandwidth NormalizeRuntimeBandwidth(cni::Bandwidth b);

// The limit as terwayd stores it with the pod's allocation (JSON; "" for
// no limit) and reads it back; a stored text that does not parse is an
// error naming it.
std::string EncodeBandwidth(const std::optional<cni::Bandwidth>& bw);
Result<std::optional<cni::Bandwidth>> DecodeBandwidth(const std::string& text);

// The token bucket's depth when only a rate is known: 10 ms worth of the
// rate, and never less than 64 KiB. Why: a bucket must hold at least one
// GSO/TSO super-packet (up to 64 KiB), or TBF must split each one in software
// and the shaper costs CPU; and 10 ms of rate covers the timer slack of a busy
// host at high rates (a 1 Gbit/s bucket of 64 KiB empties in 0.5 ms, faster
// than a loaded 2-core machine can reliably refill it). What a full bucket
// lets through above the rate is one burst once, negligible over seconds.
uint64_t DefaultBurstBits(uint64_t rate_bits_per_sec);

}  // namespace terway::qos
