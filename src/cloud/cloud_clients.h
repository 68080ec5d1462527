// Wiring: builds the transport, metadata client, credential provider, OpenAPI
// client and EcsApi from Terway-style settings, and owns them. terwayd,
// terway-cli and the e2e tests use this instead of repeating the wiring.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "cloud/credentials.h"
#include "cloud/curl_http_transport.h"
#include "cloud/ecs_api.h"
#include "cloud/metadata.h"
#include "cloud/openapi_client.h"

namespace terway::cloud {

enum class CredentialKind {
  kAuto,     // access_key/access_secret if set, else credential_path, else RAM role
  kStatic,
  kFile,
  kRamRole,
};

struct CloudOptions {
  std::string region_id;          // empty: read region-id from the metadata service
  std::string ecs_endpoint;       // empty: https://ecs-vpc.<region>.aliyuncs.com
  std::string vpc_endpoint;       // empty: https://vpc-vpc.<region>.aliyuncs.com
  std::string metadata_endpoint;  // empty: http://100.100.100.200
  RateLimitConfig rate_limit;
  CredentialKind credential_kind = CredentialKind::kAuto;
  std::string access_key;
  std::string access_secret;
  std::string credential_path;
  std::string ram_role;  // empty: the first role the metadata service lists
  // Tuning, rarely changed.
  std::string http_method = "GET";
  int max_attempts = 6;
  std::chrono::milliseconds call_deadline{60000};
  // Per OpenAPI action, a retry schedule replacing the default (see
  // OpenApiConfig::action_backoff).
  std::map<std::string, StepBackoff> action_backoff;
};

class CloudClients {
 public:
  // Fails on contradictory settings (e.g. kStatic without a key) and, when
  // region_id is empty, when the metadata service cannot tell the region.
  static Result<std::unique_ptr<CloudClients>> Create(const CloudOptions& opts,
                                                      const Clock* clock = &RealClock::Instance(),
                                                      Sleeper* sleeper = &RealSleeper::Instance());

  InstanceMetadata* metadata() { return metadata_.get(); }
  CredentialProvider* credentials() { return credentials_.get(); }
  OpenApiClient* openapi() { return openapi_.get(); }
  EcsApi* ecs() { return ecs_.get(); }
  const std::string& region_id() const { return region_id_; }

 private:
  CloudClients() = default;
  std::unique_ptr<CurlHttpTransport> transport_;
  std::unique_ptr<HttpMetadataClient> metadata_;
  std::unique_ptr<CredentialProvider> credentials_;
  std::unique_ptr<OpenApiClient> openapi_;
  std::unique_ptr<OpenApiEcsClient> ecs_;
  std::string region_id_;
};

}  // namespace terway::cloud
