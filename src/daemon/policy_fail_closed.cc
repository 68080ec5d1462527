#include "daemon/policy_fail_closed.h"

#include <string_view>

#include "policy/calico_objects.h"

namespace terway::daemon {

namespace {

const char* KindLabel(policy::Policy::Kind k) {
  switch (k) {
    case policy::Policy::Kind::kK8s: return "k8s";
    case policy::Policy::Kind::kCalico: return "calico";
    case policy::Policy::Kind::kCalicoGlobal: return "global";
  }
  return "?";
}

// FNV-1a over the entries' text, each field ended by a separator so that
// moving text between fields changes the digest.
uint64_t Digest(const std::vector<policy::FailClosed>& entries) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
  };
  for (const auto& e : entries) {
    mix(e.where);
    mix(e.why);
    mix(e.enforced_as);
  }
  return h;
}

}  // namespace

std::string FailClosedReport::Message() const {
  return entries ? policy::FailClosedMessage(*entries) : std::string();
}

std::vector<FailClosedReport> FailClosedReports(const std::vector<policy::Policy>& policies,
                                                const PolicyObjects& objects) {
  std::vector<FailClosedReport> out;
  for (const auto& p : policies) {
    if (p.fail_closed.empty()) continue;
    FailClosedReport r;
    r.policy = p.Id();
    r.kind = KindLabel(p.kind);
    if (auto it = objects.find(r.policy); it != objects.end()) r.object = it->second;
    r.entries = &p.fail_closed;
    r.digest = Digest(p.fail_closed);
    out.push_back(std::move(r));
  }
  return out;
}

std::map<std::string, int> FailClosedCounts(const std::vector<FailClosedReport>& reports) {
  std::map<std::string, int> counts{{"k8s", 0}, {"calico", 0}, {"global", 0}};
  for (const auto& r : reports) counts[r.kind]++;
  return counts;
}

std::vector<FailClosedReport> FailClosedEventLedger::Due(const std::vector<FailClosedReport>& current) {
  std::vector<FailClosedReport> due;
  std::map<std::string, Told> next;
  for (const auto& r : current) {
    Told now{r.object.ref.uid, r.object.generation, r.digest};
    auto it = told_.find(r.policy);
    const bool told = it != told_.end() && it->second.uid == now.uid && it->second.generation == now.generation &&
                      it->second.digest == now.digest;
    // Nothing to write an Event on: no object to name (the reference is
    // how kubectl finds it).
    if (!told && !r.object.ref.name.empty()) due.push_back(r);
    next[r.policy] = std::move(now);
  }
  told_ = std::move(next);
  return due;
}

}  // namespace terway::daemon
