// The `terway` plugin's logic, independent of the process: environment and
// stdin in, stdout text and exit code out. cmd/terway/main.cc only gathers
// the process state and prints. Unit tests drive this with a fake
// DaemonClient; e2e tests drive the real binary.
//
// Order of work, so that a bad invocation changes nothing on the host:
//   environment incl. $TERWAY_DAEMON_SOCKET (4) -> JSON (6) -> cniVersion (1)
//   -> config incl. daemon_socket (7/2) ->
//   command allowed in this version (1) -> netns exists for ADD/CHECK (4) and
//   is not the plugin's own netns (8, libcni's ErrInvalidNetNS) -> GC carries
//   cni.dev/valid-attachments (7 if absent) -> only then the daemon.
//
// Daemon outcome -> CNI code:
//   daemon not listening            ADD/DEL/CHECK/GC: 11 (kubelet retries);
//                                   STATUS: 50
//   timeout, busy, unavailable      11
//   exhausted                       100 "no IP address available ..." (ours)
//   not_found                       DEL: success (idempotent); CHECK: 3;
//                                   ADD/GC: 11 (the daemon's pod cache may lag)
//   invalid                         7;   unsupported 2;   internal 101
//   malformed reply                 5 (I/O failure)
//   STATUS reply not ready          50, or 51 when existing pods are affected
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cni/daemon_client.h"

namespace terway::cni {

struct Invocation {
  std::map<std::string, std::string> env;
  std::string stdin_data;
};

struct Outcome {
  int exit_code = 0;
  std::string stdout_text;  // a result, VERSION reply, or error JSON; may be empty
};

// Makes a client for the chosen socket and timeout.
using DaemonClientFactory =
    std::function<std::unique_ptr<DaemonClient>(const std::string& socket_path, std::chrono::milliseconds timeout)>;

// Where the plugin looks for terwayd: $TERWAY_DAEMON_SOCKET, else the conf's
// "daemon_socket", else protocol::kDefaultSocketPath. from_env says whether
// the environment chose it: an unusable path is then an environment error
// (4), else a configuration error (7).
struct DaemonSocket {
  std::string path;
  bool from_env = false;
};
DaemonSocket ChooseDaemonSocket(const Invocation& inv, const std::string& conf_socket);

// How long each command waits for the daemon. ADD may need a cloud call to
// create and attach an ENI (tens of seconds on a dry pool); STATUS must be
// quick. $TERWAY_CNI_TIMEOUT_MS overrides all of them (tests).
std::chrono::milliseconds CommandTimeout(const Invocation& inv, Command cmd);

Outcome RunPlugin(const Invocation& inv, const DaemonClientFactory& make_client);

}  // namespace terway::cni
