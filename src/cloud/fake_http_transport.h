// A scripted HttpTransport for unit tests of anything that speaks HTTP through
// HttpTransport: records every request and answers from a handler.
#pragma once

#include <functional>
#include <mutex>
#include <vector>

#include "cloud/http_transport.h"

namespace terway::cloud {

class FakeHttpTransport : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&)>;

  explicit FakeHttpTransport(Handler handler = nullptr) : handler_(std::move(handler)) {}

  void SetHandler(Handler handler) {
    std::lock_guard l(mu_);
    handler_ = std::move(handler);
  }

  Result<HttpResponse> Do(const HttpRequest& req) override {
    Handler h;
    {
      std::lock_guard l(mu_);
      requests_.push_back(req);
      h = handler_;
    }
    if (!h) return MakeError(ErrorCode::kInternal, "FakeHttpTransport: no handler set");
    return h(req);
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard l(mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard l(mu_);
    return requests_.size();
  }

  static HttpResponse Reply(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

 private:
  mutable std::mutex mu_;
  Handler handler_;
  std::vector<HttpRequest> requests_;
};

}  // namespace terway::cloud
