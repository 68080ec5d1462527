#include "metadata/http_head.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::metadata {
namespace {

Error Bad(std::string what) { return Error(ErrorCode::kInvalidArgument, std::move(what)); }

// RFC 9110 tchar.
bool IsTokenChar(unsigned char c) {
  if (std::isalnum(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

}  // namespace

size_t FindHeadEnd(std::string_view received) {
  size_t p = received.find("\r\n\r\n");
  return p == std::string_view::npos ? std::string_view::npos : p + 4;
}

Result<RequestHead> ParseRequestHead(std::string_view head) {
  if (head.size() > kMaxHeadBytes) return Bad(fmt::format("request head over {} bytes", kMaxHeadBytes));
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") return Bad("incomplete request head");
  head.remove_suffix(2);  // the blank line; every line now ends with CRLF
  std::vector<std::string_view> lines;
  while (!head.empty()) {
    size_t crlf = head.find("\r\n");
    std::string_view line = head.substr(0, crlf);
    if (line.find('\r') != std::string_view::npos || line.find('\n') != std::string_view::npos) {
      return Bad("a bare CR or LF in the request head");
    }
    lines.push_back(line);
    head.remove_prefix(crlf + 2);
  }
  if (lines.empty()) return Bad("empty request");

  RequestHead r;
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return Bad("the request line is not \"METHOD TARGET HTTP/1.1\"");
  }
  r.method = std::string(rl.substr(0, sp1));
  r.target = std::string(rl.substr(sp1 + 1, sp2 - sp1 - 1));
  r.version = std::string(rl.substr(sp2 + 1));
  if (!IsToken(r.method)) return Bad("the method is not a token");
  if (r.target.empty()) return Bad("empty request target");
  for (unsigned char c : r.target) {
    if (c <= 0x20 || c >= 0x7f) return Bad(fmt::format("byte 0x{:02x} in the request target", c));
  }
  if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") {
    return Bad("only HTTP/1.0 and HTTP/1.1 are spoken here");
  }

  if (lines.size() - 1 > kMaxHeaderCount) return Bad(fmt::format("more than {} headers", kMaxHeaderCount));
  for (size_t i = 1; i < lines.size(); i++) {
    std::string_view line = lines[i];
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) return Bad("folded header line (obsolete)");
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Bad("a header line without ':'");
    std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Bad("a header name that is not a token");
    std::string_view value = TrimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return Bad("a control byte in a header value");
    }
    std::string lname(name);
    for (auto& c : lname) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lname == "transfer-encoding") return Bad("request bodies are not accepted (Transfer-Encoding)");
    if (lname == "content-length" && value != "0") return Bad("request bodies are not accepted (Content-Length)");
    r.headers.emplace_back(std::move(lname), std::string(value));
  }
  return r;
}

std::string FormatReply(const HttpReply& reply, bool head_only) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", reply.status, ReasonPhrase(reply.status));
  for (const auto& [k, v] : reply.headers) out += fmt::format("{}: {}\r\n", k, v);
  out += fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n", reply.body.size());
  if (!head_only) out += reply.body;
  return out;
}

}  // namespace terway::metadata
