#include "cloud/cloud_clients.h"

namespace terway::cloud {

Result<std::unique_ptr<CloudClients>> CloudClients::Create(const CloudOptions& opts,
                                                           const Clock* clock, Sleeper* sleeper) {
  std::unique_ptr<CloudClients> c(new CloudClients());
  c->transport_ = std::make_unique<CurlHttpTransport>();
  MetadataConfig mc;
  if (!opts.metadata_endpoint.empty()) mc.base_url = opts.metadata_endpoint;
  c->metadata_ = std::make_unique<HttpMetadataClient>(mc, c->transport_.get(), clock, sleeper);

  CredentialKind kind = opts.credential_kind;
  if (kind == CredentialKind::kAuto) {
    if (!opts.access_key.empty() || !opts.access_secret.empty()) {
      kind = CredentialKind::kStatic;
    } else if (!opts.credential_path.empty()) {
      kind = CredentialKind::kFile;
    } else {
      kind = CredentialKind::kRamRole;
    }
  }
  switch (kind) {
    case CredentialKind::kStatic:
      if (opts.access_key.empty() || opts.access_secret.empty()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "access_key and access_secret must both be set (or neither, to use "
                         "credential_path or the instance RAM role)");
      }
      c->credentials_ = std::make_unique<StaticCredentialProvider>(opts.access_key, opts.access_secret);
      break;
    case CredentialKind::kFile:
      if (opts.credential_path.empty()) {
        return MakeError(ErrorCode::kInvalidArgument, "credential_path is empty");
      }
      c->credentials_ = std::make_unique<EncryptedFileCredentialProvider>(opts.credential_path, clock);
      break;
    default:
      c->credentials_ = std::make_unique<RamRoleCredentialProvider>(c->metadata_.get(), clock, opts.ram_role);
  }

  c->region_id_ = opts.region_id;
  if (c->region_id_.empty()) {
    TERWAY_ASSIGN_OR_RETURN_CTX(c->region_id_, c->metadata_->RegionId(),
                                "region_id is not configured; asking the metadata service");
  }
  OpenApiConfig oc;
  oc.region_id = c->region_id_;
  if (!opts.ecs_endpoint.empty()) oc.endpoints["ecs"] = opts.ecs_endpoint;
  if (!opts.vpc_endpoint.empty()) oc.endpoints["vpc"] = opts.vpc_endpoint;
  oc.rate_limit = opts.rate_limit;
  oc.http_method = opts.http_method;
  oc.max_attempts = opts.max_attempts;
  oc.call_deadline = opts.call_deadline;
  oc.action_backoff = opts.action_backoff;
  OpenApiClient::Deps deps;
  deps.transport = c->transport_.get();
  deps.credentials = c->credentials_.get();
  deps.clock = clock;
  deps.sleeper = sleeper;
  c->openapi_ = std::make_unique<OpenApiClient>(oc, deps);
  c->ecs_ = std::make_unique<OpenApiEcsClient>(c->openapi_.get());
  return c;
}

}  // namespace terway::cloud
