#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace terway::vpcsim {

// A transport-independent HTTP answer: the services are plain functions of
// their input, and server.cc maps them onto cpp-httplib.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// Serializes without throwing: request values (tags, names, echoed input in
// error messages) may hold invalid UTF-8, which nlohmann's dump() rejects
// with an exception; such bytes become U+FFFD instead.
inline std::string DumpJson(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace terway::vpcsim
