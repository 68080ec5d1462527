// Alibaba Cloud ECS (2014-05-26) and VPC (2016-04-28) API objects, shared by
// the real client (src/cloud) and the emulator's server (tools/vpcsim).
//
// Field names follow the public API reference exactly; the JSON helpers in
// types.cc produce/consume the documented wire shapes (e.g. PrivateIpSets ->
// {"PrivateIpSet": [...]}). Keep this file free of I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace terway::cloud {

inline constexpr const char* kEcsApiVersion = "2014-05-26";
inline constexpr const char* kVpcApiVersion = "2016-04-28";

// ENI statuses as the API reports them.
inline constexpr const char* kEniAvailable = "Available";
inline constexpr const char* kEniAttaching = "Attaching";
inline constexpr const char* kEniInUse = "InUse";
inline constexpr const char* kEniDetaching = "Detaching";
inline constexpr const char* kEniDeleting = "Deleting";

struct Tag {
  std::string key;    // TagKey
  std::string value;  // TagValue
  bool operator==(const Tag&) const = default;
};

struct PrivateIp {
  std::string address;  // PrivateIpAddress
  bool primary = false; // Primary
  bool operator==(const PrivateIp&) const = default;
};

struct NetworkInterface {
  std::string network_interface_id;  // NetworkInterfaceId, "eni-..."
  std::string status;                // Status: Available/Attaching/InUse/Detaching/Deleting
  std::string type;                  // Type: Primary/Secondary
  std::string vpc_id;
  std::string vswitch_id;            // VSwitchId
  std::string zone_id;
  std::string instance_id;           // InstanceId (empty when Available)
  std::string mac_address;           // MacAddress
  std::string private_ip_address;    // PrivateIpAddress (the ENI's primary IP)
  std::string network_interface_name;
  std::string description;
  std::string creation_time;         // ISO 8601
  std::vector<std::string> security_group_ids;  // SecurityGroupIds.SecurityGroupId
  std::vector<PrivateIp> private_ip_sets;       // PrivateIpSets.PrivateIpSet
  std::vector<std::string> ipv6_sets;           // Ipv6Sets.Ipv6Set[].Ipv6Address
  std::vector<Tag> tags;                        // Tags.Tag
  std::string resource_group_id;                // ResourceGroupId
  int device_index = 0;                         // Attachment.DeviceIndex
};

struct InstanceType {
  std::string instance_type_id;        // InstanceTypeId, "ecs.g7.large"
  std::string instance_type_family;    // InstanceTypeFamily, "ecs.g7"
  int cpu_core_count = 0;
  double memory_size = 0;              // GiB
  int eni_quantity = 0;                // EniQuantity (includes the primary ENI)
  int eni_private_ip_address_quantity = 0;  // per ENI, including its primary IP
  int eni_ipv6_address_quantity = 0;   // per ENI
  int eni_total_quantity = 0;          // EniTotalQuantity (incl. trunk-mode ENIs)
  bool eni_trunk_supported = false;
};

struct VSwitch {
  std::string vswitch_id;   // VSwitchId
  std::string vpc_id;
  std::string zone_id;
  std::string cidr_block;   // CidrBlock
  std::string ipv6_cidr_block;
  std::string status;       // Available
  std::string vswitch_name;
  int64_t available_ip_address_count = 0;
  std::string creation_time;
};

struct Instance {
  std::string instance_id;
  std::string instance_type;
  std::string region_id;
  std::string zone_id;
  std::string status;             // Running
  std::string vpc_id;             // VpcAttributes.VpcId
  std::string vswitch_id;         // VpcAttributes.VSwitchId
  std::string primary_ip;         // VpcAttributes.PrivateIpAddress.IpAddress[0]
  std::vector<NetworkInterface> network_interfaces;  // NetworkInterfaces.NetworkInterface
};

// An error body: {"RequestId","HostId","Code","Message"}.
struct ApiError {
  int http_status = 0;
  std::string request_id;
  std::string host_id;
  std::string code;
  std::string message;
};

// JSON (wire) conversions. FromJson is strict about types of known fields and
// ignores unknown ones; it fails with kInvalidArgument naming the field.
nlohmann::json ToJson(const NetworkInterface& eni);
Result<NetworkInterface> NetworkInterfaceFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const InstanceType& t);
Result<InstanceType> InstanceTypeFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const VSwitch& v);
Result<VSwitch> VSwitchFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const Instance& i);
Result<Instance> InstanceFromJson(const nlohmann::json& j);
nlohmann::json ToJson(const ApiError& e);
Result<ApiError> ApiErrorFromJson(int http_status, const nlohmann::json& j);

}  // namespace terway::cloud
