// Run-time fault injection and per-action accounting for the OpenAPI server.
// Benchmarks and storm tests set faults through the admin endpoint and read
// the counters back; both are process-local (not persisted): a restarted
// vpcsim starts healthy with zeroed counters.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace terway::vpcsim {

// The faults of one action ("*" = every action without its own entry).
struct FaultSpec {
  double throttle_rate = 0;   // share of calls answered Throttling
  double error_rate = 0;      // share answered InternalError/ServiceUnavailable
  int latency_ms = 0;         // added before answering
  int attach_delay_ms = -1;   // AttachNetworkInterface/Detach: time in Attaching/Detaching; -1 = default
  bool stuck_detaching = false;  // DetachNetworkInterface: ENIs stay Detaching until cleared
  // The code a throttled call gets: "Throttling" (API-wide flow control) or
  // "Throttling.User" (the caller's own quota); clients must retry on both.
  std::string throttle_code = "Throttling";
};

nlohmann::json ToJson(const FaultSpec& f);
// Merges the given fields into *f (fields absent from j are kept).
Status MergeFaultSpec(const nlohmann::json& j, FaultSpec* f);

class FaultTable {
 public:
  explicit FaultTable(uint64_t seed = std::random_device{}()) : rng_(seed) {}

  void Set(const std::string& action, const FaultSpec& spec);
  std::optional<FaultSpec> Get(const std::string& action) const;  // exact entry
  void Clear(const std::string& action);  // "" clears all
  void ClearAll();
  // The spec in force for an action: its own entry, else "*", else none.
  FaultSpec Effective(const std::string& action) const;
  nlohmann::json ToJson() const;

  enum class Injected { kNone, kThrottle, kServerError, kUnavailable };
  // Draws the injected outcome for one call.
  Injected Draw(const std::string& action);

 private:
  mutable std::mutex mu_;
  std::map<std::string, FaultSpec> specs_;
  std::mt19937_64 rng_;
};

// Calls and errors per action and code.
class CallCounters {
 public:
  void Record(const std::string& action, const std::string& error_code /* "" = success */);
  nlohmann::json ToJson() const;
  void Reset();
  uint64_t Calls(const std::string& action) const;
  uint64_t Errors(const std::string& action, const std::string& code) const;

 private:
  struct PerAction {
    uint64_t calls = 0;
    std::map<std::string, uint64_t> errors;
  };
  mutable std::mutex mu_;
  std::map<std::string, PerAction> actions_;
};

}  // namespace terway::vpcsim
