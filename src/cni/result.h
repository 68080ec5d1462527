// The CNI result, version-neutral, and its rendering in each spec version's
// shape:
//   0.3.1 / 0.4.0: ips[] carry "version": "4"|"6"; interface is an index.
//   1.0.0 / 1.1.0: no "version" in ips; 1.1.0 adds route mtu/advmss/priority/
//                  table/scope and interface mtu/socketPath/pciID (we emit
//                  them only when set, and only for 1.1.0).
// The spec types the numbers as uint; the kernel takes each as a u32 (route
// scope: one byte). A value outside that range is refused when parsed, never
// truncated: a route table 4294967297 must not quietly become table 1.
// Also renders the error object and the VERSION reply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "cni/spec.h"
#include "common/result.h"

namespace terway::cni {

struct Interface {
  std::string name;
  std::string mac;      // podman refuses a sandbox interface without one
  std::string sandbox;  // netns path; empty for host-side interfaces
  std::optional<uint32_t> mtu;
  bool operator==(const Interface&) const = default;
};

struct IpConfig {
  std::string address;  // CIDR form: "198.18.0.10/32"
  std::string gateway;  // may be empty
  std::optional<int> interface;  // index into interfaces (checked against their count)
  bool operator==(const IpConfig&) const = default;
  bool IsV6() const { return address.find(':') != std::string::npos; }
};

struct Route {
  std::string dst;  // CIDR
  std::string gw;   // may be empty
  std::optional<uint32_t> mtu, advmss, priority, table;  // 1.1.0 only
  std::optional<uint32_t> scope;                          // 1.1.0 only; 0..255 (RT_SCOPE_*)
  bool operator==(const Route&) const = default;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const { return nameservers.empty() && domain.empty() && search.empty() && options.empty(); }
  bool operator==(const Dns&) const = default;
};

struct CniResult {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
  bool operator==(const CniResult&) const = default;
};

// Renders `r` (including "cniVersion") in the shape of version v.
nlohmann::json RenderResult(const CniResult& r, SpecVersion v);
// Parses a result in any supported version's shape (a prevResult). Errors
// name the bad field.
Result<CniResult> ParseResult(const nlohmann::json& j);

// Appends `ours` to `prev` (chaining): our interface indexes are shifted past
// prev's interfaces so they keep pointing at our interfaces.
CniResult MergeResults(const CniResult& prev, const CniResult& ours);

// {"cniVersion", "code", "msg", "details"}; details omitted when empty.
std::string RenderError(const CniError& e, std::string_view cni_version);
// {"cniVersion": "1.1.0", "supportedVersions": [...]}
std::string RenderVersionReply();

// JSON (de)serialisation shared with the daemon protocol: the same
// version-neutral model, in the 1.1.0 field names.
void ResultToJson(const CniResult& r, nlohmann::json& j);

}  // namespace terway::cni
