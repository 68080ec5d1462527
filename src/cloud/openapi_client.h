// Alibaba Cloud OpenAPI, RPC style: signed calls to the ECS (2014-05-26) and
// VPC (2016-04-28) endpoints, with the robustness a node daemon needs under
// pod churn: client-side rate limit per action, retries with full-jitter
// backoff on the errors the cloud documents as transient, never on caller
// errors, a bounded attempt budget and an overall deadline, and ClientToken
// kept across retries so a retried create never makes two ENIs.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cloud/backoff.h"
#include "cloud/credentials.h"
#include "cloud/http_transport.h"
#include "cloud/rate_limiter.h"
#include "cloud/signer.h"
#include "cloud/step_backoff.h"
#include "cloud/types.h"
#include "common/clock.h"
#include "common/result.h"

namespace terway::cloud {

enum class Product { kEcs, kVpc };
const char* ProductName(Product p);     // "ecs", "vpc" (keys of OpenApiConfig::endpoints)
const char* ProductVersion(Product p);  // "2014-05-26", "2016-04-28"

struct OpenApiConfig {
  std::string region_id;
  // Per product ("ecs", "vpc") base URL overrides, e.g. vpcsim's
  // "http://127.0.0.1:PORT". Default: https://ecs-vpc.<region>.aliyuncs.com and
  // https://vpc-vpc.<region>.aliyuncs.com (the VPC-internal endpoints a node
  // reaches without internet access).
  std::map<std::string, std::string> endpoints;
  RateLimitConfig rate_limit;  // action -> calls per minute, over the defaults
  // GET puts every parameter in the query string (the documented examples);
  // POST sends them as an application/x-www-form-urlencoded body.
  std::string http_method = "GET";
  int max_attempts = 6;  // per logical call, first try included
  BackoffPolicy backoff{std::chrono::milliseconds(200), std::chrono::milliseconds(8000), 2.0};
  std::chrono::milliseconds call_deadline{60000};  // per logical call, waits included
  // Per action, a schedule that replaces max_attempts and backoff: its steps
  // are the attempts, its waits Kubernetes-style (eni_conf backoff_override's
  // `eni_create` and `eni_ip_ops`). The call deadline grows by the schedule's
  // longest total wait, so the deadline never cuts the operator's steps short.
  std::map<std::string, StepBackoff> action_backoff;
  std::chrono::milliseconds attempt_timeout{15000};
  std::chrono::milliseconds connect_timeout{3000};
};

struct CallOptions {
  // Add a ClientToken (idempotency key) generated once for this logical call
  // and reused on every retry. A caller that retries at a higher level passes
  // its own token to keep the same guarantee.
  bool client_token = false;
  std::string explicit_client_token;
  std::optional<std::chrono::milliseconds> deadline;  // overrides call_deadline
};

// Per-action counters (the daemon exports them as metrics).
struct ActionStats {
  uint64_t calls = 0;     // logical calls
  uint64_t attempts = 0;  // HTTP requests sent
  uint64_t errors = 0;    // logical calls that failed
  uint64_t retries = 0;
};

// Whether a cloud error code is transient (worth retrying the same request).
bool IsRetryableCloudCode(std::string_view code, int http_status);

// Turns a non-2xx reply into an Error: code kCloud with cloud_code,
// http_status, retryable, and a message carrying Code, Message and RequestId.
Error CloudErrorFromReply(std::string_view action, int http_status, std::string_view body);

class OpenApiClient {
 public:
  struct Deps {
    HttpTransport* transport = nullptr;
    CredentialProvider* credentials = nullptr;
    const Clock* clock = nullptr;     // default: RealClock
    Sleeper* sleeper = nullptr;       // default: RealSleeper
    Uniform01 random;                 // default: DefaultUniform01()
    std::function<std::string()> nonce;  // default: RandomUuid
  };
  OpenApiClient(OpenApiConfig config, Deps deps);

  // Calls `action` with `params` (action parameters only: the client adds the
  // common ones). Returns the parsed JSON reply of a 2xx answer.
  Result<nlohmann::json> Call(Product product, const std::string& action, QueryParams params,
                              const CallOptions& opts = {});

  std::string EndpointFor(Product product) const;
  const OpenApiConfig& config() const { return config_; }
  std::map<std::string, ActionStats> Stats() const;

 private:
  Result<nlohmann::json> Attempt(Product product, const std::string& action,
                                 const QueryParams& params,
                                 std::chrono::steady_clock::time_point deadline);
  void Count(const std::string& action, int attempts, bool failed);

  OpenApiConfig config_;
  Deps deps_;
  RateLimiter limiter_;
  mutable std::mutex stats_mu_;
  std::map<std::string, ActionStats> stats_;
};

}  // namespace terway::cloud
