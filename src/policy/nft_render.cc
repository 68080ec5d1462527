#include "policy/nft_render.h"

#include <map>
#include <tuple>

#include <fmt/format.h>

namespace terway::policy {

namespace {

using PodMap = std::map<std::string, std::string>;  // pod IP -> chain

constexpr const char* kAddressSetType = "ipv4_addr; flags interval";
constexpr const char* kTupleSetType = "ipv4_addr . inet_proto . inet_service";

std::string MapElements(const PodMap& m) {
  std::string e;
  for (const auto& [ip, chain] : m) e += fmt::format("{}{} : jump {}", e.empty() ? "" : ", ", ip, chain);
  return e;
}

// The whole script's first part: what stays is flushed, what the new model
// lacks is deleted. Rules first (they reference sets, maps, counters and
// chains), then map elements (they reference chains): then anything the new
// model lacks has no references left and can go, in the same transaction.
std::string ClearExisting(const NftObjects& existing, const NftObjects& next) {
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
  return s;
}

// The whole script's second part: the table block declaring every object.
std::string DeclareTable(const NftModel& model) {
  std::string s = fmt::format("table {} {} {{\n", kNftFamily, kNftTable);
  for (const auto& [name, elems] : model.sets) {
    s += fmt::format("  set {} {{\n    type {};\n", name, kAddressSetType);
    if (!elems.empty()) s += "    elements = { " + elems + " }\n";
    s += "  }\n";
  }
  for (const auto& [name, elems] : model.tuple_sets) {
    s += fmt::format("  set {} {{\n    type {};\n", name, kTupleSetType);
    if (!elems.empty()) s += "    elements = { " + elems + " }\n";
    s += "  }\n";
  }
  // Declaring an existing named counter leaves its values alone.
  for (const auto& c : model.counters) s += fmt::format("  counter {} {{ }}\n", c);
  for (const auto& [name, m] : {std::pair{"pod_ingress", &model.ingress}, {"pod_egress", &model.egress}}) {
    s += fmt::format("  map {} {{\n    type ipv4_addr : verdict;\n", name);
    if (!m->empty()) s += "    elements = { " + MapElements(*m) + " }\n";
    s += "  }\n";
  }
  for (const auto& [name, rules] : model.chains) {
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

// The delta's first part, in this order: 1. map elements that go or change
// target (nothing may jump to a chain about to be flushed or deleted);
// 2. chains that go or change, flushed (their rules reference sets and
// counters), then the ones that go deleted; 3. sets and counters nothing
// references any more.
std::string DeltaRemovals(const NftModel& from, const NftModel& to, const std::string& t) {
  std::string s;
  for (const auto& [name, before, after] : {std::tuple{"pod_ingress", &from.ingress, &to.ingress},
                                            {"pod_egress", &from.egress, &to.egress}}) {
    std::string gone;
    for (const auto& [ip, chain] : *before) {
      auto it = after->find(ip);
      if (it == after->end() || it->second != chain) gone += (gone.empty() ? "" : ", ") + ip;
    }
    if (!gone.empty()) s += fmt::format("delete element {} {} {{ {} }}\n", t, name, gone);
  }
  for (const auto& [name, rules] : from.chains) {
    auto it = to.chains.find(name);
    if (it == to.chains.end() || it->second != rules) s += fmt::format("flush chain {} {}\n", t, name);
  }
  for (const auto& [name, rules] : from.chains) {
    if (!to.chains.count(name)) s += fmt::format("delete chain {} {}\n", t, name);
  }
  for (const auto& [before, after] : {std::pair{&from.sets, &to.sets}, {&from.tuple_sets, &to.tuple_sets}}) {
    for (const auto& [name, elems] : *before) {
      if (!after->count(name)) s += fmt::format("delete set {} {}\n", t, name);
    }
  }
  for (const auto& c : from.counters) {
    if (!to.counters.count(c)) s += fmt::format("delete counter {} {}\n", t, c);
  }
  return s;
}

// The delta's second part: 4. new and changed sets, new counters and
// chains, then the rules of new and changed chains, then the map elements
// that jump to them.
std::string DeltaAdditions(const NftModel& from, const NftModel& to, const std::string& t) {
  std::string s;
  for (const auto& [before, after, type] : {std::tuple{&from.sets, &to.sets, kAddressSetType},
                                            {&from.tuple_sets, &to.tuple_sets, kTupleSetType}}) {
    for (const auto& [name, elems] : *after) {
      auto it = before->find(name);
      if (it == before->end()) {
        s += fmt::format("add set {} {} {{ type {}; }}\n", t, name, type);
      } else if (it->second != elems) {
        s += fmt::format("flush set {} {}\n", t, name);
      } else {
        continue;
      }
      if (!elems.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, elems);
    }
  }
  for (const auto& c : to.counters) {
    if (!from.counters.count(c)) s += fmt::format("add counter {} {}\n", t, c);
  }
  // Every new chain before any rule: a tier's rules `goto` the next tier's
  // chain, which must exist when the rule is added.
  for (const auto& [name, rules] : to.chains) {
    if (!from.chains.count(name)) s += fmt::format("add chain {} {}\n", t, name);
  }
  for (const auto& [name, rules] : to.chains) {
    auto it = from.chains.find(name);
    if (it != from.chains.end() && it->second == rules) continue;
    for (const auto& r : rules) s += fmt::format("add rule {} {} {}\n", t, name, r);
  }
  for (const auto& [name, before, after] : {std::tuple{"pod_ingress", &from.ingress, &to.ingress},
                                            {"pod_egress", &from.egress, &to.egress}}) {
    PodMap added;
    for (const auto& [ip, chain] : *after) {
      auto it = before->find(ip);
      if (it == before->end() || it->second != chain) added[ip] = chain;
    }
    if (!added.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, MapElements(added));
  }
  return s;
}

}  // namespace

std::string RenderNftScript(const NftModel& next_model, const NftObjects& existing) {
  return ClearExisting(existing, ObjectsOf(next_model)) + DeclareTable(next_model);
}

std::string RenderNftScript(const CompiledPolicy& cp, const NftObjects& existing) {
  return RenderNftScript(ModelOf(cp), existing);
}

std::string RenderNftDelta(const NftModel& from, const NftModel& to) {
  const std::string t = fmt::format("{} {}", kNftFamily, kNftTable);
  return DeltaRemovals(from, to, t) + DeltaAdditions(from, to, t);
}

}  // namespace terway::policy
