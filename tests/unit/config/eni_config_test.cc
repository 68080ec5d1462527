#include "config/eni_config.h"

#include <gtest/gtest.h>

namespace terway::config {
namespace {

TEST(ParseGoDuration, GoSyntax) {
  struct Row {
    const char* text;
    long seconds;
  } ok[] = {{"0", 0}, {"30m", 1800}, {"1h30m", 5400}, {"90s", 90}, {"1.5h", 5400},
            {"1500ms", 1}, {"2h0m0s", 7200}};
  for (const auto& r : ok) {
    auto d = ParseGoDuration(r.text);
    ASSERT_TRUE(d.ok()) << r.text << ": " << d.error().ToString();
    EXPECT_EQ(d->count(), r.seconds) << r.text;
  }
  for (const char* bad : {"", "30", "5x", "m", "-5m", "1h-2m"}) {
    EXPECT_FALSE(ParseGoDuration(bad).ok()) << bad;
  }
}

TEST(ParseEniConfig, TerwayConfigMapExample) {
  auto p = ParseEniConfig(R"({
    "version": "1",
    "max_pool_size": 10, "min_pool_size": 2,
    "vswitches": {"cn-hangzhou-i": ["vsw-1", "vsw-2"], "cn-hangzhou-j": ["vsw-3"]},
    "vswitch_selection_policy": "ordered",
    "security_group": "sg-1", "security_groups": ["sg-2", "sg-1"],
    "eni_tags": {"team": "net"},
    "max_eni": 3, "min_eni": 1,
    "idle_ip_reclaim_after": "30m", "idle_ip_reclaim_interval": "5m",
    "idle_ip_reclaim_batch_size": 4, "ip_pool_sync_period": "2m",
    "access_key": "ak", "access_secret": "sk", "region_id": "cn-hangzhou",
    "service_cidr": "172.21.0.0/20",
    "rate_limit": {"AssignPrivateIpAddresses": 600},
    "ip_reservation_window": "10m", "eni_mode": "shared",
    "enable_eni_trunking": false, "some_future_key": 1
  })");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  const EniConfig& c = p->config;
  EXPECT_EQ(c.max_pool_size, 10);
  EXPECT_EQ(c.min_pool_size, 2);
  EXPECT_EQ(c.VSwitchesForZone("cn-hangzhou-i"), (std::vector<std::string>{"vsw-1", "vsw-2"}));
  EXPECT_TRUE(c.VSwitchesForZone("cn-beijing-a").empty());
  EXPECT_EQ(c.vswitch_selection_policy, VSwitchSelectionPolicy::kListOrder);
  EXPECT_EQ(c.security_groups, (std::vector<std::string>{"sg-1", "sg-2"}));
  EXPECT_EQ(c.eni_tags.at("team"), "net");
  EXPECT_EQ(c.eni_tags.at("creator"), "terway");
  EXPECT_EQ(c.max_eni, 3);
  EXPECT_EQ(c.min_eni, 1);
  EXPECT_EQ(c.idle_ip_reclaim_after.count(), 1800);
  EXPECT_EQ(c.idle_ip_reclaim_interval.count(), 300);
  EXPECT_EQ(c.idle_ip_reclaim_batch_size, 4);
  EXPECT_EQ(c.ip_pool_sync_period.count(), 120);
  EXPECT_EQ(c.region_id, "cn-hangzhou");
  ASSERT_TRUE(c.service_cidr.has_value());
  EXPECT_EQ(c.service_cidr->ToString(), "172.21.0.0/20");
  EXPECT_EQ(c.rate_limit.at("AssignPrivateIpAddresses"), 600);
  EXPECT_EQ(c.ip_reservation_window.count(), 600);
  // One warning for the Terway feature we lack, one for the unknown key.
  ASSERT_EQ(p->warnings.size(), 2u);
  std::string all = p->warnings[0] + p->warnings[1];
  EXPECT_NE(all.find("enable_eni_trunking"), std::string::npos);
  EXPECT_NE(all.find("some_future_key"), std::string::npos);
}

TEST(ParseEniConfig, DefaultsAndCreatorTagAlwaysPresent) {
  auto p = ParseEniConfig("{}");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->config.max_pool_size, 5);
  EXPECT_EQ(p->config.vswitch_selection_policy, VSwitchSelectionPolicy::kRandom);
  EXPECT_EQ(p->config.ip_reservation_window.count(), 300);
  EXPECT_EQ(p->config.daemon_socket, "/var/run/eni/eni.socket");
  EXPECT_EQ(p->config.eni_tags.at("creator"), "terway");
  EXPECT_TRUE(p->warnings.empty());
}

TEST(ParseEniConfig, ErrorsNameTheKeyAndTheFix) {
  struct Row {
    const char* json;
    const char* must_contain;
  } rows[] = {
      {R"({"max_pool_size": "5"})", "\"max_pool_size\": expected an integer"},
      {R"({"max_pool_size": -1})", "max_pool_size"},
      {R"({"min_pool_size": 6, "max_pool_size": 5})", "min_pool_size (6) is greater than max_pool_size (5)"},
      {R"({"min_eni": 3, "max_eni": 2})", "min_eni (3)"},
      {R"({"service_cidr": "10.0.0.0/33"})", "\"service_cidr\""},
      {R"({"service_cidr": "10.0.0.1/24"})", "\"service_cidr\""},
      {R"({"vswitches": ["vsw-1"]})", "\"vswitches\": expected an object"},
      {R"({"vswitches": {"z": "vsw-1"}})", "\"z\""},
      {R"({"vswitch_selection_policy": "fastest"})", "use ordered, random or most"},
      {R"({"idle_ip_reclaim_after": "30"})", "\"idle_ip_reclaim_after\""},
      {R"({"idle_ip_reclaim_after": 30})", "expected a string"},
      {R"({"access_key": "ak"})", "\"access_secret\" is missing"},
      {R"({"credential_source": "static"})", "access_key/access_secret are missing"},
      {R"({"credential_source": "file"})", "credential_path is missing"},
      {R"({"eni_tags": {"a": 1}})", "tag \"a\""},
      {R"({"rate_limit": {"CreateNetworkInterface": 0}})", "CreateNetworkInterface"},
      {R"({"eni_mode": "trunk"})", "use shared or exclusive"},
      {R"({"bandwidth_annotation_error": "warn"})", "use refuse or ignore"},
      {R"({"kube_client_qps": "20"})", "\"kube_client_qps\": expected requests per second"},
      {R"({"kube_client_qps": 0})", "kube_client_qps"},
      {R"({"kube_client_burst": 0})", "kube_client_burst"},
      {R"({"metadata_credentials_for_pods": "block"})", "use deny (pods cannot read the node's RAM role"},
      {R"({"metadata_credentials_for_pods": false})", "\"metadata_credentials_for_pods\": expected a string"},
      {R"({"max_pool_size": 5,})", "not valid JSON"},
      {R"([1,2])", "must be a JSON object"},
  };
  for (const auto& r : rows) {
    auto p = ParseEniConfig(r.json);
    ASSERT_FALSE(p.ok()) << r.json;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument) << r.json;
    EXPECT_NE(p.error().ToString().find(r.must_contain), std::string::npos)
        << r.json << " -> " << p.error().ToString();
  }
}

TEST(ParseEniConfig, BandwidthAnnotationErrorDefaultsToRefuse) {
  auto d = ParseEniConfig("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->config.bandwidth_annotation_error, BandwidthAnnotationError::kRefuse);
  auto i = ParseEniConfig(R"({"bandwidth_annotation_error": "ignore"})");
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->config.bandwidth_annotation_error, BandwidthAnnotationError::kIgnore);
  EXPECT_TRUE(i->warnings.empty());
}

// Fail closed: a node whose eni_conf says nothing keeps the node's RAM role
// from its pods.
TEST(ParseEniConfig, MetadataCredentialsForPodsDefaultsToDeny) {
  auto d = ParseEniConfig("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->config.metadata_credentials_for_pods, MetadataCredentialsForPods::kDeny);
  auto a = ParseEniConfig(R"({"metadata_credentials_for_pods": "allow"})");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->config.metadata_credentials_for_pods, MetadataCredentialsForPods::kAllow);
  EXPECT_TRUE(a->warnings.empty());
  auto n = ParseEniConfig(R"({"metadata_credentials_for_pods": "deny"})");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->config.metadata_credentials_for_pods, MetadataCredentialsForPods::kDeny);
  EXPECT_STREQ(MetadataCredentialsForPodsName(MetadataCredentialsForPods::kAllow), "allow");
}

TEST(ParseEniConfig, KubeClientLimitsAreTerwaysKeys) {
  auto d = ParseEniConfig("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->config.kube_client_qps, 0);  // the client's defaults
  auto p = ParseEniConfig(R"({"kube_client_qps": 20.5, "kube_client_burst": 40})");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->config.kube_client_qps, 20.5);
  EXPECT_EQ(p->config.kube_client_burst, 40);
  EXPECT_TRUE(p->warnings.empty());
}

}  // namespace
}  // namespace terway::config
