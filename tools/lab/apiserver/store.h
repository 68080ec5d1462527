// The stand-in's storage: typed-by-registration JSON objects under one
// monotonically increasing resourceVersion, with a bounded history of
// changes that watches replay. Generic: adding a resource kind (a CRD such
// as projectcalico.org/v3 NetworkPolicy) is one Register() call.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/result.h"

namespace terway::lab {

using Json = nlohmann::json;

struct ResourceType {
  std::string group;  // "" for the core group
  std::string version;
  std::string kind;
  std::string plural;
  std::string singular;
  bool namespaced = true;
  std::vector<std::string> short_names;
  // Has a status subresource: PUT/PATCH of the main resource keep the stored
  // status, writes to <name>/status change only the status.
  bool has_status = false;

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string Key() const { return group + "/" + plural; }
};

// The kinds the project uses (core v1, networking.k8s.io/v1, projectcalico.org/v3).
std::vector<ResourceType> BuiltinResourceTypes();

// What a write does, for admission.
enum class WriteOp { kCreate, kUpdate, kDelete };

// The store's objects as a write sees them while it holds the store's lock,
// so an admission decision that depends on other objects (a policy's tier
// must exist; a tier in use may not go) is atomic with the write.
class StoreView {
 public:
  virtual ~StoreView() = default;
  // type_key: ResourceType::Key(); ns empty for cluster-scoped kinds.
  virtual const Json* Get(const std::string& type_key, const std::string& ns, const std::string& name) const = 0;
  virtual std::vector<const Json*> List(const std::string& type_key) const = 0;
};

// Admission, as an API server's mutating and validating plugins: may default
// fields of *obj (create and update; obj is null on delete) or refuse the
// write with an error (kInvalidArgument -> 422, kConflict -> 409, ...). old
// is the stored object on update and delete. Runs before the server sets
// uid, resourceVersion and generation, so defaulting never bumps generation.
using Admission =
    std::function<Status(WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view)>;

// One change, as watches replay it. old_object is the previous state of a
// MODIFIED object, so selector-filtered watches can turn a change that moves
// an object into (out of) their selection into ADDED (DELETED).
struct StoredEvent {
  uint64_t rv = 0;
  std::string type_key;
  std::string type;  // ADDED | MODIFIED | DELETED
  Json object;
  Json old_object;
};

// Writes a reaction makes, under the store's lock. Each goes through
// admission and is recorded as a change of its own (a later
// resourceVersion, its own watch event), as a controller's write would be.
class StoreWriter : public StoreView {
 public:
  virtual Result<Json> Create(const std::string& type_key, const std::string& ns, Json obj) = 0;
  // obj carries the resourceVersion it was computed from (409 when stale).
  virtual Result<Json> Update(const std::string& type_key, const std::string& ns, Json obj) = 0;
  virtual Status Delete(const std::string& type_key, const std::string& ns, const std::string& name) = 0;
};

// What kube-controller-manager's controllers do in reaction to a change
// (a namespace gets its `default` ServiceAccount, a Service's EndpointSlices
// follow its pods), run right after the change commits, before the write's
// caller gets its answer. The lab runs them inline rather than as watching
// loops: one store is served by several listeners (the host's and each
// node's), so there is no single server process to host a loop, and inline
// reactions leave no window in which a test sees a half-reacted cluster.
// Their own writes cause reactions in turn (a bounded chain).
using Reaction = std::function<void(const StoredEvent& ev, StoreWriter& w)>;

class ObjectStore {
 public:
  // resourceVersions start at the clock's microseconds since the epoch, so
  // a store created later (a restart with reset state) never reuses a
  // version a client still holds: that client's cursor predates the new
  // history and it gets 410 Gone and relists, instead of resuming into
  // unrelated events.
  explicit ObjectStore(size_t history_limit = 10000, const Clock& clock = RealClock::Instance());

  // Registers a kind; the default namespaces exist from the start.
  void Register(ResourceType t);
  // An object that exists from the start (Calico's `default` tier), with
  // server-set metadata and no watch event, as the default namespaces.
  Status Seed(const ResourceType& t, Json obj);
  // Replaces the admission run on every create, update and delete (not on
  // status-subresource writes, which cannot change what admission looks at).
  void SetAdmission(Admission admission);
  // Replaces the reaction run after every committed create, update and
  // delete (status-subresource writes included: a pod's readiness moves it
  // in its Services' EndpointSlices).
  void SetReaction(Reaction reaction);
  const ResourceType* Find(const std::string& group, const std::string& version,
                           const std::string& plural) const;
  std::vector<ResourceType> Types() const;

  // dry_run (the dryRun=All parameter): everything a write checks and
  // defaults, answered as it would be stored, but nothing is stored.
  Result<Json> Create(const ResourceType& t, const std::string& ns, Json obj, bool dry_run = false);
  Result<Json> Get(const ResourceType& t, const std::string& ns, const std::string& name) const;
  struct ListResult {
    std::vector<Json> items;
    uint64_t rv = 0;
  };
  // ns empty: all namespaces. filter may be empty.
  ListResult List(const ResourceType& t, const std::string& ns,
                  const std::function<bool(const Json&)>& filter = {}) const;
  // Replaces the object; a non-empty metadata.resourceVersion must match the
  // stored one (409 Conflict otherwise).
  Result<Json> Update(const ResourceType& t, const std::string& ns, const std::string& name, Json obj,
                      bool status_subresource, bool dry_run = false);
  // Read-modify-write under the store's lock (patches).
  Result<Json> Mutate(const ResourceType& t, const std::string& ns, const std::string& name,
                      const std::function<Status(Json&)>& fn, bool status_subresource, bool dry_run = false);
  Result<Json> Delete(const ResourceType& t, const std::string& ns, const std::string& name, bool dry_run = false);

  // --- watch support ---
  uint64_t CurrentRv() const;
  // The oldest resourceVersion a watch may resume from.
  uint64_t CompactedRv() const;
  // Events of one kind with rv > after; *upto receives the store's rv at the
  // time of reading (the watcher has seen everything up to it). Gone (error
  // with http_status 410) when after predates the history.
  Result<std::vector<StoredEvent>> EventsAfter(const std::string& type_key, uint64_t after,
                                               uint64_t* upto) const;
  // Blocks until the rv passes `after`, the close generation changes from
  // `generation`, *abort is set (checked when Wake() is called), or the timeout.
  void WaitForChange(uint64_t after, uint64_t generation, std::chrono::milliseconds timeout,
                     const std::atomic<bool>* abort = nullptr) const;
  uint64_t close_generation() const;
  // Admin hooks for tests: end every open watch stream; drop the history so
  // resuming from any earlier version gets 410 Gone (and end watches too).
  void CloseAllWatches();
  // Reads served, for tests: "<group/version>/<plural>" -> "list"|"watch" -> count.
  void CountRead(const std::string& resource, const std::string& verb);
  Json Reads() const;
  void Compact();
  void Wake() const {
    { std::lock_guard l(mu_); }  // orders the caller's flag write before waiters re-check
    cv_.notify_all();
  }

 private:
  struct Kind {
    ResourceType type;
    std::map<std::string, Json> objects;  // "ns/name" or "name"
  };
  Kind* KindOf(const ResourceType& t);
  const Kind* KindOf(const ResourceType& t) const;
  Result<Json> UpdateLocked(Kind& k, const std::string& ns, const std::string& name, Json obj,
                            bool status_subresource, bool check_rv, bool dry_run);
  Result<Json> CreateLocked(Kind& k, const std::string& ns, Json obj, bool dry_run);
  Result<Json> DeleteLocked(Kind& k, const std::string& ns, const std::string& name, bool dry_run);
  void Record(const std::string& type_key, const char* type, const Json& obj, Json old);
  Status Admit(WriteOp op, const ResourceType& t, Json* obj, const Json* old) const;
  // Runs the reaction on every change recorded since the last call,
  // including those the reactions make.
  void React();
  class LockedView;
  class LockedWriter;
  std::string Now() const;

  mutable std::mutex reads_mu_;
  std::map<std::string, std::map<std::string, int>> reads_;
  const size_t history_limit_;
  const Clock& clock_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, Kind> kinds_;
  uint64_t rv_ = 0;
  uint64_t compacted_rv_ = 0;
  uint64_t close_generation_ = 0;
  uint64_t uid_counter_ = 0;
  std::deque<StoredEvent> history_;
  Admission admission_;
  Reaction reaction_;
  std::deque<StoredEvent> unreacted_;  // changes the reaction has not seen yet
  bool reacting_ = false;
};

// A Kubernetes-shaped Status for an error: {kind: Status, reason, code, ...}.
Json StatusFor(int code, const std::string& reason, const std::string& message,
               const std::string& kind_plural = "", const std::string& name = "");
// The Status answering one of our errors. A 422's details carry the kind,
// the name and the field cause, as the API server gives them: kubectl
// prints an Invalid error from those alone ("The Tier \"x\" is invalid:
// spec.order: ..."), so without them the reason would be lost. Our messages
// all read `<Kind>[.<group>] "<name>" is invalid: <field>: <detail>` (or a
// bracketed list of such field errors).
Json StatusForError(const Error& e, const std::string& kind_plural = "", const std::string& name = "");
// The HTTP status and reason for one of our errors.
std::pair<int, std::string> HttpStatusOf(const Error& e);

}  // namespace terway::lab
