#include "datapath/anti_spoof.h"

#include <sys/socket.h>

#include <algorithm>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/layout.h"
#include "netlink/handle.h"
#include "policy/nft_batch.h"

namespace terway::datapath {

namespace {

// The base chain, as the kernel lists it back (priority raw = -300).
constexpr const char* kBaseChain = "prerouting";
constexpr const char* kBaseHook = "prerouting";
constexpr const char* kBaseType = "filter";
constexpr const char* kBasePolicy = "accept";
constexpr int kBasePriority = -300;
constexpr const char* kGuardChain = "guard";

std::string T() { return fmt::format("{} {}", kAntiSpoofFamily, kAntiSpoofTable); }

struct ChainSpec {
  std::string name;
  bool base = false;
  std::vector<std::string> rules;
};

// Every chain with its rules, in the order they are declared (a chain is
// declared before rules jump to it).
std::vector<ChainSpec> Chains() {
  std::vector<ChainSpec> out;
  std::vector<std::string> vmap;
  for (const auto& f : AntiSpoofFamilies()) {
    out.push_back({f.chain(), false, {}});
    ChainSpec& c = out.back();
    for (const auto& e : f.exempt) c.rules.push_back(e + " accept");
    c.rules.push_back(fmt::format("iifname . {} @{} accept", f.saddr, f.set()));
    c.rules.push_back(fmt::format("counter name \"{}\" drop", f.counter()));
    vmap.push_back(fmt::format("{} : jump {}", f.nfproto, f.chain()));
  }
  // The inet family's prerouting hook sees IPv4 and IPv6 only; the final
  // drop keeps the guard closed should a family ever reach it unlisted.
  out.push_back({kGuardChain, false, {fmt::format("meta nfproto vmap {{ {} }}", Join(vmap, ", ")), "drop"}});
  out.push_back({kBaseChain,
                 true,
                 {fmt::format("iifname \"{}*\" jump {}", kHostVethPrefix, kGuardChain),
                  fmt::format("iifname @{} jump {}", kGuardedIfnamesSet, kGuardChain)}});
  return out;
}

// Whether a listed chain is what spec declares: a base chain on our hook at
// raw priority, or a regular chain.
bool ChainIsRight(const ChainSpec& spec, const AntiSpoofState::Chain& c) {
  if (!spec.base) return c.hook.empty();
  return c.hook == kBaseHook && c.type == kBaseType && c.priority == kBasePriority && c.policy == kBasePolicy;
}

Result<netlink::Handle> OpenHandle(const std::string& netns) {
  return netns.empty() ? netlink::Handle::Open() : netlink::Handle::OpenIn(netns);
}

std::string BaseChainDecl() {
  return fmt::format("{{ type {} hook {} priority raw; policy {}; }}", kBaseType, kBaseHook, kBasePolicy);
}

std::string Quoted(const std::string& ifname) { return "\"" + ifname + "\""; }

std::string ElementText(const AntiSpoofElement& e) { return Quoted(e.ifname) + " . " + e.ip.ToString(); }

// "add element inet terway_antispoof <set> { a, b }" per set.
void RenderElements(const std::string& verb, const std::set<AntiSpoofElement>& elems, std::string* out) {
  for (const auto& f : AntiSpoofFamilies()) {
    std::vector<std::string> texts;
    for (const auto& e : elems) {
      if (AntiSpoofFamilyOf(e.ip) == &f) texts.push_back(ElementText(e));
    }
    if (!texts.empty()) *out += fmt::format("{} element {} {} {{ {} }}\n", verb, T(), f.set(), Join(texts, ", "));
  }
}

void RenderGuards(const std::string& verb, const std::set<std::string>& names, std::string* out) {
  if (names.empty()) return;
  std::vector<std::string> texts;
  for (const auto& n : names) texts.push_back(Quoted(n));
  *out += fmt::format("{} element {} {} {{ {} }}\n", verb, T(), kGuardedIfnamesSet, Join(texts, ", "));
}

// One JSON list entry's string field, "" when absent.
std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A set element as nft -j lists it: a plain value, {"concat": [...]}, or
// wrapped as {"elem": {"val": ...}} when it carries a timeout or counter.
const nlohmann::json& ElemValue(const nlohmann::json& e) {
  if (e.is_object() && e.contains("elem") && e["elem"].is_object() && e["elem"].contains("val")) {
    return e["elem"]["val"];
  }
  return e;
}

// Serialises every mutation in the process: each reads the table and then
// writes a batch computed from what it read.
std::mutex g_mutate_mu;

}  // namespace

const std::vector<AntiSpoofFamily>& AntiSpoofFamilies() {
  static const std::vector<AntiSpoofFamily> families = {
      {"ipv4", AF_INET, "ipv4", "ipv4_addr", "ip saddr", {}},
      // Link-local traffic that cannot be forwarded passes without an
      // element: the kernel never forwards a packet with a link-local source
      // (ip6_forward answers "beyond scope"), and link-scope destinations
      // never leave the link. What uses it stays between the pod and its host
      // veth: neighbour discovery, router solicitation, MLD, and duplicate
      // address detection (from ::).
      {"ipv6", AF_INET6, "ipv6", "ipv6_addr", "ip6 saddr",
       {"ip6 saddr { ::, fe80::/10 } ip6 daddr { fe80::/10, ff02::/16 }"}},
  };
  return families;
}

const AntiSpoofFamily* AntiSpoofFamilyOf(const netlink::InetAddr& ip) {
  for (const auto& f : AntiSpoofFamilies()) {
    if (f.af == ip.family()) return &f;
  }
  return nullptr;
}

std::string AntiSpoofElement::ToString() const { return ifname + " . " + ip.ToString(); }

bool AntiSpoofState::Guards(std::string_view ifname) const {
  return ifname.substr(0, std::string_view(kHostVethPrefix).size()) == kHostVethPrefix ||
         guarded.count(std::string(ifname)) > 0;
}

std::set<netlink::InetAddr> AntiSpoofState::AllowedOn(std::string_view ifname) const {
  std::set<netlink::InetAddr> out;
  for (const auto& e : allowed) {
    if (e.ifname == ifname) out.insert(e.ip);
  }
  return out;
}

Status ValidateGuardedIfname(std::string_view ifname) {
  if (ifname.empty() || ifname.size() > 15) {
    return Errorf(ErrorCode::kInvalidArgument, "interface name '{}' must be 1..15 bytes", ifname);
  }
  for (char c : ifname) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) {
      // The name becomes an nft string: a quote would end it and a '*'
      // would make it a wildcard guarding (or allowing) other interfaces.
      return Errorf(ErrorCode::kInvalidArgument,
                    "interface name '{}' has '{}': anti-spoofing accepts only letters, digits, '_', '.' and '-'",
                    ifname, c);
    }
  }
  return Ok();
}

Result<AntiSpoofState> ParseAntiSpoofState(std::string_view nft_json) {
  auto j = nlohmann::json::parse(nft_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("nftables") || !j["nftables"].is_array()) {
    return Errorf(ErrorCode::kInternal, "listing table {}: unexpected nft JSON output", T());
  }
  AntiSpoofState st;
  auto ours = [](const nlohmann::json& o) {
    return Str(o, "family") == kAntiSpoofFamily && Str(o, "table") == kAntiSpoofTable;
  };
  for (const auto& item : j["nftables"]) {
    if (!item.is_object()) continue;
    if (auto it = item.find("table"); it != item.end() && it->is_object()) {
      if (Str(*it, "family") == kAntiSpoofFamily && Str(*it, "name") == kAntiSpoofTable) st.table = true;
    }
    if (auto it = item.find("counter"); it != item.end() && it->is_object() && ours(*it)) {
      const std::string name = Str(*it, "name");
      st.counters.insert(name);
      for (const auto& f : AntiSpoofFamilies()) {
        if (name != f.counter()) continue;
        AntiSpoofDrops d{f.name, 0, 0};
        if (it->contains("packets") && (*it)["packets"].is_number_unsigned()) d.packets = (*it)["packets"];
        if (it->contains("bytes") && (*it)["bytes"].is_number_unsigned()) d.bytes = (*it)["bytes"];
        st.drops.push_back(d);
      }
    }
    if (auto it = item.find("chain"); it != item.end() && it->is_object() && ours(*it)) {
      AntiSpoofState::Chain& c = st.chains[Str(*it, "name")];
      c.hook = Str(*it, "hook");
      c.type = Str(*it, "type");
      c.policy = Str(*it, "policy");
      if (it->contains("prio") && (*it)["prio"].is_number_integer()) c.priority = (*it)["prio"];
    }
    if (auto it = item.find("rule"); it != item.end() && it->is_object() && ours(*it)) {
      st.chains[Str(*it, "chain")].rules++;
    }
    if (auto it = item.find("set"); it != item.end() && it->is_object() && ours(*it)) {
      const std::string name = Str(*it, "name");
      st.sets.insert(name);
      auto elems = it->find("elem");
      if (elems == it->end() || !elems->is_array()) continue;
      if (name == kGuardedIfnamesSet) {
        for (const auto& e : *elems) {
          const auto& v = ElemValue(e);
          if (v.is_string()) st.guarded.insert(v.get<std::string>());
        }
        continue;
      }
      for (const auto& f : AntiSpoofFamilies()) {
        if (name != f.set()) continue;
        for (const auto& e : *elems) {
          const auto& v = ElemValue(e);
          if (!v.is_object() || !v.contains("concat") || !v["concat"].is_array() || v["concat"].size() != 2 ||
              !v["concat"][0].is_string() || !v["concat"][1].is_string()) {
            return Errorf(ErrorCode::kInternal, "set {} of table {}: unexpected element {}", name, T(), v.dump());
          }
          TERWAY_ASSIGN_OR_RETURN_CTX(netlink::InetAddr ip, netlink::InetAddr::Parse(v["concat"][1].get<std::string>()),
                                      fmt::format("set {} of table {}", name, T()));
          st.allowed.insert({v["concat"][0].get<std::string>(), ip});
        }
      }
    }
  }
  if (st.table) {
    // Families whose counter is missing still report (zero): the metric
    // exists from the start.
    for (const auto& f : AntiSpoofFamilies()) {
      bool have =
          std::any_of(st.drops.begin(), st.drops.end(), [&](const AntiSpoofDrops& d) { return d.family == f.name; });
      if (!have) st.drops.push_back({f.name, 0, 0});
    }
  }
  return st;
}

std::string AntiSpoofStructureProblem(const AntiSpoofState& st) {
  if (!st.table) return fmt::format("table {} is missing", T());
  std::vector<std::string> problems;
  std::vector<std::string> sets = {kGuardedIfnamesSet};
  for (const auto& f : AntiSpoofFamilies()) {
    sets.push_back(f.set());
    if (!st.counters.count(f.counter())) problems.push_back("counter " + f.counter() + " is missing");
  }
  for (const auto& s : sets) {
    if (!st.sets.count(s)) problems.push_back("set " + s + " is missing");
  }
  for (const auto& spec : Chains()) {
    auto it = st.chains.find(spec.name);
    if (it == st.chains.end()) {
      problems.push_back("chain " + spec.name + " is missing");
      continue;
    }
    const AntiSpoofState::Chain& c = it->second;
    if (spec.base && !ChainIsRight(spec, c)) {
      problems.push_back(fmt::format("chain {} is '{}' on hook '{}' priority {} policy '{}', not {} on {} priority {} "
                                     "(raw) policy {}",
                                     spec.name, c.type, c.hook, c.priority, c.policy, kBaseType, kBaseHook,
                                     kBasePriority, kBasePolicy));
    } else if (!ChainIsRight(spec, c)) {
      problems.push_back(fmt::format("chain {} is a base chain on hook '{}'", spec.name, c.hook));
    }
    if (c.rules != spec.rules.size()) {
      problems.push_back(fmt::format("chain {} has {} rules, not {}", spec.name, c.rules, spec.rules.size()));
    }
  }
  return Join(problems, "; ");
}

std::string RenderAntiSpoofStructure(const AntiSpoofState& st) {
  const std::vector<ChainSpec> chains = Chains();
  // Rules first: once no rule references a chain, a wrong one can go.
  std::string s = fmt::format("add table {}\n", T());
  for (const auto& [name, c] : st.chains) s += fmt::format("flush chain {} {}\n", T(), name);
  for (const auto& spec : chains) {
    auto it = st.chains.find(spec.name);
    if (it == st.chains.end()) continue;
    // A hook cannot change in place: the chain is replaced, in this
    // transaction.
    if (!ChainIsRight(spec, it->second)) s += fmt::format("delete chain {} {}\n", T(), spec.name);
  }
  // Declaring an existing set or counter leaves its elements or values.
  s += fmt::format("add set {} {} {{ type ifname; }}\n", T(), kGuardedIfnamesSet);
  for (const auto& f : AntiSpoofFamilies()) {
    s += fmt::format("add set {} {} {{ type ifname . {}; }}\n", T(), f.set(), f.addr_type);
    s += fmt::format("add counter {} {}\n", T(), f.counter());
  }
  for (const auto& spec : chains) {
    s += fmt::format("add chain {} {}{}\n", T(), spec.name, spec.base ? " " + BaseChainDecl() : "");
  }
  for (const auto& spec : chains) {
    for (const auto& r : spec.rules) s += fmt::format("add rule {} {} {}\n", T(), spec.name, r);
  }
  return s;
}

std::string RenderAntiSpoofChange(const AntiSpoofChange& c) {
  std::string s;
  // Guards before elements, removals after additions: at no point inside
  // the transaction is an interface unguarded that the change keeps guarded.
  RenderGuards("add", c.guard, &s);
  RenderElements("add", c.add, &s);
  RenderElements("add", c.remove, &s);
  RenderElements("delete", c.remove, &s);
  RenderGuards("add", c.unguard, &s);
  RenderGuards("delete", c.unguard, &s);
  return s;
}

AntiSpoofChange PlanAllow(const AntiSpoofState& st, const std::string& ifname, const std::set<netlink::InetAddr>& ips) {
  AntiSpoofChange c;
  std::set<netlink::InetAddr> have = st.AllowedOn(ifname);
  for (const auto& ip : ips) {
    if (!have.count(ip)) c.add.insert({ifname, ip});
  }
  for (const auto& ip : have) {
    if (!ips.count(ip)) c.remove.insert({ifname, ip});
  }
  // Our own veths are guarded by the wildcard; only other names are listed.
  if (!st.Guards(ifname)) c.guard.insert(ifname);
  return c;
}

AntiSpoofChange PlanRevoke(const AntiSpoofState& st, const std::string& ifname,
                           const std::set<netlink::InetAddr>& ips) {
  AntiSpoofChange c;
  for (const auto& ip : st.AllowedOn(ifname)) {
    if (ips.count(ip)) c.remove.insert({ifname, ip});
  }
  return c;
}

AntiSpoofChange PlanForget(const AntiSpoofState& st, const std::string& ifname) {
  AntiSpoofChange c;
  for (const auto& ip : st.AllowedOn(ifname)) c.remove.insert({ifname, ip});
  if (st.guarded.count(ifname)) c.unguard.insert(ifname);
  return c;
}

AntiSpoofChange PlanGarbage(const AntiSpoofState& st, const std::set<std::string>& links) {
  AntiSpoofChange c;
  for (const auto& e : st.allowed) {
    if (!links.count(e.ifname)) c.remove.insert(e);
  }
  for (const auto& g : st.guarded) {
    if (!links.count(g)) c.unguard.insert(g);
  }
  return c;
}

AntiSpoofChange AsCreation(const AntiSpoofState& base, const AntiSpoofChange& change) {
  AntiSpoofChange c;
  for (const auto& e : base.allowed) {
    if (!change.remove.count(e)) c.add.insert(e);
  }
  c.add.insert(change.add.begin(), change.add.end());
  for (const auto& g : base.guarded) {
    if (!change.unguard.count(g)) c.guard.insert(g);
  }
  c.guard.insert(change.guard.begin(), change.guard.end());
  for (const auto& e : c.add) {
    if (!base.Guards(e.ifname) && !change.unguard.count(e.ifname)) c.guard.insert(e.ifname);
  }
  return c;
}

AntiSpoofSeed SeedFromPodLinkAliases(std::string netns) {
  return [netns = std::move(netns)]() -> Result<std::set<AntiSpoofElement>> {
    TERWAY_ASSIGN_OR_RETURN(netlink::Handle h, OpenHandle(netns));
    TERWAY_ASSIGN_OR_RETURN(auto links, h.ListLinks());
    std::set<AntiSpoofElement> out;
    for (const auto& l : links) {
      auto owner = ParsePodLinkAlias(l.alias);
      if (owner && ValidateGuardedIfname(l.name).ok()) out.insert({l.name, netlink::InetAddr(owner->pod_ip)});
    }
    return out;
  };
}

Result<AntiSpoofState> AntiSpoofTable::List() const {
  std::string out;
  Status s = policy::RunNftBatch(netns_, fmt::format("list table {}", T()), &out);
  if (!s.ok()) {
    if (s.error().code == ErrorCode::kNotFound) return AntiSpoofState{};
    return std::move(s).error().Wrap("listing table " + T());
  }
  return ParseAntiSpoofState(out);
}

Status AntiSpoofTable::Mutate(const std::string& what, bool create,
                              const std::function<Result<AntiSpoofChange>(const AntiSpoofState&)>& plan) {
  // Held across the read and the write (two short nft calls) so that a
  // change is computed from what the kernel holds when it is applied. It
  // serialises only anti-spoofing changes; no other lock waits on it.
  std::lock_guard lock(g_mutate_mu);
  TERWAY_ASSIGN_OR_RETURN_CTX(AntiSpoofState st, List(), what);
  if (!st.table && !create && !seed_) return Ok();
  AntiSpoofState base = st;
  if (!st.table && seed_) {
    auto seeded = seed_();
    if (seeded.ok()) {
      base.allowed = std::move(*seeded);
      if (!base.allowed.empty()) {
        log::Info("anti-spoofing table {} is missing: creating it with the {} elements of running pods' host veths",
                  T(), base.allowed.size());
      }
    } else {
      // Fail closed: the table is created anyway, and pods without an
      // element get theirs back from their repair.
      log::Warn("anti-spoofing table {} is missing and its seed failed: {}", T(), seeded.error().ToString());
    }
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(AntiSpoofChange change, plan(base), what);
  if (!st.table) change = AsCreation(base, change);
  const std::string problem = AntiSpoofStructureProblem(st);
  std::string script;
  if (!problem.empty()) script += RenderAntiSpoofStructure(st);
  script += RenderAntiSpoofChange(change);
  if (script.empty()) return Ok();
  Status s = policy::RunNftBatch(netns_, script);
  if (!s.ok()) {
    return std::move(s).error().Wrap(fmt::format(
        "{} in table {} (if its objects were changed by hand, `nft delete table {}` and restart terwayd: it "
        "rebuilds the table and every pod's element)",
        what, T(), T()));
  }
  // A missing table is the first use on this node; anything else was
  // broken by someone else, and the operator should know.
  if (!problem.empty() && st.table) log::Warn("anti-spoofing table {} repaired: {}", T(), problem);
  return Ok();
}

Status AntiSpoofTable::Ensure() {
  return Mutate("ensuring the anti-spoofing table", true, [](const AntiSpoofState&) { return AntiSpoofChange{}; });
}

namespace {
Result<std::set<netlink::InetAddr>> Addresses(const std::string& ifname, const std::vector<netlink::InetAddr>& ips) {
  TERWAY_TRY(ValidateGuardedIfname(ifname));
  std::set<netlink::InetAddr> out;
  for (const auto& ip : ips) {
    if (!AntiSpoofFamilyOf(ip)) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: address {} is of no family the anti-spoofing table guards",
                    ifname, ip.ToString());
    }
    out.insert(ip);
  }
  return out;
}
}  // namespace

Status AntiSpoofTable::Allow(const std::string& host_ifname, const std::vector<netlink::InetAddr>& ips) {
  const std::string what = fmt::format("allowing sources of {}", host_ifname);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto set, Addresses(host_ifname, ips), what);
  if (set.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: no address given (Revoke or Forget drop an interface's sources)",
                  what);
  }
  return Mutate(what, true, [&](const AntiSpoofState& st) -> Result<AntiSpoofChange> {
    return PlanAllow(st, host_ifname, set);
  });
}

Status AntiSpoofTable::Revoke(const std::string& host_ifname, const std::vector<netlink::InetAddr>& ips) {
  const std::string what = fmt::format("revoking sources of {}", host_ifname);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto set, Addresses(host_ifname, ips), what);
  return Mutate(what, false, [&](const AntiSpoofState& st) -> Result<AntiSpoofChange> {
    return PlanRevoke(st, host_ifname, set);
  });
}

Status AntiSpoofTable::Forget(const std::string& host_ifname) {
  const std::string what = fmt::format("forgetting interface {}", host_ifname);
  TERWAY_TRY_CTX(ValidateGuardedIfname(host_ifname), what);
  return Mutate(what, false, [&](const AntiSpoofState& st) -> Result<AntiSpoofChange> {
    return PlanForget(st, host_ifname);
  });
}

Result<std::vector<std::string>> AntiSpoofTable::CollectGarbage() {
  std::vector<std::string> removed;
  Status s = Mutate("collecting anti-spoofing elements of vanished interfaces", false,
                    [&](const AntiSpoofState& st) -> Result<AntiSpoofChange> {
                      // Listed under the mutation lock: an Allow (which follows its
                      // link's creation) cannot slip in between the two reads.
                      TERWAY_ASSIGN_OR_RETURN(netlink::Handle h, OpenHandle(netns_));
                      TERWAY_ASSIGN_OR_RETURN(auto links, h.ListLinks());
                      std::set<std::string> names;
                      for (const auto& l : links) names.insert(l.name);
                      AntiSpoofChange c = PlanGarbage(st, names);
                      for (const auto& e : c.remove) removed.push_back("anti-spoofing element " + e.ToString());
                      for (const auto& g : c.unguard) removed.push_back("anti-spoofing guard of " + g);
                      return c;
                    });
  if (!s.ok()) return std::move(s).error();
  return removed;
}

Status AntiSpoofTable::Check(const std::string& host_ifname, const netlink::InetAddr& ip) const {
  TERWAY_ASSIGN_OR_RETURN(AntiSpoofState st, List());
  if (std::string problem = AntiSpoofStructureProblem(st); !problem.empty()) {
    return Error(ErrorCode::kNotFound, "anti-spoofing: " + problem);
  }
  if (!st.Guards(host_ifname)) {
    return Errorf(ErrorCode::kNotFound, "anti-spoofing: interface {} is not guarded (not in set {} of table {})",
                  host_ifname, kGuardedIfnamesSet, T());
  }
  const AntiSpoofFamily* f = AntiSpoofFamilyOf(ip);
  if (!f || !st.allowed.count({host_ifname, ip})) {
    return Errorf(ErrorCode::kNotFound, "anti-spoofing: element {} . {} is missing from set {} of table {}, so the "
                  "pod's packets are dropped", host_ifname, ip.ToString(), f ? f->set() : "?", T());
  }
  return Ok();
}

Result<std::vector<AntiSpoofDrops>> AntiSpoofTable::ReadDrops() const {
  TERWAY_ASSIGN_OR_RETURN_CTX(AntiSpoofState st, List(), "reading the anti-spoofing drop counters");
  if (!st.table) {
    std::vector<AntiSpoofDrops> zero;
    for (const auto& f : AntiSpoofFamilies()) zero.push_back({f.name, 0, 0});
    return zero;
  }
  return st.drops;
}

Status AntiSpoofTable::Remove() {
  std::lock_guard lock(g_mutate_mu);
  Status s = policy::RunNftBatch(netns_, fmt::format("add table {0}\ndelete table {0}\n", T()));
  if (!s.ok()) return std::move(s).error().Wrap("removing table " + T());
  return Ok();
}

Status GuardAdoptedPod(AntiSpoofTable& table, const PodNetwork& pod) {
  if (pod.host_veth.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "guarding an adopted pod without its host veth");
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(auto ip, netlink::InetAddr::Parse(pod.ip.ip),
                              "the address of adopted pod " + pod.pod_namespace + "/" + pod.pod_name);
  std::vector<netlink::InetAddr> ips{ip};
  if (pod.ipv6) {
    TERWAY_ASSIGN_OR_RETURN_CTX(auto ip6, netlink::InetAddr::Parse(pod.ipv6->ip),
                                "the IPv6 address of adopted pod " + pod.pod_namespace + "/" + pod.pod_name);
    ips.push_back(ip6);
  }
  TERWAY_TRY_CTX(table.Allow(pod.host_veth, ips),
                 fmt::format("guarding host veth {} of adopted pod {}/{}", pod.host_veth, pod.pod_namespace,
                             pod.pod_name));
  return Ok();
}

}  // namespace terway::datapath
