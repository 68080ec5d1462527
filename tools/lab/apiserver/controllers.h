// The parts of kube-controller-manager a lab cluster needs for what terwayd
// reads: the ServiceAccount controller (every namespace has a `default`
// ServiceAccount, recreated when deleted) and the EndpointSlice controller
// (a Service with a selector has EndpointSlices listing its pods). They run
// as the store's Reaction (store.h says why inline). The slice computation
// is pure, for tests.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

inline constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
inline constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
inline constexpr const char* kEndpointSliceController = "endpointslice-controller.k8s.io";

// The slices one Service calls for, without names (the controller gives
// them generated ones): one per distinct set of resolved ports, since a
// named targetPort may resolve to different numbers on different pods, and
// one empty slice when no pod matches (Kubernetes keeps such a placeholder).
// Empty when the Service has no selector or is an ExternalName: then nothing
// manages its slices. pods: any pods; only those of the Service's namespace
// that its selector matches count. zones: node name -> its
// topology.kubernetes.io/zone label.
std::vector<Json> DesiredEndpointSlices(const Json& service, const std::vector<const Json*>& pods,
                                        const std::map<std::string, std::string>& zones);

// Whether a pod belongs in its Services' slices at all (kube's
// ShouldPodBeInEndpoints with terminating pods included): it has an IPv4
// address and, by its restartPolicy, will not run again once finished.
bool PodServesEndpoints(const Json& pod);

// The ServiceAccount the controller creates in every namespace.
Json DefaultServiceAccount(const std::string& ns);

// The controllers, as the store's Reaction.
void RunControllers(const StoredEvent& ev, StoreWriter& w);

}  // namespace terway::lab
