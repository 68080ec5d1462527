// Vpcsim: one running emulated cloud. Wires VpcCloud (state + fabric) to its
// HTTP listeners and runs the attach/detach worker.
//
// Listeners:
//   loopback (Options::listen, port 0 = ephemeral): the OpenAPI at "/", the
//     metadata service at "/latest/..." (caller named by X-Vpcsim-Instance-Id)
//     and the admin endpoint at "/admin/...".
//   inside the VPC router namespace (when the fabric has one): the OpenAPI on
//     100.100.0.1:80 and the metadata service on 100.100.100.200:80, where the
//     caller's instance is known from its source IP. No admin endpoint there.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "tools/vpcsim/admin.h"
#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/metadata.h"
#include "tools/vpcsim/openapi.h"

namespace httplib {
class Server;
}

namespace terway::vpcsim {

class Vpcsim {
 public:
  struct Options {
    std::string state_dir;
    std::string listen_host = "127.0.0.1";
    int listen_port = 0;
    bool serve_in_router = true;  // ignored when the fabric has no router namespace
    std::chrono::milliseconds attach_delay{300};
    std::chrono::milliseconds tick{20};
  };

  // Opens the state, re-creates the fabric to match it, starts the listeners
  // and the worker. fabric and clock must outlive the Vpcsim.
  static Result<std::unique_ptr<Vpcsim>> Start(World world, Options options, Fabric* fabric,
                                               Clock* clock);
  ~Vpcsim();
  // Stops listeners and the worker; leaves the fabric and the state in place.
  void Stop();

  int port() const { return port_; }
  VpcCloud* cloud() { return cloud_.get(); }
  FaultTable* faults() { return &faults_; }
  CallCounters* counters() { return &counters_; }

 private:
  Vpcsim() = default;
  Status StartLoopback(const Options& o);
  Status StartInRouter(const std::string& netns);
  void Worker(std::chrono::milliseconds tick);

  FaultTable faults_;
  CallCounters counters_;
  std::unique_ptr<VpcCloud> cloud_;
  std::unique_ptr<OpenApiService> api_;
  std::unique_ptr<MetadataService> metadata_;
  std::unique_ptr<AdminService> admin_;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int port_ = 0;
};

}  // namespace terway::vpcsim
