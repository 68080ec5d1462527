#include "metadata/metadata_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include <httplib.h>

#include "common/log.h"
#include "metadata/http_head.h"
#include "netlink/netns.h"

namespace terway::metadata {

using Clock = std::chrono::steady_clock;

// One log line per pod address per minute: a pod that loops on the
// credentials path must not flood terwayd's log.
struct MetadataProxy::LogLimiter {
  std::mutex mu;
  std::map<std::string, std::pair<Clock::time_point, uint64_t>> last;  // peer -> (logged at, suppressed since)

  // Returns how many lines were suppressed since the last one, or -1 to stay quiet.
  int64_t Admit(const std::string& peer) {
    std::lock_guard lock(mu);
    auto now = Clock::now();
    if (last.size() > 4096) last.clear();  // bounded; worst case a few extra lines
    auto it = last.find(peer);
    if (it != last.end() && now - it->second.first < std::chrono::minutes(1)) {
      it->second.second++;
      return -1;
    }
    uint64_t suppressed = it == last.end() ? 0 : it->second.second;
    last[peer] = {now, 0};
    return static_cast<int64_t>(suppressed);
  }
};

namespace {

int RemainingMs(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

// Waits for fd to be ready for `events`, in slices so Stop is noticed.
// False at the deadline, on stop, or on an error condition.
bool WaitFd(int fd, short events, Clock::time_point deadline, const std::atomic<bool>& stopping) {
  for (;;) {
    if (stopping) return false;
    int left = RemainingMs(deadline);
    if (left == 0) return false;
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, std::min(left, 100));
    if (n < 0 && errno != EINTR) return false;
    if (n > 0) return (p.revents & events) != 0 || (p.revents & POLLHUP) != 0;
  }
}

enum class HeadRead { kComplete, kTooLarge, kTimeout, kClosed };

HeadRead ReadHead(int fd, Clock::time_point deadline, const std::atomic<bool>& stopping, std::string* buf) {
  char chunk[2048];
  for (;;) {
    size_t end = FindHeadEnd(*buf);
    if (end != std::string::npos) {
      buf->resize(end);  // anything after the head is never read as a request
      return HeadRead::kComplete;
    }
    if (buf->size() >= kMaxHeadBytes) return HeadRead::kTooLarge;
    if (!WaitFd(fd, POLLIN, deadline, stopping)) return stopping ? HeadRead::kClosed : HeadRead::kTimeout;
    size_t room = std::min(sizeof chunk, kMaxHeadBytes + 4 - buf->size());
    ssize_t n = recv(fd, chunk, room, MSG_DONTWAIT);
    if (n == 0) return HeadRead::kClosed;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return HeadRead::kClosed;
    }
    buf->append(chunk, static_cast<size_t>(n));
  }
}

bool WriteAll(int fd, std::string_view data, Clock::time_point deadline, const std::atomic<bool>& stopping) {
  while (!data.empty()) {
    if (!WaitFd(fd, POLLOUT, deadline, stopping)) return false;
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Half-closes and reads what the client still sends until it closes (or
// briefly): closing a socket with unread input sends a RST, which can make
// the client drop the reply it has not read yet.
void Linger(int fd, const std::atomic<bool>& stopping) {
  shutdown(fd, SHUT_WR);
  auto deadline = Clock::now() + std::chrono::milliseconds(500);
  char scratch[4096];
  size_t drained = 0;
  while (drained < 65536 && WaitFd(fd, POLLIN, deadline, stopping)) {
    ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
    if (n == 0) return;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return;
    if (n > 0) drained += static_cast<size_t>(n);
  }
}

std::string Body(std::string_view text) { return fmt::format("terway metadata guard: {}\n", text); }

Result<int> BindListener(const MetadataProxyOptions& o, uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError("creating the metadata proxy's socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(o.listen_port);
  a.sin_addr.s_addr = o.listen_ip.network_order();
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    Error e = SysError(fmt::format("binding the metadata proxy to {}:{}", o.listen_ip.ToString(), o.listen_port));
    close(fd);
    return e;
  }
  if (listen(fd, 64) != 0) {
    Error e = SysError("listening on the metadata proxy's socket");
    close(fd);
    return e;
  }
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

}  // namespace

Status ValidateUpstream(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  else if (rest.starts_with("https://")) rest.remove_prefix(8);
  else rest = {};
  if (rest.empty() || rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "metadata endpoint \"{}\" is not http://host[:port] (eni_conf metadata_endpoint; leave it "
                  "unset for http://100.100.100.200)",
                  url);
  }
  return Ok();
}

MetadataProxy::MetadataProxy(MetadataProxyOptions options)
    : options_(std::move(options)), log_limiter_(std::make_unique<LogLimiter>()) {}

Result<std::unique_ptr<MetadataProxy>> MetadataProxy::Start(MetadataProxyOptions options) {
  TERWAY_TRY(ValidateUpstream(options.upstream));
  if (options.workers < 1) return MakeError(ErrorCode::kInvalidArgument, "the metadata proxy needs at least 1 worker");
  std::unique_ptr<MetadataProxy> p(new MetadataProxy(std::move(options)));
  const std::string netns = p->options_.netns;
  Result<int> fd = MakeError(ErrorCode::kInternal, "not bound");
  if (netns.empty()) {
    fd = BindListener(p->options_, &p->port_);
  } else {
    // The socket keeps the namespace it was created in.
    Status s = netlink::RunInNetns(netns, [&]() -> Status {
      fd = BindListener(p->options_, &p->port_);
      return Ok();
    });
    if (!s.ok()) return std::move(s).error();
  }
  if (!fd.ok()) return std::move(fd).error();
  p->listen_fd_ = *fd;
  for (int i = 0; i < p->options_.workers; i++) {
    // Workers live in the namespace too: their calls to the metadata service
    // must leave from the node's address.
    if (netns.empty()) {
      p->workers_.emplace_back([raw = p.get()] { raw->Serve(); });
    } else {
      auto t = netlink::SpawnInNetns(netns, [raw = p.get()] { raw->Serve(); });
      if (!t.ok()) {
        p->Stop();
        return std::move(t).error().Wrap("starting the metadata proxy's workers");
      }
      p->workers_.push_back(std::move(*t));
    }
  }
  return p;
}

MetadataProxy::~MetadataProxy() { Stop(); }

void MetadataProxy::Stop() {
  if (stopping_.exchange(true)) return;
  // Wakes every worker blocked in accept() (it fails with EINVAL).
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

MetadataProxyStats MetadataProxy::stats() const {
  return {forwarded_.load(), refused_credentials_.load(), refused_method_.load(), malformed_.load(),
          refused_connections_.load(), upstream_failures_.load()};
}

void MetadataProxy::Serve() {
  while (!stopping_) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: back off instead of spinning.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;  // EINTR, ECONNABORTED, ...
    }
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
    if (!Admit(ip)) {
      Count(Verdict::kTooManyConnections, ip, "too many connections in service");
      // Best effort and without waiting: this client already holds its share.
      std::string reply = FormatReply(
          {429, {}, Body(fmt::format("this pod already has {} requests in service; retry when one ends",
                                     options_.max_connections_per_client))},
          false);
      (void)send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      shutdown(fd, SHUT_WR);
      close(fd);
      continue;
    }
    HandleConnection(fd, ip);
    close(fd);
    Release(ip);
  }
}

bool MetadataProxy::Admit(const std::string& peer) {
  if (options_.max_connections_per_client <= 0) return true;
  std::lock_guard lock(clients_mu_);
  int& n = clients_[peer];
  if (n >= options_.max_connections_per_client) return false;
  n++;
  return true;
}

void MetadataProxy::Release(const std::string& peer) {
  if (options_.max_connections_per_client <= 0) return;
  std::lock_guard lock(clients_mu_);
  auto it = clients_.find(peer);
  if (it != clients_.end() && --it->second <= 0) clients_.erase(it);  // bounded by connections in service
}

void MetadataProxy::Count(Verdict v, const std::string& peer, std::string_view reason) {
  switch (v) {
    case Verdict::kForward: forwarded_++; return;
    case Verdict::kRefuseCredentials: refused_credentials_++; break;
    case Verdict::kRefuseMethod: refused_method_++; break;
    case Verdict::kBadRequest: malformed_++; break;
    case Verdict::kTooManyConnections: refused_connections_++; break;
  }
  if (options_.on_refusal) options_.on_refusal(v);
  int64_t suppressed = log_limiter_->Admit(peer);
  if (suppressed >= 0) {
    log::Info("metadata guard: refused {} from pod {}: {}{}", VerdictName(v), peer, reason,
              suppressed > 0 ? fmt::format(" ({} more from it in the last minute not logged)", suppressed) : "");
  }
}

void MetadataProxy::HandleConnection(int fd, const std::string& peer) {
  const auto reply_by = [&] { return Clock::now() + options_.reply_deadline; };
  auto answer = [&](const HttpReply& r, bool head_only) {
    WriteAll(fd, FormatReply(r, head_only), reply_by(), stopping_);
    Linger(fd, stopping_);
  };

  std::string raw;
  switch (ReadHead(fd, Clock::now() + options_.head_deadline, stopping_, &raw)) {
    case HeadRead::kComplete: break;
    case HeadRead::kClosed: return;
    case HeadRead::kTooLarge:
      Count(Verdict::kBadRequest, peer, "request head too large");
      answer({431, {}, Body(fmt::format("the request head is over {} bytes", kMaxHeadBytes))}, false);
      return;
    case HeadRead::kTimeout:
      Count(Verdict::kBadRequest, peer, "request head not complete in time");
      answer({408, {}, Body("the request was not complete in time")}, false);
      return;
  }
  auto head = ParseRequestHead(raw);
  if (!head.ok()) {
    Count(Verdict::kBadRequest, peer, head.error().message);
    answer({400, {}, Body("bad request: " + head.error().message)}, false);
    return;
  }
  const bool head_only = head->method == "HEAD";
  Decision d = DecidePodRequest({head->method, head->target, head->headers});
  switch (d.verdict) {
    case Verdict::kForward: break;
    case Verdict::kRefuseCredentials:
      Count(d.verdict, peer, d.reason);
      answer({403, {{"Content-Type", "text/plain; charset=utf-8"}}, CredentialRefusalBody(d.target)}, head_only);
      return;
    case Verdict::kRefuseMethod:
      Count(d.verdict, peer, d.reason);
      answer({405, {{"Allow", "GET, HEAD, PUT"}}, Body(d.reason)}, head_only);
      return;
    case Verdict::kBadRequest:
    case Verdict::kTooManyConnections:  // not a decision about a request
      Count(d.verdict, peer, d.reason);
      answer({400, {}, Body("bad request: " + d.reason)}, head_only);
      return;
  }

  answer(Forward(d, head_only, peer), head_only);
}

HttpReply MetadataProxy::Forward(const Decision& d, bool head_only, const std::string& peer) {
  // The request the service receives is the canonical one built here, never
  // the pod's bytes (see request_policy.h).
  httplib::Client cli(options_.upstream);
  cli.set_url_encode(false);  // the target is canonical already; send it as judged
  cli.set_follow_location(false);
  cli.set_keep_alive(false);
  cli.set_connection_timeout(options_.upstream_connect_timeout);
  cli.set_read_timeout(options_.upstream_timeout);
  cli.set_write_timeout(options_.upstream_timeout);
  httplib::Request req;
  // HEAD is asked as GET (bounded below) so the pod's Content-Length is the
  // real length of what a GET would return.
  req.method = head_only ? "GET" : d.method;
  req.path = d.target;
  for (const auto& [k, v] : d.headers) req.headers.emplace(k, v);
  std::string body;
  bool too_large = false;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (body.size() + n > options_.max_reply_body) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!cli.send(req, res, err) || too_large) {
    upstream_failures_++;
    std::string why = too_large ? fmt::format("its answer is over {} bytes", options_.max_reply_body)
                                : fmt::format("it did not answer ({})", httplib::to_string(err));
    if (log_limiter_->Admit("upstream") >= 0) {
      log::Warn("metadata guard: {} {} for pod {}: the metadata service {}: {}", d.method, d.target, peer,
                options_.upstream, why);
    }
    return {502, {}, Body(fmt::format("the metadata service ({}): {}", options_.upstream, why))};
  }
  Count(Verdict::kForward, peer, "");
  HttpReply out{res.status, {}, std::move(body)};
  for (const char* h : {"Content-Type", "Location", "X-aliyun-ecs-metadata-token-ttl-seconds"}) {
    if (res.has_header(h)) out.headers.emplace_back(h, res.get_header_value(h));
  }
  return out;
}

}  // namespace terway::metadata
