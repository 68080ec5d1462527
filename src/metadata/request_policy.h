// What the metadata guard lets a pod ask the ECS metadata service: the pure
// decision, no I/O, so every encoding trick is a row in a unit test.
//
// The guard never forwards the pod's request line. It canonicalises the
// target, judges the canonical form, and forwards that canonical form (with
// a fixed set of headers) built by itself. So there is no second parser (the
// metadata service's) that could read a request differently from how it was
// judged: what was judged is byte for byte what the service receives.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace terway::metadata {

// A request target after canonicalisation: percent-decoded once, split on
// '/', empty and "." segments dropped, ".." applied.
struct CanonicalTarget {
  std::vector<std::string> segments;  // as sent (case kept), decoded
  bool trailing_slash = false;        // "/latest/meta-data/" lists a directory
  std::string query;                  // raw, validated; without the '?'

  // The path to forward: "/" + segments joined by '/', each segment
  // percent-encoded where it holds a byte outside the unreserved set.
  std::string Path() const;
  // Path() plus "?" + query when there is one.
  std::string Target() const;
};

// Canonicalises an origin-form request target ("/latest/meta-data/x?y").
// Refused (kInvalidArgument, message saying what and why), so that nothing
// ambiguous is ever judged:
// - anything but origin-form (absolute-form "http://host/..." and
//   authority-form: the guard is not a general proxy);
// - a bad or double percent-encoding (a '%' left after one decoding: a
//   server that decodes twice would see another path);
// - bytes that some servers treat as separators or strip: '\\', ';', NUL,
//   controls, spaces, '#', non-ASCII;
// - ".." above the root; a target over kMaxTargetLength.
inline constexpr size_t kMaxTargetLength = 2048;
Result<CanonicalTarget> CanonicalizeTarget(std::string_view raw);

// The node's RAM-role credentials: every "security-credentials" segment
// anywhere, and a "ram" segment right after "meta-data" under any version
// prefix ("latest", a dated version, or none): that covers the role listing
// (ram/security-credentials/ names the role) and each role's STS
// credentials. Compared case-insensitively, on the canonical form.
bool IsCredentialPath(const CanonicalTarget& t);

// The token endpoint of the ECS metadata service's hardened mode: PUT
// /<version>/api/token. The only PUT forwarded.
bool IsTokenPath(const CanonicalTarget& t);

// Headers a pod may send on to the service (the token flow), lower-case.
inline constexpr const char* kTokenHeader = "x-aliyun-ecs-metadata-token";
inline constexpr const char* kTokenTtlHeader = "x-aliyun-ecs-metadata-token-ttl-seconds";

// The request head as the pod sent it (see http_head.h).
struct PodRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
};

enum class Verdict {
  kForward,           // ask the metadata service, answer with what it said
  kRefuseCredentials, // 403: the node's RAM role (the reason for the guard)
  kRefuseMethod,      // 405: only GET, HEAD and PUT of the token
  kBadRequest,        // 400: ambiguous or malformed (see CanonicalizeTarget)
  kTooManyConnections,// 429: set by the proxy, before any request is read
};
// Label for metrics: forward, credentials, method, malformed, connections.
const char* VerdictName(Verdict v);

struct Decision {
  Verdict verdict = Verdict::kBadRequest;
  // For kForward: what to send to the metadata service. For
  // kRefuseCredentials, target is the canonical path that was refused.
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  // For refusals: why, in words for the pod's body and the log.
  std::string reason;
};

Decision DecidePodRequest(const PodRequest& r);

// The body of a 403 for a credential path: what was refused, why, and how a
// workload that needs the node's role gets an exemption.
std::string CredentialRefusalBody(std::string_view canonical_path);

// Annotation that exempts a pod from the guard (value "true").
inline constexpr const char* kAllowNodeRamRoleAnnotation = "k8s.aliyun.com/allow-node-ram-role";

}  // namespace terway::metadata
