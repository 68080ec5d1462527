// netlink::Handle against the real kernel, inside namespaces this test makes.
#include "netlink/handle.h"

#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include <gtest/gtest.h>

#include "netlink/netns.h"
#include "netlink/sysctl.h"
#include "test_util.h"

namespace terway::netlink {
namespace {

#define EXPECT_CODE(expr, c)                                   \
  do {                                                         \
    auto&& r_ = (expr);                                        \
    ASSERT_FALSE(r_.ok()) << #expr << " unexpectedly succeeded"; \
    EXPECT_EQ(r_.error().code, c) << r_.error().ToString();    \
  } while (0)

MacAddr Mac(const char* s) { return MacAddr::Parse(s).value(); }
InetAddr Addr(const char* s) { return InetAddr::Parse(s).value(); }
InetPrefix Pfx(const char* s) { return InetPrefix::Parse(s).value(); }

using ::terway::testing::Capture;

// Two fresh namespaces, removed whatever happens.
class HandleRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, netlink)";
    std::string s = testing::UniqueSuffix();
    a_ = "tnla" + s;
    b_ = "tnlb" + s;
    ASSERT_OK(CreateNamedNetns(a_));
    ASSERT_OK(CreateNamedNetns(b_));
    auto ha = Handle::OpenIn(a_);
    ASSERT_OK(ha);
    ha_.emplace(std::move(*ha));
    auto hb = Handle::OpenIn(b_);
    ASSERT_OK(hb);
    hb_.emplace(std::move(*hb));
  }
  void TearDown() override {
    ha_.reset();
    hb_.reset();
    if (!a_.empty()) (void)DeleteNamedNetns(a_);
    if (!b_.empty()) (void)DeleteNamedNetns(b_);
  }
  Handle& A() { return *ha_; }
  Handle& B() { return *hb_; }
  // A veth v0 (in a) <-> v1 (in b), both up, 198.18.0.1/24 and .2/24.
  void Wire() {
    VethSpec spec;
    spec.name = "v0";
    spec.peer_name = "v1";
    spec.peer_netns = b_;
    spec.mac = Mac("00:16:3e:00:01:00");
    spec.peer_mac = Mac("00:16:3e:00:01:01");
    ASSERT_OK(A().CreateVeth(spec));
    for (auto [h, name, ip] : {std::tuple{&A(), "v0", "198.18.0.1/24"}, std::tuple{&B(), "v1", "198.18.0.2/24"}}) {
      auto l = h->GetLink(name);
      ASSERT_OK(l);
      ASSERT_OK(h->SetLinkUp(l->index));
      Address addr;
      addr.link_index = l->index;
      addr.local = Pfx(ip);
      ASSERT_OK(h->AddAddress(addr));
    }
  }
  int Index(Handle& h, const char* name) {
    auto l = h.GetLink(name);
    EXPECT_TRUE(l.ok()) << name;
    return l.ok() ? l->index : 0;
  }

  std::string a_, b_;
  std::optional<Handle> ha_, hb_;
};

// Link kinds probed at run time, in a namespace of the probe's own: macvlan
// is built here; ipvlan is not on this project's kernel (then the error says
// so plainly) but may be elsewhere; a kind no kernel has is refused alike.
TEST(LinkKindProbe, SaysWhatTheKernelLacks) {
  TERWAY_REQUIRE_ROOT();
  EXPECT_TRUE(ProbeLinkKind("macvlan").ok());
  Status ipvlan = ProbeLinkKind("ipvlan");
  if (!ipvlan.ok()) {
    EXPECT_EQ(ipvlan.error().code, ErrorCode::kUnsupported) << ipvlan.error().ToString();
    EXPECT_NE(ipvlan.error().message.find("kernel lacks ipvlan (CONFIG_IPVLAN is not set)"), std::string::npos)
        << ipvlan.error().ToString();
  }
  Status none = ProbeLinkKind("nosuchkind");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kUnsupported) << none.error().ToString();
}

TEST_F(HandleRoot, VethPeerIsCreatedDirectlyInTheOtherNamespace) {
  Wire();
  auto v0 = A().GetLink("v0");
  ASSERT_OK(v0);
  EXPECT_EQ(v0->kind, "veth");
  EXPECT_EQ(v0->mac, Mac("00:16:3e:00:01:00"));
  EXPECT_FALSE(A().LinkExists("v1"));
  auto v1 = B().GetLink("v1");
  ASSERT_OK(v1);
  EXPECT_EQ(v1->mac, Mac("00:16:3e:00:01:01"));
  EXPECT_TRUE(v1->admin_up);
  EXPECT_EQ(v0->peer_index, v1->index);
  EXPECT_EQ(v1->peer_index, v0->index);
  EXPECT_TRUE(v0->peer_in_other_netns);
  auto by_mac = B().GetLinkByMac(Mac("00:16:3e:00:01:01"));
  ASSERT_OK(by_mac);
  EXPECT_EQ(by_mac->index, v1->index);
  auto by_index = B().GetLinkByIndex(v1->index);
  ASSERT_OK(by_index);
  EXPECT_EQ(by_index->name, "v1");
  auto links = A().ListLinks();
  ASSERT_OK(links);
  EXPECT_EQ(links->size(), 2u);  // lo and v0: nothing leaked in
  EXPECT_CODE(B().GetLinkByMac(Mac("00:16:3e:99:99:99")), ErrorCode::kNotFound);

  // Same names again: the kernel's EEXIST, named.
  VethSpec dup;
  dup.name = "v0";
  dup.peer_name = "v9";
  auto s = A().CreateVeth(dup);
  EXPECT_CODE(s, ErrorCode::kAlreadyExists);
  EXPECT_NE(s.error().ToString().find("v0"), std::string::npos) << s.error().ToString();
  EXPECT_EQ(s.error().sys_errno, EEXIST);
}

TEST_F(HandleRoot, LinkAttributesChangeAndLinksMoveAndDelete) {
  Wire();
  int v0 = Index(A(), "v0");
  ASSERT_OK(A().SetMtu(v0, 1400));
  ASSERT_OK(A().SetMac(v0, Mac("00:16:3e:00:02:00")));
  ASSERT_OK(A().SetAlias(v0, "eni-1"));
  ASSERT_OK(A().SetLinkDown(v0));
  ASSERT_OK(A().SetName(v0, "eth7"));
  auto l = A().GetLinkByIndex(v0);
  ASSERT_OK(l);
  EXPECT_EQ(l->name, "eth7");
  EXPECT_EQ(l->mtu, 1400);
  EXPECT_EQ(l->mac, Mac("00:16:3e:00:02:00"));
  EXPECT_EQ(l->alias, "eni-1");
  EXPECT_FALSE(l->admin_up);

  // Move into b (as an exclusive ENI moves into a pod), then back out by name.
  ASSERT_OK(A().MoveToNetns(v0, b_));
  EXPECT_FALSE(A().LinkExists("eth7"));
  auto moved = B().GetLink("eth7");
  ASSERT_OK(moved);
  EXPECT_EQ(moved->mac, Mac("00:16:3e:00:02:00"));

  ASSERT_OK(B().DeleteLinkIfExists("eth7"));
  EXPECT_FALSE(B().LinkExists("eth7"));
  EXPECT_FALSE(B().LinkExists("v1")) << "deleting one end removes the pair";
  ASSERT_OK(B().DeleteLinkIfExists("eth7"));  // idempotent
  EXPECT_CODE(B().DeleteLink(moved->index), ErrorCode::kNotFound);
  auto missing = A().GetLink("nope0");
  EXPECT_CODE(missing, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().ToString().find("nope0"), std::string::npos);
  EXPECT_CODE(A().GetLink("name-that-is-too-long"), ErrorCode::kInvalidArgument);
}

TEST_F(HandleRoot, BridgePortsMasterIsolationAndFdb) {
  ASSERT_OK(A().CreateBridge("br0", Mac("ee:ff:ff:ff:ff:ff")));
  VethSpec local;  // both ends here
  local.name = "l0";
  local.peer_name = "l1";
  ASSERT_OK(A().CreateVeth(local));
  auto l0 = A().GetLink("l0");
  ASSERT_OK(l0);
  EXPECT_FALSE(l0->peer_in_other_netns);
  EXPECT_EQ(l0->peer_index, Index(A(), "l1"));
  VethSpec spec;
  spec.name = "p0";
  spec.peer_name = "eth0";
  spec.peer_netns = b_;
  ASSERT_OK(A().CreateVeth(spec));
  int br = Index(A(), "br0");
  int p0 = Index(A(), "p0");
  auto brl = A().GetLink("br0");
  ASSERT_OK(brl);
  EXPECT_EQ(brl->kind, "bridge");
  EXPECT_EQ(brl->mac, Mac("ee:ff:ff:ff:ff:ff"));
  ASSERT_OK(A().SetMaster(p0, br));
  ASSERT_OK(A().SetBridgePortIsolated(p0, true));
  ASSERT_OK(A().SetLinkUp(p0));
  EXPECT_EQ(A().GetLink("p0")->master_index, br);
  std::string detail = Capture("ip netns exec " + a_ + " bridge -d link show dev p0");
  EXPECT_NE(detail.find("isolated on"), std::string::npos) << detail;

  FdbEntry fdb{p0, Mac("00:16:3e:00:03:00")};
  ASSERT_OK(A().ReplaceFdb(fdb));
  ASSERT_OK(A().ReplaceFdb(fdb));  // replace: idempotent
  std::string fdbs = Capture("ip netns exec " + a_ + " bridge fdb show dev p0");
  EXPECT_NE(fdbs.find("00:16:3e:00:03:00 master br0 static"), std::string::npos) << fdbs;
  ASSERT_OK(A().DeleteFdbIfExists(fdb));
  ASSERT_OK(A().DeleteFdbIfExists(fdb));
  fdbs = Capture("ip netns exec " + a_ + " bridge fdb show dev p0");
  EXPECT_EQ(fdbs.find("00:16:3e:00:03:00"), std::string::npos) << fdbs;

  ASSERT_OK(A().SetBridgePortIsolated(p0, false));
  detail = Capture("ip netns exec " + a_ + " bridge -d link show dev p0");
  EXPECT_NE(detail.find("isolated off"), std::string::npos) << detail;
  ASSERT_OK(A().SetMaster(p0, 0));
  EXPECT_EQ(A().GetLink("p0")->master_index, 0);
}

TEST_F(HandleRoot, AddressesBothFamiliesAndNoPrefixRoute) {
  Wire();
  int v0 = Index(A(), "v0");
  Address gw;
  gw.link_index = v0;
  gw.local = Pfx("198.18.5.253/24");
  gw.noprefixroute = true;
  ASSERT_OK(A().AddAddress(gw));
  EXPECT_CODE(A().AddAddress(gw), ErrorCode::kAlreadyExists);
  ASSERT_OK(A().EnsureAddress(gw));
  Address v6;
  v6.link_index = v0;
  v6.local = Pfx("fd00:18::1/64");
  ASSERT_OK(A().EnsureAddress(v6));

  auto addrs = A().ListAddresses(v0);
  ASSERT_OK(addrs);
  auto has = [&](const std::string& p, bool npr) {
    return std::any_of(addrs->begin(), addrs->end(), [&](const Address& x) {
      return x.local.ToString() == p && x.noprefixroute == npr;
    });
  };
  EXPECT_TRUE(has("198.18.5.253/24", true));
  EXPECT_TRUE(has("198.18.0.1/24", false));
  EXPECT_TRUE(has("fd00:18::1/64", false));
  auto only_v4 = A().ListAddresses(v0, AF_INET);
  ASSERT_OK(only_v4);
  EXPECT_EQ(only_v4->size(), 2u);

  // noprefixroute: no connected route for 198.18.5.0/24; the plain one has its.
  auto routes = A().ListRoutes(AF_INET, kMainTable);
  ASSERT_OK(routes);
  auto has_route = [&](const std::string& d) {
    return std::any_of(routes->begin(), routes->end(), [&](const Route& r) { return r.dst.ToString() == d; });
  };
  EXPECT_FALSE(has_route("198.18.5.0/24"));
  EXPECT_TRUE(has_route("198.18.0.0/24"));

  ASSERT_OK(A().DeleteAddress(gw));
  EXPECT_FALSE(A().DeleteAddress(gw).ok());
  ASSERT_OK(A().DeleteAddressIfExists(gw));
  ASSERT_OK(A().DeleteAddressIfExists(v6));
  auto after = A().ListAddresses(v0);
  ASSERT_OK(after);
  for (const auto& x : *after) {
    EXPECT_NE(x.local.ToString(), "198.18.5.253/24");
    EXPECT_NE(x.local.ToString(), "fd00:18::1/64");
  }
}

TEST_F(HandleRoot, RoutesInTablesOfEveryKind) {
  Wire();
  int v0 = Index(A(), "v0");
  Route def;
  def.dst = Pfx("0.0.0.0/0");
  def.table = 100;
  def.gateway = Addr("198.18.0.2");
  def.oif = v0;
  def.src = Addr("198.18.0.1");
  ASSERT_OK(A().AddRoute(def));
  EXPECT_CODE(A().AddRoute(def), ErrorCode::kAlreadyExists);
  ASSERT_OK(A().ReplaceRoute(def));

  Route onlink;  // gateway outside every subnet of the link
  onlink.dst = Pfx("198.19.0.0/16");
  onlink.table = 100;
  onlink.gateway = Addr("169.254.1.1");
  onlink.oif = v0;
  onlink.onlink = true;
  ASSERT_OK(A().AddRoute(onlink));
  Route no_onlink = onlink;
  no_onlink.dst = Pfx("198.19.1.0/24");
  no_onlink.onlink = false;
  auto unreachable_gw = A().AddRoute(no_onlink);
  ASSERT_FALSE(unreachable_gw.ok());
  EXPECT_NE(unreachable_gw.error().sys_errno, 0) << "the kernel's errno is kept";

  Route host;  // scope link, like a pod's /32 via its veth
  host.dst = Pfx("198.18.7.7/32");
  host.table = 100;
  host.oif = v0;
  ASSERT_OK(A().AddRoute(host));
  Route bh;
  bh.dst = Pfx("198.18.8.0/24");
  bh.table = 100;
  bh.type = RouteType::kBlackhole;
  ASSERT_OK(A().AddRoute(bh));
  Route unr;
  unr.dst = Pfx("198.18.0.0/15");
  unr.type = RouteType::kUnreachable;
  ASSERT_OK(A().ReplaceRoute(unr));
  Route v6;
  v6.dst = Pfx("fd00:99::/64");
  v6.table = 100;
  v6.oif = v0;
  ASSERT_OK(A().AddRoute(v6));
  Route v6unr;
  v6unr.dst = Pfx("fd00:98::/64");
  v6unr.type = RouteType::kUnreachable;
  v6unr.table = 100;
  ASSERT_OK(A().AddRoute(v6unr));

  auto t100 = A().ListRoutes(0, 100);
  ASSERT_OK(t100);
  auto find = [&](const std::string& d) -> const Route* {
    for (const auto& r : *t100) {
      if (r.dst.ToString() == d) return &r;
    }
    return nullptr;
  };
  const Route* d = find("0.0.0.0/0");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->gateway, def.gateway);
  EXPECT_EQ(d->oif, v0);
  EXPECT_EQ(d->src, def.src);
  EXPECT_EQ(d->table, 100u);
  const Route* o = find("198.19.0.0/16");
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->onlink);
  const Route* h = find("198.18.7.7/32");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->scope, RT_SCOPE_LINK);
  EXPECT_FALSE(h->gateway.has_value());
  const Route* b = find("198.18.8.0/24");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, RouteType::kBlackhole);
  ASSERT_NE(find("fd00:99::/64"), nullptr);
  ASSERT_NE(find("fd00:98::/64"), nullptr);
  EXPECT_EQ(find("fd00:98::/64")->type, RouteType::kUnreachable);
  EXPECT_EQ(find("198.18.0.0/15"), nullptr) << "main-table route listed under table 100";
  auto main = A().ListRoutes(AF_INET, kMainTable);
  ASSERT_OK(main);
  EXPECT_TRUE(std::any_of(main->begin(), main->end(), [](const Route& r) {
    return r.dst.ToString() == "198.18.0.0/15" && r.type == RouteType::kUnreachable;
  }));
  // The kernel routes by it: a lookup in the unreachable range fails with
  // EHOSTUNREACH.
  std::string get = Capture("ip netns exec " + a_ + " ip route get 198.18.9.9 2>&1");
  EXPECT_NE(get.find("No route to host"), std::string::npos) << get;

  for (const Route* r : {&def, &onlink, &host, &bh, &unr, &v6, &v6unr}) {
    ASSERT_OK(A().DeleteRoute(*r));
    EXPECT_CODE(A().DeleteRoute(*r), ErrorCode::kNotFound);
    ASSERT_OK(A().DeleteRouteIfExists(*r));
  }
  auto empty = A().ListRoutes(0, 100);
  ASSERT_OK(empty);
  EXPECT_TRUE(empty->empty());
}

TEST_F(HandleRoot, RulesAreIdempotentWithEnsure) {
  Rule from;
  from.priority = 2000;
  from.src = Pfx("198.18.0.10/32");
  from.table = 1001;
  Rule to;
  to.priority = 512;
  to.dst = Pfx("198.18.0.10/32");
  to.table = kMainTable;
  Rule iif;
  iif.priority = 3000;
  iif.iif = "v0";
  iif.oif = "lo";
  iif.table = 1002;
  iif.fwmark = 0x10;
  iif.fwmask = 0xff;
  Rule v6;
  v6.priority = 2001;
  v6.src = Pfx("fd00::10/128");
  v6.table = 1003;
  for (const Rule* r : {&from, &to, &iif, &v6}) {
    ASSERT_OK(A().AddRule(*r));
    EXPECT_CODE(A().AddRule(*r), ErrorCode::kAlreadyExists);
    ASSERT_OK(A().EnsureRule(*r));
  }
  auto rules = A().ListRules();
  ASSERT_OK(rules);
  auto count = [&](uint32_t prio) {
    return std::count_if(rules->begin(), rules->end(), [&](const Rule& r) { return r.priority == prio; });
  };
  EXPECT_EQ(count(2000), 1);
  EXPECT_EQ(count(512), 1);
  EXPECT_EQ(count(3000), 1);
  EXPECT_EQ(count(2001), 1);
  for (const auto& r : *rules) {
    if (r.priority == 2000) {
      ASSERT_TRUE(r.src.has_value());
      EXPECT_EQ(r.src->ToString(), "198.18.0.10/32");
      EXPECT_EQ(r.table, 1001u);
    }
    if (r.priority == 3000) {
      EXPECT_EQ(r.iif, "v0");
      EXPECT_EQ(r.oif, "lo");
      EXPECT_EQ(r.fwmark, 0x10u);
      EXPECT_EQ(r.table, 1002u);
    }
  }
  auto v4only = A().ListRules(AF_INET);
  ASSERT_OK(v4only);
  EXPECT_TRUE(std::none_of(v4only->begin(), v4only->end(), [](const Rule& r) { return r.priority == 2001; }));
  for (const Rule* r : {&from, &to, &iif, &v6}) {
    ASSERT_OK(A().DeleteRule(*r));
    EXPECT_CODE(A().DeleteRule(*r), ErrorCode::kNotFound);
    ASSERT_OK(A().DeleteRuleIfExists(*r));
  }
  // Rules of the other namespace are untouched by all this.
  auto other = B().ListRules(AF_INET);
  ASSERT_OK(other);
  EXPECT_EQ(other->size(), 3u);  // local, main, default
  Rule bad;
  bad.src = Pfx("198.18.0.0/16");
  bad.dst = Pfx("fd00::/64");
  EXPECT_CODE(A().AddRule(bad), ErrorCode::kInvalidArgument);
}

TEST_F(HandleRoot, PermanentNeighbours) {
  Wire();
  int v0 = Index(A(), "v0");
  Neighbor n{v0, Addr("169.254.1.1"), Mac("00:16:3e:00:04:00")};
  ASSERT_OK(A().AddNeighbor(n));
  EXPECT_CODE(A().AddNeighbor(n), ErrorCode::kAlreadyExists);
  Neighbor moved = n;
  moved.mac = Mac("00:16:3e:00:04:01");
  ASSERT_OK(A().ReplaceNeighbor(moved));
  Neighbor v6{v0, Addr("fd00::1"), Mac("00:16:3e:00:04:02")};
  ASSERT_OK(A().ReplaceNeighbor(v6));
  auto list = A().ListNeighbors(v0);
  ASSERT_OK(list);
  auto find = [&](const InetAddr& ip) -> const Neighbor* {
    for (const auto& x : *list) {
      if (x.ip == ip) return &x;
    }
    return nullptr;
  };
  const Neighbor* got = find(n.ip);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->mac, moved.mac);
  EXPECT_TRUE(got->permanent);
  EXPECT_EQ(got->state, NUD_PERMANENT);
  ASSERT_NE(find(v6.ip), nullptr);
  auto v4 = A().ListNeighbors(v0, AF_INET);
  ASSERT_OK(v4);
  EXPECT_EQ(v4->size(), 1u);

  ASSERT_OK(A().DeleteNeighbor(n));
  EXPECT_CODE(A().DeleteNeighbor(n), ErrorCode::kNotFound);
  ASSERT_OK(A().DeleteNeighborIfExists(n));
  ASSERT_OK(A().DeleteNeighborIfExists(v6));
  auto none = A().ListNeighbors(v0);
  ASSERT_OK(none);
  EXPECT_EQ(std::count_if(none->begin(), none->end(), [](const Neighbor& x) { return x.permanent; }), 0);
}

TEST_F(HandleRoot, SysctlIsPerNamespace) {
  ASSERT_OK(SetSysctl(a_, "net.ipv4.ip_forward", "1"));
  ASSERT_OK(SetSysctl(b_, "net/ipv4/ip_forward", "0"));
  EXPECT_EQ(GetSysctl(a_, "net.ipv4.ip_forward").value_or("?"), "1");
  EXPECT_EQ(GetSysctl(b_, "net.ipv4.ip_forward").value_or("?"), "0");
  ASSERT_OK(SetSysctl(a_, "net.ipv4.ip_forward", "0"));
  EXPECT_EQ(GetSysctl(a_, "net.ipv4.ip_forward").value_or("?"), "0");
  // Per-device keys see the namespace's own devices.
  Wire();
  ASSERT_OK(SetSysctl(a_, "net/ipv4/conf/v0/proxy_arp_pvlan", "1"));
  EXPECT_EQ(GetSysctl(a_, "net.ipv4.conf.v0.proxy_arp_pvlan").value_or("?"), "1");
  EXPECT_CODE(GetSysctl(b_, "net.ipv4.conf.v0.proxy_arp_pvlan"), ErrorCode::kNotFound);
  EXPECT_CODE(SetSysctl(a_, "kernel.hostname", "x"), ErrorCode::kInvalidArgument);
}

TEST_F(HandleRoot, DumpsRetryWhileTheTableChanges) {
  Wire();
  int v0 = Index(A(), "v0");
  // Another handle on the same namespace churns routes while this one dumps.
  auto churn = Handle::OpenIn(a_);
  ASSERT_OK(churn);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    Handle& h = *churn;
    for (uint32_t i = 0; !stop; i = (i + 1) % 2000) {
      Route r;
      r.dst = InetPrefix(Ipv4Addr(0xC6120000u + (i << 8)), 24);  // 198.18.x.0/24
      r.table = 200;
      r.oif = v0;
      (void)h.ReplaceRoute(r);
      if (i % 3 == 0) (void)h.DeleteRouteIfExists(r);
    }
  });
  for (int i = 0; i < 300; ++i) {
    auto routes = A().ListRoutes(AF_INET, 200);
    ASSERT_TRUE(routes.ok() || routes.error().code == ErrorCode::kConflict) << routes.error().ToString();
  }
  stop = true;
  writer.join();
}

TEST_F(HandleRoot, QdiscsClsactAndTokenBucket) {
  Wire();
  int v0 = Index(A(), "v0");
  auto kinds = [&]() {
    std::string out;
    auto q = A().ListQdiscs(v0);
    EXPECT_TRUE(q.ok());
    if (q.ok()) {
      for (const auto& x : *q) out += x.kind + " ";
    }
    return out;
  };
  ASSERT_OK(A().EnsureClsact(v0));
  ASSERT_OK(A().EnsureClsact(v0));
  EXPECT_NE(kinds().find("clsact"), std::string::npos) << kinds();

  TokenBucket tb{1000000, 32 * 1024, 50};  // 8 Mbit/s
  ASSERT_OK(A().ReplaceRootTbf(v0, tb));
  std::string shown = Capture("ip netns exec " + a_ + " tc qdisc show dev v0");
  EXPECT_NE(shown.find("qdisc tbf"), std::string::npos) << shown;
  EXPECT_NE(shown.find("rate 8Mbit"), std::string::npos) << shown;
  tb.rate_bytes_per_sec = 2500000;  // 20 Mbit/s: replace in place
  ASSERT_OK(A().ReplaceRootTbf(v0, tb));
  shown = Capture("ip netns exec " + a_ + " tc qdisc show dev v0");
  EXPECT_NE(shown.find("rate 20Mbit"), std::string::npos) << shown;
  EXPECT_CODE(A().ReplaceRootTbf(v0, TokenBucket{0, 1, 1}), ErrorCode::kInvalidArgument);

  ASSERT_OK(A().DeleteRootQdiscIfExists(v0));
  ASSERT_OK(A().DeleteRootQdiscIfExists(v0));
  EXPECT_EQ(kinds().find("tbf"), std::string::npos) << kinds();
  ASSERT_OK(A().DeleteClsactIfExists(v0));
  ASSERT_OK(A().DeleteClsactIfExists(v0));
  EXPECT_EQ(kinds().find("clsact"), std::string::npos) << kinds();
}

TEST(HandleOpen, UnknownNamespaceIsNamed) {
  TERWAY_REQUIRE_ROOT();
  auto h = Handle::OpenIn("tnl-does-not-exist-" + testing::UniqueSuffix());
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, ErrorCode::kNotFound);
  EXPECT_NE(h.error().ToString().find("tnl-does-not-exist-"), std::string::npos) << h.error().ToString();
}


// Interface indexes repeat across namespaces: a veth a<->b and another c<->d
// made the same way have the same indexes on both ends. Only the namespace
// id tells which namespace a peer lives in.
TEST_F(HandleRoot, PeerNamespaceIdTellsApartPeersWithTheSameIndexes) {
  const std::string s = testing::UniqueSuffix();
  const std::string c = "tnlc" + s, d = "tnld" + s;
  ASSERT_OK(CreateNamedNetns(c));
  ASSERT_OK(CreateNamedNetns(d));
  struct Cleanup {
    std::string c, d;
    ~Cleanup() {
      (void)DeleteNamedNetns(c);
      (void)DeleteNamedNetns(d);
    }
  } cleanup{c, d};
  Wire();  // v0 in a, its peer v1 in b
  auto hc = Handle::OpenIn(c);
  ASSERT_OK(hc);
  VethSpec spec;
  spec.name = "v0";
  spec.peer_name = "v1";
  spec.peer_netns = d;
  ASSERT_OK(hc->CreateVeth(spec));
  auto hd = Handle::OpenIn(d);
  ASSERT_OK(hd);
  auto a0 = A().GetLink("v0");
  auto b1 = B().GetLink("v1");
  auto c0 = hc->GetLink("v0");
  auto d1 = hd->GetLink("v1");
  ASSERT_OK(a0);
  ASSERT_OK(b1);
  ASSERT_OK(c0);
  ASSERT_OK(d1);
  // The coincidence the id resolves (fresh namespaces number alike).
  ASSERT_EQ(a0->index, c0->index);
  ASSERT_EQ(b1->index, d1->index);
  ASSERT_EQ(a0->peer_index, b1->index);
  ASSERT_EQ(b1->peer_index, d1->peer_index);

  auto id_b = A().NetnsIdOf(b_);
  auto id_d = A().NetnsIdOf(d);
  ASSERT_OK(id_b);
  ASSERT_OK(id_d);
  EXPECT_GE(*id_b, 0);
  EXPECT_EQ(a0->peer_netnsid, *id_b) << "v0's peer lives in b";
  EXPECT_NE(a0->peer_netnsid, *id_d) << "a has no link into d: it must not share b's id";
  EXPECT_TRUE(a0->peer_in_other_netns);
  // From the pod's side likewise: b's v1 peers into a, d's v1 into c.
  auto b_sees_a = B().NetnsIdOf(a_);
  auto b_sees_c = B().NetnsIdOf(c);
  ASSERT_OK(b_sees_a);
  ASSERT_OK(b_sees_c);
  EXPECT_EQ(b1->peer_netnsid, *b_sees_a);
  EXPECT_NE(b1->peer_netnsid, *b_sees_c);
  auto lo = A().GetLink("lo");
  ASSERT_OK(lo);
  EXPECT_EQ(lo->peer_netnsid, -1);
  EXPECT_CODE(A().NetnsIdOf("tnl-does-not-exist-" + s), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace terway::netlink
