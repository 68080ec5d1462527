// The pod-facing side of the metadata guard speaks a deliberately small
// HTTP/1.1: one request per connection, a head of bounded size, no request
// body. The parser is pure (bytes in, a request or an error out).
//
// Why not cpp-httplib's server here, as elsewhere in the project: the
// Debian build (0.11.4) reads a request line or header line until '\n'
// with no bound (detail::stream_line_reader grows without limit) and
// accepts any number of headers, so any pod could grow terwayd's memory at
// line rate. This is the first socket of terwayd that untrusted pods reach;
// its reads are bounded here, and cpp-httplib stays the client towards the
// metadata service.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace terway::metadata {

inline constexpr size_t kMaxHeadBytes = 8192;  // request line + headers
inline constexpr size_t kMaxHeaderCount = 64;

struct RequestHead {
  std::string method;   // as sent (methods are case-sensitive)
  std::string target;   // raw request target
  std::string version;  // HTTP/1.0 or HTTP/1.1
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, values trimmed
};

// Where the head ends in what was read so far: the offset just past the
// blank line ("\r\n\r\n"), or npos while it is incomplete.
size_t FindHeadEnd(std::string_view received);

// Parses a complete head (ending with "\r\n\r\n"). Refused with
// kInvalidArgument: a malformed request line, a version other than
// HTTP/1.0 and 1.1, header lines without ':' or with folding, a bare CR or
// LF, more than kMaxHeaderCount headers, and any request body
// (Content-Length other than 0, or Transfer-Encoding): nothing the metadata
// service serves takes one, and an unread body would be read as a request.
Result<RequestHead> ParseRequestHead(std::string_view head);

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length and Connection
  std::string body;
};

// The reply's bytes: status line, headers, Content-Length, "Connection:
// close" (one request per connection), and the body unless head_only
// (a HEAD request).
std::string FormatReply(const HttpReply& reply, bool head_only);

}  // namespace terway::metadata
