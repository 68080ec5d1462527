// The chaos e2e test's figures: what the run did (pods, kills, faults), what
// the sampler saw, and the cloud's calls summed over vpcsim's lives -- printed
// as one line starting "CHAOS SUMMARY" for the closing note.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <fmt/format.h>

namespace terway::testing {

struct Figures {
  std::atomic<int> pods_added{0}, add_failures{0}, pods_deleted{0}, del_failures{0};
  std::atomic<int> terwayd_kills{0}, databases_lost{0}, vpcsim_kills{0}, fault_episodes{0};
  std::atomic<int> samples{0}, max_sandboxes{0}, violations{0};
  // Calls per action and per "action/error code", summed over vpcsim's
  // lives (its counters start at zero with each process).
  std::mutex mu;
  std::map<std::string, long> calls, errors;

  // Calls of an action the cloud failed / carried out (mu held).
  long Failed(const std::string& action) const {
    long e = 0;
    for (const auto& [k, n] : errors) e += k.rfind(action + "/", 0) == 0 ? n : 0;
    return e;
  }
  long Succeeded(const std::string& action) const {
    auto it = calls.find(action);
    return (it == calls.end() ? 0 : it->second) - Failed(action);
  }

  // Every cloud action the run called, carried out / failed.
  std::string CloudCalls() {
    std::lock_guard l(mu);
    std::string s = "CHAOS CLOUD CALLS (ok/failed):";
    for (const auto& [action, n] : calls) s += fmt::format(" {} {}/{}", action, Succeeded(action), Failed(action));
    return s;
  }

  std::string Summary(std::chrono::seconds wall) {
    std::lock_guard l(mu);
    long throttled = 0, server = 0;
    for (const auto& [k, n] : errors) {
      if (k.find("/Throttling") != std::string::npos) throttled += n;
      if (k.find("/InternalError") != std::string::npos || k.find("/ServiceUnavailable") != std::string::npos) {
        server += n;
      }
    }
    return fmt::format(
        "CHAOS SUMMARY: pods added {} (failed adds {}), pods deleted {} (failed dels, retried {}), terwayd kills {} "
        "({} with the state database lost), vpcsim kills {}, fault episodes {} (cloud answered {} throttled, {} "
        "server errors; failed/ok calls: Unassign {}/{}, Detach {}/{}, DeleteNetworkInterface {}/{}), invariant "
        "samples {} (up to {} sandboxes each), violations {}, wall {} s",
        pods_added.load(), add_failures.load(), pods_deleted.load(), del_failures.load(), terwayd_kills.load(),
        databases_lost.load(), vpcsim_kills.load(), fault_episodes.load(), throttled, server,
        Failed("UnassignPrivateIpAddresses"), Succeeded("UnassignPrivateIpAddresses"),
        Failed("DetachNetworkInterface"), Succeeded("DetachNetworkInterface"), Failed("DeleteNetworkInterface"),
        Succeeded("DeleteNetworkInterface"), samples.load(), max_sandboxes.load(), violations.load(), wall.count());
  }
};

}  // namespace terway::testing
