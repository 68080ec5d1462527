// The pure part of the anti-spoofing table: the structure it declares and
// how it is repaired, element changes, parsing what nft lists, and the plans
// of Allow / Revoke / Forget / garbage collection. The kernel side is proven
// with real traffic in tests/root/datapath/anti_spoof_root_test.cc.
#include "datapath/anti_spoof.h"

#include <gtest/gtest.h>

#include "datapath/layout.h"

namespace terway::datapath {
namespace {

using netlink::InetAddr;

InetAddr A(const char* s) { return InetAddr::Parse(s).value(); }
bool Has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// `nft -j list table inet terway_antispoof` as nft 1.0.6 printed it for a
// table with a guarded cali veth, one IPv4 and one IPv6 element, and 7
// packets counted as spoofed IPv4 (RenderAntiSpoofStructure's output,
// applied with the elements below, then listed).
constexpr const char* kListed = R"json({"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "terway_antispoof", "handle": 1}}, {"counter": {"family": "inet", "name": "spoofed_ipv4", "table": "terway_antispoof", "handle": 3, "packets": 7, "bytes": 560}}, {"counter": {"family": "inet", "name": "spoofed_ipv6", "table": "terway_antispoof", "handle": 5, "packets": 0, "bytes": 0}}, {"set": {"family": "inet", "name": "guarded_ifnames", "table": "terway_antispoof", "type": "ifname", "handle": 1, "elem": ["cali0123456789a"]}}, {"set": {"family": "inet", "name": "allowed_ipv4", "table": "terway_antispoof", "type": ["ifname", "ipv4_addr"], "handle": 2, "elem": [{"concat": ["cali0123456789a", "198.18.1.22"]}]}}, {"set": {"family": "inet", "name": "allowed_ipv6", "table": "terway_antispoof", "type": ["ifname", "ipv6_addr"], "handle": 4, "elem": [{"concat": ["tw0123456789abc", "2001:db8::15"]}]}}, {"chain": {"family": "inet", "table": "terway_antispoof", "name": "guard_ipv4", "handle": 6}}, {"chain": {"family": "inet", "table": "terway_antispoof", "name": "guard_ipv6", "handle": 7}}, {"chain": {"family": "inet", "table": "terway_antispoof", "name": "guard", "handle": 8}}, {"chain": {"family": "inet", "table": "terway_antispoof", "name": "prerouting", "handle": 36, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard_ipv4", "handle": 37, "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "iifname"}}, {"payload": {"protocol": "ip", "field": "saddr"}}]}, "right": "@allowed_ipv4"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard_ipv4", "handle": 38, "expr": [{"counter": "spoofed_ipv4"}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard_ipv6", "handle": 41, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"set": ["::", {"prefix": {"addr": "fe80::", "len": 10}}]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": {"set": [{"prefix": {"addr": "fe80::", "len": 10}}, {"prefix": {"addr": "ff02::", "len": 16}}]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard_ipv6", "handle": 42, "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "iifname"}}, {"payload": {"protocol": "ip6", "field": "saddr"}}]}, "right": "@allowed_ipv6"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard_ipv6", "handle": 43, "expr": [{"counter": "spoofed_ipv6"}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard", "handle": 45, "expr": [{"vmap": {"key": {"meta": {"key": "nfproto"}}, "data": {"set": [["ipv4", {"jump": {"target": "guard_ipv4"}}], ["ipv6", {"jump": {"target": "guard_ipv6"}}]]}}}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "guard", "handle": 46, "expr": [{"drop": null}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "prerouting", "handle": 47, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "tw*"}}, {"jump": {"target": "guard"}}]}}, {"rule": {"family": "inet", "table": "terway_antispoof", "chain": "prerouting", "handle": 48, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "@guarded_ifnames"}}, {"jump": {"target": "guard"}}]}}]})json";

AntiSpoofState Listed() { return ParseAntiSpoofState(kListed).value(); }

TEST(AntiSpoofParse, ReadsElementsGuardsCountersAndStructure) {
  auto st = ParseAntiSpoofState(kListed);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_TRUE(st->table);
  EXPECT_EQ(st->allowed, (std::set<AntiSpoofElement>{{"cali0123456789a", A("198.18.1.22")},
                                                      {"tw0123456789abc", A("2001:db8::15")}}));
  EXPECT_EQ(st->guarded, std::set<std::string>{"cali0123456789a"});
  EXPECT_EQ(st->drops, (std::vector<AntiSpoofDrops>{{"ipv4", 7, 560}, {"ipv6", 0, 0}}));
  ASSERT_TRUE(st->chains.count("prerouting"));
  EXPECT_EQ(st->chains.at("prerouting").hook, "prerouting");
  EXPECT_EQ(st->chains.at("prerouting").priority, -300);
  EXPECT_EQ(st->chains.at("prerouting").rules, 2u);
  EXPECT_EQ(st->chains.at("guard_ipv6").rules, 3u);
  EXPECT_EQ(AntiSpoofStructureProblem(*st), "") << "what we render is what we expect to list back";
}

TEST(AntiSpoofParse, RejectsWhatIsNotNftJson) {
  EXPECT_FALSE(ParseAntiSpoofState("not json").ok());
  EXPECT_FALSE(ParseAntiSpoofState(R"({"other": []})").ok());
  // An element of our set that is not (ifname . address): a changed table.
  auto bad = ParseAntiSpoofState(R"({"nftables": [{"set": {"family": "inet", "table": "terway_antispoof",
      "name": "allowed_ipv4", "elem": ["tw1"]}}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(Has(bad.error().ToString(), "allowed_ipv4")) << bad.error().ToString();
}

TEST(AntiSpoofParse, IgnoresOtherTables) {
  auto st = ParseAntiSpoofState(R"({"nftables": [
      {"table": {"family": "inet", "name": "terway"}},
      {"set": {"family": "inet", "table": "terway", "name": "allowed_ipv4",
               "elem": [{"concat": ["tw1", "10.0.0.1"]}]}},
      {"chain": {"family": "ip", "table": "terway_antispoof", "name": "prerouting"}}]})");
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_FALSE(st->table);
  EXPECT_TRUE(st->allowed.empty());
  EXPECT_TRUE(st->chains.empty());
}

TEST(AntiSpoofStructure, DeclaresARawPreroutingGuardOfOurVethsAndTheListedOnes) {
  std::string s = RenderAntiSpoofStructure(AntiSpoofState{});
  // Before conntrack (-200): forged packets never create conntrack state.
  EXPECT_TRUE(Has(s, "add chain inet terway_antispoof prerouting { type filter hook prerouting priority raw; "
                     "policy accept; }")) << s;
  EXPECT_TRUE(Has(s, std::string("prerouting iifname \"") + kHostVethPrefix + "*\" jump guard")) << s;
  EXPECT_TRUE(Has(s, "prerouting iifname @guarded_ifnames jump guard")) << s;
  EXPECT_TRUE(Has(s, "guard meta nfproto vmap { ipv4 : jump guard_ipv4, ipv6 : jump guard_ipv6 }")) << s;
  EXPECT_TRUE(Has(s, "guard_ipv4 iifname . ip saddr @allowed_ipv4 accept")) << s;
  EXPECT_TRUE(Has(s, "guard_ipv4 counter name \"spoofed_ipv4\" drop")) << s;
  EXPECT_TRUE(Has(s, "guard_ipv6 iifname . ip6 saddr @allowed_ipv6 accept")) << s;
  EXPECT_TRUE(Has(s, "guard_ipv6 counter name \"spoofed_ipv6\" drop")) << s;
  // IPv6 without an element: only link-local traffic that cannot be forwarded.
  EXPECT_TRUE(Has(s, "guard_ipv6 ip6 saddr { ::, fe80::/10 } ip6 daddr { fe80::/10, ff02::/16 } accept")) << s;
  // A fresh table: nothing to flush or delete.
  EXPECT_FALSE(Has(s, "flush")) << s;
  EXPECT_FALSE(Has(s, "delete")) << s;
  // Elements and counter values survive a repair: sets and counters are
  // declared with "add" (a no-op when they exist), never flushed.
  EXPECT_TRUE(Has(s, "add set inet terway_antispoof allowed_ipv4 { type ifname . ipv4_addr; }")) << s;
  EXPECT_TRUE(Has(s, "add counter inet terway_antispoof spoofed_ipv4")) << s;
}

TEST(AntiSpoofStructure, EveryFamilyHasItsSetChainAndCounter) {
  std::string s = RenderAntiSpoofStructure(AntiSpoofState{});
  for (const auto& f : AntiSpoofFamilies()) {
    EXPECT_TRUE(Has(s, "add set inet terway_antispoof " + f.set() + " { type ifname . " + f.addr_type + "; }"))
        << f.name;
    EXPECT_TRUE(Has(s, "add counter inet terway_antispoof " + f.counter())) << f.name;
    EXPECT_TRUE(Has(s, f.nfproto + " : jump " + f.chain())) << f.name;
  }
  EXPECT_EQ(AntiSpoofFamilyOf(A("10.0.0.1"))->name, "ipv4");
  EXPECT_EQ(AntiSpoofFamilyOf(A("fd00::1"))->name, "ipv6");
}

TEST(AntiSpoofStructure, ProblemsNameWhatIsBrokenAndTheRepairFixesItInPlace) {
  EXPECT_EQ(AntiSpoofStructureProblem(AntiSpoofState{}), "table inet terway_antispoof is missing");

  // Someone flushed the base chain: no packet is guarded any more.
  AntiSpoofState flushed = Listed();
  flushed.chains["prerouting"].rules = 0;
  EXPECT_EQ(AntiSpoofStructureProblem(flushed), "chain prerouting has 0 rules, not 2");
  std::string repair = RenderAntiSpoofStructure(flushed);
  EXPECT_TRUE(Has(repair, "flush chain inet terway_antispoof prerouting")) << repair;
  EXPECT_FALSE(Has(repair, "delete chain")) << "the hook is right: refilled in place\n" << repair;
  EXPECT_FALSE(Has(repair, "flush set")) << "elements survive";

  // A base chain after conntrack is replaced (a hook cannot change in place).
  AntiSpoofState late = Listed();
  late.chains["prerouting"].priority = 0;
  EXPECT_TRUE(Has(AntiSpoofStructureProblem(late), "priority 0")) << AntiSpoofStructureProblem(late);
  repair = RenderAntiSpoofStructure(late);
  size_t flush = repair.find("flush chain inet terway_antispoof prerouting");
  size_t del = repair.find("delete chain inet terway_antispoof prerouting");
  size_t add = repair.find("add chain inet terway_antispoof prerouting {");
  ASSERT_NE(del, std::string::npos) << repair;
  EXPECT_LT(flush, del);
  EXPECT_LT(del, add);

  AntiSpoofState no_counter = Listed();
  no_counter.counters.erase("spoofed_ipv6");
  no_counter.sets.erase("guarded_ifnames");
  EXPECT_EQ(AntiSpoofStructureProblem(no_counter), "counter spoofed_ipv6 is missing; set guarded_ifnames is missing");
}

TEST(AntiSpoofChange, AddsGuardsFirstAndDeletesOnlyAfterAnAddOfTheSameElement) {
  AntiSpoofChange c;
  c.guard = {"cali0123456789a"};
  c.add = {{"cali0123456789a", A("198.18.1.22")}, {"tw1", A("fd00::2")}};
  c.remove = {{"tw1", A("198.18.1.9")}};
  c.unguard = {"calidead"};
  std::string s = RenderAntiSpoofChange(c);
  EXPECT_EQ(s,
            "add element inet terway_antispoof guarded_ifnames { \"cali0123456789a\" }\n"
            "add element inet terway_antispoof allowed_ipv4 { \"cali0123456789a\" . 198.18.1.22 }\n"
            "add element inet terway_antispoof allowed_ipv6 { \"tw1\" . fd00::2 }\n"
            "add element inet terway_antispoof allowed_ipv4 { \"tw1\" . 198.18.1.9 }\n"
            "delete element inet terway_antispoof allowed_ipv4 { \"tw1\" . 198.18.1.9 }\n"
            "add element inet terway_antispoof guarded_ifnames { \"calidead\" }\n"
            "delete element inet terway_antispoof guarded_ifnames { \"calidead\" }\n");
  EXPECT_EQ(RenderAntiSpoofChange(AntiSpoofChange{}), "");
}

TEST(AntiSpoofPlan, AllowMakesTheInterfacesSourcesExactlyTheGivenOnes) {
  AntiSpoofState st = Listed();
  // A new pod on a tw veth: its element; the wildcard guards the veth.
  AntiSpoofChange fresh = PlanAllow(st, "tw1111111111111", {A("198.18.1.30")});
  EXPECT_EQ(fresh.add, (std::set<AntiSpoofElement>{{"tw1111111111111", A("198.18.1.30")}}));
  EXPECT_TRUE(fresh.remove.empty());
  EXPECT_TRUE(fresh.guard.empty());
  // A veth of another naming scheme is listed as guarded in the same change.
  AntiSpoofChange adopted = PlanAllow(st, "cali9999999999a", {A("198.18.1.40")});
  EXPECT_EQ(adopted.guard, std::set<std::string>{"cali9999999999a"});
  // The same pod again: nothing to do beyond its guard.
  EXPECT_TRUE(PlanAllow(st, "cali0123456789a", {A("198.18.1.22")}).empty());
  // The interface's address changed (a repaired pod with another IP): the
  // old one goes in the same change.
  AntiSpoofChange moved = PlanAllow(st, "cali0123456789a", {A("198.18.1.23")});
  EXPECT_EQ(moved.add, (std::set<AntiSpoofElement>{{"cali0123456789a", A("198.18.1.23")}}));
  EXPECT_EQ(moved.remove, (std::set<AntiSpoofElement>{{"cali0123456789a", A("198.18.1.22")}}));
  // Other interfaces' elements are never touched.
  for (const auto& e : moved.remove) EXPECT_EQ(e.ifname, "cali0123456789a");
}

TEST(AntiSpoofPlan, RevokeKeepsTheGuardForgetDropsEverythingOfTheInterface) {
  AntiSpoofState st = Listed();
  AntiSpoofChange revoke = PlanRevoke(st, "cali0123456789a", {A("198.18.1.22"), A("198.18.1.99")});
  EXPECT_EQ(revoke.remove, (std::set<AntiSpoofElement>{{"cali0123456789a", A("198.18.1.22")}}));
  EXPECT_TRUE(revoke.unguard.empty()) << "with no element left the interface is dropped, not opened";
  AntiSpoofChange forget = PlanForget(st, "cali0123456789a");
  EXPECT_EQ(forget.remove, revoke.remove);
  EXPECT_EQ(forget.unguard, std::set<std::string>{"cali0123456789a"});
  EXPECT_TRUE(PlanForget(st, "tw-unknown").empty());
}

TEST(AntiSpoofPlan, GarbageIsWhatBelongsToInterfacesThatAreGone) {
  AntiSpoofState st = Listed();
  AntiSpoofChange none = PlanGarbage(st, {"lo", "eth0", "cali0123456789a", "tw0123456789abc"});
  EXPECT_TRUE(none.empty());
  AntiSpoofChange gone = PlanGarbage(st, {"lo", "eth0", "tw0123456789abc"});
  EXPECT_EQ(gone.remove, (std::set<AntiSpoofElement>{{"cali0123456789a", A("198.18.1.22")}}));
  EXPECT_EQ(gone.unguard, std::set<std::string>{"cali0123456789a"});
}

// A missing table is created with the running pods' elements (the seed)
// and the change planned on them, all as additions.
TEST(AntiSpoofPlan, CreationAddsTheSeedAndTheChangePlannedOnIt) {
  AntiSpoofState seed;
  seed.allowed = {{"tw1", A("198.18.1.5")}, {"tw2", A("198.18.1.6")}, {"cali0123456789a", A("198.18.1.7")}};
  // The repair of tw2 with a new address: its old one is not created.
  AntiSpoofChange c = AsCreation(seed, PlanAllow(seed, "tw2", {A("198.18.1.9")}));
  EXPECT_EQ(c.add, (std::set<AntiSpoofElement>{{"tw1", A("198.18.1.5")},
                                               {"tw2", A("198.18.1.9")},
                                               {"cali0123456789a", A("198.18.1.7")}}));
  EXPECT_TRUE(c.remove.empty()) << "nothing exists to remove";
  EXPECT_EQ(c.guard, std::set<std::string>{"cali0123456789a"}) << "seeded names outside tw* are guarded too";
  // Forget on a missing table: the seed minus the forgotten interface.
  AntiSpoofChange f = AsCreation(seed, PlanForget(seed, "tw1"));
  EXPECT_EQ(f.add.size(), 2u);
  EXPECT_FALSE(f.add.count({"tw1", A("198.18.1.5")}));
  // No seed: just the change.
  AntiSpoofChange plain = AsCreation(AntiSpoofState{}, PlanAllow(AntiSpoofState{}, "tw3", {A("198.18.1.3")}));
  EXPECT_EQ(plain.add, (std::set<AntiSpoofElement>{{"tw3", A("198.18.1.3")}}));
  EXPECT_TRUE(plain.guard.empty());
}

TEST(AntiSpoofState, GuardsOurPrefixAndTheListedNamesOnly) {
  AntiSpoofState st = Listed();
  EXPECT_TRUE(st.Guards("tw0123456789abc"));
  EXPECT_TRUE(st.Guards("tw9999999999999")) << "fail closed: a veth of ours without an element";
  EXPECT_TRUE(st.Guards("cali0123456789a"));
  EXPECT_FALSE(st.Guards("cali9999999999a"));
  EXPECT_FALSE(st.Guards("eth0")) << "the ENIs are loose where the VPC needs it";
  EXPECT_EQ(st.AllowedOn("tw0123456789abc"), std::set<InetAddr>{A("2001:db8::15")});
}

TEST(AntiSpoofIfname, OnlyNamesThatCannotEscapeTheNftStringOrBecomeWildcards) {
  EXPECT_TRUE(ValidateGuardedIfname("tw0123456789abc").ok());
  EXPECT_TRUE(ValidateGuardedIfname("cali0123456789a").ok());
  EXPECT_TRUE(ValidateGuardedIfname("veth_1.2-x").ok());
  for (const char* bad : {"", "tw*", "*", "a\"b", "a b", "x\\y", "0123456789abcdef", "a}b", "a;b"}) {
    EXPECT_FALSE(ValidateGuardedIfname(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace terway::datapath
