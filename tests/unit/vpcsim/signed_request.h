// Builds signed RPC requests the way a real Alibaba Cloud client does, for the
// vpcsim unit and e2e tests.
#pragma once

#include <string>

#include "cloud/signer.h"
#include "cloud/types.h"
#include "common/clock.h"

namespace terway::vpcsim::testing {

struct Credential {
  std::string access_key_id = "LTAItestkey";
  std::string secret = "test-secret";
  std::string security_token;  // STS credentials only
};

// Adds the common parameters (fresh nonce, timestamp from `now`) and the
// signature; returns the encoded query/form string.
inline std::string SignedQuery(const std::string& method, const std::string& action,
                               cloud::QueryParams p, const Credential& c, Clock::TimePoint now,
                               const std::string& version = cloud::kEcsApiVersion,
                               const std::string& nonce = RandomUuid()) {
  p["Action"] = action;
  p["Version"] = version;
  p["Format"] = "JSON";
  p["AccessKeyId"] = c.access_key_id;
  p["SignatureMethod"] = "HMAC-SHA1";
  p["SignatureVersion"] = "1.0";
  p["SignatureNonce"] = nonce;
  p["Timestamp"] = FormatIso8601(now);
  if (!c.security_token.empty()) p["SecurityToken"] = c.security_token;
  std::string sig = cloud::SignatureV1(method, p, c.secret);
  return cloud::CanonicalizedQuery(p) + "&Signature=" + cloud::PercentEncode(sig);
}

}  // namespace terway::vpcsim::testing
