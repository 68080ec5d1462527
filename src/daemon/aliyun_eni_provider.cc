#include "daemon/aliyun_eni_provider.h"

#include <set>

namespace terway::daemon {

Result<cloud::NetworkInterface> AliyunEniProvider::CreateEni(const ipam::CreateEniRequest& req) {
  cloud::CreateEniRequest c;
  c.vswitch_id = req.vswitch_id;
  c.security_group_ids = req.security_group_ids;
  c.secondary_private_ip_count = req.secondary_ip_count;
  c.ipv6_count = req.ipv6_count;
  c.resource_group_id = req.resource_group_id;
  for (const auto& [k, v] : req.tags) c.tags.push_back({k, v});
  c.description = "interface created by terway";
  return api_->CreateNetworkInterface(c);
}

Status AliyunEniProvider::AttachEni(const std::string& eni_id, const std::string& instance_id) {
  auto s = api_->AttachNetworkInterface(eni_id, instance_id);
  if (!s.ok()) {
    // A retried attach whose first try went through: the ENI is already
    // attaching or attached to this instance. Anything else is a real error.
    if (s.error().cloud_code != "InvalidOperation.InvalidEniState") return s;
  }
  auto r = cloud::WaitForEniStatus(api_, eni_id, cloud::kEniInUse, clock_, sleeper_, attach_wait_);
  if (!r.ok()) return std::move(r).error().Wrap("waiting for " + eni_id + " to attach");
  if (r->instance_id != instance_id) {
    return Errorf(ErrorCode::kConflict, "{} is attached to {}, not to {}", eni_id, r->instance_id,
                  instance_id);
  }
  return Ok();
}

Status AliyunEniProvider::DetachEni(const std::string& eni_id, const std::string& instance_id) {
  auto s = api_->DetachNetworkInterface(eni_id, instance_id);
  if (!s.ok() && s.error().cloud_code != "InvalidOperation.InvalidEniState") return s;
  auto r = cloud::WaitForEniStatus(api_, eni_id, cloud::kEniAvailable, clock_, sleeper_, detach_wait_);
  if (!r.ok()) return std::move(r).error().Wrap("waiting for " + eni_id + " to detach");
  return Ok();
}

Status AliyunEniProvider::DeleteEni(const std::string& eni_id) {
  auto s = api_->DeleteNetworkInterface(eni_id);
  // Deleting is the goal: an ENI that is already gone is success.
  if (!s.ok() && s.error().cloud_code == "InvalidEniId.NotFound") return Ok();
  return s;
}

Result<std::vector<std::string>> AliyunEniProvider::AssignIps(const std::string& eni_id, int count) {
  cloud::AssignIpsRequest req;
  req.eni_id = eni_id;
  req.count = count;
  return api_->AssignPrivateIpAddresses(req);
}

Status AliyunEniProvider::UnassignIps(const std::string& eni_id, const std::vector<std::string>& ips) {
  auto s = api_->UnassignPrivateIpAddresses(eni_id, ips);
  // Already unassigned (a retry after a lost reply): the goal holds.
  if (!s.ok() && s.error().cloud_code == "InvalidIp.IpUnassigned") return Ok();
  return s;
}

Result<std::vector<std::string>> AliyunEniProvider::AssignIpv6(const std::string& eni_id, int count) {
  cloud::AssignIpsRequest req;
  req.eni_id = eni_id;
  req.count = count;
  return api_->AssignIpv6Addresses(req);
}

Status AliyunEniProvider::UnassignIpv6(const std::string& eni_id, const std::vector<std::string>& ips) {
  auto s = api_->UnassignIpv6Addresses(eni_id, ips);
  // As for IPv4: an address already gone (a retry after a lost reply) is the
  // goal reached.
  if (!s.ok() && s.error().cloud_code == "InvalidIp.IpUnassigned") return Ok();
  return s;
}

Result<std::vector<cloud::NetworkInterface>> AliyunEniProvider::ListEnis(const std::string& instance_id) {
  cloud::DescribeEnisFilter attached;
  attached.instance_id = instance_id;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto enis, api_->DescribeNetworkInterfaces(attached),
                              "listing ENIs of " + instance_id);
  std::set<std::string> seen;
  for (const auto& e : enis) seen.insert(e.network_interface_id);

  cloud::DescribeEnisFilter ours;
  ours.vpc_id = vpc_id_;
  ours.tags.push_back({ipam::kInstanceTagKey, instance_id});
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tagged, api_->DescribeNetworkInterfaces(ours),
                              "listing ENIs tagged for " + instance_id);
  for (auto& e : tagged) {
    if (!seen.count(e.network_interface_id)) enis.push_back(std::move(e));
  }
  return enis;
}

Result<std::vector<std::string>> AliyunEniProvider::PrimaryEniSecurityGroups(const std::string& instance_id) {
  // As upstream Terway: the instance's ENI of Type Primary.
  cloud::DescribeEnisFilter f;
  f.instance_id = instance_id;
  f.type = "Primary";
  TERWAY_ASSIGN_OR_RETURN_CTX(auto enis, api_->DescribeNetworkInterfaces(f),
                              "listing the primary ENI of " + instance_id);
  for (const auto& e : enis) {
    if (e.type == "Primary" && e.instance_id == instance_id) return e.security_group_ids;
  }
  return Errorf(ErrorCode::kNotFound,
                "DescribeNetworkInterfaces lists no primary ENI for instance {}; check the instance id the "
                "metadata service reports and the API endpoint's region",
                instance_id);
}

Result<std::vector<cloud::VSwitch>> AliyunEniProvider::DescribeVSwitches(
    const std::vector<std::string>& ids) {
  return api_->DescribeVSwitches(vpc_id_, ids);
}

Result<ipam::InstanceLimits> AliyunEniProvider::GetInstanceLimits(const std::string& instance_type) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto types, api_->DescribeInstanceTypes({instance_type}),
                              "reading the ENI quotas of " + instance_type);
  for (const auto& t : types) {
    if (t.instance_type_id == instance_type) {
      return ipam::InstanceLimits{t.eni_quantity, t.eni_private_ip_address_quantity,
                                  t.eni_ipv6_address_quantity};
    }
  }
  return Errorf(ErrorCode::kNotFound,
                "instance type {} is unknown to DescribeInstanceTypes; check the node's "
                "instance type and the API endpoint's region", instance_type);
}

}  // namespace terway::daemon
