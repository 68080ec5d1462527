// The read-only actions: DescribeNetworkInterfaces, DescribeInstanceTypes,
// DescribeInstances (ECS) and DescribeVSwitches (VPC).
#include "tools/vpcsim/cloud.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

Result<json> VpcCloud::DescribeNetworkInterfaces(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(auto ids, ListParam(p, "NetworkInterfaceId", 100));
  TERWAY_ASSIGN_OR_RETURN(auto ips, ListParam(p, "PrivateIpAddress", 100));
  TERWAY_ASSIGN_OR_RETURN(auto tags, TagParams(p));
  TERWAY_ASSIGN_OR_RETURN(Page pg, PageParams(p, 1000, 500));
  auto instance = Get(p, "InstanceId");
  auto vsw = Get(p, "VSwitchId");
  auto vpc = Get(p, "VpcId");
  auto status = Get(p, "Status");
  auto type = Get(p, "Type");
  auto primary = Get(p, "PrimaryIpAddress");
  auto sg = Get(p, "SecurityGroupId");
  auto name = Get(p, "NetworkInterfaceName");
  auto group = Get(p, "ResourceGroupId");
  std::set<std::string> idset(ids.begin(), ids.end());
  std::vector<const EniRecord*> match;
  for (const auto& [id, e] : enis_) {
    if (!idset.empty() && !idset.count(id)) continue;
    if (instance && e.instance_id != *instance) continue;
    if (vsw && e.vswitch_id != *vsw) continue;
    if (vpc && world_.vpc_id != *vpc) continue;
    if (status && e.status != *status) continue;
    if (type && e.type != *type) continue;
    if (primary && e.primary_ip != *primary) continue;
    if (sg && std::find(e.security_groups.begin(), e.security_groups.end(), *sg) == e.security_groups.end()) continue;
    if (name && e.name != *name) continue;
    // The API reference: ENIs of the default resource group are listed
    // whatever ResourceGroupId says.
    if (group && !group->empty() && !e.resource_group_id.empty() && e.resource_group_id != *group) continue;
    if (!ips.empty()) {
      bool any = false;
      for (const auto& ip : ips) {
        any = any || ip == e.primary_ip ||
              std::find(e.secondary_ips.begin(), e.secondary_ips.end(), ip) != e.secondary_ips.end();
      }
      if (!any) continue;
    }
    bool tags_ok = true;
    for (const auto& t : tags) {
      bool found = false;
      for (const auto& et : e.tags) found = found || (et.key == t.key && (t.value.empty() || et.value == t.value));
      tags_ok = tags_ok && found;
    }
    if (!tags_ok) continue;
    match.push_back(&e);
  }
  std::sort(match.begin(), match.end(), [](const EniRecord* a, const EniRecord* b) { return a->seq < b->seq; });
  json list = json::array();
  for (const auto* e : Slice(match, pg)) list.push_back(ToJson(ToApi(*e)));
  json out = {{"NetworkInterfaceSets", {{"NetworkInterfaceSet", list}}}};
  PagingFields(&out, pg, match.size());
  return out;
}

Result<json> VpcCloud::DescribeInstanceTypes(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(auto types, ListParam(p, "InstanceTypes", 10));
  auto family = Get(p, "InstanceTypeFamily");
  json list = json::array();
  for (const auto& t : InstanceTypeCatalogue()) {
    if (!types.empty() && std::find(types.begin(), types.end(), t.instance_type_id) == types.end()) continue;
    if (family && t.instance_type_family != *family) continue;
    list.push_back(ToJson(t));
  }
  return json{{"NextToken", ""}, {"InstanceTypes", {{"InstanceType", list}}}};
}

Result<json> VpcCloud::DescribeInstances(const Params& p) {
  std::vector<std::string> ids;
  if (auto raw = Get(p, "InstanceIds")) {
    // InstanceIds is a JSON array in a string: ["i-1","i-2"].
    try {
      auto j = json::parse(*raw);
      if (!j.is_array() || j.size() > 100) throw std::runtime_error("want a JSON array of at most 100 ids");
      for (const auto& x : j) ids.push_back(x.get<std::string>());
    } catch (const std::exception& e) {
      return ApiError(400, "InvalidInstanceIds.Malformed",
                      "The specified parameter \"InstanceIds\" is not valid: want a JSON array of strings.");
    }
  }
  TERWAY_ASSIGN_OR_RETURN(Page pg, PageParams(p, 100, 100));
  auto vpc = Get(p, "VpcId");
  auto vsw = Get(p, "VSwitchId");
  auto zone = Get(p, "ZoneId");
  auto itype = Get(p, "InstanceType");
  std::vector<const InstanceRecord*> match;
  for (const auto& [id, i] : instances_) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) continue;
    if (vpc && *vpc != world_.vpc_id) continue;
    if (vsw && *vsw != i.vswitch_id) continue;
    if (zone && *zone != i.zone) continue;
    if (itype && *itype != i.instance_type) continue;
    match.push_back(&i);
  }
  std::sort(match.begin(), match.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  json list = json::array();
  for (const auto* i : Slice(match, pg)) list.push_back(ToJson(ToApi(*i)));
  json out = {{"Instances", {{"Instance", list}}}};
  PagingFields(&out, pg, match.size());
  return out;
}

Result<json> VpcCloud::DescribeVSwitches(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(Page pg, PageParams(p, 50, 50));
  std::vector<std::string> ids;
  if (auto v = Get(p, "VSwitchId")) ids = Split(*v, ',', true);
  auto vpc = Get(p, "VpcId");
  auto zone = Get(p, "ZoneId");
  std::vector<const WorldVSwitch*> match;
  for (const auto& v : world_.vswitches) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), v.id) == ids.end()) continue;
    if (vpc && *vpc != world_.vpc_id) continue;
    if (zone && *zone != v.zone) continue;
    match.push_back(&v);
  }
  json list = json::array();
  for (const auto* v : Slice(match, pg)) {
    cloud::VSwitch out;
    out.vswitch_id = v->id;
    out.vpc_id = world_.vpc_id;
    out.zone_id = v->zone;
    out.cidr_block = v->cidr.ToString();
    if (v->ipv6_cidr) out.ipv6_cidr_block = v->ipv6_cidr->ToString();
    out.status = "Available";
    out.vswitch_name = v->id;
    auto used = used_v4_.find(v->id);
    out.available_ip_address_count =
        static_cast<int64_t>(UsableCount(v->cidr)) - (used == used_v4_.end() ? 0 : static_cast<int64_t>(used->second.size()));
    list.push_back(ToJson(out));
  }
  json out = {{"VSwitches", {{"VSwitch", list}}}};
  PagingFields(&out, pg, match.size());
  return out;
}

}  // namespace terway::vpcsim
