// VpcCloud's records: finding ENIs, allocating addresses from vSwitches,
// keeping the in-memory indexes in step with the ENI records, and turning
// records into API and fabric objects.
#include "tools/vpcsim/cloud.h"

#include <algorithm>
#include <random>

#include "common/log.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

Result<EniRecord*> VpcCloud::FindEni(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(std::string id, Require(p, "NetworkInterfaceId"));
  auto it = enis_.find(id);
  if (it == enis_.end()) {
    return ApiError(404, "InvalidEniId.NotFound",
                    fmt::format("The specified EniId \"{}\" is not found.", id.substr(0, 64)));
  }
  return &it->second;
}

Result<std::string> VpcCloud::AllocateIpv4(const std::string& vswitch_id, const std::string& wanted) {
  const WorldVSwitch* v = world_.FindVSwitch(vswitch_id);
  auto& used = used_v4_[vswitch_id];
  if (!wanted.empty()) {
    auto a = Ipv4Addr::Parse(wanted);
    if (!a.ok() || !v->cidr.Contains(*a) || *a < FirstUsable(v->cidr) || *a > LastUsable(v->cidr)) {
      return ApiError(403, "InvalidVSwitchId.IpInvalid",
                      fmt::format("The specified IpAddress \"{}\" is not valid in VSwitch CIDR block \"{}\".",
                                  wanted.substr(0, 64), v->cidr.ToString()));
    }
    if (used.count(a->value())) {
      return ApiError(403, "InvalidIp.IpAssigned",
                      fmt::format("The specified IP \"{}\" is already assigned.", wanted));
    }
    used.insert(a->value());
    return a->ToString();
  }
  for (uint32_t x = FirstUsable(v->cidr).value(); x <= LastUsable(v->cidr).value(); x++) {
    if (!used.count(x)) {
      used.insert(x);
      return Ipv4Addr(x).ToString();
    }
  }
  return ApiError(403, "InvalidVSwitchId.IpNotEnough",
                  fmt::format("The specified VSwitch \"{}\" has not enough IpAddress.", vswitch_id));
}

Result<std::string> VpcCloud::AllocateIpv6(const std::string& vswitch_id, const std::string& wanted) {
  const WorldVSwitch* v = world_.FindVSwitch(vswitch_id);
  if (!v->ipv6_cidr) {
    return ApiError(403, "InvalidVSwitch.Ipv6NotTurnOn",
                    fmt::format("IPv6 is not enabled on VSwitch \"{}\"; enable it on the VPC and the "
                                "VSwitch first.", vswitch_id));
  }
  auto& used = used_v6_[vswitch_id];
  if (!wanted.empty()) {
    auto a = Ipv6Addr::Parse(wanted);
    if (!a.ok() || !Ipv6Assignable(*v->ipv6_cidr, *a)) {
      return ApiError(403, "InvalidIp.Address",
                      fmt::format("The specified IPv6 address \"{}\" is not valid: it must be an assignable "
                                  "address of VSwitch {}'s block {} (not its first address, not the "
                                  "reserved top from the gateway {} up).",
                                  wanted.substr(0, 64), vswitch_id, v->ipv6_cidr->ToString(),
                                  v->ipv6_gateway.ToString()));
    }
    if (!used.insert(a->ToString()).second) {
      return ApiError(403, "InvalidIp.IpAssigned",
                      fmt::format("The specified IP \"{}\" is already assigned.", wanted));
    }
    return a->ToString();
  }
  // A /64 does not run out in an emulator; the bound only keeps a corrupt
  // state from spinning here.
  for (uint64_t i = 1; i < 1000000; i++) {
    std::string s = v->ipv6_cidr->At(i).ToString();
    if (used.insert(s).second) return s;
  }
  return ApiError(403, "InvalidVSwitchId.IpNotEnough",
                  fmt::format("The specified VSwitch \"{}\" has not enough IPv6 addresses.", vswitch_id));
}

std::string VpcCloud::NewMac() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  while (true) {
    uint64_t r = rng();
    MacAddr m({0x00, 0x16, 0x3e, static_cast<uint8_t>(r), static_cast<uint8_t>(r >> 8),
               static_cast<uint8_t>(r >> 16)});
    std::string s = m.ToString();
    if (!macs_.count(s)) return s;
  }
}

int VpcCloud::ActiveEniCount(const std::string& instance_id) const {
  int n = 0;
  for (const auto& [id, e] : enis_) n += e.instance_id == instance_id ? 1 : 0;
  return n;
}

const cloud::InstanceType* VpcCloud::TypeOf(const std::string& instance_id) const {
  auto it = instances_.find(instance_id);
  return it == instances_.end() ? nullptr : FindInstanceType(it->second.instance_type);
}

Status VpcCloud::Persist(const EniRecord& e) {
  StoreTxn txn(store_.get());
  TERWAY_TRY(txn.begun());
  TERWAY_TRY(store_->PutEni(e));
  return txn.Commit();
}

void VpcCloud::ForgetEni(const std::string& id) {
  auto it = enis_.find(id);
  if (it == enis_.end()) return;
  const EniRecord& old = it->second;
  auto& used = used_v4_[old.vswitch_id];
  for (const auto* ip : {&old.primary_ip}) {
    if (auto a = Ipv4Addr::Parse(*ip); a.ok()) used.erase(a->value());
    ip_owner_.erase(*ip);
  }
  for (const auto& ip : old.secondary_ips) {
    if (auto a = Ipv4Addr::Parse(ip); a.ok()) used.erase(a->value());
    ip_owner_.erase(ip);
  }
  for (const auto& ip : old.ipv6s) used_v6_[old.vswitch_id].erase(ip);
  macs_.erase(old.mac);
  enis_.erase(it);
}

void VpcCloud::Commit(EniRecord e) {
  ForgetEni(e.id);
  auto& used = used_v4_[e.vswitch_id];
  auto own = [&](const std::string& ip) {
    if (auto a = Ipv4Addr::Parse(ip); a.ok()) used.insert(a->value());
    ip_owner_[ip] = e.id;
  };
  own(e.primary_ip);
  for (const auto& ip : e.secondary_ips) own(ip);
  for (const auto& ip : e.ipv6s) used_v6_[e.vswitch_id].insert(ip);
  macs_.insert(e.mac);
  std::string id = e.id;
  enis_[id] = std::move(e);
}

FabricEni VpcCloud::ToFabric(const EniRecord& e) const {
  FabricEni f;
  f.eni_id = e.id;
  if (auto m = MacAddr::Parse(e.mac); m.ok()) f.mac = *m;
  f.vswitch_id = e.vswitch_id;
  if (auto a = Ipv4Addr::Parse(e.primary_ip); a.ok()) f.ips.push_back(*a);
  for (const auto& ip : e.secondary_ips) {
    if (auto a = Ipv4Addr::Parse(ip); a.ok()) f.ips.push_back(*a);
  }
  for (const auto& ip : e.ipv6s) {
    if (auto a = Ipv6Addr::Parse(ip); a.ok()) f.ipv6s.push_back(*a);
  }
  return f;
}

cloud::NetworkInterface VpcCloud::ToApi(const EniRecord& e) const {
  cloud::NetworkInterface n;
  n.network_interface_id = e.id;
  n.status = e.status;
  n.type = e.type;
  n.vpc_id = world_.vpc_id;
  n.vswitch_id = e.vswitch_id;
  if (const auto* v = world_.FindVSwitch(e.vswitch_id)) n.zone_id = v->zone;
  n.instance_id = e.instance_id;
  n.mac_address = e.mac;
  n.private_ip_address = e.primary_ip;
  n.network_interface_name = e.name;
  n.description = e.description;
  n.creation_time = FormatIso8601(Clock::TimePoint(std::chrono::seconds(e.created_at)));
  n.security_group_ids = e.security_groups;
  n.private_ip_sets.push_back({e.primary_ip, true});
  for (const auto& ip : e.secondary_ips) n.private_ip_sets.push_back({ip, false});
  n.ipv6_sets = e.ipv6s;
  n.tags = e.tags;
  n.resource_group_id = e.resource_group_id;
  n.device_index = e.device_index;
  return n;
}

cloud::Instance VpcCloud::ToApi(const InstanceRecord& i) const {
  cloud::Instance out;
  out.instance_id = i.id;
  out.instance_type = i.instance_type;
  out.region_id = world_.region;
  out.zone_id = i.zone;
  out.status = "Running";
  out.vpc_id = world_.vpc_id;
  out.vswitch_id = i.vswitch_id;
  std::vector<const EniRecord*> mine;
  for (const auto& [id, e] : enis_) {
    if (e.instance_id == i.id && e.status == cloud::kEniInUse) mine.push_back(&e);
  }
  std::sort(mine.begin(), mine.end(),
            [](const EniRecord* a, const EniRecord* b) { return a->device_index < b->device_index; });
  for (const auto* e : mine) {
    if (e->id == i.primary_eni) out.primary_ip = e->primary_ip;
    out.network_interfaces.push_back(ToApi(*e));
  }
  return out;
}

}  // namespace terway::vpcsim
