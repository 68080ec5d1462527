// Addresses on an ENI: Assign/UnassignPrivateIpAddresses (IPv4) and
// Assign/UnassignIpv6Addresses.
#include "tools/vpcsim/cloud.h"

#include <algorithm>
#include <set>

#include "common/log.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

Result<json> VpcCloud::AssignPrivateIpAddresses(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(auto count, IntParam(p, "SecondaryPrivateIpAddressCount", 1, 49));
  TERWAY_ASSIGN_OR_RETURN(auto wanted, ListParam(p, "PrivateIpAddress", 49));
  if (!count && wanted.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"SecondaryPrivateIpAddressCount\" or \"PrivateIpAddress.N\" "
                    "that is mandatory for processing this request is not supplied.");
  }
  if (count && !wanted.empty()) {
    return InvalidParam("SecondaryPrivateIpAddressCount", "give either it or PrivateIpAddress.N");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  size_t n = count ? static_cast<size_t>(*count) : wanted.size();
  const cloud::InstanceType* t = cur->instance_id.empty() ? nullptr : TypeOf(cur->instance_id);
  size_t limit = t ? static_cast<size_t>(t->eni_private_ip_address_quantity) : 1 + kMaxIpsOnDetachedEni;
  if (1 + cur->secondary_ips.size() + n > limit) {
    return ApiError(403, "InvalidOperation.Ipv4CountExceeded",
                    fmt::format("ENI {} would hold {} private IPs; the limit is {}{}.", cur->id,
                                1 + cur->secondary_ips.size() + n, limit,
                                t ? " (" + t->instance_type_id + " EniPrivateIpAddressQuantity)" : ""));
  }
  std::vector<std::string> got;
  Status s;
  for (size_t i = 0; s.ok() && i < n; i++) {
    auto r = AllocateIpv4(cur->vswitch_id, count ? "" : wanted[i]);
    if (r.ok()) got.push_back(*r);
    else s = std::move(r).error();
  }
  auto undo = [&] {
    for (const auto& ip : got) used_v4_[cur->vswitch_id].erase(Ipv4Addr::Parse(ip)->value());
  };
  if (!s.ok()) {
    undo();
    return std::move(s).error();
  }
  EniRecord e = *cur;
  e.secondary_ips.insert(e.secondary_ips.end(), got.begin(), got.end());
  if (Status ps = Persist(e); !ps.ok()) {
    undo();
    return ApiError(500, "InternalError", ps.error().ToString());
  }
  std::string id = e.id;
  CommitAndPushIps(std::move(e));
  return json{{"AssignedPrivateIpAddressesSet",
               {{"NetworkInterfaceId", id}, {"PrivateIpSet", {{"PrivateIpAddress", got}}}}}};
}

Result<json> VpcCloud::UnassignPrivateIpAddresses(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(auto ips, ListParam(p, "PrivateIpAddress", 50));
  if (ips.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"PrivateIpAddress.N\" that is mandatory for processing this "
                    "request is not supplied.");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  EniRecord e = *cur;
  for (const auto& ip : ips) {
    auto it = std::find(e.secondary_ips.begin(), e.secondary_ips.end(), ip);
    if (it == e.secondary_ips.end()) {
      // Also the answer for the ENI's primary IP, which is never unassigned.
      return ApiError(403, "InvalidIp.IpUnassigned",
                      fmt::format("The specified IP \"{}\" is not assigned on this ENI.", ip.substr(0, 64)));
    }
    e.secondary_ips.erase(it);
  }
  if (Status ps = Persist(e); !ps.ok()) return ApiError(500, "InternalError", ps.error().ToString());
  CommitAndPushIps(std::move(e));
  return json::object();
}

Result<json> VpcCloud::AssignIpv6Addresses(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  // The API reference: Ipv6AddressCount 1..10, Ipv6Address.N with N 1..10.
  TERWAY_ASSIGN_OR_RETURN(auto count, IntParam(p, "Ipv6AddressCount", 1, kMaxIpv6PerCall));
  TERWAY_ASSIGN_OR_RETURN(auto wanted, ListParam(p, "Ipv6Address", kMaxIpv6PerCall));
  if (!count && wanted.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"Ipv6AddressCount\" or \"Ipv6Address.N\" that is mandatory "
                    "for processing this request is not supplied.");
  }
  if (count && !wanted.empty()) return InvalidParam("Ipv6AddressCount", "give either it or Ipv6Address.N");
  std::set<std::string> distinct;
  for (const auto& w : wanted) {
    auto a = Ipv6Addr::Parse(w);
    if (!distinct.insert(a.ok() ? a->ToString() : w).second) {
      return ApiError(403, "InvalidIp.IpRepeated",
                      fmt::format("The specified IP \"{}\" is given more than once.", w.substr(0, 64)));
    }
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  const WorldVSwitch* vsw = world_.FindVSwitch(cur->vswitch_id);
  if (!vsw->ipv6_cidr) {
    return ApiError(403, "InvalidVSwitch.Ipv6NotTurnOn",
                    fmt::format("IPv6 is not enabled on VSwitch \"{}\" of ENI {}; enable it on the VPC and "
                                "the VSwitch first.", cur->vswitch_id, cur->id));
  }
  size_t n = count ? static_cast<size_t>(*count) : wanted.size();
  const cloud::InstanceType* t = cur->instance_id.empty() ? nullptr : TypeOf(cur->instance_id);
  if (t && t->eni_ipv6_address_quantity == 0) {
    return ApiError(403, "InvalidOperation.Ipv6NotSupport",
                    fmt::format("Instance type {} (instance {} of ENI {}) does not support IPv6.",
                                t->instance_type_id, cur->instance_id, cur->id));
  }
  size_t limit = t ? static_cast<size_t>(t->eni_ipv6_address_quantity) : kMaxIpv6OnDetachedEni;
  if (cur->ipv6s.size() + n > limit) {
    return ApiError(403, "InvalidOperation.Ipv6CountExceeded",
                    fmt::format("ENI {} would hold {} IPv6 addresses; the limit is {}{}.", cur->id,
                                cur->ipv6s.size() + n, limit,
                                t ? " (" + t->instance_type_id + " EniIpv6AddressQuantity)"
                                  : " (an ENI that is not attached)"));
  }
  std::vector<std::string> got;
  Status s;
  for (size_t i = 0; s.ok() && i < n; i++) {
    auto r = AllocateIpv6(cur->vswitch_id, count ? "" : wanted[i]);
    if (r.ok()) got.push_back(*r);
    else s = std::move(r).error();
  }
  auto undo = [&] {
    for (const auto& ip : got) used_v6_[cur->vswitch_id].erase(ip);
  };
  if (!s.ok()) {
    undo();
    return std::move(s).error();
  }
  EniRecord e = *cur;
  e.ipv6s.insert(e.ipv6s.end(), got.begin(), got.end());
  if (Status ps = Persist(e); !ps.ok()) {
    undo();
    return ApiError(500, "InternalError", ps.error().ToString());
  }
  std::string id = e.id;
  CommitAndPushIps(std::move(e));
  return json{{"NetworkInterfaceId", id}, {"Ipv6Sets", {{"Ipv6Address", got}}}};
}

Result<json> VpcCloud::UnassignIpv6Addresses(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(auto ips, ListParam(p, "Ipv6Address", 30));
  if (ips.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"Ipv6Address.N\" that is mandatory for processing this "
                    "request is not supplied.");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  EniRecord e = *cur;
  for (const auto& ip : ips) {
    std::string norm = ip;
    if (auto a = Ipv6Addr::Parse(ip); a.ok()) norm = a->ToString();
    auto it = std::find(e.ipv6s.begin(), e.ipv6s.end(), norm);
    if (it == e.ipv6s.end()) {
      return ApiError(403, "InvalidIp.IpUnassigned",
                      fmt::format("The specified IP \"{}\" is not assigned on this ENI.", ip.substr(0, 64)));
    }
    e.ipv6s.erase(it);
  }
  if (Status ps = Persist(e); !ps.ok()) return ApiError(500, "InternalError", ps.error().ToString());
  CommitAndPushIps(std::move(e));
  return json::object();
}

void VpcCloud::CommitAndPushIps(EniRecord e) {
  // Only a plugged-in ENI has routes; Tick's attach completion sets the IPs
  // of an ENI that was Available when they changed.
  bool attached = e.status == cloud::kEniInUse;
  FabricEni f = ToFabric(e);
  Commit(std::move(e));
  if (!attached) return;
  if (Status fs = fabric_->SetEniIps(f); !fs.ok()) {
    // The cloud's answer stands, as on ECS; the data-plane failure is ours.
    log::Error("vpcsim fabric_set_ips_failed eni={} err={}", f.eni_id, fs.error().ToString());
  }
}

}  // namespace terway::vpcsim
