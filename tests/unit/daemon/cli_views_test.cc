#include "daemon/cli_views.h"

#include <gtest/gtest.h>

namespace terway::daemon::cli_views {
namespace {

store::AllocationRecord Alloc(const std::string& container, const std::string& pod, const std::string& ip,
                              const std::string& eni) {
  store::AllocationRecord a;
  a.container_id = container;
  a.pod_namespace = "default";
  a.pod_name = pod;
  a.ip = ip;
  a.eni_id = eni;
  return a;
}

ipam::PoolContents::Address Mem(const std::string& ip, const std::string& eni, ipam::IpUse use,
                                const std::string& container = "") {
  ipam::PoolContents::Address a;
  a.ip = ip;
  a.eni_id = eni;
  a.use = use;
  a.container_id = container;
  return a;
}

// One ENI, two pods, one idle address: the store and the pool agree.
struct Node {
  StoreFacts store;
  ipam::PoolContents pool;
  Node() {
    store.enis = {{"eni-1", "00:16:3e:00:00:01", "vsw-1", "198.18.0.10", false, 0}};
    store.allocations = {Alloc("c-web", "web", "198.18.0.11", "eni-1"), Alloc("c-db", "db", "198.18.0.9", "eni-1")};
    store.ips = {{"198.18.0.9", "eni-1", 0}, {"198.18.0.11", "eni-1", 0}, {"198.18.0.12", "eni-1", 1700000000}};
    pool.addresses = {Mem("198.18.0.9", "eni-1", ipam::IpUse::kInUse, "c-db"),
                      Mem("198.18.0.11", "eni-1", ipam::IpUse::kInUse, "c-web"),
                      Mem("198.18.0.12", "eni-1", ipam::IpUse::kIdle)};
  }
};

const MappingRow* RowOf(const std::vector<MappingRow>& rows, const std::string& ip) {
  for (const auto& r : rows) {
    if (r.ip == ip) return &r;
  }
  return nullptr;
}

TEST(CliViewsMapping, ConsistentNodeIsNormalAndIdleInAddressOrder) {
  Node n;
  auto rows = BuildMapping(n.store, n.pool);
  ASSERT_EQ(rows.size(), 3u);
  // Numeric order: .9 before .11 before .12.
  EXPECT_EQ(rows[0].ip, "198.18.0.9");
  EXPECT_EQ(rows[1].ip, "198.18.0.11");
  EXPECT_EQ(rows[2].ip, "198.18.0.12");
  EXPECT_EQ(rows[0].status, "Normal");
  EXPECT_EQ(rows[0].pod, "default/db");
  EXPECT_EQ(rows[0].container_id, "c-db");
  EXPECT_EQ(rows[1].status, "Normal");
  EXPECT_EQ(rows[1].pod, "default/web");
  EXPECT_EQ(rows[2].status, "Idle");
  EXPECT_EQ(rows[2].pod, "");
  for (const auto& r : rows) EXPECT_EQ(r.problem, "") << r.ip;
  EXPECT_EQ(MappingView(rows)["errors"], 0);
}

TEST(CliViewsMapping, PoolInUseWithoutPodIsAnError) {
  Node n;
  n.pool.addresses[2] = Mem("198.18.0.12", "eni-1", ipam::IpUse::kInUse, "c-ghost");
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.12");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, kMappingError);
  EXPECT_NE(r->problem.find("the pool has it in use by container c-ghost"), std::string::npos) << r->problem;
  EXPECT_EQ(MappingView(rows)["errors"], 1);
}

TEST(CliViewsMapping, PodWhoseAddressThePoolHasIdleIsAnError) {
  Node n;
  n.pool.addresses[1].use = ipam::IpUse::kIdle;
  n.pool.addresses[1].container_id.clear();
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.11");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, kMappingError);
  EXPECT_NE(r->problem.find("pod default/web holds it but the pool has it idle"), std::string::npos) << r->problem;
}

TEST(CliViewsMapping, PodWhoseAddressThePoolDoesNotKnowIsAnError) {
  Node n;
  n.pool.addresses.erase(n.pool.addresses.begin() + 1);
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.11");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, kMappingError);
  EXPECT_EQ(r->pool_state, "absent");
  EXPECT_NE(r->problem.find("the pool does not know it"), std::string::npos) << r->problem;
}

TEST(CliViewsMapping, PoolAndStoreNamingDifferentContainersIsAnError) {
  Node n;
  n.pool.addresses[1].container_id = "c-other";
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.11");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, kMappingError);
  EXPECT_NE(r->problem.find("the pool gives it to container c-other, the store to c-web"), std::string::npos)
      << r->problem;
}

TEST(CliViewsMapping, StoreTablesDisagreeingIsAnError) {
  Node n;
  n.store.ips[2].idle_since_unix = 0;  // in use, but no allocation
  n.store.ips[1].idle_since_unix = 5;  // idle, but default/web holds it
  auto rows = BuildMapping(n.store, std::nullopt);
  const auto* idle = RowOf(rows, "198.18.0.12");
  const auto* held = RowOf(rows, "198.18.0.11");
  ASSERT_NE(idle, nullptr);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(idle->status, kMappingError);
  EXPECT_NE(idle->problem.find("the store marks it in use but no pod holds it"), std::string::npos);
  EXPECT_EQ(held->status, kMappingError);
  EXPECT_NE(held->problem.find("the store marks it idle"), std::string::npos);
}

TEST(CliViewsMapping, TwoAllocationsOfOneAddressIsAnError) {
  Node n;
  n.store.allocations.push_back(Alloc("c-twin", "twin", "198.18.0.11", "eni-1"));
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.11");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, kMappingError);
  EXPECT_NE(r->problem.find("2 allocations"), std::string::npos) << r->problem;
}

TEST(CliViewsMapping, ExclusivePodMustHoldItsEnisPrimaryIp) {
  StoreFacts s;
  s.enis = {{"eni-a", "00:16:3e:00:00:0a", "vsw-1", "198.18.0.20", false, 0},
            {"eni-b", "00:16:3e:00:00:0b", "vsw-1", "198.18.0.30", false, 0}};
  s.ips = {{"198.18.0.20", "eni-a", 0}, {"198.18.0.30", "eni-b", 0}, {"198.18.0.31", "eni-b", 0}};
  s.allocations = {Alloc("c-a", "a", "198.18.0.20", "eni-a"), Alloc("c-b", "b", "198.18.0.31", "eni-b")};
  auto rows = BuildMapping(s, std::nullopt);
  const auto* a = RowOf(rows, "198.18.0.20");
  const auto* b = RowOf(rows, "198.18.0.31");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->status, "Normal");
  EXPECT_EQ(a->pool_state, "-");
  EXPECT_EQ(b->status, kMappingError);
  EXPECT_NE(b->problem.find("whose primary IP is 198.18.0.30"), std::string::npos) << b->problem;
}

TEST(CliViewsMapping, ReservedForAStickyPodIsNotAnError) {
  Node n;
  n.pool.addresses[2].use = ipam::IpUse::kReserved;
  n.store.reservations = {{"default", "sts-0", "198.18.0.12", "eni-1", 1800000000}};
  auto rows = BuildMapping(n.store, n.pool);
  const auto* r = RowOf(rows, "198.18.0.12");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status, "Reserved");
  EXPECT_EQ(r->pod, "default/sts-0");
  // Without the store's reservation the pool's is unaccounted for.
  n.store.reservations.clear();
  rows = BuildMapping(n.store, n.pool);
  EXPECT_EQ(RowOf(rows, "198.18.0.12")->status, kMappingError);
}

TEST(CliViewsRedaction, SecretsAreRedactedAtAnyDepthAndEmptyStaysEmpty) {
  Json conf = Json::parse(R"({
    "access_key": "LTAI-canary-id", "access_secret": "canary-secret", "max_pool_size": 5,
    "credential_path": "/var/addon/token-config",
    "nested": {"AccessKeySecret": "deep-secret", "list": [{"security_token": "tok"}], "vswitch": "vsw-1"},
    "ACCESS-KEY-ID": "other", "password": "", "region_id": "cn-hangzhou"})");
  Json out = RedactSecrets(conf);
  const std::string dumped = out.dump();
  for (const char* secret : {"LTAI-canary-id", "canary-secret", "deep-secret", "\"tok\"", "other"}) {
    EXPECT_EQ(dumped.find(secret), std::string::npos) << secret << " leaked: " << dumped;
  }
  EXPECT_EQ(out["access_key"], kRedacted);
  EXPECT_EQ(out["nested"]["AccessKeySecret"], kRedacted);
  EXPECT_EQ(out["nested"]["list"][0]["security_token"], kRedacted);
  EXPECT_EQ(out["password"], "");
  // What is not a secret is shown as it is.
  EXPECT_EQ(out["max_pool_size"], 5);
  EXPECT_EQ(out["nested"]["vswitch"], "vsw-1");
  EXPECT_EQ(out["region_id"], "cn-hangzhou");
  EXPECT_EQ(out["credential_path"], "/var/addon/token-config");
}

TEST(CliViewsRedaction, SecretKeyNames) {
  for (const char* k : {"access_key", "access_secret", "AccessKeyId", "access_key_secret", "security_token",
                        "password", "client-secret"}) {
    EXPECT_TRUE(IsSecretKey(k)) << k;
  }
  for (const char* k : {"max_pool_size", "vswitches", "credential_path", "security_groups", "eni_tags"}) {
    EXPECT_FALSE(IsSecretKey(k)) << k;
  }
}

TEST(CliViewsNodeConfig, EffectiveConfigNeverCarriesCredentials) {
  config::EniConfig c;
  c.access_key = "LTAI-canary-id";
  c.access_secret = "canary-secret";
  c.max_pool_size = 7;
  c.vswitches["cn-hangzhou-k"] = {"vsw-a", "vsw-b"};
  auto kvs = EffectiveConfig(c);
  std::map<std::string, std::string> m;
  for (const auto& kv : kvs) {
    m[kv.key] = kv.value;
    EXPECT_EQ(kv.value.find("canary"), std::string::npos) << kv.key;
  }
  EXPECT_EQ(m["access_key"], "set (redacted)");
  EXPECT_EQ(m["max_pool_size"], "7");
  EXPECT_EQ(m["vswitches"], "cn-hangzhou-k: vsw-a, vsw-b");
  EXPECT_EQ(m["metadata_endpoint"], "(not set: http://100.100.100.200)");
  c.access_secret.clear();
  for (const auto& kv : EffectiveConfig(c)) {
    if (kv.key == "access_secret") {
      EXPECT_EQ(kv.value, "not set");
    }
  }
}

TEST(CliViewsNodeConfig, ViewRedactsTheMergedEniConf) {
  NodeConfigFacts f;
  f.source = "/etc/eni/eni.json";
  f.eni_conf_text = R"({"access_secret": "canary-secret", "max_pool_size": 5})";
  auto v = NodeConfigView(f);
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  EXPECT_EQ((*v)["eni_conf"]["access_secret"], kRedacted);
  EXPECT_EQ((*v)["eni_conf"]["max_pool_size"], 5);
  EXPECT_EQ((*v)["source"], "/etc/eni/eni.json");
  f.eni_conf_text = "{not json";
  EXPECT_FALSE(NodeConfigView(f).ok());
}

TEST(CliViewsMetadata, PrimaryFirstSecondaryIpsSortedAndTrackingFlagged) {
  MetadataFacts f;
  f.primary_mac = "00:16:3E:00:00:01";
  f.vswitch_id = "vsw-1";
  MetadataEni secondary{"00:16:3e:00:00:02", "eni-2", "198.18.0.20",
                        {"198.18.0.20", "198.18.0.100", "198.18.0.21"}, "198.18.0.1", "255.255.255.0",
                        "vsw-1", "198.18.0.0/24", ""};
  MetadataEni primary{"00:16:3e:00:00:01", "eni-1", "198.18.0.5", {"198.18.0.5"}, "198.18.0.1",
                      "255.255.255.0", "vsw-1", "198.18.0.0/24", ""};
  secondary.ipv6s = {"fd00:1ab:0:1::20"};
  f.enis = {secondary, primary};
  f.ifname_by_mac = {{"00:16:3e:00:00:01", "eth0"}};
  std::vector<store::EniRecord> tracked = {{"eni-2", "00:16:3e:00:00:02", "vsw-1", "198.18.0.20", false, 0},
                                           {"eni-gone", "00:16:3e:00:00:09", "vsw-1", "198.18.0.90", false, 0}};
  Json v = MetadataView(f, tracked);
  ASSERT_EQ(v["enis"].size(), 2u);
  EXPECT_EQ(v["enis"][0]["eni_id"], "eni-1");
  EXPECT_EQ(v["enis"][0]["primary"], true);
  EXPECT_EQ(v["enis"][0]["interface"], "eth0");
  EXPECT_EQ(v["enis"][0]["terwayd"], "not tracked (the node's primary ENI)");
  EXPECT_EQ(v["enis"][1]["interface"], "");
  EXPECT_EQ(v["enis"][1]["terwayd"], "tracked");
  EXPECT_EQ(v["enis"][1]["secondary_ipv4s"], Json::parse(R"(["198.18.0.21", "198.18.0.100"])"));
  EXPECT_EQ(v["enis"][1]["ipv6s"], Json::parse(R"(["fd00:1ab:0:1::20"])"));
  EXPECT_EQ(v["enis"][0]["ipv6s"], Json::array());
  ASSERT_EQ(v["store_only"].size(), 1u);
  EXPECT_EQ(v["store_only"][0]["eni_id"], "eni-gone");
}

std::string TraceValue(const Json& shown, const std::string& key) {
  for (const auto& kv : shown["trace"]) {
    if (kv["key"] == key) return kv["value"].get<std::string>();
  }
  return "<no " + key + ">";
}

// Dual stack: the node of Node{} with each slot's IPv6 in the pods' records,
// the store's rows and the pool's memory, all agreeing.
struct DualNode : Node {
  DualNode() {
    store.allocations[0].ipv6 = "fd00:1ab:0:1::11";  // web
    store.allocations[1].ipv6 = "fd00:1ab:0:1::9";   // db
    store.ips[0].ipv6 = "fd00:1ab:0:1::9";
    store.ips[1].ipv6 = "fd00:1ab:0:1::11";
    store.ips[2].ipv6 = "fd00:1ab:0:1::12";
    pool.addresses[0].ipv6 = "fd00:1ab:0:1::9";
    pool.addresses[1].ipv6 = "fd00:1ab:0:1::11";
    pool.addresses[2].ipv6 = "fd00:1ab:0:1::12";
  }
};

TEST(CliViewsMapping, DualStackRowsShowEachSlotsIpv6AndAgreeingLedgersAreNormal) {
  DualNode n;
  auto rows = BuildMapping(n.store, n.pool);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(RowOf(rows, "198.18.0.9")->ipv6, "fd00:1ab:0:1::9");
  EXPECT_EQ(RowOf(rows, "198.18.0.11")->status, "Normal");
  EXPECT_EQ(RowOf(rows, "198.18.0.12")->ipv6, "fd00:1ab:0:1::12");
  EXPECT_EQ(RowOf(rows, "198.18.0.12")->status, "Idle");
  EXPECT_EQ(MappingView(rows)["errors"], 0);
  EXPECT_EQ(MappingView(rows)["rows"][0]["ipv6"], "fd00:1ab:0:1::9");
  // An IPv4-only node shows no IPv6 anywhere.
  for (const auto& r : BuildMapping(Node().store, Node().pool)) EXPECT_EQ(r.ipv6, "") << r.ip;
}

TEST(CliViewsMapping, APodsIpv6ThatTheStoreOrThePoolPairsDifferentlyIsAnError) {
  DualNode n;
  n.store.ips[1].ipv6 = "fd00:1ab:0:1::12";  // web's row names another IPv6
  auto rows = BuildMapping(n.store, n.pool);
  const auto* web = RowOf(rows, "198.18.0.11");
  EXPECT_EQ(web->status, kMappingError);
  EXPECT_NE(web->problem.find("holds IPv6 fd00:1ab:0:1::11 but the store pairs the address with fd00:1ab:0:1::12"),
            std::string::npos)
      << web->problem;

  DualNode m;
  m.pool.addresses[2].ipv6 = "";  // the pool has the idle IPv4 unpaired, the store paired
  rows = BuildMapping(m.store, m.pool);
  const auto* idle = RowOf(rows, "198.18.0.12");
  EXPECT_EQ(idle->status, kMappingError);
  EXPECT_NE(idle->problem.find("the pool pairs it with IPv6 none, the store with fd00:1ab:0:1::12"),
            std::string::npos)
      << idle->problem;
}

TEST(CliViewsMapping, OneIpv6HeldByTwoPodsIsAnErrorOnBothRows) {
  DualNode n;
  n.store.allocations[0].ipv6 = "fd00:1ab:0:1::9";  // web claims db's IPv6
  auto rows = BuildMapping(n.store, n.pool);
  for (const char* ip : {"198.18.0.9", "198.18.0.11"}) {
    const auto* r = RowOf(rows, ip);
    EXPECT_EQ(r->status, kMappingError) << ip;
    EXPECT_NE(r->problem.find("its IPv6 fd00:1ab:0:1::9 is held by 2 pods"), std::string::npos) << r->problem;
  }
}

TEST(CliViewsObjects, DualStackPodsEnisAndThePoolShowTheIpv6Side) {
  ServiceFacts svc{{{"eni_mode", "shared"}}, {{"ready", "true"}}};
  PoolFacts pool{"shared-eni-ip", {}, {}};
  pool.stats.unpaired = 2;
  pool.stats.spare_ipv6 = 1;
  DualNode n;
  auto objects = BuildObjects(svc, pool, n.store);
  auto web = ShowView(objects, "pod", "default/web");
  ASSERT_TRUE(web.ok());
  EXPECT_EQ(TraceValue(*web, "ipv6"), "fd00:1ab:0:1::11");
  auto eni = ShowView(objects, "eni", "eni-1");
  ASSERT_TRUE(eni.ok());
  EXPECT_EQ(TraceValue(*eni, "pods"), "default/db=198.18.0.9,fd00:1ab:0:1::9, default/web=198.18.0.11,fd00:1ab:0:1::11");
  EXPECT_EQ(TraceValue(*eni, "ips_paired_with_ipv6"), "3");
  auto p = ShowView(objects, "resource_pool", "");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(TraceValue(*p, "unpaired_ipv4"), "2");
  EXPECT_EQ(TraceValue(*p, "spare_ipv6"), "1");
}

TEST(CliViewsObjects, ListAndShow) {
  ServiceFacts svc{{{"eni_mode", "shared"}}, {{"ready", "true"}}};
  PoolFacts pool{"shared-eni-ip", {{"max_pool_size", "5"}}, {}};
  pool.stats.idle = 3;
  Node n;
  auto objects = BuildObjects(svc, pool, n.store);

  auto types = ListView(objects, "");
  ASSERT_TRUE(types.ok());
  EXPECT_EQ((*types)["types"], Json::parse(R"(["network_service", "resource_pool", "eni", "pod"])"));
  auto pods = ListView(objects, "pod");
  ASSERT_TRUE(pods.ok());
  EXPECT_EQ((*pods)["names"], Json::parse(R"(["default/db", "default/web"])"));
  auto bad = ListView(objects, "factory");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("network_service"), std::string::npos) << bad.error().message;

  auto web = ShowView(objects, "pod", "default/web");
  ASSERT_TRUE(web.ok()) << web.error().ToString();
  bool saw_ip = false;
  for (const auto& kv : (*web)["trace"]) saw_ip = saw_ip || (kv["key"] == "ip" && kv["value"] == "198.18.0.11");
  EXPECT_TRUE(saw_ip) << web->dump();
  // No name: the type's first, as upstream.
  auto first = ShowView(objects, "resource_pool", "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ((*first)["name"], "shared-eni-ip");
  EXPECT_EQ((*first)["trace"][0], Json::parse(R"({"key": "idle", "value": "3"})"));
  auto eni = ShowView(objects, "eni", "eni-1");
  ASSERT_TRUE(eni.ok());
  EXPECT_EQ(TraceValue(*eni, "pods"), "default/db=198.18.0.9, default/web=198.18.0.11");
  auto missing = ShowView(objects, "pod", "default/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("default/web"), std::string::npos) << missing.error().message;
}

}  // namespace
}  // namespace terway::daemon::cli_views
