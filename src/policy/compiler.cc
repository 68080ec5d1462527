#include "policy/compiler.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "common/strings.h"
#include "policy/endpoint_labels.h"
#include "policy/l4_match.h"
#include "policy/policy_order.h"
#include "policy/unreadable_sets.h"

namespace terway::policy {

bool CompiledRule::Matches(const std::vector<IpSet>& sets, IpKey peer, const Packet& pkt) const {
  if (ip_version && *ip_version != (IsIpv4Key(peer) ? 4 : 6)) return false;
  if (peer_set && !sets[*peer_set].Contains(peer)) return false;
  if (peer_not_set && sets[*peer_not_set].Contains(peer)) return false;
  const uint16_t peer_port = direction == Direction::kEgress ? pkt.destination_port : pkt.source_port;
  for (size_t t : tuple_sets) {
    if (!sets[t].Contains(peer, pkt.protocol, peer_port)) return false;
  }
  for (size_t t : not_tuple_sets) {
    if (sets[t].Contains(peer, pkt.protocol, peer_port)) return false;
  }
  if (ports.empty()) return true;
  for (const auto& m : ports) {
    if (m.Matches(sets, direction, peer, pkt)) return true;
  }
  return false;
}

std::vector<IpKey> AddressesOf(const PodInfo& p) {
  std::vector<IpKey> out;
  if (!p.ip) return out;
  out.push_back(KeyOf(*p.ip));
  if (p.ipv6) out.push_back(KeyOf(*p.ipv6));
  return out;
}

namespace {

// Names that survive recompiles: a chain is named by its pod (and tier), a
// set by what it holds, a rule's counter by (pod, direction, policy, rule),
// whatever else changed in the cluster. So the renderer can send the kernel
// only what changed, and an operator's `policy show` keeps counting.
// FNV-1a 64: cheap, stable across builds and processes.
std::string StableName(const char* prefix, const std::string& identity) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : identity) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{}{:016x}", prefix, h);
}

// The per-compile working state: Calico's label views of every endpoint
// and network set, and memoised peer resolution, so each distinct peer is
// resolved against all of them once.
class CompileRun {
  using Reading = UnreadableReading;

 public:
  CompileRun(CompiledPolicy* out, const PolicyInputs& in) : out_(out) {
    for (const auto& ns : in.namespaces) ns_labels_[ns.name] = NamespaceLabels(ns.name, ns.labels);
    std::map<std::pair<std::string, std::string>, const k8s::Labels*> sa;
    for (const auto& s : in.service_accounts) sa[{s.namespace_, s.name}] = &s.labels;
    for (const auto& p : out_->pods()) {
      auto it = sa.find({p.namespace_, p.service_account});
      pod_calico_.push_back(CalicoPodLabels(p, NsLabels(p.namespace_), it == sa.end() ? nullptr : it->second));
    }
    for (const auto& n : in.network_sets) {
      if (n.Readable()) {
        network_sets_.push_back({&n, CalicoNetworkSetLabels(n, NsLabels(n.namespace_))});
      } else {
        unreadable_.Add(n, NsLabels(n.namespace_));
      }
    }
    for (const auto& s : in.services) services_[{s.namespace_, s.name}] = &s;
  }

  std::vector<IpSet>& sets() { return sets_; }

  // --- subject selection: which pods a policy applies to.
  bool SubjectMatches(const Policy& pol, size_t pod) {
    const PodInfo& p = Pod(pod);
    if (pol.kind != Policy::Kind::kCalicoGlobal && p.namespace_ != pol.namespace_) return false;
    return pol.subject.Matches(p.labels, pod_calico_[pod]);
  }

  // --- peer-set membership.

  // Pods a Kubernetes peer's selectors match (memoised by key).
  const std::vector<size_t>& K8sPeerPods(const Peer& peer) {
    std::string key = peer.Key();
    auto it = peer_pods_.find(key);
    if (it != peer_pods_.end()) return it->second;
    std::vector<size_t> v;
    for (size_t q = 0; q < out_->pods().size(); q++) {
      const PodInfo& p = Pod(q);
      if (!p.ip || p.host_network) continue;
      if (peer.namespaces) {
        if (!NamespaceMatches(*peer.namespaces, p.namespace_)) continue;
      } else if (!peer.scope_namespace.empty() && p.namespace_ != peer.scope_namespace) {
        continue;
      }
      if (peer.pods && !peer.pods->Matches(p.labels, pod_calico_[q])) continue;
      v.push_back(q);
    }
    return peer_pods_[key] = std::move(v);
  }

  // Pods (workload endpoints: an address, not host network) whose Calico
  // labels a selector matches.
  const std::vector<size_t>& SelectorPods(const CalicoSelector& sel) {
    std::string key = sel.ToString();
    auto it = selector_pods_.find(key);
    if (it != selector_pods_.end()) return it->second;
    std::vector<size_t> v;
    for (size_t q = 0; q < out_->pods().size(); q++) {
      if (Pod(q).ip && !Pod(q).host_network && sel.Matches(pod_calico_[q])) v.push_back(q);
    }
    return selector_pods_[key] = std::move(v);
  }

  // Addresses of the endpoints and network sets a Calico selector matches.
  const IpRangeSet& SelectorAddresses(const CalicoSelector& sel) {
    std::string key = sel.ToString();
    auto it = selector_addresses_.find(key);
    if (it != selector_addresses_.end()) return it->second;
    IpRangeSet r;
    for (size_t q : SelectorPods(sel)) AddPod(q, &r);
    for (const auto& [set, labels] : network_sets_) {
      if (!sel.Matches(labels)) continue;
      for (const auto& c : set->nets) r.Add(c);
      for (const auto& c : set->nets6) r.Add(c);
    }
    return selector_addresses_[key] = std::move(r);
  }

  // --- network sets that cannot be read (unreadable_sets.h): a selector's
  // addresses with the ones it could select as every address
  // (`unreadable_any`) or left out.
  const IpRangeSet& SelectorAddresses(const CalicoSelector& sel, bool unreadable_any) {
    static const IpRangeSet kAll = IpRangeSet::All();
    if (unreadable_any && !unreadable_.Matches(sel).empty()) return kAll;
    return SelectorAddresses(sel);
  }
  // What distinguishes such a resolution in set and memo keys.
  std::string UnreadableKey(const std::optional<CalicoSelector>& sel, bool unreadable_any) {
    return unreadable_any && sel && !unreadable_.Matches(*sel).empty() ? "|unreadable-sets=any" : "";
  }
  std::vector<FailClosed> UnreadableSetNotes(const Policy& pol) { return unreadable_.Notes(pol); }

  IpRangeSet ServiceAddresses(const std::vector<ServiceRef>& refs) {
    IpRangeSet r;
    for (const auto& ref : refs) {
      if (const ServiceBackends* s = Service(ref)) {
        for (const auto& g : s->groups) {
          for (const auto& a : g.addresses) r.Add(a);
          for (const auto& a : g.addresses6) r.Add(a);
        }
      }
    }
    return r;
  }

  // The addresses one peer's positive constraints admit (its notSelector
  // is a separate set). Ingress `services` are backend addresses; egress
  // ones are tuples (ServiceTuples), so they admit any address here.
  // `unreadable_any`: how its selector takes unreadable network sets.
  const IpRangeSet& PeerAddresses(const Peer& peer, Direction d, bool unreadable_any) {
    std::string key =
        peer.Key() + (d == Direction::kIngress ? "|in" : "|eg") + UnreadableKey(peer.selector, unreadable_any);
    auto it = peer_addresses_.find(key);
    if (it != peer_addresses_.end()) return it->second;
    return peer_addresses_[key] = ResolvePeer(peer, d, unreadable_any);
  }

  IpRangeSet ResolvePeer(const Peer& peer, Direction d, bool unreadable_any) {
    if (peer.matches_nothing) return {};
    IpRangeSet r = IpRangeSet::All();
    if (peer.SelectsPods()) {
      IpRangeSet pods;
      for (size_t q : K8sPeerPods(peer)) AddPod(q, &pods);
      r = std::move(pods);
    }
    if (peer.selector) r.Intersect(SelectorAddresses(*peer.selector, unreadable_any));
    if (peer.services && d == Direction::kIngress) r.Intersect(ServiceAddresses(*peer.services));
    if (peer.nets) {
      IpRangeSet n;
      for (const auto& c : *peer.nets) n.Add(c);
      for (const auto& c : peer.nets6) n.Add(c);
      r.Intersect(n);
    }
    IpRangeSet cut;
    for (const auto& c : peer.not_nets) cut.Add(c);
    for (const auto& c : peer.not_nets6) cut.Add(c);
    r.Subtract(cut);
    return r;
  }

  // Our own pod against a Calico rule's local side (the destination of an
  // ingress rule, the source of an egress rule): decided here, by address,
  // as the kernel would decide it on the packet.
  bool LocalMatches(const Peer& local, Reading reading, IpKey ip) {
    if (!PeerAddresses(local, Direction::kEgress, UnreadableAny(reading, false)).Contains(ip)) return false;
    return !(local.not_selector && SelectorAddresses(*local.not_selector, UnreadableAny(reading, true)).Contains(ip));
  }
  // The family a rule with a local side keeps on a pod: none when neither
  // address matches; a dual-stack pod whose addresses match in one family
  // only gets the rule for that family (the kernel sees the packet's own
  // address). Nullopt in `*version` = both families.
  bool LocalFamily(const Peer& local, Reading reading, size_t pod, std::optional<int>* version) {
    const PodInfo& p = Pod(pod);
    const bool v4 = LocalMatches(local, reading, KeyOf(*p.ip));
    if (!p.ipv6) return v4;
    const bool v6 = LocalMatches(local, reading, KeyOf(*p.ipv6));
    if (v4 && v6) return true;
    if (!v4 && !v6) return false;
    const int only = v4 ? 4 : 6;
    if (*version && **version != only) return false;
    *version = only;
    return true;
  }

  // The rule's peer terms: its address set (the union of its peers'
  // positive constraints; none when one of them admits any address), the
  // notSelector set, and an egress Service's tuples.
  void PeerTerms(const Rule& rule, Direction d, Reading reading, CompiledRule* out) {
    const bool unreadable_any = UnreadableAny(reading, false);
    bool any = rule.peers.empty();
    std::vector<Peer> positive;
    std::vector<std::string> keys;
    for (const auto& peer : rule.peers) {
      Peer pos = peer;
      pos.not_selector.reset();
      if (d == Direction::kEgress) pos.services.reset();  // tuples, below
      if (pos.IsAny()) {
        any = true;
        break;
      }
      keys.push_back(pos.Key() + UnreadableKey(pos.selector, unreadable_any));
      positive.push_back(std::move(pos));
    }
    if (!any) {
      std::string key = Join(keys, " | ");
      auto it = set_by_key_.find(key);
      if (it != set_by_key_.end()) {
        out->peer_set = it->second;
      } else {
        IpRangeSet r;
        for (const auto& pos : positive) r.AddAll(PeerAddresses(pos, d, unreadable_any));
        out->peer_set = AddSet(key, std::move(r));
      }
    }
    if (rule.peers.size() != 1) return;  // Kubernetes peers carry neither
    const Peer& p = rule.peers[0];
    if (p.not_selector) {
      const bool not_any = UnreadableAny(reading, true);
      std::string key = "notsel=" + p.not_selector->ToString() + UnreadableKey(p.not_selector, not_any);
      auto it = set_by_key_.find(key);
      out->peer_not_set =
          it != set_by_key_.end() ? it->second : AddSet(key, SelectorAddresses(*p.not_selector, not_any));
    }
    if (p.services && d == Direction::kEgress) out->tuple_sets.push_back(ServiceTuples(*p.services));
  }

  void AddPod(size_t q, IpRangeSet* r) const {
    r->Add(*Pod(q).ip);
    if (Pod(q).ipv6) r->Add(*Pod(q).ipv6);
  }

  // --- ports.

  // The port a named port means on pod q, per protocol (none: any).
  std::vector<std::pair<Protocol, uint16_t>> NamedPort(size_t q, const std::string& name,
                                                       const std::optional<Protocol>& proto) {
    std::vector<std::pair<Protocol, uint16_t>> out;
    for (const auto& cp : Pod(q).ports) {
      auto p = ParseProtocol(cp.protocol.empty() ? "TCP" : cp.protocol);
      if (cp.name != name || !p.ok() || !p->HasPorts() || (proto && *p != *proto)) continue;
      if (cp.container_port > 0 && cp.container_port <= 65535) {
        out.push_back({*p, static_cast<uint16_t>(cp.container_port)});
      }
    }
    return out;
  }

  // Pods at the peer end whose named ports a rule's port list means: those
  // its selectors pick (Kubernetes peers' pods, a Calico positive
  // selector), or every pod when a peer picks by address only. The other
  // address terms of the rule still apply to the packet.
  std::pair<std::string, std::vector<size_t>> NamedPortCandidates(const Rule& rule) {
    bool all = rule.peers.empty();
    std::set<size_t> u;
    std::vector<std::string> keys;
    for (const auto& peer : rule.peers) {
      if (peer.matches_nothing) continue;
      if (peer.SelectsPods()) {
        for (size_t q : K8sPeerPods(peer)) u.insert(q);
        keys.push_back(peer.Key());
      } else if (peer.selector) {
        for (size_t q : SelectorPods(*peer.selector)) u.insert(q);
        keys.push_back("sel=" + peer.selector->ToString());
      } else {
        all = true;
      }
    }
    if (all) {
      std::vector<size_t> v;
      for (size_t q = 0; q < out_->pods().size(); q++) {
        if (Pod(q).ip && !Pod(q).host_network) v.push_back(q);
      }
      return {"all", v};
    }
    return {Join(keys, " | "), std::vector<size_t>(u.begin(), u.end())};
  }

  // A tuple set of the named ports in `specs` on `candidates`.
  size_t NamedPortTuples(const std::pair<std::string, std::vector<size_t>>& candidates,
                         const std::vector<const PortSpec*>& specs) {
    std::vector<std::string> names;
    for (const PortSpec* ps : specs) {
      names.push_back(ps->name + "/" + (ps->protocol ? ProtocolName(*ps->protocol) : "*"));
    }
    std::sort(names.begin(), names.end());
    std::string key = fmt::format("{} & ports {}", candidates.first, Join(names, ","));
    if (auto it = set_by_key_.find(key); it != set_by_key_.end()) return it->second;
    std::set<AddressPortTuple> t;
    for (size_t q : candidates.second) {
      for (const PortSpec* ps : specs) {
        for (const auto& [p, n] : NamedPort(q, ps->name, ps->protocol)) {
          t.insert({KeyOf(*Pod(q).ip), p.number(), n});
          if (Pod(q).ipv6) t.insert({KeyOf(*Pod(q).ipv6), p.number(), n});
        }
      }
    }
    return AddTupleSet(key, std::move(t));
  }

  // How a positive port list on one side can be met.
  std::vector<PortOption> PortOptions(const std::vector<PortSpec>& list, bool local, size_t pod, const Rule& rule) {
    std::vector<PortOption> opts;
    std::map<std::optional<Protocol>, std::vector<const PortSpec*>> named;
    for (const auto& ps : list) {
      if (ps.name.empty()) {
        PortOption o{ps.protocol, {}, {}};
        if (ps.first != 0) o.ranges = {{ps.first, ps.last}};
        opts.push_back(std::move(o));
      } else if (local) {
        for (const auto& [p, n] : NamedPort(pod, ps.name, ps.protocol)) opts.push_back({p, {{n, n}}, {}});
      } else {
        named[ps.protocol].push_back(&ps);
      }
    }
    if (!named.empty()) {
      auto candidates = NamedPortCandidates(rule);
      for (const auto& [proto, specs] : named) opts.push_back({proto, {}, NamedPortTuples(candidates, specs)});
    }
    return opts;
  }

  // A notPorts list on one side: numeric and local named ports become
  // per-protocol exclusions; peer named ports a not-in tuple set.
  void ExcludePortList(const std::vector<PortSpec>& list, bool local, PortSide side, size_t pod, const Rule& rule,
                       Alternatives* alts, CompiledRule* out) {
    std::map<Protocol, PortRanges> by_protocol;
    std::vector<const PortSpec*> named;
    for (const auto& ps : list) {
      if (ps.name.empty()) {
        if (ps.protocol) by_protocol[*ps.protocol].push_back({ps.first, ps.last});
      } else if (local) {
        for (const auto& [p, n] : NamedPort(pod, ps.name, ps.protocol)) by_protocol[p].push_back({n, n});
      } else {
        named.push_back(&ps);
      }
    }
    ExcludePorts(alts, side, by_protocol);
    if (!named.empty()) out->not_tuple_sets.push_back(NamedPortTuples(NamedPortCandidates(rule), named));
  }

  // The layer-4 alternatives of a rule for our pod (empty: none can match).
  Alternatives L4(const Rule& rule, Direction d, size_t pod, CompiledRule* out) {
    Alternatives alts = AnyPacket();
    if (rule.protocol) RequireProtocol(&alts, *rule.protocol);
    if (rule.not_protocol) ExcludeProtocol(&alts, *rule.not_protocol);
    // Calico's icmp / notICMP are ICMPv6 types under protocol ICMPv6.
    const Protocol icmp = rule.protocol == Protocol::kICMPv6 ? Protocol::kICMPv6 : Protocol::kICMP;
    if (rule.icmp) RequireIcmp(&alts, *rule.icmp, icmp);
    if (rule.not_icmp) ExcludeIcmp(&alts, *rule.not_icmp, icmp);
    const bool ingress = d == Direction::kIngress;
    // Destination ports are ours for ingress, the peer's for egress;
    // source ports the other way round.
    if (!rule.ports.empty()) RequirePorts(&alts, PortSide::kDestination, PortOptions(rule.ports, ingress, pod, rule));
    if (!rule.source_ports.empty()) {
      RequirePorts(&alts, PortSide::kSource, PortOptions(rule.source_ports, !ingress, pod, rule));
    }
    ExcludePortList(rule.not_ports, ingress, PortSide::kDestination, pod, rule, &alts, out);
    ExcludePortList(rule.not_source_ports, !ingress, PortSide::kSource, pod, rule, &alts, out);
    return alts;
  }

  // --- rule compilation.
  void CompileRule(size_t pol_idx, const Rule& rule, size_t rule_idx, Direction d, size_t pod,
                   std::vector<CompiledRule>* out) {
    if (rule.matches_nothing) return;
    if (rule.peers.size() == 1 && rule.peers[0].matches_nothing) return;
    if (rule.action == Action::kPass && unreadable_.SelectedBy(rule)) {
      CompileRuleAs(pol_idx, rule, rule_idx, d, pod, Reading::kCertain, Action::kPass, out);
      CompileRuleAs(pol_idx, rule, rule_idx, d, pod, Reading::kPossible, Action::kDeny, out);
      return;
    }
    CompileRuleAs(pol_idx, rule, rule_idx, d, pod, ReadingOf(rule.action), rule.action, out);
  }

 private:
  // What a rule compiles to on every pod it applies to: its peer terms,
  // and its layer-4 part unless a named port on our side makes it per pod.
  struct RuleTemplate {
    CompiledRule rule;
    bool pod_independent = true;
    bool never = false;
  };

  static bool LocalNamedPorts(const Rule& rule, Direction d) {
    auto named = [](const std::vector<PortSpec>& v) {
      return std::any_of(v.begin(), v.end(), [](const PortSpec& p) { return !p.name.empty(); });
    };
    return d == Direction::kIngress ? named(rule.ports) || named(rule.not_ports)
                                    : named(rule.source_ports) || named(rule.not_source_ports);
  }

  void CompileRuleAs(size_t pol_idx, const Rule& rule, size_t rule_idx, Direction d, size_t pod, Reading reading,
                     Action action, std::vector<CompiledRule>* out) {
    std::optional<int> version = rule.ip_version;
    if (rule.local && !LocalFamily(*rule.local, reading, pod, &version)) return;
    const RuleTemplate& t = Template(rule, d, reading);
    if (t.never) return;
    CompiledRule r = t.rule;
    r.ip_version = version;
    r.policy = pol_idx;
    r.direction = d;
    r.rule_index = rule_idx;
    r.action = action;
    if (!t.pod_independent) {
      Alternatives alts = L4(rule, d, pod, &r);
      if (alts.empty()) return;  // e.g. only unresolvable named ports
      if (!IsAnyPacket(alts)) r.ports = std::move(alts);
    }
    // One family (ipVersion, or a local side of one family) and only ICMP
    // terms of the other (a local IPv6 match on an ICMP type rule, say): no
    // packet can match, and the kernel gets no rule for it.
    if (r.ip_version && !r.ports.empty() &&
        std::none_of(r.ports.begin(), r.ports.end(),
                     [&](const PortMatch& m) { return AlternativeInFamily(m, *r.ip_version); })) {
      return;
    }
    out->push_back(std::move(r));
  }

  const RuleTemplate& Template(const Rule& rule, Direction d, Reading reading) {
    auto key = std::make_tuple(&rule, static_cast<int>(d), static_cast<int>(reading));
    auto it = templates_.find(key);
    if (it != templates_.end()) return it->second;
    RuleTemplate t;
    t.rule.direction = d;
    PeerTerms(rule, d, reading, &t.rule);
    t.pod_independent = !LocalNamedPorts(rule, d);
    if (t.pod_independent) {
      Alternatives alts = L4(rule, d, 0, &t.rule);
      t.never = alts.empty();
      if (!IsAnyPacket(alts)) t.rule.ports = std::move(alts);
    }
    return templates_[key] = std::move(t);
  }

  const PodInfo& Pod(size_t i) const { return out_->pods()[i]; }

  const k8s::Labels& NsLabels(const std::string& ns) {
    auto it = ns_labels_.find(ns);
    if (it != ns_labels_.end()) return it->second;
    return ns_labels_[ns] = NamespaceLabels(ns, {});
  }

  bool NamespaceMatches(const EndpointSelector& sel, const std::string& ns) {
    const k8s::Labels& plain = NsLabels(ns);
    k8s::Labels calico = plain;
    calico[kCalicoNameLabel] = ns;
    return sel.Matches(plain, calico);
  }

  const ServiceBackends* Service(const ServiceRef& ref) const {
    auto it = services_.find({ref.namespace_, ref.name});
    return it == services_.end() ? nullptr : it->second;
  }

  // (backend address, protocol, port) of egress `services`: the backends
  // and target ports after kube-proxy's DNAT, each address with the ports
  // of its own slices only (as Felix builds them per EndpointSlice).
  size_t ServiceTuples(const std::vector<ServiceRef>& refs) {
    std::vector<std::string> keys;
    for (const auto& r : refs) keys.push_back(r.Key());
    std::string key = "svc-ports=" + Join(keys, ",");
    if (auto it = set_by_key_.find(key); it != set_by_key_.end()) return it->second;
    std::set<AddressPortTuple> t;
    for (const auto& ref : refs) {
      const ServiceBackends* s = Service(ref);
      if (!s) continue;
      for (const auto& g : s->groups) {
        for (const auto& p : g.ports) {
          if (p.port == 0) continue;
          for (const auto& a : g.addresses) t.insert({KeyOf(a), p.protocol, p.port});
          for (const auto& a : g.addresses6) t.insert({KeyOf(a), p.protocol, p.port});
        }
      }
    }
    return AddTupleSet(key, std::move(t));
  }

  size_t AddSet(const std::string& key, IpRangeSet r) {
    auto it = set_by_key_.find(key);
    if (it != set_by_key_.end()) return it->second;
    size_t idx = sets_.size();
    IpSet s;
    s.name = StableName("s_", key);
    s.key = key;
    s.addresses = std::move(r);
    sets_.push_back(std::move(s));
    set_by_key_[key] = idx;
    return idx;
  }

  size_t AddTupleSet(const std::string& key, std::set<AddressPortTuple> t) {
    auto it = set_by_key_.find(key);
    if (it != set_by_key_.end()) return it->second;
    size_t idx = sets_.size();
    IpSet s;
    s.name = StableName("t_", key);
    s.key = key;
    s.is_tuples = true;
    s.tuples = std::move(t);
    sets_.push_back(std::move(s));
    set_by_key_[key] = idx;
    return idx;
  }

  CompiledPolicy* out_;
  std::map<std::string, k8s::Labels> ns_labels_;
  std::vector<k8s::Labels> pod_calico_;
  std::vector<std::pair<const NetworkSetInfo*, k8s::Labels>> network_sets_;
  UnreadableNetworkSets unreadable_;
  std::map<std::pair<std::string, std::string>, const ServiceBackends*> services_;
  std::vector<IpSet> sets_;
  std::unordered_map<std::string, size_t> set_by_key_;
  std::unordered_map<std::string, std::vector<size_t>> peer_pods_;
  std::unordered_map<std::string, std::vector<size_t>> selector_pods_;
  std::unordered_map<std::string, IpRangeSet> selector_addresses_;
  std::unordered_map<std::string, IpRangeSet> peer_addresses_;
  std::map<std::tuple<const Rule*, int, int>, RuleTemplate> templates_;
};

std::string RuleMatchKey(const CompiledRule& r) {
  auto opt = [](const std::optional<size_t>& o) { return o ? std::to_string(*o) : std::string("any"); };
  std::string k = opt(r.peer_set) + "!" + opt(r.peer_not_set) + "|v" +
                  (r.ip_version ? std::to_string(*r.ip_version) : "*") + "|t";
  for (size_t t : r.tuple_sets) k += std::to_string(t) + ",";
  k += "!";
  for (size_t t : r.not_tuple_sets) k += std::to_string(t) + ",";
  for (const auto& m : r.ports) k += "|" + MatchKey(m);
  return k;
}

// Drops rules no packet can reach in one tier: a repeat of an earlier
// deciding rule with the same match (the earlier one always decides first;
// common when many policies select a pod with the same rule), and
// everything after a deciding rule that matches all traffic. Log rules
// decide nothing and stay.
void PruneUnreachable(std::vector<CompiledRule>* rules) {
  std::set<std::string> seen;
  std::vector<CompiledRule> out;
  for (auto& r : *rules) {
    if (r.action == Action::kLog) {
      out.push_back(std::move(r));
      continue;
    }
    if (!seen.insert(RuleMatchKey(r)).second) continue;
    bool matches_all = !r.peer_set && !r.peer_not_set && r.tuple_sets.empty() && r.not_tuple_sets.empty() &&
                       r.ports.empty() && !r.ip_version;
    out.push_back(std::move(r));
    if (matches_all) break;
  }
  *rules = std::move(out);
}

// --- tier assembly: one pod, one direction.
std::optional<PodChain> AssembleChain(const CompiledPolicy& out, CompileRun* run, size_t pod, Direction d,
                                      const std::vector<RankedTier>& tiers, const std::vector<size_t>& tier_of) {
  const PodInfo& p = out.pods()[pod];
  const char* prefix = d == Direction::kIngress ? "in_" : "eg_";
  PodChain chain;
  chain.pod = pod;
  chain.direction = d;
  chain.name = StableName(prefix, p.Key());
  size_t pi = 0;
  const auto& policies = out.policies();
  while (pi < policies.size()) {
    const size_t t = tier_of[pi];
    TierPart part;
    part.tier = tiers[t].name;
    part.default_pass = tiers[t].default_pass;
    part.known = tiers[t].known;
    std::vector<CompiledRule> rules;
    for (; pi < policies.size() && tier_of[pi] == t; pi++) {
      const Policy& pol = policies[pi];
      if (!(d == Direction::kIngress ? pol.applies_ingress : pol.applies_egress)) continue;
      if (!run->SubjectMatches(pol, pod)) continue;
      part.policies.push_back(pi);
      const auto& list = d == Direction::kIngress ? pol.ingress : pol.egress;
      for (size_t ri = 0; ri < list.size(); ri++) run->CompileRule(pi, list[ri], ri, d, pod, &rules);
    }
    if (part.policies.empty()) continue;  // this tier does not take part
    PruneUnreachable(&rules);
    part.chain = chain.tiers.empty() ? chain.name : StableName(prefix, p.Key() + "|tier=" + part.tier);
    part.first_rule = chain.rules.size();
    for (auto& r : rules) {
      r.counter = StableName("c", fmt::format("{}|{}|{}|{}|0", p.Key(), DirectionName(d),
                                                policies[r.policy].Id(), r.rule_index));
      chain.rules.push_back(std::move(r));
    }
    part.end_rule = chain.rules.size();
    chain.policies.insert(chain.policies.end(), part.policies.begin(), part.policies.end());
    chain.tiers.push_back(std::move(part));
  }
  if (chain.tiers.empty()) return std::nullopt;  // not isolated in this direction
  return chain;
}

// A policy in a tier the inputs lack is enforced as Felix enforces it;
// the user is told.
void NoteUnknownTiers(std::vector<Policy>* policies, const std::vector<RankedTier>& tiers,
                      const std::vector<size_t>& tier_of) {
  for (size_t i = 0; i < policies->size(); i++) {
    const RankedTier& t = tiers[tier_of[i]];
    if (t.known) continue;
    (*policies)[i].fail_closed.push_back(
        {"spec.tier", fmt::format("tier \"{}\" does not exist (no Tier object)", t.name),
         "evaluated after every tier, which ends in deny: a pod it selects is denied what no rule of it allows"});
  }
}

}  // namespace

CompiledPolicy PolicyCompiler::Compile(PolicyInputs in) const {
  CompiledPolicy out;
  out.pods_ = std::move(in.pods);
  out.node_ips_ = std::move(in.node_ips);
  out.local_node_ = options_.node;
  out.policies_ = std::move(in.policies);
  const std::vector<RankedTier> tiers = RankTiers(in.tiers, out.policies_);
  const std::vector<size_t> tier_of = SortPolicies(&out.policies_, tiers);
  NoteUnknownTiers(&out.policies_, tiers, tier_of);
  for (size_t i = 0; i < out.pods_.size(); i++) {
    out.pod_by_key_[out.pods_[i].Key()] = i;
    const PodInfo& p = out.pods_[i];
    if (!p.ip || p.host_network) continue;
    out.pod_by_ip_[KeyOf(*p.ip)] = i;
    if (p.ipv6) out.pod_by_ip_[KeyOf(*p.ipv6)] = i;
  }
  CompileRun run(&out, in);
  for (auto& pol : out.policies_) {
    for (auto& note : run.UnreadableSetNotes(pol)) pol.fail_closed.push_back(std::move(note));
  }
  for (size_t pod = 0; pod < out.pods_.size(); pod++) {
    const PodInfo& p = out.pods_[pod];
    if (!p.ip || p.host_network || p.exclusive_eni) continue;
    if (!options_.node.empty() && p.node != options_.node) continue;
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      auto chain = AssembleChain(out, &run, pod, d, tiers, tier_of);
      if (!chain) continue;
      out.chain_index_[{pod, static_cast<int>(d)}] = out.chains_.size();
      out.chains_.push_back(std::move(*chain));
    }
  }
  out.sets_ = std::move(run.sets());
  return out;
}

}  // namespace terway::policy
