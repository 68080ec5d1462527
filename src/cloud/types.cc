#include "cloud/types.h"

#include <nlohmann/json.hpp>

namespace terway::cloud {

using nlohmann::json;

namespace {

// Strict-typed readers: a known field with the wrong type is an error naming
// the field; an absent field keeps the default (the API omits empty fields).
Status ReadString(const json& j, const char* key, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_string()) return Errorf(ErrorCode::kInvalidArgument, "field {}: want a string", key);
  *out = it->get<std::string>();
  return Ok();
}

template <typename Int>
Status ReadInt(const json& j, const char* key, Int* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_number_integer() && !it->is_number_unsigned()) {
    return Errorf(ErrorCode::kInvalidArgument, "field {}: want an integer", key);
  }
  *out = it->get<Int>();
  return Ok();
}

Status ReadDouble(const json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_number()) return Errorf(ErrorCode::kInvalidArgument, "field {}: want a number", key);
  *out = it->get<double>();
  return Ok();
}

Status ReadBool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Ok();
  if (!it->is_boolean()) return Errorf(ErrorCode::kInvalidArgument, "field {}: want a boolean", key);
  *out = it->get<bool>();
  return Ok();
}

// Alibaba wraps every list in an object: {"Outer": {"Inner": [...]}}.
Result<const json*> WrappedList(const json& j, const char* outer, const char* inner) {
  static const json kEmpty = json::array();
  auto it = j.find(outer);
  if (it == j.end() || it->is_null()) return &kEmpty;
  if (!it->is_object()) return Errorf(ErrorCode::kInvalidArgument, "field {}: want an object", outer);
  auto in = it->find(inner);
  if (in == it->end() || in->is_null()) return &kEmpty;
  if (!in->is_array()) {
    return Errorf(ErrorCode::kInvalidArgument, "field {}.{}: want an array", outer, inner);
  }
  return &*in;
}

Status ReadStringList(const json& j, const char* outer, const char* inner,
                      std::vector<std::string>* out) {
  TERWAY_ASSIGN_OR_RETURN(const json* arr, WrappedList(j, outer, inner));
  out->clear();
  for (const auto& e : *arr) {
    if (!e.is_string()) {
      return Errorf(ErrorCode::kInvalidArgument, "field {}.{}: want strings", outer, inner);
    }
    out->push_back(e.get<std::string>());
  }
  return Ok();
}

json PrivateIpSetsJson(const std::vector<PrivateIp>& ips) {
  json arr = json::array();
  for (const auto& ip : ips) arr.push_back({{"PrivateIpAddress", ip.address}, {"Primary", ip.primary}});
  return {{"PrivateIpSet", arr}};
}

json Ipv6SetsJson(const std::vector<std::string>& ips) {
  json arr = json::array();
  for (const auto& ip : ips) arr.push_back({{"Ipv6Address", ip}});
  return {{"Ipv6Set", arr}};
}

Status ReadPrivateIpSets(const json& j, std::vector<PrivateIp>* out) {
  TERWAY_ASSIGN_OR_RETURN(const json* arr, WrappedList(j, "PrivateIpSets", "PrivateIpSet"));
  out->clear();
  for (const auto& e : *arr) {
    if (!e.is_object()) return MakeError(ErrorCode::kInvalidArgument, "PrivateIpSet: want objects");
    PrivateIp ip;
    TERWAY_TRY(ReadString(e, "PrivateIpAddress", &ip.address));
    TERWAY_TRY(ReadBool(e, "Primary", &ip.primary));
    out->push_back(std::move(ip));
  }
  return Ok();
}

Status ReadIpv6Sets(const json& j, std::vector<std::string>* out) {
  TERWAY_ASSIGN_OR_RETURN(const json* arr, WrappedList(j, "Ipv6Sets", "Ipv6Set"));
  out->clear();
  for (const auto& e : *arr) {
    if (!e.is_object()) return MakeError(ErrorCode::kInvalidArgument, "Ipv6Set: want objects");
    std::string a;
    TERWAY_TRY(ReadString(e, "Ipv6Address", &a));
    out->push_back(std::move(a));
  }
  return Ok();
}

// Converts a throwing nlohmann access into a Result at this module's edge.
template <typename F>
auto Guard(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: {}", what, e.what());
  }
}

}  // namespace

json ToJson(const NetworkInterface& eni) {
  json tags = json::array();
  for (const auto& t : eni.tags) tags.push_back({{"TagKey", t.key}, {"TagValue", t.value}});
  json j = {
      {"NetworkInterfaceId", eni.network_interface_id},
      {"Status", eni.status},
      {"Type", eni.type},
      {"VpcId", eni.vpc_id},
      {"VSwitchId", eni.vswitch_id},
      {"ZoneId", eni.zone_id},
      {"InstanceId", eni.instance_id},
      {"MacAddress", eni.mac_address},
      {"PrivateIpAddress", eni.private_ip_address},
      {"NetworkInterfaceName", eni.network_interface_name},
      {"Description", eni.description},
      {"CreationTime", eni.creation_time},
      {"SecurityGroupIds", {{"SecurityGroupId", eni.security_group_ids}}},
      {"PrivateIpSets", PrivateIpSetsJson(eni.private_ip_sets)},
      {"Ipv6Sets", Ipv6SetsJson(eni.ipv6_sets)},
      {"Tags", {{"Tag", tags}}},
      {"ResourceGroupId", eni.resource_group_id},
  };
  if (!eni.instance_id.empty()) {
    j["Attachment"] = {{"InstanceId", eni.instance_id}, {"DeviceIndex", eni.device_index}};
  }
  return j;
}

Result<NetworkInterface> NetworkInterfaceFromJson(const json& j) {
  return Guard("NetworkInterfaceSet", [&]() -> Result<NetworkInterface> {
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "network interface: want an object");
    NetworkInterface e;
    TERWAY_TRY(ReadString(j, "NetworkInterfaceId", &e.network_interface_id));
    TERWAY_TRY(ReadString(j, "Status", &e.status));
    TERWAY_TRY(ReadString(j, "Type", &e.type));
    TERWAY_TRY(ReadString(j, "VpcId", &e.vpc_id));
    TERWAY_TRY(ReadString(j, "VSwitchId", &e.vswitch_id));
    TERWAY_TRY(ReadString(j, "ZoneId", &e.zone_id));
    TERWAY_TRY(ReadString(j, "InstanceId", &e.instance_id));
    TERWAY_TRY(ReadString(j, "MacAddress", &e.mac_address));
    TERWAY_TRY(ReadString(j, "PrivateIpAddress", &e.private_ip_address));
    // DescribeInstances names the primary IP PrimaryIpAddress.
    if (e.private_ip_address.empty()) TERWAY_TRY(ReadString(j, "PrimaryIpAddress", &e.private_ip_address));
    TERWAY_TRY(ReadString(j, "NetworkInterfaceName", &e.network_interface_name));
    TERWAY_TRY(ReadString(j, "Description", &e.description));
    TERWAY_TRY(ReadString(j, "CreationTime", &e.creation_time));
    TERWAY_TRY(ReadString(j, "ResourceGroupId", &e.resource_group_id));
    TERWAY_TRY(ReadStringList(j, "SecurityGroupIds", "SecurityGroupId", &e.security_group_ids));
    TERWAY_TRY(ReadPrivateIpSets(j, &e.private_ip_sets));
    TERWAY_TRY(ReadIpv6Sets(j, &e.ipv6_sets));
    TERWAY_ASSIGN_OR_RETURN(const json* tags, WrappedList(j, "Tags", "Tag"));
    for (const auto& t : *tags) {
      if (!t.is_object()) return MakeError(ErrorCode::kInvalidArgument, "Tags.Tag: want objects");
      Tag tag;
      TERWAY_TRY(ReadString(t, "TagKey", &tag.key));
      TERWAY_TRY(ReadString(t, "TagValue", &tag.value));
      e.tags.push_back(std::move(tag));
    }
    auto att = j.find("Attachment");
    if (att != j.end() && att->is_object()) {
      TERWAY_TRY(ReadInt(*att, "DeviceIndex", &e.device_index));
      if (e.instance_id.empty()) TERWAY_TRY(ReadString(*att, "InstanceId", &e.instance_id));
    }
    return e;
  });
}

json ToJson(const InstanceType& t) {
  return {
      {"InstanceTypeId", t.instance_type_id},
      {"InstanceTypeFamily", t.instance_type_family},
      {"CpuCoreCount", t.cpu_core_count},
      {"MemorySize", t.memory_size},
      {"EniQuantity", t.eni_quantity},
      {"EniPrivateIpAddressQuantity", t.eni_private_ip_address_quantity},
      {"EniIpv6AddressQuantity", t.eni_ipv6_address_quantity},
      {"EniTotalQuantity", t.eni_total_quantity},
      {"EniTrunkSupported", t.eni_trunk_supported},
  };
}

Result<InstanceType> InstanceTypeFromJson(const json& j) {
  return Guard("InstanceType", [&]() -> Result<InstanceType> {
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "instance type: want an object");
    InstanceType t;
    TERWAY_TRY(ReadString(j, "InstanceTypeId", &t.instance_type_id));
    TERWAY_TRY(ReadString(j, "InstanceTypeFamily", &t.instance_type_family));
    TERWAY_TRY(ReadInt(j, "CpuCoreCount", &t.cpu_core_count));
    TERWAY_TRY(ReadDouble(j, "MemorySize", &t.memory_size));
    TERWAY_TRY(ReadInt(j, "EniQuantity", &t.eni_quantity));
    TERWAY_TRY(ReadInt(j, "EniPrivateIpAddressQuantity", &t.eni_private_ip_address_quantity));
    TERWAY_TRY(ReadInt(j, "EniIpv6AddressQuantity", &t.eni_ipv6_address_quantity));
    TERWAY_TRY(ReadInt(j, "EniTotalQuantity", &t.eni_total_quantity));
    TERWAY_TRY(ReadBool(j, "EniTrunkSupported", &t.eni_trunk_supported));
    return t;
  });
}

json ToJson(const VSwitch& v) {
  return {
      {"VSwitchId", v.vswitch_id},
      {"VpcId", v.vpc_id},
      {"ZoneId", v.zone_id},
      {"CidrBlock", v.cidr_block},
      {"Ipv6CidrBlock", v.ipv6_cidr_block},
      {"Status", v.status},
      {"VSwitchName", v.vswitch_name},
      {"AvailableIpAddressCount", v.available_ip_address_count},
      {"CreationTime", v.creation_time},
  };
}

Result<VSwitch> VSwitchFromJson(const json& j) {
  return Guard("VSwitch", [&]() -> Result<VSwitch> {
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "vswitch: want an object");
    VSwitch v;
    TERWAY_TRY(ReadString(j, "VSwitchId", &v.vswitch_id));
    TERWAY_TRY(ReadString(j, "VpcId", &v.vpc_id));
    TERWAY_TRY(ReadString(j, "ZoneId", &v.zone_id));
    TERWAY_TRY(ReadString(j, "CidrBlock", &v.cidr_block));
    TERWAY_TRY(ReadString(j, "Ipv6CidrBlock", &v.ipv6_cidr_block));
    TERWAY_TRY(ReadString(j, "Status", &v.status));
    TERWAY_TRY(ReadString(j, "VSwitchName", &v.vswitch_name));
    TERWAY_TRY(ReadInt(j, "AvailableIpAddressCount", &v.available_ip_address_count));
    TERWAY_TRY(ReadString(j, "CreationTime", &v.creation_time));
    return v;
  });
}

json ToJson(const Instance& i) {
  json enis = json::array();
  for (const auto& e : i.network_interfaces) {
    // DescribeInstances' NetworkInterface is a narrower shape than
    // DescribeNetworkInterfaces' and names the primary IP PrimaryIpAddress.
    enis.push_back({
        {"NetworkInterfaceId", e.network_interface_id},
        {"MacAddress", e.mac_address},
        {"PrimaryIpAddress", e.private_ip_address},
        {"Type", e.type},
        {"PrivateIpSets", PrivateIpSetsJson(e.private_ip_sets)},
        {"Ipv6Sets", Ipv6SetsJson(e.ipv6_sets)},
    });
  }
  json ips = json::array();
  if (!i.primary_ip.empty()) ips.push_back(i.primary_ip);
  return {
      {"InstanceId", i.instance_id},
      {"InstanceType", i.instance_type},
      {"RegionId", i.region_id},
      {"ZoneId", i.zone_id},
      {"Status", i.status},
      {"InstanceNetworkType", "vpc"},
      {"VpcAttributes",
       {{"VpcId", i.vpc_id}, {"VSwitchId", i.vswitch_id}, {"PrivateIpAddress", {{"IpAddress", ips}}}}},
      {"NetworkInterfaces", {{"NetworkInterface", enis}}},
  };
}

Result<Instance> InstanceFromJson(const json& j) {
  return Guard("Instance", [&]() -> Result<Instance> {
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "instance: want an object");
    Instance i;
    TERWAY_TRY(ReadString(j, "InstanceId", &i.instance_id));
    TERWAY_TRY(ReadString(j, "InstanceType", &i.instance_type));
    TERWAY_TRY(ReadString(j, "RegionId", &i.region_id));
    TERWAY_TRY(ReadString(j, "ZoneId", &i.zone_id));
    TERWAY_TRY(ReadString(j, "Status", &i.status));
    auto va = j.find("VpcAttributes");
    if (va != j.end() && va->is_object()) {
      TERWAY_TRY(ReadString(*va, "VpcId", &i.vpc_id));
      TERWAY_TRY(ReadString(*va, "VSwitchId", &i.vswitch_id));
      std::vector<std::string> ips;
      TERWAY_TRY(ReadStringList(*va, "PrivateIpAddress", "IpAddress", &ips));
      if (!ips.empty()) i.primary_ip = ips[0];
    }
    TERWAY_ASSIGN_OR_RETURN(const json* enis, WrappedList(j, "NetworkInterfaces", "NetworkInterface"));
    for (const auto& e : *enis) {
      TERWAY_ASSIGN_OR_RETURN(auto eni, NetworkInterfaceFromJson(e));
      eni.instance_id = i.instance_id;
      i.network_interfaces.push_back(std::move(eni));
    }
    return i;
  });
}

json ToJson(const ApiError& e) {
  return {{"RequestId", e.request_id}, {"HostId", e.host_id}, {"Code", e.code}, {"Message", e.message}};
}

Result<ApiError> ApiErrorFromJson(int http_status, const json& j) {
  return Guard("error body", [&]() -> Result<ApiError> {
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "error body: want an object");
    ApiError e;
    e.http_status = http_status;
    TERWAY_TRY(ReadString(j, "RequestId", &e.request_id));
    TERWAY_TRY(ReadString(j, "HostId", &e.host_id));
    TERWAY_TRY(ReadString(j, "Code", &e.code));
    TERWAY_TRY(ReadString(j, "Message", &e.message));
    if (e.code.empty()) return MakeError(ErrorCode::kInvalidArgument, "error body: no Code");
    return e;
  });
}

}  // namespace terway::cloud
