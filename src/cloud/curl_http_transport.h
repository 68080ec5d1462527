// HttpTransport over libcurl, for HTTPS (Alibaba Cloud) and HTTP (vpcsim,
// metadata service at 100.100.100.200).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "cloud/http_transport.h"

namespace terway::cloud {

class CurlHttpTransport : public HttpTransport {
 public:
  CurlHttpTransport();
  ~CurlHttpTransport() override;
  CurlHttpTransport(const CurlHttpTransport&) = delete;
  CurlHttpTransport& operator=(const CurlHttpTransport&) = delete;

  Result<HttpResponse> Do(const HttpRequest& req) override;

 private:
  // Easy handles are reused (they keep the TCP/TLS connection alive between
  // calls, which matters for a burst of API calls); a small free list shared
  // by threads, each handle used by one thread at a time.
  void* Acquire();
  void Release(void* handle);

  std::mutex mu_;
  std::vector<void*> idle_;
};

}  // namespace terway::cloud
