#include "tools/lab/apiserver/store.h"

#include <algorithm>
#include <random>

#include "common/log.h"

namespace terway::lab {
namespace {

std::string ObjKey(const std::string& ns, const std::string& name) {
  return ns.empty() ? name : ns + "/" + name;
}

std::string NameOf(const Json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const Json& m = obj["metadata"];
  return m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
}

// The parts of an object whose change bumps metadata.generation.
Json SpecPart(const Json& obj) {
  Json j = obj;
  j.erase("metadata");
  j.erase("status");
  return j;
}

Error NotFound(const ResourceType& t, const std::string& name) {
  Error e = Errorf(ErrorCode::kNotFound, "{}{}\"{}\" not found", t.plural,
                   t.group.empty() ? " " : "." + t.group + " ", name);
  e.http_status = 404;
  return e;
}

// metadata.labels and .annotations are maps of strings: the API server's
// decoder refuses anything else (400), so nothing downstream meets a
// number where a label value belongs.
Status CheckStringMaps(const ResourceType& t, const std::string& name, const Json& meta) {
  for (const char* field : {"labels", "annotations"}) {
    if (!meta.contains(field) || meta[field].is_null()) continue;
    const Json& m = meta[field];
    bool ok = m.is_object() && std::all_of(m.begin(), m.end(), [](const Json& v) { return v.is_string(); });
    if (!ok) {
      Error e = Errorf(ErrorCode::kInvalidArgument,
                       "{} \"{}\": metadata.{} must map strings to strings (quote numbers and booleans in YAML)",
                       t.kind, name, field);
      e.http_status = 400;
      return e;
    }
  }
  return Ok();
}

// A DNS-1123 subdomain, as the API server requires for most names.
bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 253) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  return std::isalnum(static_cast<unsigned char>(n.front())) &&
         std::isalnum(static_cast<unsigned char>(n.back()));
}

std::string RandomSuffix() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  const char* chars = "bcdfghjklmnpqrstvwxz2456789";
  std::string s;
  for (int i = 0; i < 5; i++) s.push_back(chars[rng() % 27]);
  return s;
}

}  // namespace

std::vector<ResourceType> BuiltinResourceTypes() {
  return {
      {"", "v1", "Namespace", "namespaces", "namespace", false, {"ns"}, true},
      {"", "v1", "Pod", "pods", "pod", true, {"po"}, true},
      {"", "v1", "Node", "nodes", "node", false, {"no"}, true},
      {"", "v1", "ConfigMap", "configmaps", "configmap", true, {"cm"}, false},
      {"", "v1", "Event", "events", "event", true, {"ev"}, false},
      // What Calico's serviceAccounts and services rule matches read.
      {"", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, {"sa"}, false},
      {"", "v1", "Service", "services", "service", true, {"svc"}, true},
      {"discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, {}, false},
      {"networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", true, {"netpol"},
       false},
      // Calico's policy API (what its API server serves; the kinds terwayd
      // also enforces), so migrated manifests apply unchanged.
      // Short names as Calico declares them (its CRDs; `netsets` from its
      // aggregated API server, whose NetworkSet CRD declares none).
      {"projectcalico.org", "v3", "NetworkPolicy", "networkpolicies", "networkpolicy", true,
       {"cnp", "caliconetworkpolicy"}, false},
      {"projectcalico.org", "v3", "GlobalNetworkPolicy", "globalnetworkpolicies", "globalnetworkpolicy", false,
       {"gnp", "cgnp"}, false},
      {"projectcalico.org", "v3", "NetworkSet", "networksets", "networkset", true, {"netsets"}, false},
      {"projectcalico.org", "v3", "GlobalNetworkSet", "globalnetworksets", "globalnetworkset", false, {"gns"},
       false},
      {"projectcalico.org", "v3", "Tier", "tiers", "tier", false, {}, false},
  };
}

Json StatusFor(int code, const std::string& reason, const std::string& message,
               const std::string& kind_plural, const std::string& name) {
  Json s = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", Json::object()},
            {"status", code < 400 ? "Success" : "Failure"}, {"message", message},
            {"reason", reason}, {"code", code}};
  if (!kind_plural.empty() || !name.empty()) {
    s["details"] = {{"name", name}, {"kind", kind_plural}};
  }
  return s;
}

namespace {

// The details of a 422 (StatusForError says what and why).
Json InvalidDetails(const std::string& message) {
  const size_t quote = message.find(" \"");
  const size_t marker = message.find("\" is invalid: ");
  if (quote == std::string::npos || marker == std::string::npos || marker < quote) return nullptr;
  const std::string qualified = message.substr(0, quote);
  const size_t dot = qualified.find('.');
  Json details = {{"name", message.substr(quote + 2, marker - quote - 2)},
                  {"kind", qualified.substr(0, dot)}};
  if (dot != std::string::npos) details["group"] = qualified.substr(dot + 1);
  const std::string rest = message.substr(marker + std::string("\" is invalid: ").size());
  const size_t colon = rest.find(": ");
  Json cause = {{"reason", "FieldValueInvalid"}, {"message", rest}};
  if (!rest.empty() && rest[0] != '[' && colon != std::string::npos &&
      rest.substr(0, colon).find(' ') == std::string::npos) {
    cause = {{"reason", "FieldValueInvalid"}, {"message", rest.substr(colon + 2)}, {"field", rest.substr(0, colon)}};
  }
  details["causes"] = Json::array({cause});
  return details;
}
}  // namespace

Json StatusForError(const Error& e, const std::string& kind_plural, const std::string& name) {
  auto [code, reason] = HttpStatusOf(e);
  Json status = StatusFor(code, reason, e.message, kind_plural, name);
  if (code == 422) {
    if (Json details = InvalidDetails(e.message); !details.is_null()) status["details"] = details;
  }
  return status;
}

std::pair<int, std::string> HttpStatusOf(const Error& e) {
  if (e.http_status == 410) return {410, "Expired"};
  switch (e.code) {
    case ErrorCode::kNotFound: return {404, "NotFound"};
    case ErrorCode::kAlreadyExists: return {409, "AlreadyExists"};
    case ErrorCode::kConflict: return {409, "Conflict"};
    case ErrorCode::kInvalidArgument: return {e.http_status == 400 ? 400 : 422,
                                              e.http_status == 400 ? "BadRequest" : "Invalid"};
    case ErrorCode::kUnsupported: return {415, "UnsupportedMediaType"};
    case ErrorCode::kPermission: return {403, "Forbidden"};
    default: return {500, "InternalError"};
  }
}

ObjectStore::ObjectStore(size_t history_limit, const Clock& clock)
    : history_limit_(history_limit), clock_(clock) {
  rv_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(clock.Now().time_since_epoch()).count());
  compacted_rv_ = rv_;
}

std::string ObjectStore::Now() const { return FormatIso8601(clock_.Now()); }

void ObjectStore::Register(ResourceType t) {
  std::lock_guard l(mu_);
  std::string key = t.Key();
  bool is_ns = t.group.empty() && t.plural == "namespaces";
  kinds_[key].type = std::move(t);
  if (is_ns) {
    // Every cluster has these; namespaced creates check for their namespace.
    for (const char* n : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      Json obj = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                  {"metadata", {{"name", n}, {"uid", fmt::format("00000000-0000-4000-8000-{:012d}", ++uid_counter_)},
                                {"resourceVersion", std::to_string(++rv_)},
                                {"creationTimestamp", Now()},
                                {"labels", {{"kubernetes.io/metadata.name", n}}}}},
                  {"spec", {{"finalizers", {"kubernetes"}}}},
                  {"status", {{"phase", "Active"}}}};
      kinds_[key].objects[n] = obj;
    }
    compacted_rv_ = rv_;
  }
}

// Reads kinds_ directly: only constructed while mu_ is held.
class ObjectStore::LockedView : public StoreView {
 public:
  explicit LockedView(const std::map<std::string, Kind>& kinds) : kinds_(kinds) {}
  const Json* Get(const std::string& type_key, const std::string& ns, const std::string& name) const override {
    auto k = kinds_.find(type_key);
    if (k == kinds_.end()) return nullptr;
    auto it = k->second.objects.find(ObjKey(ns, name));
    return it == k->second.objects.end() ? nullptr : &it->second;
  }
  std::vector<const Json*> List(const std::string& type_key) const override {
    std::vector<const Json*> out;
    auto k = kinds_.find(type_key);
    if (k == kinds_.end()) return out;
    for (const auto& [key, obj] : k->second.objects) out.push_back(&obj);
    return out;
  }

 private:
  const std::map<std::string, Kind>& kinds_;
};

Status ObjectStore::Admit(WriteOp op, const ResourceType& t, Json* obj, const Json* old) const {
  if (!admission_) return Ok();
  return admission_(op, t, obj, old, LockedView(kinds_));
}

void ObjectStore::SetAdmission(Admission admission) {
  std::lock_guard l(mu_);
  admission_ = std::move(admission);
}

void ObjectStore::SetReaction(Reaction reaction) {
  std::lock_guard l(mu_);
  reaction_ = std::move(reaction);
  unreacted_.clear();
}

// The reactions' writes: the store's own locked paths, so they are admitted
// and recorded like any client's. Only constructed while mu_ is held.
class ObjectStore::LockedWriter : public StoreWriter {
 public:
  explicit LockedWriter(ObjectStore& store) : store_(store), view_(store.kinds_) {}
  const Json* Get(const std::string& type_key, const std::string& ns, const std::string& name) const override {
    return view_.Get(type_key, ns, name);
  }
  std::vector<const Json*> List(const std::string& type_key) const override { return view_.List(type_key); }
  Result<Json> Create(const std::string& type_key, const std::string& ns, Json obj) override {
    TERWAY_ASSIGN_OR_RETURN(Kind * k, KindOf(type_key));
    return store_.CreateLocked(*k, ns, std::move(obj), /*dry_run=*/false);
  }
  Result<Json> Update(const std::string& type_key, const std::string& ns, Json obj) override {
    TERWAY_ASSIGN_OR_RETURN(Kind * k, KindOf(type_key));
    const std::string name = NameOf(obj);
    return store_.UpdateLocked(*k, ns, name, std::move(obj), /*status_subresource=*/false, /*check_rv=*/true,
                               /*dry_run=*/false);
  }
  Status Delete(const std::string& type_key, const std::string& ns, const std::string& name) override {
    TERWAY_ASSIGN_OR_RETURN(Kind * k, KindOf(type_key));
    auto deleted = store_.DeleteLocked(*k, ns, name, /*dry_run=*/false);
    if (!deleted.ok()) return deleted.error();
    return Ok();
  }

 private:
  Result<Kind*> KindOf(const std::string& type_key) {
    auto it = store_.kinds_.find(type_key);
    if (it == store_.kinds_.end()) return Errorf(ErrorCode::kNotFound, "kind {} is not registered", type_key);
    return &it->second;
  }
  ObjectStore& store_;
  LockedView view_;
};

void ObjectStore::React() {
  // A reaction's writes land here again through Record; the outermost call
  // works the queue off, so reactions never nest.
  if (!reaction_ || reacting_) return;
  reacting_ = true;
  LockedWriter writer(*this);
  // A reaction that keeps answering its own changes is a bug; stop it
  // loudly rather than spin under the store's lock.
  constexpr int kMaxReactions = 100000;
  int n = 0;
  while (!unreacted_.empty()) {
    if (++n > kMaxReactions) {
      log::Error("lab_apiserver_reaction_loop pending={} last={} {}: reactions keep causing changes; dropped",
                 unreacted_.size(), unreacted_.front().type_key, unreacted_.front().type);
      unreacted_.clear();
      break;
    }
    StoredEvent ev = std::move(unreacted_.front());
    unreacted_.pop_front();
    reaction_(ev, writer);
  }
  reacting_ = false;
}

Status ObjectStore::Seed(const ResourceType& t, Json obj) {
  std::lock_guard l(mu_);
  Kind* k = KindOf(t);
  if (!k) return Errorf(ErrorCode::kNotFound, "seeding {}: kind not registered", t.Key());
  const std::string name = NameOf(obj);
  const std::string ns = t.namespaced ? obj["metadata"].value("namespace", "") : "";
  if (name.empty()) return Errorf(ErrorCode::kInvalidArgument, "seeding {}: object has no name", t.Key());
  TERWAY_TRY(Admit(WriteOp::kCreate, t, &obj, nullptr));
  obj["apiVersion"] = t.GroupVersion();
  obj["kind"] = t.kind;
  Json& meta = obj["metadata"];
  meta["uid"] = fmt::format("00000000-0000-4000-8000-{:012d}", ++uid_counter_);
  meta["creationTimestamp"] = Now();
  meta["generation"] = 1;
  meta["resourceVersion"] = std::to_string(++rv_);
  k->objects[ObjKey(ns, name)] = std::move(obj);
  // Before any watch could have started: part of the initial state, not an event.
  if (history_.empty()) compacted_rv_ = rv_;
  return Ok();
}

const ResourceType* ObjectStore::Find(const std::string& group, const std::string& version,
                                      const std::string& plural) const {
  std::lock_guard l(mu_);
  auto it = kinds_.find(group + "/" + plural);
  if (it == kinds_.end() || it->second.type.version != version) return nullptr;
  return &it->second.type;  // stable: kinds are never removed
}

std::vector<ResourceType> ObjectStore::Types() const {
  std::lock_guard l(mu_);
  std::vector<ResourceType> out;
  for (const auto& [k, v] : kinds_) out.push_back(v.type);
  return out;
}

ObjectStore::Kind* ObjectStore::KindOf(const ResourceType& t) {
  auto it = kinds_.find(t.Key());
  return it == kinds_.end() ? nullptr : &it->second;
}
const ObjectStore::Kind* ObjectStore::KindOf(const ResourceType& t) const {
  auto it = kinds_.find(t.Key());
  return it == kinds_.end() ? nullptr : &it->second;
}

void ObjectStore::Record(const std::string& type_key, const char* type, const Json& obj, Json old) {
  if (reaction_) unreacted_.push_back({rv_, type_key, type, obj, old});
  history_.push_back({rv_, type_key, type, obj, std::move(old)});
  while (history_.size() > history_limit_) {
    compacted_rv_ = history_.front().rv;
    history_.pop_front();
  }
  cv_.notify_all();
}

Result<Json> ObjectStore::Create(const ResourceType& t, const std::string& ns, Json obj, bool dry_run) {
  std::lock_guard l(mu_);
  Kind* k = KindOf(t);
  if (!k) return Errorf(ErrorCode::kNotFound, "the server could not find the requested resource");
  auto created = CreateLocked(*k, ns, std::move(obj), dry_run);
  React();
  return created;
}

Result<Json> ObjectStore::CreateLocked(Kind& kind, const std::string& ns, Json obj, bool dry_run) {
  const ResourceType& t = kind.type;
  Kind* k = &kind;
  if (!obj.is_object()) return MakeError(ErrorCode::kInvalidArgument, "body is not a JSON object");
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = Json::object();
  Json& meta = obj["metadata"];
  std::string name = NameOf(obj);
  if (name.empty() && meta.contains("generateName") && meta["generateName"].is_string()) {
    do {
      name = meta["generateName"].get<std::string>() + RandomSuffix();
    } while (k->objects.count(ObjKey(t.namespaced ? ns : "", name)));
    meta["name"] = name;
  }
  if (name.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} \"\" is invalid: metadata.name: Required value", t.kind);
  }
  if (!ValidName(name)) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{} \"{}\" is invalid: metadata.name: must be a lowercase RFC 1123 subdomain", t.kind,
                  name);
  }
  if (t.namespaced) {
    if (ns.empty()) return Errorf(ErrorCode::kInvalidArgument, "{} \"{}\": namespace required", t.kind, name);
    if (meta.contains("namespace") && meta["namespace"].is_string() && meta["namespace"] != ns) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "the namespace of the provided object does not match the namespace sent on the request");
    }
    auto nsk = kinds_.find("/namespaces");
    if (nsk != kinds_.end() && !nsk->second.objects.count(ns)) {
      Error e = Errorf(ErrorCode::kNotFound, "namespaces \"{}\" not found", ns);
      e.http_status = 404;
      return e;
    }
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  const std::string key = ObjKey(t.namespaced ? ns : "", name);
  if (k->objects.count(key)) {
    return Errorf(ErrorCode::kAlreadyExists, "{}{}\"{}\" already exists", t.plural,
                  t.group.empty() ? " " : "." + t.group + " ", name);
  }
  TERWAY_TRY(CheckStringMaps(t, name, meta));
  obj["apiVersion"] = t.GroupVersion();
  obj["kind"] = t.kind;
  TERWAY_TRY(Admit(WriteOp::kCreate, t, &obj, nullptr));
  const uint64_t serial = ++uid_counter_;
  meta["uid"] = fmt::format("{:08x}-{:04x}-4{:03x}-8000-{:012x}", static_cast<uint32_t>(std::random_device{}()),
                            serial & 0xffff, (serial >> 16) & 0xfff, serial);
  meta["creationTimestamp"] = Now();
  meta["generation"] = 1;
  meta.erase("deletionTimestamp");
  if (t.group.empty() && t.plural == "namespaces") {
    meta["labels"]["kubernetes.io/metadata.name"] = name;
    if (!obj.contains("status") || !obj["status"].is_object()) obj["status"] = Json::object();
    obj["status"]["phase"] = "Active";
  }
  if (dry_run) return obj;  // no version: nothing was stored
  meta["resourceVersion"] = std::to_string(++rv_);
  k->objects[key] = obj;
  Record(t.Key(), "ADDED", obj, nullptr);
  return obj;
}

Result<Json> ObjectStore::Get(const ResourceType& t, const std::string& ns, const std::string& name) const {
  std::lock_guard l(mu_);
  const Kind* k = KindOf(t);
  if (!k) return NotFound(t, name);
  auto it = k->objects.find(ObjKey(t.namespaced ? ns : "", name));
  if (it == k->objects.end()) return NotFound(t, name);
  return it->second;
}

ObjectStore::ListResult ObjectStore::List(const ResourceType& t, const std::string& ns,
                                          const std::function<bool(const Json&)>& filter) const {
  std::lock_guard l(mu_);
  ListResult r;
  r.rv = rv_;
  const Kind* k = KindOf(t);
  if (!k) return r;
  for (const auto& [key, obj] : k->objects) {
    if (t.namespaced && !ns.empty() && obj["metadata"].value("namespace", "") != ns) continue;
    if (filter && !filter(obj)) continue;
    r.items.push_back(obj);
  }
  return r;
}

Result<Json> ObjectStore::UpdateLocked(Kind& k, const std::string& ns, const std::string& name, Json obj,
                                       bool status_subresource, bool check_rv, bool dry_run) {
  const ResourceType& t = k.type;
  auto it = k.objects.find(ObjKey(t.namespaced ? ns : "", name));
  if (it == k.objects.end()) return NotFound(t, name);
  if (!obj.is_object()) return MakeError(ErrorCode::kInvalidArgument, "body is not a JSON object");
  if (!obj.contains("metadata") || !obj["metadata"].is_object()) obj["metadata"] = Json::object();
  const Json& old = it->second;
  if (NameOf(obj) != name) {
    return Errorf(ErrorCode::kInvalidArgument, "{} \"{}\": the name of the object does not match the URL",
                  t.kind, name);
  }
  if (check_rv) {
    const Json& m = obj["metadata"];
    if (m.contains("resourceVersion") && m["resourceVersion"].is_string() &&
        !m["resourceVersion"].get<std::string>().empty() &&
        m["resourceVersion"] != old["metadata"]["resourceVersion"]) {
      return Errorf(ErrorCode::kConflict,
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    t.plural, name);
    }
  }
  Json next;
  if (status_subresource) {
    next = old;
    next["status"] = obj.value("status", Json::object());
  } else {
    next = std::move(obj);
    if (t.has_status) {
      if (old.contains("status")) next["status"] = old["status"];
      else next.erase("status");
    }
    // Server-owned metadata stays the server's.
    Json& m = next["metadata"];
    for (const char* f : {"uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp"}) {
      if (old["metadata"].contains(f)) m[f] = old["metadata"][f];
      else m.erase(f);
    }
    TERWAY_TRY(CheckStringMaps(t, name, m));
    next["apiVersion"] = t.GroupVersion();
    next["kind"] = t.kind;
    TERWAY_TRY(Admit(WriteOp::kUpdate, t, &next, &old));
    if (SpecPart(next) != SpecPart(old)) next["metadata"]["generation"] = old["metadata"].value("generation", 1) + 1;
  }
  next["apiVersion"] = t.GroupVersion();
  next["kind"] = t.kind;
  next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"];
  if (next == old) return old;  // a no-op write: no new version, no event (as the API server does)
  if (dry_run) return next;
  next["metadata"]["resourceVersion"] = std::to_string(++rv_);
  Json prev = std::move(it->second);
  it->second = next;
  Record(t.Key(), "MODIFIED", next, std::move(prev));
  return next;
}

Result<Json> ObjectStore::Update(const ResourceType& t, const std::string& ns, const std::string& name,
                                 Json obj, bool status_subresource, bool dry_run) {
  std::lock_guard l(mu_);
  Kind* k = KindOf(t);
  if (!k) return NotFound(t, name);
  auto updated = UpdateLocked(*k, ns, name, std::move(obj), status_subresource, true, dry_run);
  React();
  return updated;
}

Result<Json> ObjectStore::Mutate(const ResourceType& t, const std::string& ns, const std::string& name,
                                 const std::function<Status(Json&)>& fn, bool status_subresource, bool dry_run) {
  std::lock_guard l(mu_);
  Kind* k = KindOf(t);
  if (!k) return NotFound(t, name);
  auto it = k->objects.find(ObjKey(t.namespaced ? ns : "", name));
  if (it == k->objects.end()) return NotFound(t, name);
  Json obj = it->second;
  TERWAY_TRY(fn(obj));
  // A patch carrying metadata.resourceVersion is conditional on it, as in
  // Kubernetes; otherwise it applies to the current version.
  auto updated = UpdateLocked(*k, ns, name, std::move(obj), status_subresource, true, dry_run);
  React();
  return updated;
}

Result<Json> ObjectStore::Delete(const ResourceType& t, const std::string& ns, const std::string& name,
                                 bool dry_run) {
  std::lock_guard l(mu_);
  Kind* k = KindOf(t);
  if (!k) return NotFound(t, name);
  auto deleted = DeleteLocked(*k, ns, name, dry_run);
  React();
  return deleted;
}

Result<Json> ObjectStore::DeleteLocked(Kind& kind, const std::string& ns, const std::string& name, bool dry_run) {
  const ResourceType& t = kind.type;
  Kind* k = &kind;
  auto it = k->objects.find(ObjKey(t.namespaced ? ns : "", name));
  if (it == k->objects.end()) return NotFound(t, name);
  TERWAY_TRY(Admit(WriteOp::kDelete, t, nullptr, &it->second));
  if (dry_run) return it->second;
  Json obj = std::move(it->second);
  k->objects.erase(it);
  // The deletion is a change of its own: it gets a new resourceVersion.
  obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
  Record(t.Key(), "DELETED", obj, nullptr);
  return obj;
}

uint64_t ObjectStore::CurrentRv() const {
  std::lock_guard l(mu_);
  return rv_;
}

uint64_t ObjectStore::CompactedRv() const {
  std::lock_guard l(mu_);
  return compacted_rv_;
}

Result<std::vector<StoredEvent>> ObjectStore::EventsAfter(const std::string& type_key, uint64_t after,
                                                          uint64_t* upto) const {
  std::lock_guard l(mu_);
  if (after < compacted_rv_ || after > rv_) {
    // Older than the history, or newer than this store has ever been (a
    // client from before a restart with reset state): either way the client
    // must relist.
    Error e = Errorf(ErrorCode::kConflict, "too old resource version: {} ({})", after, compacted_rv_);
    e.http_status = 410;
    return e;
  }
  std::vector<StoredEvent> out;
  // History is ordered by rv; find the first event after `after`.
  auto it = std::upper_bound(history_.begin(), history_.end(), after,
                             [](uint64_t v, const StoredEvent& e) { return v < e.rv; });
  for (; it != history_.end(); ++it) {
    if (it->type_key == type_key) out.push_back(*it);
  }
  *upto = rv_;
  return out;
}

void ObjectStore::WaitForChange(uint64_t after, uint64_t generation, std::chrono::milliseconds timeout,
                                const std::atomic<bool>* abort) const {
  std::unique_lock l(mu_);
  cv_.wait_for(l, timeout, [&] {
    return rv_ > after || close_generation_ != generation || (abort && abort->load());
  });
}

uint64_t ObjectStore::close_generation() const {
  std::lock_guard l(mu_);
  return close_generation_;
}

void ObjectStore::CloseAllWatches() {
  {
    std::lock_guard l(mu_);
    close_generation_++;
  }
  cv_.notify_all();
}

void ObjectStore::Compact() {
  {
    std::lock_guard l(mu_);
    history_.clear();
    compacted_rv_ = rv_;
    close_generation_++;
  }
  cv_.notify_all();
}

void ObjectStore::CountRead(const std::string& resource, const std::string& verb) {
  std::lock_guard l(reads_mu_);
  reads_[resource][verb]++;
}

Json ObjectStore::Reads() const {
  std::lock_guard l(reads_mu_);
  Json out = Json::object();
  for (const auto& [resource, verbs] : reads_) out[resource] = verbs;
  return out;
}

}  // namespace terway::lab
