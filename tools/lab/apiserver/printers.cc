#include "tools/lab/apiserver/printers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/strings.h"
#include "tools/lab/apiserver/json_path.h"
#include "tools/lab/apiserver/table.h"

namespace terway::lab {
namespace {

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
std::string Age(const Json& obj, Clock::TimePoint now) {
  return Since(JsonAt(obj, {"metadata", "creationTimestamp"}), now);
}
std::string Name(const Json& obj) { return JsonStr(JsonAt(obj, {"metadata", "name"})); }

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
  const Json& at = JsonAt(status, {"lastState", "terminated", "finishedAt"});
  if (at.is_string() && ParseIso8601(at.get<std::string>(), &finished) && finished > tally->last_restart) {
    tally->last_restart = finished;
  }
}

std::string TerminatedReason(const Json& terminated, const std::string& prefix) {
  if (!JsonStr(terminated["reason"]).empty()) return prefix + JsonStr(terminated["reason"]);
  if (terminated.value("signal", 0) != 0) return fmt::format("{}Signal:{}", prefix, terminated.value("signal", 0));
  return fmt::format("{}ExitCode:{}", prefix, terminated.value("exitCode", 0));
}

bool HasTrueCondition(const Json& pod, const std::string& type) {
  for (const auto& c : Array(JsonAt(pod, {"status", "conditions"}))) {
    if (JsonStr(c["type"]) == type && JsonStr(c["status"]) == "True") return true;
  }
  return false;
}

Json PodCells(const Json& pod, Clock::TimePoint now) {
  const Json& spec = JsonAt(pod, {"spec"});
  const Json& status = JsonAt(pod, {"status"});
  const std::string phase = JsonStr(JsonAt(status, {"phase"}));
  std::string reason = JsonStr(JsonAt(status, {"reason"})).empty() ? phase : JsonStr(JsonAt(status, {"reason"}));
  for (const auto& c : Array(JsonAt(status, {"conditions"}))) {
    if (JsonStr(c["type"]) == "PodScheduled" && JsonStr(c["reason"]) == "SchedulingGated") reason = "SchedulingGated";
  }
  int total = static_cast<int>(Array(JsonAt(spec, {"containers"})).size());
  // Sidecars (init containers that restart Always) count as containers.
  std::set<std::string> sidecars;
  for (const auto& c : Array(JsonAt(spec, {"initContainers"}))) {
    if (JsonStr(c["restartPolicy"]) == "Always") {
      sidecars.insert(JsonStr(c["name"]));
      total++;
    }
  }
  ContainerTally all, sidecar;
  bool initializing = false;
  const Json& init_statuses = Array(JsonAt(status, {"initContainerStatuses"}));
  const size_t init_count = Array(JsonAt(spec, {"initContainers"})).size();
  for (size_t i = 0; i < init_statuses.size(); i++) {
    const Json& c = init_statuses[i];
    const bool is_sidecar = sidecars.count(JsonStr(c["name"])) > 0;
    all.restarts += c.value("restartCount", 0);
    NoteLastTermination(c, &all);
    if (is_sidecar) {
      sidecar.restarts += c.value("restartCount", 0);
      NoteLastTermination(c, &sidecar);
    }
    const Json& terminated = JsonAt(c, {"state", "terminated"});
    const Json& waiting = JsonAt(c, {"state", "waiting"});
    if (terminated.is_object() && terminated.value("exitCode", 0) == 0) continue;
    if (is_sidecar && c.value("started", false)) {
      if (c.value("ready", false)) all.ready++;
      continue;
    }
    if (terminated.is_object()) {
      reason = TerminatedReason(terminated, "Init:");
    } else if (waiting.is_object() && !JsonStr(waiting["reason"]).empty() && JsonStr(waiting["reason"]) != "PodInitializing") {
      reason = "Init:" + JsonStr(waiting["reason"]);
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
    const Json& statuses = Array(JsonAt(status, {"containerStatuses"}));
    for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
      const Json& c = *it;
      shown.restarts += c.value("restartCount", 0);
      NoteLastTermination(c, &shown);
      const Json& waiting = JsonAt(c, {"state", "waiting"});
      const Json& terminated = JsonAt(c, {"state", "terminated"});
      if (waiting.is_object() && !JsonStr(waiting["reason"]).empty()) {
        reason = JsonStr(waiting["reason"]);
      } else if (terminated.is_object()) {
        reason = TerminatedReason(terminated, "");
      } else if (c.value("ready", false) && JsonAt(c, {"state", "running"}).is_object()) {
        has_running = true;
        shown.ready++;
      }
    }
    if (reason == "Completed" && has_running) reason = HasTrueCondition(pod, "Ready") ? "Running" : "NotReady";
  }
  const bool deleting = !JsonAt(pod, {"metadata", "deletionTimestamp"}).is_null();
  if (deleting && JsonStr(JsonAt(status, {"reason"})) == "NodeLost") {
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
  const Json& ips = Array(JsonAt(status, {"podIPs"}));
  std::string ip = ips.empty() ? "" : JsonStr(ips[0]["ip"]);
  std::string gates = "<none>";
  if (const Json& rg = Array(JsonAt(spec, {"readinessGates"})); !rg.empty()) {
    int true_conditions = 0;
    for (const auto& g : rg) true_conditions += HasTrueCondition(pod, JsonStr(g["conditionType"])) ? 1 : 0;
    gates = fmt::format("{}/{}", true_conditions, rg.size());
  }
  return Json::array({Name(pod), fmt::format("{}/{}", shown.ready, total), reason, restarts, Age(pod, now),
                      OrNone(ip), OrNone(JsonStr(JsonAt(spec, {"nodeName"}))),
                      OrNone(JsonStr(JsonAt(status, {"nominatedNodeName"}))), gates});
}

// --- Node (printNode)
std::string NodeAddress(const Json& node, const std::string& type) {
  for (const auto& a : Array(JsonAt(node, {"status", "addresses"}))) {
    if (JsonStr(a["type"]) == type) return JsonStr(a["address"]);
  }
  return "<none>";
}

Json NodeCells(const Json& node, Clock::TimePoint now) {
  std::vector<std::string> status;
  for (const auto& c : Array(JsonAt(node, {"status", "conditions"}))) {
    if (JsonStr(c["type"]) == "Ready") status = {JsonStr(c["status"]) == "True" ? "Ready" : "NotReady"};
  }
  if (status.empty()) status.push_back("Unknown");
  if (JsonAt(node, {"spec", "unschedulable"}) == true) status.push_back("SchedulingDisabled");
  std::set<std::string> roles;
  const Json& labels = JsonAt(node, {"metadata", "labels"});
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      const std::string prefix = "node-role.kubernetes.io/";
      if (StartsWith(it.key(), prefix) && it.key().size() > prefix.size()) roles.insert(it.key().substr(prefix.size()));
      if (it.key() == "kubernetes.io/role" && !JsonStr(it.value()).empty()) roles.insert(JsonStr(it.value()));
    }
  }
  const Json& info = JsonAt(node, {"status", "nodeInfo"});
  auto unknown = [&](const char* f) { return OrNone(JsonStr(JsonAt(info, {f})), "<unknown>"); };
  return Json::array({Name(node), Join(status, ","), OrNone(Join({roles.begin(), roles.end()}, ",")), Age(node, now),
                      JsonStr(JsonAt(info, {"kubeletVersion"})), NodeAddress(node, "InternalIP"),
                      NodeAddress(node, "ExternalIP"), unknown("osImage"), unknown("kernelVersion"),
                      unknown("containerRuntimeVersion")});
}

// metav1.FormatLabelSelector: "app=web,tier in (a,b)", "<none>" for empty.
std::string FormatLabelSelector(const Json& sel) {
  std::vector<std::string> parts;
  const Json& labels = JsonAt(sel, {"matchLabels"});
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) parts.push_back(it.key() + "=" + JsonStr(it.value()));
  }
  for (const auto& e : Array(JsonAt(sel, {"matchExpressions"}))) {
    const std::string op = JsonStr(e["operator"]), key = JsonStr(e["key"]);
    std::vector<std::string> values;
    for (const auto& v : Array(e["values"])) values.push_back(JsonStr(v));
    std::sort(values.begin(), values.end());
    if (op == "In") parts.push_back(key + " in (" + Join(values, ",") + ")");
    else if (op == "NotIn") parts.push_back(key + " notin (" + Join(values, ",") + ")");
    else if (op == "Exists") parts.push_back(key);
    else if (op == "DoesNotExist") parts.push_back("!" + key);
  }
  return parts.empty() ? "<none>" : Join(parts, ",");
}

Json EventCells(const Json& ev, Clock::TimePoint now) {
  std::string first = JsonAt(ev, {"firstTimestamp"}).is_string() ? Since(ev["firstTimestamp"], now)
                                                               : Since(JsonAt(ev, {"eventTime"}), now);
  std::string last = JsonAt(ev, {"lastTimestamp"}).is_string() ? Since(ev["lastTimestamp"], now) : first;
  int64_t count = JsonAt(ev, {"count"}).is_number() ? ev["count"].get<int64_t>() : 0;
  if (JsonAt(ev, {"series"}).is_object()) {
    last = Since(JsonAt(ev, {"series", "lastObservedTime"}), now);
    count = JsonAt(ev, {"series", "count"}).is_number() ? ev["series"]["count"].get<int64_t>() : count;
  } else if (count == 0) {
    count = 1;  // singleton events of the events.k8s.io API carry no count
  }
  const Json& involved = JsonAt(ev, {"involvedObject"});
  std::string target = JsonStr(JsonAt(involved, {"kind"}));
  std::transform(target.begin(), target.end(), target.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!JsonStr(JsonAt(involved, {"name"})).empty()) target += "/" + JsonStr(involved["name"]);
  std::string component = JsonStr(JsonAt(ev, {"source", "component"}));
  if (component.empty()) component = JsonStr(JsonAt(ev, {"reportingComponent"}));
  std::string instance = JsonStr(JsonAt(ev, {"source", "host"}));
  if (instance.empty()) instance = JsonStr(JsonAt(ev, {"reportingInstance"}));
  std::string source = instance.empty() ? component : component + ", " + instance;
  std::string message = JsonStr(JsonAt(ev, {"message"}));
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) message.pop_back();
  return Json::array({last, JsonStr(JsonAt(ev, {"type"})), JsonStr(JsonAt(ev, {"reason"})), target,
                      JsonStr(JsonAt(involved, {"fieldPath"})), source, message, first, count, Name(ev)});
}

// --- Service (printService)
std::string ServiceExternalIp(const Json& svc) {
  const std::string type = JsonStr(JsonAt(svc, {"spec", "type"}));
  std::vector<std::string> ips;
  for (const auto& ip : Array(JsonAt(svc, {"spec", "externalIPs"}))) ips.push_back(JsonStr(ip));
  if (type == "ExternalName") return JsonStr(JsonAt(svc, {"spec", "externalName"}));
  if (type == "LoadBalancer") {
    std::vector<std::string> lb;
    for (const auto& ing : Array(JsonAt(svc, {"status", "loadBalancer", "ingress"}))) {
      lb.push_back(!JsonStr(JsonAt(ing, {"ip"})).empty() ? JsonStr(ing["ip"]) : JsonStr(JsonAt(ing, {"hostname"})));
    }
    lb.insert(lb.end(), ips.begin(), ips.end());
    return lb.empty() ? "<pending>" : Join(lb, ",");
  }
  return ips.empty() ? "<none>" : Join(ips, ",");
}

std::string ServicePorts(const Json& svc) {
  std::vector<std::string> out;
  for (const auto& p : Array(JsonAt(svc, {"spec", "ports"}))) {
    const std::string proto = JsonStr(JsonAt(p, {"protocol"}));
    const int64_t port = JsonAt(p, {"port"}).is_number() ? p["port"].get<int64_t>() : 0;
    const int64_t node_port = JsonAt(p, {"nodePort"}).is_number() ? p["nodePort"].get<int64_t>() : 0;
    out.push_back(node_port > 0 ? fmt::format("{}:{}/{}", port, node_port, proto) : fmt::format("{}/{}", port, proto));
  }
  return out.empty() ? "<none>" : Join(out, ",");
}

// labels.FormatLabels: "k=v,..." in key order, "<none>" when empty.
std::string FormatLabels(const Json& labels) {
  std::vector<std::string> parts;
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) parts.push_back(it.key() + "=" + JsonStr(it.value()));
  }
  return parts.empty() ? "<none>" : Join(parts, ",");
}

Json ServiceCells(const Json& svc, Clock::TimePoint now) {
  const Json& ips = Array(JsonAt(svc, {"spec", "clusterIPs"}));
  std::string cluster_ip = ips.empty() ? JsonStr(JsonAt(svc, {"spec", "clusterIP"})) : JsonStr(ips[0]);
  return Json::array({Name(svc), JsonStr(JsonAt(svc, {"spec", "type"})), OrNone(cluster_ip), ServiceExternalIp(svc),
                      ServicePorts(svc), Age(svc, now), FormatLabels(JsonAt(svc, {"spec", "selector"}))});
}

// --- EndpointSlice (printEndpointSlice): at most three ports and
// addresses, then "+ N more...".
std::string ListWithMore(const std::vector<std::string>& all) {
  constexpr size_t kMax = 3;
  if (all.empty()) return "<unset>";
  std::vector<std::string> shown(all.begin(), all.begin() + static_cast<long>(std::min(kMax, all.size())));
  std::string s = Join(shown, ",");
  return all.size() > kMax ? fmt::format("{} + {} more...", s, all.size() - kMax) : s;
}

Json EndpointSliceCells(const Json& slice, Clock::TimePoint now) {
  std::vector<std::string> ports, addresses;
  for (const auto& p : Array(JsonAt(slice, {"ports"}))) {
    if (JsonAt(p, {"port"}).is_number()) ports.push_back(std::to_string(p["port"].get<int64_t>()));
    else if (!JsonStr(JsonAt(p, {"name"})).empty()) ports.push_back(JsonStr(p["name"]));
    else ports.push_back("*");
  }
  for (const auto& e : Array(JsonAt(slice, {"endpoints"}))) {
    for (const auto& a : Array(JsonAt(e, {"addresses"}))) addresses.push_back(JsonStr(a));
  }
  return Json::array({Name(slice), JsonStr(JsonAt(slice, {"addressType"})), ListWithMore(ports), ListWithMore(addresses),
                      Age(slice, now)});
}

// Row conditions as the pod printer sets them: kubectl can tell finished pods.
Json PodRowConditions(const Json& obj) {
  const std::string phase = JsonStr(JsonAt(obj, {"status", "phase"}));
  if (phase != "Succeeded" && phase != "Failed") return nullptr;
  return Json::array({{{"type", "Completed"},
                       {"status", "True"},
                       {"reason", phase},
                       {"message", phase == "Succeeded" ? "The pod has completed successfully."
                                                        : "The pod failed."}}});
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
        PodCells, PodRowConditions}},
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
          return Json::array({Name(o), JsonStr(JsonAt(o, {"status", "phase"})), Age(o, now)});
        }}},
      {"/ConfigMap",
       {{kNameColumn, {"Data", "string", "Number of keys in data and binaryData."}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          int64_t n = 0;
          for (const char* f : {"data", "binaryData"}) {
            n += JsonAt(o, {f}).is_object() ? static_cast<int64_t>(o[f].size()) : 0;
          }
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
      {"/Service",
       {{kNameColumn,
         {"Type", "string", "The type of the service (spec.type)."},
         {"Cluster-IP", "string", "The service's cluster IP (spec.clusterIPs[0])."},
         {"External-IP", "string", "External IPs, or the load balancer's ingress."},
         {"Port(s)", "string", "The service's ports: port[:nodePort]/protocol."},
         kAgeColumn,
         {"Selector", "string", "The pods the service routes to (spec.selector).", 1}},
        ServiceCells}},
      {"/ServiceAccount",
       {{kNameColumn, {"Secrets", "string", "Number of secrets of the service account."}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), static_cast<int64_t>(Array(JsonAt(o, {"secrets"})).size()), Age(o, now)});
        }}},
      {"discovery.k8s.io/EndpointSlice",
       {{kNameColumn,
         {"AddressType", "string", "The type of address carried by this EndpointSlice."},
         {"Ports", "string", "The ports of this EndpointSlice (at most three shown)."},
         {"Endpoints", "string", "The addresses of this EndpointSlice (at most three shown)."},
         kAgeColumn},
        EndpointSliceCells}},
      {"networking.k8s.io/NetworkPolicy",
       {{kNameColumn, {"Pod-Selector", "string", "The pods the policy selects (spec.podSelector)."}, kAgeColumn},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), FormatLabelSelector(JsonAt(o, {"spec", "podSelector"})), Age(o, now)});
        }}},
      // Calico's kinds: the additionalPrinterColumns of its CRDs (a missing
      // value is a null cell, printed <none>; an Age column is a CRD
      // "date" column, printed as an age).
      {"projectcalico.org/NetworkPolicy",
       {{kNameColumn, {"Tier", "string", ""}, {"Order", "number", ""}},
        [](const Json& o, Clock::TimePoint) {
          return Json::array({Name(o), JsonAt(o, {"spec", "tier"}), JsonAt(o, {"spec", "order"})});
        }}},
      {"projectcalico.org/GlobalNetworkPolicy",
       {{kNameColumn, {"Tier", "string", ""}, {"Order", "number", ""}, {"Age", "date", ""}},
        [](const Json& o, Clock::TimePoint now) {
          return Json::array({Name(o), JsonAt(o, {"spec", "tier"}), JsonAt(o, {"spec", "order"}), Age(o, now)});
        }}},
      {"projectcalico.org/Tier",
       {{kNameColumn,
         {"Order", "integer", "Order in which the tier is applied"},
         {"DefaultAction", "string", "Default action for the tier"},
         {"Status", "string", "Current status of the tier"}},
        [](const Json& o, Clock::TimePoint) {
          Json ready;
          for (const auto& c : Array(JsonAt(o, {"status", "conditions"}))) {
            if (JsonStr(c["type"]) == "Ready") ready = c.contains("reason") ? c["reason"] : Json();
          }
          return Json::array({Name(o), JsonAt(o, {"spec", "order"}), JsonAt(o, {"spec", "defaultAction"}), ready});
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

}  // namespace

const Printer& PrinterFor(const ResourceType& t) {
  auto it = Printers().find(t.group + "/" + t.kind);
  return it == Printers().end() ? DefaultPrinter() : it->second;
}

}  // namespace terway::lab
