// List -> watch -> relist, the loop behind every cache (client-go calls it a
// reflector). It keeps one resourceVersion cursor, rewatches from it when a
// stream ends, relists when the server says the cursor is too old (410
// Gone), and backs off exponentially while the server is unreachable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "k8s/client.h"
#include "k8s/watch.h"

namespace terway::k8s {

// The two calls a reflector needs; RestListerWatcher does them over REST,
// tests script them.
class ListerWatcher {
 public:
  virtual ~ListerWatcher() = default;
  virtual Result<Json> List(const ListOptions& opts) = 0;
  virtual Status Watch(const ListOptions& opts, const std::function<bool(WatchEvent)>& on_event,
                       const std::atomic<bool>* cancel) = 0;
};

class RestListerWatcher : public ListerWatcher {
 public:
  RestListerWatcher(RestClient& client, ResourceRef resource, std::string ns = "")
      : client_(client), resource_(std::move(resource)), ns_(std::move(ns)) {}
  Result<Json> List(const ListOptions& opts) override { return client_.List(resource_, ns_, opts); }
  Status Watch(const ListOptions& opts, const std::function<bool(WatchEvent)>& on_event,
               const std::atomic<bool>* cancel) override {
    return client_.Watch(resource_, ns_, opts, on_event, cancel);
  }

 private:
  RestClient& client_;
  ResourceRef resource_;
  std::string ns_;
};

// What the reflector feeds: a full replacement after each list, then single
// events. Implemented by Cache<T>.
class ReflectorSink {
 public:
  virtual ~ReflectorSink() = default;
  virtual void Replace(const std::vector<Json>& items) = 0;
  virtual void Apply(const WatchEvent& ev) = 0;
};

struct ReflectorOptions {
  std::string label_selector;
  std::string field_selector;
  // The server ends each watch after about this long; we then rewatch from
  // our cursor (cheap, and it bounds how long a half-dead connection lives).
  int watch_timeout_seconds = 300;
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{30000};
};

class Reflector {
 public:
  Reflector(ListerWatcher& lw, ReflectorSink& sink, ReflectorOptions opts);
  ~Reflector();
  void Start();
  void Stop();
  // True once the first list has been delivered.
  bool WaitForSync(std::chrono::milliseconds timeout);
  bool synced() const { return synced_.load(); }
  std::string resource_version() const;
  int lists() const { return lists_.load(); }
  int watches() const { return watches_.load(); }

 private:
  void Run();
  bool ListOnce();
  // Returns true when a relist is needed.
  bool WatchOnce();
  void SleepBackoff();

  ListerWatcher& lw_;
  ReflectorSink& sink_;
  ReflectorOptions opts_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::atomic<int> lists_{0};
  std::atomic<int> watches_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string rv_;
  std::chrono::milliseconds backoff_;
};

}  // namespace terway::k8s
