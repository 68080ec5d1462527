// Evaluate and Explain: the compiled model walked exactly as the kernel
// walks the nft chains rendered from it (nft_model.cc): tier parts in
// order, rules in order, Pass and a Pass default action on to the next
// part, a Deny default action (or a missing tier) dropping at a part's
// end, the namespace profile allowing after the last part.
#include <algorithm>

#include <fmt/format.h>

#include "common/strings.h"
#include "policy/compiler.h"

namespace terway::policy {

namespace {

std::string PodOrIp(const CompiledPolicy& c, std::optional<size_t> pod, IpKey ip) {
  return pod ? c.pods()[*pod].Key() : KeyToString(ip);
}

// Why a pod has no chain for a direction.
Decision Unisolated(const PodInfo& p, Direction d, const std::string& local_node) {
  Decision out;
  if (p.exclusive_eni || p.host_network) {
    out.reason = fmt::format("{} is outside policy ({})", p.Key(), p.exclusive_eni ? "exclusive ENI" : "host network");
  } else if (!local_node.empty() && p.node != local_node) {
    out.evaluated = false;
    out.reason = fmt::format("{} runs on node {}: its {} policy is enforced and explained there", p.Key(), p.node,
                             DirectionName(d));
  } else {
    out.reason = fmt::format("no policy selects {} for {}", p.Key(), DirectionName(d));
  }
  return out;
}

void Decide(const CompiledPolicy& cp, const CompiledRule& r, Decision* out) {
  out->policy = r.policy;
  out->rule_index = r.rule_index;
  out->action = r.action;
  out->counter = r.counter;
  out->reason = cp.DescribeRule(r);
}

}  // namespace

std::optional<size_t> CompiledPolicy::FindPod(const std::string& key) const {
  auto it = pod_by_key_.find(key);
  if (it == pod_by_key_.end()) return std::nullopt;
  return it->second;
}

std::optional<size_t> CompiledPolicy::FindPodByIp(IpKey ip) const {
  auto it = pod_by_ip_.find(ip);
  if (it == pod_by_ip_.end()) return std::nullopt;
  return it->second;
}

const PodChain* CompiledPolicy::Chain(size_t pod, Direction d) const {
  auto it = chain_index_.find({pod, static_cast<int>(d)});
  return it == chain_index_.end() ? nullptr : &chains_[it->second];
}

std::string CompiledPolicy::DescribeRule(const CompiledRule& r) const {
  const Policy& p = policies_[r.policy];
  std::string s =
      fmt::format("{} by {} {}[{}]", ActionName(r.action), p.Id(), DirectionName(r.direction), r.rule_index);
  if (p.tier != kDefaultTier) s += " in tier " + p.tier;
  return s;
}

Decision CompiledPolicy::Evaluate(size_t pod, Direction d, IpKey peer, const Packet& pkt) const {
  const PodChain* chain = Chain(pod, d);
  if (!chain) return Unisolated(pods_[pod], d, local_node_);
  Decision out;
  out.isolated = true;
  const CompiledRule* passed_by = nullptr;  // the Pass rule that left the last part
  for (const auto& part : chain->tiers) {
    bool pass = false;
    for (size_t i = part.first_rule; i < part.end_rule && !pass; i++) {
      const CompiledRule& r = chain->rules[i];
      if (!r.Matches(sets_, peer, pkt)) continue;
      switch (r.action) {
        case Action::kLog: out.logged.push_back(DescribeRule(r)); break;
        case Action::kPass:
          pass = true;
          passed_by = &r;
          break;
        case Action::kAllow:
        case Action::kDeny:
          Decide(*this, r, &out);
          out.allowed = r.action == Action::kAllow;
          out.tier = part.tier;
          return out;
      }
    }
    if (pass || part.default_pass) {
      out.passed.push_back(part.tier);
      if (!pass) passed_by = nullptr;
      continue;
    }
    std::vector<std::string> ids;
    for (size_t pi : part.policies) ids.push_back(policies_[pi].Id());
    out.allowed = false;
    out.tier = part.tier;
    out.counter = part.chain + "_drop";
    std::string where = part.tier == kDefaultTier ? "" : fmt::format(" in tier {}", part.tier);
    if (!part.known) where += " (no such Tier: it ends in deny)";
    else if (part.tier != kDefaultTier) where += " (default action Deny)";
    out.reason = fmt::format("no rule matched{}; {} is isolated for {} by {}", where, pods_[pod].Key(),
                             DirectionName(d), Join(ids, ", "));
    return out;
  }
  // Past the last tier: the namespace profile allows.
  out.allowed = true;
  if (passed_by) {
    Decide(*this, *passed_by, &out);
    out.reason += out.passed.size() == 1 ? " (skips the rest of the tier; the namespace profile allows)"
                                         : " (no later tier decides; the namespace profile allows)";
  } else {
    out.reason = fmt::format("tiers {} passed; the namespace profile allows", Join(out.passed, ", "));
  }
  return out;
}

Result<Explanation> CompiledPolicy::Explain(const std::string& from, const std::string& to, const Packet& pkt) const {
  // One family for both ends: a packet has one. IPv6 when asked, or when
  // an end is written as an IPv6 address.
  if (pkt.ip_version != 0 && pkt.ip_version != 4 && pkt.ip_version != 6) {
    return Errorf(ErrorCode::kInvalidArgument, "IP version {} is neither 4 nor 6", pkt.ip_version);
  }
  auto literal6 = [](const std::string& s) { return s.find(':') != std::string::npos; };
  const bool v6 = pkt.ip_version == 6 || literal6(from) || literal6(to);
  auto resolve = [&](const std::string& what) -> Result<std::pair<std::optional<size_t>, IpKey>> {
    if (auto pod = FindPod(what)) {
      const PodInfo& p = pods_[*pod];
      if (!p.ip) {
        return Errorf(ErrorCode::kNotFound, "pod {} has no IPv4 address yet; retry once it is running", what);
      }
      if (v6 && !p.ipv6) {
        return Errorf(ErrorCode::kNotFound,
                      "pod {} has no IPv6 address (not dual stack, or not yet): explain this flow over IPv4", what);
      }
      return std::make_pair(pod, v6 ? KeyOf(*p.ipv6) : KeyOf(*p.ip));
    }
    auto ip = ParseIpKey(what);
    if (!ip.ok()) {
      return Errorf(ErrorCode::kNotFound, "\"{}\" is neither a known pod (namespace/name) nor an IPv4 or IPv6 address",
                    what);
    }
    if (IsIpv4Key(*ip) == v6) {
      return Errorf(ErrorCode::kInvalidArgument, "{} is an {} address but the flow is {}: give both ends in one family",
                    what, v6 ? "IPv4" : "IPv6", v6 ? "IPv6" : "IPv4");
    }
    return std::make_pair(FindPodByIp(*ip), *ip);
  };
  TERWAY_ASSIGN_OR_RETURN(auto src, resolve(from));
  TERWAY_ASSIGN_OR_RETURN(auto dst, resolve(to));
  if (v6 && pkt.protocol == Protocol::kICMP) {
    return Errorf(ErrorCode::kInvalidArgument, "an IPv6 flow carries ICMPv6, not ICMP: ask for protocol ICMPv6");
  }
  Explanation e;
  std::string flow = fmt::format("{} -> {} {}", PodOrIp(*this, src.first, src.second),
                                 PodOrIp(*this, dst.first, dst.second), pkt.ToString());
  if (dst.first) {
    auto node = node_ips_.find(pods_[*dst.first].node);
    if (node != node_ips_.end() &&
        std::any_of(node->second.begin(), node->second.end(), [&](Ipv4Addr a) { return KeyOf(a) == src.second; })) {
      e.ingress.reason = "from the pod's own node: always allowed";
      e.egress.reason = "the node is not a pod";
      e.summary = "ALLOW " + flow;
      return e;
    }
  }
  if (src.first) e.egress = Evaluate(*src.first, Direction::kEgress, dst.second, pkt);
  else e.egress.reason = "the source is not a pod";
  if (dst.first) e.ingress = Evaluate(*dst.first, Direction::kIngress, src.second, pkt);
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
    for (const auto& t : d.passed) s += "\n    passed tier: " + t;
    return s;
  };
  return summary + "\n" + line("egress of source", egress) + "\n" + line("ingress of destination", ingress) + "\n";
}

}  // namespace terway::policy
