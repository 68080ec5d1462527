#include "policy/nft_render.h"

#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace terway::policy {

namespace {

using PodMap = std::map<std::string, std::string>;  // pod IP -> chain

constexpr const char* kAddressSetType = "ipv4_addr; flags interval";
constexpr const char* kTupleSetType = "ipv4_addr . inet_proto . inet_service";
constexpr const char* kAddressSetType6 = "ipv6_addr; flags interval";
constexpr const char* kTupleSetType6 = "ipv6_addr . inet_proto . inet_service";

bool IsIpv6Text(const std::string& ip) { return ip.find(':') != std::string::npos; }

// The map of a pod address's family.
std::string MapIn(const char* map, const std::string& ip) { return IsIpv6Text(ip) ? std::string(map) + "6" : map; }

// Map elements of one family (6: IPv6 addresses, else IPv4).
std::string MapElements(const PodMap& m, int family) {
  std::string e;
  for (const auto& [ip, chain] : m) {
    if (IsIpv6Text(ip) != (family == 6)) continue;
    e += fmt::format("{}{} : jump {}", e.empty() ? "" : ", ", ip, chain);
  }
  return e;
}

// A model set's two kernel sets: (name, type, elements) per family.
std::vector<std::tuple<std::string, const char*, std::string>> KernelSets(const std::string& name,
                                                                          const std::string& elems, bool tuples) {
  auto [v4, v6] = SplitElementsByFamily(elems);
  return {{name, tuples ? kTupleSetType : kAddressSetType, v4},
          {Ipv6SetName(name), tuples ? kTupleSetType6 : kAddressSetType6, v6}};
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
  for (const auto& [sets, tuples] : {std::pair{&model.sets, false}, {&model.tuple_sets, true}}) {
    for (const auto& [model_name, model_elems] : *sets) {
      for (const auto& [name, type, elems] : KernelSets(model_name, model_elems, tuples)) {
        s += fmt::format("  set {} {{\n    type {};\n", name, type);
        if (!elems.empty()) s += "    elements = { " + elems + " }\n";
        s += "  }\n";
      }
    }
  }
  // Declaring an existing named counter leaves its values alone.
  for (const auto& c : model.counters) s += fmt::format("  counter {} {{ }}\n", c);
  for (const auto& [name, m] : {std::pair{"pod_ingress", &model.ingress}, {"pod_egress", &model.egress}}) {
    for (int family : {4, 6}) {
      s += fmt::format("  map {}{} {{\n    type {} : verdict;\n", name, family == 6 ? "6" : "",
                       family == 6 ? "ipv6_addr" : "ipv4_addr");
      std::string e = MapElements(*m, family);
      if (!e.empty()) s += "    elements = { " + e + " }\n";
      s += "  }\n";
    }
  }
  for (const auto& [name, rules] : model.chains) {
    s += fmt::format("  chain {} {{\n", name);
    for (const auto& r : rules) s += "    " + r + "\n";
    s += "  }\n";
  }
  s += "  chain forward {\n"
       "    type filter hook forward priority filter; policy accept;\n"
       "    ct state established,related accept\n"
       "    " + std::string(kNeighbourDiscoveryAccept) + "\n"
       "    ct state invalid drop\n"
       "    ip saddr vmap @pod_egress\n"
       "    ip6 saddr vmap @pod_egress6\n"
       "    ip daddr vmap @pod_ingress\n"
       "    ip6 daddr vmap @pod_ingress6\n"
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
    std::map<std::string, std::string> gone;  // map -> addresses
    for (const auto& [ip, chain] : *before) {
      auto it = after->find(ip);
      if (it == after->end() || it->second != chain) {
        std::string& g = gone[MapIn(name, ip)];
        g += (g.empty() ? "" : ", ") + ip;
      }
    }
    for (const auto& [map, ips] : gone) s += fmt::format("delete element {} {} {{ {} }}\n", t, map, ips);
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
      if (!after->count(name)) {
        s += fmt::format("delete set {} {}\n", t, name);
        s += fmt::format("delete set {} {}\n", t, Ipv6SetName(name));
      }
    }
  }
  for (const auto& c : from.counters) {
    if (!to.counters.count(c)) s += fmt::format("delete counter {} {}\n", t, c);
  }
  return s;
}

// A set's elements as the model writes them ("a, b-c, ..."): those only in
// `before`, and those only in `after`, each in the same form.
std::pair<std::string, std::string> ElementChanges(const std::string& before, const std::string& after) {
  auto split = [](const std::string& s) {
    std::set<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
      size_t e = s.find(", ", i);
      if (e == std::string::npos) e = s.size();
      if (e > i) out.insert(s.substr(i, e - i));
      i = e + 2;
    }
    return out;
  };
  std::set<std::string> a = split(before), b = split(after);
  std::string gone, come;
  for (const auto& x : a) {
    if (!b.count(x)) gone += (gone.empty() ? "" : ", ") + x;
  }
  for (const auto& x : b) {
    if (!a.count(x)) come += (come.empty() ? "" : ", ") + x;
  }
  return {gone, come};
}

// The delta's second part: 4. new and changed sets, new counters and
// chains, then the rules of new and changed chains, then the map elements
// that jump to them.
std::string DeltaAdditions(const NftModel& from, const NftModel& to, const std::string& t) {
  std::string s;
  for (const auto& [before, after, tuples] : {std::tuple{&from.sets, &to.sets, false},
                                              {&from.tuple_sets, &to.tuple_sets, true}}) {
    for (const auto& [model_name, model_elems] : *after) {
      auto it = before->find(model_name);
      if (it == before->end()) {
        for (const auto& [name, type, elems] : KernelSets(model_name, model_elems, tuples)) {
          s += fmt::format("add set {} {} {{ type {}; }}\n", t, name, type);
          if (!elems.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, elems);
        }
      } else if (it->second != model_elems) {
        // Only the elements that differ, so a pod joining a set of 1,000
        // costs one element. The kernel holds exactly the model's elements
        // (every write of a set writes them as the model has them: for
        // address sets merged, disjoint, non-adjacent ranges), so one that
        // goes is deleted as it was added, and one that comes cannot overlap
        // or touch one that stays. Each goes to its family's set.
        auto [gone, come] = ElementChanges(it->second, model_elems);
        auto [gone4, gone6] = SplitElementsByFamily(gone);
        auto [come4, come6] = SplitElementsByFamily(come);
        for (const auto& [name, g, c] :
             {std::tuple{model_name, gone4, come4}, {Ipv6SetName(model_name), gone6, come6}}) {
          if (!g.empty()) s += fmt::format("delete element {} {} {{ {} }}\n", t, name, g);
          if (!c.empty()) s += fmt::format("add element {} {} {{ {} }}\n", t, name, c);
        }
      }
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
    for (int family : {4, 6}) {
      std::string e = MapElements(added, family);
      if (!e.empty()) s += fmt::format("add element {} {}{} {{ {} }}\n", t, name, family == 6 ? "6" : "", e);
    }
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
