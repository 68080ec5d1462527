// Telling users where they look that a policy is enforced on the safe side
// (Policy::fail_closed, or a policy that could not be read at all): a
// Warning Event on the policy object, the gauge terway_policy_fail_closed,
// and `terway-cli policy show` (its fail-closed section, policy_show.h).
//
// Pure decisions, so each can be tested alone: which policies to report
// (from the compiled model, which holds what the kernel enforces), and when
// an Event is due. An Event is written once per policy generation per node:
// a recompile (every pod start is one) never repeats it; an edit of the
// policy (a new metadata.generation), a re-created policy (a new uid) or a
// change of what is enforced instead (the message) does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "k8s/types.h"
#include "policy/model.h"

namespace terway::daemon {

inline constexpr char kFailClosedEventReason[] = "PolicyNotEnforcedAsWritten";

// The object a policy was read from, as stored in the API: what `kubectl
// describe` finds the Event by (apiVersion, kind, namespace, name, uid).
struct PolicyObject {
  k8s::ObjectReference ref;
  int64_t generation = 0;
};
// Policy::Id() -> the object it came from.
using PolicyObjects = std::map<std::string, PolicyObject>;

struct FailClosedReport {
  std::string policy;  // Policy::Id(): "k8s:ns/name", "calico:ns/name", "global:name"
  std::string kind;    // the metric's label: k8s, calico or global
  PolicyObject object;
  // What is enforced instead, and a digest of it: a recompile (every pod
  // start is one) compares digests, and formats a message only for an
  // Event that is due.
  const std::vector<policy::FailClosed>* entries = nullptr;  // into the policies reported on
  uint64_t digest = 0;
  std::string Message() const;  // the Event's message (policy::FailClosedMessage)
};

// Every policy with fail_closed entries, in their order; the reports point
// into `policies`, which must outlive them. A policy whose object is
// unknown (none in `objects`) is still reported (metric) with an empty
// reference; it gets no Event.
std::vector<FailClosedReport> FailClosedReports(const std::vector<policy::Policy>& policies,
                                                const PolicyObjects& objects);

// terway_policy_fail_closed by kind: every kind present, zero included, so
// a kind that stops failing closed drops to 0 instead of keeping its last value.
std::map<std::string, int> FailClosedCounts(const std::vector<FailClosedReport>& reports);

// What this node has already told, per policy.
class FailClosedEventLedger {
 public:
  // The reports that need an Event now: policies not told yet in this
  // generation (uid, generation) with these entries (digest). Remembers them as told,
  // and forgets policies no longer reported (fixed or deleted), so a policy
  // that fails closed again later is told again.
  std::vector<FailClosedReport> Due(const std::vector<FailClosedReport>& current);

 private:
  struct Told {
    std::string uid;
    int64_t generation = 0;
    uint64_t digest = 0;
  };
  std::map<std::string, Told> told_;  // by policy id
};

}  // namespace terway::daemon
