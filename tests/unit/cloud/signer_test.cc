// Signature Version 1.0 pinned by Alibaba Cloud's published worked examples.
#include "cloud/signer.h"

#include <gtest/gtest.h>

namespace terway::cloud {
namespace {

// The DescribeRegions example of the RPC "Request signatures" documentation:
// AccessKeyId testid, AccessKeySecret testsecret, nonce and time as published.
QueryParams DocumentedRequest(const std::string& timestamp_key) {
  return QueryParams{
      {"AccessKeyId", "testid"},
      {"Action", "DescribeRegions"},
      {"Format", "XML"},
      {"SignatureMethod", "HMAC-SHA1"},
      {"SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
      {"SignatureVersion", "1.0"},
      {timestamp_key, "2016-02-23T12:46:24Z"},
      {"Version", "2014-05-26"},
  };
}

TEST(SignerTest, DocumentedExampleCanonicalizedQuery) {
  EXPECT_EQ(CanonicalizedQuery(DocumentedRequest("Timestamp")),
            "AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
            "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
            "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26");
}

TEST(SignerTest, DocumentedExampleStringToSign) {
  EXPECT_EQ(StringToSign("GET", DocumentedRequest("Timestamp")),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
            "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-"
            "4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46"
            "%253A24Z%26Version%3D2014-05-26");
}

TEST(SignerTest, DocumentedExampleSignature) {
  // The RPC signature page's value; the key is "testsecret&".
  EXPECT_EQ(SignatureV1("GET", DocumentedRequest("Timestamp"), "testsecret"),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
}

TEST(SignerTest, EcsDocumentedExampleWithTimeStampSpelling) {
  // The older ECS page spells the parameter "TimeStamp" and publishes its own
  // StringToSign and signature; both must come out byte for byte as well.
  QueryParams p = DocumentedRequest("TimeStamp");
  EXPECT_EQ(StringToSign("GET", p),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
            "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-"
            "4e0ad82fd6cf%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46"
            "%253A24Z%26Version%3D2014-05-26");
  EXPECT_EQ(SignatureV1("GET", p, "testsecret"), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
}

TEST(SignerTest, SignatureParameterIsNotSigned) {
  QueryParams p = DocumentedRequest("Timestamp");
  p["Signature"] = "whatever";
  EXPECT_EQ(SignatureV1("GET", p, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
}

TEST(SignerTest, MethodAndSecretChangeTheSignature) {
  QueryParams p = DocumentedRequest("Timestamp");
  EXPECT_NE(SignatureV1("POST", p, "testsecret"), SignatureV1("GET", p, "testsecret"));
  EXPECT_NE(SignatureV1("GET", p, "testsecreT"), SignatureV1("GET", p, "testsecret"));
  EXPECT_TRUE(StringToSign("POST", p).starts_with("POST&%2F&"));
}

TEST(SignerTest, PercentEncodeRfc3986) {
  EXPECT_EQ(PercentEncode("a b"), "a%20b");  // never '+'
  EXPECT_EQ(PercentEncode("*"), "%2A");
  EXPECT_EQ(PercentEncode("~-_.AZaz09"), "~-_.AZaz09");
  EXPECT_EQ(PercentEncode("a+b=c&d/e:f"), "a%2Bb%3Dc%26d%2Fe%3Af");
  EXPECT_EQ(PercentEncode("\"'!()"), "%22%27%21%28%29");
  // UTF-8 bytes are encoded one by one, upper-case hex.
  EXPECT_EQ(PercentEncode("\xe4\xb8\xad"), "%E4%B8%AD");
  EXPECT_EQ(PercentEncode(std::string_view("\0\xff", 2)), "%00%FF");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(SignerTest, CanonicalizedQuerySortsByByteOrder) {
  // Upper case sorts before lower case in byte order ("Z" < "a").
  QueryParams p{{"a", "1"}, {"Z", "2"}, {"Tag.1.Key", "k v"}};
  EXPECT_EQ(CanonicalizedQuery(p), "Tag.1.Key=k%20v&Z=2&a=1");
}

TEST(SignerTest, PercentDecodeRoundTrips) {
  std::string out;
  for (std::string s : {"a b*~", "\xe4\xb8\xad+=&/", "", "%%%"}) {
    ASSERT_TRUE(PercentDecode(PercentEncode(s), &out)) << s;
    EXPECT_EQ(out, s);
  }
  ASSERT_TRUE(PercentDecode("a+b%2a", &out));
  EXPECT_EQ(out, "a b*");  // '+' is a space in form bodies; lower-case hex accepted
}

TEST(SignerTest, PercentDecodeRejectsBadEscapes) {
  std::string out;
  EXPECT_FALSE(PercentDecode("%", &out));
  EXPECT_FALSE(PercentDecode("abc%4", &out));
  EXPECT_FALSE(PercentDecode("%G0", &out));
  EXPECT_FALSE(PercentDecode("%0z", &out));
  EXPECT_TRUE(PercentDecode("%41", &out));
  EXPECT_EQ(out, "A");
}

TEST(SignerTest, Base64Encode) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace terway::cloud
