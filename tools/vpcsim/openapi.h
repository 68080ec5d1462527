// The Alibaba Cloud RPC-style OpenAPI front end of vpcsim: parses a request,
// verifies it exactly as the real gateway does (common parameters, Signature
// Version 1.0 over the request's HTTP method, timestamp window, AccessKey or
// STS credential, one-time SignatureNonce), applies injected faults, counts
// the call and hands it to VpcCloud.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "cloud/signer.h"
#include "common/clock.h"
#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/faults.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

class OpenApiService {
 public:
  // Accepted clock skew of Timestamp, as Alibaba Cloud's gateway (15 minutes).
  static constexpr std::chrono::minutes kMaxSkew{15};

  OpenApiService(VpcCloud* cloud, FaultTable* faults, CallCounters* counters);

  // A raw request: the query string (without '?') and, for POST, the form body.
  HttpReply HandleRaw(std::string_view method, std::string_view query, std::string_view body);
  HttpReply Handle(std::string_view method, const cloud::QueryParams& params);

  // Injected latency waits through this (tests replace it).
  void SetSleeper(std::function<void(std::chrono::milliseconds)> s) { sleep_ = std::move(s); }

 private:
  Status Authenticate(std::string_view method, const cloud::QueryParams& p);
  HttpReply ErrorReply(const Error& e, const std::string& request_id) const;

  VpcCloud* cloud_;
  FaultTable* faults_;
  CallCounters* counters_;
  std::function<void(std::chrono::milliseconds)> sleep_;
};

}  // namespace terway::vpcsim
