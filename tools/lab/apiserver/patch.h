// Strategic merge patch, to the extent the lab needs: kubectl's directives
// ($setElementOrder/..., $retainKeys, $deleteFromPrimitiveList/...) are
// dropped, lists of objects merge element by element on their merge key, a
// {"$patch": "delete"} element removes its match, and everything else behaves
// as a JSON merge patch. Pure.
#pragma once

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

// Applies patch to target in place.
void StrategicMerge(Json& target, const Json& patch);

}  // namespace terway::lab
