#include "daemon/policy_fail_closed.h"


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

}  // namespace

std::vector<FailClosedReport> FailClosedReports(const std::vector<policy::Policy>& policies,
                                                const PolicyObjects& objects) {
  std::vector<FailClosedReport> out;
  for (const auto& p : policies) {
    if (p.fail_closed.empty()) continue;
    FailClosedReport r;
    r.policy = p.Id();
    r.kind = KindLabel(p.kind);
    if (auto it = objects.find(r.policy); it != objects.end()) r.object = it->second;
    r.message = policy::FailClosedMessage(p.fail_closed);
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
    Told now{r.object.ref.uid, r.object.generation, r.message};
    auto it = told_.find(r.policy);
    const bool told = it != told_.end() && it->second.uid == now.uid && it->second.generation == now.generation &&
                      it->second.message == now.message;
    // Nothing to write an Event on: no object to name (the reference is
    // how kubectl finds it).
    if (!told && !r.object.ref.name.empty()) due.push_back(r);
    next[r.policy] = std::move(now);
  }
  told_ = std::move(next);
  return due;
}

}  // namespace terway::daemon
