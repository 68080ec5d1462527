// Request authentication: signature, nonce, timestamp, keys, versions, actions.
#include "unit/vpcsim/cloud_fixture.h"

namespace terway::vpcsim::testing {
namespace {

using nlohmann::json;

class AuthTest : public CloudFixture {
 protected:
  std::string Code(const HttpReply& r) { return std::to_string(r.status) + " " + json::parse(r.body).value("Code", ""); }
};

TEST_F(AuthTest, SignedGetAndPostAreAccepted) {
  EXPECT_EQ(Raw("DescribeInstanceTypes", {}, {}, "GET").status, 200);
  EXPECT_EQ(Raw("DescribeInstanceTypes", {}, {}, "POST").status, 200);
}

TEST_F(AuthTest, SignatureCoversTheMethod) {
  // Signed for GET, sent as POST: the string-to-sign differs.
  std::string q = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, clock_.Now());
  EXPECT_EQ(Code(api_->HandleRaw("POST", "", q)), "400 SignatureDoesNotMatch");
}

TEST_F(AuthTest, WrongSecretTamperedParamAndUnknownKey) {
  Credential bad;
  bad.secret = "wrong";
  EXPECT_EQ(Fail("DescribeInstanceTypes", {}, bad), "400 SignatureDoesNotMatch");
  std::string q = SignedQuery("GET", "DescribeNetworkInterfaces", {{"InstanceId", "i-tiny"}}, {}, clock_.Now());
  q.replace(q.find("i-tiny"), 6, "i-big0");
  HttpReply r = api_->HandleRaw("GET", q, "");
  EXPECT_EQ(Code(r), "400 SignatureDoesNotMatch");
  EXPECT_NE(json::parse(r.body)["Message"].get<std::string>().find("GET&%2F&"), std::string::npos);
  Credential unknown;
  unknown.access_key_id = "LTAInobody";
  EXPECT_EQ(Fail("DescribeInstanceTypes", {}, unknown), "404 InvalidAccessKeyId.NotFound");
}

TEST_F(AuthTest, NonceIsSingleUseAcrossRestart) {
  std::string q = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, clock_.Now(), cloud::kEcsApiVersion, "nonce-1");
  EXPECT_EQ(api_->HandleRaw("GET", q, "").status, 200);
  EXPECT_EQ(Code(api_->HandleRaw("GET", q, "")), "400 SignatureNonceUsed");
  Reopen();
  EXPECT_EQ(Code(api_->HandleRaw("GET", q, "")), "400 SignatureNonceUsed");
  // A request with a bad signature does not burn the nonce.
  Credential bad;
  bad.secret = "wrong";
  std::string q2 = SignedQuery("GET", "DescribeInstanceTypes", {}, bad, clock_.Now(), cloud::kEcsApiVersion, "nonce-2");
  EXPECT_EQ(Code(api_->HandleRaw("GET", q2, "")), "400 SignatureDoesNotMatch");
  std::string q3 = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, clock_.Now(), cloud::kEcsApiVersion, "nonce-2");
  EXPECT_EQ(api_->HandleRaw("GET", q3, "").status, 200);
}

TEST_F(AuthTest, TimestampWindow) {
  auto now = clock_.Now();
  std::string old = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, now - std::chrono::minutes(16));
  EXPECT_EQ(Code(api_->HandleRaw("GET", old, "")), "400 InvalidTimeStamp.Expired");
  std::string future = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, now + std::chrono::minutes(16));
  EXPECT_EQ(Code(api_->HandleRaw("GET", future, "")), "400 InvalidTimeStamp.Expired");
  std::string ok = SignedQuery("GET", "DescribeInstanceTypes", {}, {}, now - std::chrono::minutes(14));
  EXPECT_EQ(api_->HandleRaw("GET", ok, "").status, 200);
}

TEST_F(AuthTest, MissingCommonParameters) {
  EXPECT_EQ(Code(api_->HandleRaw("GET", "Action=DescribeInstanceTypes&Version=2014-05-26", "")),
            "400 MissingParameter");
  EXPECT_EQ(Code(api_->HandleRaw("GET", "", "")), "400 MissingParameter");
  EXPECT_EQ(Code(api_->HandleRaw("DELETE", "", "")), "405 UnsupportedHTTPMethod");
}

TEST_F(AuthTest, VersionSelectsProductAndUnknownActions) {
  EXPECT_EQ(Fail("DescribeInstanceTypes", {}, {}, "2099-01-01"), "400 InvalidVersion");
  EXPECT_EQ(Fail("DescribeVSwitches", {}, {}, cloud::kEcsApiVersion), "404 InvalidAction.NotFound");
  EXPECT_EQ(Fail("DescribeInstanceTypes", {}, {}, cloud::kVpcApiVersion), "404 InvalidAction.NotFound");
  EXPECT_EQ(Fail("RunInstances", {}), "404 InvalidAction.NotFound");
  EXPECT_EQ(Raw("DescribeVSwitches", {}, {}, "GET", cloud::kVpcApiVersion).status, 200);
  EXPECT_EQ(Fail("DescribeInstanceTypes", {{"RegionId", "us-west-1"}}), "400 InvalidRegionId.NotFound");
  EXPECT_EQ(counters_.Calls("<unknown>"), 4u);  // bad version, two wrong-product actions, RunInstances
}

TEST_F(AuthTest, StsCredentialsFromMetadataAreAcceptedUntilExpiry) {
  MetadataRequest m{"GET", "/latest/meta-data/ram/security-credentials/TestRole", {}, {}, "i-tiny"};
  HttpReply r = metadata_->Handle(m);
  ASSERT_EQ(r.status, 200) << r.body;
  auto c = json::parse(r.body);
  EXPECT_EQ(c["Code"], "Success");
  Credential sts{c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"]};
  EXPECT_EQ(sts.access_key_id.rfind("STS.", 0), 0u);
  EXPECT_EQ(Raw("DescribeNetworkInterfaces", {}, sts).status, 200);
  Credential no_token = sts;
  no_token.security_token.clear();
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {}, no_token), "400 MissingParameter");
  Credential wrong_token = sts;
  wrong_token.security_token = "CAISforged";
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {}, wrong_token), "400 InvalidSecurityToken.MismatchWithAccessKey");
  // Expiration is sts_ttl_seconds (900 s) after issue.
  Clock::TimePoint exp;
  ASSERT_TRUE(ParseIso8601(c["Expiration"], &exp));
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(exp - clock_.Now()).count(), 900);
  // The same credential is served while fresh; the credential survives a restart.
  EXPECT_EQ(json::parse(metadata_->Handle(m).body)["AccessKeyId"], sts.access_key_id);
  Reopen();
  EXPECT_EQ(Raw("DescribeNetworkInterfaces", {}, sts).status, 200);
  // Past two thirds of its life a new one is issued; the old still works until it expires.
  clock_.Advance(std::chrono::seconds(700));
  auto c2 = json::parse(metadata_->Handle(m).body);
  EXPECT_NE(c2["AccessKeyId"], sts.access_key_id);
  EXPECT_EQ(Raw("DescribeNetworkInterfaces", {}, sts).status, 200);
  clock_.Advance(std::chrono::seconds(201));
  EXPECT_EQ(Fail("DescribeNetworkInterfaces", {}, sts), "400 InvalidSecurityToken.Expired");
  Credential sts2{c2["AccessKeyId"], c2["AccessKeySecret"], c2["SecurityToken"]};
  EXPECT_EQ(Raw("DescribeNetworkInterfaces", {}, sts2).status, 200);
}

}  // namespace
}  // namespace terway::vpcsim::testing
