#include "datapath/wiring_engine.h"

#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <optional>

#include "common/log.h"
#include "common/strings.h"
#include "datapath/wiring_engine_stale.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "netlink/sysctl.h"

namespace terway::datapath {

using netlink::Handle;
using netlink::InetAddr;

namespace {

Result<Handle> OpenNs(const std::string& netns) {
  if (netns.empty()) return Handle::Open();
  return Handle::OpenIn(netns);
}

bool NotFound(const Error& e) { return e.code == ErrorCode::kNotFound; }

std::string Where(const NamespacePlan& ns) { return "the " + ns.label + " namespace"; }

// Where a link goes back to: the namespace's name or path, or for "" (the
// calling thread's namespace) a path the calling thread resolves to its own.
std::string HomePath(const std::string& netns) {
  return netns.empty() ? std::string("/proc/thread-self/ns/net") : netns;
}

Status RefuseBpf(const WiringPlan& plan) {
  for (const auto& ns : plan.namespaces) {
    if (!ns.bpf_programs.empty() || !ns.bpf_map_entries.empty()) {
      return Errorf(ErrorCode::kUnsupported,
                    "the wiring plan for {} has eBPF programs or map entries: this engine does not load BPF "
                    "yet; use a mode without eBPF (veth + policy routing)",
                    Where(ns));
    }
  }
  return Ok();
}

// The kernel route a plan's route becomes, on the link with index oif.
netlink::Route ToRoute(const RoutePlan& r, int oif) {
  netlink::Route k;
  k.dst = r.dst;
  k.table = r.table;
  k.oif = oif;
  k.gateway = r.via;
  k.src = r.src;
  k.onlink = r.onlink;
  k.scope = r.scope;
  return k;
}

netlink::Rule ToRule(const RulePlan& r) {
  netlink::Rule k;
  k.family = AF_INET;
  if (r.from) k.family = r.from->family();
  else if (r.to) k.family = r.to->family();
  k.priority = r.priority;
  k.src = r.from;
  k.dst = r.to;
  k.table = r.table;
  return k;
}

// Same selector: the kernel rule is the plan's rule, whatever table it points to.
bool SameSelector(const netlink::Rule& k, const RulePlan& r) {
  return k.priority == r.priority && k.src == r.from && k.dst == r.to && k.iif.empty() && k.oif.empty() &&
         k.fwmark == 0;
}

bool RouteMatches(const netlink::Route& k, const RoutePlan& r, int oif) {
  return k.dst == r.dst && k.type == netlink::RouteType::kUnicast && k.oif == oif && k.gateway == r.via &&
         (!r.src || k.src == r.src);
}

// One open handle per namespace of the plan; nullopt for a pod namespace
// that no longer exists.
struct Handles {
  std::vector<std::optional<Handle>> h;
  Handle& at(size_t i) { return *h[i]; }
};

Result<Handles> OpenAll(const WiringPlan& plan, bool tolerate_gone) {
  Handles out;
  for (const auto& ns : plan.namespaces) {
    if (!ns.netns.empty() && !netlink::NetnsExists(ns.netns)) {
      if (tolerate_gone) {
        out.h.emplace_back(std::nullopt);
        continue;
      }
      return Errorf(ErrorCode::kNotFound, "network namespace {} ({}) is gone", ns.netns, ns.label);
    }
    auto h = OpenNs(ns.netns);
    if (!h.ok()) {
      if (tolerate_gone && NotFound(h.error())) {
        out.h.emplace_back(std::nullopt);
        continue;
      }
      return std::move(h).error().Wrap("opening " + Where(ns) + (ns.netns.empty() ? "" : " " + ns.netns));
    }
    out.h.emplace_back(std::move(*h));
  }
  return out;
}

Result<netlink::Link> FindLink(Handle& h, const NamespacePlan& ns, const std::string& name) {
  auto l = h.GetLink(name);
  if (!l.ok()) return std::move(l).error().Wrap("finding link " + name + " in " + Where(ns));
  return l;
}

// The pod ends (names in namespace i) of the veths of the plan that are ours.
std::vector<std::string> OwnedPeers(const WiringPlan& plan, size_t i) {
  std::vector<std::string> out;
  for (const auto& ns : plan.namespaces) {
    for (const auto& lp : ns.links) {
      if (lp.kind == LinkKind::kVeth && lp.owned && lp.peer_ns == i) out.push_back(lp.peer_name);
    }
  }
  return out;
}

// ---- apply -----------------------------------------------------------------

// A link found by MAC: moved here from its home namespace if need be, and
// renamed to the plan's name.
Status PlaceMovedLink(const WiringPlan& plan, Handles& hs, size_t i, const LinkPlan& lp, ApplyReport& rep) {
  const NamespacePlan& ns = plan.namespaces[i];
  Handle& h = hs.at(i);
  auto link = h.GetLinkByMac(lp.mac);
  if (!link.ok()) {
    if (!NotFound(link.error())) return std::move(link).error();
    Handle& home = hs.at(lp.home_ns);
    auto there = home.GetLinkByMac(lp.mac);
    if (!there.ok()) {
      return std::move(there).error().Wrap(fmt::format(
          "finding the link with MAC {} in {}: is the ENI attached to this instance? (an attached ENI shows "
          "up as a link with its MAC)",
          lp.mac.ToString(), Where(plan.namespaces[lp.home_ns])));
    }
    rep.moved_link = true;
    Status moved = home.MoveToNetns(there->index, ns.netns);
    if (!moved.ok() && moved.error().code == ErrorCode::kAlreadyExists) {
      // The target already has a link of this one's name: park it under its
      // own name first (renaming needs the link down).
      if (there->admin_up) TERWAY_TRY(home.SetLinkDown(there->index));
      TERWAY_TRY(home.SetName(there->index, lp.parked_name));
      moved = home.MoveToNetns(there->index, ns.netns);
    }
    TERWAY_TRY_CTX(std::move(moved), fmt::format("moving link {} into {}", there->name, Where(ns)));
    link = h.GetLinkByMac(lp.mac);
    if (!link.ok()) return std::move(link).error().Wrap("finding the link with MAC " + lp.mac.ToString() + " after moving it");
  }
  if (link->name == lp.name) return Ok();
  auto other = h.GetLink(lp.name);
  if (other.ok() && other->index != link->index) {
    // A leftover of an interrupted ADD (or an earlier sandbox of the same
    // container): the name belongs to the moved link.
    TERWAY_TRY_CTX(h.DeleteLink(other->index), "removing leftover " + lp.name + " in " + Where(ns));
  }
  if (link->admin_up) TERWAY_TRY(h.SetLinkDown(link->index));
  TERWAY_TRY_CTX(h.SetName(link->index, lp.name), "renaming link " + link->name + " to " + lp.name);
  return Ok();
}

// A veth of ours: kept if it still is the pair the plan describes (our
// alias, its peer the planned link in the peer namespace), else rebuilt --
// a leftover of an earlier sandbox or an interrupted ADD must not be
// reported as a working pod.
Status PlaceVeth(const WiringPlan& plan, Handles& hs, size_t i, const LinkPlan& lp, ApplyReport& rep) {
  const NamespacePlan& ns = plan.namespaces[i];
  Handle& h = hs.at(i);
  Handle& peer_h = hs.at(lp.peer_ns);
  auto hl = h.GetLink(lp.name);
  if (hl.ok()) {
    auto pl = peer_h.GetLink(lp.peer_name);
    bool ours = (lp.alias.empty() || hl->alias == lp.alias) && hl->peer_in_other_netns && pl.ok() &&
                pl->index == hl->peer_index && pl->kind == "veth";
    if (ours) return Ok();
    TERWAY_TRY_CTX(h.DeleteLinkIfExists(lp.name), "replacing stale veth " + lp.name + " in " + Where(ns));
  } else if (!NotFound(hl.error())) {
    return std::move(hl).error();
  }
  // A link of the peer's name is a leftover whose other end is gone.
  TERWAY_TRY_CTX(peer_h.DeleteLinkIfExists(lp.peer_name),
                 "removing leftover " + lp.peer_name + " in " + Where(plan.namespaces[lp.peer_ns]));
  netlink::VethSpec spec;
  spec.name = lp.name;
  spec.peer_name = lp.peer_name;
  spec.peer_netns = plan.namespaces[lp.peer_ns].netns;
  spec.mtu = lp.mtu;
  TERWAY_TRY_CTX(h.CreateVeth(spec), "creating veth " + lp.name);
  rep.created_link = true;
  return Ok();
}

Status SetLinkSettings(Handle& h, const NamespacePlan& ns, const LinkPlan& lp) {
  TERWAY_ASSIGN_OR_RETURN(netlink::Link l, FindLink(h, ns, lp.name));
  if (!lp.alias.empty() && l.alias != lp.alias) TERWAY_TRY(h.SetAlias(l.index, lp.alias));
  if (lp.mtu > 0 && l.mtu != lp.mtu) TERWAY_TRY_CTX(h.SetMtu(l.index, lp.mtu), "setting MTU of " + lp.name);
  return Ok();
}

Status ApplySysctls(const NamespacePlan& ns) {
  for (const auto& s : ns.sysctls) {
    if (s.only_when) {
      auto cur = netlink::GetSysctl(ns.netns, s.key);
      if (!cur.ok() || std::string(Trim(*cur)) != *s.only_when) continue;
    }
    TERWAY_TRY_CTX(netlink::SetSysctl(ns.netns, s.key, s.value), "setting " + s.key + "=" + s.value + " in " + Where(ns));
  }
  return Ok();
}

Status ApplyRoute(Handle& h, const NamespacePlan& ns, const RoutePlan& r) {
  TERWAY_ASSIGN_OR_RETURN(netlink::Link dev, FindLink(h, ns, r.dev));
  Status s = h.ReplaceRoute(ToRoute(r, dev.index));
  if (s.ok()) return s;
  Error e = std::move(s).error();
  if (r.onlink && e.sys_errno == EINVAL) {
    // Seen in bare namespaces: the kernel checks an onlink gateway against
    // the local table, which does not exist while no address is up.
    e.message += " (is lo up in " + Where(ns) +
                 "? the kernel validates an onlink gateway against the local table)";
  }
  return std::move(e).Wrap(Describe(r) + " in " + Where(ns));
}

Status ApplyRules(Handle& h, const NamespacePlan& ns) {
  if (ns.rules.empty()) return Ok();
  TERWAY_ASSIGN_OR_RETURN(auto rules, h.ListRules(0));
  for (const auto& r : ns.rules) {
    // The same selector pointing elsewhere is stale (an ENI re-attached with
    // a new ifindex, an IP moved to another ENI): both would match.
    for (const auto& k : rules) {
      if (SameSelector(k, r) && k.table != r.table) TERWAY_TRY(h.DeleteRuleIfExists(k));
    }
    TERWAY_TRY_CTX(h.EnsureRule(ToRule(r)), Describe(r) + " in " + Where(ns));
  }
  return Ok();
}

Result<MacAddr> NeighborMac(Handles& hs, const WiringPlan& plan, const NeighborPlan& n) {
  if (n.mac) return *n.mac;
  TERWAY_ASSIGN_OR_RETURN(netlink::Link l, FindLink(hs.at(n.mac_of_ns), plan.namespaces[n.mac_of_ns], n.mac_of));
  return l.mac;
}

// The plan's proxy entries, and none of the same IPs on other links (a stale
// one of an ENI re-attached, or of an IP that moved to another ENI).
Status ApplyProxyNeighbors(Handle& h, const NamespacePlan& ns) {
  if (ns.proxy_neighbors.empty()) return Ok();
  TERWAY_ASSIGN_OR_RETURN(auto existing, h.ListProxyNeighbors());
  for (const auto& p : ns.proxy_neighbors) {
    TERWAY_ASSIGN_OR_RETURN(netlink::Link dev, FindLink(h, ns, p.dev));
    for (const auto& k : existing) {
      if (k.ip == p.ip && k.link_index != dev.index) {
        TERWAY_TRY_CTX(h.DeleteProxyNeighborIfExists(k), "removing a stale proxy neighbour " + p.ip.ToString());
      }
    }
    TERWAY_TRY_CTX(h.ReplaceProxyNeighbor({dev.index, p.ip}), Describe(p) + " in " + Where(ns));
  }
  return Ok();
}

Status ApplyQdisc(Handle& h, const NamespacePlan& ns, const QdiscPlan& q) {
  if (q.kind != "clsact") {
    return Errorf(ErrorCode::kUnsupported, "qdisc {} on {} in {}: the wiring engine only places clsact", q.kind,
                  q.dev, Where(ns));
  }
  TERWAY_ASSIGN_OR_RETURN(netlink::Link dev, FindLink(h, ns, q.dev));
  return h.EnsureClsact(dev.index);
}

Status FillReportLinks(Handles& hs, const WiringPlan& plan, ApplyReport& rep) {
  rep.report_macs.clear();
  rep.report_indexes.clear();
  for (const auto& itf : plan.report.interfaces) {
    TERWAY_ASSIGN_OR_RETURN(netlink::Link l, FindLink(hs.at(itf.ns), plan.namespaces[itf.ns], itf.name));
    rep.report_macs.push_back(l.mac);
    rep.report_indexes.push_back(l.index);
  }
  return Ok();
}

}  // namespace

std::string JoinDifferences(const std::vector<Difference>& d) {
  std::string out;
  for (const auto& x : d) {
    if (!out.empty()) out += "; ";
    out += x.what;
  }
  return out;
}

Status ApplyPlan(const WiringPlan& plan, ApplyReport& rep, const BeforeLinksUp& before_up) {
  if (!plan.complete) {
    return MakeError(ErrorCode::kInternal, "applying a wiring plan made without its ENI's facts (removal only)");
  }
  TERWAY_TRY(RefuseBpf(plan));
  TERWAY_ASSIGN_OR_RETURN(Handles hs, OpenAll(plan, /*tolerate_gone=*/false));
  rep = ApplyReport{};
  const size_t n = plan.namespaces.size();
  // Addresses the pod no longer has (wiring_engine_stale.h) first, while
  // the veth still leads to them: a veth rebuilt below would take their
  // routes with it, and nothing would lead to their rules and proxy entries.
  for (size_t i = 0; i < n; ++i) {
    TERWAY_ASSIGN_OR_RETURN(auto stale, FindStaleVethRoutes(hs.at(i), plan.namespaces[i]));
    for (const auto& r : stale) TERWAY_TRY(ForgetVethAddress(hs.at(i), plan.namespaces[i], r));
  }
  // Links: moved ones first (nothing is created for a pod whose ENI is not
  // there), then veths, then the settings of every link, all still down.
  for (size_t i = 0; i < n; ++i) {
    for (const auto& l : plan.namespaces[i].links) {
      if (l.kind == LinkKind::kMovedByMac) TERWAY_TRY(PlaceMovedLink(plan, hs, i, l, rep));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (const auto& l : plan.namespaces[i].links) {
      if (l.kind == LinkKind::kVeth) TERWAY_TRY(PlaceVeth(plan, hs, i, l, rep));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    for (const auto& l : plan.namespaces[i].links) TERWAY_TRY(SetLinkSettings(hs.at(i), plan.namespaces[i], l));
  }
  if (before_up) TERWAY_TRY(before_up());
  // Sysctls while every link exists and none of ours is up yet: a link's
  // settings then hold from its first packet (accept_dad=0 before up, say,
  // or DAD starts on its link-local).
  for (size_t i = 0; i < n; ++i) TERWAY_TRY(ApplySysctls(plan.namespaces[i]));
  for (size_t i = 0; i < n; ++i) {
    const NamespacePlan& ns = plan.namespaces[i];
    for (const auto& l : ns.links) {
      if (!l.up) continue;
      TERWAY_ASSIGN_OR_RETURN(netlink::Link k, FindLink(hs.at(i), ns, l.name));
      if (!k.admin_up) TERWAY_TRY_CTX(hs.at(i).SetLinkUp(k.index), "bringing up " + l.name + " in " + Where(ns));
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const NamespacePlan& ns = plan.namespaces[i];
    Handle& h = hs.at(i);
    for (const auto& a : ns.addresses) {
      TERWAY_ASSIGN_OR_RETURN(netlink::Link dev, FindLink(h, ns, a.dev));
      netlink::Address addr;
      addr.link_index = dev.index;
      addr.local = a.local;
      addr.nodad = a.nodad;
      TERWAY_TRY_CTX(h.EnsureAddress(addr), "address " + a.local.ToString() + " on " + a.dev + " in " + Where(ns));
    }
    // The pod's end of a veth kept from an earlier wiring keeps the
    // addresses it had: the pod would still use one it no longer holds.
    for (const auto& dev : OwnedPeers(plan, i)) {
      TERWAY_ASSIGN_OR_RETURN(auto stale, FindStalePeerAddresses(h, ns, dev));
      for (const auto& a : stale) {
        TERWAY_TRY_CTX(h.DeleteAddressIfExists(a), "removing address " + a.local.ToString() + " (no longer the "
                                                       "pod's) from " + dev + " in " + Where(ns));
      }
    }
    for (const auto& r : ns.routes) TERWAY_TRY(ApplyRoute(h, ns, r));
    TERWAY_TRY(ApplyRules(h, ns));
    for (const auto& nb : ns.neighbors) {
      TERWAY_ASSIGN_OR_RETURN(netlink::Link dev, FindLink(h, ns, nb.dev));
      TERWAY_ASSIGN_OR_RETURN(MacAddr mac, NeighborMac(hs, plan, nb));
      netlink::Neighbor k;
      k.link_index = dev.index;
      k.ip = nb.ip;
      k.mac = mac;
      TERWAY_TRY_CTX(h.ReplaceNeighbor(k), Describe(nb, mac.ToString()) + " in " + Where(ns));
    }
    TERWAY_TRY(ApplyProxyNeighbors(h, ns));
    for (const auto& q : ns.qdiscs) TERWAY_TRY(ApplyQdisc(h, ns, q));
  }
  return FillReportLinks(hs, plan, rep);
}

// ---- diff ------------------------------------------------------------------

namespace {

struct NsDiff {
  const WiringPlan& plan;
  Handles& hs;
  size_t i;
  std::vector<Difference>& out;
  std::map<std::string, netlink::Link> links;  // found by the plan's names

  const NamespacePlan& ns() const { return plan.namespaces[i]; }
  void Add(std::string what) { out.push_back({ns().label, std::move(what)}); }
  std::string In() const { return " in the " + ns().label; }

  Status Links() {
    Handle& h = hs.at(i);
    for (const auto& lp : ns().links) {
      std::optional<netlink::Link> l;
      if (lp.kind == LinkKind::kMovedByMac) {
        auto k = h.GetLinkByMac(lp.mac);
        if (!k.ok()) {
          if (!NotFound(k.error())) return std::move(k).error();
          Add(fmt::format("the {} has no link with MAC {} (to be {})", ns().label, lp.mac.ToString(), lp.name));
          continue;
        }
        if (k->name != lp.name) {
          Add(fmt::format("the link with MAC {} is '{}'{}, not {}", lp.mac.ToString(), k->name, In(), lp.name));
          continue;
        }
        l = *k;
      } else {
        auto k = h.GetLink(lp.name);
        if (!k.ok()) {
          if (!NotFound(k.error())) return std::move(k).error();
          Add("link " + lp.name + " is missing" + In());
          continue;
        }
        l = *k;
      }
      links[lp.name] = *l;
      if (lp.up && !l->admin_up) Add("link " + lp.name + " is down" + In());
      if (lp.mtu > 0 && l->mtu != lp.mtu) {
        Add(fmt::format("link {} has MTU {}{}, want {}", lp.name, l->mtu, In(), lp.mtu));
      }
      if (!lp.alias.empty() && l->alias != lp.alias) {
        Add(fmt::format("link {}{} belongs to '{}', not to this pod ('{}')", lp.name, In(), l->alias, lp.alias));
      }
    }
    return Ok();
  }

  // Veth pairs, once both namespaces' links are known.
  void Peers(const std::vector<NsDiff>& all) {
    for (const auto& lp : ns().links) {
      if (lp.kind != LinkKind::kVeth || !links.count(lp.name)) continue;
      const NsDiff& peer = all[lp.peer_ns];
      auto it = peer.links.find(lp.peer_name);
      if (it == peer.links.end()) continue;  // reported missing there
      const netlink::Link& hl = links.at(lp.name);
      if (!hl.peer_in_other_netns || hl.peer_index != it->second.index || it->second.kind != "veth") {
        Add(fmt::format("link {} in the {} is not the peer of veth {}", lp.peer_name, peer.ns().label, lp.name));
      }
    }
  }

  int Index(const std::string& dev) const {
    auto it = links.find(dev);
    return it == links.end() ? 0 : it->second.index;
  }

  Status Rest(const std::vector<NsDiff>& all) {
    Handle& h = hs.at(i);
    for (const auto& s : ns().sysctls) {
      auto cur = netlink::GetSysctl(ns().netns, s.key);
      std::string v = cur.ok() ? std::string(Trim(*cur)) : "(unreadable)";
      if (s.only_when ? v == *s.only_when : v != s.value) {
        Add(fmt::format("sysctl {} is {}{}, want {}", s.key, v, In(), s.value));
      }
    }
    for (const auto& a : ns().addresses) {
      bool found = false;
      if (int idx = Index(a.dev)) {
        TERWAY_ASSIGN_OR_RETURN(auto addrs, h.ListAddresses(idx, a.local.family()));
        for (const auto& k : addrs) found = found || k.local == a.local;
      }
      if (!found) Add("address " + a.local.ToString() + " on " + a.dev + " is missing" + In());
    }
    // Per family and table: one table holds routes of both families.
    std::map<std::pair<int, uint32_t>, std::vector<netlink::Route>> tables;
    for (const auto& r : ns().routes) {
      int idx = Index(r.dev);
      const auto key = std::make_pair(r.dst.family(), r.table);
      if (!tables.count(key)) {
        TERWAY_ASSIGN_OR_RETURN(tables[key], h.ListRoutes(r.dst.family(), r.table));
      }
      bool match = false, same_dst = false;
      for (const auto& k : tables[key]) {
        match = match || (idx && RouteMatches(k, r, idx));
        same_dst = same_dst || (k.dst == r.dst && k.type == netlink::RouteType::kUnicast);
      }
      if (match) continue;
      Add(Describe(r) + (same_dst && idx ? " differs" : " is missing") + In());
    }
    if (!ns().rules.empty()) {
      TERWAY_ASSIGN_OR_RETURN(auto rules, h.ListRules(0));
      for (const auto& r : ns().rules) {
        bool found = false;
        std::optional<uint32_t> elsewhere;
        for (const auto& k : rules) {
          if (!SameSelector(k, r)) continue;
          if (k.table == r.table) found = true;
          else elsewhere = k.table;
        }
        if (elsewhere) {
          Add(fmt::format("{} points to the wrong table {}{}", Describe(r), *elsewhere, In()));
        } else if (!found) {
          Add(Describe(r) + " is missing" + In());
        }
      }
    }
    for (const auto& n : ns().neighbors) {
      std::optional<MacAddr> mac = n.mac;
      if (!mac) {
        auto it = all[n.mac_of_ns].links.find(n.mac_of);
        if (it != all[n.mac_of_ns].links.end()) mac = it->second.mac;
      }
      std::string mac_text = mac ? mac->ToString() : "(MAC of " + n.mac_of + ")";
      bool found = false;
      if (int idx = Index(n.dev); idx && mac) {
        TERWAY_ASSIGN_OR_RETURN(auto neighs, h.ListNeighbors(idx, n.ip.family()));
        for (const auto& k : neighs) found = found || (k.ip == n.ip && k.permanent && k.mac == *mac);
      }
      if (!found) Add(Describe(n, mac_text) + " is missing" + In());
    }
    if (!ns().proxy_neighbors.empty()) {
      TERWAY_ASSIGN_OR_RETURN(auto proxies, h.ListProxyNeighbors());
      for (const auto& p : ns().proxy_neighbors) {
        // The link is one of the plan's (the ENI, kExisting): a missing
        // link is named on its own.
        const int idx = Index(p.dev);
        bool found = false;
        for (const auto& k : proxies) found = found || (idx && k.ip == p.ip && k.link_index == idx);
        if (!found) Add(Describe(p) + " is missing" + In());
      }
    }
    for (const auto& q : ns().qdiscs) {
      bool found = false;
      if (int idx = Index(q.dev)) {
        TERWAY_ASSIGN_OR_RETURN(auto qdiscs, h.ListQdiscs(idx));
        for (const auto& k : qdiscs) found = found || k.kind == q.kind;
      }
      if (!found) Add("qdisc " + q.kind + " on " + q.dev + " is missing" + In());
    }
    if (!ns().bpf_programs.empty() || !ns().bpf_map_entries.empty()) {
      Add("eBPF programs and map entries are not supported by this engine yet" + In());
    }
    return Stale();
  }

  // What an earlier wiring left for addresses the pod no longer has
  // (wiring_engine_stale.h); Apply removes it.
  Status Stale() {
    Handle& h = hs.at(i);
    TERWAY_ASSIGN_OR_RETURN(auto routes, FindStaleVethRoutes(h, ns()));
    for (const auto& r : routes) {
      Add(DescribeVethRoute(r) + " leads to an address the pod no longer has" + In());
    }
    for (const auto& dev : OwnedPeers(plan, i)) {
      TERWAY_ASSIGN_OR_RETURN(auto addrs, FindStalePeerAddresses(h, ns(), dev));
      for (const auto& a : addrs) {
        Add("address " + a.local.ToString() + " on " + dev + " is no longer the pod's" + In());
      }
    }
    return Ok();
  }
};

}  // namespace

Result<std::vector<Difference>> DiffPlan(const WiringPlan& plan, std::vector<MacAddr>* report_macs) {
  if (!plan.complete) {
    return MakeError(ErrorCode::kInternal, "checking against a wiring plan made without its ENI's facts");
  }
  TERWAY_ASSIGN_OR_RETURN(Handles hs, OpenAll(plan, /*tolerate_gone=*/true));
  std::vector<Difference> out;
  std::vector<NsDiff> nss;
  for (size_t i = 0; i < plan.namespaces.size(); ++i) nss.push_back(NsDiff{plan, hs, i, out, {}});
  for (size_t i = 0; i < nss.size(); ++i) {
    if (!hs.h[i]) {
      nss[i].Add("network namespace " + plan.namespaces[i].netns + " is gone");
      continue;
    }
    TERWAY_TRY(nss[i].Links());
  }
  for (size_t i = 0; i < nss.size(); ++i) {
    if (hs.h[i]) nss[i].Peers(nss);
  }
  for (size_t i = 0; i < nss.size(); ++i) {
    if (hs.h[i]) TERWAY_TRY(nss[i].Rest(nss));
  }
  if (report_macs) {
    report_macs->clear();
    for (const auto& itf : plan.report.interfaces) {
      auto it = nss[itf.ns].links.find(itf.name);
      report_macs->push_back(it == nss[itf.ns].links.end() ? MacAddr() : it->second.mac);
    }
  }
  return out;
}

// ---- remove ----------------------------------------------------------------

Status RemovePlan(const WiringPlan& plan) {
  TERWAY_ASSIGN_OR_RETURN(Handles hs, OpenAll(plan, /*tolerate_gone=*/true));
  // Moved links go home first: a gone namespace took its links with it (a
  // veth) or sent them back to the initial namespace (a NIC), either way
  // nothing is left to move.
  for (size_t i = 0; i < plan.namespaces.size(); ++i) {
    if (!hs.h[i]) continue;
    const NamespacePlan& ns = plan.namespaces[i];
    Handle& h = hs.at(i);
    for (const auto& lp : ns.links) {
      if (lp.kind != LinkKind::kMovedByMac || !lp.owned) continue;
      auto l = h.GetLinkByMac(lp.mac);
      if (!l.ok()) {
        if (NotFound(l.error())) continue;
        return std::move(l).error().Wrap("finding the link with MAC " + lp.mac.ToString() + " in " + Where(ns));
      }
      // Down first: nothing may send through it once it is not the pod's;
      // renamed here, because its name (eth0) is taken at home.
      if (l->admin_up) TERWAY_TRY_CTX(h.SetLinkDown(l->index), "taking " + l->name + " down in " + Where(ns));
      if (l->name != lp.parked_name) TERWAY_TRY_CTX(h.SetName(l->index, lp.parked_name), "renaming " + l->name);
      if (!hs.h[lp.home_ns]) continue;
      TERWAY_TRY_CTX(h.MoveToNetns(l->index, HomePath(plan.namespaces[lp.home_ns].netns)),
                     "moving " + lp.parked_name + " back to " + Where(plan.namespaces[lp.home_ns]));
    }
  }
  for (size_t i = 0; i < plan.namespaces.size(); ++i) {
    if (!hs.h[i]) continue;
    const NamespacePlan& ns = plan.namespaces[i];
    Handle& h = hs.at(i);
    // Addresses the veth leads to that the plan does not know (left by an
    // earlier wiring, wiring_engine_stale.h), read before the veth goes:
    // their rules and proxy entries outlive it.
    TERWAY_ASSIGN_OR_RETURN(auto stale, FindStaleVethRoutes(h, ns));
    for (const auto& lp : ns.links) {
      // Deleting one end deletes the pair and every route through it.
      if (lp.kind == LinkKind::kVeth && lp.owned) {
        TERWAY_TRY_CTX(h.DeleteLinkIfExists(lp.name), "removing veth " + lp.name + " in " + Where(ns));
      }
    }
    bool owns_proxies = false;
    for (const auto& p : ns.proxy_neighbors) owns_proxies = owns_proxies || p.owned;
    if (owns_proxies) {
      // By IP on every link: removal plans have no ENI facts (the ENI may
      // be gone, and with it its entries).
      TERWAY_ASSIGN_OR_RETURN(auto proxies, h.ListProxyNeighbors());
      for (const auto& p : ns.proxy_neighbors) {
        if (!p.owned) continue;
        for (const auto& k : proxies) {
          if (k.ip == p.ip) TERWAY_TRY_CTX(h.DeleteProxyNeighborIfExists(k), "removing " + Describe(p));
        }
      }
    }
    bool owns_rules = false;
    for (const auto& r : ns.rules) owns_rules = owns_rules || r.owned;
    if (owns_rules) {
      TERWAY_ASSIGN_OR_RETURN(auto rules, h.ListRules(0));
      for (const auto& r : ns.rules) {
        if (!r.owned) continue;
        for (const auto& k : rules) {
          if (SameSelector(k, r)) TERWAY_TRY_CTX(h.DeleteRuleIfExists(k), "removing " + Describe(r));
        }
      }
    }
    for (const auto& r : stale) TERWAY_TRY(ForgetVethAddress(h, ns, r));
  }
  return Ok();
}

}  // namespace terway::datapath
