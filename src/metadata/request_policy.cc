#include "metadata/request_policy.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace terway::metadata {
namespace {

Error Refuse(std::string what) { return Error(ErrorCode::kInvalidArgument, std::move(what)); }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Bytes a decoded path may hold: RFC 3986 pchar without ';' (Java-style
// servers cut path parameters at ';', so "ram;x/..." would be "ram" there).
bool IsPathByte(unsigned char c) {
  if (c >= 0x80) return false;  // a server may fold Unicode look-alikes
  if (IsUnreserved(c)) return true;
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ',': case '=':
    case ':': case '@': case '/':
      return true;
    default:
      return false;
  }
}

bool IsQueryByte(unsigned char c) { return c != ';' && (IsPathByte(c) || c == '?' || c == '%'); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) {
    if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > 200) out += "...";
  return out;
}

Result<std::string> DecodePath(std::string_view path) {
  std::string out;
  for (size_t i = 0; i < path.size(); i++) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == '%') {
      if (i + 2 >= path.size()) return Refuse("a '%' not followed by two hex digits");
      int hi = HexValue(path[i + 1]), lo = HexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return Refuse("a '%' not followed by two hex digits");
      c = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
      if (c == '%') {
        return Refuse("a percent-encoded '%' (double encoding: a server that decodes twice would read "
                      "another path)");
      }
    }
    if (!IsPathByte(c)) {
      return Refuse(fmt::format("byte 0x{:02x} in the path (only letters, digits and -._~!$&'()*+,=:@/ are "
                                "accepted, after one percent-decoding)",
                                c));
    }
    out += static_cast<char>(c);
  }
  return out;
}

Status CheckQuery(std::string_view q) {
  for (size_t i = 0; i < q.size(); i++) {
    unsigned char c = static_cast<unsigned char>(q[i]);
    if (!IsQueryByte(c)) return Refuse(fmt::format("byte 0x{:02x} in the query", c));
    if (c == '%' && (i + 2 >= q.size() || HexValue(q[i + 1]) < 0 || HexValue(q[i + 2]) < 0)) {
      return Refuse("a '%' not followed by two hex digits in the query");
    }
  }
  return Ok();
}

const std::string* FindHeader(const PodRequest& r, std::string_view name, int* count) {
  const std::string* found = nullptr;
  *count = 0;
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      found = &v;
      ++*count;
    }
  }
  return found;
}

}  // namespace

std::string CanonicalTarget::Path() const {
  // Every byte a segment can hold is a valid pchar (IsPathByte minus '/'),
  // so the decoded segments are forwarded literally.
  std::string p = "/";
  for (size_t i = 0; i < segments.size(); i++) {
    if (i > 0) p += '/';
    p += segments[i];
  }
  if (trailing_slash && !segments.empty()) p += '/';
  return p;
}

std::string CanonicalTarget::Target() const { return query.empty() ? Path() : Path() + "?" + query; }

Result<CanonicalTarget> CanonicalizeTarget(std::string_view raw) {
  if (raw.size() > kMaxTargetLength) {
    return Refuse(fmt::format("the request target is {} bytes, over the limit of {}", raw.size(), kMaxTargetLength));
  }
  if (raw.empty() || raw[0] != '/') {
    return Refuse(fmt::format("target \"{}\" is not a path: this proxy only answers requests for the metadata "
                              "service (GET /latest/meta-data/...), it is not a general proxy",
                              Printable(raw)));
  }
  if (raw.find('#') != std::string_view::npos) return Refuse("a '#' in the request target");
  CanonicalTarget t;
  std::string_view path = raw;
  if (auto q = raw.find('?'); q != std::string_view::npos) {
    path = raw.substr(0, q);
    t.query = std::string(raw.substr(q + 1));
    TERWAY_TRY(CheckQuery(t.query));
  }
  TERWAY_ASSIGN_OR_RETURN(std::string decoded, DecodePath(path));
  // Split after decoding: "%2F" separates segments exactly as '/' does, so
  // "ram%2Fsecurity-credentials" is judged as the two segments it may
  // become at the service.
  size_t start = 0;
  std::string last;
  while (start <= decoded.size()) {
    size_t slash = decoded.find('/', start);
    if (slash == std::string::npos) slash = decoded.size();
    std::string seg = decoded.substr(start, slash - start);
    start = slash + 1;
    last = seg;
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (t.segments.empty()) return Refuse("a \"..\" segment climbs above the root");
      t.segments.pop_back();
      continue;
    }
    t.segments.push_back(std::move(seg));
  }
  // "/a/" and "/a/b/.." both name the directory a (RFC 3986 5.2.4).
  t.trailing_slash = last.empty() || last == "." || last == "..";
  return t;
}

bool IsCredentialPath(const CanonicalTarget& t) {
  for (size_t i = 0; i < t.segments.size(); i++) {
    std::string s = Lower(t.segments[i]);
    if (s == "security-credentials") return true;
    if (s == "ram" && i > 0 && Lower(t.segments[i - 1]) == "meta-data") return true;
  }
  return false;
}

bool IsTokenPath(const CanonicalTarget& t) {
  return t.segments.size() == 3 && Lower(t.segments[1]) == "api" && Lower(t.segments[2]) == "token";
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kForward: return "forward";
    case Verdict::kRefuseCredentials: return "credentials";
    case Verdict::kRefuseMethod: return "method";
    case Verdict::kBadRequest: return "malformed";
    case Verdict::kTooManyConnections: return "connections";
  }
  return "?";
}

Decision DecidePodRequest(const PodRequest& r) {
  Decision d;
  auto target = CanonicalizeTarget(r.target);
  if (!target.ok()) {
    d.verdict = Verdict::kBadRequest;
    d.reason = target.error().message;
    return d;
  }
  // Credentials first, whatever the method: the pod learns the real reason.
  if (IsCredentialPath(*target)) {
    d.verdict = Verdict::kRefuseCredentials;
    d.target = target->Path();
    d.reason = fmt::format("{} is the node's RAM role credentials", target->Path());
    return d;
  }
  const bool read = r.method == "GET" || r.method == "HEAD";
  const bool token = r.method == "PUT" && IsTokenPath(*target);
  if (!read && !token) {
    d.verdict = Verdict::kRefuseMethod;
    d.reason = r.method == "PUT"
                   ? fmt::format("PUT is only forwarded for the token endpoint /latest/api/token, not {}",
                                 target->Path())
                   : fmt::format("method {} is not forwarded (only GET, HEAD, and PUT of /latest/api/token)",
                                 Printable(r.method));
    return d;
  }
  d.method = r.method;
  d.target = target->Target();
  for (const char* name : {kTokenHeader, kTokenTtlHeader}) {
    int count = 0;
    const std::string* v = FindHeader(r, name, &count);
    if (count > 1) {
      d = Decision{};
      d.verdict = Verdict::kBadRequest;
      d.reason = fmt::format("header {} given {} times", name, count);
      return d;
    }
    if (v != nullptr) d.headers.emplace_back(name, *v);
  }
  d.verdict = Verdict::kForward;
  return d;
}

std::string CredentialRefusalBody(std::string_view canonical_path) {
  return fmt::format(
      "terway: refused: {} holds the node's RAM role credentials, which pods on this node may not read "
      "(eni_conf metadata_credentials_for_pods: deny). Other metadata is served as usual.\n"
      "A workload that needs the node's role: annotate its pod {}: \"true\" and recreate the pod; "
      "better, give it credentials of its own (RRSA or a Secret).\n",
      canonical_path, kAllowNodeRamRoleAnnotation);
}

}  // namespace terway::metadata
