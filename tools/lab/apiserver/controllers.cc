#include "tools/lab/apiserver/controllers.h"

#include <algorithm>
#include <optional>

#include "common/ip.h"
#include "common/log.h"
#include "tools/lab/apiserver/json_path.h"

namespace terway::lab {
namespace {

constexpr const char* kPods = "/pods";
constexpr const char* kServices = "/services";
constexpr const char* kNamespaces = "/namespaces";
constexpr const char* kServiceAccounts = "/serviceaccounts";
constexpr const char* kNodes = "/nodes";
constexpr const char* kEndpointSlices = "discovery.k8s.io/endpointslices";
constexpr const char* kZoneLabel = "topology.kubernetes.io/zone";
constexpr const char* kHeadlessLabel = "service.kubernetes.io/headless";

std::string NameOf(const Json& o) { return JsonStr(JsonAt(o, {"metadata", "name"})); }
std::string NamespaceOf(const Json& o) { return JsonStr(JsonAt(o, {"metadata", "namespace"})); }

// Equality-based selection, as a Service's spec.selector (a plain map) selects.
bool SelectorMatches(const Json& selector, const Json& obj) {
  const Json& labels = JsonAt(obj, {"metadata", "labels"});
  for (auto it = selector.begin(); it != selector.end(); ++it) {
    if (!labels.is_object() || !labels.contains(it.key()) || labels[it.key()] != it.value()) return false;
  }
  return true;
}

bool HasSelector(const Json& service) {
  const Json& sel = JsonAt(service, {"spec", "selector"});
  // An empty selector does not survive the API's storage (it reads back as
  // absent), so it selects nothing rather than everything.
  return sel.is_object() && !sel.empty() && JsonStr(JsonAt(service, {"spec", "type"})) != "ExternalName";
}

std::string PodIpv4(const Json& pod) {
  const Json& ips = JsonAt(pod, {"status", "podIPs"});
  if (ips.is_array()) {
    for (const auto& ip : ips) {
      if (Ipv4Addr::Parse(JsonStr(JsonAt(ip, {"ip"}))).ok()) return JsonStr(ip["ip"]);
    }
  }
  const std::string ip = JsonStr(JsonAt(pod, {"status", "podIP"}));
  return Ipv4Addr::Parse(ip).ok() ? ip : "";
}

bool HasTrueCondition(const Json& pod, const char* type) {
  const Json& conditions = JsonAt(pod, {"status", "conditions"});
  if (!conditions.is_array()) return false;
  return std::any_of(conditions.begin(), conditions.end(), [&](const Json& c) {
    return JsonStr(JsonAt(c, {"type"})) == type && JsonStr(JsonAt(c, {"status"})) == "True";
  });
}

// A named targetPort is looked up among the pod's container ports with the
// same protocol (kube's FindPort); a pod that does not declare it gets no
// entry for that port.
std::optional<int64_t> ResolveTargetPort(const Json& pod, const Json& target, const std::string& protocol) {
  if (target.is_number_integer()) return target.get<int64_t>();
  if (!target.is_string()) return std::nullopt;
  const Json& containers = JsonAt(pod, {"spec", "containers"});
  if (!containers.is_array()) return std::nullopt;
  for (const auto& c : containers) {
    const Json& ports = JsonAt(c, {"ports"});
    if (!ports.is_array()) continue;
    for (const auto& p : ports) {
      const std::string proto = JsonStr(JsonAt(p, {"protocol"})).empty() ? "TCP" : JsonStr(p["protocol"]);
      if (JsonStr(JsonAt(p, {"name"})) == JsonStr(target) && proto == protocol && JsonAt(p, {"containerPort"}).is_number()) {
        return p["containerPort"].get<int64_t>();
      }
    }
  }
  return std::nullopt;
}

// The slice ports of one pod: the Service's ports with targetPort resolved.
Json SlicePorts(const Json& service, const Json& pod) {
  Json out = Json::array();
  const Json& ports = JsonAt(service, {"spec", "ports"});
  if (!ports.is_array()) return out;
  for (const auto& sp : ports) {
    const std::string protocol = JsonStr(JsonAt(sp, {"protocol"})).empty() ? "TCP" : JsonStr(sp["protocol"]);
    const Json& target = JsonAt(sp, {"targetPort"}).is_null() ? JsonAt(sp, {"port"}) : sp["targetPort"];
    auto number = ResolveTargetPort(pod, target, protocol);
    if (!number) continue;
    Json p = {{"name", JsonStr(JsonAt(sp, {"name"}))}, {"protocol", protocol}, {"port", *number}};
    if (JsonAt(sp, {"appProtocol"}).is_string()) p["appProtocol"] = sp["appProtocol"];
    out.push_back(std::move(p));
  }
  return out;
}

Json EndpointOf(const Json& pod, const std::string& ip, const std::map<std::string, std::string>& zones) {
  const bool terminating = !JsonAt(pod, {"metadata", "deletionTimestamp"}).is_null();
  const bool ready = HasTrueCondition(pod, "Ready");
  Json e = {{"addresses", Json::array({ip})},
            {"conditions", {{"ready", ready && !terminating}, {"serving", ready}, {"terminating", terminating}}},
            {"targetRef",
             {{"kind", "Pod"}, {"namespace", NamespaceOf(pod)}, {"name", NameOf(pod)},
              {"uid", JsonStr(JsonAt(pod, {"metadata", "uid"}))}}}};
  const std::string node = JsonStr(JsonAt(pod, {"spec", "nodeName"}));
  if (!node.empty()) {
    e["nodeName"] = node;
    if (auto z = zones.find(node); z != zones.end()) e["zone"] = z->second;
  }
  return e;
}

Json SliceMetadata(const Json& service) {
  const std::string name = NameOf(service);
  Json labels = JsonAt(service, {"metadata", "labels"}).is_object() ? service["metadata"]["labels"] : Json::object();
  labels[kServiceNameLabel] = name;
  labels[kManagedByLabel] = kEndpointSliceController;
  if (JsonStr(JsonAt(service, {"spec", "clusterIP"})) == "None") labels[kHeadlessLabel] = "";
  return {{"generateName", name + "-"},
          {"namespace", NamespaceOf(service)},
          {"labels", labels},
          {"ownerReferences",
           Json::array({{{"apiVersion", "v1"},
                         {"kind", "Service"},
                         {"name", name},
                         {"uid", JsonStr(JsonAt(service, {"metadata", "uid"}))},
                         {"controller", true},
                         {"blockOwnerDeletion", true}}})}};
}

Json SliceOf(const Json& service, const Json& ports, Json endpoints) {
  Json s = {{"apiVersion", "discovery.k8s.io/v1"},
            {"kind", "EndpointSlice"},
            {"metadata", SliceMetadata(service)},
            {"addressType", "IPv4"},
            {"endpoints", std::move(endpoints)}};
  if (!ports.empty()) s["ports"] = ports;
  return s;
}

// The fields the controller owns on a slice it manages.
bool SameContent(const Json& a, const Json& b) {
  for (const char* f : {"addressType", "endpoints", "ports"}) {
    if (JsonAt(a, {f}) != JsonAt(b, {f})) return false;
  }
  return JsonAt(a, {"metadata", "labels"}) == JsonAt(b, {"metadata", "labels"}) &&
         JsonAt(a, {"metadata", "ownerReferences"}) == JsonAt(b, {"metadata", "ownerReferences"});
}

bool ManagedSliceOf(const Json& slice, const std::string& ns, const std::string& service) {
  const Json& labels = JsonAt(slice, {"metadata", "labels"});
  return NamespaceOf(slice) == ns && labels.is_object() && labels.value(kServiceNameLabel, "") == service &&
         labels.value(kManagedByLabel, "") == kEndpointSliceController;
}

void Warn(const Error& e, const std::string& what) {
  log::Warn("lab_apiserver_controller_failed action=\"{}\" error=\"{}\"", what, e.ToString());
}

// Makes the managed slices of one Service what its pods call for: slices
// are matched to the desired ones by their ports, updated in place when
// their content differs, created when missing and deleted when left over
// (also all of them once the Service is gone, as the garbage collector
// does through their owner reference).
void ReconcileService(const std::string& ns, const std::string& name, StoreWriter& w) {
  std::vector<Json> desired;
  if (const Json* svc = w.Get(kServices, ns, name)) {
    std::map<std::string, std::string> zones;
    for (const Json* n : w.List(kNodes)) {
      const std::string zone = JsonStr(JsonAt(*n, {"metadata", "labels", kZoneLabel}));
      if (!zone.empty()) zones[NameOf(*n)] = zone;
    }
    desired = DesiredEndpointSlices(*svc, w.List(kPods), zones);
  }
  std::vector<Json> existing;
  for (const Json* s : w.List(kEndpointSlices)) {
    if (ManagedSliceOf(*s, ns, name)) existing.push_back(*s);
  }
  // Pair each desired slice with an existing one: the one with the same
  // ports first, then any left over (a placeholder turning into the first
  // real slice, as Kubernetes' reconciler reuses it); create the rest.
  std::vector<std::pair<Json*, std::optional<Json>>> plan;  // desired -> existing it replaces
  for (auto& want : desired) {
    auto same = std::find_if(existing.begin(), existing.end(),
                             [&](const Json& have) { return JsonAt(have, {"ports"}) == JsonAt(want, {"ports"}); });
    if (same != existing.end()) {
      plan.emplace_back(&want, std::move(*same));
      existing.erase(same);
    } else {
      plan.emplace_back(&want, std::nullopt);
    }
  }
  for (auto& [want, have] : plan) {
    if (!have && !existing.empty()) {
      have = std::move(existing.back());
      existing.pop_back();
    }
    if (!have) {
      if (auto r = w.Create(kEndpointSlices, ns, *want); !r.ok()) {
        Warn(r.error(), "creating a slice of " + ns + "/" + name);
      }
      continue;
    }
    if (SameContent(*have, *want)) continue;
    Json next = *have;
    for (const char* f : {"addressType", "endpoints", "ports"}) {
      if (want->contains(f)) next[f] = (*want)[f];
      else next.erase(f);
    }
    next["metadata"]["labels"] = (*want)["metadata"]["labels"];
    next["metadata"]["ownerReferences"] = (*want)["metadata"]["ownerReferences"];
    if (auto r = w.Update(kEndpointSlices, ns, next); !r.ok()) Warn(r.error(), "updating slice " + NameOf(next));
  }
  for (const auto& extra : existing) {
    if (auto st = w.Delete(kEndpointSlices, ns, NameOf(extra)); !st.ok()) {
      Warn(st.error(), "deleting slice " + ns + "/" + NameOf(extra));
    }
  }
}

void EnsureDefaultServiceAccount(const std::string& ns, StoreWriter& w) {
  if (!w.Get(kNamespaces, "", ns) || w.Get(kServiceAccounts, ns, "default")) return;
  if (auto r = w.Create(kServiceAccounts, ns, DefaultServiceAccount(ns)); !r.ok()) {
    Warn(r.error(), "creating the default ServiceAccount of namespace " + ns);
  }
}

}  // namespace

bool PodServesEndpoints(const Json& pod) {
  if (PodIpv4(pod).empty()) return false;
  const std::string phase = JsonStr(JsonAt(pod, {"status", "phase"}));
  const std::string restart = JsonStr(JsonAt(pod, {"spec", "restartPolicy"}));
  if (restart == "Never") return phase != "Failed" && phase != "Succeeded";
  if (restart == "OnFailure") return phase != "Succeeded";
  return true;
}

std::vector<Json> DesiredEndpointSlices(const Json& service, const std::vector<const Json*>& pods,
                                        const std::map<std::string, std::string>& zones) {
  if (!HasSelector(service)) return {};
  const Json& selector = service["spec"]["selector"];
  const std::string ns = NamespaceOf(service);
  // ports (as JSON text) -> (pod name, endpoint), in a stable order.
  std::map<std::string, std::vector<std::pair<std::string, Json>>> groups;
  for (const Json* pod : pods) {
    if (NamespaceOf(*pod) != ns || !SelectorMatches(selector, *pod) || !PodServesEndpoints(*pod)) continue;
    groups[SlicePorts(service, *pod).dump()].emplace_back(NameOf(*pod), EndpointOf(*pod, PodIpv4(*pod), zones));
  }
  std::vector<Json> out;
  for (auto& [ports, members] : groups) {
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    Json endpoints = Json::array();
    for (auto& [name, e] : members) endpoints.push_back(std::move(e));
    out.push_back(SliceOf(service, Json::parse(ports), std::move(endpoints)));
  }
  // No endpoints: one placeholder, as Kubernetes keeps (endpoints null).
  if (out.empty()) out.push_back(SliceOf(service, Json::array(), nullptr));
  return out;
}

Json DefaultServiceAccount(const std::string& ns) {
  return {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "default"}, {"namespace", ns}}}};
}

void RunControllers(const StoredEvent& ev, StoreWriter& w) {
  const std::string ns = NamespaceOf(ev.object);
  if (ev.type_key == kNamespaces && ev.type != "DELETED") {
    EnsureDefaultServiceAccount(NameOf(ev.object), w);
  } else if (ev.type_key == kServiceAccounts && ev.type == "DELETED" && NameOf(ev.object) == "default") {
    EnsureDefaultServiceAccount(ns, w);
  } else if (ev.type_key == kServices) {
    ReconcileService(ns, NameOf(ev.object), w);
  } else if (ev.type_key == kPods) {
    // The Services that selected the pod before or select it now.
    std::vector<std::string> affected;
    for (const Json* svc : w.List(kServices)) {
      if (NamespaceOf(*svc) != ns || !HasSelector(*svc)) continue;
      const Json& sel = (*svc)["spec"]["selector"];
      if (SelectorMatches(sel, ev.object) || (ev.old_object.is_object() && SelectorMatches(sel, ev.old_object))) {
        affected.push_back(NameOf(*svc));
      }
    }
    for (const auto& name : affected) ReconcileService(ns, name, w);
  } else if (ev.type_key == kEndpointSlices) {
    // Someone else changed or deleted a slice the controller manages: put
    // it back (the controller's own writes reconcile to no change).
    const Json& labels = JsonAt(ev.object, {"metadata", "labels"});
    if (labels.is_object() && labels.value(kManagedByLabel, "") == kEndpointSliceController) {
      ReconcileService(ns, labels.value(kServiceNameLabel, ""), w);
    }
  }
  // Nodes: a zone label change reaches the slices with the next change of
  // their pods; the lab never relabels a node's zone.
}

}  // namespace terway::lab
