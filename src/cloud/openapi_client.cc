#include "cloud/openapi_client.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"

namespace terway::cloud {

const char* ProductName(Product p) { return p == Product::kEcs ? "ecs" : "vpc"; }
const char* ProductVersion(Product p) {
  return p == Product::kEcs ? kEcsApiVersion : kVpcApiVersion;
}

bool IsRetryableCloudCode(std::string_view code, int http_status) {
  // Throttling, Throttling.User, Throttling.Api, ...: the request was fine,
  // the account or API was over its rate.
  if (code == "Throttling" || StartsWith(code, "Throttling.")) return true;
  if (code == "InternalError" || code == "ServiceUnavailable" || code == "UnknownError") return true;
  // Another operation holds the object (e.g. two assigns on one ENI).
  if (code == "Operation.Conflict" || code == "OperationConflict") return true;
  // The same ClientToken is still being processed: ask again for its result.
  if (code == "IdempotentProcessing") return true;
  // Each attempt carries a fresh nonce, so a collision does not repeat.
  if (code == "SignatureNonceUsed") return true;
  // An unknown code with a 5xx is the server's problem; a 4xx is ours.
  if (code.empty()) return http_status >= 500;
  return false;
}

Error CloudErrorFromReply(std::string_view action, int http_status, std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto parsed = j.is_discarded() ? Result<ApiError>(MakeError(ErrorCode::kInvalidArgument, "not JSON"))
                                 : ApiErrorFromJson(http_status, j);
  Error e;
  e.code = ErrorCode::kCloud;
  e.http_status = http_status;
  if (parsed.ok()) {
    e.cloud_code = parsed->code;
    e.message = fmt::format("{}: {}: {} (HTTP {}, RequestId {})", action, parsed->code,
                            parsed->message, http_status, parsed->request_id);
  } else {
    e.message = fmt::format("{}: HTTP {} with an unparsable body: \"{}\"", action, http_status,
                            body.substr(0, 200));
  }
  e.retryable = IsRetryableCloudCode(e.cloud_code, http_status);
  return e;
}

OpenApiClient::OpenApiClient(OpenApiConfig config, Deps deps)
    : config_(std::move(config)),
      deps_(std::move(deps)),
      limiter_(config_.rate_limit, deps_.clock ? deps_.clock : &RealClock::Instance(),
               deps_.sleeper ? deps_.sleeper : &RealSleeper::Instance()) {
  if (!deps_.clock) deps_.clock = &RealClock::Instance();
  if (!deps_.sleeper) deps_.sleeper = &RealSleeper::Instance();
  if (!deps_.random) deps_.random = DefaultUniform01();
  if (!deps_.nonce) deps_.nonce = [] { return RandomUuid(); };
  if (config_.max_attempts < 1) config_.max_attempts = 1;
}

std::string OpenApiClient::EndpointFor(Product product) const {
  auto it = config_.endpoints.find(ProductName(product));
  std::string url;
  if (it != config_.endpoints.end() && !it->second.empty()) {
    url = it->second;
  } else {
    url = fmt::format("https://{}-vpc.{}.aliyuncs.com", ProductName(product), config_.region_id);
  }
  while (EndsWith(url, "/")) url.pop_back();
  return url;
}

std::map<std::string, ActionStats> OpenApiClient::Stats() const {
  std::lock_guard l(stats_mu_);
  return stats_;
}

void OpenApiClient::Count(const std::string& action, int attempts, bool failed) {
  std::lock_guard l(stats_mu_);
  auto& s = stats_[action];
  s.calls++;
  s.attempts += static_cast<uint64_t>(attempts);
  s.retries += static_cast<uint64_t>(std::max(0, attempts - 1));
  if (failed) s.errors++;
}

Result<nlohmann::json> OpenApiClient::Attempt(Product product, const std::string& action,
                                              const QueryParams& action_params,
                                              std::chrono::steady_clock::time_point deadline) {
  TERWAY_ASSIGN_OR_RETURN(Credential cred, deps_.credentials->Get());
  QueryParams p = action_params;
  p["Action"] = action;
  p["Version"] = ProductVersion(product);
  p["Format"] = "JSON";
  p["AccessKeyId"] = cred.access_key_id;
  p["SignatureMethod"] = "HMAC-SHA1";
  p["SignatureVersion"] = "1.0";
  // A fresh nonce and time for every attempt: the server refuses a reused
  // nonce (replay protection), so a retry must not resend the old one.
  p["SignatureNonce"] = deps_.nonce();
  p["Timestamp"] = FormatIso8601(deps_.clock->Now());
  if (!config_.region_id.empty() && !p.contains("RegionId")) p["RegionId"] = config_.region_id;
  if (!cred.security_token.empty()) p["SecurityToken"] = cred.security_token;
  p.erase("Signature");
  std::string signature = SignatureV1(config_.http_method, p, cred.access_key_secret);
  std::string query = CanonicalizedQuery(p) + "&Signature=" + PercentEncode(signature);

  HttpRequest req;
  req.method = config_.http_method;
  if (req.method == "POST") {
    req.url = EndpointFor(product) + "/";
    req.body = std::move(query);
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  } else {
    req.url = EndpointFor(product) + "/?" + query;
  }
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("x-acs-action", action);
  req.headers.emplace_back("x-acs-version", ProductVersion(product));
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - deps_.clock->Steady());
  req.timeout = std::clamp(left, std::chrono::milliseconds(1), config_.attempt_timeout);
  req.connect_timeout = std::min(config_.connect_timeout, req.timeout);

  auto resp = deps_.transport->Do(req);
  if (!resp.ok()) return std::move(resp).error();
  if (resp->status >= 200 && resp->status < 300) {
    nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      Error e = Errorf(ErrorCode::kCloud, "HTTP {} with a body that is not a JSON object: \"{}\"",
                       resp->status, resp->body.substr(0, 200));
      e.http_status = resp->status;
      return e;
    }
    return j;
  }
  return CloudErrorFromReply(action, resp->status, resp->body);
}

Result<nlohmann::json> OpenApiClient::Call(Product product, const std::string& action,
                                           QueryParams params, const CallOptions& opts) {
  const Clock* clock = deps_.clock;
  const auto scheduled = config_.action_backoff.find(action);
  const StepBackoff* schedule = scheduled == config_.action_backoff.end() ? nullptr : &scheduled->second;
  const int max_attempts = schedule ? std::max(1, schedule->steps) : config_.max_attempts;
  auto deadline = clock->Steady() + opts.deadline.value_or(config_.call_deadline);
  if (schedule) {
    deadline += StepBackoffMaxTotal(*schedule);
    if (schedule->initial_delay.count() > 0) deps_.sleeper->SleepFor(schedule->initial_delay);
  }
  if (!opts.explicit_client_token.empty()) {
    params["ClientToken"] = opts.explicit_client_token;
  } else if (opts.client_token) {
    params["ClientToken"] = deps_.nonce();
  }
  const std::string what = fmt::format("{} {}", ProductName(product), action);
  std::optional<Error> last;
  for (int attempt = 0; attempt < max_attempts; attempt++) {
    Status limited = limiter_.Acquire(action, deadline);
    if (!limited.ok()) {
      Count(action, attempt, true);
      return std::move(limited).error().Wrap(what);
    }
    auto r = Attempt(product, action, params, deadline);
    if (r.ok()) {
      Count(action, attempt + 1, false);
      return r;
    }
    last = std::move(r).error();
    if (!last->retryable) {
      Count(action, attempt + 1, true);
      return std::move(*last).Wrap(what);
    }
    if (attempt + 1 >= max_attempts) {
      Count(action, attempt + 1, true);
      return std::move(*last).Wrap(fmt::format("{}: gave up after {} attempts", what, attempt + 1));
    }
    auto delay = schedule ? StepBackoffDelay(*schedule, attempt, deps_.random())
                          : FullJitterDelay(config_.backoff, attempt, deps_.random());
    if (clock->Steady() + delay >= deadline) {
      Count(action, attempt + 1, true);
      return std::move(*last).Wrap(
          fmt::format("{}: call deadline reached after {} attempts", what, attempt + 1));
    }
    log::Debug("cloud_retry action={} attempt={} delay_ms={} error=\"{}\"", action, attempt + 1,
               std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(),
               last->ToString());
    deps_.sleeper->SleepFor(delay);
  }
  return std::move(*last).Wrap(what);  // unreachable: max_attempts >= 1
}

}  // namespace terway::cloud
