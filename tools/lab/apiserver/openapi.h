// The OpenAPI documents kubectl reads before it writes.
//
// - /openapi/v3 and /openapi/v3/<group-version>: per group-version documents
//   whose PATCH operations declare the fieldValidation parameter, so kubectl
//   leaves field validation to the server (it sends fieldValidation=Strict;
//   schemas.h does what a server does with it), plus the schemas of the
//   kinds that have one (kubectl explain).
// - /openapi/v2: kubectl validates a `kind: List` itself, against this
//   document (its v3 check has no answer for List), and fetches it as
//   protobuf (gnostic's openapi_v2.Document). It carries the same schemas as
//   definitions tagged with their group-version-kind; kinds without a schema
//   have no definition, which kubectl's validator reads as "nothing to check
//   here".
#pragma once

#include <string>
#include <vector>

#include "tools/lab/apiserver/store.h"

namespace terway::lab {

// The /openapi/v3 discovery document: {"paths": {"api/v1": {...}, ...}}.
Json OpenApiV3Index(const std::vector<ResourceType>& types);

// The document of one group-version path ("api/v1", "apis/<group>/<version>");
// kNotFound when no kind is served there.
Result<Json> OpenApiV3Document(const std::vector<ResourceType>& types, const std::string& gv_path);

// The Swagger 2.0 document as JSON.
Json OpenApiV2Document(const std::vector<ResourceType>& types);

// The same document as gnostic openapi_v2.Document protobuf bytes (what
// client-go's OpenAPISchema() asks for with
// Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf).
std::string OpenApiV2Protobuf(const std::vector<ResourceType>& types);

}  // namespace terway::lab
