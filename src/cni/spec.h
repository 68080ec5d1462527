// CNI spec vocabulary: versions, commands, error codes, the environment a
// runtime hands to a plugin, and the validation rules the spec (0.3.1 - 1.1.0)
// and libcni's conventions impose on it. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace terway::cni {

// The spec versions this plugin speaks. Results are rendered in the shape of
// the version the network configuration asks for.
enum class SpecVersion { k031, k040, k100, k110 };

const std::vector<std::string>& SupportedVersionStrings();
std::string_view SpecVersionString(SpecVersion v);
// nullopt for any version we do not speak (including 0.1.0/0.2.0/0.3.0).
std::optional<SpecVersion> ParseSpecVersion(std::string_view text);
inline constexpr SpecVersion kLatestVersion = SpecVersion::k110;

// Whether a command exists in a spec version: CHECK arrived in 0.4.0, GC and
// STATUS in 1.1.0.
bool SupportsCheck(SpecVersion v);
bool SupportsGcAndStatus(SpecVersion v);

// Error codes of the spec ("Error" section of SPEC.md). 1-99 are reserved to
// the spec; 100+ are ours.
enum ErrorCodeCni : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kContainerUnknown = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodingFailure = 6,
  kInvalidNetworkConfig = 7,
  kInvalidNetns = 8,  // libcni's ErrInvalidNetNS: CNI_NETNS is the plugin's own netns
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kLimitedConnectivity = 51,
  // Terway-specific:
  kNoAddressAvailable = 100,  // the node's ENI/IP capacity is used up
  kDaemonFailure = 101,       // terwayd failed for a reason that is not retryable
};

// What a plugin prints on stdout when it fails.
struct CniError {
  int code = kDaemonFailure;
  std::string msg;
  std::string details;
};
CniError MakeCniError(int code, std::string msg, std::string details = "");

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };
std::optional<Command> ParseCommand(std::string_view text);
std::string_view CommandName(Command c);

// CNI_ARGS: "K=V;K=V". IgnoreUnknown=1|true lets a plugin skip keys it does
// not know; Kubernetes runtimes always set it. Keys we understand are the
// K8S_* ones below.
struct CniArgs {
  std::map<std::string, std::string> all;  // every pair, verbatim
  bool ignore_unknown = false;
  std::string pod_namespace;          // K8S_POD_NAMESPACE
  std::string pod_name;               // K8S_POD_NAME
  std::string pod_uid;                // K8S_POD_UID
  std::string infra_container_id;     // K8S_POD_INFRA_CONTAINER_ID
};
// Errors (code 4) on a pair without '=', an empty key, or an unknown key
// while IgnoreUnknown is not set.
Result<CniArgs> ParseCniArgs(std::string_view text);

// The process environment as the runtime sets it.
struct Environment {
  Command command = Command::kVersion;
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string args_raw;
  CniArgs args;
  std::vector<std::string> path;  // CNI_PATH split on ':'
};

// Each parsing stage fails with exactly one CNI code (environment -> 4,
// JSON -> 6, version -> 1, config -> 7), so the caller assigns the code per
// stage and Error stays the project's one error type.
//
// Reads and validates the environment for the command in CNI_COMMAND:
// ADD/CHECK need CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH; DEL the
// same minus CNI_NETNS (the namespace may already be gone); VERSION, GC and
// STATUS only CNI_COMMAND. Missing/invalid values -> code 4, naming every
// missing variable at once so the operator fixes them in one go. Every CNI_*
// value must be UTF-8 without NUL bytes (CheckText): they are echoed in JSON.
Result<Environment> ParseEnvironment(const std::map<std::string, std::string>& env);

// libcni's rules: container ID is [a-zA-Z0-9][a-zA-Z0-9_.-]*; the interface
// name is 1-15 bytes (IFNAMSIZ-1), not "." or "..", no '/', ':' or
// whitespace; the network name follows the container-ID rule.
Status ValidateContainerId(std::string_view id);
Status ValidateInterfaceName(std::string_view name);
Status ValidateNetworkName(std::string_view name);

}  // namespace terway::cni
