// Anti-spoofing: a pod's packets enter the node from its host veth only with
// the pod's own source addresses. An nftables table of its own, apart from
// the policy table `inet terway` (which may be disabled; this may not):
//
//   table inet terway_antispoof {
//     counter spoofed_ipv4 {}  counter spoofed_ipv6 {}
//     set guarded_ifnames { type ifname; }               host veths of other naming schemes
//     set allowed_ipv4 { type ifname . ipv4_addr; }      (host veth, pod address) pairs
//     set allowed_ipv6 { type ifname . ipv6_addr; }
//     chain prerouting { type filter hook prerouting priority raw; policy accept;
//       iifname "tw*" jump guard                         every host veth of ours: fail closed
//       iifname @guarded_ifnames jump guard }
//     chain guard { meta nfproto vmap { ipv4 : jump guard_ipv4, ipv6 : jump guard_ipv6 }; drop }
//     chain guard_ipv4 { iifname . ip saddr @allowed_ipv4 accept; counter name spoofed_ipv4 drop }
//     chain guard_ipv6 { <link-local that cannot be forwarded> accept;
//                        iifname . ip6 saddr @allowed_ipv6 accept; counter name spoofed_ipv6 drop }
//   }
//
// Why an explicit rule and not rp_filter: the kernel filters with
// max(conf/all, conf/<dev>), and the ENI must be loose (see wiring_planner.cc),
// which a node's `all` = 2 (systemd's default, or ours) imposes on every
// link; rp_filter also knows nothing of IPv6. Why priority raw (-300):
// before conntrack (-200), so a forged packet never creates conntrack state
// that a later reply, or the policy table's "ct state established accept",
// would honour.
//
// Every change is ONE libnftables batch (one kernel transaction). A change
// reads the table first and, when its structure is not what we declare (no
// table yet, a flushed chain, a base chain at another priority), rebuilds
// the structure in place in the same batch: elements and counter values
// survive, and the hook is never absent.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "datapath/pod_datapath.h"
#include "netlink/types.h"

namespace terway::datapath {

inline constexpr const char* kAntiSpoofFamily = "inet";
inline constexpr const char* kAntiSpoofTable = "terway_antispoof";
inline constexpr const char* kGuardedIfnamesSet = "guarded_ifnames";

// One address family the table guards. Supporting a family is one entry in
// AntiSpoofFamilies(): its set, chain and counter are derived from `name`.
struct AntiSpoofFamily {
  std::string name;       // "ipv4": allowed_<name>, guard_<name>, spoofed_<name>
  int af = 0;             // AF_INET / AF_INET6 (of the addresses in its set)
  std::string nfproto;    // value of `meta nfproto`
  std::string addr_type;  // nft type of a source address
  std::string saddr;      // nft expression of the source address
  // Matches accepted before the set lookup, each with why in a comment.
  std::vector<std::string> exempt;

  std::string set() const { return "allowed_" + name; }
  std::string chain() const { return "guard_" + name; }
  std::string counter() const { return "spoofed_" + name; }
};
const std::vector<AntiSpoofFamily>& AntiSpoofFamilies();
// The family of an address; nullptr when no family guards it.
const AntiSpoofFamily* AntiSpoofFamilyOf(const netlink::InetAddr& ip);

// "A packet from host_ifname may carry source ip."
struct AntiSpoofElement {
  std::string ifname;
  netlink::InetAddr ip;
  std::string ToString() const;
  auto operator<=>(const AntiSpoofElement&) const = default;
};

struct AntiSpoofDrops {
  std::string family;  // "ipv4", "ipv6"
  uint64_t packets = 0;
  uint64_t bytes = 0;
  bool operator==(const AntiSpoofDrops&) const = default;
};

// What the kernel holds of our table.
struct AntiSpoofState {
  bool table = false;
  std::set<AntiSpoofElement> allowed;
  std::set<std::string> guarded;  // the explicit guarded_ifnames set
  std::set<std::string> sets, counters;
  std::vector<AntiSpoofDrops> drops;
  struct Chain {
    size_t rules = 0;
    std::string hook, type, policy;  // empty for regular chains
    int priority = 0;
  };
  std::map<std::string, Chain> chains;

  // Whether packets arriving on ifname go through the guard: one of our
  // host veths (prefix) or listed in guarded_ifnames.
  bool Guards(std::string_view ifname) const;
  std::set<netlink::InetAddr> AllowedOn(std::string_view ifname) const;
};

// --- The pure part (unit-tested in tests/unit/datapath) ---

// Interface names go into nft strings: only [A-Za-z0-9_.-], 1..15 bytes, so
// nothing can end the string or become a wildcard ("*").
Status ValidateGuardedIfname(std::string_view ifname);

// Parses `nft -j list table inet terway_antispoof`.
Result<AntiSpoofState> ParseAntiSpoofState(std::string_view nft_json);

// What differs in the table's structure from what we declare ("" when
// nothing does): missing table, set, counter or chain, a chain whose rule
// count differs, a base chain on another hook or priority.
std::string AntiSpoofStructureProblem(const AntiSpoofState& state);

// The batch that makes the structure what we declare, in place: sets and
// counters are added only when missing (elements and values survive),
// chains are flushed and refilled, a base chain on the wrong hook is
// replaced. Apply only when AntiSpoofStructureProblem(state) is not "".
std::string RenderAntiSpoofStructure(const AntiSpoofState& state);

// A change of elements: the batch lines that add and delete them. A delete
// is preceded by an add of the same element, so it never fails on an
// element someone else removed meanwhile.
struct AntiSpoofChange {
  std::set<AntiSpoofElement> add, remove;
  std::set<std::string> guard, unguard;
  bool empty() const { return add.empty() && remove.empty() && guard.empty() && unguard.empty(); }
};
std::string RenderAntiSpoofChange(const AntiSpoofChange& change);

// host_ifname may send with exactly `ips`: its other elements go.
AntiSpoofChange PlanAllow(const AntiSpoofState& state, const std::string& host_ifname,
                          const std::set<netlink::InetAddr>& ips);
AntiSpoofChange PlanRevoke(const AntiSpoofState& state, const std::string& host_ifname,
                           const std::set<netlink::InetAddr>& ips);
// Every element of host_ifname and its explicit guard.
AntiSpoofChange PlanForget(const AntiSpoofState& state, const std::string& host_ifname);
// Elements and guards of interfaces not in `links` (the host's link names).
AntiSpoofChange PlanGarbage(const AntiSpoofState& state, const std::set<std::string>& links);
// When the kernel has no table: `base` is what it should hold before the
// change (its seed), `change` was planned on `base`; the result adds all of
// it to the table being created (nothing exists to remove).
AntiSpoofChange AsCreation(const AntiSpoofState& base, const AntiSpoofChange& change);

// Where a table that is created (first use, or after someone deleted it)
// takes the elements of pods that are already running, so none of them is
// cut off until its own repair.
using AntiSpoofSeed = std::function<Result<std::set<AntiSpoofElement>>()>;
// The pods' host veths in netns, as their aliases record them
// ("terway-pod:<ip>:<container id>", layout.h): written by us, in the host
// namespace, where a pod cannot change them.
AntiSpoofSeed SeedFromPodLinkAliases(std::string netns);

// --- The kernel side ---

// The table in one network namespace (a name under /var/run/netns or a path;
// "" = the calling thread's). Mutations are serialised process-wide (each
// reads the table, then writes one batch computed from it), so several
// instances for the same namespace are safe.
//
// Without a seed, only Ensure and Allow create a missing table (creating it
// guards every "tw*" veth, and one without an element is cut off). With a
// seed, every mutation restores a missing table with the seed's elements.
class AntiSpoofTable {
 public:
  explicit AntiSpoofTable(std::string netns = "", AntiSpoofSeed seed = {})
      : netns_(std::move(netns)), seed_(std::move(seed)) {}

  // Creates the table, or repairs its structure; elements are kept. Cheap
  // when all is well (one read): fit for a periodic reconcile, which then
  // restores a table someone deleted (`nft flush ruleset`) within a round.
  Status Ensure();
  // host_ifname may send with exactly `ips` (at least one): elements of the
  // interface with other addresses are removed in the same transaction, and
  // an interface the "tw*" wildcard does not cover is added to
  // guarded_ifnames (host veths of other naming schemes, e.g. upstream
  // Terway's cali<11 hex> adopted at a takeover).
  Status Allow(const std::string& host_ifname, const std::vector<netlink::InetAddr>& ips);
  // Removes those elements; the interface stays guarded (with no element
  // left, everything it sends is dropped).
  Status Revoke(const std::string& host_ifname, const std::vector<netlink::InetAddr>& ips);
  // Removes every element of the interface and its explicit guard (its
  // link is gone, or about to be).
  Status Forget(const std::string& host_ifname);
  // The kernel's view of the table (table = false when there is none).
  Result<AntiSpoofState> List() const;
  // Ok when the structure is intact and (host_ifname, ip) is allowed and
  // guarded; otherwise an error naming what is missing.
  Status Check(const std::string& host_ifname, const netlink::InetAddr& ip) const;
  // Removes elements and guards of interfaces that no longer exist in the
  // namespace; returns one line per removed object, for the log.
  Result<std::vector<std::string>> CollectGarbage();
  // Packets and bytes dropped per family since the table was created: for
  // terwayd's metrics and `terway-cli`. Zero values when there is no table.
  Result<std::vector<AntiSpoofDrops>> ReadDrops() const;
  // Deletes the table; success when it is gone already (tests, uninstall).
  Status Remove();

 private:
  // Reads the table, applies plan(state) and the structure repair it needs
  // in one batch.
  Status Mutate(const std::string& what, bool create,
                const std::function<Result<AntiSpoofChange>(const AntiSpoofState&)>& plan);

  std::string netns_;
  AntiSpoofSeed seed_;
};

// An adopted pod (wired by another plugin, PodNetwork::host_veth set): its
// foreign host veth may send only with the pod's address. Both datapaths.
Status GuardAdoptedPod(AntiSpoofTable& table, const PodNetwork& pod);

}  // namespace terway::datapath
