// The network configuration a runtime sends on stdin, for type "terway".
//
// Parsing runs in stages so each failure gets the spec's code (see spec.h):
//   DecodeConfigJson   -> 6 (not JSON / not an object)
//   ConfigVersion      -> 1 (missing, unknown or unsupported cniVersion)
//   ParseNetConf       -> 7 (bad field), 2 for a value terway does not support
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cni/result.h"
#include "cni/spec.h"
#include "common/result.h"

namespace terway::cni {

// runtimeConfig.bandwidth as the CNI "bandwidth" capability defines it:
// rates in bits per second, bursts in bits. Zero means "no limit".
// The accepted range of a non-zero rate, bits/s. Below 1 kbit/s a pod
// cannot even complete a TCP handshake in reasonable time; above 100 Gbit/s
// no ENI delivers, so such a value is a unit mistake (bytes for bits, a
// stray exponent) and not a limit.
inline constexpr uint64_t kMinBandwidthBitsPerSec = 1'000;
inline constexpr uint64_t kMaxBandwidthBitsPerSec = 100'000'000'000;

// Rates in bits/s and bursts in bits, as runtimeConfig.bandwidth carries them;
// 0 = that direction is unlimited.
struct Bandwidth {
  uint64_t ingress_rate = 0;
  uint64_t ingress_burst = 0;
  uint64_t egress_rate = 0;
  uint64_t egress_burst = 0;
  bool operator==(const Bandwidth&) const = default;
};

// One {containerID, ifname} of GC's cni.dev/valid-attachments.
struct Attachment {
  std::string container_id;
  std::string ifname;
  bool operator==(const Attachment&) const = default;
};

struct NetConf {
  std::string cni_version;
  SpecVersion version = kLatestVersion;
  std::string name;
  std::string type;
  // Terway's fields.
  std::string eniip_virtual_type;  // "" (default veth) | "veth" | "ipvlan" | "datapathv2"
  int mtu = 0;                     // 0: the daemon picks (the ENI's MTU)
  std::string service_cidr;
  std::vector<std::string> host_stack_cidrs;
  // Ours: where terwayd listens (tests and non-default installs).
  std::string daemon_socket;
  // runtimeConfig.
  std::optional<Bandwidth> bandwidth;
  // Chaining: the previous plugin's result, parsed, and its raw JSON.
  std::optional<CniResult> prev_result;
  // GC (1.1.0): attachments the runtime still uses, from
  // cni.dev/valid-attachments (the spec's key) and cni.dev/attachments.
  std::vector<Attachment> valid_attachments;
  bool has_valid_attachments = false;
};

// Stage 1 -> code 6.
Result<nlohmann::json> DecodeConfigJson(std::string_view stdin_data);
// Stage 2 -> code 1. A missing cniVersion means 0.1.0 (libcni's rule), which we
// do not speak.
Result<SpecVersion> ConfigVersion(const nlohmann::json& conf);
// Stage 3 -> code 7 (or 2 when Error::code is kUnsupported).
Result<NetConf> ParseNetConf(const nlohmann::json& conf);

}  // namespace terway::cni
