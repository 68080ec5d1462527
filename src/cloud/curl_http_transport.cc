#include "cloud/curl_http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

#include "common/strings.h"

namespace terway::cloud {
namespace {

// curl_global_init is not thread safe and must run before any other libcurl
// call; once per process, never cleaned up (other threads may still use curl
// at exit).
void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// At most this many idle handles are kept; more concurrent callers get fresh
// ones that are freed after use.
constexpr size_t kMaxIdleHandles = 8;

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* out = static_cast<std::string*>(userdata);
  out->append(ptr, size * nmemb);
  return size * nmemb;
}

size_t WriteHeader(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* resp = static_cast<HttpResponse*>(userdata);
  std::string_view line(ptr, size * nmemb);
  if (StartsWith(line, "HTTP/")) {
    // A new response (after a 100 Continue or a redirect): start over.
    resp->headers.clear();
    return size * nmemb;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(Trim(line.substr(0, colon)));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    resp->headers[name] = std::string(Trim(line.substr(colon + 1)));
  }
  return size * nmemb;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

CurlHttpTransport::CurlHttpTransport() { GlobalInitOnce(); }

CurlHttpTransport::~CurlHttpTransport() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* CurlHttpTransport::Acquire() {
  {
    std::lock_guard l(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void CurlHttpTransport::Release(void* handle) {
  std::lock_guard l(mu_);
  if (idle_.size() < kMaxIdleHandles) {
    idle_.push_back(handle);
  } else {
    curl_easy_cleanup(static_cast<CURL*>(handle));
  }
}

Result<HttpResponse> CurlHttpTransport::Do(const HttpRequest& req) {
  if (!StartsWith(req.url, "http://") && !StartsWith(req.url, "https://")) {
    return Errorf(ErrorCode::kInvalidArgument, "URL {} is neither http:// nor https://", req.url);
  }
  CURL* curl = static_cast<CURL*>(Acquire());
  if (curl == nullptr) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
  // Reset options but keep the connection cache of the handle.
  curl_easy_reset(curl);

  HttpResponse resp;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  for (const auto& [k, v] : req.headers) {
    std::string line = k + ": " + v;
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  }
  // libcurl adds "Expect: 100-continue" to large POST/PUT bodies, costing a
  // round trip against servers that ignore it; turn it off.
  headers.reset(curl_slist_append(headers.release(), "Expect:"));

  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &WriteHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  // The cloud endpoints and the metadata service must never go through a
  // proxy picked up from the environment (100.100.100.200 is link-local to
  // the instance); an explicit empty list disables the proxy.
  curl_easy_setopt(curl, CURLOPT_PROXY, "");
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);

  if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req.body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));
  }

  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  // Clear the pointers into this call's stack before the handle is reused.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  Release(curl);

  if (rc != CURLE_OK) {
    Error err;
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        err = Errorf(ErrorCode::kTimeout, "{} {}: timed out ({})", req.method, req.url,
                     curl_easy_strerror(rc));
        break;
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return Errorf(ErrorCode::kInvalidArgument, "{} {}: {}", req.method, req.url,
                      curl_easy_strerror(rc));
      default:
        err = Errorf(ErrorCode::kUnavailable, "{} {}: {}", req.method, req.url,
                     curl_easy_strerror(rc));
    }
    err.retryable = true;
    return err;
  }
  resp.status = static_cast<int>(status);
  return resp;
}

}  // namespace terway::cloud
