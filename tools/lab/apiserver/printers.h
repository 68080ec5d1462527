// The printers behind server-side Table output: per kind, the columns and
// how one object fills them. The columns and cell formats are those of
// Kubernetes' printers (pkg/printers/internalversion) for the built-in
// kinds, and of the CRDs' additionalPrinterColumns for Calico's kinds
// (docs/calico-semantics.md section 10). Pure.
#pragma once

#include <functional>
#include <vector>

#include "common/clock.h"
#include "tools/lab/apiserver/store.h"

namespace terway::lab {

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
  // Row conditions, when the kind's printer sets any (null otherwise).
  std::function<Json(const Json& obj)> conditions = nullptr;
};

// The kind's printer; NAME and AGE for kinds without one, as the API
// server shows a CRD that declares no columns.
const Printer& PrinterFor(const ResourceType& t);

}  // namespace terway::lab
