// The operator's views of terwayd, as terway-cli shows them (list, show,
// mapping, metadata, nodeconfig: the commands upstream Terway's terway-cli
// offers). Pure: each view is built from values the daemon copied out of its
// parts (the store, the pool, the parsed eni_conf, the metadata service), so
// the consistency checks and the redaction are tested without a daemon. The
// daemon answers `inspect` requests with these views as JSON (cli_requests.h);
// the CLI renders them.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "config/eni_config.h"
#include "ipam/pool.h"
#include "ipam/types.h"
#include "store/state_store.h"

namespace terway::daemon::cli_views {

using Json = nlohmann::json;

// ---- list / show -------------------------------------------------------
// Upstream's tracing registry has types (network_service, resource_pool,
// factory) and named objects with an ordered key/value "config" (static
// settings) and "trace" (live state). Ours: network_service/default (the
// CNI service and the node), resource_pool/<mode> (the shared-ENI IpPool or
// the exclusive-ENI allocator), eni/<id> and pod/<namespace>/<name>, from
// the store.
struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};
struct InspectObject {
  std::string type;
  std::string name;
  std::vector<KeyValue> config;
  std::vector<KeyValue> trace;
};

// What the daemon knows about itself, for network_service/default.
struct ServiceFacts {
  std::vector<KeyValue> config;  // mode, datapath, socket, state, config source, node identity
  std::vector<KeyValue> trace;   // ready, policy
};
struct PoolFacts {
  std::string name;                // "shared-eni-ip" or "exclusive-eni"
  std::vector<KeyValue> config;    // sizes and bounds
  ipam::PoolStats stats;
};
struct StoreFacts {
  std::vector<store::AllocationRecord> allocations;
  std::vector<store::EniRecord> enis;
  std::vector<store::IpRecord> ips;
  std::vector<store::ReservationRecord> reservations;
};

// Every object, types in the order above, names sorted within a type.
std::vector<InspectObject> BuildObjects(const ServiceFacts& service, const PoolFacts& pool, const StoreFacts& store);

// type empty: {"types": [...]}; else {"type": t, "names": [...]}. An unknown
// type is kNotFound naming the known ones.
Result<Json> ListView(const std::vector<InspectObject>& objects, const std::string& type);
// name empty: the type's first object, as upstream. Unknown type or name:
// kNotFound naming what exists.
Result<Json> ShowView(const std::vector<InspectObject>& objects, const std::string& type, const std::string& name);

// ---- mapping -----------------------------------------------------------
// One row per address any of the node's ledgers knows: the store's
// allocations (which pod holds it), the store's IP rows (in use or idle) and,
// in shared-ENI mode, the pool's memory (what it last agreed with the
// cloud). Status as upstream: Normal (a pod holds it, all agree), Idle (no
// pod, all agree), plus Reserved (kept for a sticky pod) and Releasing; ERROR
// when they disagree, with the disagreement in `problem`.
struct MappingRow {
  std::string status;
  std::string ip;
  std::string ipv6;          // dual stack: the IPv6 paired with ip (the holder's, else the store's, else the pool's)
  std::string eni_id;
  std::string pod;           // namespace/name; the reservation's pod for Reserved
  std::string container_id;
  std::string store_state;   // "in use", "idle", "absent"
  std::string pool_state;    // "in use", "idle", "reserved", "releasing", "absent", "-" (no pool)
  std::string problem;
  bool operator==(const MappingRow&) const = default;
};
inline constexpr const char* kMappingError = "ERROR";

// pool: nullopt in exclusive-ENI mode (the allocator keeps no address
// memory; the store is its ledger, and each pod's IP must be its ENI's
// primary IP). Rows sorted by ENI, then address.
std::vector<MappingRow> BuildMapping(const StoreFacts& store, const std::optional<ipam::PoolContents>& pool);
Json MappingView(const std::vector<MappingRow>& rows);

// ---- metadata ----------------------------------------------------------
// What the ECS metadata service says about the node's ENIs, beside the
// host's interface of each MAC and whether terwayd's store tracks the ENI.
struct MetadataEni {
  std::string mac;
  std::string eni_id;
  std::string primary_ip;
  std::vector<std::string> private_ips;  // as listed, primary included
  std::string gateway;
  std::string netmask;
  std::string vswitch_id;
  std::string vswitch_cidr;
  std::string error;  // a field the service did not answer
  std::vector<std::string> ipv6s = {};  // as listed (none outside an IPv6-enabled vSwitch)
};
struct MetadataFacts {
  std::string instance_id;
  std::string zone_id;
  std::string vswitch_id;  // the instance's
  std::string primary_mac;
  std::vector<MetadataEni> enis;
  std::map<std::string, std::string> ifname_by_mac;  // lower-case MAC -> host link
};
// Primary ENI first, then by MAC; secondary IPs sorted, primary left out.
// ENIs the store tracks but the service does not list are reported in
// "store_only" (a detached ENI terwayd still counts on).
Json MetadataView(const MetadataFacts& facts, const std::vector<store::EniRecord>& tracked);

// ---- nodeconfig --------------------------------------------------------
// Whether an eni_conf key carries a secret (AccessKeys, tokens, passwords).
bool IsSecretKey(std::string_view key);
// A copy with every secret value replaced by "<redacted>" (empty strings
// stay empty: "not set" is worth seeing), at any depth.
Json RedactSecrets(const Json& j);
inline constexpr const char* kRedacted = "<redacted>";
// The values terwayd acts on after parsing and defaults, in eni_conf's key
// names; credentials only as whether they are set. The socket and state
// paths are not here: flags may override eni_conf's (see the node section).
std::vector<KeyValue> EffectiveConfig(const config::EniConfig& c);
struct NodeConfigFacts {
  std::string source;         // "ConfigMap kube-system/eni-config + ..." or a file
  std::string eni_conf_text;  // merged eni_conf as terwayd parsed it
  std::vector<KeyValue> node; // the node's mode and its source, datapath, policy
  std::vector<KeyValue> effective;
};
// Error when eni_conf_text is not JSON (it was parsed at start, so: a bug).
Result<Json> NodeConfigView(const NodeConfigFacts& facts);

}  // namespace terway::daemon::cli_views
