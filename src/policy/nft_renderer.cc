#include "policy/nft_renderer.h"

#include <map>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace terway::policy {

namespace {

std::string MapElements(const std::map<std::string, std::string>& m) {
  std::string e;
  for (const auto& [ip, chain] : m) e += fmt::format("{}{} : jump {}", e.empty() ? "" : ", ", ip, chain);
  return e;
}

}  // namespace

std::string RenderNftScript(const NftModel& next_model, const NftObjects& existing) {
  const NftObjects next = ObjectsOf(next_model);
  // Rules first (they reference sets, maps, counters and chains), then map
  // elements (they reference chains): then anything the new model lacks
  // has no references left and can go, in the same transaction.
  std::string s = fmt::format("add table {0} {1}\nflush table {0} {1}\n", kNftFamily, kNftTable);
  for (const auto& m : existing.maps) {
    s += fmt::format("{} map {} {} {}\n", next.maps.count(m) ? "flush" : "delete", kNftFamily, kNftTable, m);
  }
  for (const auto& set : existing.sets) {
    s += fmt::format("{} set {} {} {}\n", next.sets.count(set) ? "flush" : "delete", kNftFamily, kNftTable, set);
  }
  for (const auto& c : existing.chains) {
    if (!next.chains.count(c)) s += fmt::format("delete chain {} {} {}\n", kNftFamily, kNftTable, c);
  }
  for (const auto& c : existing.counters) {
    if (!next.counters.count(c)) s += fmt::format("delete counter {} {} {}\n", kNftFamily, kNftTable, c);
  }
  s += fmt::format("table {} {} {{\n", kNftFamily, kNftTable);
  for (const auto& [name, elems] : next_model.sets) {
    s += fmt::format("  set {} {{\n    type ipv4_addr; flags interval;\n", name);
    if (!elems.empty()) s += "    elements = { " + elems + " }\n";
    s += "  }\n";
  }
  // Declaring an existing named counter leaves its values alone.
  for (const auto& c : next_model.counters) s += fmt::format("  counter {} {{ }}\n", c);
  for (const auto& [name, m] : {std::pair{"pod_ingress", &next_model.ingress}, {"pod_egress", &next_model.egress}}) {
    s += fmt::format("  map {} {{\n    type ipv4_addr : verdict;\n", name);
    if (!m->empty()) s += "    elements = { " + MapElements(*m) + " }\n";
    s += "  }\n";
  }
  for (const auto& [name, rules] : next_model.chains) {
    s += fmt::format("  chain {} {{\n", name);
    for (const auto& r : rules) s += "    " + r + "\n";
    s += "  }\n";
  }
  s += "  chain forward {\n"
       "    type filter hook forward priority filter; policy accept;\n"
       "    ct state established,related accept\n"
       "    ct state invalid drop\n"
       "    ip saddr vmap @pod_egress\n"
       "    ip daddr vmap @pod_ingress\n"
       "  }\n}\n";
  return s;
}

std::string RenderNftScript(const CompiledPolicy& cp, const NftObjects& existing) {
  return RenderNftScript(ModelOf(cp), existing);
}

std::string RenderNftDelta(const NftModel& from, const NftModel& to) {
  const std::string t = fmt::format("{} {}", kNftFamily, kNftTable);
  std::string s;
  // 1. Map elements that go or change target: nothing may jump to a chain
  //    about to be flushed or deleted.
  for (const auto& [name, before, after] : {std::tuple{"pod_ingress", &from.ingress, &to.ingress},
                                            {"pod_egress", &from.egress, &to.egress}}) {
    std::string gone;
    for (const auto& [ip, chain] : *before) {
      auto it = after->find(ip);
      if (it == after->end() || it->second != chain) gone += (gone.empty() ? "" : ", ") + ip;
    }
    if (!gone.empty()) s += fmt::format("delete element {} {} {{ {} }}\n", t, name, gone);
  }
  // 2. Chains that go or change: flushed (their rules reference sets and
  //    counters), then the ones that go are deleted.
  for (const auto& [name, rules] : from.chains) {
    auto it = to.chains.find(name);
    if (it == to.chains.end() || it->second != rules) s += fmt::format("flush chain {} {}\n", t, name);
  }
  for (const auto& [name, rules] : from.chains) {
    if (!to.chains.count(name)) s += fmt::format("delete chain {} {}\n", t, name);
  }
  // 3. Sets and counters nothing references any more.
  for (const auto& [name, elems] : from.sets) {
    if (!to.sets.count(name)) s += fmt::format("delete set {} {}\n", t, name);
  }
  for (const auto& c : from.counters) {
    if (!to.counters.count(c)) s += fmt::format("delete counter {} {}\n", t, c);
  }
  // 4. New and changed sets, new counters and chains, then the rules of new
  //    and changed chains, then the map elements that jump to them.
  for (const auto& [name, elems] : to.sets) {
    auto it = from.sets.find(name);
    if (it == from.sets.end()) {
      s += fmt::format("add set {} {} {{ type ipv4_addr; flags interval; }}\n", t, name);
    } else if (it->second != elems) {
      s += fmt::format("flush set {} {}\n", t, name);
    } else {
      continue;
    }
    if (!elems.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, elems);
  }
  for (const auto& c : to.counters) {
    if (!from.counters.count(c)) s += fmt::format("add counter {} {}\n", t, c);
  }
  for (const auto& [name, rules] : to.chains) {
    auto it = from.chains.find(name);
    if (it != from.chains.end() && it->second == rules) continue;
    if (it == from.chains.end()) s += fmt::format("add chain {} {}\n", t, name);
    for (const auto& r : rules) s += fmt::format("add rule {} {} {}\n", t, name, r);
  }
  for (const auto& [name, before, after] : {std::tuple{"pod_ingress", &from.ingress, &to.ingress},
                                            {"pod_egress", &from.egress, &to.egress}}) {
    std::map<std::string, std::string> added;
    for (const auto& [ip, chain] : *after) {
      auto it = before->find(ip);
      if (it == before->end() || it->second != chain) added[ip] = chain;
    }
    if (!added.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, MapElements(added));
  }
  return s;
}

Status NftPolicyTable::Apply(const CompiledPolicy& policy) {
  NftModel next = ModelOf(policy);
  if (applied_) {
    if (*applied_ == next) return Ok();  // nothing changed for this node
    Status s = RunNftBatch(netns_, RenderNftDelta(*applied_, next));
    if (s.ok()) {
      applied_ = std::move(next);
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
  applied_ = std::move(next);
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
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("nftables") || !j["nftables"].is_array()) {
      return Errorf(ErrorCode::kInternal, "listing our {}: unexpected nft JSON output", kind);
    }
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
  }
  return o;
}

Result<std::vector<RuleCounter>> NftPolicyTable::ReadCounters() const {
  std::string out;
  Status s = RunNftBatch(netns_, fmt::format("list counters table {} {}", kNftFamily, kNftTable), &out);
  if (!s.ok()) return std::move(s).error().Wrap("reading policy counters");
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("nftables") || !j["nftables"].is_array()) {
    return Errorf(ErrorCode::kInternal, "reading policy counters: unexpected nft JSON output");
  }
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

}  // namespace terway::policy
