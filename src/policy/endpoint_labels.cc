#include "policy/endpoint_labels.h"

namespace terway::policy {

namespace {

void Inherit(const k8s::Labels& from, const std::string& prefix, k8s::Labels* into) {
  for (const auto& [k, v] : from) (*into)[prefix + k] = v;
}

void Own(const k8s::Labels& labels, k8s::Labels* into) {
  for (const auto& [k, v] : labels) (*into)[k] = v;  // over inherited ones
}

}  // namespace

k8s::Labels NamespaceLabels(const std::string& name, const k8s::Labels& labels) {
  k8s::Labels l = labels;
  l.emplace("kubernetes.io/metadata.name", name);
  return l;
}

k8s::Labels CalicoPodLabels(const PodInfo& pod, const k8s::Labels& namespace_labels, const k8s::Labels* sa_labels) {
  k8s::Labels v;
  Inherit(namespace_labels, kNamespacePrefix, &v);
  v[std::string(kNamespacePrefix) + kCalicoNameLabel] = pod.namespace_;
  const std::string& sa = pod.service_account;
  if (!sa.empty()) {
    if (sa_labels) Inherit(*sa_labels, kServiceAccountPrefix, &v);
    v[std::string(kServiceAccountPrefix) + kCalicoNameLabel] = sa;
  }
  Own(pod.labels, &v);
  v[kCalicoNamespaceLabel] = pod.namespace_;
  v[kCalicoOrchestratorLabel] = "k8s";
  // Calico sets it only for names shorter than 63 characters (a label
  // value's limit); longer ones are matched through pcsa.* only.
  if (!sa.empty() && sa.size() < 63) v[kCalicoServiceAccountLabel] = sa;
  return v;
}

k8s::Labels CalicoNetworkSetLabels(const NetworkSetInfo& set, const k8s::Labels& namespace_labels) {
  k8s::Labels v;
  if (set.namespace_.empty()) return set.labels;  // GlobalNetworkSet: its labels only
  Inherit(namespace_labels, kNamespacePrefix, &v);
  v[std::string(kNamespacePrefix) + kCalicoNameLabel] = set.namespace_;
  Own(set.labels, &v);
  v[kCalicoNamespaceLabel] = set.namespace_;
  return v;
}

}  // namespace terway::policy
