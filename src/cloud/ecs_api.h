// The ECS/VPC actions Terway needs, typed, behind one small interface: the
// pool (src/ipam) depends on EcsApi only, tests use MockEcsApi
// (tests/unit/cloud/mock_ecs_api.h), production uses OpenApiEcsClient.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cloud/backoff.h"
#include "cloud/step_backoff.h"
#include "cloud/openapi_client.h"
#include "cloud/types.h"
#include "common/clock.h"
#include "common/result.h"

namespace terway::cloud {

struct CreateEniRequest {
  std::string vswitch_id;
  std::vector<std::string> security_group_ids;  // 1..5
  int secondary_private_ip_count = 0;           // besides the ENI's primary IP
  int ipv6_count = 0;
  std::vector<Tag> tags;
  std::string name;
  std::string description;
  std::string resource_group_id;  // ResourceGroupId; "": the account's default group
  // Idempotency key; generated (once per logical call) when empty. A caller
  // that persists it before the call can repeat the call after a crash and
  // still get the same ENI.
  std::string client_token;
};

struct DescribeEnisFilter {
  std::string vpc_id;
  std::string vswitch_id;
  std::string instance_id;
  std::string status;  // Available, InUse, ...
  std::string type;    // Primary, Secondary
  std::vector<std::string> eni_ids;
  std::vector<std::string> private_ips;
  std::vector<Tag> tags;
  // ResourceGroupId. The cloud lists ENIs of the account's default group
  // whatever this says (API reference), so it narrows, never isolates.
  std::string resource_group_id;
};

struct AssignIpsRequest {
  std::string eni_id;
  int count = 0;                       // either a count ...
  std::vector<std::string> addresses;  // ... or explicit addresses
  std::string client_token;            // as in CreateEniRequest
};

class EcsApi {
 public:
  virtual ~EcsApi() = default;

  virtual Result<NetworkInterface> CreateNetworkInterface(const CreateEniRequest& req) = 0;
  // Asynchronous on the cloud: the ENI goes Attaching -> InUse (see WaitForEniStatus).
  virtual Status AttachNetworkInterface(const std::string& eni_id, const std::string& instance_id) = 0;
  // Asynchronous: Detaching -> Available.
  virtual Status DetachNetworkInterface(const std::string& eni_id, const std::string& instance_id) = 0;
  virtual Status DeleteNetworkInterface(const std::string& eni_id) = 0;
  // Every page, concatenated.
  virtual Result<std::vector<NetworkInterface>> DescribeNetworkInterfaces(
      const DescribeEnisFilter& filter) = 0;
  // Returns the addresses assigned by this call.
  virtual Result<std::vector<std::string>> AssignPrivateIpAddresses(const AssignIpsRequest& req) = 0;
  virtual Status UnassignPrivateIpAddresses(const std::string& eni_id,
                                            const std::vector<std::string>& addresses) = 0;
  virtual Result<std::vector<std::string>> AssignIpv6Addresses(const AssignIpsRequest& req) = 0;
  virtual Status UnassignIpv6Addresses(const std::string& eni_id,
                                       const std::vector<std::string>& addresses) = 0;
  // Empty list: all types.
  virtual Result<std::vector<InstanceType>> DescribeInstanceTypes(
      const std::vector<std::string>& instance_types) = 0;
  virtual Result<std::vector<VSwitch>> DescribeVSwitches(const std::string& vpc_id,
                                                         const std::vector<std::string>& vswitch_ids) = 0;
  virtual Result<std::vector<Instance>> DescribeInstances(const std::vector<std::string>& instance_ids) = 0;
};

// EcsApi over the real OpenAPI client.
class OpenApiEcsClient : public EcsApi {
 public:
  explicit OpenApiEcsClient(OpenApiClient* client) : client_(client) {}

  Result<NetworkInterface> CreateNetworkInterface(const CreateEniRequest& req) override;
  Status AttachNetworkInterface(const std::string& eni_id, const std::string& instance_id) override;
  Status DetachNetworkInterface(const std::string& eni_id, const std::string& instance_id) override;
  Status DeleteNetworkInterface(const std::string& eni_id) override;
  Result<std::vector<NetworkInterface>> DescribeNetworkInterfaces(
      const DescribeEnisFilter& filter) override;
  Result<std::vector<std::string>> AssignPrivateIpAddresses(const AssignIpsRequest& req) override;
  Status UnassignPrivateIpAddresses(const std::string& eni_id,
                                    const std::vector<std::string>& addresses) override;
  Result<std::vector<std::string>> AssignIpv6Addresses(const AssignIpsRequest& req) override;
  Status UnassignIpv6Addresses(const std::string& eni_id,
                               const std::vector<std::string>& addresses) override;
  Result<std::vector<InstanceType>> DescribeInstanceTypes(
      const std::vector<std::string>& instance_types) override;
  Result<std::vector<VSwitch>> DescribeVSwitches(const std::string& vpc_id,
                                                 const std::vector<std::string>& vswitch_ids) override;
  Result<std::vector<Instance>> DescribeInstances(const std::vector<std::string>& instance_ids) override;

  // Page size asked of DescribeNetworkInterfaces (MaxResults, 10..500).
  static constexpr int kEniPageSize = 100;

 private:
  OpenApiClient* client_;
};

struct WaitOptions {
  StepBackoff backoff = kDefaultEniStatusWait;  // step_backoff.h
  Uniform01 random;  // for the jitter; empty: DefaultUniform01()
};

// Polls DescribeNetworkInterfaces until the ENI reaches `want` (kEniInUse after
// an attach, kEniAvailable after a detach): at most `backoff.steps` polls,
// spaced by the backoff. Fails with kTimeout naming the last status when the
// polls run out, and with kNotFound when the ENI disappears.
Result<NetworkInterface> WaitForEniStatus(EcsApi* api, const std::string& eni_id,
                                          const std::string& want, const Clock* clock,
                                          Sleeper* sleeper, const WaitOptions& opts = {});

}  // namespace terway::cloud
