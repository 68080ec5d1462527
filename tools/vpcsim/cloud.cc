// VpcCloud: opening and seeding the state, re-creating the fabric, and the
// action dispatch with ClientToken idempotency. The actions live in
// cloud_eni.cc, cloud_ips.cc and cloud_describe.cc; the records in
// cloud_records.cc; authentication, admin and metadata in cloud_admin.cc.
#include "tools/vpcsim/cloud.h"

#include <algorithm>

#include "common/log.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/cloud_params.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

using nlohmann::json;

VpcCloud::VpcCloud(World world, std::unique_ptr<StateStore> store, Fabric* fabric, Clock* clock,
                   FaultTable* faults, Options options)
    : world_(std::move(world)), store_(std::move(store)), fabric_(fabric), clock_(clock),
      faults_(faults), options_(options) {}

Result<std::unique_ptr<VpcCloud>> VpcCloud::Open(World world, std::unique_ptr<StateStore> store,
                                                 Fabric* fabric, Clock* clock, FaultTable* faults,
                                                 Options options) {
  std::unique_ptr<VpcCloud> c(
      new VpcCloud(std::move(world), std::move(store), fabric, clock, faults, options));
  TERWAY_ASSIGN_OR_RETURN_CTX(auto snap, c->store_->Load(), "loading vpcsim state");
  auto name = snap.meta.find("world_name");
  if (name != snap.meta.end() && name->second != c->world_.name) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "state in {} belongs to world '{}', not '{}': use another --state directory "
                  "or `vpcsim destroy` it first",
                  c->store_->path(), name->second, c->world_.name);
  }
  bool seeded = snap.meta.count("seeded") > 0;
  TERWAY_TRY(c->LoadState(std::move(snap)));
  if (!seeded) TERWAY_TRY_CTX(c->Seed(), "seeding state from the world");
  return c;
}

Status VpcCloud::LoadState(StateSnapshot snap) {
  std::lock_guard l(mu_);
  for (auto& i : snap.instances) {
    next_seq_ = std::max(next_seq_, i.seq + 1);
    instances_[i.id] = i;
  }
  for (auto& e : snap.enis) {
    const WorldVSwitch* v = world_.FindVSwitch(e.vswitch_id);
    if (v == nullptr) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "state: ENI {} is in vSwitch {}, which the world file no longer defines",
                    e.id, e.vswitch_id);
    }
    // A world file may gain IPv6 under an existing state, but not drop or
    // move the block that ENIs already hold addresses of.
    for (const auto& ip : e.ipv6s) {
      auto a = Ipv6Addr::Parse(ip);
      if (!v->ipv6_cidr || !a.ok() || !v->ipv6_cidr->Contains(*a)) {
        return Errorf(ErrorCode::kInvalidArgument,
                      "state: ENI {} holds IPv6 {} but vSwitch {} in the world file has {}: restore the "
                      "vSwitch's ipv6_cidr, or use another --state directory (or `vpcsim destroy` this one)",
                      e.id, ip, e.vswitch_id,
                      v->ipv6_cidr ? "ipv6_cidr " + v->ipv6_cidr->ToString() : std::string("no ipv6_cidr"));
      }
    }
    next_seq_ = std::max(next_seq_, e.seq + 1);
    Commit(std::move(e));
  }
  for (auto& t : snap.client_tokens) tokens_[t.token] = t;
  for (auto& s : snap.sts) sts_[s.access_key_id] = s;
  return Ok();
}

Status VpcCloud::Seed() {
  std::lock_guard l(mu_);
  StoreTxn txn(store_.get());
  TERWAY_TRY(txn.begun());
  TERWAY_TRY(store_->SetMeta("world_name", world_.name));
  TERWAY_TRY(store_->SetMeta("region", world_.region));
  TERWAY_TRY(store_->SetMeta("vpc_id", world_.vpc_id));
  for (const auto& i : world_.instances) {
    if (instances_.count(i.id)) continue;
    TERWAY_TRY(AddInstanceLocked(i, true));
  }
  TERWAY_TRY(store_->SetMeta("seeded", "1"));
  return txn.Commit();
}

Status VpcCloud::SyncFabric() {
  std::lock_guard l(mu_);
  TERWAY_TRY_CTX(fabric_->EnsureVpc(world_.vpc_id, world_.vpc_cidr), "fabric: VPC " + world_.vpc_id);
  for (const auto& v : world_.vswitches) {
    TERWAY_TRY_CTX(fabric_->EnsureVSwitch({v.id, v.cidr, v.gateway, v.ipv6_cidr, v.ipv6_gateway}),
                   "fabric: vSwitch " + v.id);
  }
  for (const auto& [id, inst] : instances_) {
    auto p = enis_.find(inst.primary_eni);
    if (p == enis_.end()) return Errorf(ErrorCode::kInternal, "instance {} lost its primary ENI", id);
    TERWAY_TRY_CTX(fabric_->EnsureInstance(id, ToFabric(p->second)), "fabric: instance " + id);
    TERWAY_TRY_CTX(fabric_->SetEniIps(ToFabric(p->second)), "fabric: IPs of " + p->first);
  }
  for (const auto& [id, e] : enis_) {
    // Detaching ENIs are still plugged in until the worker completes them.
    if (e.type == "Primary" || (e.status != cloud::kEniInUse && e.status != cloud::kEniDetaching)) continue;
    TERWAY_TRY_CTX(fabric_->AttachEni(e.instance_id, ToFabric(e), e.device_index), "fabric: attach " + id);
    TERWAY_TRY_CTX(fabric_->SetEniIps(ToFabric(e)), "fabric: IPs of " + id);
  }
  return Ok();
}

std::string VpcCloud::ProductForVersion(const std::string& version) {
  if (version == cloud::kEcsApiVersion) return "ecs";
  if (version == cloud::kVpcApiVersion) return "vpc";
  return "";
}

bool VpcCloud::KnownAction(const std::string& product, const std::string& action) {
  static const std::set<std::string> kEcs = {
      "CreateNetworkInterface",   "AttachNetworkInterface",     "DetachNetworkInterface",
      "DeleteNetworkInterface",   "DescribeNetworkInterfaces",  "AssignPrivateIpAddresses",
      "UnassignPrivateIpAddresses", "AssignIpv6Addresses",      "UnassignIpv6Addresses",
      "DescribeInstanceTypes",    "DescribeInstances"};
  static const std::set<std::string> kVpc = {"DescribeVSwitches"};
  if (product == "ecs") return kEcs.count(action) > 0;
  if (product == "vpc") return kVpc.count(action) > 0;
  return false;
}

Result<json> VpcCloud::Call(const std::string& product, const std::string& action,
                            const cloud::QueryParams& p) {
  if (!KnownAction(product, action)) {
    return ApiError(404, "InvalidAction.NotFound",
                    fmt::format("Specified api \"{}\" is not found, please check your url and method.",
                                action.substr(0, 64)));
  }
  if (auto region = Get(p, "RegionId"); region && *region != world_.region) {
    return ApiError(400, "InvalidRegionId.NotFound",
                    fmt::format("The specified RegionId \"{}\" does not exist (this world is {}).",
                                region->substr(0, 64), world_.region));
  }
  std::lock_guard l(mu_);
  const bool idempotent = action == "CreateNetworkInterface" || action == "AssignPrivateIpAddresses" ||
                          action == "AssignIpv6Addresses";
  auto token = idempotent ? Get(p, "ClientToken") : std::nullopt;
  std::string fp;
  if (token) {
    if (token->size() > 64) return InvalidParam("ClientToken", "at most 64 ASCII characters");
    fp = Fingerprint(action, p);
    auto it = tokens_.find(*token);
    if (it != tokens_.end()) {
      if (it->second.action != action || it->second.fingerprint != fp) {
        return ApiError(400, "IdempotentParameterMismatch",
                        "The request uses the same client token as a previous, but non-identical request.");
      }
      try {
        return json::parse(it->second.result);
      } catch (const std::exception& e) {
        return ApiError(500, "InternalError", "stored ClientToken result is corrupt");
      }
    }
  }
  Result<json> r = MakeError(ErrorCode::kInternal, "unreachable");
  if (action == "CreateNetworkInterface") r = CreateNetworkInterface(p);
  else if (action == "AttachNetworkInterface") r = AttachNetworkInterface(p);
  else if (action == "DetachNetworkInterface") r = DetachNetworkInterface(p);
  else if (action == "DeleteNetworkInterface") r = DeleteNetworkInterface(p);
  else if (action == "DescribeNetworkInterfaces") r = DescribeNetworkInterfaces(p);
  else if (action == "AssignPrivateIpAddresses") r = AssignPrivateIpAddresses(p);
  else if (action == "UnassignPrivateIpAddresses") r = UnassignPrivateIpAddresses(p);
  else if (action == "AssignIpv6Addresses") r = AssignIpv6Addresses(p);
  else if (action == "UnassignIpv6Addresses") r = UnassignIpv6Addresses(p);
  else if (action == "DescribeInstanceTypes") r = DescribeInstanceTypes(p);
  else if (action == "DescribeInstances") r = DescribeInstances(p);
  else if (action == "DescribeVSwitches") r = DescribeVSwitches(p);
  if (r.ok() && token) {
    // Recorded after the action's own transaction: a crash in between costs
    // only idempotency of that one call, and the action itself is durable.
    ClientTokenRecord rec{*token, action, fp, DumpJson(*r), NowSec()};
    StoreTxn txn(store_.get());
    Status s = txn.begun();
    if (s.ok()) s = store_->PutClientToken(rec);
    if (s.ok()) s = txn.Commit();
    if (!s.ok()) log::Error("vpcsim client_token_persist_failed token={} err={}", *token, s.error().ToString());
    tokens_[*token] = std::move(rec);
  }
  return r;
}

int64_t VpcCloud::NowSec() const {
  return std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
}
int64_t VpcCloud::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->Now().time_since_epoch()).count();
}

std::chrono::milliseconds VpcCloud::TransitionDelay(const std::string& action) const {
  if (faults_) {
    FaultSpec s = faults_->Effective(action);
    if (s.attach_delay_ms >= 0) return std::chrono::milliseconds(s.attach_delay_ms);
  }
  return options_.attach_delay;
}
}  // namespace terway::vpcsim
