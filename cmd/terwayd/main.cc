// terwayd: the node daemon. Owns the node's ENIs and pod IPs, serves the
// `terway` CNI plugin on a unix socket, exports metrics.
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "common/log.h"
#include "config/terwayd_flags.h"
#include "daemon/daemon.h"

int main(int argc, char** argv) {
  // Ours and upstream Terway's flags, in Go's flag syntax: upstream's
  // DaemonSet command line starts this binary unchanged.
  auto cl = terway::config::ParseTerwaydCommandLine(std::vector<std::string>(argv + 1, argv + argc));
  if (!cl.ok()) {
    std::fprintf(stderr, "terwayd: %s\n", cl.error().message.c_str());
    return 2;
  }
  if (cl->help) {
    std::fputs(terway::config::TerwaydUsage().c_str(), stdout);
    return 0;
  }
  terway::log::Init("terwayd", cl->log_level);
  for (const auto& w : cl->warnings) terway::log::Warn("{}", w);
  terway::daemon::DaemonOptions opts;
  opts.config_path = cl->config_path;
  opts.socket_path = cl->socket_path;
  opts.state_path = cl->state_path;
  opts.metrics_listen = cl->metrics_listen;
  opts.metrics_port_file = cl->metrics_port_file;
  opts.datapath = cl->datapath;
  opts.ebpf_datapath = cl->ebpf_datapath;
  opts.bpffs = cl->bpffs;
  opts.kubeconfig = cl->kubeconfig;
  opts.api_server = cl->api_server;
  opts.node_name = cl->node_name;
  opts.daemon_mode = cl->daemon_mode;
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
