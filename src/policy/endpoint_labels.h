// The labels Calico's selectors see (docs/calico-semantics.md 6): on a pod
// endpoint its own labels, projectcalico.org/{namespace,orchestrator,
// serviceaccount}, and the labels it inherits from its namespace's profile
// (pcns.<key>, pcns.projectcalico.org/name) and its service account's
// (pcsa.<key>, pcsa.projectcalico.org/name); on a NetworkSet its labels,
// projectcalico.org/namespace and the pcns.* labels; on a GlobalNetworkSet
// its labels only. An own label wins over an inherited one of the same key;
// the projectcalico.org/* labels Calico sets win over both.
#pragma once

#include <string>

#include "k8s/types.h"
#include "policy/model.h"

namespace terway::policy {

inline constexpr const char* kCalicoNamespaceLabel = "projectcalico.org/namespace";
inline constexpr const char* kCalicoOrchestratorLabel = "projectcalico.org/orchestrator";
inline constexpr const char* kCalicoServiceAccountLabel = "projectcalico.org/serviceaccount";
inline constexpr const char* kCalicoNameLabel = "projectcalico.org/name";
inline constexpr const char* kNamespacePrefix = "pcns.";
inline constexpr const char* kServiceAccountPrefix = "pcsa.";

// A namespace's labels as the API server gives them (it adds
// kubernetes.io/metadata.name; a cache from before 1.21 may lack it).
k8s::Labels NamespaceLabels(const std::string& name, const k8s::Labels& labels);

// `namespace_labels`: NamespaceLabels of the pod's namespace; `sa_labels`:
// its service account's labels (nullptr: none known; the SA still gives
// pcsa.projectcalico.org/name, since admission only admits pods whose
// service account exists).
k8s::Labels CalicoPodLabels(const PodInfo& pod, const k8s::Labels& namespace_labels, const k8s::Labels* sa_labels);
k8s::Labels CalicoNetworkSetLabels(const NetworkSetInfo& set, const k8s::Labels& namespace_labels);

}  // namespace terway::policy
