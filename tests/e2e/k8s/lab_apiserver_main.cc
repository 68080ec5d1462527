// Test-only: runs the lab's API stand-in on 127.0.0.1 until SIGINT/SIGTERM,
// for poking at it with kubectl by hand. The real binary is terway-lab.
//   lab_apiserver_main [port] [kubeconfig-to-write]
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/log.h"
#include "tools/lab/apiserver/server.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  const char* level = std::getenv("LAB_LOG_LEVEL");
  terway::log::Init("lab-apiserver", level ? level : "info");
  terway::lab::ApiServerOptions opts;
  if (argc > 1) opts.port = std::atoi(argv[1]);
  terway::lab::ApiServer server(terway::lab::NewDefaultStore(), opts);
  if (auto st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
    return 1;
  }
  if (argc > 2) {
    if (auto st = server.WriteKubeconfig(argv[2]); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
      return 1;
    }
  }
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.Stop();
  return 0;
}
