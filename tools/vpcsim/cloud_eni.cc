// ENI lifecycle: CreateNetworkInterface, Attach/Detach (asynchronous, completed
// by Tick) and DeleteNetworkInterface.
#include "tools/vpcsim/cloud.h"

#include <algorithm>
#include <set>

#include "common/log.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

Result<json> VpcCloud::CreateNetworkInterface(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(std::string vsw, Require(p, "VSwitchId"));
  if (world_.FindVSwitch(vsw) == nullptr) {
    return ApiError(404, "InvalidVSwitchId.NotFound",
                    fmt::format("The specified VSwitchId \"{}\" is not found.", vsw.substr(0, 64)));
  }
  TERWAY_ASSIGN_OR_RETURN(auto sgs, ListParam(p, "SecurityGroupIds", 5));
  if (auto sg = Get(p, "SecurityGroupId")) sgs.insert(sgs.begin(), *sg);
  if (sgs.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"SecurityGroupId\" that is mandatory for processing this "
                    "request is not supplied.");
  }
  if (sgs.size() > 5) return InvalidParam("SecurityGroupIds.N", "at most 5 security groups");
  TERWAY_ASSIGN_OR_RETURN(auto tags, TagParams(p));
  TERWAY_ASSIGN_OR_RETURN(auto count, IntParam(p, "SecondaryPrivateIpAddressCount", 0, 49));
  TERWAY_ASSIGN_OR_RETURN(auto wanted, ListParam(p, "PrivateIpAddress", 49));
  if (count && !wanted.empty()) {
    return InvalidParam("SecondaryPrivateIpAddressCount", "give either it or PrivateIpAddress.N");
  }
  size_t n_secondary = count ? static_cast<size_t>(*count) : wanted.size();
  if (n_secondary > kMaxIpsOnDetachedEni) {
    return ApiError(403, "InvalidOperation.Ipv4CountExceeded",
                    fmt::format("A new ENI holds at most {} secondary private IPs.", kMaxIpsOnDetachedEni));
  }
  TERWAY_ASSIGN_OR_RETURN(auto v6count, IntParam(p, "Ipv6AddressCount", 0, kMaxIpv6PerCall));
  TERWAY_ASSIGN_OR_RETURN(auto v6wanted, ListParam(p, "Ipv6Address", kMaxIpv6PerCall));
  if (v6count && *v6count > 0 && !v6wanted.empty()) {
    return InvalidParam("Ipv6AddressCount", "give either it or Ipv6Address.N");
  }
  {
    std::set<std::string> distinct;
    for (const auto& w : v6wanted) {
      auto a = Ipv6Addr::Parse(w);
      if (!distinct.insert(a.ok() ? a->ToString() : w).second) {
        return ApiError(403, "InvalidIp.IpRepeated",
                        fmt::format("The specified IP \"{}\" is given more than once.", w.substr(0, 64)));
      }
    }
  }
  size_t n_v6 = v6count ? static_cast<size_t>(*v6count) : v6wanted.size();
  if (n_v6 > kMaxIpv6OnDetachedEni) {
    return ApiError(403, "InvalidOperation.Ipv6CountExceeded", "A new ENI holds at most 10 IPv6 addresses.");
  }

  EniRecord e;
  e.id = RandomId("eni-", 20);
  e.seq = next_seq_;
  e.status = cloud::kEniAvailable;
  e.type = "Secondary";
  e.vswitch_id = vsw;
  e.mac = NewMac();
  e.security_groups = sgs;
  e.tags = tags;
  e.resource_group_id = Get(p, "ResourceGroupId").value_or("");
  e.name = Get(p, "NetworkInterfaceName").value_or("");
  e.description = Get(p, "Description").value_or("");
  e.created_at = NowSec();
  // Allocate into the shared sets and undo on failure, so that nothing leaks
  // when the vSwitch runs out half-way.
  std::vector<std::string> got4, got6;
  auto undo = [&] {
    for (const auto& ip : got4) used_v4_[vsw].erase(Ipv4Addr::Parse(ip)->value());
    for (const auto& ip : got6) used_v6_[vsw].erase(ip);
  };
  auto alloc4 = [&](const std::string& w) -> Status {
    auto r = AllocateIpv4(vsw, w);
    if (!r.ok()) return std::move(r).error();
    got4.push_back(*r);
    return Ok();
  };
  Status s = alloc4(Get(p, "PrimaryIpAddress").value_or(""));
  for (size_t i = 0; s.ok() && i < n_secondary; i++) s = alloc4(count ? "" : wanted[i]);
  for (size_t i = 0; s.ok() && i < n_v6; i++) {
    auto r = AllocateIpv6(vsw, v6count ? "" : v6wanted[i]);
    if (r.ok()) got6.push_back(*r);
    else s = std::move(r).error();
  }
  if (!s.ok()) {
    undo();
    return std::move(s).error();
  }
  e.primary_ip = got4[0];
  e.secondary_ips.assign(got4.begin() + 1, got4.end());
  e.ipv6s = got6;
  if (Status ps = Persist(e); !ps.ok()) {
    undo();
    return ApiError(500, "InternalError", "persisting the ENI failed: " + ps.error().ToString());
  }
  next_seq_++;
  Commit(e);
  return ToJson(ToApi(enis_[e.id]));
}

Result<json> VpcCloud::AttachNetworkInterface(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(std::string iid, Require(p, "InstanceId"));
  auto inst = instances_.find(iid);
  if (inst == instances_.end()) {
    return ApiError(404, "InvalidInstanceId.NotFound",
                    fmt::format("The specified InstanceId \"{}\" does not exist.", iid.substr(0, 64)));
  }
  if (cur->type == "Primary") {
    return ApiError(403, "InvalidOperation.InvalidEniType", "A primary ENI cannot be attached or detached.");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  if (cur->status != cloud::kEniAvailable) return EniState(*cur, cloud::kEniAvailable);
  const auto* vsw = world_.FindVSwitch(cur->vswitch_id);
  if (vsw->zone != inst->second.zone) {
    return ApiError(403, "InvalidOperation.ZoneMismatch",
                    fmt::format("ENI {} is in zone {} but instance {} is in zone {}.", cur->id, vsw->zone,
                                iid, inst->second.zone));
  }
  const cloud::InstanceType* t = FindInstanceType(inst->second.instance_type);
  if (ActiveEniCount(iid) >= t->eni_quantity) {
    return ApiError(403, "EniPerInstanceLimitExceeded",
                    fmt::format("The maximum number of ENIs on instance {} ({}: {}) has been reached.",
                                iid, t->instance_type_id, t->eni_quantity));
  }
  if (static_cast<int>(1 + cur->secondary_ips.size()) > t->eni_private_ip_address_quantity) {
    return ApiError(403, "InvalidOperation.Ipv4CountExceeded",
                    fmt::format("ENI {} holds more private IPs than {} allows per ENI ({}).", cur->id,
                                t->instance_type_id, t->eni_private_ip_address_quantity));
  }
  if (static_cast<int>(cur->ipv6s.size()) > t->eni_ipv6_address_quantity) {
    return ApiError(403, "InvalidOperation.Ipv6CountExceeded",
                    fmt::format("ENI {} holds more IPv6 addresses than {} allows per ENI.", cur->id,
                                t->instance_type_id));
  }
  std::set<int> taken;
  for (const auto& [id, e] : enis_) {
    if (e.instance_id == iid) taken.insert(e.device_index);
  }
  int idx = 1;
  while (taken.count(idx)) idx++;
  EniRecord e = *cur;
  e.status = cloud::kEniAttaching;
  e.instance_id = iid;
  e.device_index = idx;
  e.transition_at_ms = NowMs() + TransitionDelay("AttachNetworkInterface").count();
  if (Status s = Persist(e); !s.ok()) return ApiError(500, "InternalError", s.error().ToString());
  Commit(std::move(e));
  return json::object();
}

Result<json> VpcCloud::DetachNetworkInterface(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(std::string iid, Require(p, "InstanceId"));
  if (!instances_.count(iid)) {
    return ApiError(404, "InvalidInstanceId.NotFound",
                    fmt::format("The specified InstanceId \"{}\" does not exist.", iid.substr(0, 64)));
  }
  if (cur->type == "Primary") {
    return ApiError(403, "InvalidOperation.InvalidEniType", "A primary ENI cannot be attached or detached.");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  if (cur->status != cloud::kEniInUse) return EniState(*cur, cloud::kEniInUse);
  if (cur->instance_id != iid) {
    return ApiError(403, "InvalidOperation.InvalidEniState",
                    fmt::format("ENI {} is attached to {}, not to {}.", cur->id, cur->instance_id, iid));
  }
  EniRecord e = *cur;
  e.status = cloud::kEniDetaching;
  e.transition_at_ms = NowMs() + TransitionDelay("DetachNetworkInterface").count();
  if (Status s = Persist(e); !s.ok()) return ApiError(500, "InternalError", s.error().ToString());
  Commit(std::move(e));
  return json::object();
}

Result<json> VpcCloud::DeleteNetworkInterface(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  if (cur->type == "Primary") {
    return ApiError(403, "InvalidOperation.InvalidEniType", "A primary ENI is deleted with its instance only.");
  }
  if (Transitional(*cur)) return EniConflict(*cur);
  if (cur->status != cloud::kEniAvailable) return EniState(*cur, cloud::kEniAvailable);
  std::string id = cur->id;
  StoreTxn txn(store_.get());
  Status s = txn.begun();
  if (s.ok()) s = store_->DeleteEni(id);
  if (s.ok()) s = txn.Commit();
  if (!s.ok()) return ApiError(500, "InternalError", s.error().ToString());
  ForgetEni(id);
  return json::object();
}

int VpcCloud::Tick() {
  std::lock_guard l(mu_);
  int64_t now = NowMs();
  bool stuck = faults_ && faults_->Effective("DetachNetworkInterface").stuck_detaching;
  std::vector<std::string> due;
  for (const auto& [id, e] : enis_) {
    if (e.status == cloud::kEniAttaching && e.transition_at_ms <= now) due.push_back(id);
    if (e.status == cloud::kEniDetaching && e.transition_at_ms <= now && !stuck) due.push_back(id);
  }
  int done = 0;
  for (const auto& id : due) {
    EniRecord e = enis_[id];
    if (e.status == cloud::kEniAttaching) {
      Status s = fabric_->AttachEni(e.instance_id, ToFabric(e), e.device_index);
      if (s.ok()) s = fabric_->SetEniIps(ToFabric(e));
      if (!s.ok()) {
        // The cloud's answer stays "InUse" as on ECS; the data-plane failure is
        // ours, so it is logged loudly rather than shown to the API client.
        log::Error("vpcsim fabric_attach_failed eni={} instance={} err={}", id, e.instance_id,
                   s.error().ToString());
      }
      e.status = cloud::kEniInUse;
    } else {
      Status s = fabric_->DetachEni(e.instance_id, id);
      if (!s.ok()) {
        log::Error("vpcsim fabric_detach_failed eni={} instance={} err={}", id, e.instance_id,
                   s.error().ToString());
      }
      e.status = cloud::kEniAvailable;
      e.instance_id.clear();
      e.device_index = 0;
    }
    e.transition_at_ms = 0;
    if (Status s = Persist(e); !s.ok()) {
      log::Error("vpcsim persist_failed eni={} err={}", id, s.error().ToString());
      continue;
    }
    Commit(std::move(e));
    done++;
  }
  return done;
}

}  // namespace terway::vpcsim
