// The guard's decision as tables: every spelling of the credentials path a
// pod might try is refused, ambiguous spellings are refused as malformed,
// and ordinary metadata is forwarded in its canonical form.
#include "metadata/request_policy.h"

#include <gtest/gtest.h>

namespace terway::metadata {
namespace {

Decision Get(const std::string& target) { return DecidePodRequest({"GET", target, {}}); }

TEST(MetadataRequestPolicy, EveryEncodingOfTheCredentialsPathIsRefused) {
  const char* rows[] = {
      "/latest/meta-data/ram/security-credentials/node-role",
      "/latest/meta-data/ram/security-credentials/",  // the listing names the role
      "/latest/meta-data/ram/security-credentials",
      "/latest/meta-data/ram/",  // lists "security-credentials/"
      "/latest/meta-data/ram",
      "/latest/meta-data/%72am/security-credentials/node-role",
      "/latest/meta-data/%72%61%6d/%73ecurity-credentials/node-role",
      "/latest/%6d%65%74%61-data/ram/security-credentials/node-role",
      "/latest/meta-data/ram%2Fsecurity-credentials%2Fnode-role",
      "/latest/meta-data/ram%2fsecurity-credentials/node-role",
      "/latest//meta-data///ram//security-credentials/node-role",
      "/latest/./meta-data/./ram/./security-credentials/node-role",
      "/latest/meta-data/instance-id/../ram/security-credentials/node-role",
      "/latest/meta-data/x/%2e%2e/ram/security-credentials/node-role",
      "/latest/meta-data/x/%2E%2E/ram/security-credentials/node-role",
      "/latest/meta-data/RAM/Security-Credentials/node-role",
      "/LATEST/META-DATA/RAM/",
      "/2016-01-01/meta-data/ram/security-credentials/node-role",  // a dated API version
      "/v1/meta-data/ram/",
      "/meta-data/ram/security-credentials/node-role",  // no version at all
      "/latest/security-credentials/node-role",          // the segment anywhere
      "/latest/meta-data/ram/security-credentials/node-role?format=json",
      "/latest/meta-data/ram/security-credentials/node-role/",
  };
  for (const char* t : rows) {
    Decision d = Get(t);
    EXPECT_EQ(d.verdict, Verdict::kRefuseCredentials) << t << " -> " << VerdictName(d.verdict) << ": " << d.reason;
  }
  // Whatever the method: a PUT or HEAD of the path is refused as credentials.
  EXPECT_EQ(DecidePodRequest({"PUT", "/latest/meta-data/ram/security-credentials/x", {}}).verdict,
            Verdict::kRefuseCredentials);
  EXPECT_EQ(DecidePodRequest({"HEAD", "/latest/meta-data/ram/security-credentials/x", {}}).verdict,
            Verdict::kRefuseCredentials);
}

TEST(MetadataRequestPolicy, AmbiguousSpellingsAreRefusedAsMalformed) {
  const char* rows[] = {
      "/latest/meta-data/%2572am/security-credentials/node-role",  // double encoding
      "/latest/meta-data/%252e%252e/ram/",
      "/latest/meta-data/ram;x=1/security-credentials/node-role",  // path parameters
      "/latest/meta-data/ram%3Bx/security-credentials/",
      "/latest/meta-data/ram\\security-credentials\\node-role",   // backslash separators
      "/latest/meta-data/ram%5Csecurity-credentials%5Cnode-role",
      "/latest/meta-data/ram%00/security-credentials/",
      "/latest/meta-data/ram%20/security-credentials/",
      "/latest/meta-data/ra%C3%AD/",                               // non-ASCII
      "/latest/meta-data/%",
      "/latest/meta-data/%7",
      "/latest/meta-data/%zz",
      "/latest/meta-data/instance-id?%",
      "/latest/meta-data/instance-id?a;b",
      "/latest/meta-data/a#frag",
      "/../latest/meta-data/ram/",                                 // above the root
      "/latest/../../meta-data/",
      "http://100.100.100.200/latest/meta-data/ram/security-credentials/node-role",  // absolute-form
      "http://203.0.113.9/anything",
      "100.100.100.200:80",                                        // authority-form (CONNECT)
      "*",
      "",
  };
  for (const char* t : rows) {
    Decision d = Get(t);
    EXPECT_EQ(d.verdict, Verdict::kBadRequest) << t << " -> " << VerdictName(d.verdict);
    EXPECT_FALSE(d.reason.empty()) << t;
  }
  EXPECT_EQ(Get(std::string("/latest/meta-data/") + std::string(kMaxTargetLength, 'a')).verdict,
            Verdict::kBadRequest);
}

TEST(MetadataRequestPolicy, OrdinaryMetadataIsForwardedInCanonicalForm) {
  struct Row {
    const char* target;
    const char* forwarded;
  } rows[] = {
      {"/latest/meta-data/instance-id", "/latest/meta-data/instance-id"},
      {"/latest/meta-data/", "/latest/meta-data/"},
      {"/latest/meta-data", "/latest/meta-data"},
      {"/", "/"},
      {"/latest/", "/latest/"},
      {"/latest//meta-data/./instance-id", "/latest/meta-data/instance-id"},
      {"/latest/meta-data/%69nstance-id", "/latest/meta-data/instance-id"},
      {"/latest/meta-data/network/interfaces/macs/00:16:3e:00:00:01/primary-ip-address",
       "/latest/meta-data/network/interfaces/macs/00:16:3e:00:00:01/primary-ip-address"},
      {"/latest/meta-data/network/interfaces/macs/x/..", "/latest/meta-data/network/interfaces/macs/"},
      {"/latest/dynamic/instance-identity/pkcs7?audience=a%20b", "/latest/dynamic/instance-identity/pkcs7?audience=a%20b"},
      {"/latest/user-data", "/latest/user-data"},
      // A tag named "ram" is not the RAM directory: only "ram" right under
      // meta-data is.
      {"/latest/meta-data/tags/instance/ram", "/latest/meta-data/tags/instance/ram"},
      {"/latest/meta-data/tags/instance/rampage", "/latest/meta-data/tags/instance/rampage"},
  };
  for (const auto& r : rows) {
    Decision d = Get(r.target);
    ASSERT_EQ(d.verdict, Verdict::kForward) << r.target << ": " << d.reason;
    EXPECT_EQ(d.method, "GET");
    EXPECT_EQ(d.target, r.forwarded) << r.target;
  }
}

TEST(MetadataRequestPolicy, OnlyGetHeadAndTheTokenPutAreForwarded) {
  Decision put = DecidePodRequest({"PUT", "/latest/api/token", {{kTokenTtlHeader, "21600"}}});
  ASSERT_EQ(put.verdict, Verdict::kForward) << put.reason;
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.target, "/latest/api/token");
  ASSERT_EQ(put.headers.size(), 1u);
  EXPECT_EQ(put.headers[0].first, kTokenTtlHeader);
  EXPECT_EQ(put.headers[0].second, "21600");
  EXPECT_EQ(DecidePodRequest({"HEAD", "/latest/meta-data/instance-id", {}}).verdict, Verdict::kForward);

  for (auto [method, target] : std::vector<std::pair<const char*, const char*>>{
           {"PUT", "/latest/meta-data/instance-id"},
           {"PUT", "/latest/api/token/extra"},
           {"POST", "/latest/api/token"},
           {"DELETE", "/latest/meta-data/instance-id"},
           {"OPTIONS", "/"},
           {"PATCH", "/latest/meta-data/"},
           {"TRACE", "/"},
           {"get", "/latest/meta-data/instance-id"},  // methods are case-sensitive
       }) {
    Decision d = DecidePodRequest({method, target, {}});
    EXPECT_EQ(d.verdict, Verdict::kRefuseMethod) << method << " " << target;
  }
}

TEST(MetadataRequestPolicy, OnlyTokenHeadersGoOnAndOnlyOnce) {
  Decision d = DecidePodRequest({"GET",
                                 "/latest/meta-data/instance-id",
                                 {{"host", "100.100.100.200"},
                                  {kTokenHeader, "tok"},
                                  {"x-vpcsim-instance-id", "i-other"},
                                  {"x-forwarded-for", "1.2.3.4"},
                                  {"authorization", "x"}}});
  ASSERT_EQ(d.verdict, Verdict::kForward);
  ASSERT_EQ(d.headers.size(), 1u);
  EXPECT_EQ(d.headers[0], (std::pair<std::string, std::string>{kTokenHeader, "tok"}));

  Decision twice = DecidePodRequest({"GET", "/latest/meta-data/instance-id", {{kTokenHeader, "a"}, {kTokenHeader, "b"}}});
  EXPECT_EQ(twice.verdict, Verdict::kBadRequest);
}

TEST(MetadataRequestPolicy, RefusalSaysWhyAndHowToBeExempted) {
  Decision d = Get("/latest/meta-data/%72am/security-credentials/node-role");
  ASSERT_EQ(d.verdict, Verdict::kRefuseCredentials);
  EXPECT_EQ(d.target, "/latest/meta-data/ram/security-credentials/node-role");
  std::string body = CredentialRefusalBody(d.target);
  EXPECT_NE(body.find("/latest/meta-data/ram/security-credentials/node-role"), std::string::npos);
  EXPECT_NE(body.find("metadata_credentials_for_pods: deny"), std::string::npos);
  EXPECT_NE(body.find("k8s.aliyun.com/allow-node-ram-role: \"true\""), std::string::npos);
}

}  // namespace
}  // namespace terway::metadata
