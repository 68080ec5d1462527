#include "metadata/http_head.h"

#include <gtest/gtest.h>

namespace terway::metadata {
namespace {

TEST(MetadataHttpHead, ParsesACurlRequest) {
  std::string raw =
      "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 100.100.100.200\r\nUser-Agent: curl/7.88.1\r\n"
      "Accept: */*\r\nX-aliyun-ecs-metadata-token:  tok \r\n\r\n";
  ASSERT_EQ(FindHeadEnd(raw), raw.size());
  auto h = ParseRequestHead(raw);
  ASSERT_TRUE(h.ok()) << h.error().ToString();
  EXPECT_EQ(h->method, "GET");
  EXPECT_EQ(h->target, "/latest/meta-data/instance-id");
  EXPECT_EQ(h->version, "HTTP/1.1");
  ASSERT_EQ(h->headers.size(), 4u);
  EXPECT_EQ(h->headers[3], (std::pair<std::string, std::string>{"x-aliyun-ecs-metadata-token", "tok"}));
}

TEST(MetadataHttpHead, FindsTheEndOnlyWhenComplete) {
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\nHost: x\r\n"), std::string::npos);
  EXPECT_EQ(FindHeadEnd("GET / HTTP/1.1\r\n\r\nleftover"), 18u);
}

TEST(MetadataHttpHead, RefusesWhatCouldBeReadTwoWays) {
  const char* rows[] = {
      "GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\n",          // a body
      "PUT /latest/api/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",          // obs-fold
      "GET /a HTTP/1.1\r\nHost x\r\n\r\n",                      // no colon
      "GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "GET /a HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",               // bare LF
      "GET /a HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",               // bare CR
      "GET /a HTTP/1.1\r\nX: a\x01\r\n\r\n",
      "GET  /a HTTP/1.1\r\n\r\n",                               // two spaces
      "GET /a b HTTP/1.1\r\n\r\n",
      "GET /a HTTP/2\r\n\r\n",
      "GET /a\r\n\r\n",                                         // HTTP/0.9
      "G(T /a HTTP/1.1\r\n\r\n",
      "GET /\x80 HTTP/1.1\r\n\r\n",
      "GET /a HTTP/1.1\r\n",                                    // incomplete
  };
  for (const char* r : rows) {
    EXPECT_FALSE(ParseRequestHead(r).ok()) << r;
  }
  EXPECT_TRUE(ParseRequestHead("PUT /latest/api/token HTTP/1.1\r\nContent-Length: 0\r\n\r\n").ok());
}

TEST(MetadataHttpHead, BoundsHeadersAndSize) {
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaderCount; i++) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  EXPECT_FALSE(ParseRequestHead(many).ok());
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeadBytes, 'a') + "\r\n\r\n";
  EXPECT_FALSE(ParseRequestHead(big).ok());
}

TEST(MetadataHttpHead, RepliesCloseTheConnectionAndHeadHasNoBody) {
  HttpReply r{403, {{"Content-Type", "text/plain"}}, "no\n"};
  EXPECT_EQ(FormatReply(r, false),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n");
  EXPECT_EQ(FormatReply(r, true),
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
}

}  // namespace
}  // namespace terway::metadata
