#include "policy/incremental.h"

#include <cctype>

#include <fmt/format.h>

namespace terway::policy {

namespace {

bool NameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string TokenAt(const std::string& s, size_t i) {
  size_t j = i;
  while (j < s.size() && NameChar(s[j])) j++;
  return s.substr(i, j - i);
}

// The sets a rule reads: "@name" naming a set of the model.
void SetsRead(const std::string& rule, const NftModel& m, std::set<std::string>* out) {
  for (size_t i = rule.find('@'); i != std::string::npos; i = rule.find('@', i + 1)) {
    std::string name = ModelSetName(TokenAt(rule, i + 1));  // an IPv6 twin reads its pair
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
  std::string k = n.namespace_ + "/" + n.name + "|";
  k += fmt::format("|read={}|{}", static_cast<int>(n.read), n.unreadable);
  for (const auto& [l, v] : n.labels) k += "|" + l + "=" + v;
  for (const auto& c : n.nets) k += "|" + c.ToString();
  for (const auto& c : n.nets6) k += "|" + c.ToString();
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
    for (const auto& a : g.addresses6) k += "|" + a.ToString();
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
      for (IpKey a : AddressesOf(prev)) {
        (*addresses)[a].insert(prev.namespace_);
        auto ip = pods_by_ip_.find(a);
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
    for (IpKey a : AddressesOf(p)) {
      (*addresses)[a].insert(p.namespace_);
      pods_by_ip_[a].insert(key);
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
        for (IpKey a : AddressesOf(p)) (*addresses)[a].insert(name);
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
      for (IpKey a : AddressesOf(*p)) {
        for (const auto& key : pods_by_ip_.at(a)) {
          if (mine.count(key) || !sharing.insert(key).second) continue;
          PodInfo copy = pods_.at(key);
          copy.node = kPeerNode;
          in.pods.push_back(std::move(copy));
        }
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
