// A Transport that records requests and answers from a script, for unit
// tests of everything built on RestClient.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "k8s/transport.h"

namespace terway::k8s {

// Records requests and answers from a script.
class ScriptedTransport : public Transport {
 public:
  std::vector<HttpRequest> requests;
  std::deque<Result<HttpResponse>> answers;
  std::vector<std::string> stream_chunks;

  Result<HttpResponse> Do(const HttpRequest& req) override {
    requests.push_back(req);
    if (answers.empty()) return MakeError(ErrorCode::kUnavailable, "no scripted answer");
    auto a = std::move(answers.front());
    answers.pop_front();
    return a;
  }
  Result<HttpResponse> Stream(const HttpRequest& req, const std::function<bool(std::string_view)>& on_data,
                              const std::atomic<bool>*) override {
    requests.push_back(req);
    if (answers.empty()) return MakeError(ErrorCode::kUnavailable, "no scripted answer");
    auto a = std::move(answers.front());
    answers.pop_front();
    if (a.ok() && a->status == 200) {
      for (const auto& c : stream_chunks) {
        if (!on_data(c)) break;
      }
    }
    return a;
  }
};

inline HttpResponse Resp(int status, std::string body) { return {status, "application/json", std::move(body)}; }

}  // namespace terway::k8s
