// The ECS instance metadata service (http://100.100.100.200/latest/meta-data/):
// who this node is, its ENIs by MAC, and the RAM role's STS credentials.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cloud/backoff.h"
#include "cloud/http_transport.h"
#include "common/clock.h"
#include "common/result.h"

namespace terway::cloud {

inline constexpr const char* kMetadataBaseUrl = "http://100.100.100.200";

// Typed getters over one primitive, Get(path), so a fake needs only a map.
class InstanceMetadata {
 public:
  virtual ~InstanceMetadata() = default;
  // path is relative to /latest/meta-data/, e.g. "instance-id" or
  // "network/interfaces/macs/". The body with surrounding whitespace trimmed.
  virtual Result<std::string> Get(const std::string& path) = 0;

  Result<std::string> InstanceId() { return Get("instance-id"); }
  Result<std::string> RegionId() { return Get("region-id"); }
  Result<std::string> ZoneId() { return Get("zone-id"); }
  Result<std::string> InstanceType() { return Get("instance/instance-type"); }
  Result<std::string> PrimaryMac() { return Get("mac"); }
  Result<std::string> VpcId() { return Get("vpc-id"); }
  Result<std::string> VpcCidrBlock() { return Get("vpc-cidr-block"); }
  Result<std::string> VSwitchId() { return Get("vswitch-id"); }
  Result<std::string> VSwitchCidrBlock() { return Get("vswitch-cidr-block"); }
  Result<std::string> PrivateIpv4() { return Get("private-ipv4"); }

  // MACs of the ENIs attached to this instance (the listing ends each with '/').
  Result<std::vector<std::string>> Macs();
  Result<std::string> EniId(const std::string& mac) { return Get(MacPath(mac, "network-interface-id")); }
  Result<std::string> EniPrimaryIp(const std::string& mac) { return Get(MacPath(mac, "primary-ip-address")); }
  // private-ipv4s is a JSON array of strings.
  Result<std::vector<std::string>> EniPrivateIpv4s(const std::string& mac);
  Result<std::string> EniVSwitchId(const std::string& mac) { return Get(MacPath(mac, "vswitch-id")); }
  Result<std::string> EniVSwitchCidrBlock(const std::string& mac) { return Get(MacPath(mac, "vswitch-cidr-block")); }
  Result<std::string> EniGateway(const std::string& mac) { return Get(MacPath(mac, "gateway")); }
  Result<std::string> EniNetmask(const std::string& mac) { return Get(MacPath(mac, "netmask")); }
  Result<std::string> EniVpcId(const std::string& mac) { return Get(MacPath(mac, "vpc-id")); }
  Result<std::string> EniVpcCidrBlock(const std::string& mac) { return Get(MacPath(mac, "vpc-cidr-block")); }
  // IPv6 (Alibaba's metadata reference; only for an ENI in an IPv6-enabled
  // vSwitch). ipv6s is a bracketed list, unquoted on ECS ("[2408::1,2408::2]");
  // JSON strings are accepted too. 404 (an ENI without IPv6) reads as empty;
  // an entry that is not an IPv6 address is an error.
  Result<std::vector<std::string>> EniIpv6s(const std::string& mac);
  // The vSwitch's IPv6 gateway, e.g. "2408:...:a204:ffff:ffff:ffff:fff7".
  Result<std::string> EniIpv6Gateway(const std::string& mac) { return Get(MacPath(mac, "ipv6-gateway")); }
  // The vSwitch's IPv6 /64, e.g. "2408:...:a204::/64".
  Result<std::string> EniVSwitchIpv6CidrBlock(const std::string& mac) {
    return Get(MacPath(mac, "vswitch-ipv6-cidr-block"));
  }
  // The VPC's IPv6 blocks: "[2408:...:a200::/56]".
  Result<std::vector<std::string>> EniVpcIpv6CidrBlocks(const std::string& mac);

  // Names of the RAM roles attached to the instance (one per line).
  Result<std::vector<std::string>> RamRoles();

 private:
  static std::string MacPath(const std::string& mac, const char* leaf) {
    return "network/interfaces/macs/" + mac + "/" + leaf;
  }
};

struct MetadataConfig {
  std::string base_url = kMetadataBaseUrl;  // vpcsim/tests: http://127.0.0.1:PORT
  // Lifetime requested for a session token (the service accepts 1..21600).
  std::chrono::seconds token_ttl{21600};
  int max_attempts = 5;
  BackoffPolicy backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(2000), 2.0};
  std::chrono::milliseconds deadline{20000};  // per Get, across retries
  std::chrono::milliseconds request_timeout{2000};
  // Sent with every request. Only for emulators that serve several instances
  // on one loopback port (vpcsim's X-Vpcsim-Instance-Id); empty on ECS.
  std::vector<std::pair<std::string, std::string>> extra_headers;
};

// The real client. Token flow (ECS "hardened mode"): PUT /latest/api/token with
// X-aliyun-ecs-metadata-token-ttl-seconds returns a token; each read sends it
// in X-aliyun-ecs-metadata-token. The token is renewed before its TTL ends and
// once after a 401 (the service restarted or the token was revoked).
//
// Tokenless fallback: only when the token endpoint itself answers 404 or 405,
// i.e. a metadata service that predates the token flow (normal mode still
// serves tokenless reads there). Any other token failure is an error, because
// a hardened instance refuses tokenless reads with 403 and falling back would
// only hide the real cause.
class HttpMetadataClient : public InstanceMetadata {
 public:
  HttpMetadataClient(MetadataConfig config, HttpTransport* transport, const Clock* clock,
                     Sleeper* sleeper, Uniform01 random = DefaultUniform01());
  Result<std::string> Get(const std::string& path) override;

 private:
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point renew_at;
  };
  // Returns "" with ok when running tokenless.
  Result<std::string> CurrentToken(std::chrono::steady_clock::time_point deadline);
  // One HTTP exchange with retries on transport errors, 429 and 5xx.
  Result<HttpResponse> Exchange(HttpRequest req, std::chrono::steady_clock::time_point deadline);

  MetadataConfig config_;
  HttpTransport* transport_;
  const Clock* clock_;
  Sleeper* sleeper_;
  Uniform01 random_;
  std::mutex mu_;
  std::optional<Token> token_;
  bool tokenless_ = false;
};

}  // namespace terway::cloud
