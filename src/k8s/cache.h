// Cache<T>: an informer-like typed cache of one resource kind. A Reflector
// lists and watches; the cache keeps objects by namespace/name and calls
// handlers on add/update/delete. Across rewatches and relists each change
// is delivered once: events whose resourceVersion the cache already holds
// are dropped, and a relist is diffed against the cache so only real
// differences become add/update/delete calls.
//
// Objects that fail to parse are logged and skipped; if an older good copy
// is cached it is kept (no event) until a parseable version arrives.
// Handlers run on the reflector's thread, outside the cache's lock, so they
// may call Get/List.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/log.h"
#include "k8s/reflector.h"
#include "k8s/types.h"

namespace terway::k8s {

template <typename T>
struct CacheHandlers {
  std::function<void(const T&)> on_add;
  std::function<void(const T& old_obj, const T& new_obj)> on_update;
  std::function<void(const T&)> on_delete;
};

template <typename T>
class Cache : public ReflectorSink {
 public:
  Cache(ListerWatcher& lw, ReflectorOptions opts, CacheHandlers<T> handlers = {})
      : handlers_(std::move(handlers)), reflector_(lw, *this, std::move(opts)) {}
  ~Cache() override { Stop(); }

  void Start() { reflector_.Start(); }
  void Stop() { reflector_.Stop(); }
  bool WaitForSync(std::chrono::milliseconds timeout) { return reflector_.WaitForSync(timeout); }
  const Reflector& reflector() const { return reflector_; }

  // key: "namespace/name" (or "name" for cluster-scoped kinds).
  std::optional<T> Get(const std::string& key) const {
    std::lock_guard l(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<T> List() const {
    std::lock_guard l(mu_);
    std::vector<T> out;
    for (const auto& [k, v] : objects_) out.push_back(v);
    return out;
  }
  size_t Size() const {
    std::lock_guard l(mu_);
    return objects_.size();
  }
  int malformed() const {
    std::lock_guard l(mu_);
    return malformed_;
  }

  // ReflectorSink (also callable directly by tests).
  void Replace(const std::vector<Json>& items) override {
    std::vector<Change> changes;
    {
      std::lock_guard l(mu_);
      std::map<std::string, T> next;
      for (const auto& item : items) {
        auto obj = Parse<T>(item);
        if (!obj.ok()) {
          malformed_++;
          log::Warn("k8s_cache_skip_malformed err={}", obj.error().ToString());
          // Keep the last good copy of an object we can still name.
          std::string key = KeyOf(item);
          if (auto it = objects_.find(key); !key.empty() && it != objects_.end()) {
            next.emplace(key, it->second);
          }
          continue;
        }
        std::string key = obj->metadata.Key();
        next.insert_or_assign(key, std::move(obj).value());
      }
      for (auto& [key, obj] : next) {
        auto it = objects_.find(key);
        if (it == objects_.end()) {
          changes.push_back({Change::kAdd, std::nullopt, obj});
        } else if (it->second.metadata.resource_version != obj.metadata.resource_version ||
                   it->second.metadata.uid != obj.metadata.uid) {
          changes.push_back({Change::kUpdate, it->second, obj});
        }
      }
      for (auto& [key, obj] : objects_) {
        if (!next.count(key)) changes.push_back({Change::kDelete, obj, obj});
      }
      objects_ = std::move(next);
    }
    Dispatch(changes);
  }

  void Apply(const WatchEvent& ev) override {
    std::vector<Change> changes;
    {
      std::lock_guard l(mu_);
      auto obj = Parse<T>(ev.object);
      if (!obj.ok()) {
        malformed_++;
        log::Warn("k8s_cache_skip_malformed event={} err={}", WatchEventTypeName(ev.type),
                  obj.error().ToString());
        if (ev.type == WatchEventType::kDeleted) {
          // A deletion needs only the key; do not keep a ghost.
          std::string key = KeyOf(ev.object);
          if (auto it = objects_.find(key); !key.empty() && it != objects_.end()) {
            changes.push_back({Change::kDelete, it->second, it->second});
            objects_.erase(it);
          }
        }
      } else {
        std::string key = obj->metadata.Key();
        auto it = objects_.find(key);
        if (ev.type == WatchEventType::kDeleted) {
          if (it != objects_.end()) {
            changes.push_back({Change::kDelete, it->second, obj.value()});
            objects_.erase(it);
          }
        } else if (it == objects_.end()) {
          changes.push_back({Change::kAdd, std::nullopt, obj.value()});
          objects_.emplace(key, std::move(obj).value());
        } else if (it->second.metadata.resource_version != obj->metadata.resource_version) {
          changes.push_back({Change::kUpdate, it->second, obj.value()});
          it->second = std::move(obj).value();
        }
        // Same resourceVersion: a replay we already hold; drop it.
      }
    }
    Dispatch(changes);
  }

 private:
  struct Change {
    enum Kind { kAdd, kUpdate, kDelete } kind;
    std::optional<T> old_obj;
    T new_obj;
  };

  static std::string KeyOf(const Json& j) {
    if (!j.is_object() || !j.contains("metadata") || !j["metadata"].is_object()) return "";
    const Json& m = j["metadata"];
    if (!m.contains("name") || !m["name"].is_string()) return "";
    std::string ns = m.contains("namespace") && m["namespace"].is_string() ? m["namespace"].get<std::string>() : "";
    std::string name = m["name"];
    return ns.empty() ? name : ns + "/" + name;
  }

  void Dispatch(const std::vector<Change>& changes) {
    for (const auto& c : changes) {
      switch (c.kind) {
        case Change::kAdd:
          if (handlers_.on_add) handlers_.on_add(c.new_obj);
          break;
        case Change::kUpdate:
          if (handlers_.on_update) handlers_.on_update(*c.old_obj, c.new_obj);
          break;
        case Change::kDelete:
          if (handlers_.on_delete) handlers_.on_delete(c.new_obj);
          break;
      }
    }
  }

  CacheHandlers<T> handlers_;
  mutable std::mutex mu_;
  std::map<std::string, T> objects_;
  int malformed_ = 0;
  Reflector reflector_;  // last: its thread must stop before the rest is destroyed
};

}  // namespace terway::k8s
