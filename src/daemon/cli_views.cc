#include "daemon/cli_views.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "common/ip.h"

namespace terway::daemon::cli_views {

namespace {

constexpr const char* kTypes[] = {"network_service", "resource_pool", "eni", "pod"};

Json KvJson(const std::vector<KeyValue>& kvs) {
  Json a = Json::array();
  for (const auto& kv : kvs) a.push_back(Json{{"key", kv.key}, {"value", kv.value}});
  return a;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Addresses sort numerically (198.18.0.10 after 198.18.0.9); text that is no
// address sorts after every address, as text.
std::tuple<int, uint32_t, std::string> AddressKey(const std::string& ip) {
  auto a = Ipv4Addr::Parse(ip);
  return a.ok() ? std::make_tuple(0, a->value(), std::string()) : std::make_tuple(1, 0u, ip);
}

const char* UseName(ipam::IpUse u) {
  switch (u) {
    case ipam::IpUse::kInUse: return "in use";
    case ipam::IpUse::kIdle: return "idle";
    case ipam::IpUse::kReserved: return "reserved";
    case ipam::IpUse::kReleasing: return "releasing";
  }
  return "unknown";
}

std::string PodOf(const store::AllocationRecord& a) { return a.pod_namespace + "/" + a.pod_name; }

}  // namespace

// ---- list / show -------------------------------------------------------

std::vector<InspectObject> BuildObjects(const ServiceFacts& service, const PoolFacts& pool, const StoreFacts& store) {
  std::vector<InspectObject> out;
  out.push_back({"network_service", "default", service.config, service.trace});
  const auto& s = pool.stats;
  out.push_back({"resource_pool", pool.name, pool.config,
                 {{"idle", std::to_string(s.idle)},
                  {"in_use", std::to_string(s.in_use)},
                  {"reserved", std::to_string(s.reserved)},
                  {"releasing", std::to_string(s.releasing)},
                  {"unpaired_ipv4", std::to_string(s.unpaired)},
                  {"spare_ipv6", std::to_string(s.spare_ipv6)},
                  {"enis", std::to_string(s.enis)},
                  {"max_pods", std::to_string(s.max_pods)},
                  {"waiting_requests", std::to_string(s.waiting)},
                  {"allocations_total", std::to_string(s.allocations_total)},
                  {"allocation_failures_total", std::to_string(s.allocation_failures_total)},
                  {"releases_total", std::to_string(s.releases_total)}}});

  std::vector<store::EniRecord> enis = store.enis;
  std::sort(enis.begin(), enis.end(), [](const auto& a, const auto& b) { return a.eni_id < b.eni_id; });
  for (const auto& e : enis) {
    int in_use = 0, idle = 0, paired = 0;
    std::vector<std::string> pods;
    for (const auto& ip : store.ips) {
      if (ip.eni_id != e.eni_id) continue;
      (ip.idle_since_unix ? idle : in_use)++;
      paired += ip.ipv6.empty() ? 0 : 1;
    }
    for (const auto& a : store.allocations) {
      // Dual stack: the pod's pair, "ns/name=v4,v6" as k8s.aliyun.com/pod-ips lists it.
      if (a.eni_id == e.eni_id) pods.push_back(PodOf(a) + "=" + a.ip + (a.ipv6.empty() ? "" : "," + a.ipv6));
    }
    std::sort(pods.begin(), pods.end());
    out.push_back({"eni", e.eni_id,
                   {{"mac", e.mac},
                    {"vswitch_id", e.vswitch_id},
                    {"primary_ip", e.primary_ip},
                    {"primary_eni", e.is_primary ? "true" : "false"},
                    {"created_unix", std::to_string(e.created_unix)}},
                   {{"ips_in_use", std::to_string(in_use)}, {"ips_idle", std::to_string(idle)},
                    {"ips_paired_with_ipv6", std::to_string(paired)}, {"pods", Joined(pods)}}});
  }

  std::vector<store::AllocationRecord> allocs = store.allocations;
  std::sort(allocs.begin(), allocs.end(), [](const auto& a, const auto& b) {
    return std::tie(a.pod_namespace, a.pod_name, a.container_id) <
           std::tie(b.pod_namespace, b.pod_name, b.container_id);
  });
  for (const auto& a : allocs) {
    std::string name = PodOf(a);
    // A pod restarted with a new sandbox has one row per container id.
    if (!out.empty() && out.back().type == "pod" && out.back().name == name) name += "@" + a.container_id.substr(0, 12);
    out.push_back({"pod", name,
                   {{"uid", a.pod_uid},
                    {"container_id", a.container_id},
                    {"netns", a.netns},
                    {"ifname", a.ifname},
                    {"datapath_mode", a.datapath_mode},
                    {"sticky", a.sticky ? "true" : "false"},
                    {"bandwidth", a.bandwidth},
                    {"host_stack_cidrs", a.host_stack_cidrs},
                    {"origin", a.origin},
                    {"host_veth", a.host_veth}},
                   {{"ip", a.ip}, {"ipv6", a.ipv6}, {"eni_id", a.eni_id}, {"state", a.state},
                    {"created_unix", std::to_string(a.created_unix)}}});
  }
  return out;
}

Result<Json> ListView(const std::vector<InspectObject>& objects, const std::string& type) {
  if (type.empty()) {
    Json types = Json::array();
    for (const char* t : kTypes) types.push_back(t);
    return Json{{"types", types}};
  }
  if (std::find(std::begin(kTypes), std::end(kTypes), type) == std::end(kTypes)) {
    return Errorf(ErrorCode::kNotFound, "no resource type {:?}; the types are: {}", type,
                  Joined({std::begin(kTypes), std::end(kTypes)}));
  }
  Json names = Json::array();
  for (const auto& o : objects) {
    if (o.type == type) names.push_back(o.name);
  }
  return Json{{"type", type}, {"names", names}};
}

Result<Json> ShowView(const std::vector<InspectObject>& objects, const std::string& type, const std::string& name) {
  TERWAY_ASSIGN_OR_RETURN(Json listed, ListView(objects, type.empty() ? "-" : type));
  std::vector<std::string> names = listed["names"].get<std::vector<std::string>>();
  for (const auto& o : objects) {
    if (o.type != type || (!name.empty() && o.name != name)) continue;
    return Json{{"type", o.type}, {"name", o.name}, {"config", KvJson(o.config)}, {"trace", KvJson(o.trace)}};
  }
  if (names.empty()) return Errorf(ErrorCode::kNotFound, "no {} on this node yet", type);
  return Errorf(ErrorCode::kNotFound, "no {} named {:?}; `terway-cli list {}` lists them: {}", type, name, type,
                Joined(names));
}

// ---- mapping -----------------------------------------------------------

namespace {

// What each ledger says about one address.
struct AddressLedgers {
  std::vector<const store::AllocationRecord*> holders;  // the store's allocations of it
  const store::IpRecord* row = nullptr;                  // the store's address row
  const ipam::PoolContents::Address* mem = nullptr;      // the pool's memory
  const store::ReservationRecord* reservation = nullptr;
};

// The store's two tables against each other, and the ENI they name.
using EniIndex = std::map<std::string, const store::EniRecord*>;

void StoreProblems(const MappingRow& row, const AddressLedgers& l, const EniIndex& enis,
                   std::vector<std::string>* out) {
  const bool held = !l.holders.empty();
  if (l.holders.size() > 1) {
    std::vector<std::string> who;
    for (const auto* a : l.holders) who.push_back(PodOf(*a) + " (" + a->container_id.substr(0, 12) + ")");
    out->push_back(fmt::format("the store records {} allocations of it: {}", l.holders.size(), Joined(who)));
  }
  if (held && l.row == nullptr) out->push_back("pod " + row.pod + " holds it but the store has no row for the address");
  if (held && l.row && l.row->idle_since_unix) {
    out->push_back("pod " + row.pod + " holds it but the store marks it idle");
  }
  if (!held && l.row && !l.row->idle_since_unix) out->push_back("the store marks it in use but no pod holds it");
  for (const auto* other : {l.row ? &l.row->eni_id : nullptr, l.mem ? &l.mem->eni_id : nullptr}) {
    if (other && !other->empty() && !row.eni_id.empty() && *other != row.eni_id) {
      out->push_back("recorded on ENI " + row.eni_id + " here and on " + *other + " there");
      break;
    }
  }
  if (!row.eni_id.empty() && !enis.count(row.eni_id)) out->push_back("its ENI " + row.eni_id + " is not in the store");
}

// Dual stack: a slot is one (IPv4, IPv6) pair; the pod's record, the store's
// row and the pool's memory must name the same IPv6, and no IPv6 may be
// held by two pods (ipv6_holders: every allocation of each IPv6).
void PairProblems(const MappingRow& row, const AddressLedgers& l,
                  const std::map<std::string, std::vector<const store::AllocationRecord*>>& ipv6_holders,
                  std::vector<std::string>* out) {
  const store::AllocationRecord* holder = l.holders.empty() ? nullptr : l.holders.front();
  if (holder && !holder->ipv6.empty() && l.row && l.row->ipv6 != holder->ipv6) {
    out->push_back(fmt::format("pod {} holds IPv6 {} but the store pairs the address with {}", row.pod, holder->ipv6,
                               l.row->ipv6.empty() ? "none" : l.row->ipv6));
  }
  const std::string store_v6 = holder && !holder->ipv6.empty() ? holder->ipv6 : l.row ? l.row->ipv6 : "";
  if (l.mem && (holder || l.row) && l.mem->ipv6 != store_v6) {
    out->push_back(fmt::format("the pool pairs it with IPv6 {}, the store with {}",
                               l.mem->ipv6.empty() ? "none" : l.mem->ipv6, store_v6.empty() ? "none" : store_v6));
  }
  if (holder && !holder->ipv6.empty()) {
    auto h = ipv6_holders.find(holder->ipv6);
    if (h != ipv6_holders.end() && h->second.size() > 1) {
      std::vector<std::string> who;
      for (const auto* a : h->second) who.push_back(PodOf(*a) + " (" + a->ip + ")");
      out->push_back(fmt::format("its IPv6 {} is held by {} pods: {}", holder->ipv6, h->second.size(), Joined(who)));
    }
  }
}

// The pool's memory (what it last agreed with the cloud) against the store.
void PoolProblems(const MappingRow& row, const AddressLedgers& l, std::vector<std::string>* out) {
  const store::AllocationRecord* holder = l.holders.empty() ? nullptr : l.holders.front();
  const auto* mem = l.mem;
  if (holder && mem == nullptr) {
    out->push_back("pod " + row.pod + " holds it but the pool does not know it (gone from the cloud's ENI?)");
  } else if (holder && mem->use != ipam::IpUse::kInUse) {
    out->push_back(fmt::format("pod {} holds it but the pool has it {}", row.pod, UseName(mem->use)));
  } else if (holder && mem->container_id != holder->container_id) {
    out->push_back(fmt::format("the pool gives it to container {}, the store to {}", mem->container_id.substr(0, 12),
                               holder->container_id.substr(0, 12)));
  }
  if (!holder && mem && mem->use == ipam::IpUse::kInUse) {
    out->push_back("the pool has it in use by container " + mem->container_id.substr(0, 12) +
                   " but the store records no pod on it");
  }
  if (!holder && mem == nullptr && l.row) out->push_back("the store lists it but the pool does not know it");
  if (mem && l.row == nullptr && !holder) out->push_back("the pool holds it but the store has no row for it");
  if (mem && mem->use == ipam::IpUse::kReserved && l.reservation == nullptr) {
    out->push_back("the pool reserves it but the store has no reservation for it");
  }
}

MappingRow RowFor(const std::string& ip, const AddressLedgers& l, bool have_pool, const EniIndex& enis,
                  const std::map<std::string, std::vector<const store::AllocationRecord*>>& ipv6_holders) {
  const store::AllocationRecord* holder = l.holders.empty() ? nullptr : l.holders.front();
  MappingRow row;
  row.ip = ip;
  row.store_state = l.row == nullptr ? "absent" : l.row->idle_since_unix ? "idle" : "in use";
  row.pool_state = !have_pool ? "-" : l.mem == nullptr ? "absent" : UseName(l.mem->use);
  row.eni_id = holder ? holder->eni_id : l.row ? l.row->eni_id : l.mem ? l.mem->eni_id : "";
  row.ipv6 = holder && !holder->ipv6.empty() ? holder->ipv6 : l.row ? l.row->ipv6 : l.mem ? l.mem->ipv6 : "";
  if (holder) {
    row.pod = PodOf(*holder);
    row.container_id = holder->container_id;
  } else if (l.mem && l.mem->use == ipam::IpUse::kInUse) {
    row.container_id = l.mem->container_id;
  } else if (l.reservation) {
    row.pod = l.reservation->pod_namespace + "/" + l.reservation->pod_name;
  }

  std::vector<std::string> problems;
  StoreProblems(row, l, enis, &problems);
  PairProblems(row, l, ipv6_holders, &problems);
  if (have_pool) {
    PoolProblems(row, l, &problems);
  } else if (holder) {
    // Exclusive ENI: the pod's address is the primary IP of an ENI of its own.
    if (auto e = enis.find(holder->eni_id); e != enis.end() && e->second->primary_ip != ip) {
      problems.push_back("pod " + row.pod + " holds it on ENI " + holder->eni_id + " whose primary IP is " +
                         e->second->primary_ip);
    }
  }

  if (!problems.empty()) {
    row.status = kMappingError;
    for (const auto& p : problems) row.problem += (row.problem.empty() ? "" : "; ") + p;
  } else if (holder) {
    row.status = "Normal";
  } else if (l.mem && l.mem->use == ipam::IpUse::kReleasing) {
    row.status = "Releasing";
  } else if (l.reservation || (l.mem && l.mem->use == ipam::IpUse::kReserved)) {
    row.status = "Reserved";
  } else {
    row.status = "Idle";
  }
  return row;
}

}  // namespace

std::vector<MappingRow> BuildMapping(const StoreFacts& store, const std::optional<ipam::PoolContents>& pool) {
  std::map<std::string, AddressLedgers> ips;
  std::map<std::string, std::vector<const store::AllocationRecord*>> ipv6_holders;
  for (const auto& a : store.allocations) {
    ips[a.ip].holders.push_back(&a);
    if (!a.ipv6.empty()) ipv6_holders[a.ipv6].push_back(&a);
  }
  for (const auto& r : store.ips) ips[r.ip].row = &r;
  if (pool) {
    for (const auto& a : pool->addresses) ips[a.ip].mem = &a;
  }
  // A reservation alone (its address gone from both) names no address to show.
  for (const auto& r : store.reservations) {
    if (auto it = ips.find(r.ip); it != ips.end()) it->second.reservation = &r;
  }
  EniIndex enis;
  for (const auto& e : store.enis) enis[e.eni_id] = &e;

  std::vector<MappingRow> out;
  for (const auto& [ip, ledgers] : ips) out.push_back(RowFor(ip, ledgers, pool.has_value(), enis, ipv6_holders));
  std::sort(out.begin(), out.end(), [](const MappingRow& a, const MappingRow& b) {
    return std::make_tuple(a.eni_id, AddressKey(a.ip)) < std::make_tuple(b.eni_id, AddressKey(b.ip));
  });
  return out;
}

Json MappingView(const std::vector<MappingRow>& rows) {
  Json a = Json::array();
  int errors = 0;
  for (const auto& r : rows) {
    if (r.status == kMappingError) errors++;
    a.push_back(Json{{"status", r.status}, {"ip", r.ip}, {"ipv6", r.ipv6}, {"eni_id", r.eni_id}, {"pod", r.pod},
                     {"container_id", r.container_id}, {"store", r.store_state}, {"pool", r.pool_state},
                     {"problem", r.problem}});
  }
  return Json{{"rows", a}, {"errors", errors}};
}

// ---- metadata ----------------------------------------------------------

Json MetadataView(const MetadataFacts& facts, const std::vector<store::EniRecord>& tracked) {
  std::vector<const MetadataEni*> enis;
  for (const auto& e : facts.enis) enis.push_back(&e);
  const std::string primary = Lower(facts.primary_mac);
  std::sort(enis.begin(), enis.end(), [&](const MetadataEni* a, const MetadataEni* b) {
    return std::make_tuple(Lower(a->mac) != primary, Lower(a->mac)) <
           std::make_tuple(Lower(b->mac) != primary, Lower(b->mac));
  });
  std::map<std::string, const store::EniRecord*> by_id;
  for (const auto& t : tracked) by_id[t.eni_id] = &t;
  std::set<std::string> listed;

  Json out_enis = Json::array();
  for (const auto* e : enis) {
    std::vector<std::string> secondary;
    for (const auto& ip : e->private_ips) {
      if (ip != e->primary_ip) secondary.push_back(ip);
    }
    std::sort(secondary.begin(), secondary.end(),
              [](const std::string& a, const std::string& b) { return AddressKey(a) < AddressKey(b); });
    auto ifname = facts.ifname_by_mac.find(Lower(e->mac));
    listed.insert(e->eni_id);
    // The instance's primary ENI carries the node itself; a shared-ENI pool
    // never records it, so "not tracked" is its normal state.
    std::string terwayd = Lower(e->mac) == primary ? "not tracked (the node's primary ENI)" : "not tracked";
    if (auto t = by_id.find(e->eni_id); t != by_id.end()) {
      terwayd = t->second->is_primary ? "tracked (primary ENI)" : "tracked";
      if (Lower(t->second->mac) != Lower(e->mac)) terwayd += "; the store records MAC " + t->second->mac;
    }
    out_enis.push_back(Json{{"mac", e->mac},
                            {"eni_id", e->eni_id},
                            {"primary", Lower(e->mac) == primary},
                            {"interface", ifname == facts.ifname_by_mac.end() ? "" : ifname->second},
                            {"primary_ipv4", e->primary_ip},
                            {"secondary_ipv4s", secondary},
                            {"ipv6s", e->ipv6s},
                            {"gateway", e->gateway},
                            {"netmask", e->netmask},
                            {"vswitch_id", e->vswitch_id},
                            {"vswitch_cidr", e->vswitch_cidr},
                            {"terwayd", terwayd},
                            {"error", e->error}});
  }
  Json store_only = Json::array();
  for (const auto& t : tracked) {
    if (!listed.count(t.eni_id)) store_only.push_back(Json{{"eni_id", t.eni_id}, {"mac", t.mac}});
  }
  return Json{{"instance_id", facts.instance_id}, {"zone_id", facts.zone_id}, {"vswitch_id", facts.vswitch_id},
              {"primary_mac", facts.primary_mac}, {"enis", out_enis}, {"store_only", store_only}};
}

// ---- nodeconfig --------------------------------------------------------

bool IsSecretKey(std::string_view key) {
  std::string k;
  for (char c : key) {
    if (c == '-' || c == '_') continue;
    k.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  // access_key (upstream's AccessKey id), access_secret, access_key_secret,
  // security_token, ... Key ids are not secret alone, but half a credential
  // is not the operator's business in a support ticket either.
  static const char* kParts[] = {"accesskey", "accesssecret", "secret", "password", "token", "credentialsjson"};
  for (const char* p : kParts) {
    if (k.find(p) != std::string::npos) return true;
  }
  return false;
}

Json RedactSecrets(const Json& j) {
  if (j.is_array()) {
    Json out = Json::array();
    for (const auto& e : j) out.push_back(RedactSecrets(e));
    return out;
  }
  if (!j.is_object()) return j;
  Json out = Json::object();
  for (const auto& [k, v] : j.items()) {
    if (!IsSecretKey(k)) {
      out[k] = RedactSecrets(v);
    } else if (v.is_string() && v.get<std::string>().empty()) {
      out[k] = "";
    } else if (v.is_null()) {
      out[k] = nullptr;
    } else {
      out[k] = kRedacted;
    }
  }
  return out;
}

std::vector<KeyValue> EffectiveConfig(const config::EniConfig& c) {
  auto secs = [](std::chrono::seconds s) { return std::to_string(s.count()) + "s"; };
  auto or_default = [](const std::string& v, const char* dflt) {
    return v.empty() ? fmt::format("(not set: {})", dflt) : v;
  };
  auto set = [](const std::string& s) { return s.empty() ? std::string("not set") : std::string("set (redacted)"); };
  std::vector<std::string> vsw;
  for (const auto& [zone, ids] : c.vswitches) vsw.push_back(zone + ": " + Joined(ids));
  std::vector<std::string> tags;
  for (const auto& [k, v] : c.eni_tags) tags.push_back(k + "=" + v);
  const char* cred = "auto";
  switch (c.credential_source) {
    case config::CredentialSource::kAuto: cred = "auto"; break;
    case config::CredentialSource::kStatic: cred = "static"; break;
    case config::CredentialSource::kFile: cred = "file"; break;
    case config::CredentialSource::kRamRole: cred = "ram_role"; break;
  }
  return {
      {"eni_mode", ipam::EniModeName(c.eni_mode)},
      {"max_pool_size", std::to_string(c.max_pool_size)},
      {"min_pool_size", std::to_string(c.min_pool_size)},
      {"ip_warm_up_size", std::to_string(c.ip_warm_up_size)},
      {"max_eni", std::to_string(c.max_eni)},
      {"min_eni", std::to_string(c.min_eni)},
      {"eni_cap_ratio", fmt::format("{}", c.eni_cap_ratio)},
      {"eni_cap_shift", std::to_string(c.eni_cap_shift)},
      {"vswitches", Joined(vsw)},
      {"vswitch_selection_policy", ipam::VSwitchSelectionPolicyName(c.vswitch_selection_policy)},
      {"eni_selection_policy", ipam::EniSelectionPolicyName(c.eni_selection_policy)},
      {"security_groups", Joined(c.security_groups)},
      {"eni_tags", Joined(tags)},
      {"resource_group_id", c.resource_group_id},
      {"service_cidr", c.service_cidr ? c.service_cidr->ToString() : ""},
      {"idle_ip_reclaim_after", secs(c.idle_ip_reclaim_after)},
      {"idle_ip_reclaim_interval", secs(c.idle_ip_reclaim_interval)},
      {"idle_ip_reclaim_batch_size", std::to_string(c.idle_ip_reclaim_batch_size)},
      {"ip_pool_sync_period", secs(c.ip_pool_sync_period)},
      {"ip_reservation_window", secs(c.ip_reservation_window)},
      {"leaked_eni_grace_period", secs(c.leaked_eni_grace_period)},
      {"region_id", or_default(c.region_id, "the metadata service's region-id")},
      {"ecs_endpoint", or_default(c.ecs_endpoint, "ecs-vpc.<region>.aliyuncs.com")},
      {"vpc_endpoint", or_default(c.vpc_endpoint, "vpc-vpc.<region>.aliyuncs.com")},
      {"metadata_endpoint", or_default(c.metadata_endpoint, "http://100.100.100.200")},
      {"credential_source", cred},
      {"access_key", set(c.access_key)},
      {"access_secret", set(c.access_secret)},
      {"credential_path", c.credential_path},
      {"metadata_credentials_for_pods", config::MetadataCredentialsForPodsName(c.metadata_credentials_for_pods)},
      {"enable_patch_pod_ips", c.enable_patch_pod_ips ? "true" : "false"},
      {"disable_device_plugin", c.disable_device_plugin ? "true" : "false"},
  };
}

Result<Json> NodeConfigView(const NodeConfigFacts& facts) {
  Json conf = Json::parse(facts.eni_conf_text, nullptr, /*allow_exceptions=*/false);
  if (conf.is_discarded()) {
    return Errorf(ErrorCode::kInternal, "the eni_conf terwayd started with (from {}) is no longer JSON", facts.source);
  }
  return Json{{"source", facts.source}, {"node", KvJson(facts.node)}, {"effective", KvJson(facts.effective)},
              {"eni_conf", RedactSecrets(conf)}};
}

}  // namespace terway::daemon::cli_views
