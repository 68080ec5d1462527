// What Calico's API server does on a write of its projectcalico.org/v3
// policy kinds, beyond storing them: the defaulting of its API
// (api/pkg/defaults, libcalico-go's DefaultTierFields) and the refusals a
// user meets (a policy naming a tier that does not exist, deleting the
// built-in or a non-empty tier, a network set carrying the namespace label
// Calico reserves). Facts and sources: docs/calico-semantics.md sections 1,
// 4, 5 and 10.
#pragma once

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

inline constexpr const char* kCalicoGroup = "projectcalico.org";
inline constexpr const char* kDefaultTier = "default";
// Calico's order of the default tier, and of a tier created without one.
inline constexpr double kDefaultTierOrder = 1000000;

// The Admission for Calico's kinds; other kinds pass unchanged.
Status AdmitCalico(WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view);

// The `default` tier as Calico creates it (order 1000000, Deny).
Json DefaultTierObject();

}  // namespace terway::lab
