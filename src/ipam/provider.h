// The per-cloud operations the pool needs (Cilium's split: the generic engine
// decides without I/O; a provider performs). The real implementation adapts
// the ECS/VPC OpenAPI client (src/cloud); tests use a fake with injectable
// failures. Errors from the cloud keep their API code in Error::cloud_code
// ("InvalidVSwitchId.IpNotEnough", "EniPerInstanceLimitExceeded",
// "Throttling.User", ...), which the pool branches on.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cloud/types.h"
#include "common/result.h"

namespace terway::ipam {

// Tag every ENI we create carries besides eni_tags (creator=terway): the
// instance it was made for. An ENI that is Available (never attached, or
// detached) has no InstanceId, so this tag is how leak collection finds the
// ENIs of *this* node after a crash between create and attach.
inline constexpr const char* kInstanceTagKey = "terway.instance-id";

// The cloud's documented error codes the pool reacts to.
inline constexpr const char* kCodeIpNotEnough = "InvalidVSwitchId.IpNotEnough";
inline constexpr const char* kCodeEniLimit = "EniPerInstanceLimitExceeded";

// An instance type's ENI quotas (DescribeInstanceTypes).
struct InstanceLimits {
  int eni_quantity = 0;     // EniQuantity, including the primary ENI
  int ips_per_eni = 0;      // EniPrivateIpAddressQuantity, including each ENI's primary IP
  int ipv6_per_eni = 0;     // EniIpv6AddressQuantity (0: the type has no IPv6)
};

struct CreateEniRequest {
  std::string vswitch_id;
  std::vector<std::string> security_group_ids;
  std::map<std::string, std::string> tags;
  int secondary_ip_count = 0;  // SecondaryPrivateIpAddressCount (<= 9: 10 IPs per call)
  int ipv6_count = 0;          // Ipv6AddressCount (dual stack; <= 10)
  std::string resource_group_id;  // ResourceGroupId; "": the account's default
};

class EniProvider {
 public:
  virtual ~EniProvider() = default;

  // CreateNetworkInterface: an Available ENI with its primary IP and
  // secondary_ip_count secondary IPs.
  virtual Result<cloud::NetworkInterface> CreateEni(const CreateEniRequest& req) = 0;
  // AttachNetworkInterface and wait until the ENI is InUse on the instance.
  virtual Status AttachEni(const std::string& eni_id, const std::string& instance_id) = 0;
  // DetachNetworkInterface and wait until the ENI is Available.
  virtual Status DetachEni(const std::string& eni_id, const std::string& instance_id) = 0;
  // DeleteNetworkInterface (the ENI must be Available).
  virtual Status DeleteEni(const std::string& eni_id) = 0;
  // AssignPrivateIpAddresses with SecondaryPrivateIpAddressCount = count
  // (<= 10); returns the new addresses.
  virtual Result<std::vector<std::string>> AssignIps(const std::string& eni_id, int count) = 0;
  // UnassignPrivateIpAddresses.
  virtual Status UnassignIps(const std::string& eni_id, const std::vector<std::string>& ips) = 0;
  // AssignIpv6Addresses with Ipv6AddressCount = count (<= 10) from the
  // vSwitch's IPv6 block; returns the new addresses.
  virtual Result<std::vector<std::string>> AssignIpv6(const std::string& eni_id, int count) = 0;
  // UnassignIpv6Addresses.
  virtual Status UnassignIpv6(const std::string& eni_id, const std::vector<std::string>& ips) = 0;
  // Every ENI attached to the instance, plus the Available ENIs tagged
  // kInstanceTagKey=instance_id (DescribeNetworkInterfaces, all pages).
  virtual Result<std::vector<cloud::NetworkInterface>> ListEnis(const std::string& instance_id) = 0;
  // The security groups of the instance's primary ENI
  // (DescribeNetworkInterfaces InstanceId=instance_id, Type=Primary).
  virtual Result<std::vector<std::string>> PrimaryEniSecurityGroups(const std::string& instance_id) = 0;
  virtual Result<std::vector<cloud::VSwitch>> DescribeVSwitches(const std::vector<std::string>& ids) = 0;
  virtual Result<InstanceLimits> GetInstanceLimits(const std::string& instance_type) = 0;
};

}  // namespace terway::ipam
