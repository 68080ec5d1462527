// Structural schemas of the kinds the lab serves as CRDs (Calico's
// projectcalico.org/v3 kinds: field names and types from Calico's API types,
// docs/calico-semantics.md sections 1, 2, 4, 5), and what an API server does
// with them on a write: fields the schema does not know are pruned (and
// refused under fieldValidation=Strict, which kubectl sends by default), and
// values of the wrong type are refused (422). A typo in a policy therefore
// fails the apply instead of storing a policy that means something else.
// The same schemas are what /openapi/v2 and /openapi/v3 publish.
#pragma once

#include <string>
#include <vector>

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

// The schema of a kind as OpenAPI v3 JSON (type, properties, items,
// additionalProperties, required, enum, x-kubernetes-int-or-string); null
// for kinds the lab keeps schemaless (the built-in ones: their bodies are
// stored as sent).
Json SchemaFor(const ResourceType& t);

// The fieldValidation query parameter; absent means Warn, as on a real
// server.
enum class FieldValidation { kIgnore, kWarn, kStrict };
Result<FieldValidation> ParseFieldValidation(const std::string& text);

// Prunes *obj's unknown fields against the kind's schema and checks the
// types of the known ones. Returns the pruned fields' paths
// ("spec.ingress[0].destinaton") for the caller to warn about. Errors: a
// type mismatch (kInvalidArgument, 422), or under kStrict any unknown field
// (kInvalidArgument with http_status 400, as a strict decoding error).
// Kinds without a schema pass unchanged.
Result<std::vector<std::string>> CheckFields(const ResourceType& t, Json* obj, FieldValidation mode);

}  // namespace terway::lab
