#include "tools/lab/apiserver/table.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "common/strings.h"

namespace terway::lab {
namespace {

struct Column {
  const char* name;
  const char* type;
  const char* description;
  int priority = 0;  // 1: shown only by `kubectl get -o wide`
  const char* format = "";
};

// One printer: its columns and the cells of one object (always the wide
// set, as the API server generates them; kubectl hides priority-1 columns).
struct Printer {
  std::vector<Column> columns;
  std::function<Json(const Json& obj, Clock::TimePoint now)> cells;
};

const Json& At(const Json& obj, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* j = &obj;
  for (const char* k : path) {
    if (!j->is_object() || !j->contains(k)) return kNull;
    j = &(*j)[k];
  }
  return *j;
}

std::string Str(const Json& j) { return j.is_string() ? j.get<std::string>() : ""; }
std::string OrNone(const std::string& s, const char* none = "<none>") { return s.empty() ? none : s; }
const Json& Array(const Json& j) {
  static const Json kEmpty = Json::array();
  return j.is_array() ? j : kEmpty;
}

// "<unknown>" for a missing time, like the printers' translateTimestampSince.
std::string Since(const Json& timestamp, Clock::TimePoint now) {
  Clock::TimePoint t;
  if (!timestamp.is_string() || !ParseIso8601(timestamp.get<std::string>(), &t)) return "<unknown>";
  return HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - t));
}
std::string Age(const Json& obj, Clock::TimePoint now) { return Since(At(obj, {"metadata", "creationTimestamp"}), now); }
std::string Name(const Json& obj) { return Str(At(obj, {"metadata", "name"})); }

const Column kNameColumn{"Name", "string", "Name must be unique within a namespace.", 0, "name"};
const Column kAgeColumn{"Age", "string", "Time since the object was created (metadata.creationTimestamp).", 0};

// --- Pod (printPod): READY counts ready running containers, STATUS the
// phase refined by the containers' states, RESTARTS their restart counts.
struct ContainerTally {
  int restarts = 0;
  int ready = 0;
  Clock::TimePoint last_restart{};
};

void NoteLastTermination(const Json& status, ContainerTally* tally) {
  Clock::TimePoint finished;
  const Json& at = At(status, {"lastState", "terminated", "finishedAt"});
  if (at.is_string() && ParseIso8601(at.get<std::string>(), &finished) && finished > tally->last_restart) {
    tally->last_restart = finished;
  }
}

std::string TerminatedReason(const Json& terminated, const std::string& prefix) {
  if (!Str(terminated["reason"]).empty()) return prefix + Str(terminated["reason"]);
  if (terminated.value("signal", 0) != 0) return fmt::format("{}Signal:{}", prefix, terminated.value("signal", 0));
  return fmt::format("{}ExitCode:{}", prefix, terminated.value("exitCode", 0));
}

bool HasTrueCondition(const Json& pod, const std::string& type) {
  for (const auto& c : Array(At(pod, {"status", "conditions"}))) {
    if (Str(c["type"]) == type && Str(c["status"]) == "True") return true;
  }
  return false;
}

Json PodCells(const Json& pod, Clock::TimePoint now) {
  const Json& spec = At(pod, {"spec"});
  const Json& status = At(pod, {"status"});
  const std::string phase = Str(At(status, {"phase"}));
  std::string reason = Str(At(status, {"reason"})).empty() ? phase : Str(At(status, {"reason"}));
  for (const auto& c : Array(At(status, {"conditions"}))) {
    if (Str(c["type"]) == "PodScheduled" && Str(c["reason"]) == "SchedulingGated") reason = "SchedulingGated";
  }
  int total = static_cast<int>(Array(At(spec, {"containers"})).size());
  // Sidecars (init containers that restart Always) count as containers.
  std::set<std::string> sidecars;
  for (const auto& c : Array(At(spec, {"initContainers"}))) {
    if (Str(c["restartPolicy"]) == "Always") {
      sidecars.insert(Str(c["name"]));
      total++;
    }
  }
  ContainerTally all, sidecar;
  bool initializing = false;
  const Json& init_statuses = Array(At(status, {"initContainerStatuses"}));
  const size_t init_count = Array(At(spec, {"initContainers"})).size();
  for (size_t i = 0; i < init_statuses.size(); i++) {
    const Json& c = init_statuses[i];
    const bool is_sidecar = sidecars.count(Str(c["name"])) > 0;
    all.restarts += c.value("restartCount", 0);
    NoteLastTermination(c, &all);
    if (is_sidecar) {
      sidecar.restarts += c.value("restartCount", 0);
      NoteLastTermination(c, &sidecar);
    }
    const Json& terminated = At(c, {"state", "terminated"});
    const Json& waiting = At(c, {"state", "waiting"});
    if (terminated.is_object() && terminated.value("exitCode", 0) == 0) continue;
    if (is_sidecar && c.value("started", false)) {
      if (c.value("ready", false)) all.ready++;
      continue;
    }
    if (terminated.is_object()) {
      reason = TerminatedReason(terminated, "Init:");
    } else if (waiting.is_object() && !Str(waiting["reason"]).empty() && Str(waiting["reason"]) != "PodInitializing") {
      reason = "Init:" + Str(waiting["reason"]);
    } else {
      reason = fmt::format("Init:{}/{}", i, init_count);
    }
    initializing = true;
    break;
  }
  ContainerTally shown = all;
  if (!initializing || HasTrueCondition(pod, "Initialized")) {
    shown = sidecar;
    shown.ready = all.ready;
    bool has_running = false;
    const Json& statuses = Array(At(status, {"containerStatuses"}));
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      const Json& c = *it;
      shown.restarts += c.value("restartCount", 0);
      NoteLastTermination(c, &shown);
      const Json& waiting = At(c, {"state", "waiting"});
      const Json& terminated = At(c, {"state", "terminated"});
      if (waiting.is_object() && !Str(waiting["reason"]).empty()) {
        reason = Str(waiting["reason"]);
      } else if (terminated.is_object()) {
        reason = TerminatedReason(terminated, "");
      } else if (c.value("ready", false) && At(c, {"state", "running"}).is_object()) {
        has_running = true;
        shown.ready++;
      }
    }
    if (reason == "Completed" && has_running) reason = HasTrueCondition(pod, "Ready") ? "Running" : "NotReady";
  }
  const bool deleting = !At(pod, {"metadata", "deletionTimestamp"}).is_null();
  if (deleting && Str(At(status, {"reason"})) == "NodeLost") {
    reason = "Unknown";
  } else if (deleting && phase != "Succeeded" && phase != "Failed") {
    reason = "Terminating";
  }
  std::string restarts = std::to_string(shown.restarts);
  if (shown.restarts != 0 && shown.last_restart != Clock::TimePoint{}) {
    restarts += " (" +
                HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - shown.last_restart)) +
                " ago)";
  }
  const Json& ips = Array(At(status, {"podIPs"}));
  std::string ip = ips.empty() ? "" : Str(ips[0]["ip"]);
  std::string gates = "<none>";
  if (const Json& rg = Array(At(spec, {"readinessGates"})); !rg.empty()) {
    int true_conditions = 0;
    for (const auto& g : rg) true_conditions += HasTrueCondition(pod, Str(g["conditionType"])) ? 1 : 0;
    gates = fmt::format("{}/{}", true_conditions, rg.size());
  }
  return Json::array({Name(pod), fmt::format("{}/{}", shown.ready, total), reason, restarts, Age(pod, now),
                      OrNone(ip), OrNone(Str(At(spec, {"nodeName"}))),
                      OrNone(Str(At(status, {"nominatedNodeName"}))), gates});
}

// --- Node (printNode)
std::string NodeAddress(const Json& node, const std::string& type) {
  for (const auto& a : Array(At(node, {"status", "addresses"}))) {
    if (Str(a["type"]) == type) return Str(a["address"]);
  }
  return "<none>";
}

Json NodeCells(const Json& node, Clock::TimePoint now) {
  std::vector<std::string> status;
  for (const auto& c : Array(At(node, {"status", "conditions"}))) {
    if (Str(c["type"]) == "Ready") status = {Str(c["status"]) == "True" ? "Ready" : "NotReady"};
  }
  if (status.empty()) status.push_back("Unknown");
  if (At(node, {"spec", "unschedulable"}) == true) status.push_back("SchedulingDisabled");
  std::set<std::string> roles;
  const Json& labels = At(node, {"metadata", "labels"});
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      const std::string prefix = "node-role.kubernetes.io/";
      if (StartsWith(it.key(), prefix) && it.key().size() > prefix.size()) roles.insert(it.key().substr(prefix.size()));
      if (it.key() == "kubernetes.io/role" && !Str(it.value()).empty()) roles.insert(Str(it.value()));
    }
  }
  const Json& info = At(node, {"status", "nodeInfo"});
  auto unknown = [&](const char* f) { return OrNone(Str(At(info, {f})), "<unknown>"); };
  return Json::array({Name(node), Join(status, ","), OrNone(Join({roles.begin(), roles.end()}, ",")), Age(node, now),
                      Str(At(info, {"kubeletVersion"})), NodeAddress(node, "InternalIP"),
                      NodeAddress(node, "ExternalIP"), unknown("osImage"), unknown("kernelVersion"),
                      unknown("containerRuntimeVersion")});
}

// metav1.FormatLabelSelector: "app=web,tier in (a,b)", "<none>" for empty.
std::string FormatLabelSelector(const Json& sel) {
  std::vector<std::string> parts;
  const Json& labels = At(sel, {"matchLabels"});
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) parts.push_back(it.key() + "=" + Str(it.value()));
  }
  for (const auto& e : Array(At(sel, {"matchExpressions"}))) {
    const std::string op = Str(e["operator"]), key = Str(e["key"]);
    std::vector<std::string> values;
    for (const auto& v : Array(e["values"])) values.push_back(Str(v));
    std::sort(values.begin(), values.end());
    if (op == "In") parts.push_back(key + " in (" + Join(values, ",") + ")");
    else if (op == "NotIn") parts.push_back(key + " notin (" + Join(values, ",") + ")");
    else if (op == "Exists") parts.push_back(key);
    else if (op == "DoesNotExist") parts.push_back("!" + key);
  }
  return parts.empty() ? "<none>" : Join(parts, ",");
}

Json EventCells(const Json& ev, Clock::TimePoint now) {
  std::string first = At(ev, {"firstTimestamp"}).is_string() ? Since(ev["firstTimestamp"], now)
                                                               : Since(At(ev, {"eventTime"}), now);
  std::string last = At(ev, {"lastTimestamp"}).is_string() ? Since(ev["lastTimestamp"], now) : first;
  int64_t count = At(ev, {"count"}).is_number() ? ev["count"].get<int64_t>() : 0;
  if (At(ev, {"series"}).is_object()) {
    last = Since(At(ev, {"series", "lastObservedTime"}), now);
    count = At(ev, {"series", "count"}).is_number() ? ev["series"]["count"].get<int64_t>() : count;
  } else if (count == 0) {
    count = 1;  // singleton events of the events.k8s.io API carry no count
  }
  const Json& involved = At(ev, {"involvedObject"});
  std::string target = Str(At(involved, {"kind"}));
  std::transform(target.begin(), target.end(), target.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!Str(At(involved, {"name"})).empty()) target += "/" + Str(involved["name"]);
  std::string component = Str(At(ev, {"source", "component"}));
  if (component.empty()) component = Str(At(ev, {"reportingComponent"}));
  std::string instance = Str(At(ev, {"source", "host"}));
  if (instance.empty()) instance = Str(At(ev, {"reportingInstance"}));
  std::string source = instance.empty() ? component : component + ", " + instance;
  std::string message = Str(At(ev, {"message"}));
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  return Json::array({last, Str(At(ev, {"type"})), Str(At(ev, {"reason"})), target,
                      Str(At(involved, {"fieldPath"})), source, message, first, count, Name(ev)});
}

// The printers, by "<group>/<kind>".
const std::map<std::string, Printer>& Printers() {
  static const std::map<std::string, Printer> printers = {
      {"/Pod",
       {{kNameColumn,
         {"Ready", "string", "The aggregate readiness state of this pod for accepting traffic."},
         {"Status", "string", "The aggregate status of the containers in this pod."},
         {"Restarts", "string", "Container restarts of this pod, and how long ago the last was."},
         kAgeColumn,
         {"IP", "string", "The pod's IP address (status.podIPs[0]).", 1},
         {"Node", "string", "The node the pod is bound to (spec.nodeName).", 1},
         {"Nominated Node", "string", "The node the scheduler nominated for preemption.", 1},
         {"Readiness Gates", "string", "True readiness gates of the pod's readiness gates.", 1}},
        PodCells}},
      {"/Node",
       {{kNameColumn,
         {"Status", "string", "The status of the node"},
         {"Roles", "string", "The roles of the node"},
         kAgeColumn,
         {"Version", "string", "Kubelet version reported by the node."},
         {"Internal-IP", "string", "The node's first InternalIP address.", 1},
         {"External-IP", "string", "The node's first ExternalIP address.", 1},
         {"OS-Image", "string", "OS image reported by the node.", 1},
         {"Kernel-Version", "string", "Kernel version reported by the node.", 1},
         {"Container-Runtime", "string", "Container runtime version reported by the node.", 1}},
        NodeCells}},
      {"/Namespace",
       {{kNameColumn, {"Status", "string", "The status of the namespace"}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), Str(At(o, {"status", "phase"})), Age(o, now)});
        }}},
      {"/ConfigMap",
       {{kNameColumn, {"Data", "string", "Number of keys in data and binaryData."}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          int64_t n = 0;
          for (const char* f : {"data", "binaryData"}) n += At(o, {f}).is_object() ? static_cast<int64_t>(o[f].size()) : 0;
          return Json::array({Name(o), n, Age(o, now)});
        }}},
      {"/Event",
       {{{"Last Seen", "string", "Time since the event was last seen."},
         {"Type", "string", "Type of this event (Normal, Warning)."},
         {"Reason", "string", "Why the event was emitted."},
         {"Object", "string", "The object this event is about."},
         {"Subobject", "string", "The part of the object this event is about.", 1},
         {"Source", "string", "The component (and host) that reported the event.", 1},
         {"Message", "string", "A human-readable description of the event."},
         {"First Seen", "string", "Time since the event was first seen.", 1},
         {"Count", "integer", "How many times the event has occurred.", 1},
         {"Name", "string", "The event's name.", 1, "name"}},
        EventCells}},
      {"networking.k8s.io/NetworkPolicy",
       {{kNameColumn, {"Pod-Selector", "string", "The pods the policy selects (spec.podSelector)."}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), FormatLabelSelector(At(o, {"spec", "podSelector"})), Age(o, now)});
        }}},
      // Calico's kinds: the additionalPrinterColumns of its CRDs (a missing
      // value is a null cell, printed <none>; an Age column is a CRD
      // "date" column, printed as an age).
      {"projectcalico.org/NetworkPolicy",
       {{kNameColumn, {"Tier", "string", ""}, {"Order", "number", ""}},
        [](const Json& o, Clock::TimePoint) {
          return Json::array({Name(o), At(o, {"spec", "tier"}), At(o, {"spec", "order"})});
        }}},
      {"projectcalico.org/GlobalNetworkPolicy",
       {{kNameColumn, {"Tier", "string", ""}, {"Order", "number", ""}, {"Age", "date", ""}},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), At(o, {"spec", "tier"}), At(o, {"spec", "order"}), Age(o, now)});
        }}},
      {"projectcalico.org/Tier",
       {{kNameColumn,
         {"Order", "integer", "Order in which the tier is applied"},
         {"DefaultAction", "string", "Default action for the tier"},
         {"Status", "string", "Current status of the tier"}},
        [](const Json& o, Clock::TimePoint) {
          Json ready;
          for (const auto& c : Array(At(o, {"status", "conditions"}))) {
            if (Str(c["type"]) == "Ready") ready = c.contains("reason") ? c["reason"] : Json();
          }
          return Json::array({Name(o), At(o, {"spec", "order"}), At(o, {"spec", "defaultAction"}), ready});
        }}},
      {"projectcalico.org/GlobalNetworkSet",
       {{kNameColumn, {"Age", "date", ""}},
        [](const Json& o, Clock::TimePoint now) { return Json::array({Name(o), Age(o, now)}); }}},
  };
  return printers;
}

// Kinds without a printer of their own: NAME and AGE, as the API server
// shows a CRD that declares no columns.
const Printer& DefaultPrinter() {
  static const Printer p{{kNameColumn, {"Age", "date", "Time since the object was created."}},
                         [](const Json& o, Clock::TimePoint now) { return Json::array({Name(o), Age(o, now)}); }};
  return p;
}

Json RowObjectOf(const Json& obj, RowObject mode, const std::string& table_version) {
  if (mode == RowObject::kObject) return obj;
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/" + table_version},
          {"metadata", obj.contains("metadata") ? obj["metadata"] : Json::object()}};
}

// Row conditions as the pod printer sets them: kubectl can tell finished pods.
Json RowConditions(const ResourceType& t, const Json& obj) {
  if (!t.group.empty() || t.kind != "Pod") return nullptr;
  const std::string phase = Str(At(obj, {"status", "phase"}));
  if (phase != "Succeeded" && phase != "Failed") return nullptr;
  return Json::array({{{"type", "Completed"},
                       {"status", "True"},
                       {"reason", phase},
                       {"message", phase == "Succeeded" ? "The pod has completed successfully."
                                                        : "The pod failed."}}});
}

}  // namespace

Result<RowObject> ParseIncludeObject(const std::string& text) {
  if (text.empty() || text == "Metadata") return RowObject::kMetadata;
  if (text == "None") return RowObject::kNone;
  if (text == "Object") return RowObject::kObject;
  return Errorf(ErrorCode::kInvalidArgument, "includeObject must be None, Metadata or Object, not {:?}", text);
}

Json TableOf(const ResourceType& t, const std::vector<Json>& objects, Clock::TimePoint now, RowObject row_object,
             const std::string& table_version, const std::string& resource_version) {
  auto it = Printers().find(t.group + "/" + t.kind);
  const Printer& p = it == Printers().end() ? DefaultPrinter() : it->second;
  Json columns = Json::array();
  for (const auto& c : p.columns) {
    columns.push_back({{"name", c.name},
                       {"type", c.type},
                       {"format", c.format},
                       {"description", c.description},
                       {"priority", c.priority}});
  }
  Json rows = Json::array();
  for (const auto& obj : objects) {
    Json row = {{"cells", p.cells(obj, now)}};
    if (Json conditions = RowConditions(t, obj); !conditions.is_null()) row["conditions"] = conditions;
    if (row_object != RowObject::kNone) row["object"] = RowObjectOf(obj, row_object, table_version);
    rows.push_back(std::move(row));
  }
  Json meta = Json::object();
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/" + table_version},
          {"metadata", meta},
          {"columnDefinitions", columns},
          {"rows", rows}};
}

std::string HumanDuration(std::chrono::seconds d) {
  const int64_t seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return fmt::format("{}s", seconds);
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    return seconds % 60 == 0 ? fmt::format("{}m", minutes) : fmt::format("{}m{}s", minutes, seconds % 60);
  }
  if (minutes < 60 * 3) return fmt::format("{}m", minutes);
  const int64_t hours = minutes / 60;
  if (hours < 8) return minutes % 60 == 0 ? fmt::format("{}h", hours) : fmt::format("{}h{}m", hours, minutes % 60);
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) return hours % 24 == 0 ? fmt::format("{}d", hours / 24) : fmt::format("{}d{}h", hours / 24, hours % 24);
  if (hours < 24 * 365 * 2) return fmt::format("{}d", hours / 24);
  if (hours < 24 * 365 * 8) {
    const int64_t days = (hours / 24) % 365;
    return days == 0 ? fmt::format("{}y", hours / 24 / 365) : fmt::format("{}y{}d", hours / 24 / 365, days);
  }
  return fmt::format("{}y", hours / 24 / 365);
}

std::string TableVersionAccepted(const std::string& accept) {
  // Media types in the client's order of preference; the first one this
  // server can produce wins (a plain JSON one means: no table).
  for (const auto& entry : Split(accept, ',', /*skip_empty=*/true)) {
    std::vector<std::string> parts = Split(entry, ';', /*skip_empty=*/true);
    if (parts.empty()) continue;
    const std::string media(Trim(parts[0]));
    if (media != "application/json" && media != "*/*" && media != "application/*") continue;
    std::map<std::string, std::string> params;
    for (size_t i = 1; i < parts.size(); i++) {
      auto eq = parts[i].find('=');
      if (eq == std::string::npos) continue;
      params[std::string(Trim(std::string_view(parts[i]).substr(0, eq)))] =
          std::string(Trim(std::string_view(parts[i]).substr(eq + 1)));
    }
    if (!params.count("as")) return "";
    if (params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1")) {
      return params["v"];
    }
  }
  return "";
}

}  // namespace terway::lab
