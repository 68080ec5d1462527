// Just enough of Kubernetes' protobuf encoding to accept the bodies kubectl's
// generators send (`kubectl create namespace|configmap`, `kubectl run`): they
// use protobuf for built-in kinds whatever the server prefers. Decodes the
// fields the lab uses into JSON and drops the rest (lossy by design; JSON
// clients keep every field).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace terway::lab {

// body: "k8s\0" + runtime.Unknown{typeMeta, raw}. Supports v1 Namespace,
// ConfigMap and Pod; other kinds are kUnsupported.
Result<nlohmann::json> DecodeKubernetesProtobuf(std::string_view body);

}  // namespace terway::lab
