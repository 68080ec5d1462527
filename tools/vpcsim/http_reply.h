#pragma once

#include <string>

namespace terway::vpcsim {

// A transport-independent HTTP answer: the services are plain functions of
// their input, and server.cc maps them onto cpp-httplib.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

}  // namespace terway::vpcsim
