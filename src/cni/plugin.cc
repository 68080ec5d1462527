#include "cni/plugin.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "cni/config.h"
#include "cni/json_text.h"
#include "cni/result.h"

namespace terway::cni {

namespace {

using protocol::ErrorClass;
using protocol::Op;

// stderr only: stdout belongs to the result. Quiet by default because
// runtimes pass plugin stderr on to their own logs; TERWAY_CNI_LOG_LEVEL=debug
// shows the conversation with the daemon.
struct StderrLog {
  int level = 2;  // 0 debug, 1 info, 2 warn, 3 error
  void Write(int lvl, const std::string& msg) const {
    static const char* kNames[] = {"debug", "info", "warn", "error"};
    if (lvl >= level) std::fprintf(stderr, "terway %s: %s\n", kNames[lvl], msg.c_str());
  }
};

StderrLog MakeLog(const Invocation& inv) {
  StderrLog log;
  auto it = inv.env.find("TERWAY_CNI_LOG_LEVEL");
  if (it != inv.env.end()) {
    if (it->second == "debug") log.level = 0;
    else if (it->second == "info") log.level = 1;
    else if (it->second == "error") log.level = 3;
  }
  return log;
}

std::string EnvOr(const Invocation& inv, const char* key, const std::string& fallback) {
  auto it = inv.env.find(key);
  return it == inv.env.end() || it->second.empty() ? fallback : it->second;
}

// The version errors are reported in: the configuration's when it names one
// we speak, else our latest (the runtime could not parse anything else).
std::string ErrorVersion(const std::string& stdin_data) {
  auto j = DecodeConfigJson(stdin_data);
  if (j.ok()) {
    auto v = ConfigVersion(*j);
    if (v.ok()) return std::string(SpecVersionString(*v));
  }
  return std::string(SpecVersionString(kLatestVersion));
}

class Run {
 public:
  Run(const Invocation& inv, const DaemonClientFactory& factory)
      : inv_(inv), factory_(factory), log_(MakeLog(inv)) {}

  Outcome Execute() {
    error_version_ = ErrorVersion(inv_.stdin_data);
    command_name_ = EnvOr(inv_, "CNI_COMMAND", "(no CNI_COMMAND)");
    auto env = ParseEnvironment(inv_.env);
    if (!env.ok()) return Fail(kInvalidEnvironment, env.error().ToString());
    env_ = std::move(*env);
    if (env_.command == Command::kVersion) return Outcome{0, RenderVersionReply()};
    // The environment's socket override is checked with the environment (4);
    // the configuration's daemon_socket with the configuration (7). Both
    // before anything connects.
    socket_ = ChooseDaemonSocket(inv_, "");
    if (socket_.from_env) {
      if (auto st = protocol::CheckSocketPath(socket_.path); !st.ok())
        return Fail(kInvalidEnvironment, "TERWAY_DAEMON_SOCKET: " + st.error().ToString());
    }

    auto j = DecodeConfigJson(inv_.stdin_data);
    if (!j.ok()) return Fail(kDecodingFailure, j.error().ToString());
    auto version = ConfigVersion(*j);
    if (!version.ok()) return Fail(kIncompatibleVersion, "incompatible CNI version", version.error().ToString());
    auto conf = ParseNetConf(*j);
    if (!conf.ok()) {
      int code = conf.error().code == ErrorCode::kUnsupported ? kUnsupportedField : kInvalidNetworkConfig;
      return Fail(code, conf.error().ToString());
    }
    conf_ = std::move(*conf);

    switch (env_.command) {
      case Command::kCheck:
        if (!SupportsCheck(conf_.version))
          return Fail(kIncompatibleVersion, "config version does not allow CHECK",
                      "CHECK exists from CNI 0.4.0 on; the configuration says " + conf_.cni_version);
        break;
      case Command::kGc:
      case Command::kStatus:
        if (!SupportsGcAndStatus(conf_.version))
          return Fail(kIncompatibleVersion,
                      fmt::format("config version does not allow {}", CommandName(env_.command)),
                      "GC and STATUS exist from CNI 1.1.0 on; the configuration says " + conf_.cni_version);
        break;
      default:
        break;
    }
    if (env_.command == Command::kAdd || env_.command == Command::kCheck || env_.command == Command::kDel) {
      struct stat st;
      bool exists = !env_.netns.empty() && stat(env_.netns.c_str(), &st) == 0;
      // DEL tolerates a missing namespace (the runtime may have removed it
      // first); ADD and CHECK need it.
      if (!exists && env_.command != Command::kDel)
        return Fail(kInvalidEnvironment, fmt::format("CNI_NETNS {:?} does not exist", env_.netns),
                    "the runtime must create the network namespace before calling the plugin");
      // Wiring "the pod" in our own namespace would rewire the host (as libcni
      // refuses too); CNI_NETNS_OVERRIDE=1|true is libcni's escape hatch.
      std::string override_ns = EnvOr(inv_, "CNI_NETNS_OVERRIDE", "");
      struct stat self;
      if (exists && override_ns != "1" && override_ns != "true" && override_ns != "TRUE" &&
          stat("/proc/self/ns/net", &self) == 0 && self.st_dev == st.st_dev && self.st_ino == st.st_ino)
        return Fail(kInvalidNetns, "plugin's netns and netns from CNI_NETNS should not be the same",
                    fmt::format("CNI_NETNS {:?} is the host's network namespace", env_.netns));
    }

    socket_ = ChooseDaemonSocket(inv_, conf_.daemon_socket);
    switch (env_.command) {
      case Command::kAdd: return Add();
      case Command::kDel: return Del();
      case Command::kCheck: return Check();
      case Command::kGc: return Gc();
      case Command::kStatus: return StatusCmd();
      case Command::kVersion: break;
    }
    return Fail(kInvalidEnvironment, "unhandled command");
  }

 private:
  Outcome Fail(int code, std::string msg, std::string details = "") {
    log_.Write(3, fmt::format("{} failed (code {}): {}{}{}", command_name_, code, msg,
                              details.empty() ? "" : ": ", details));
    return Outcome{1, RenderError(MakeCniError(code, std::move(msg), std::move(details)), error_version_)};
  }

  protocol::Request BaseRequest(Op op) const {
    protocol::Request r;
    r.op = op;
    r.cni_version = conf_.cni_version;
    r.container_id = env_.container_id;
    r.netns = env_.netns;
    r.ifname = env_.ifname;
    r.pod = protocol::PodRef{env_.args.pod_namespace, env_.args.pod_name, env_.args.pod_uid,
                             env_.args.infra_container_id};
    r.cni_args = env_.args.all;
    r.bandwidth = conf_.bandwidth;
    r.network = protocol::NetworkOptions{conf_.name, conf_.eniip_virtual_type, conf_.mtu, conf_.service_cidr,
                                         conf_.host_stack_cidrs};
    r.prev_result = conf_.prev_result;
    return r;
  }

  // Sends the request; on failure fills *out with the CNI error to print.
  std::optional<protocol::Reply> Ask(const protocol::Request& req, Outcome* out) {
    auto timeout = CommandTimeout(inv_, env_.command);
    log_.Write(0, fmt::format("asking terwayd at {}: {}", socket_.path, protocol::EncodeRequest(req)));
    auto client = factory_(socket_.path, timeout);
    auto reply = client->Call(req);
    if (!reply.ok()) {
      const Error& e = reply.error();
      if (e.code == ErrorCode::kUnavailable) {
        *out = Fail(env_.command == Command::kStatus ? kPluginNotAvailable : kTryAgainLater,
                    fmt::format("terwayd is not reachable at {}", socket_.path),
                    e.ToString() + "; check that the terway daemon runs on this node");
      } else if (e.code == ErrorCode::kTimeout || e.code == ErrorCode::kConflict) {
        *out = Fail(env_.command == Command::kStatus ? kPluginNotAvailable : kTryAgainLater,
                    fmt::format("terwayd at {} did not answer {} within {} ms", socket_.path,
                                protocol::OpName(req.op), timeout.count()),
                    e.ToString());
      } else if (e.code == ErrorCode::kInvalidArgument) {
        *out = Fail(kIoFailure, "terwayd sent a reply terway cannot read", e.ToString());
      } else {
        *out = Fail(env_.command == Command::kStatus ? kPluginNotAvailable : kIoFailure,
                    fmt::format("talking to terwayd at {} failed", socket_.path), e.ToString());
      }
      return std::nullopt;
    }
    log_.Write(0, "terwayd answered: " + protocol::EncodeReply(*reply));
    return std::move(*reply);
  }

  Outcome FailFromDaemon(const protocol::ReplyError& e) {
    std::string msg = "terwayd: " + e.message;
    std::string details = fmt::format("error class {}", protocol::ErrorClassName(e.cls));
    switch (e.cls) {
      case ErrorClass::kExhausted:
        return Fail(kNoAddressAvailable, "no IP address available for the pod on this node: " + e.message,
                    details + "; free pods on this node or raise max_eni / use a vSwitch with free addresses");
      case ErrorClass::kInvalid: return Fail(kInvalidNetworkConfig, msg, details);
      case ErrorClass::kUnsupported: return Fail(kUnsupportedField, msg, details);
      case ErrorClass::kNotFound:
        if (env_.command == Command::kCheck) return Fail(kContainerUnknown, msg, details);
        return Fail(kTryAgainLater, msg, details);
      case ErrorClass::kRetryable:
      case ErrorClass::kUnavailable:
      case ErrorClass::kTimeout: return Fail(kTryAgainLater, msg, details);
      case ErrorClass::kInternal: break;
    }
    return Fail(kDaemonFailure, msg, details);
  }

  Outcome Add() {
    Outcome out;
    auto reply = Ask(BaseRequest(Op::kAllocate), &out);
    if (!reply) return out;
    if (!reply->ok()) return FailFromDaemon(*reply->error);
    if (!reply->result || reply->result->ips.empty())
      return Fail(kIoFailure, "terwayd answered allocate without an IP address",
                  "this is a daemon bug; the pod's IP (if any) is released on DEL");
    CniResult ours = *reply->result;
    // The runtime identifies the pod's interface by its sandbox; the daemon
    // may leave it to us since the netns path is ours to report.
    bool pod_if_has_mac = false;
    for (auto& i : ours.interfaces) {
      if (i.name != env_.ifname) continue;
      if (i.sandbox.empty()) i.sandbox = env_.netns;
      pod_if_has_mac = !i.mac.empty();
    }
    // Runtimes reject a sandbox interface without a MAC (podman: "invalid MAC
    // address") after the pod is wired; better to say whose bug it is.
    if (!pod_if_has_mac)
      return Fail(kIoFailure,
                  fmt::format("terwayd answered allocate without interface {} and its MAC", env_.ifname),
                  "this is a daemon bug; the pod's IP is released on DEL");
    CniResult final_result = conf_.prev_result ? MergeResults(*conf_.prev_result, ours) : ours;
    log_.Write(1, fmt::format("ADD {} {}/{}: {}", env_.container_id, env_.args.pod_namespace, env_.args.pod_name,
                              ours.ips.front().address));
    return Outcome{0, DumpJson(RenderResult(final_result, conf_.version))};
  }

  Outcome Del() {
    Outcome out;
    auto reply = Ask(BaseRequest(Op::kRelease), &out);
    if (!reply) return out;
    // Idempotent DEL: a runtime repeats DEL until it succeeds, also after the
    // pod's netns or our state is gone; "nothing held" is the goal reached.
    if (!reply->ok() && reply->error->cls != ErrorClass::kNotFound) return FailFromDaemon(*reply->error);
    return Outcome{0, ""};
  }

  Outcome Check() {
    Outcome out;
    auto reply = Ask(BaseRequest(Op::kGet), &out);
    if (!reply) return out;
    if (!reply->ok()) return FailFromDaemon(*reply->error);
    if (!reply->result) return Fail(kIoFailure, "terwayd answered get without the pod's network");
    // What the runtime believes (prevResult) must hold every address the
    // daemon gave this container; a mismatch means a stale or foreign result.
    if (conf_.prev_result) {
      for (const auto& ip : reply->result->ips) {
        bool found = false;
        for (const auto& p : conf_.prev_result->ips) found = found || p.address == ip.address;
        if (!found)
          return Fail(kDaemonFailure,
                      fmt::format("CHECK: address {} held by container {} is missing from prevResult", ip.address,
                                  env_.container_id));
      }
    }
    return Outcome{0, ""};
  }

  Outcome Gc() {
    Outcome out;
    protocol::Request req = BaseRequest(Op::kGc);
    req.valid_attachments = conf_.valid_attachments;
    // An absent list is not an empty list: an empty one says "free them all",
    // an absent one is a runtime bug, and guessing would cut every pod off.
    if (!conf_.has_valid_attachments)
      return Fail(kInvalidNetworkConfig, "GC needs cni.dev/valid-attachments",
                  "refusing to free every attachment of network " + conf_.name + " on a request without the list");
    auto reply = Ask(req, &out);
    if (!reply) return out;
    if (!reply->ok()) return FailFromDaemon(*reply->error);
    return Outcome{0, ""};
  }

  Outcome StatusCmd() {
    Outcome out;
    auto reply = Ask(BaseRequest(Op::kStatus), &out);
    if (!reply) return out;
    if (!reply->ok()) return Fail(kPluginNotAvailable, "terwayd: " + reply->error->message);
    if (!reply->status) return Fail(kIoFailure, "terwayd answered status without a status");
    if (!reply->status->ready)
      return Fail(reply->status->existing_ok ? kPluginNotAvailable : kLimitedConnectivity,
                  "terwayd cannot serve ADD: " + reply->status->message);
    return Outcome{0, ""};
  }

  const Invocation& inv_;
  const DaemonClientFactory& factory_;
  StderrLog log_;
  std::string error_version_;
  std::string command_name_;
  Environment env_;
  NetConf conf_;
  DaemonSocket socket_;
};

}  // namespace

DaemonSocket ChooseDaemonSocket(const Invocation& inv, const std::string& conf_socket) {
  std::string env = EnvOr(inv, "TERWAY_DAEMON_SOCKET", "");
  if (!env.empty()) return DaemonSocket{env, true};
  return DaemonSocket{conf_socket.empty() ? protocol::kDefaultSocketPath : conf_socket, false};
}

std::chrono::milliseconds CommandTimeout(const Invocation& inv, Command cmd) {
  std::string override_ms = EnvOr(inv, "TERWAY_CNI_TIMEOUT_MS", "");
  if (!override_ms.empty()) {
    char* end = nullptr;
    long v = std::strtol(override_ms.c_str(), &end, 10);
    if (end && *end == '\0' && v > 0) return std::chrono::milliseconds(v);
  }
  using namespace std::chrono_literals;
  switch (cmd) {
    case Command::kAdd: return 120s;  // a dry pool means CreateNetworkInterface + attach
    case Command::kDel: return 60s;
    case Command::kCheck: return 20s;
    case Command::kGc: return 60s;
    case Command::kStatus: return 5s;
    case Command::kVersion: return 1s;
  }
  return 60s;
}

Outcome RunPlugin(const Invocation& inv, const DaemonClientFactory& make_client) {
  return Run(inv, make_client).Execute();
}

}  // namespace terway::cni
