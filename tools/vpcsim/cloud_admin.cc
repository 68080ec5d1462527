// What VpcCloud offers besides the RPC API: nonces and STS credentials for
// authentication, instances for the admin endpoint, views for the metadata
// service.
#include "tools/vpcsim/cloud.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

Result<bool> VpcCloud::ConsumeNonce(const std::string& nonce) {
  std::lock_guard l(mu_);
  int64_t now = NowSec();
  StoreTxn txn(store_.get());
  TERWAY_TRY(txn.begun());
  // Remembered for 30 minutes: twice the accepted Timestamp skew, so a replay
  // is refused either as a reused nonce or as a stale timestamp.
  TERWAY_ASSIGN_OR_RETURN(bool fresh, store_->InsertNonce(nonce, now + 1800, now));
  static thread_local int prune_counter = 0;
  if (++prune_counter % 256 == 0) TERWAY_TRY(store_->PruneExpired(now));
  TERWAY_TRY(txn.Commit());
  return fresh;
}

std::optional<StsCredential> VpcCloud::FindSts(const std::string& access_key_id) const {
  std::lock_guard l(mu_);
  auto it = sts_.find(access_key_id);
  if (it == sts_.end()) return std::nullopt;
  return it->second;
}

Result<StsCredential> VpcCloud::CredentialFor(const std::string& instance_id) {
  std::lock_guard l(mu_);
  if (!instances_.count(instance_id)) return Errorf(ErrorCode::kNotFound, "instance {} not found", instance_id);
  int64_t now = NowSec();
  const int64_t ttl = world_.sts_ttl_seconds;
  const StsCredential* best = nullptr;
  for (const auto& [ak, c] : sts_) {
    if (c.instance_id == instance_id && c.role == world_.ram_role && c.expires_at - now > ttl / 3 &&
        (!best || c.expires_at > best->expires_at)) {
      best = &c;
    }
  }
  if (best) return *best;
  StsCredential c;
  c.access_key_id = RandomId("STS.", 24);
  c.access_key_secret = RandomId("", 32);
  c.security_token = RandomId("CAIS", 180);
  c.instance_id = instance_id;
  c.role = world_.ram_role;
  c.issued_at = now;
  c.expires_at = now + ttl;
  StoreTxn txn(store_.get());
  TERWAY_TRY(txn.begun());
  TERWAY_TRY(store_->PutSts(c));
  TERWAY_TRY(txn.Commit());
  sts_[c.access_key_id] = c;
  return c;
}

Result<InstanceRecord> VpcCloud::AddInstanceLocked(WorldInstance spec, bool /*in_txn*/) {
  if (spec.id.empty()) spec.id = RandomId("i-", 20);
  TERWAY_TRY(ValidateInstance(world_, spec));
  if (instances_.count(spec.id)) return Errorf(ErrorCode::kAlreadyExists, "instance {} already exists", spec.id);
  const WorldVSwitch* v = world_.FindVSwitch(spec.vswitch_id);
  auto ip = AllocateIpv4(spec.vswitch_id, "");
  if (!ip.ok()) return std::move(ip).error().Wrap("primary IP of instance " + spec.id);
  // Ipv6AddressCount: the primary ENI's IPv6s come with the instance, as
  // RunInstances assigns them (ValidateInstance checked vSwitch and type).
  std::vector<std::string> ipv6s;
  auto undo = [&] {
    used_v4_[spec.vswitch_id].erase(Ipv4Addr::Parse(*ip)->value());
    for (const auto& a : ipv6s) used_v6_[spec.vswitch_id].erase(a);
  };
  for (int k = 0; k < spec.ipv6_address_count; k++) {
    auto a = AllocateIpv6(spec.vswitch_id, "");
    if (!a.ok()) {
      undo();
      return std::move(a).error().Wrap("IPv6 of the primary ENI of instance " + spec.id);
    }
    ipv6s.push_back(*a);
  }
  EniRecord e;
  e.id = RandomId("eni-", 20);
  e.seq = next_seq_++;
  e.status = cloud::kEniInUse;
  e.type = "Primary";
  e.vswitch_id = spec.vswitch_id;
  e.instance_id = spec.id;
  e.device_index = 0;
  e.mac = NewMac();
  e.primary_ip = *ip;
  e.ipv6s = ipv6s;
  e.security_groups = {world_.default_security_group};
  e.created_at = NowSec();
  InstanceRecord i{spec.id, next_seq_++, spec.instance_type, v->zone, spec.vswitch_id, e.id, NowSec()};
  Status s = store_->PutEni(e);
  if (s.ok()) s = store_->PutInstance(i);
  if (!s.ok()) {
    undo();
    return std::move(s).error();
  }
  Commit(e);
  instances_[i.id] = i;
  return i;
}

Result<InstanceRecord> VpcCloud::AddInstance(WorldInstance spec) {
  std::lock_guard l(mu_);
  InstanceRecord rec;
  {
    StoreTxn txn(store_.get());
    TERWAY_TRY(txn.begun());
    TERWAY_ASSIGN_OR_RETURN(rec, AddInstanceLocked(std::move(spec), true));
    if (Status s = txn.Commit(); !s.ok()) {
      ForgetEni(rec.primary_eni);
      instances_.erase(rec.id);
      return s.error();
    }
  }
  const EniRecord& primary = enis_[rec.primary_eni];
  Status s = fabric_->EnsureInstance(rec.id, ToFabric(primary));
  if (s.ok()) s = fabric_->SetEniIps(ToFabric(primary));
  if (!s.ok()) return std::move(s).error().Wrap("fabric: creating instance " + rec.id);
  log::Info("vpcsim instance_added id={} type={} vswitch={} ip={} ipv6={}", rec.id, rec.instance_type,
            rec.vswitch_id, primary.primary_ip, Join(primary.ipv6s, ","));
  return rec;
}

Status VpcCloud::RemoveInstance(const std::string& instance_id) {
  std::lock_guard l(mu_);
  auto it = instances_.find(instance_id);
  if (it == instances_.end()) return Errorf(ErrorCode::kNotFound, "instance {} not found", instance_id);
  // As when an ECS instance is released: its primary ENI goes with it, the
  // secondary ENIs are detached and stay Available.
  std::vector<EniRecord> changed;
  for (const auto& [id, e] : enis_) {
    if (e.instance_id != instance_id || e.type == "Primary") continue;
    EniRecord c = e;
    c.status = cloud::kEniAvailable;
    c.instance_id.clear();
    c.device_index = 0;
    c.transition_at_ms = 0;
    changed.push_back(std::move(c));
  }
  std::string primary = it->second.primary_eni;
  {
    StoreTxn txn(store_.get());
    TERWAY_TRY(txn.begun());
    for (const auto& c : changed) TERWAY_TRY(store_->PutEni(c));
    TERWAY_TRY(store_->DeleteEni(primary));
    TERWAY_TRY(store_->DeleteInstance(instance_id));
    TERWAY_TRY(txn.Commit());
  }
  for (auto& c : changed) {
    if (Status s = fabric_->DetachEni(instance_id, c.id); !s.ok()) {
      log::Warn("vpcsim fabric_detach_failed eni={} err={}", c.id, s.error().ToString());
    }
    Commit(std::move(c));
  }
  ForgetEni(primary);
  instances_.erase(instance_id);
  for (auto s = sts_.begin(); s != sts_.end();) {
    s = s->second.instance_id == instance_id ? sts_.erase(s) : std::next(s);
  }
  return fabric_->RemoveInstance(instance_id);
}

json VpcCloud::Summary() const {
  std::lock_guard l(mu_);
  auto eni_json = [&](const EniRecord& e) {
    return json{{"id", e.id},           {"status", e.status},       {"type", e.type},
                {"vswitch", e.vswitch_id}, {"device_index", e.device_index}, {"mac", e.mac},
                {"primary_ip", e.primary_ip}, {"secondary_ips", e.secondary_ips}, {"ipv6s", e.ipv6s},
                {"resource_group", e.resource_group_id},
                {"tags", [&] {
                   json t = json::object();
                   for (const auto& tag : e.tags) t[tag.key] = tag.value;
                   return t;
                 }()}};
  };
  json vsws = json::array();
  for (const auto& v : world_.vswitches) {
    auto used = used_v4_.find(v.id);
    size_t n = used == used_v4_.end() ? 0 : used->second.size();
    json vj = {{"id", v.id}, {"zone", v.zone}, {"cidr", v.cidr.ToString()},
               {"gateway", v.gateway.ToString()}, {"used", n},
               {"available", UsableCount(v.cidr) - n}};
    if (v.ipv6_cidr) {
      auto used6 = used_v6_.find(v.id);
      vj["ipv6_cidr"] = v.ipv6_cidr->ToString();
      vj["ipv6_gateway"] = v.ipv6_gateway.ToString();
      vj["ipv6_used"] = used6 == used_v6_.end() ? 0 : used6->second.size();
    }
    vsws.push_back(std::move(vj));
  }
  std::vector<const InstanceRecord*> insts;
  for (const auto& [id, i] : instances_) insts.push_back(&i);
  std::sort(insts.begin(), insts.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
  json ij = json::array();
  for (const auto* i : insts) {
    std::vector<const EniRecord*> mine;
    for (const auto& [id, e] : enis_) {
      if (e.instance_id == i->id) mine.push_back(&e);
    }
    std::sort(mine.begin(), mine.end(), [](auto* a, auto* b) { return a->device_index < b->device_index; });
    json ej = json::array();
    for (const auto* e : mine) ej.push_back(eni_json(*e));
    const auto* t = FindInstanceType(i->instance_type);
    ij.push_back({{"id", i->id}, {"instance_type", i->instance_type}, {"zone", i->zone},
                  {"vswitch", i->vswitch_id}, {"eni_quantity", t ? t->eni_quantity : 0},
                  {"ips_per_eni", t ? t->eni_private_ip_address_quantity : 0},
                  {"ipv6_per_eni", t ? t->eni_ipv6_address_quantity : 0}, {"enis", ej}});
  }
  json free = json::array();
  for (const auto& [id, e] : enis_) {
    if (e.instance_id.empty()) free.push_back(eni_json(e));
  }
  return {{"world", world_.name},  {"region", world_.region},
          {"vpc", {{"id", world_.vpc_id}, {"cidr", world_.vpc_cidr.ToString()},
                   {"ipv6_cidr", world_.vpc_ipv6_cidr ? world_.vpc_ipv6_cidr->ToString() : ""}}},
          {"vswitches", vsws},    {"instances", ij}, {"unattached_enis", free}};
}

std::optional<std::string> VpcCloud::InstanceByIp(const std::string& ip) const {
  std::lock_guard l(mu_);
  auto it = ip_owner_.find(ip);
  if (it == ip_owner_.end()) return std::nullopt;
  auto e = enis_.find(it->second);
  if (e == enis_.end() || e->second.instance_id.empty() || e->second.status != cloud::kEniInUse) {
    return std::nullopt;
  }
  return e->second.instance_id;
}

std::optional<InstanceView> VpcCloud::View(const std::string& instance_id) const {
  std::lock_guard l(mu_);
  auto it = instances_.find(instance_id);
  if (it == instances_.end()) return std::nullopt;
  InstanceView v;
  v.instance = it->second;
  for (const auto& [id, e] : enis_) {
    if (e.instance_id == instance_id && e.status == cloud::kEniInUse) v.enis.push_back(e);
  }
  std::sort(v.enis.begin(), v.enis.end(),
            [](const EniRecord& a, const EniRecord& b) { return a.device_index < b.device_index; });
  return v;
}

}  // namespace terway::vpcsim
