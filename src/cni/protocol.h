// The CNI <-> terwayd protocol: messages and their codec. Both sides link
// this: the `terway` plugin encodes requests and decodes replies, terwayd
// decodes requests and encodes replies.
//
// Transport: a unix stream socket (default /var/run/eni/eni.socket, mode
// 0600). One request per connection: the plugin connects, writes one frame,
// reads one frame, closes. A plugin run is one exec, so connection reuse
// would buy nothing, and one-shot connections make a crashed plugin's
// request easy to spot (EOF) on the daemon side.
//
// Framing: one JSON object per line ("\n"-terminated), at most kMaxFrameBytes.
// Why lines and not a length prefix: a JSON serializer never emits a raw
// newline (it escapes "\n" inside strings), so the framing is unambiguous,
// and an operator can talk to the daemon by hand:
//   echo '{"v":1,"op":"status"}' | socat - UNIX-CONNECT:/var/run/eni/eni.socket
// The size cap keeps a bad peer from making either side buffer without bound.
//
// Versioning: every frame carries "v": kProtocolVersion. A receiver rejects a
// frame with a different version (class "invalid") rather than guess.
//
// Deadlines: the client has a timeout per operation and sends the time it is
// still willing to wait ("deadline_ms", relative, so clock differences or
// jumps do not matter). The server should stop working on a request (and
// roll back) once that budget is spent: nobody is waiting for the answer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cni/config.h"
#include "cni/result.h"
#include "common/result.h"

namespace terway::cni::protocol {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxFrameBytes = 1 << 20;
inline constexpr const char* kDefaultSocketPath = "/var/run/eni/eni.socket";
// The longest path a unix socket address holds: sockaddr_un's sun_path is
// 108 bytes on Linux, NUL included.
inline constexpr size_t kMaxSocketPathBytes = 107;

// Whether connect()/bind() can take `path` as it is: not empty, no NUL (a
// leading one would even name an abstract socket), at most
// kMaxSocketPathBytes. The error (kInvalidArgument) names the path and the
// limit; callers check before they connect, so a bad path is reported as the
// configuration mistake it is.
Status CheckSocketPath(std::string_view path);

enum class Op {
  kAllocate,  // ADD: ensure the pod has an IP and its datapath; idempotent per (pod, container id)
  kRelease,   // DEL: remove datapath and free the IP; not_found when nothing is held
  kGet,       // CHECK: verify and return what the pod holds
  kStatus,    // STATUS: can the daemon serve ADD now?
  kGc,        // GC: free everything not in valid_attachments
  // Operator requests (terway-cli), not CNI: network policy as enforced.
  kPolicyExplain,  // policy_query -> allowed + text
  kPolicyShow,     // -> text: each pod chain's rules with packet counters
  // Operator views (terway-cli list/show/mapping/metadata/nodeconfig):
  // inspect_query -> text, one JSON document (src/daemon/cli_views.h).
  kInspect,
};
std::string_view OpName(Op op);
std::optional<Op> ParseOp(std::string_view name);

// Why a request failed, in classes the plugin maps to CNI codes.
enum class ErrorClass {
  kRetryable,    // busy: a concurrent request for the same pod, a lock, throttling
  kNotFound,     // nothing known for this pod/container
  kInvalid,      // the request itself is wrong; retrying will not help
  kExhausted,    // no IP/ENI capacity left on this node (quota, vSwitch full)
  kUnavailable,  // daemon not ready yet (starting, cloud unreachable)
  kTimeout,      // the request's deadline passed before the work finished
  kUnsupported,  // a feature this node cannot provide (e.g. kernel lacks ipvlan)
  kInternal,     // a bug or an unexpected failure
};
std::string_view ErrorClassName(ErrorClass c);
std::optional<ErrorClass> ParseErrorClass(std::string_view name);

struct PodRef {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string infra_container_id;
  bool operator==(const PodRef&) const = default;
};

// The network configuration fields the daemon acts on.
struct NetworkOptions {
  std::string name;
  std::string eniip_virtual_type;
  int mtu = 0;
  std::string service_cidr;
  std::vector<std::string> host_stack_cidrs;
  bool operator==(const NetworkOptions&) const = default;
};

// "Would a connection from -> to on port/protocol be allowed?" from and to
// are "namespace/name" of a pod or an IPv4 address.
struct PolicyQuery {
  std::string from;
  std::string to;
  std::string protocol = "TCP";
  uint16_t port = 0;
  bool operator==(const PolicyQuery&) const = default;
};

// Which of terwayd's operator views to build: "list", "show", "mapping",
// "metadata" or "nodeconfig"; type and name select objects for list/show.
struct InspectQuery {
  std::string view;
  std::string type;
  std::string name;
  bool operator==(const InspectQuery&) const = default;
};

struct Request {
  Op op = Op::kStatus;
  uint32_t deadline_ms = 0;     // 0: no deadline given
  std::string cni_version;      // what the runtime speaks (for logs)
  std::string container_id;
  std::string netns;
  std::string ifname;
  PodRef pod;
  std::map<std::string, std::string> cni_args;
  std::optional<Bandwidth> bandwidth;
  NetworkOptions network;
  std::optional<CniResult> prev_result;
  std::vector<Attachment> valid_attachments;  // kGc
  std::optional<PolicyQuery> policy_query;    // kPolicyExplain
  std::optional<InspectQuery> inspect_query;  // kInspect
  bool operator==(const Request&) const = default;
};

// The ENI that carries the pod's traffic.
struct EniInfo {
  std::string id;
  std::string mac;
  std::string vswitch_id;
  std::string gateway;
  bool operator==(const EniInfo&) const = default;
};

struct DaemonStatus {
  bool ready = false;         // can serve ADD
  bool existing_ok = true;    // existing pods keep full connectivity
  std::string message;        // why not ready
  bool operator==(const DaemonStatus&) const = default;
};

struct ReplyError {
  ErrorClass cls = ErrorClass::kInternal;
  std::string message;  // names the object, the cause and what to do
  bool operator==(const ReplyError&) const = default;
};

struct Reply {
  std::optional<ReplyError> error;      // set: the request failed
  std::optional<CniResult> result;      // kAllocate, kGet
  std::optional<EniInfo> eni;           // kAllocate, kGet
  std::optional<DaemonStatus> status;   // kStatus
  std::optional<bool> allowed;          // kPolicyExplain
  std::optional<std::string> text;      // kPolicyExplain, kPolicyShow: for the operator; kInspect: JSON
  bool ok() const { return !error.has_value(); }
  bool operator==(const Reply&) const = default;

  static Reply Fail(ErrorClass cls, std::string message);
  // Server side: the class and message ReplyErrorFromError gives e.
  static Reply FromError(const Error& e);
};

// Each Encode returns one complete frame including the trailing '\n'.
std::string EncodeRequest(const Request& req);
std::string EncodeReply(const Reply& reply);
// Decode one frame (with or without its '\n'). Errors are kInvalidArgument
// naming the bad field; a server answers them with Reply::Fail(kInvalid, ...).
Result<Request> DecodeRequest(std::string_view frame);
Result<Reply> DecodeReply(std::string_view frame);

// Server convenience: the class and message for an Error from the daemon's
// internals (ErrorCode -> ErrorClass; retryable errors -> kRetryable).
ReplyError ReplyErrorFromError(const Error& e);

// Splits a byte stream into frames, for servers reading with their own loop.
class FrameReader {
 public:
  explicit FrameReader(size_t max_frame = kMaxFrameBytes) : max_(max_frame) {}
  // Appends bytes; fails (kInvalidArgument) once a frame exceeds the cap
  // without a newline: the connection should then be closed.
  Status Feed(std::string_view bytes);
  // The next complete frame without its '\n', if one is buffered.
  std::optional<std::string> Next();
  size_t buffered() const { return buf_.size(); }

 private:
  size_t max_;
  std::string buf_;
};

}  // namespace terway::cni::protocol
