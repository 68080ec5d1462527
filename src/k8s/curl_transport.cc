#include <curl/curl.h>
#include <sys/socket.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "k8s/transport.h"

namespace terway::k8s {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct StreamState {
  const std::function<bool(std::string_view)>* on_data = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  long status = 0;  // NOLINT(runtime/int): curl's type
  CURL* curl = nullptr;
  bool collect = false;  // non-2xx: collect the body
  std::string body;
  bool stopped_by_caller = false;
};

size_t WriteCb(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* st = static_cast<StreamState*>(userdata);
  size_t n = size * nmemb;
  if (st->status == 0) {
    curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &st->status);
    st->collect = st->on_data == nullptr || st->status < 200 || st->status >= 300;
  }
  if (st->collect) {
    st->body.append(ptr, n);
    return n;
  }
  if (!(*st->on_data)(std::string_view(ptr, n))) {
    st->stopped_by_caller = true;
    return 0;  // aborts the transfer
  }
  return n;
}

// Called by curl about once a second even when no data flows, so a blocked
// watch notices cancellation promptly.
int ProgressCb(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* st = static_cast<StreamState*>(userdata);
  if (st->cancel && st->cancel->load()) {
    st->stopped_by_caller = true;
    return 1;
  }
  return 0;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return SysError("reading " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// curl opens its sockets without SOCK_CLOEXEC. The processes using this
// client run other programs from other threads (terwayd's helpers, the lab's
// control plane running CNI plugins): none of them may inherit a connection
// to the API, so the socket is close-on-exec from the start.
curl_socket_t OpenCloexecSocket(void*, curlsocktype, struct curl_sockaddr* addr) {
  return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(RestConfig cfg) : cfg_(std::move(cfg)) {
    GlobalInit();
    while (!cfg_.server.empty() && cfg_.server.back() == '/') cfg_.server.pop_back();
  }

  Result<HttpResponse> Do(const HttpRequest& req) override {
    return Perform(req, nullptr, nullptr);
  }

  Result<HttpResponse> Stream(const HttpRequest& req,
                              const std::function<bool(std::string_view)>& on_data,
                              const std::atomic<bool>* cancel) override {
    return Perform(req, &on_data, cancel);
  }

 private:
  Result<HttpResponse> Perform(const HttpRequest& req,
                               const std::function<bool(std::string_view)>* on_data,
                               const std::atomic<bool>* cancel) {
    const std::string what = req.method + " " + req.path;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return MakeError(ErrorCode::kInternal, "curl_easy_init failed").Wrap(what);
    CURL* c = curl.get();
    std::string url = cfg_.server + req.path;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, OpenCloexecSocket);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.body.size()));  // NOLINT
    }
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    if (req.timeout.count() > 0) {
      curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));  // NOLINT
    }
    // A watch can sit idle for minutes; keepalive probes notice a peer that
    // vanished without closing (node reboot, NAT drop) instead of hanging.
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, cfg_.user_agent.c_str());

    // TLS material.
    if (cfg_.insecure_skip_tls_verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_blob ca_blob{}, cert_blob{}, key_blob{};
    if (!cfg_.ca_data.empty()) {
      ca_blob = {const_cast<char*>(cfg_.ca_data.data()), cfg_.ca_data.size(), CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca_blob);
    } else if (!cfg_.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, cfg_.ca_file.c_str());
    }
    if (!cfg_.client_cert_data.empty()) {
      cert_blob = {const_cast<char*>(cfg_.client_cert_data.data()), cfg_.client_cert_data.size(),
                   CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert_blob);
      curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (!cfg_.client_cert_file.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, cfg_.client_cert_file.c_str());
    }
    if (!cfg_.client_key_data.empty()) {
      key_blob = {const_cast<char*>(cfg_.client_key_data.data()), cfg_.client_key_data.size(),
                  CURL_BLOB_COPY};
      curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key_blob);
      curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (!cfg_.client_key_file.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLKEY, cfg_.client_key_file.c_str());
    }

    // Headers.
    struct curl_slist* headers = nullptr;
    std::string token = cfg_.token;
    if (!cfg_.token_file.empty()) {
      auto t = ReadFile(cfg_.token_file);
      if (t.ok()) token = TrimNewlines(*t);  // keep the last good token otherwise
    }
    if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    bool has_accept = false;
    for (const auto& [k, v] : req.headers) {
      if (k == "Accept") has_accept = true;
      headers = curl_slist_append(headers, (k + ": " + v).c_str());
    }
    if (!has_accept) headers = curl_slist_append(headers, "Accept: application/json");
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> hguard(headers, curl_slist_free_all);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);

    StreamState st;
    st.on_data = on_data;
    st.cancel = cancel;
    st.curl = c;
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteCb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &st);
    if (cancel) {
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ProgressCb);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, &st);
    }

    CURLcode rc = curl_easy_perform(c);
    HttpResponse resp;
    long status = 0;  // NOLINT
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    resp.status = static_cast<int>(status);
    char* ct = nullptr;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) resp.content_type = ct;
    resp.body = std::move(st.body);
    if (rc != CURLE_OK && !(st.stopped_by_caller && resp.status != 0)) {
      if (st.stopped_by_caller) {
        return MakeError(ErrorCode::kUnavailable, "cancelled").Wrap(what);
      }
      Error e = Errorf(ErrorCode::kUnavailable, "{}", curl_easy_strerror(rc));
      e.retryable = true;
      if (rc == CURLE_OPERATION_TIMEDOUT) e.code = ErrorCode::kTimeout;
      return std::move(e).Wrap(what + " (" + cfg_.server + ")");
    }
    return resp;
  }

  RestConfig cfg_;
};

}  // namespace

std::unique_ptr<Transport> NewCurlTransport(const RestConfig& cfg) {
  return std::make_unique<CurlTransport>(cfg);
}

}  // namespace terway::k8s
