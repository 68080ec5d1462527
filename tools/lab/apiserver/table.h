// Server-side table output: what `kubectl get` asks for with
//   Accept: application/json;as=Table;v=v1;g=meta.k8s.io
// and prints as it comes (kubectl has no printers of its own for it). The
// columns and cell formats are those of Kubernetes' printers
// (pkg/printers/internalversion) for the built-in kinds, and of the CRDs'
// additionalPrinterColumns for Calico's kinds; wide-only columns have
// priority 1, as `kubectl get -o wide` expects. Pure: objects and a clock in,
// a meta.k8s.io Table out.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "tools/lab/apiserver/store.h"

namespace terway::lab {

// How much of each object a row carries (the includeObject parameter):
// kubectl reads the metadata for -A's NAMESPACE column, -L and --show-labels.
enum class RowObject { kNone, kMetadata, kObject };

// "None" | "Metadata" (the default) | "Object"; an unknown value is an error.
Result<RowObject> ParseIncludeObject(const std::string& text);

// The Table of one kind's objects (a list, or a get of one object, or one
// watch event). table_version: "v1" or "v1beta1" (meta.k8s.io/<version>).
Json TableOf(const ResourceType& t, const std::vector<Json>& objects, Clock::TimePoint now, RowObject row_object,
             const std::string& table_version = "v1", const std::string& resource_version = "");

// Kubernetes' human form of an age: "45s", "5m2s", "3h10m", "2d3h", ...
// (apimachinery's duration.HumanDuration, the AGE column).
std::string HumanDuration(std::chrono::seconds d);

// The Table media type kubectl asks for, when the Accept header asks for one
// this server produces before plain JSON: "v1" / "v1beta1", else "".
std::string TableVersionAccepted(const std::string& accept);

}  // namespace terway::lab
