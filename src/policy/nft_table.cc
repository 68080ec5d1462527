#include "policy/nft_table.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "policy/nft_batch.h"
#include "policy/nft_netlink.h"
#include "policy/nft_render.h"

namespace terway::policy {

namespace {

Result<nlohmann::json> ParseListing(const std::string& nft_json) {
  auto j = nlohmann::json::parse(nft_json, nullptr, false);
  if (j.is_discarded() || !j.contains("nftables") || !j["nftables"].is_array()) {
    return Errorf(ErrorCode::kInternal, "unexpected nft JSON output");
  }
  return j;
}

}  // namespace

Result<NftObjects> ParseListedObjects(const std::string& nft_json) {
  TERWAY_ASSIGN_OR_RETURN(nlohmann::json j, ParseListing(nft_json));
  NftObjects o;
  for (const auto& item : j["nftables"]) {
    if (!item.is_object()) continue;
    for (const auto& [key, into] : {std::pair<const char*, std::set<std::string>*>{"chain", &o.chains},
                                    {"set", &o.sets}, {"map", &o.maps}, {"counter", &o.counters}}) {
      auto it = item.find(key);
      if (it != item.end() && it->contains("name") && (*it)["name"].is_string() &&
          it->value("table", std::string()) == kNftTable) {
        into->insert((*it)["name"].get<std::string>());
      }
    }
  }
  return o;
}

Result<std::vector<RuleCounter>> ParseListedCounters(const std::string& nft_json) {
  TERWAY_ASSIGN_OR_RETURN(nlohmann::json j, ParseListing(nft_json));
  std::vector<RuleCounter> counters;
  for (const auto& item : j["nftables"]) {
    if (!item.is_object() || !item.contains("counter")) continue;
    const auto& c = item["counter"];
    if (!c.contains("name") || !c["name"].is_string()) continue;
    RuleCounter rc;
    rc.name = c["name"].get<std::string>();
    if (c.contains("packets") && c["packets"].is_number_unsigned()) rc.packets = c["packets"].get<uint64_t>();
    if (c.contains("bytes") && c["bytes"].is_number_unsigned()) rc.bytes = c["bytes"].get<uint64_t>();
    counters.push_back(std::move(rc));
  }
  return counters;
}

Status NftPolicyTable::Apply(const CompiledPolicy& policy) { return Apply(ModelOf(policy)); }

namespace {

// Whether `model` holds what `change` starts from, for the names it touches.
bool StartsFrom(const NftModelChange& c, const NftModel& model) {
  auto same = [](const auto& from, const auto& to, const auto& have) {
    for (const auto& [name, value] : from) {
      auto it = have.find(name);
      if (it == have.end() || it->second != value) return false;
    }
    for (const auto& [name, value] : to) {
      if (!from.count(name) && have.count(name)) return false;
    }
    return true;
  };
  for (const auto& name : c.from.counters) {
    if (!model.counters.count(name)) return false;
  }
  for (const auto& name : c.to.counters) {
    if (!c.from.counters.count(name) && model.counters.count(name)) return false;
  }
  return same(c.from.sets, c.to.sets, model.sets) && same(c.from.tuple_sets, c.to.tuple_sets, model.tuple_sets) &&
         same(c.from.chains, c.to.chains, model.chains) &&
         same(c.from.ingress, c.to.ingress, model.ingress) && same(c.from.egress, c.to.egress, model.egress);
}

}  // namespace

Status NftPolicyTable::ApplyChange(const NftModelChange& change, const NftModel& next) {
  if (!applied_ || !StartsFrom(change, *applied_)) return Apply(next);
  if (change.empty()) return Ok();
  // Our own netlink encoding first: libnftables would list the whole table
  // before running even a one-line change (nft_netlink.h).
  const std::string delta = RenderNftDelta(change.from, change.to);
  Status s = RunNftBatchNetlink(netns_, delta);
  if (!s.ok() && s.error().code == ErrorCode::kUnsupported) s = RunNftBatch(netns_, delta);
  if (s.ok()) {
    policy::ApplyChange(change, &*applied_);
    return Ok();
  }
  applied_.reset();  // as in Apply: replace whole from what the kernel lists
  return Apply(next);
}

Status NftPolicyTable::Apply(const NftModel& model) {
  const NftModel& next = model;
  if (applied_) {
    if (*applied_ == next) return Ok();  // nothing changed for this node
    Status s = RunNftBatch(netns_, RenderNftDelta(*applied_, next));
    if (s.ok()) {
      applied_ = next;
      return Ok();
    }
    // Someone else changed our table (or it is gone): what we remember is
    // stale. Replace it whole from what the kernel lists.
    applied_.reset();
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(NftObjects existing, ListObjects(),
                              fmt::format("reading table {} {}", kNftFamily, kNftTable));
  Status s = RunNftBatch(netns_, RenderNftScript(next, existing));
  if (!s.ok()) return std::move(s).error().Wrap(fmt::format("installing table {} {}", kNftFamily, kNftTable));
  applied_ = next;
  return Ok();
}

Status NftPolicyTable::Remove() {
  applied_.reset();
  Status s = RunNftBatch(netns_, fmt::format("add table {0} {1}\ndelete table {0} {1}\n", kNftFamily, kNftTable));
  if (!s.ok()) return std::move(s).error().Wrap(fmt::format("removing table {} {}", kNftFamily, kNftTable));
  return Ok();
}

Status NftPolicyTable::Verify() {
  if (!applied_) return Ok();
  TERWAY_ASSIGN_OR_RETURN(NftObjects listed, ListObjects());
  const NftObjects want = ObjectsOf(*applied_);
  if (listed == want) return Ok();
  std::string what;
  if (listed.chains.empty()) {
    what = fmt::format("table {} {} is gone", kNftFamily, kNftTable);
  } else {
    what = fmt::format("table {} {} holds {} chains, {} sets, {} counters; applied were {}, {}, {}", kNftFamily,
                       kNftTable, listed.chains.size(), listed.sets.size(), listed.counters.size(),
                       want.chains.size(), want.sets.size(), want.counters.size());
  }
  applied_.reset();
  return MakeError(ErrorCode::kConflict, what);
}

Result<NftObjects> NftPolicyTable::ListObjects() const {
  NftObjects o;
  // Declarations only for chains; sets and maps list their elements too
  // (peer sets and pod maps: modest next to the rules, which we skip).
  for (const char* kind : {"chains", "sets", "maps", "counters"}) {
    std::string out;
    // nft 1.0.6 lists chains, sets and maps per family only ("list chains
    // table ..." is a syntax error there); the entries name their table.
    Status s = RunNftBatch(netns_, std::string(kind) == "counters"
                                       ? fmt::format("list counters table {} {}", kNftFamily, kNftTable)
                                       : fmt::format("list {} {}", kind, kNftFamily),
                           &out);
    if (!s.ok()) {
      if (s.error().code == ErrorCode::kNotFound) return NftObjects{};  // no table yet
      return std::move(s).error();
    }
    TERWAY_ASSIGN_OR_RETURN_CTX(NftObjects listed, ParseListedObjects(out), fmt::format("listing our {}", kind));
    o.chains.merge(listed.chains);
    o.sets.merge(listed.sets);
    o.maps.merge(listed.maps);
    o.counters.merge(listed.counters);
  }
  return o;
}

Result<std::vector<RuleCounter>> NftPolicyTable::ReadCounters() const {
  std::string out;
  Status s = RunNftBatch(netns_, fmt::format("list counters table {} {}", kNftFamily, kNftTable), &out);
  if (!s.ok()) return std::move(s).error().Wrap("reading policy counters");
  TERWAY_ASSIGN_OR_RETURN_CTX(std::vector<RuleCounter> counters, ParseListedCounters(out), "reading policy counters");
  return counters;
}

}  // namespace terway::policy
