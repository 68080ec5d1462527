// Helpers for the cloud client's unit tests: decode a signed request the way
// a server does and check its signature with signer.h.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "cloud/http_transport.h"
#include "cloud/signer.h"
#include "common/strings.h"

namespace terway::cloud::testing {

// Parameters of a GET query string or a form body.
inline QueryParams DecodeForm(std::string_view text) {
  QueryParams out;
  for (const auto& kv : Split(text, '&', true)) {
    auto eq = kv.find('=');
    std::string k, v;
    EXPECT_TRUE(PercentDecode(kv.substr(0, eq), &k)) << kv;
    if (eq != std::string::npos) {
      EXPECT_TRUE(PercentDecode(kv.substr(eq + 1), &v)) << kv;
    }
    out[k] = v;
  }
  return out;
}

inline QueryParams ParamsOf(const HttpRequest& req) {
  if (req.method == "POST") return DecodeForm(req.body);
  auto q = req.url.find('?');
  return q == std::string::npos ? QueryParams{} : DecodeForm(std::string_view(req.url).substr(q + 1));
}

// True when the request carries a valid Signature Version 1.0 for `secret`.
inline bool SignatureValid(const HttpRequest& req, const std::string& secret) {
  QueryParams p = ParamsOf(req);
  auto it = p.find("Signature");
  if (it == p.end()) return false;
  return SignatureV1(req.method, p, secret) == it->second;
}

}  // namespace terway::cloud::testing
