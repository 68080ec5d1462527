#include "policy/compiler.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "common/strings.h"

namespace terway::policy {

bool PortMatch::Matches(Protocol p, uint16_t port) const {
  if (!protocol) return true;
  if (*protocol != p) return false;  // SCTP is never TCP: protocols compare exactly
  if (all_ports) return true;
  for (const auto& [a, b] : ranges) {
    if (port >= a && port <= b) return true;
  }
  return false;
}

bool CompiledRule::Matches(const std::vector<IpSet>& sets, Ipv4Addr peer, Protocol p, uint16_t port) const {
  if (peer_set && !sets[*peer_set].addresses.Contains(peer)) return false;
  if (ports.empty()) return true;
  for (const auto& m : ports) {
    if (m.Matches(p, port)) return true;
  }
  return false;
}

namespace {

// Names that survive recompiles: a chain is named by its pod, a set by the
// peer it holds, a rule's counter by (pod, direction, policy, rule, repeat),
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

// The per-compile working state: label views and memoised peer resolution,
// so each distinct peer is resolved against all pods once.
class CompileRun {
 public:
  CompileRun(CompiledPolicy* out, const std::vector<NamespaceInfo>& namespaces) : out_(out) {
    for (const auto& ns : namespaces) ns_labels_[ns.name] = ns.labels;
    for (const auto& p : out_->pods()) {
      k8s::Labels c = p.labels;
      c["projectcalico.org/namespace"] = p.namespace_;
      c["projectcalico.org/orchestrator"] = "k8s";
      pod_calico_.push_back(std::move(c));
      EnsureNamespace(p.namespace_);
    }
  }

  std::vector<IpSet>& sets() { return sets_; }

  bool SubjectMatches(const Policy& pol, size_t pod) {
    const PodInfo& p = Pod(pod);
    if (pol.kind != Policy::Kind::kCalicoGlobal && p.namespace_ != pol.namespace_) return false;
    if (pol.subject_namespaces && !NamespaceMatches(*pol.subject_namespaces, p.namespace_)) return false;
    return pol.subject.Matches(p.labels, pod_calico_[pod]);
  }

  bool PeerMatchesPod(const Peer& peer, size_t pod) {
    const PodInfo& q = Pod(pod);
    if (peer.matches_nothing || !q.ip) return false;
    if (peer.SelectsPods()) {
      if (q.host_network) return false;
      if (peer.namespaces) {
        if (!NamespaceMatches(*peer.namespaces, q.namespace_)) return false;
      } else if (!peer.scope_namespace.empty() && q.namespace_ != peer.scope_namespace) {
        return false;
      }
      if (peer.pods && !peer.pods->Matches(q.labels, pod_calico_[pod])) return false;
    }
    return AddressInNets(peer, *q.ip);
  }

  static bool AddressInNets(const Peer& peer, Ipv4Addr a) {
    if (peer.nets) {
      bool in = false;
      for (const auto& c : *peer.nets) in = in || c.Contains(a);
      if (!in) return false;
    }
    for (const auto& c : peer.not_nets) {
      if (c.Contains(a)) return false;
    }
    return true;
  }

  static bool IsAny(const Peer& p) { return !p.matches_nothing && !p.SelectsPods() && !p.nets && p.not_nets.empty(); }

  // The union of a rule's peers as one shared set (by key).
  size_t PeerSet(const std::vector<Peer>& peers) {
    std::vector<std::string> keys;
    for (const auto& p : peers) keys.push_back(p.Key());
    std::string key = Join(keys, " | ");
    auto it = set_by_key_.find(key);
    if (it != set_by_key_.end()) return it->second;
    Ipv4RangeSet r;
    for (const auto& peer : peers) {
      if (peer.matches_nothing) continue;
      if (peer.SelectsPods()) {
        for (size_t q : PeerPods(peer)) r.Add(*Pod(q).ip);
      } else {
        Ipv4RangeSet n;
        if (peer.nets) {
          for (const auto& c : *peer.nets) n.Add(c);
        } else {
          n = Ipv4RangeSet::All();
        }
        Ipv4RangeSet cut;
        for (const auto& c : peer.not_nets) cut.Add(c);
        n.Subtract(cut);
        r.AddAll(n);
      }
    }
    return AddSet(key, std::move(r));
  }

  size_t AddSet(const std::string& key, Ipv4RangeSet r) {
    auto it = set_by_key_.find(key);
    if (it != set_by_key_.end()) return it->second;
    size_t idx = sets_.size();
    sets_.push_back({StableName("s_", key), key, std::move(r)});
    set_by_key_[key] = idx;
    return idx;
  }

  // Pods a peer matches (memoised by key).
  const std::vector<size_t>& PeerPods(const Peer& peer) {
    std::string key = peer.Key();
    auto it = peer_pods_.find(key);
    if (it != peer_pods_.end()) return it->second;
    std::vector<size_t> v;
    for (size_t q = 0; q < out_->pods().size(); q++) {
      if (PeerMatchesPod(peer, q)) v.push_back(q);
    }
    return peer_pods_[key] = std::move(v);
  }

  // The port a named port means on pod q, if it declares it.
  std::optional<uint16_t> ResolveNamedPort(size_t q, const std::string& name, Protocol proto) {
    for (const auto& cp : Pod(q).ports) {
      auto p = ParseProtocol(cp.protocol.empty() ? "TCP" : cp.protocol);
      if (cp.name == name && p.ok() && *p == proto && cp.container_port > 0 && cp.container_port <= 65535) {
        return static_cast<uint16_t>(cp.container_port);
      }
    }
    return std::nullopt;
  }

  void CompileRule(size_t pol_idx, const Rule& rule, size_t rule_idx, Direction d, size_t pod,
                   std::vector<CompiledRule>* out) {
    if (rule.local && !PeerMatchesPod(*rule.local, pod)) return;
    bool any_peer = rule.peers.empty() ||
                    std::any_of(rule.peers.begin(), rule.peers.end(), [](const Peer& p) { return IsAny(p); });
    CompiledRule base;
    base.policy = pol_idx;
    base.direction = d;
    base.rule_index = rule_idx;
    base.action = rule.action;
    if (!any_peer) base.peer_set = PeerSet(rule.peers);

    if (rule.ports.empty()) {
      out->push_back(base);
      return;
    }
    // Numeric ports (and, for ingress, named ports resolved on this pod).
    std::map<int, PortMatch> by_proto;  // -1: any protocol
    std::vector<const PortSpec*> named_egress;
    auto add = [&](std::optional<Protocol> proto, uint16_t a, uint16_t b, bool all) {
      int k = proto ? static_cast<int>(*proto) : -1;
      PortMatch& m = by_proto[k];
      m.protocol = proto;
      if (all || !proto) m.all_ports = true;
      else m.ranges.push_back({a, b});
    };
    for (const auto& ps : rule.ports) {
      if (!ps.name.empty()) {
        if (d == Direction::kEgress) {
          named_egress.push_back(&ps);
          continue;
        }
        auto n = ResolveNamedPort(pod, ps.name, *ps.protocol);
        if (n) add(ps.protocol, *n, *n, false);  // unresolved: matches nothing here
        continue;
      }
      add(ps.protocol, ps.first, ps.last, ps.first == 0);
    }
    if (!by_proto.empty()) {
      CompiledRule r = base;
      for (auto& [k, m] : by_proto) {
        if (m.all_ports) m.ranges.clear();
        r.ports.push_back(std::move(m));
      }
      out->push_back(std::move(r));
    }
    // Egress named ports mean a different number on each destination pod:
    // one rule per distinct number, over the peer pods that declare it.
    for (const PortSpec* ps : named_egress) {
      std::vector<size_t> candidates;
      if (any_peer) {
        for (size_t q = 0; q < out_->pods().size(); q++) {
          if (Pod(q).ip && !Pod(q).host_network) candidates.push_back(q);
        }
      } else {
        std::set<size_t> u;
        for (const auto& peer : rule.peers) {
          if (peer.SelectsPods()) {
            for (size_t q : PeerPods(peer)) u.insert(q);
          } else {
            for (size_t q = 0; q < out_->pods().size(); q++) {
              if (!Pod(q).host_network && PeerMatchesPod(peer, q)) u.insert(q);
            }
          }
        }
        candidates.assign(u.begin(), u.end());
      }
      std::map<uint16_t, Ipv4RangeSet> by_number;
      for (size_t q : candidates) {
        auto n = ResolveNamedPort(q, ps->name, *ps->protocol);
        if (n) by_number[*n].Add(*Pod(q).ip);
      }
      std::string peers_key = any_peer ? "any" : sets_[*base.peer_set].key;
      for (auto& [n, ips] : by_number) {
        CompiledRule r = base;
        r.peer_set = AddSet(fmt::format("{} & port {}/{}={}", peers_key, ps->name, ProtocolName(*ps->protocol), n),
                            std::move(ips));
        PortMatch m;
        m.protocol = ps->protocol;
        m.ranges.push_back({n, n});
        r.ports.push_back(std::move(m));
        out->push_back(std::move(r));
      }
    }
  }

 private:
  const PodInfo& Pod(size_t i) const { return out_->pods()[i]; }

  void EnsureNamespace(const std::string& ns) {
    auto& l = ns_labels_[ns];
    // The API server labels every namespace with its name (1.21+); selectors
    // written against it must work even if our cache predates the label.
    l.emplace("kubernetes.io/metadata.name", ns);
  }

  bool NamespaceMatches(const EndpointSelector& sel, const std::string& ns) {
    EnsureNamespace(ns);
    const k8s::Labels& plain = ns_labels_[ns];
    k8s::Labels calico = plain;
    calico["projectcalico.org/name"] = ns;
    return sel.Matches(plain, calico);
  }

  CompiledPolicy* out_;
  std::map<std::string, k8s::Labels> ns_labels_;
  std::vector<k8s::Labels> pod_calico_;
  std::vector<IpSet> sets_;
  std::unordered_map<std::string, size_t> set_by_key_;
  std::unordered_map<std::string, std::vector<size_t>> peer_pods_;
};

std::string MatchKey(const CompiledRule& r) {
  std::string k = r.peer_set ? std::to_string(*r.peer_set) : "any";
  for (const auto& m : r.ports) {
    k += fmt::format("|{}:{}", m.protocol ? static_cast<int>(*m.protocol) : -1, m.all_ports ? "all" : "");
    for (const auto& [a, b] : m.ranges) k += fmt::format(",{}-{}", a, b);
  }
  return k;
}

// Drops rules no packet can reach: a repeat of an earlier deciding rule with
// the same match (the earlier one always decides first; common when many
// policies select a pod with the same rule), and everything after a
// deciding rule that matches all traffic. Log rules decide nothing and stay.
void PruneUnreachable(std::vector<CompiledRule>* rules) {
  std::set<std::string> seen;
  std::vector<CompiledRule> out;
  for (auto& r : *rules) {
    if (r.action == Action::kLog) {
      out.push_back(std::move(r));
      continue;
    }
    std::string key = MatchKey(r);
    if (!seen.insert(key).second) continue;
    bool matches_all = !r.peer_set && r.ports.empty();
    out.push_back(std::move(r));
    if (matches_all) break;
  }
  *rules = std::move(out);
}

std::string PodOrIp(const CompiledPolicy& c, std::optional<size_t> pod, Ipv4Addr ip) {
  return pod ? c.pods()[*pod].Key() : ip.ToString();
}

}  // namespace

CompiledPolicy PolicyCompiler::Compile(PolicyInputs in) const {
  CompiledPolicy out;
  out.pods_ = std::move(in.pods);
  out.node_ips_ = std::move(in.node_ips);
  out.local_node_ = options_.node;
  out.policies_ = std::move(in.policies);
  // Calico's order: by order (absent = after all ordered ones), then by name.
  std::stable_sort(out.policies_.begin(), out.policies_.end(), [](const Policy& a, const Policy& b) {
    bool ha = a.order.has_value(), hb = b.order.has_value();
    if (ha != hb) return ha;
    if (ha && *a.order != *b.order) return *a.order < *b.order;
    return a.Id() < b.Id();
  });
  for (size_t i = 0; i < out.pods_.size(); i++) {
    out.pod_by_key_[out.pods_[i].Key()] = i;
    if (out.pods_[i].ip && !out.pods_[i].host_network) out.pod_by_ip_[out.pods_[i].ip->value()] = i;
  }
  CompileRun run(&out, in.namespaces);
  for (size_t pod = 0; pod < out.pods_.size(); pod++) {
    const PodInfo& p = out.pods_[pod];
    if (!p.ip || p.host_network || p.exclusive_eni) continue;
    if (!options_.node.empty() && p.node != options_.node) continue;
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      PodChain chain;
      chain.pod = pod;
      chain.direction = d;
      chain.name = StableName(d == Direction::kIngress ? "in_" : "eg_", p.Key());
      for (size_t pi = 0; pi < out.policies_.size(); pi++) {
        const Policy& pol = out.policies_[pi];
        if (!(d == Direction::kIngress ? pol.applies_ingress : pol.applies_egress)) continue;
        if (!run.SubjectMatches(pol, pod)) continue;
        chain.policies.push_back(pi);
        const auto& rules = d == Direction::kIngress ? pol.ingress : pol.egress;
        for (size_t ri = 0; ri < rules.size(); ri++) run.CompileRule(pi, rules[ri], ri, d, pod, &chain.rules);
      }
      if (chain.policies.empty()) continue;  // not isolated in this direction
      PruneUnreachable(&chain.rules);
      std::map<std::pair<size_t, size_t>, int> repeats;  // named ports: one source rule, several rules
      for (auto& r : chain.rules) {
        int n = repeats[{r.policy, r.rule_index}]++;
        r.counter = StableName("c", fmt::format("{}|{}|{}|{}|{}", p.Key(), DirectionName(d),
                                                  out.policies_[r.policy].Id(), r.rule_index, n));
      }
      out.chain_index_[{pod, static_cast<int>(d)}] = out.chains_.size();
      out.chains_.push_back(std::move(chain));
    }
  }
  out.sets_ = std::move(run.sets());
  return out;
}

std::optional<size_t> CompiledPolicy::FindPod(const std::string& key) const {
  auto it = pod_by_key_.find(key);
  if (it == pod_by_key_.end()) return std::nullopt;
  return it->second;
}

std::optional<size_t> CompiledPolicy::FindPodByIp(Ipv4Addr ip) const {
  auto it = pod_by_ip_.find(ip.value());
  if (it == pod_by_ip_.end()) return std::nullopt;
  return it->second;
}

const PodChain* CompiledPolicy::Chain(size_t pod, Direction d) const {
  auto it = chain_index_.find({pod, static_cast<int>(d)});
  return it == chain_index_.end() ? nullptr : &chains_[it->second];
}

std::string CompiledPolicy::DescribeRule(const CompiledRule& r) const {
  return fmt::format("{} by {} {}[{}]", ActionName(r.action), policies_[r.policy].Id(), DirectionName(r.direction),
                     r.rule_index);
}

Decision CompiledPolicy::Evaluate(size_t pod, Direction d, Ipv4Addr peer, Protocol proto, uint16_t port) const {
  Decision out;
  const PodChain* chain = Chain(pod, d);
  if (!chain) {
    const PodInfo& p = pods_[pod];
    if (p.exclusive_eni || p.host_network) {
      out.reason = fmt::format("{} is outside policy ({})", p.Key(), p.exclusive_eni ? "exclusive ENI" : "host network");
    } else if (!local_node_.empty() && p.node != local_node_) {
      out.evaluated = false;
      out.reason = fmt::format("{} runs on node {}: its {} policy is enforced and explained there", p.Key(), p.node,
                               DirectionName(d));
    } else {
      out.reason = fmt::format("no policy selects {} for {}", p.Key(), DirectionName(d));
    }
    return out;
  }
  out.isolated = true;
  for (const auto& r : chain->rules) {
    if (!r.Matches(sets_, peer, proto, port)) continue;
    if (r.action == Action::kLog) {
      out.logged.push_back(DescribeRule(r));
      continue;
    }
    out.policy = r.policy;
    out.rule_index = r.rule_index;
    out.action = r.action;
    out.counter = r.counter;
    out.allowed = r.action != Action::kDeny;
    out.reason = DescribeRule(r);
    if (r.action == Action::kPass) out.reason += " (skips the rest of the tier; the namespace profile allows)";
    return out;
  }
  out.allowed = false;
  std::vector<std::string> ids;
  for (size_t pi : chain->policies) ids.push_back(policies_[pi].Id());
  out.reason = fmt::format("no rule matched; {} is isolated for {} by {}", pods_[pod].Key(), DirectionName(d),
                           Join(ids, ", "));
  return out;
}

Result<Explanation> CompiledPolicy::Explain(const std::string& from, const std::string& to, Protocol proto,
                                            uint16_t port) const {
  auto resolve = [&](const std::string& what) -> Result<std::pair<std::optional<size_t>, Ipv4Addr>> {
    if (auto pod = FindPod(what)) {
      if (!pods_[*pod].ip) {
        return Errorf(ErrorCode::kNotFound, "pod {} has no IPv4 address yet; retry once it is running", what);
      }
      return std::make_pair(pod, *pods_[*pod].ip);
    }
    auto ip = Ipv4Addr::Parse(what);
    if (!ip.ok()) {
      return Errorf(ErrorCode::kNotFound, "\"{}\" is neither a known pod (namespace/name) nor an IPv4 address", what);
    }
    return std::make_pair(FindPodByIp(*ip), *ip);
  };
  TERWAY_ASSIGN_OR_RETURN(auto src, resolve(from));
  TERWAY_ASSIGN_OR_RETURN(auto dst, resolve(to));
  Explanation e;
  std::string flow = fmt::format("{} -> {} {}/{}", PodOrIp(*this, src.first, src.second),
                                 PodOrIp(*this, dst.first, dst.second), port, ProtocolName(proto));
  if (dst.first) {
    auto node = node_ips_.find(pods_[*dst.first].node);
    if (node != node_ips_.end() &&
        std::find(node->second.begin(), node->second.end(), src.second) != node->second.end()) {
      e.ingress.reason = "from the pod's own node: always allowed";
      e.egress.reason = "the node is not a pod";
      e.summary = "ALLOW " + flow;
      return e;
    }
  }
  if (src.first) e.egress = Evaluate(*src.first, Direction::kEgress, dst.second, proto, port);
  else e.egress.reason = "the source is not a pod";
  if (dst.first) e.ingress = Evaluate(*dst.first, Direction::kIngress, src.second, proto, port);
  else e.ingress.reason = "the destination is not a pod";
  e.allowed = e.egress.allowed && e.ingress.allowed;
  e.summary = (e.allowed ? "ALLOW " : "DENY ") + flow;
  if (e.allowed && (!e.egress.evaluated || !e.ingress.evaluated)) e.summary += " (as far as this node decides)";
  return e;
}

std::string Explanation::ToString() const {
  auto line = [](const char* what, const Decision& d) {
    std::string s = fmt::format("  {}: {}: {}", what, d.allowed ? "allow" : "deny", d.reason);
    if (!d.counter.empty()) s += " [counter " + d.counter + "]";
    for (const auto& l : d.logged) s += "\n    logged: " + l;
    return s;
  };
  return summary + "\n" + line("egress of source", egress) + "\n" + line("ingress of destination", ingress) + "\n";
}

}  // namespace terway::policy
