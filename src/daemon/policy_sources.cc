#include "daemon/policy_sources.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "policy/calico_objects.h"
#include "policy/calico_policy.h"
#include "policy/k8s_policy.h"

namespace terway::daemon {

const char* CalicoApiName(CalicoApi a) {
  switch (a) {
    case CalicoApi::kNone: return "none";
    case CalicoApi::kV3: return "projectcalico.org/v3";
    case CalicoApi::kCrdV1: return "crd.projectcalico.org/v1";
  }
  return "?";
}

k8s::Json CalicoCrdToV3(const k8s::Json& crd) {
  k8s::Json v3 = crd;
  if (!v3.is_object()) return v3;
  v3["apiVersion"] = "projectcalico.org/v3";
  auto meta = v3.find("metadata");
  if (meta == v3.end() || !meta->is_object()) return v3;
  auto name = meta->find("name");
  if (name == meta->end() || !name->is_string()) return v3;
  // Calico's datastore names a default-tier policy "default.<name>"; the v3
  // API (and our Explain) calls it <name>.
  const std::string n = name->get<std::string>();
  constexpr std::string_view kDefaultTier = "default.";
  if (n.size() > kDefaultTier.size() && n.compare(0, kDefaultTier.size(), kDefaultTier) == 0) {
    *name = n.substr(kDefaultTier.size());
  }
  return v3;
}

// A pod that ran to completion keeps status.podIP, but its address is free
// for reuse.
bool PodFinished(const k8s::Pod& p) { return p.phase == "Succeeded" || p.phase == "Failed"; }

namespace {

PolicyObject ObjectOf(const k8s::ObjectMeta& m, std::string api_version, std::string kind) {
  return PolicyObject{k8s::ObjectReference{std::move(kind), m.namespace_, m.name, m.uid, std::move(api_version)},
                      m.generation};
}

// Kubernetes NetworkPolicies, each enforced as written or on the safe side.
void AddPolicies(const PolicySources& s, BuiltInputs& out) {
  constexpr const char* kNetpolApi = "networking.k8s.io/v1";
  for (const auto& np : s.network_policies) {
    policy::Policy p = policy::K8sPolicyOrFailClosed(np);
    out.policy_objects[p.Id()] = ObjectOf(np.metadata, kNetpolApi, "NetworkPolicy");
    out.inputs.policies.push_back(std::move(p));
  }
  for (const auto& bad : s.unreadable_network_policies) {
    // What we can still tell of it: its name. Read as the widest policy it
    // could have been: every pod of its namespace, both directions.
    k8s::NetworkPolicy widest;
    widest.metadata = bad.metadata;
    widest.policy_types = {"Ingress", "Egress"};
    policy::Policy p = policy::FailClosedK8sPolicy(
        widest, bad.error.value_or(MakeError(ErrorCode::kInvalidArgument, "the object cannot be read")));
    out.policy_objects[p.Id()] = ObjectOf(bad.metadata, kNetpolApi, "NetworkPolicy");
    out.inputs.policies.push_back(std::move(p));
  }
}

std::string CalicoKindOf(const k8s::Json& obj) {
  auto k = obj.find("kind");
  return k != obj.end() && k->is_string() ? k->get<std::string>() : "";
}

// spec.tier as written ("default" when absent), read here whether or not
// the rest of the policy can be.
std::string TierOf(const k8s::Json& policy) {
  if (!policy.is_object()) return policy::kDefaultTier;
  auto spec = policy.find("spec");
  if (spec == policy.end() || !spec->is_object()) return policy::kDefaultTier;
  auto tier = spec->find("tier");
  if (tier == spec->end() || !tier->is_string() || tier->get<std::string>().empty()) return policy::kDefaultTier;
  return tier->get<std::string>();
}

// The metadata of an object as stored (the caches only hold objects whose
// metadata parsed; tests may hand in anything).
std::optional<k8s::ObjectMeta> StoredMeta(const k8s::Json& obj) {
  if (!obj.is_object()) return std::nullopt;
  auto m = obj.find("metadata");
  if (m == obj.end()) return std::nullopt;
  auto meta = k8s::ParseObjectMeta(*m);
  if (!meta.ok()) return std::nullopt;
  return std::move(meta).value();
}

// Calico's policies and what their rules refer to.
void AddCalicoObjects(const PolicySources& s, BuiltInputs& out) {
  policy::PolicyInputs& in = out.inputs;
  const bool crd = s.calico_api == CalicoApi::kCrdV1;
  const std::string api = crd ? CalicoApiName(CalicoApi::kCrdV1) : CalicoApiName(CalicoApi::kV3);
  // A tier that cannot be read takes no part; its policies are enforced on
  // the safe side (where it sits and what it does at its end are unknown).
  std::map<std::string, Error> unreadable_tiers;
  for (const auto& t : s.tiers) {
    auto tier = policy::TierFromCalico(t);
    if (tier.ok()) {
      in.tiers.push_back(std::move(tier).value());
      continue;
    }
    auto meta = StoredMeta(t);
    out.rejected.push_back(fmt::format("tier: {}", tier.error().ToString()));
    if (meta) unreadable_tiers.emplace(meta->name, tier.error());
  }
  for (const auto& stored : s.calico_policies) {
    const k8s::Json v3 = crd ? CalicoCrdToV3(stored) : stored;
    policy::Policy p = policy::CalicoPolicyOrFailClosed(v3);
    if (auto t = unreadable_tiers.find(TierOf(v3)); t != unreadable_tiers.end()) {
      Error why = t->second;
      p = policy::FailClosedCalicoPolicy(v3, why.Wrap(fmt::format("reading its tier {}", t->first)));
    }
    if (auto meta = StoredMeta(stored)) out.policy_objects[p.Id()] = ObjectOf(*meta, api, CalicoKindOf(stored));
    in.policies.push_back(std::move(p));
  }
  // A network set that cannot be read is named (log, metric, show) and
  // still fed to the compiler, which gives the rules that could select it
  // the safe meaning: dropping it would make a Deny selecting it deny less.
  for (bool global : {false, true}) {
    for (const auto& obj : global ? s.global_network_sets : s.network_sets) {
      policy::NetworkSetInfo set =
          global ? policy::GlobalNetworkSetOrUnreadable(obj) : policy::NetworkSetOrUnreadable(obj);
      if (!set.Readable()) {
        out.rejected.push_back(fmt::format("{}: {}", global ? "globalnetworkset" : "networkset", set.unreadable));
      }
      in.network_sets.push_back(std::move(set));
    }
  }
  for (const auto& sa : s.service_accounts) in.service_accounts.push_back(policy::ServiceAccountFromK8s(sa));
  in.services = policy::ServicesFromEndpointSlices(s.endpoint_slices);
}

}  // namespace

BuiltInputs BuildPolicyInputs(const PolicySources& s) {
  BuiltInputs out;
  policy::PolicyInputs& in = out.inputs;
  for (const auto& ns : s.namespaces) in.namespaces.push_back(policy::NamespaceFromK8s(ns));
  for (const auto& p : s.pods) {
    policy::PodInfo info = policy::PodFromK8s(p);
    auto local = s.local_ips.find(info.Key());
    if (!p.host_network && local != s.local_ips.end()) {
      // A pod we handed an address to runs here, whatever a cached copy
      // (from before the scheduler bound it) says: our address is the truth.
      info.ip = local->second;
      if (auto six = s.local_ips6.find(info.Key()); six != s.local_ips6.end()) info.ipv6 = six->second;
      info.node = s.node_name;
    } else if (!s.node_name.empty() && p.node_name == s.node_name && !p.host_network) {
      // Ours but holding nothing (gone, or not yet added): the API's
      // status.podIP lags and can be stale.
      info.ip = std::nullopt;
      info.ipv6 = std::nullopt;
    } else if (PodFinished(p)) {
      // As a peer it would lend its labels to whoever gets the address next.
      info.ip = std::nullopt;
      info.ipv6 = std::nullopt;
    }
    in.pods.push_back(std::move(info));
  }
  for (const auto& n : s.nodes) {
    for (const auto& a : n.addresses) {
      if (a.type != "InternalIP" && a.type != "ExternalIP") continue;
      if (auto ip = Ipv4Addr::Parse(a.address); ip.ok()) in.node_ips[n.metadata.name].push_back(*ip);
    }
  }
  if (!s.node_name.empty()) {
    auto& mine = in.node_ips[s.node_name];
    for (const auto& ip : s.node_ips) {
      if (std::find(mine.begin(), mine.end(), ip) == mine.end()) mine.push_back(ip);
    }
  }
  AddPolicies(s, out);
  AddCalicoObjects(s, out);
  return out;
}

bool EndpointSliceChangeMatters(const k8s::EndpointSlice& a, const k8s::EndpointSlice& b) {
  if (a.ServiceName() != b.ServiceName() || a.address_type != b.address_type || a.metadata.uid != b.metadata.uid ||
      a.endpoints.size() != b.endpoints.size() || a.ports.size() != b.ports.size()) {
    return true;
  }
  for (size_t i = 0; i < a.endpoints.size(); i++) {
    if (a.endpoints[i].addresses != b.endpoints[i].addresses) return true;
  }
  for (size_t i = 0; i < a.ports.size(); i++) {
    if (a.ports[i].port != b.ports[i].port || a.ports[i].protocol != b.ports[i].protocol) return true;
  }
  return false;
}

bool CalicoObjectChangeMatters(const k8s::RawObject& a, const k8s::RawObject& b) {
  auto spec = [](const k8s::RawObject& o) {
    auto it = o.raw.find("spec");
    return it == o.raw.end() ? k8s::Json() : *it;
  };
  return a.metadata.uid != b.metadata.uid || a.metadata.labels != b.metadata.labels || spec(a) != spec(b);
}

bool PodChangeMatters(const k8s::Pod& a, const k8s::Pod& b) {
  if (a.metadata.labels != b.metadata.labels || a.pod_ip != b.pod_ip || a.pod_ips != b.pod_ips ||
      a.node_name != b.node_name || a.host_network != b.host_network || a.metadata.uid != b.metadata.uid ||
      PodFinished(a) != PodFinished(b)) {
    return true;
  }
  if (a.containers.size() != b.containers.size()) return true;
  for (size_t i = 0; i < a.containers.size(); i++) {
    const auto& pa = a.containers[i].ports;
    const auto& pb = b.containers[i].ports;
    if (pa.size() != pb.size()) return true;
    for (size_t j = 0; j < pa.size(); j++) {
      if (pa[j].name != pb[j].name || pa[j].container_port != pb[j].container_port ||
          pa[j].protocol != pb[j].protocol) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace terway::daemon
