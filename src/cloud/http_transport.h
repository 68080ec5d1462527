// The HTTP seam of the cloud client: one request in, one response out.
//
// The OpenAPI client and the metadata client talk HTTP only through this
// interface, so unit tests swap in FakeHttpTransport and never open a socket,
// and the production build uses CurlHttpTransport (HTTPS to Alibaba Cloud,
// plain HTTP to vpcsim and to the metadata service).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace terway::cloud {

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT
  std::string url;             // absolute, scheme http or https
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds timeout{10000};  // whole exchange
};

struct HttpResponse {
  int status = 0;
  // Header names lower-cased (HTTP names are case-insensitive).
  std::map<std::string, std::string> headers;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // A response with any status is a success here: status handling belongs to
  // the caller. Errors are transport failures only: kUnavailable (refused,
  // reset, DNS) or kTimeout, both marked retryable, or kInvalidArgument for a
  // malformed URL.
  virtual Result<HttpResponse> Do(const HttpRequest& req) = 0;
};

}  // namespace terway::cloud
