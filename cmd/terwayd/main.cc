// terwayd: the node daemon. Owns the node's ENIs and pod IPs, serves the
// `terway` CNI plugin on a unix socket, exports metrics.
#include <csignal>
#include <cstdlib>

#include <CLI/CLI.hpp>

#include "common/log.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  CLI::App app{"terwayd: Terway's node daemon (ENI/IP pool, CNI service)"};
  terway::daemon::DaemonOptions opts;
  std::string log_level = "info";
  app.add_option("--config", opts.config_path, "eni_conf JSON file (the eni-config ConfigMap)")
      ->capture_default_str();
  app.add_option("--socket", opts.socket_path, "CNI socket (default: daemon_socket of the config)");
  app.add_option("--state", opts.state_path, "state database (default: state_path of the config)");
  app.add_option("--metrics-listen", opts.metrics_listen, "host:port for /metrics ('' disables)")
      ->capture_default_str();
  app.add_option("--metrics-port-file", opts.metrics_port_file, "write the bound metrics port here");
  app.add_option("--datapath", opts.datapath,
                 "auto: as eni_mode; shared: veth + policy routing; exclusive: the pod's own ENI; "
                 "none: IPAM only (shared mode)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "shared", "exclusive", "none"}));
  app.add_option("--kubeconfig", opts.kubeconfig,
                 "kubeconfig of the Kubernetes API (default: in-cluster when KUBERNETES_SERVICE_HOST is set, "
                 "else no API: eni_conf from --config)");
  app.add_option("--node-name", opts.node_name, "this node's name in Kubernetes (default: $NODE_NAME)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  terway::log::Init("terwayd", log_level);
  if (opts.node_name.empty()) {
    if (const char* n = std::getenv("NODE_NAME")) opts.node_name = n;
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Start-up waits out a metadata service that does not answer yet; a stop
  // signal meanwhile ends the wait (the signals are blocked, so poll them).
  int early_signal = 0;
  opts.stop_requested = [&set, &early_signal] {
    timespec zero{};
    int sig = sigtimedwait(&set, nullptr, &zero);
    if (sig > 0) early_signal = sig;
    return early_signal != 0;
  };

  auto d = terway::daemon::Daemon::Create(opts);
  if (!d.ok() && early_signal != 0) {
    terway::log::Info("terwayd stopping on signal {} before it started: {}", early_signal, d.error().ToString());
    return 0;
  }
  if (!d.ok()) {
    terway::log::Error("terwayd cannot start: {}", d.error().ToString());
    return 1;
  }
  auto s = (*d)->Start();
  if (!s.ok()) {
    terway::log::Error("terwayd cannot start: {}", s.error().ToString());
    return 1;
  }
  terway::log::Info("terwayd ready");
  int sig = 0;
  sigwait(&set, &sig);
  terway::log::Info("terwayd stopping on signal {}", sig);
  (*d)->Stop();
  return 0;
}
