#include "tools/vpcsim/cloud.h"

#include <algorithm>
#include <random>

#include "common/log.h"
#include "common/strings.h"
#include "tools/vpcsim/catalogue.h"
#include "tools/vpcsim/http_reply.h"
#include "tools/vpcsim/query.h"

namespace terway::vpcsim {

using nlohmann::json;

Error ApiError(int http_status, std::string code, std::string message) {
  Error e(ErrorCode::kCloud, std::move(message));
  e.cloud_code = std::move(code);
  e.http_status = http_status;
  e.retryable = http_status >= 500 || e.cloud_code.rfind("Throttling", 0) == 0 ||
                e.cloud_code == "Operation.Conflict";
  return e;
}

namespace {

constexpr int kMaxIpsOnDetachedEni = 10;  // an Available ENI holds at most 10 secondary IPs
constexpr int kMaxIpv6OnDetachedEni = 10;

// Parameters that sign and route a request but do not change its meaning:
// left out of the ClientToken fingerprint so that a retry with a fresh nonce,
// timestamp or credential is recognised as the same request.
const std::set<std::string> kCommonParams = {
    "Signature",  "SignatureNonce", "Timestamp", "AccessKeyId", "SecurityToken",
    "SignatureMethod", "SignatureVersion", "Format", "ClientToken", "Version"};

std::string RandomId(std::string_view prefix, size_t n) {
  static const char kAlpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string s(prefix);
  for (size_t i = 0; i < n; i++) s.push_back(kAlpha[rng() % 36]);
  return s;
}

std::optional<std::string> Get(const cloud::QueryParams& p, const std::string& k) {
  auto it = p.find(k);
  if (it == p.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<std::string> Require(const cloud::QueryParams& p, const std::string& k) {
  auto v = Get(p, k);
  if (!v) {
    return ApiError(400, "MissingParameter",
                    fmt::format("The input parameter \"{}\" that is mandatory for processing this "
                                "request is not supplied.", k));
  }
  return *v;
}

Error InvalidParam(const std::string& name, const std::string& why) {
  return ApiError(400, "InvalidParameter",
                  fmt::format("The specified parameter \"{}\" is not valid: {}", name, why));
}

Result<std::optional<int64_t>> IntParam(const cloud::QueryParams& p, const std::string& k, int64_t lo,
                                        int64_t hi) {
  auto v = Get(p, k);
  if (!v) return std::optional<int64_t>();
  if (v->size() > 12) return InvalidParam(k, "not an integer");
  int64_t n = 0;
  bool neg = false;
  size_t i = 0;
  if ((*v)[0] == '-') {
    neg = true;
    i = 1;
  }
  if (i == v->size()) return InvalidParam(k, "not an integer");
  for (; i < v->size(); i++) {
    char c = (*v)[i];
    if (c < '0' || c > '9') return InvalidParam(k, "not an integer");
    n = n * 10 + (c - '0');
  }
  if (neg) n = -n;
  if (n < lo || n > hi) return InvalidParam(k, fmt::format("must be within {}..{}", lo, hi));
  return std::optional<int64_t>(n);
}

Result<std::vector<std::string>> ListParam(const cloud::QueryParams& p, const std::string& prefix,
                                           size_t max) {
  auto r = RepeatList(p, prefix, max);
  if (!r.ok()) return InvalidParam(prefix + ".N", r.error().message);
  return r;
}

// Tag.N.Key / Tag.N.Value, N = 1..20.
Result<std::vector<cloud::Tag>> TagParams(const cloud::QueryParams& p) {
  std::vector<cloud::Tag> tags;
  for (int n = 1; n <= 20; n++) {
    auto k = Get(p, fmt::format("Tag.{}.Key", n));
    auto v = Get(p, fmt::format("Tag.{}.Value", n));
    if (!k && v) return InvalidParam(fmt::format("Tag.{}.Key", n), "a tag value needs its key");
    if (k) tags.push_back({*k, v.value_or("")});
  }
  for (auto it = p.lower_bound("Tag."); it != p.end() && StartsWith(it->first, "Tag."); ++it) {
    auto parts = Split(it->first, '.');
    bool ok = parts.size() == 3 && (parts[2] == "Key" || parts[2] == "Value");
    int n = 0;
    if (ok) {
      for (char c : parts[1]) ok = ok && c >= '0' && c <= '9' && parts[1].size() <= 2;
      if (ok) n = std::stoi(parts[1]);
    }
    if (!ok || n < 1 || n > 20) return InvalidParam(it->first, "tags are Tag.N.Key/Tag.N.Value, N = 1..20");
  }
  return tags;
}

std::string Fingerprint(const std::string& action, const cloud::QueryParams& p) {
  cloud::QueryParams q;
  for (const auto& [k, v] : p) {
    if (!kCommonParams.count(k)) q[k] = v;
  }
  q["Action"] = action;
  return cloud::CanonicalizedQuery(q);
}

struct Page {
  bool token_mode = false;
  size_t offset = 0;
  size_t size = 10;
  int64_t page_number = 1;
};

// MaxResults/NextToken (token mode) or PageNumber/PageSize (page mode).
Result<Page> PageParams(const cloud::QueryParams& p, int64_t max_page_size, int64_t max_results) {
  Page pg;
  auto next = Get(p, "NextToken");
  TERWAY_ASSIGN_OR_RETURN(auto mr, IntParam(p, "MaxResults", 1, max_results));
  if (next || mr) {
    pg.token_mode = true;
    pg.size = static_cast<size_t>(mr.value_or(10));
    if (next) {
      // Our tokens are decimal offsets; anything else was not issued by us.
      if (next->size() > 9 || next->find_first_not_of("0123456789") != std::string::npos) {
        return ApiError(400, "InvalidParameter", "The specified NextToken is not valid.");
      }
      pg.offset = std::stoul(*next);
    }
    return pg;
  }
  TERWAY_ASSIGN_OR_RETURN(auto pn, IntParam(p, "PageNumber", 1, 1000000));
  TERWAY_ASSIGN_OR_RETURN(auto ps, IntParam(p, "PageSize", 1, max_page_size));
  pg.page_number = pn.value_or(1);
  pg.size = static_cast<size_t>(ps.value_or(10));
  pg.offset = static_cast<size_t>(pg.page_number - 1) * pg.size;
  return pg;
}

template <typename T>
std::vector<T> Slice(const std::vector<T>& all, const Page& pg) {
  if (pg.offset >= all.size()) return {};
  size_t end = std::min(all.size(), pg.offset + pg.size);
  return std::vector<T>(all.begin() + static_cast<long>(pg.offset), all.begin() + static_cast<long>(end));
}

void PagingFields(json* out, const Page& pg, size_t total) {
  (*out)["TotalCount"] = total;
  if (pg.token_mode) {
    size_t end = pg.offset + pg.size;
    (*out)["NextToken"] = end < total ? std::to_string(end) : "";
    (*out)["MaxResults"] = pg.size;
  } else {
    (*out)["PageNumber"] = pg.page_number;
    (*out)["PageSize"] = pg.size;
  }
}

Error EniConflict(const EniRecord& e) {
  return ApiError(403, "Operation.Conflict",
                  fmt::format("The operation may conflict with other processes: ENI {} is {}.", e.id,
                              e.status));
}

Error EniState(const EniRecord& e, const std::string& expecting) {
  return ApiError(400, "InvalidOperation.InvalidEniState",
                  fmt::format("The operation is not allowed in the current ENI state. Expecting "
                              "status is \"{}\" while current status is \"{}\" (ENI {}).",
                              expecting, e.status, e.id));
}

bool Transitional(const EniRecord& e) {
  return e.status == cloud::kEniAttaching || e.status == cloud::kEniDetaching;
}

}  // namespace

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
    if (world_.FindVSwitch(e.vswitch_id) == nullptr) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "state: ENI {} is in vSwitch {}, which the world file no longer defines",
                    e.id, e.vswitch_id);
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
    TERWAY_TRY_CTX(fabric_->EnsureVSwitch({v.id, v.cidr, v.gateway}), "fabric: vSwitch " + v.id);
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
  const bool idempotent = action == "CreateNetworkInterface" || action == "AssignPrivateIpAddresses";
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

// ---- helpers ---------------------------------------------------------------

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
                    fmt::format("The VSwitch \"{}\" has no IPv6 CIDR block.", vswitch_id));
  }
  auto& used = used_v6_[vswitch_id];
  if (!wanted.empty()) {
    auto a = Ipv6Addr::Parse(wanted);
    if (!a.ok() || !v->ipv6_cidr->Contains(*a)) {
      return ApiError(403, "InvalidIp.Address", fmt::format("The specified IPv6 address \"{}\" is not valid.",
                                                            wanted.substr(0, 64)));
    }
    if (!used.insert(a->ToString()).second) {
      return ApiError(403, "InvalidIp.IpAssigned", fmt::format("The specified IP \"{}\" is already assigned.", wanted));
    }
    return a->ToString();
  }
  for (uint64_t i = 1; i < 1000000; i++) {
    std::string s = v->ipv6_cidr->At(i).ToString();
    if (used.insert(s).second) return s;
  }
  return ApiError(403, "InvalidVSwitchId.IpNotEnough", "The specified VSwitch has not enough IPv6 addresses.");
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

// ---- ENI lifecycle -----------------------------------------------------------

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
  TERWAY_ASSIGN_OR_RETURN(auto v6count, IntParam(p, "Ipv6AddressCount", 0, 10));
  TERWAY_ASSIGN_OR_RETURN(auto v6wanted, ListParam(p, "Ipv6Address", 10));
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

// ---- IP addresses ------------------------------------------------------------

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
  bool attached = e.status == cloud::kEniInUse;
  FabricEni f = ToFabric(e);
  std::string id = e.id;
  Commit(std::move(e));
  if (attached) {
    if (Status fs = fabric_->SetEniIps(f); !fs.ok()) {
      log::Error("vpcsim fabric_set_ips_failed eni={} err={}", id, fs.error().ToString());
    }
  }
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
  bool attached = e.status == cloud::kEniInUse;
  FabricEni f = ToFabric(e);
  Commit(std::move(e));
  if (attached) {
    if (Status fs = fabric_->SetEniIps(f); !fs.ok()) {
      log::Error("vpcsim fabric_set_ips_failed eni={} err={}", f.eni_id, fs.error().ToString());
    }
  }
  return json::object();
}

Result<json> VpcCloud::AssignIpv6Addresses(const Params& p) {
  TERWAY_ASSIGN_OR_RETURN(EniRecord * cur, FindEni(p));
  TERWAY_ASSIGN_OR_RETURN(auto count, IntParam(p, "Ipv6AddressCount", 1, 30));
  TERWAY_ASSIGN_OR_RETURN(auto wanted, ListParam(p, "Ipv6Address", 30));
  if (!count && wanted.empty()) {
    return ApiError(400, "MissingParameter",
                    "The input parameter \"Ipv6AddressCount\" or \"Ipv6Address.N\" that is mandatory "
                    "for processing this request is not supplied.");
  }
  if (count && !wanted.empty()) return InvalidParam("Ipv6AddressCount", "give either it or Ipv6Address.N");
  if (Transitional(*cur)) return EniConflict(*cur);
  size_t n = count ? static_cast<size_t>(*count) : wanted.size();
  const cloud::InstanceType* t = cur->instance_id.empty() ? nullptr : TypeOf(cur->instance_id);
  size_t limit = t ? static_cast<size_t>(t->eni_ipv6_address_quantity) : kMaxIpv6OnDetachedEni;
  if (cur->ipv6s.size() + n > limit) {
    return ApiError(403, "InvalidOperation.Ipv6CountExceeded",
                    fmt::format("ENI {} would hold {} IPv6 addresses; the limit is {}.", cur->id,
                                cur->ipv6s.size() + n, limit));
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
  Commit(std::move(e));
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
  Commit(std::move(e));
  return json::object();
}

// ---- Describe ----------------------------------------------------------------

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

// ---- auth, admin, metadata ---------------------------------------------------

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
  e.security_groups = {world_.default_security_group};
  e.created_at = NowSec();
  InstanceRecord i{spec.id, next_seq_++, spec.instance_type, v->zone, spec.vswitch_id, e.id, NowSec()};
  Status s = store_->PutEni(e);
  if (s.ok()) s = store_->PutInstance(i);
  if (!s.ok()) {
    used_v4_[spec.vswitch_id].erase(Ipv4Addr::Parse(*ip)->value());
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
  log::Info("vpcsim instance_added id={} type={} vswitch={} ip={}", rec.id, rec.instance_type,
            rec.vswitch_id, primary.primary_ip);
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
    vsws.push_back({{"id", v.id}, {"zone", v.zone}, {"cidr", v.cidr.ToString()},
                    {"gateway", v.gateway.ToString()}, {"used", n},
                    {"available", UsableCount(v.cidr) - n}});
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
                  {"ips_per_eni", t ? t->eni_private_ip_address_quantity : 0}, {"enis", ej}});
  }
  json free = json::array();
  for (const auto& [id, e] : enis_) {
    if (e.instance_id.empty()) free.push_back(eni_json(e));
  }
  return {{"world", world_.name},  {"region", world_.region},
          {"vpc", {{"id", world_.vpc_id}, {"cidr", world_.vpc_cidr.ToString()}}},
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
