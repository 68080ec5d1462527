#include "tools/vpcsim/openapi.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <thread>

#include "tools/vpcsim/query.h"

namespace terway::vpcsim {

using nlohmann::json;

namespace {

std::string RequestId() {
  std::string id = RandomUuid();
  std::transform(id.begin(), id.end(), id.begin(), ::toupper);
  return id;
}

std::optional<std::string> Get(const cloud::QueryParams& p, const char* k) {
  auto it = p.find(k);
  if (it == p.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Error Missing(const char* name) {
  return ApiError(400, "MissingParameter",
                  fmt::format("The input parameter \"{}\" that is mandatory for processing this "
                              "request is not supplied.", name));
}

bool ConstantTimeEqual(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

OpenApiService::OpenApiService(VpcCloud* cloud, FaultTable* faults, CallCounters* counters)
    : cloud_(cloud), faults_(faults), counters_(counters),
      sleep_([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }) {}

HttpReply OpenApiService::HandleRaw(std::string_view method, std::string_view query, std::string_view body) {
  auto q = ParseFormEncoded(query);
  if (q.ok() && method == "POST" && !body.empty()) {
    auto b = ParseFormEncoded(body);
    if (!b.ok()) {
      q = std::move(b).error();
    } else {
      for (auto& [k, v] : *b) {
        if (!q->emplace(k, v).second) {
          q = MakeError(ErrorCode::kInvalidArgument, "parameter '" + k.substr(0, 64) + "' given twice");
          break;
        }
      }
    }
  }
  if (!q.ok()) {
    counters_->Record("<malformed>", "InvalidParameter");
    return ErrorReply(ApiError(400, "InvalidParameter", "The request is malformed: " + q.error().message),
                      RequestId());
  }
  return Handle(method, *q);
}

Status OpenApiService::Authenticate(std::string_view method, const cloud::QueryParams& p) {
  for (const char* k : {"AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion",
                        "SignatureNonce", "Timestamp"}) {
    if (!Get(p, k)) return Missing(k);
  }
  if (p.at("SignatureMethod") != "HMAC-SHA1") {
    return ApiError(400, "InvalidSignatureMethod.Malformed",
                    "Specified signature method is not valid: only HMAC-SHA1 is supported.");
  }
  if (p.at("SignatureVersion") != "1.0") {
    return ApiError(400, "InvalidSignatureVersion.Malformed",
                    "Specified signature version is not valid: only 1.0 is supported.");
  }
  if (auto f = Get(p, "Format"); f && *f != "JSON" && *f != "json") {
    return ApiError(400, "InvalidParameter", "The specified parameter \"Format\" is not valid: vpcsim answers JSON only.");
  }
  Clock::TimePoint ts;
  if (!ParseIso8601(p.at("Timestamp"), &ts)) {
    return ApiError(400, "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted (want YYYY-MM-DDThh:mm:ssZ).");
  }
  auto now = cloud_->clock()->Now();
  if (ts < now - kMaxSkew || ts > now + kMaxSkew) {
    return ApiError(400, "InvalidTimeStamp.Expired",
                    fmt::format("Specified time stamp or date value is expired: {} is more than 15 minutes "
                                "from the server's {}.", p.at("Timestamp"), FormatIso8601(now)));
  }
  const std::string& ak = p.at("AccessKeyId");
  std::string secret;
  if (const AccessKey* k = cloud_->world().FindAccessKey(ak)) {
    secret = k->secret;
  } else if (auto sts = cloud_->FindSts(ak)) {
    auto token = Get(p, "SecurityToken");
    if (!token) return Missing("SecurityToken");
    if (!ConstantTimeEqual(*token, sts->security_token)) {
      return ApiError(400, "InvalidSecurityToken.MismatchWithAccessKey",
                      "Specified SecurityToken mismatch with the AccessKey.");
    }
    auto nowsec = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    if (sts->expires_at <= nowsec) {
      return ApiError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.");
    }
    secret = sts->access_key_secret;
  } else {
    return ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
  }
  std::string want = cloud::SignatureV1(method, p, secret);
  if (!ConstantTimeEqual(want, p.at("Signature"))) {
    // The real gateway shows its string-to-sign so a client can see where it differs.
    return ApiError(400, "SignatureDoesNotMatch",
                    "Specified signature is not matched with our calculation. server string to sign is:" +
                        cloud::StringToSign(method, p));
  }
  // Recorded only after the signature holds, so unsigned garbage cannot burn
  // nonces of legitimate clients.
  auto fresh = cloud_->ConsumeNonce(p.at("SignatureNonce"));
  if (!fresh.ok()) return ApiError(500, "InternalError", fresh.error().ToString());
  if (!*fresh) return ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
  return Ok();
}

HttpReply OpenApiService::Handle(std::string_view method, const cloud::QueryParams& p) {
  const std::string rid = RequestId();
  auto action = Get(p, "Action");
  auto version = Get(p, "Version");
  std::string product = version ? VpcCloud::ProductForVersion(*version) : "";
  // Counted under the action's name only when it is one we serve, so hostile
  // input cannot grow the counters without bound.
  std::string counted = action && VpcCloud::KnownAction(product, *action) ? *action : "<unknown>";
  auto fail = [&](const Error& e) {
    counters_->Record(counted, e.cloud_code.empty() ? "InternalError" : e.cloud_code);
    return ErrorReply(e, rid);
  };
  if (method != "GET" && method != "POST") {
    return fail(ApiError(405, "UnsupportedHTTPMethod", "The RPC API accepts GET and POST only."));
  }
  if (!action) return fail(Missing("Action"));
  if (!version) return fail(Missing("Version"));
  if (Status s = Authenticate(method, p); !s.ok()) return fail(s.error());
  if (product.empty()) {
    return fail(ApiError(400, "InvalidVersion",
                         fmt::format("Specified parameter Version \"{}\" is not valid (ECS {}, VPC {}).",
                                     version->substr(0, 32), cloud::kEcsApiVersion, cloud::kVpcApiVersion)));
  }
  if (!VpcCloud::KnownAction(product, *action)) {
    return fail(ApiError(404, "InvalidAction.NotFound",
                         fmt::format("Specified api \"{}\" is not found, please check your url and method.",
                                     action->substr(0, 64))));
  }
  FaultSpec spec = faults_->Effective(*action);
  if (spec.latency_ms > 0) sleep_(std::chrono::milliseconds(spec.latency_ms));
  switch (faults_->Draw(*action)) {
    case FaultTable::Injected::kThrottle:
      if (spec.throttle_code == "Throttling.User") {
        return fail(ApiError(400, "Throttling.User", "Request was denied due to user flow control."));
      }
      if (spec.throttle_code == "Throttling.Api") {
        return fail(ApiError(400, "Throttling.Api", "Request was denied due to api flow control."));
      }
      return fail(ApiError(400, "Throttling", "Request was denied due to request throttling."));
    case FaultTable::Injected::kServerError:
      return fail(ApiError(500, "InternalError",
                           "The request processing has failed due to some unknown error, exception or failure."));
    case FaultTable::Injected::kUnavailable:
      return fail(ApiError(503, "ServiceUnavailable",
                           "The request has failed due to a temporary failure of the server."));
    case FaultTable::Injected::kNone:
      break;
  }
  auto r = cloud_->Call(product, *action, p);
  if (!r.ok()) {
    Error e = std::move(r).error();
    if (e.code != ErrorCode::kCloud) e = ApiError(500, "InternalError", e.ToString());
    return fail(e);
  }
  counters_->Record(counted, "");
  json body = std::move(r).value();
  body["RequestId"] = rid;
  return HttpReply{200, DumpJson(body), "application/json"};
}

HttpReply OpenApiService::ErrorReply(const Error& e, const std::string& request_id) const {
  cloud::ApiError a;
  a.http_status = e.http_status ? e.http_status : 500;
  a.request_id = request_id;
  a.host_id = fmt::format("ecs-vpc.{}.aliyuncs.com", cloud_->world().region);
  a.code = e.cloud_code.empty() ? "InternalError" : e.cloud_code;
  a.message = e.message;
  return HttpReply{a.http_status, DumpJson(cloud::ToJson(a)), "application/json"};
}

}  // namespace terway::vpcsim
