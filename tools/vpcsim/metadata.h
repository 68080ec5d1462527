// The ECS instance metadata service (http://100.100.100.200/latest/...).
//
// Who is asking: inside the VPC the server resolves the caller's instance from
// the packet's source IP (any private IP of an InUse ENI of that instance).
// On the loopback listener, which only tests and tools reach, the caller names
// its instance with the emulator-only header X-Vpcsim-Instance-Id.
//
// Tokens: PUT /latest/api/token with X-aliyun-ecs-metadata-token-ttl-seconds
// (1..21600) returns a token bound to the caller's instance; reads present it
// in X-aliyun-ecs-metadata-token. A wrong or expired token is 401. Tokenless
// reads are answered in normal mode (ECS's default) and refused with 401 in
// hardened mode (world: metadata_hardened: true).
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

inline constexpr const char* kEmulatorInstanceHeader = "X-Vpcsim-Instance-Id";

struct MetadataRequest {
  std::string method;  // GET / PUT
  std::string path;    // "/latest/meta-data/instance-id"
  std::optional<std::string> token;      // X-aliyun-ecs-metadata-token
  std::optional<std::string> token_ttl;  // X-aliyun-ecs-metadata-token-ttl-seconds
  std::string instance_id;               // resolved by the server; empty = unknown caller
};

class MetadataService {
 public:
  explicit MetadataService(VpcCloud* cloud) : cloud_(cloud) {}
  HttpReply Handle(const MetadataRequest& r);

 private:
  HttpReply MetaData(const std::string& instance_id, const std::string& rest);
  VpcCloud* cloud_;
  std::mutex mu_;
  struct Token {
    std::string instance_id;
    Clock::TimePoint expires;
  };
  std::map<std::string, Token> tokens_;
};

}  // namespace terway::vpcsim
