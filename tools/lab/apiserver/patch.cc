#include "tools/lab/apiserver/patch.h"

#include <algorithm>

#include "common/strings.h"

namespace terway::lab {
namespace {

// The merge key of a list, from the Kubernetes API types' patchMergeKey tags
// for the fields the project writes: node and pod status conditions and node
// addresses merge by "type" (so a controller patching its own condition keeps
// the kubelet's Ready), everything else that carries a "name" (containers,
// volumes, env, ...) by "name".
std::string MergeKeyOf(const std::string& field) {
  if (field == "conditions" || field == "addresses") return "type";
  return "name";
}

}  // namespace

void StrategicMerge(Json& target, const Json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = Json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (!k.empty() && k[0] == '$') continue;
    if (StartsWith(k, "$setElementOrder/") || StartsWith(k, "$deleteFromPrimitiveList/")) continue;
    const Json& pv = it.value();
    if (pv.is_null()) {
      target.erase(k);
    } else if (pv.is_object()) {
      if (pv.value("$patch", "") == "delete") {
        target.erase(k);
        continue;
      }
      StrategicMerge(target[k], pv);
    } else if (const std::string key = MergeKeyOf(k);
               pv.is_array() && target.contains(k) && target[k].is_array() && !pv.empty() &&
               std::all_of(pv.begin(), pv.end(), [&](const Json& e) {
                 return e.is_object() && e.contains(key) && e[key].is_string();
               })) {
      Json& list = target[k];
      for (const auto& pe : pv) {
        auto match = std::find_if(list.begin(), list.end(), [&](const Json& te) {
          return te.is_object() && te.value(key, "") == pe[key].get<std::string>();
        });
        if (pe.value("$patch", "") == "delete") {
          if (match != list.end()) list.erase(match);
        } else if (match != list.end()) {
          StrategicMerge(*match, pe);
        } else {
          Json added = Json::object();
          StrategicMerge(added, pe);
          list.push_back(added);
        }
      }
    } else {
      target[k] = pv;
    }
  }
}

}  // namespace terway::lab
