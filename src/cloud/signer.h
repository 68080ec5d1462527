// Alibaba Cloud RPC-style request signing, Signature Version 1.0 (HMAC-SHA1).
//
//   CanonicalizedQueryString = sorted "enc(k)=enc(v)" joined by "&" (Signature excluded)
//   StringToSign = Method + "&" + enc("/") + "&" + enc(CanonicalizedQueryString)
//   Signature    = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
// where enc() is RFC 3986 percent-encoding: unreserved A-Z a-z 0-9 - _ . ~ kept,
// everything else %XY upper-case hex (space -> %20, never '+').
//
// Used by the client to sign and by vpcsim to verify, so both sides agree by
// construction and the official worked example pins the algorithm.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace terway::cloud {

// Sorted by name (byte order), as the algorithm requires.
using QueryParams = std::map<std::string, std::string>;

std::string PercentEncode(std::string_view s);
// Decodes %XY and '+' (as space, for form bodies). Returns false on a bad escape.
bool PercentDecode(std::string_view s, std::string* out);
std::string CanonicalizedQuery(const QueryParams& params);
std::string StringToSign(std::string_view http_method, const QueryParams& params);
std::string SignatureV1(std::string_view http_method, const QueryParams& params,
                        std::string_view access_key_secret);
std::string Base64Encode(std::string_view bytes);

}  // namespace terway::cloud
