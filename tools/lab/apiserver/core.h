// What kube-apiserver's defaulting and admission do on a write of the core
// kinds whose fields terwayd reads: a pod runs as a ServiceAccount (the
// `default` one when it names none) that must exist (the ServiceAccount
// admission plugin), and a Service's ports get their protocol and
// targetPort defaults (SetDefaults_Service) and are validated, so the
// EndpointSlices computed from them mean what a real cluster's would.
#pragma once

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

// The Admission for core v1 pods and services; other kinds pass unchanged.
Status AdmitCore(WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view);

}  // namespace terway::lab
