// The lab's Kubernetes API stand-in: the REST subset terway and kubectl use,
// served by cpp-httplib on a loopback port over an ObjectStore.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tools/lab/apiserver/store.h"
#include "common/result.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace terway::lab {

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
  // Period of BOOKMARK events on watches that ask for them (the real API
  // server sends about one a minute; the lab is faster so tests see them).
  std::chrono::milliseconds bookmark_interval{1000};
  // Upper bound for a watch when the client gives no timeoutSeconds.
  int max_watch_seconds = 1800;
  // Worker threads; every open watch holds one.
  int threads = 64;
  // HTTPS when both are set (PEM files), as a real API server; plain HTTP
  // otherwise (the lab's default: loopback only).
  std::string tls_cert_file;
  std::string tls_key_file;
  // When set, every request must carry "Authorization: Bearer <token>"
  // (401 otherwise), so the client's token handling is exercised.
  std::string bearer_token;
};

class ApiServer {
 public:
  // store may be shared across server instances (a restart with preserved
  // state); pass a fresh one for a restart with reset state.
  ApiServer(std::shared_ptr<ObjectStore> store, ApiServerOptions opts = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  Status Start();
  void Stop();
  int port() const { return port_; }
  std::string url() const;
  ObjectStore& store() { return *store_; }
  const std::shared_ptr<ObjectStore>& shared_store() const { return store_; }

  // Admin hooks for tests.
  void CloseAllWatches() { store_->CloseAllWatches(); }
  void CompactHistory() { store_->Compact(); }
  // While held, watch streams deliver nothing (they stay open); lets a test
  // make changes that a client can only learn about by relisting.
  void HoldWatches(bool hold);

  // Watch requests accepted so far (tests wait on it before closing streams).
  int watches_served() const { return watches_served_.load(); }

  // A kubeconfig (no auth, plain HTTP) pointing kubectl at this server.
  Status WriteKubeconfig(const std::string& path) const;

 private:
  void Route();
  void Handle(const httplib::Request& req, httplib::Response& res);

  std::shared_ptr<ObjectStore> store_;
  ApiServerOptions opts_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> hold_watches_{false};
  std::atomic<int> watches_served_{0};
};

// A store with the built-in kinds registered.
std::shared_ptr<ObjectStore> NewDefaultStore();

}  // namespace terway::lab
