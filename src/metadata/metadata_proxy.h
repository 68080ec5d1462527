// The filtering HTTP proxy in front of the ECS metadata service: pods' TCP
// connections to 100.100.100.200:80 are steered to it (guard_nft.h); it
// answers each from the real service, except what DecidePodRequest refuses.
//
// Bounds, so that no pod can make terwayd hold memory or threads:
// - a fixed number of worker threads, each serving one connection at a time
//   (further connections wait in the listen backlog), and at most
//   max_connections_per_client of them serving one client address: a pod's
//   connection over that is answered 429 at once, so one pod never holds
//   every worker;
// - one request per connection; the request head at most kMaxHeadBytes and
//   complete within head_deadline of the accept; no request body;
// - the service's answer read with connect/read timeouts and at most
//   max_reply_body bytes; the reply written within reply_deadline.
// Requests to the service leave from the node's own address (the service
// attributes them to this instance, as it would the pod's own IP).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "metadata/http_head.h"
#include "metadata/request_policy.h"

namespace terway::metadata {

struct MetadataProxyOptions {
  std::string netns;  // where to listen and from where to call the service; "" = this thread's
  Ipv4Addr listen_ip;
  uint16_t listen_port = 80;  // 0: any free port (tests)
  // The metadata service: "http://100.100.100.200" (eni_conf metadata_endpoint).
  std::string upstream = "http://100.100.100.200";
  int workers = 16;
  int max_connections_per_client = 4;  // 0: no limit
  std::chrono::milliseconds head_deadline{3000};
  std::chrono::milliseconds reply_deadline{5000};
  std::chrono::milliseconds upstream_connect_timeout{1000};
  std::chrono::milliseconds upstream_timeout{3000};  // each read and write towards the service
  size_t max_reply_body = 1 << 20;  // user-data is at most 32 KiB on ECS; listings are small
  // Called for each request that was not forwarded (metrics). From worker
  // threads; must be thread-safe and quick.
  std::function<void(Verdict)> on_refusal;
};

struct MetadataProxyStats {
  uint64_t forwarded = 0;
  uint64_t refused_credentials = 0;
  uint64_t refused_method = 0;
  uint64_t malformed = 0;           // bad heads, too large, too slow
  uint64_t refused_connections = 0; // over max_connections_per_client
  uint64_t upstream_failures = 0;   // the service did not answer (502)
};

class MetadataProxy {
 public:
  // Binds (in options.netns) and starts the workers. kInvalidArgument for a
  // bad upstream URL; kKernel when the address cannot be bound.
  static Result<std::unique_ptr<MetadataProxy>> Start(MetadataProxyOptions options);
  ~MetadataProxy();
  MetadataProxy(const MetadataProxy&) = delete;
  MetadataProxy& operator=(const MetadataProxy&) = delete;

  // Stops accepting, lets each worker finish its connection (bounded by the
  // deadlines above) and joins them. Idempotent.
  void Stop();
  uint16_t port() const { return port_; }
  MetadataProxyStats stats() const;

 private:
  explicit MetadataProxy(MetadataProxyOptions options);
  void Serve();
  void HandleConnection(int fd, const std::string& peer);
  // Asks the metadata service; a 502 when it does not answer in time or
  // answers more than max_reply_body.
  HttpReply Forward(const Decision& d, bool head_only, const std::string& peer);
  void Count(Verdict v, const std::string& peer, std::string_view reason);
  // Takes one of the client's connection slots; false when it has none left.
  bool Admit(const std::string& peer);
  void Release(const std::string& peer);

  struct LogLimiter;

  MetadataProxyOptions options_;
  std::unique_ptr<LogLimiter> log_limiter_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::mutex clients_mu_;
  std::map<std::string, int> clients_;  // peer -> connections in service
  std::atomic<uint64_t> forwarded_{0}, refused_credentials_{0}, refused_method_{0}, malformed_{0},
      upstream_failures_{0}, refused_connections_{0};
};

// "http://host[:port]" with nothing after the authority; the error names the
// key the value came from (eni_conf metadata_endpoint).
Status ValidateUpstream(std::string_view url);

}  // namespace terway::metadata
