#include "policy/incremental.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::policy {

namespace {

// Sub-compiles choose which pods get chains through the node they say the
// pods run on; peers "run" elsewhere.
constexpr const char* kChainNode = "~incremental:chains";
constexpr const char* kPeerNode = "~incremental:peer";

// Holders stand at addresses of 0.0.0.0/8 ("this network", RFC 1122), which
// is never a pod's, so the changed pods' addresses are theirs alone.
constexpr uint32_t kHolderBase = 0x00000001;
bool HolderRange(uint32_t a) { return (a >> 24) == 0; }

bool NameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string TokenAt(const std::string& s, size_t i) {
  size_t j = i;
  while (j < s.size() && NameChar(s[j])) j++;
  return s.substr(i, j - i);
}

// The sets a rule reads: "@name" naming a set of the model.
void SetsRead(const std::string& rule, const NftModel& m, std::set<std::string>* out) {
  for (size_t i = rule.find('@'); i != std::string::npos; i = rule.find('@', i + 1)) {
    std::string name = TokenAt(rule, i + 1);
    if (m.sets.count(name) || m.tuple_sets.count(name)) out->insert(name);
  }
}

// The chains a rule continues in ("jump X", "goto X").
void ChainsEntered(const std::string& rule, const std::map<std::string, std::vector<std::string>>& chains,
                   std::vector<std::string>* out) {
  for (const std::string verb : {"jump ", "goto "}) {
    for (size_t i = rule.find(verb); i != std::string::npos; i = rule.find(verb, i + 1)) {
      std::string name = TokenAt(rule, i + verb.size());
      if (chains.count(name)) out->push_back(name);
    }
  }
}

// The named counters a rule counts in.
void CountersUsed(const std::string& rule, std::set<std::string>* out) {
  static const std::string kTag = "counter name \"";
  for (size_t i = rule.find(kTag); i != std::string::npos; i = rule.find(kTag, i + 1)) {
    size_t start = i + kTag.size();
    size_t end = rule.find('"', start);
    if (end == std::string::npos) break;
    out->insert(rule.substr(start, end - start));
  }
}

// A set's elements as nft_model.cc writes them (ModelOf).
std::string Elements(const IpSet& s) {
  if (!s.is_tuples) return s.addresses.Empty() ? "" : s.addresses.ToString();
  std::string e;
  for (const auto& x : s.tuples) {
    e += fmt::format("{}{} . {} . {}", e.empty() ? "" : ", ", Ipv4Addr(x.address).ToString(), x.protocol, x.port);
  }
  return e;
}

// What a set holds at one address: the address, or its tuples.
bool HoldsAt(const IpSet& s, uint32_t a) {
  if (!s.is_tuples) return s.addresses.Contains(Ipv4Addr(a));
  auto it = s.tuples.lower_bound({a, 0, 0});
  return it != s.tuples.end() && it->address == a;
}
std::set<AddressPortTuple> TuplesAt(const IpSet& s, uint32_t a) {
  std::set<AddressPortTuple> out;
  for (auto it = s.tuples.lower_bound({a, 0, 0}); it != s.tuples.end() && it->address == a; ++it) out.insert(*it);
  return out;
}
// `into` takes what `from` holds at address a, and nothing else there.
// Whether it changed.
bool TakeAt(const IpSet& from, uint32_t a, IpSet* into) {
  if (!into->is_tuples) {
    bool want = from.addresses.Contains(Ipv4Addr(a));
    if (want == into->addresses.Contains(Ipv4Addr(a))) return false;
    Ipv4RangeSet one;
    one.Add(Ipv4Addr(a));
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

// Rules whose peers are matched by Calico selectors (network sets are
// among what they match) or name services.
bool UsesSelectors(const Peer& p) { return p.selector || p.not_selector; }
bool UsesSelectors(const Policy& p) {
  for (const auto* rules : {&p.ingress, &p.egress}) {
    for (const auto& r : *rules) {
      if (r.local && UsesSelectors(*r.local)) return true;
      for (const auto& peer : r.peers) {
        if (UsesSelectors(peer)) return true;
      }
    }
  }
  return false;
}
bool UsesServices(const Policy& p) {
  for (const auto* rules : {&p.ingress, &p.egress}) {
    for (const auto& r : *rules) {
      if (r.local && r.local->services) return true;
      for (const auto& peer : r.peers) {
        if (peer.services) return true;
      }
    }
  }
  return false;
}

// A context object's identity and content, for comparing lists.
std::string ContextKey(const TierInfo& t) {
  return fmt::format("{}|{}|{}", t.name, t.order ? std::to_string(*t.order) : "-", t.default_action_pass);
}
std::string ContextKey(const NetworkSetInfo& n) {
  std::string k = n.namespace_ + "/" + n.name + (n.has_ipv6 ? "|6" : "|4");
  k += fmt::format("|read={}|{}", static_cast<int>(n.read), n.unreadable);
  for (const auto& [l, v] : n.labels) k += "|" + l + "=" + v;
  for (const auto& c : n.nets) k += "|" + c.ToString();
  return k;
}
std::string ContextKey(const ServiceAccountInfo& a) {
  std::string k = a.namespace_ + "/" + a.name;
  for (const auto& [l, v] : a.labels) k += "|" + l + "=" + v;
  return k;
}
std::string ContextKey(const ServiceBackends& s) {
  std::string k = s.namespace_ + "/" + s.name;
  for (const auto& g : s.groups) {
    k += "|group";
    for (const auto& a : g.addresses) k += "|" + a.ToString();
    for (const auto& p : g.ports) k += fmt::format("|{}:{}", p.protocol, p.port);
  }
  return k;
}
template <typename T>
std::set<std::string> Keys(const std::vector<T>& v) {
  std::set<std::string> out;
  for (const auto& x : v) out.insert(ContextKey(x));
  return out;
}

// The sets a compiled rule reads.
std::vector<size_t> SetsOf(const CompiledRule& r) {
  std::vector<size_t> out;
  if (r.peer_set) out.push_back(*r.peer_set);
  if (r.peer_not_set) out.push_back(*r.peer_not_set);
  out.insert(out.end(), r.tuple_sets.begin(), r.tuple_sets.end());
  out.insert(out.end(), r.not_tuple_sets.begin(), r.not_tuple_sets.end());
  for (const auto& m : r.ports) {
    if (m.tuple_set) out.push_back(*m.tuple_set);
  }
  return out;
}

}  // namespace

NftModel CanonicalModelOf(const CompiledPolicy& policy) {
  NftModel m = ModelOf(policy);
  std::set<std::string> read;
  for (const auto& [name, rules] : m.chains) {
    for (const auto& r : rules) SetsRead(r, m, &read);
  }
  for (auto* sets : {&m.sets, &m.tuple_sets}) {
    for (auto it = sets->begin(); it != sets->end();) it = read.count(it->first) ? std::next(it) : sets->erase(it);
  }
  return m;
}

IncrementalCompiler::IncrementalCompiler(CompileOptions options) : options_(std::move(options)) {}

void IncrementalCompiler::UpsertPod(PodInfo pod) {
  std::string key = pod.Key();
  pending_pods_[key] = std::move(pod);
}
void IncrementalCompiler::RemovePod(const std::string& key) { pending_pods_[key] = std::nullopt; }
void IncrementalCompiler::UpsertNamespace(NamespaceInfo ns) {
  std::string name = ns.name;
  pending_namespaces_[name] = std::move(ns);
}
void IncrementalCompiler::RemoveNamespace(const std::string& name) { pending_namespaces_[name] = std::nullopt; }
void IncrementalCompiler::UpsertPolicy(Policy policy) {
  std::string id = policy.Id();
  pending_policies_[id] = std::move(policy);
}
void IncrementalCompiler::RemovePolicy(const std::string& id) { pending_policies_[id] = std::nullopt; }
void IncrementalCompiler::SetNodeIps(std::map<std::string, std::vector<Ipv4Addr>> node_ips) {
  node_ips_ = std::move(node_ips);
}

void IncrementalCompiler::SetContext(std::vector<TierInfo> tiers, std::vector<NetworkSetInfo> network_sets,
                                     std::vector<ServiceAccountInfo> service_accounts,
                                     std::vector<ServiceBackends> services) {
  if (Keys(tiers) != Keys(tiers_)) rebuild_ = true;
  if (Keys(network_sets) != Keys(network_sets_) && !selector_policies_.empty()) rebuild_ = true;
  if (Keys(services) != Keys(services_) && !service_policies_.empty()) rebuild_ = true;
  std::set<std::string> was = Keys(service_accounts_), now = Keys(service_accounts);
  for (const auto* list : {&service_accounts_, &service_accounts}) {
    const auto& other = list == &service_accounts_ ? now : was;
    for (const auto& a : *list) {
      if (!other.count(ContextKey(a))) pending_sa_namespaces_.insert(a.namespace_);
    }
  }
  tiers_ = std::move(tiers);
  network_sets_ = std::move(network_sets);
  service_accounts_ = std::move(service_accounts);
  services_ = std::move(services);
}

void IncrementalCompiler::Reset(PolicyInputs in) {
  pending_pods_.clear();
  pending_namespaces_.clear();
  pending_policies_.clear();
  // Everything present now goes, unless the new inputs bring it back.
  for (const auto& [key, p] : pods_) pending_pods_[key] = std::nullopt;
  for (const auto& [name, n] : namespaces_) pending_namespaces_[name] = std::nullopt;
  for (const auto& [id, p] : policies_) pending_policies_[id] = std::nullopt;
  for (auto& p : in.pods) UpsertPod(std::move(p));
  for (auto& n : in.namespaces) UpsertNamespace(std::move(n));
  for (auto& p : in.policies) UpsertPolicy(std::move(p));
  node_ips_ = std::move(in.node_ips);
  tiers_ = std::move(in.tiers);
  network_sets_ = std::move(in.network_sets);
  service_accounts_ = std::move(in.service_accounts);
  services_ = std::move(in.services);
  rebuild_ = true;
}

bool IncrementalCompiler::HasPendingChanges() const {
  return rebuild_ || !pending_pods_.empty() || !pending_namespaces_.empty() || !pending_policies_.empty() ||
         !pending_sa_namespaces_.empty();
}

bool IncrementalCompiler::Local(const PodInfo& p) const {
  return p.ip && !p.host_network && !p.exclusive_eni && (options_.node.empty() || p.node == options_.node);
}

bool IncrementalCompiler::Namespaced(const Policy& p) const {
  return p.kind != Policy::Kind::kCalicoGlobal && !p.namespace_.empty();
}

PolicyInputs IncrementalCompiler::Context() const {
  PolicyInputs in;
  for (const auto& [name, ns] : namespaces_) in.namespaces.push_back(ns);
  in.node_ips = node_ips_;
  in.tiers = tiers_;
  in.network_sets = network_sets_;
  in.service_accounts = service_accounts_;
  in.services = services_;
  return in;
}

PolicyInputs IncrementalCompiler::Inputs() const {
  PolicyInputs in = Context();
  for (const auto& [key, p] : pods_) in.pods.push_back(p);
  for (const auto& [id, p] : policies_) in.policies.push_back(p);
  return in;
}

std::vector<Policy> IncrementalCompiler::CandidatePolicies(const std::string& ns) const {
  std::vector<Policy> out;
  auto it = policies_by_ns_.find(ns);
  if (it != policies_by_ns_.end()) {
    for (const auto& id : it->second) out.push_back(policies_.at(id));
  }
  for (const auto& id : global_policies_) out.push_back(policies_.at(id));
  return out;
}

// The local pods `p` selects (in some direction it applies to): those that
// get a chain when it is the only policy.
std::set<std::string> IncrementalCompiler::SelectedBy(const Policy& p) {
  PolicyInputs in = Context();
  in.policies.push_back(p);
  auto add = [&](const std::set<std::string>& keys) {
    for (const auto& key : keys) {
      PodInfo copy = pods_.at(key);
      copy.node = kChainNode;
      in.pods.push_back(std::move(copy));
    }
  };
  if (Namespaced(p)) {
    auto it = local_by_ns_.find(p.namespace_);
    if (it != local_by_ns_.end()) add(it->second);
  } else {
    for (const auto& [ns, keys] : local_by_ns_) add(keys);
  }
  std::set<std::string> out;
  if (in.pods.empty()) return out;
  CompiledPolicy cp = PolicyCompiler({kChainNode}).Compile(std::move(in));
  work_.compiles++;
  for (const auto& chain : cp.chains()) out.insert(cp.pods()[chain.pod].Key());
  return out;
}

void IncrementalCompiler::ApplyPending(std::set<std::string>* recompile, ChangedAddresses* addresses) {
  for (auto& [key, next] : pending_pods_) {
    auto it = pods_.find(key);
    if (it != pods_.end()) {
      const PodInfo& prev = it->second;
      if (Local(prev)) recompile->insert(key);
      if (prev.ip) {
        (*addresses)[prev.ip->value()].insert(prev.namespace_);
        auto ip = pods_by_ip_.find(prev.ip->value());
        if (ip != pods_by_ip_.end() && (ip->second.erase(key), ip->second.empty())) pods_by_ip_.erase(ip);
      }
      pods_by_ns_[prev.namespace_].erase(key);
      local_by_ns_[prev.namespace_].erase(key);
      pods_.erase(it);
    }
    if (!next) continue;
    const PodInfo& p = pods_[key] = std::move(*next);
    if (Local(p)) {
      recompile->insert(key);
      local_by_ns_[p.namespace_].insert(key);
    }
    if (p.ip) {
      (*addresses)[p.ip->value()].insert(p.namespace_);
      pods_by_ip_[p.ip->value()].insert(key);
    }
    pods_by_ns_[p.namespace_].insert(key);
  }
  pending_pods_.clear();

  // A namespace whose labels changed, or one of whose service accounts did
  // (their labels are its pods' pcsa.* labels).
  std::set<std::string> namespaces_changed = std::move(pending_sa_namespaces_);
  pending_sa_namespaces_.clear();
  for (auto& [name, next] : pending_namespaces_) {
    if (next) namespaces_[name] = std::move(*next);
    else namespaces_.erase(name);
    namespaces_changed.insert(name);
  }
  pending_namespaces_.clear();
  // Network sets carry their namespace's labels too (pcns.*): Calico
  // selectors may match them differently now, for sets and, by address, for
  // a local side. Few objects, seldom relabelled: start over.
  if (!selector_policies_.empty()) {
    for (const auto& n : network_sets_) {
      if (!n.namespace_.empty() && namespaces_changed.count(n.namespace_)) rebuild_ = true;
    }
  }
  for (const auto& name : namespaces_changed) {
    // Its labels decide which of its pods policies select (namespace
    // selectors) and which sets they are in.
    if (auto it = local_by_ns_.find(name); it != local_by_ns_.end()) recompile->insert(it->second.begin(), it->second.end());
    if (auto it = pods_by_ns_.find(name); it != pods_by_ns_.end()) {
      for (const auto& key : it->second) {
        const PodInfo& p = pods_.at(key);
        if (p.ip) (*addresses)[p.ip->value()].insert(name);
      }
    }
  }

  for (auto& [id, next] : pending_policies_) {
    if (auto sel = selected_by_.find(id); sel != selected_by_.end()) recompile->insert(sel->second.begin(), sel->second.end());
    if (auto it = policies_.find(id); it != policies_.end()) {
      if (Namespaced(it->second)) policies_by_ns_[it->second.namespace_].erase(id);
      global_policies_.erase(id);
      selector_policies_.erase(id);
      service_policies_.erase(id);
      policies_.erase(it);
    }
    if (!next) continue;
    const Policy& p = policies_[id] = std::move(*next);
    if (Namespaced(p)) policies_by_ns_[p.namespace_].insert(id);
    else global_policies_.insert(id);
    if (UsesSelectors(p)) selector_policies_.insert(id);
    if (UsesServices(p)) service_policies_.insert(id);
    if (!rebuild_) {
      std::set<std::string> now = SelectedBy(p);
      recompile->insert(now.begin(), now.end());
    }
  }
  pending_policies_.clear();

  // A Calico rule's local side is matched by address, as the kernel matches
  // the packet: a local pod's rules can depend on another pod holding the
  // same address (a stale status.podIP of another node's pod, say).
  for (const auto& [a, in] : *addresses) {
    auto it = pods_by_ip_.find(a);
    if (it == pods_by_ip_.end()) continue;
    for (const auto& key : it->second) {
      if (Local(pods_.at(key))) recompile->insert(key);
    }
  }
}

Status IncrementalCompiler::CompileFragments(const std::set<std::string>& keys) {
  std::map<std::string, std::vector<const PodInfo*>> by_ns;
  for (const auto& key : keys) {
    auto it = pods_.find(key);
    if (it == pods_.end() || !Local(it->second)) {
      ReplaceFragment(key, {});
      continue;
    }
    by_ns[it->second.namespace_].push_back(&it->second);
  }
  for (const auto& [ns, group] : by_ns) {
    PolicyInputs in = Context();
    in.policies = CandidatePolicies(ns);
    std::set<std::string> mine;
    for (const PodInfo* p : group) {
      PodInfo copy = *p;
      copy.node = kChainNode;
      mine.insert(copy.Key());
      in.pods.push_back(std::move(copy));
    }
    // Pods sharing their addresses: a local side is matched by address.
    std::set<std::string> sharing;
    for (const PodInfo* p : group) {
      for (const auto& key : pods_by_ip_.at(p->ip->value())) {
        if (mine.count(key) || !sharing.insert(key).second) continue;
        PodInfo copy = pods_.at(key);
        copy.node = kPeerNode;
        in.pods.push_back(std::move(copy));
      }
    }
    CompiledPolicy cp = PolicyCompiler({kChainNode}).Compile(std::move(in));
    work_.compiles++;
    work_.fragments += group.size();
    NftModel m = ModelOf(cp);

    std::map<std::string, Fragment> next;
    for (const auto& key : mine) next[key];
    std::map<std::string, std::string> entry_owner;  // entry chain -> pod
    for (const auto& chain : cp.chains()) {
      const std::string key = cp.pods()[chain.pod].Key();
      entry_owner[chain.name] = key;
      Fragment& f = next[key];
      for (size_t pi : chain.policies) {
        const std::string id = cp.policies()[pi].Id();
        f.policies.insert(id);
      }
      for (const auto& r : chain.rules) {
        for (size_t si : SetsOf(r)) {
          f.set_rules.emplace(cp.sets()[si].name, RuleRef{cp.policies()[r.policy].Id(), r.direction, r.rule_index});
        }
      }
      // Its tier parts' chains (each a chain, even one no goto reaches) and
      // every chain they continue in are the pod's.
      std::vector<std::string> todo = {chain.name};
      for (const auto& part : chain.tiers) todo.push_back(part.chain);
      while (!todo.empty()) {
        std::string name = todo.back();
        todo.pop_back();
        auto rules = m.chains.find(name);
        if (f.chains.count(name) || rules == m.chains.end()) continue;
        f.chains[name] = rules->second;
        for (const auto& r : rules->second) {
          SetsRead(r, m, &f.sets);
          CountersUsed(r, &f.counters);
          ChainsEntered(r, m.chains, &todo);
        }
      }
    }
    for (const auto& [map, ingress] : {std::pair{&m.ingress, true}, {&m.egress, false}}) {
      for (const auto& [ip, chain] : *map) {
        auto owner = entry_owner.find(chain);
        if (owner == entry_owner.end()) {
          return Errorf(ErrorCode::kInternal, "incremental policy: map element {} jumps to {}, which no pod chain has",
                        ip, chain);
        }
        Fragment& f = next[owner->second];
        (ingress ? f.ingress : f.egress)[ip] = chain;
      }
    }
    for (auto& [key, f] : next) ReplaceFragment(key, std::move(f));
  }
  return Ok();
}

void IncrementalCompiler::ReplaceFragment(const std::string& key, Fragment next) {
  Fragment prev;
  if (auto it = fragments_.find(key); it != fragments_.end()) {
    prev = std::move(it->second);
    fragments_.erase(it);
  }
  for (const auto& [name, rules] : prev.chains) {
    if (!next.chains.count(name)) {
      TouchChain(name);
      model_.chains.erase(name);
    }
  }
  for (const auto& [name, rules] : next.chains) {
    auto it = model_.chains.find(name);
    if (it == model_.chains.end() || it->second != rules) {
      TouchChain(name);
      model_.chains[name] = rules;
    }
  }
  for (bool ingress : {true, false}) {
    auto& was = ingress ? prev.ingress : prev.egress;
    auto& now = ingress ? next.ingress : next.egress;
    auto& model = ingress ? model_.ingress : model_.egress;
    for (const auto& [ip, chain] : was) {
      auto it = model.find(ip);
      // Another pod may hold the address by now (this one released it).
      if (!now.count(ip) && it != model.end() && it->second == chain) {
        TouchEntry(ingress, ip);
        model.erase(it);
      }
    }
    for (const auto& [ip, chain] : now) {
      auto it = model.find(ip);
      if (it == model.end() || it->second != chain) {
        TouchEntry(ingress, ip);
        model[ip] = chain;
      }
    }
  }
  for (const auto& c : prev.counters) {
    if (!next.counters.count(c)) {
      TouchCounter(c);
      model_.counters.erase(c);
    }
  }
  for (const auto& c : next.counters) {
    if (!model_.counters.count(c)) {
      TouchCounter(c);
      model_.counters.insert(c);
    }
  }
  for (const auto& s : prev.sets) {
    if (next.sets.count(s)) continue;
    auto it = sets_.find(s);
    if (it == sets_.end()) continue;
    it->second.readers.erase(key);
    if (it->second.readers.empty()) unread_sets_.insert(s);
  }
  for (const auto& s : next.sets) {
    SetEntry& e = sets_[s];
    if (!e.known) new_sets_.insert(s);
    e.readers.insert(key);
  }
  for (const auto& id : prev.policies) {
    auto it = selected_by_.find(id);
    if (it != selected_by_.end() && (it->second.erase(key), it->second.empty())) selected_by_.erase(it);
  }
  for (const auto& id : next.policies) selected_by_[id].insert(key);
  if (!next.chains.empty()) fragments_[key] = std::move(next);
}

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
  const uint32_t at = ProbeHolder().ip->value();
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

Result<NftModelChange> IncrementalCompiler::Update() {
  work_ = {};
  std::set<std::string> recompile;
  ChangedAddresses addresses;
  ApplyPending(&recompile, &addresses);  // may find it must start over
  if (rebuild_) {
    // Nothing derived survives: every fragment and set is computed again.
    std::vector<std::string> keys;
    for (const auto& [key, f] : fragments_) keys.push_back(key);
    for (const auto& key : keys) ReplaceFragment(key, {});
    DropUnreadSets();
    recompile.clear();
    addresses.clear();
    for (const auto& [ns, keys_in_ns] : local_by_ns_) recompile.insert(keys_in_ns.begin(), keys_in_ns.end());
    work_.rebuilt = true;
    rebuild_ = false;
  }
  Status st = CompileFragments(recompile);
  if (st.ok()) {
    DropUnreadSets();
    // New sets are computed against the inputs as they are now: no probe.
    std::set<std::string> fresh = new_sets_;
    st = ComputeSets(fresh);
    if (st.ok()) st = ProbeAddresses(addresses);
    new_sets_.clear();
  }
  NftModelChange change = TakeChange();
  if (!st.ok()) {
    // What was derived may be half done: the next Update starts over.
    rebuild_ = true;
    new_sets_.clear();
    unread_sets_.clear();
    return std::move(st).error();
  }
  return change;
}

void IncrementalCompiler::TouchChain(const std::string& name) {
  if (!touched_chains_.insert(name).second) return;
  if (auto it = model_.chains.find(name); it != model_.chains.end()) change_.from.chains[name] = it->second;
}

void IncrementalCompiler::TouchSet(const std::string& name) {
  if (!touched_sets_.insert(name).second) return;
  if (auto it = model_.sets.find(name); it != model_.sets.end()) change_.from.sets[name] = it->second;
  if (auto it = model_.tuple_sets.find(name); it != model_.tuple_sets.end()) change_.from.tuple_sets[name] = it->second;
}

void IncrementalCompiler::TouchCounter(const std::string& name) {
  if (!touched_counters_.insert(name).second) return;
  if (model_.counters.count(name)) change_.from.counters.insert(name);
}

void IncrementalCompiler::TouchEntry(bool ingress, const std::string& ip) {
  auto& touched = ingress ? touched_ingress_ : touched_egress_;
  if (!touched.insert(ip).second) return;
  const auto& model = ingress ? model_.ingress : model_.egress;
  if (auto it = model.find(ip); it != model.end()) (ingress ? change_.from.ingress : change_.from.egress)[ip] = it->second;
}

NftModelChange IncrementalCompiler::TakeChange() {
  NftModelChange c = std::move(change_);
  change_ = {};
  // A name's value now, and nothing of names whose value came back.
  auto settle = [](const std::set<std::string>& touched, const auto& model, auto* from, auto* to) {
    for (const auto& name : touched) {
      auto now = model.find(name);
      auto was = from->find(name);
      if (now != model.end() && was != from->end() && was->second == now->second) {
        from->erase(was);
      } else if (now != model.end()) {
        (*to)[name] = now->second;
      }
    }
  };
  settle(touched_chains_, model_.chains, &c.from.chains, &c.to.chains);
  settle(touched_sets_, model_.sets, &c.from.sets, &c.to.sets);
  settle(touched_sets_, model_.tuple_sets, &c.from.tuple_sets, &c.to.tuple_sets);
  settle(touched_ingress_, model_.ingress, &c.from.ingress, &c.to.ingress);
  settle(touched_egress_, model_.egress, &c.from.egress, &c.to.egress);
  for (const auto& name : touched_counters_) {
    bool now = model_.counters.count(name) > 0;
    bool was = c.from.counters.count(name) > 0;
    if (now && was) c.from.counters.erase(name);
    else if (now) c.to.counters.insert(name);
  }
  touched_chains_.clear();
  touched_sets_.clear();
  touched_counters_.clear();
  touched_ingress_.clear();
  touched_egress_.clear();
  return c;
}

}  // namespace terway::policy
