// The HTTP seam under the REST client: one request/response call and one
// streaming call (for watches). libcurl implements it for real; tests can
// put a fake behind it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "k8s/config.h"

namespace terway::k8s {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // path and query, e.g. "/api/v1/pods?watch=true"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Whole-request timeout; zero means none (a watch without timeoutSeconds
  // lasts as long as the server keeps it open).
  std::chrono::milliseconds timeout{30000};
};

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // A connection failure is an Error (kUnavailable); any HTTP status is a
  // response.
  virtual Result<HttpResponse> Do(const HttpRequest& req) = 0;
  // Feeds a 2xx body to on_data as it arrives; stops when the server ends the
  // body, on_data returns false, or *cancel becomes true. For a non-2xx
  // status the body is collected into the response instead.
  virtual Result<HttpResponse> Stream(const HttpRequest& req,
                                      const std::function<bool(std::string_view)>& on_data,
                                      const std::atomic<bool>* cancel) = 0;
};

// libcurl with TLS (CA, client certificates, bearer tokens) per RestConfig.
std::unique_ptr<Transport> NewCurlTransport(const RestConfig& cfg);

}  // namespace terway::k8s
