// Reading a field of an API object by its path, absent or mistyped as null
// or "": the controllers and printers read objects the store accepted, whose
// optional fields may be missing at any depth.
#pragma once

#include <initializer_list>
#include <string>

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

inline const Json& JsonAt(const Json& obj, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* j = &obj;
  for (const char* k : path) {
    if (!j->is_object() || !j->contains(k)) return kNull;
    j = &(*j)[k];
  }
  return *j;
}

inline std::string JsonStr(const Json& j) { return j.is_string() ? j.get<std::string>() : ""; }

}  // namespace terway::lab
