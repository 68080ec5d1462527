#include "cloud/metadata.h"

#include <nlohmann/json.hpp>

#include "common/ip.h"
#include "common/strings.h"

namespace terway::cloud {
namespace {

constexpr const char* kTokenHeader = "X-aliyun-ecs-metadata-token";
constexpr const char* kTokenTtlHeader = "X-aliyun-ecs-metadata-token-ttl-seconds";
constexpr const char* kHint = "is this an ECS instance, or is vpcsim running and the metadata URL right?";

bool Retryable(int status) { return status == 429 || status >= 500; }

Result<std::vector<std::string>> ParseStringArray(const std::string& path, const std::string& body) {
  try {
    auto j = nlohmann::json::parse(body);
    if (!j.is_array()) throw std::runtime_error("not an array");
    std::vector<std::string> out;
    for (const auto& e : j) out.push_back(e.get<std::string>());
    return out;
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "metadata {}: want a JSON array of strings, got \"{}\": {}",
                  path, body.substr(0, 200), e.what());
  }
}

// "[a,b]" (ECS's unquoted form for the IPv6 entries) or a JSON array of
// strings; each entry must pass `valid`.
template <typename Valid>
Result<std::vector<std::string>> ParseBracketList(const std::string& path, const std::string& body,
                                                  const char* what, Valid valid) {
  std::string_view s = Trim(body);
  if (s.size() < 2 || s.front() != '[' || s.back() != ']') {
    return Errorf(ErrorCode::kInvalidArgument, "metadata {}: want a bracketed list of {}, got \"{}\"", path,
                  what, body.substr(0, 200));
  }
  std::vector<std::string> out;
  for (const auto& part : Split(s.substr(1, s.size() - 2), ',', true)) {
    std::string_view item = Trim(part);
    if (item.size() >= 2 && item.front() == '"' && item.back() == '"') item = item.substr(1, item.size() - 2);
    if (item.empty()) continue;
    if (!valid(item)) {
      return Errorf(ErrorCode::kInvalidArgument, "metadata {}: \"{}\" is not {}", path,
                    std::string(item.substr(0, 64)), what);
    }
    out.emplace_back(item);
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> InstanceMetadata::Macs() {
  TERWAY_ASSIGN_OR_RETURN(std::string body, Get("network/interfaces/macs/"));
  std::vector<std::string> out;
  for (const auto& line : Split(body, '\n', true)) {
    std::string_view m = Trim(line);
    if (EndsWith(m, "/")) m.remove_suffix(1);
    if (!m.empty()) out.emplace_back(m);
  }
  return out;
}

Result<std::vector<std::string>> InstanceMetadata::EniPrivateIpv4s(const std::string& mac) {
  std::string path = MacPath(mac, "private-ipv4s");
  TERWAY_ASSIGN_OR_RETURN(std::string body, Get(path));
  return ParseStringArray(path, body);
}

Result<std::vector<std::string>> InstanceMetadata::EniIpv6s(const std::string& mac) {
  std::string path = MacPath(mac, "ipv6s");
  auto body = Get(path);
  if (!body.ok()) {
    // An ENI without IPv6 has no such entry.
    if (body.error().code == ErrorCode::kNotFound) return std::vector<std::string>{};
    return std::move(body).error();
  }
  if (body->empty()) return std::vector<std::string>{};
  return ParseBracketList(path, *body, "an IPv6 address",
                          [](std::string_view a) { return Ipv6Addr::Parse(a).ok(); });
}

Result<std::vector<std::string>> InstanceMetadata::EniVpcIpv6CidrBlocks(const std::string& mac) {
  std::string path = MacPath(mac, "vpc-ipv6-cidr-blocks");
  TERWAY_ASSIGN_OR_RETURN(std::string body, Get(path));
  return ParseBracketList(path, body, "an IPv6 CIDR",
                          [](std::string_view c) { return Ipv6Cidr::Parse(c).ok(); });
}

Result<std::vector<std::string>> InstanceMetadata::RamRoles() {
  TERWAY_ASSIGN_OR_RETURN(std::string body, Get("ram/security-credentials/"));
  std::vector<std::string> out;
  for (const auto& line : Split(body, '\n', true)) {
    std::string_view r = Trim(line);
    if (EndsWith(r, "/")) r.remove_suffix(1);
    if (!r.empty()) out.emplace_back(r);
  }
  return out;
}

HttpMetadataClient::HttpMetadataClient(MetadataConfig config, HttpTransport* transport,
                                       const Clock* clock, Sleeper* sleeper, Uniform01 random)
    : config_(std::move(config)),
      transport_(transport),
      clock_(clock),
      sleeper_(sleeper),
      random_(std::move(random)) {
  while (EndsWith(config_.base_url, "/")) config_.base_url.pop_back();
}

Result<HttpResponse> HttpMetadataClient::Exchange(HttpRequest req,
                                                  std::chrono::steady_clock::time_point deadline) {
  req.timeout = config_.request_timeout;
  req.connect_timeout = config_.request_timeout;
  for (const auto& h : config_.extra_headers) req.headers.push_back(h);
  std::optional<Error> last;
  for (int attempt = 0; attempt < config_.max_attempts; attempt++) {
    auto resp = transport_->Do(req);
    if (resp.ok() && !Retryable(resp->status)) return resp;
    if (resp.ok()) {
      last = Errorf(ErrorCode::kUnavailable, "{} {}: HTTP {}", req.method, req.url, resp->status);
      last->http_status = resp->status;
      last->retryable = true;
    } else {
      last = std::move(resp).error();
      if (!last->retryable) break;
    }
    if (attempt + 1 >= config_.max_attempts) break;
    auto delay = FullJitterDelay(config_.backoff, attempt, random_());
    if (clock_->Steady() + delay > deadline) break;
    sleeper_->SleepFor(delay);
  }
  Error err = std::move(*last);
  return std::move(err).Wrap(fmt::format("metadata service ({})", kHint));
}

Result<std::string> HttpMetadataClient::CurrentToken(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard l(mu_);
  if (tokenless_) return std::string();
  auto now = clock_->Steady();
  if (token_ && now < token_->renew_at) return token_->value;
  HttpRequest req;
  req.method = "PUT";
  req.url = config_.base_url + "/latest/api/token";
  req.headers.emplace_back(kTokenTtlHeader, std::to_string(config_.token_ttl.count()));
  TERWAY_ASSIGN_OR_RETURN(HttpResponse resp, Exchange(req, deadline));
  if (resp.status == 404 || resp.status == 405) {
    // See the class comment: a service without the token flow.
    tokenless_ = true;
    return std::string();
  }
  if (resp.status != 200 || Trim(resp.body).empty()) {
    Error e = Errorf(ErrorCode::kUnavailable, "PUT {}: HTTP {} (no session token; {})", req.url,
                     resp.status, kHint);
    e.http_status = resp.status;
    return e;
  }
  // Renew at 90% of the TTL (at most a minute early): the token must not
  // expire between our check and the server's.
  auto ttl = std::chrono::duration_cast<std::chrono::steady_clock::duration>(config_.token_ttl);
  auto early = std::min<std::chrono::steady_clock::duration>(ttl / 10, std::chrono::minutes(1));
  token_ = Token{std::string(Trim(resp.body)), now + ttl - early};
  return token_->value;
}

Result<std::string> HttpMetadataClient::Get(const std::string& path) {
  auto deadline = clock_->Steady() + config_.deadline;
  std::string url = config_.base_url + "/latest/meta-data/" + path;
  for (int round = 0; round < 2; round++) {
    TERWAY_ASSIGN_OR_RETURN_CTX(std::string token, CurrentToken(deadline),
                                fmt::format("reading metadata {}", path));
    HttpRequest req;
    req.method = "GET";
    req.url = url;
    if (!token.empty()) req.headers.emplace_back(kTokenHeader, token);
    TERWAY_ASSIGN_OR_RETURN_CTX(HttpResponse resp, Exchange(req, deadline),
                                fmt::format("reading metadata {}", path));
    if (resp.status == 200) return std::string(Trim(resp.body));
    if (resp.status == 401 && round == 0) {
      // The token was refused (expired early, service restarted): get a new one once.
      std::lock_guard l(mu_);
      token_.reset();
      continue;
    }
    Error e = Errorf(resp.status == 404 ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                     "metadata GET {}: HTTP {} ({})", url, resp.status, kHint);
    e.http_status = resp.status;
    return e;
  }
  return Errorf(ErrorCode::kPermission, "metadata GET {}: token refused twice (HTTP 401)", url);
}

}  // namespace terway::cloud
