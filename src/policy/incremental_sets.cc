// The set side of the incremental compiler (incremental.h): which sets a
// change of pods reaches, and their contents, computed by the full compiler
// on a holder standing in no namespace selected by the rules that create
// them.
#include <fmt/format.h>

#include "policy/incremental.h"

namespace terway::policy {

namespace {

bool HolderRange(IpKey a) { return IsIpv4Key(a) && (static_cast<uint32_t>(a) >> 24) == 0; }

// A set's elements as nft_model.cc writes them (ModelOf).
std::string Elements(const IpSet& s) {
  if (!s.is_tuples) return s.addresses.Empty() ? "" : s.addresses.ToString();
  std::string e;
  for (const auto& x : s.tuples) {
    e += fmt::format("{}{} . {} . {}", e.empty() ? "" : ", ", KeyToString(x.address), x.protocol, x.port);
  }
  return e;
}

// What a set holds at one address: the address, or its tuples.
bool HoldsAt(const IpSet& s, IpKey a) {
  if (!s.is_tuples) return s.addresses.Contains(a);
  auto it = s.tuples.lower_bound({a, 0, 0});
  return it != s.tuples.end() && it->address == a;
}
std::set<AddressPortTuple> TuplesAt(const IpSet& s, IpKey a) {
  std::set<AddressPortTuple> out;
  for (auto it = s.tuples.lower_bound({a, 0, 0}); it != s.tuples.end() && it->address == a; ++it) out.insert(*it);
  return out;
}
// `into` takes what `from` holds at address a, and nothing else there.
// Whether it changed.
bool TakeAt(const IpSet& from, IpKey a, IpSet* into) {
  if (!into->is_tuples) {
    bool want = from.addresses.Contains(a);
    if (want == into->addresses.Contains(a)) return false;
    IpRangeSet one;
    one.AddKey(a);
    if (want) into->addresses.AddAll(one);
    else into->addresses.Subtract(one);
    return true;
  }
  std::set<AddressPortTuple> want = TuplesAt(from, a), have = TuplesAt(*into, a);
  if (want == have) return false;
  for (const auto& t : have) into->tuples.erase(t);
  into->tuples.insert(want.begin(), want.end());
  return true;
}

}  // namespace

void IncrementalCompiler::DropUnreadSets() {
  for (const auto& s : unread_sets_) {
    auto it = sets_.find(s);
    if (it == sets_.end() || !it->second.readers.empty()) continue;
    TouchSet(s);
    model_.sets.erase(s);
    model_.tuple_sets.erase(s);
    sets_.erase(it);
    new_sets_.erase(s);
  }
  unread_sets_.clear();
}

// A reader of each set, few of them, and of each policy that creates one of
// the sets in a reader's chains only the rules that do (a set is made by its
// rule alone). A set whose rule is unknown brings its reader's policies whole.
IncrementalCompiler::Holders IncrementalCompiler::HoldersOf(const std::set<std::string>& sets) const {
  Holders out;
  std::map<std::string, std::set<std::pair<int, size_t>>> rules;  // policy -> (direction, index)
  std::set<std::string> whole;
  for (const auto& s : sets) {
    const SetEntry& e = sets_.at(s);
    if (e.readers.empty()) continue;
    std::string reader;
    for (const auto& h : out.pods) {
      if (e.readers.count(h)) {
        reader = h;
        break;
      }
    }
    if (reader.empty()) {
      reader = *e.readers.begin();
      out.pods.push_back(reader);
    }
    const Fragment& f = fragments_.at(reader);
    auto rule = f.set_rules.find(s);
    if (rule == f.set_rules.end()) {
      whole.insert(f.policies.begin(), f.policies.end());
    } else {
      rules[rule->second.policy].insert({static_cast<int>(rule->second.direction), rule->second.index});
    }
  }
  for (const auto& id : whole) out.policies.push_back(policies_.at(id));
  for (const auto& [id, wanted] : rules) {
    if (whole.count(id)) continue;
    Policy p = policies_.at(id);
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      auto& list = d == Direction::kIngress ? p.ingress : p.egress;
      std::vector<Rule> kept;
      for (size_t i = 0; i < list.size(); i++) {
        if (wanted.count({static_cast<int>(d), i})) kept.push_back(std::move(list[i]));
      }
      list = std::move(kept);
    }
    out.policies.push_back(std::move(p));
  }
  return out;
}

// Of each set, the one rule that creates it (a set is made by its rule
// alone), all in one global policy that selects every pod, so one pod
// standing nowhere (ProbeHolder) holds them all: a probe evaluates the
// changed pods against each set's peers and nothing else.
std::vector<Policy> IncrementalCompiler::RulesCreating(const std::set<std::string>& sets) const {
  std::map<std::string, std::set<std::pair<int, size_t>>> wanted;  // policy -> (direction, index)
  for (const auto& name : sets) {
    const SetEntry& e = sets_.at(name);
    for (const auto& reader : e.readers) {
      const Fragment& f = fragments_.at(reader);
      if (auto r = f.set_rules.find(name); r != f.set_rules.end()) {
        wanted[r->second.policy].insert({static_cast<int>(r->second.direction), r->second.index});
        break;
      }
    }
  }
  // One policy holding them all: nothing to sort, one copy of each rule.
  Policy q;
  q.kind = Policy::Kind::kCalicoGlobal;
  q.name = "~probe";
  for (const auto& [id, rules] : wanted) {
    const Policy& p = policies_.at(id);
    for (const auto& [d, index] : rules) {
      const bool ingress = d == static_cast<int>(Direction::kIngress);
      const auto& from = ingress ? p.ingress : p.egress;
      if (index >= from.size()) continue;
      (ingress ? q.ingress : q.egress).push_back(from[index]);
      (ingress ? q.applies_ingress : q.applies_egress) = true;
    }
  }
  std::vector<Policy> out;
  out.push_back(std::move(q));
  return out;
}

PodInfo IncrementalCompiler::ProbeHolder() {
  PodInfo h;
  h.namespace_ = "~probe";  // no namespace is named so: "~" is not in DNS names
  h.name = "holder";
  h.ip = Ipv4Addr(kHolderBase);
  h.node = kChainNode;
  return h;
}

IncrementalCompiler::Scope IncrementalCompiler::ScopeOf(const std::string& set) const {
  Scope any;
  any.any = true;
  const SetEntry& e = sets_.at(set);
  if (e.readers.empty() || e.content.is_tuples) return any;  // tuples: named ports of pods anywhere
  const Fragment& f = fragments_.at(*e.readers.begin());
  auto ref = f.set_rules.find(set);
  if (ref == f.set_rules.end()) return any;
  auto policy = policies_.find(ref->second.policy);
  if (policy == policies_.end()) return any;
  const auto& rules = ref->second.direction == Direction::kIngress ? policy->second.ingress : policy->second.egress;
  if (ref->second.index >= rules.size()) return any;
  Scope scope;
  for (const auto& peer : rules[ref->second.index].peers) {
    if (peer.matches_nothing) continue;
    // A Calico selector picks endpoints anywhere (its namespace scope, if
    // any, is inside the expression).
    if (peer.selector || peer.not_selector) return any;
    if (!peer.SelectsPods()) continue;  // addresses, services: no pod is a member as a pod
    if (peer.namespaces || peer.scope_namespace.empty()) return any;
    scope.namespaces.insert(peer.scope_namespace);
  }
  return scope;
}

// Each set's content from scratch, every pod a peer: first of the holder
// standing nowhere (ProbeHolder) with only the rules that create the sets;
// sets it does not get (a rule that looks at the pod it applies to) of
// readers whose rules create them.
Status IncrementalCompiler::ComputeSets(const std::set<std::string>& names) {
  if (names.empty()) return Ok();
  auto compile = [&](std::vector<Policy> policies, std::optional<PodInfo> holder,
                     const std::set<std::string>& chain_pods) {
    PolicyInputs in = Context();
    in.policies = std::move(policies);
    if (holder) in.pods.push_back(std::move(*holder));
    for (const auto& [key, p] : pods_) {
      PodInfo copy = p;
      copy.node = chain_pods.count(key) ? kChainNode : kPeerNode;
      in.pods.push_back(std::move(copy));
    }
    work_.compiles++;
    CompiledPolicy cp = PolicyCompiler({kChainNode}).Compile(std::move(in));
    std::map<std::string, IpSet> out;
    for (auto& set : cp.sets()) {
      if (names.count(set.name)) out[set.name] = set;
    }
    return out;
  };
  std::map<std::string, IpSet> got = compile(RulesCreating(names), ProbeHolder(), {});
  // The holder itself may be a member (a peer of every pod everywhere): at
  // its address a set holds what it holds with the holder elsewhere.
  const IpKey at = KeyOf(*ProbeHolder().ip);
  std::set<std::string> holder_in;
  for (const auto& [name, content] : got) {
    if (HoldsAt(content, at)) holder_in.insert(name);
  }
  if (!holder_in.empty()) {
    PodInfo elsewhere = ProbeHolder();
    elsewhere.ip = Ipv4Addr(kHolderBase + 1);
    std::map<std::string, IpSet> again = compile(RulesCreating(holder_in), elsewhere, {});
    for (const auto& name : holder_in) {
      auto it = again.find(name);
      if (it != again.end()) TakeAt(it->second, at, &got[name]);
    }
  }
  std::set<std::string> missing;
  for (const auto& name : names) {
    if (!got.count(name)) missing.insert(name);
  }
  if (!missing.empty()) {
    Holders holders = HoldersOf(missing);
    std::map<std::string, IpSet> more =
        compile(std::move(holders.policies), std::nullopt, std::set<std::string>(holders.pods.begin(), holders.pods.end()));
    for (auto& [name, content] : more) got[name] = std::move(content);
  }
  for (const auto& name : names) {
    auto it = got.find(name);
    if (it == got.end()) {
      return Errorf(ErrorCode::kInternal, "incremental policy: set {} is read by {} but a compile of its rules did not "
                                          "create it", name, *sets_.at(name).readers.begin());
    }
    SetEntry& e = sets_.at(name);
    TouchSet(name);
    e.content = std::move(it->second);
    e.known = true;
    e.scope = ScopeOf(name);
    (e.content.is_tuples ? model_.tuple_sets : model_.sets)[name] = Elements(e.content);
  }
  work_.recomputed_sets += names.size();
  return Ok();
}

// Which sets each changed address belongs in now. The pods holding those
// addresses are the only peers of the holders, which stand at addresses of
// their own, so a set's content in this compile, at a changed address, is
// exactly what the full compile has there.
Status IncrementalCompiler::ProbeAddresses(const ChangedAddresses& addresses) {
  std::set<std::string> namespaces;
  for (const auto& [a, in] : addresses) namespaces.insert(in.begin(), in.end());
  std::set<std::string> probed;
  for (const auto& [name, e] : sets_) {
    if (!e.known || new_sets_.count(name)) continue;
    bool reach = e.scope.any;
    for (auto it = e.scope.namespaces.begin(); !reach && it != e.scope.namespaces.end(); ++it) {
      reach = namespaces.count(*it) > 0;
    }
    if (reach) probed.insert(name);
  }
  if (addresses.empty() || probed.empty()) return Ok();
  for (const auto& [a, in] : addresses) {
    if (HolderRange(a)) return ComputeSets(probed);  // no address of its own left for holders
  }
  PolicyInputs in = Context();
  in.policies = RulesCreating(probed);
  in.pods.push_back(ProbeHolder());
  for (const auto& [a, in_ns] : addresses) {
    auto it = pods_by_ip_.find(a);
    if (it == pods_by_ip_.end()) continue;
    for (const auto& key : it->second) {
      PodInfo copy = pods_.at(key);
      copy.node = kPeerNode;
      in.pods.push_back(std::move(copy));
      work_.probed_pods++;
    }
  }
  CompiledPolicy cp = PolicyCompiler({kChainNode}).Compile(std::move(in));
  work_.compiles++;
  std::map<std::string, const IpSet*> by_name;
  for (const auto& s : cp.sets()) by_name[s.name] = &s;
  std::set<std::string> missing;
  for (const auto& name : probed) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      // The rule did not apply to the holder (Calico rules on the local
      // pod's own labels or nets, say): compute this one in full.
      missing.insert(name);
      continue;
    }
    SetEntry& e = sets_.at(name);
    bool changed = false;
    for (const auto& [a, in_ns] : addresses) changed = TakeAt(*it->second, a, &e.content) || changed;
    if (!changed) continue;
    TouchSet(name);  // the model still holds the value before
    (e.content.is_tuples ? model_.tuple_sets : model_.sets)[name] = Elements(e.content);
  }
  return ComputeSets(missing);
}

}  // namespace terway::policy
