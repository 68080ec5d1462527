#include "config/eni_config.h"

#include <functional>

#include <gtest/gtest.h>

namespace terway::config {
namespace {

using std::chrono::seconds;

std::string AllWarnings(const ParsedEniConfig& p) {
  std::string all;
  for (const auto& w : p.warnings) all += w + "\n";
  return all;
}

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

// Upstream Terway's Helm chart renders this eni_conf by default (values:
// securityGroupIDs [], vSwitchIDs {}, ipStack ipv4, centralizedIPAM true).
// It loads as upstream loads it: no error, the empty security group list
// meaning "the primary ENI's groups", and a warning only for what asks for
// something this node does differently.
TEST(ParseEniConfig, UpstreamChartDefaultLoads) {
  auto p = ParseEniConfig(R"({
      "version": "1",
      "max_pool_size": 5,
      "min_pool_size": 0,
      "enable_eni_trunking": false,
      "access_key": "",
      "access_secret": "",
      "vswitches": {},
      "service_cidr": "10.96.0.0/12",
      "security_groups": [],
      "ip_stack": "ipv4",
      "ipam_type": "crd",
      "vswitch_selection_policy": "ordered"
    })");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  const EniConfig& c = p->config;
  EXPECT_EQ(c.max_pool_size, 5);
  EXPECT_TRUE(c.security_groups.empty());
  EXPECT_TRUE(c.vswitches.empty());
  EXPECT_EQ(c.vswitch_selection_policy, VSwitchSelectionPolicy::kMost);
  ASSERT_EQ(p->warnings.size(), 1u) << AllWarnings(*p);
  EXPECT_NE(p->warnings[0].find("\"ipam_type\""), std::string::npos) << p->warnings[0];
  EXPECT_NE(p->warnings[0].find("this node manages its own ENIs"), std::string::npos) << p->warnings[0];
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
    "enable_eni_trunking": true, "some_future_key": 1
  })");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  const EniConfig& c = p->config;
  EXPECT_EQ(c.max_pool_size, 10);
  EXPECT_EQ(c.min_pool_size, 2);
  EXPECT_EQ(c.VSwitchesForZone("cn-hangzhou-i"), (std::vector<std::string>{"vsw-1", "vsw-2"}));
  EXPECT_TRUE(c.VSwitchesForZone("cn-beijing-a").empty());
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
  EXPECT_TRUE(c.eni_mode_set);
  // One warning for the Terway feature asked for and missing, one for the
  // unknown key.
  ASSERT_EQ(p->warnings.size(), 2u) << AllWarnings(*p);
  std::string all = AllWarnings(*p);
  EXPECT_NE(all.find("\"enable_eni_trunking\" is true: not implemented by this terwayd; no trunk ENI"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("some_future_key"), std::string::npos);
}

// Defaults are upstream Terway's where the key is upstream's (its Config
// struct's zero values and Populate()), ours for our additions.
TEST(ParseEniConfig, Defaults) {
  auto p = ParseEniConfig("{}");
  ASSERT_TRUE(p.ok());
  const EniConfig& c = p->config;
  EXPECT_EQ(c.max_pool_size, 0);
  EXPECT_EQ(c.min_pool_size, 0);
  EXPECT_EQ(c.ip_warm_up_size, 0);
  EXPECT_EQ(c.max_eni, 0);
  EXPECT_EQ(c.min_eni, 0);
  EXPECT_EQ(c.eni_cap_ratio, 1);
  EXPECT_EQ(c.eni_cap_shift, 0);
  EXPECT_EQ(c.vswitch_selection_policy, VSwitchSelectionPolicy::kRandom);
  EXPECT_EQ(c.eni_selection_policy, EniSelectionPolicy::kMostIps);
  EXPECT_TRUE(c.security_groups.empty());
  EXPECT_TRUE(c.eni_tag_block_list.empty());
  EXPECT_TRUE(c.eni_tag_filter.empty());
  EXPECT_EQ(c.resource_group_id, "");
  EXPECT_EQ(c.idle_ip_reclaim_after.count(), 0);
  EXPECT_EQ(c.idle_ip_reclaim_interval.count(), 600);
  EXPECT_EQ(c.idle_ip_reclaim_batch_size, 5);
  EXPECT_EQ(c.idle_ip_reclaim_jitter_factor, 0.1);
  EXPECT_EQ(c.ip_pool_sync_period.count(), 120);
  EXPECT_TRUE(c.enable_patch_pod_ips);
  EXPECT_FALSE(c.disable_device_plugin);
  EXPECT_EQ(c.kube_client_qps, 0);  // the client's defaults
  EXPECT_EQ(c.ip_reservation_window.count(), 300);
  EXPECT_EQ(c.daemon_socket, "/var/run/eni/eni.socket");
  EXPECT_EQ(c.eni_mode, EniMode::kShared);
  EXPECT_FALSE(c.eni_mode_set);
  EXPECT_EQ(c.bandwidth_annotation_error, BandwidthAnnotationError::kRefuse);
  // Fail closed: a node whose eni_conf says nothing keeps the node's RAM role
  // from its pods.
  EXPECT_EQ(c.metadata_credentials_for_pods, MetadataCredentialsForPods::kDeny);
  EXPECT_EQ(c.eni_tags.at("creator"), "terway");
  EXPECT_TRUE(p->warnings.empty());
}

// One row per key: a valid value and what it sets; an invalid value and the
// words the error must hold (the error always names the key).
struct KeyCase {
  const char* key;
  const char* valid;
  std::function<void(const EniConfig&)> check;
  const char* invalid;
  const char* error;
};

std::vector<KeyCase> KeyCases() {
  return {
      {"max_pool_size", "7", [](const EniConfig& c) { EXPECT_EQ(c.max_pool_size, 7); }, "\"5\"",
       "expected an integer"},
      {"min_pool_size", "0", [](const EniConfig& c) { EXPECT_EQ(c.min_pool_size, 0); }, "-1", "out of range"},
      {"ip_warm_up_size", "15", [](const EniConfig& c) { EXPECT_EQ(c.ip_warm_up_size, 15); }, "-3", "out of range"},
      {"max_eni", "3", [](const EniConfig& c) { EXPECT_EQ(c.max_eni, 3); }, "2.5", "expected an integer"},
      {"min_eni", "1", [](const EniConfig& c) { EXPECT_EQ(c.min_eni, 1); }, "true", "expected an integer"},
      {"eni_cap_ratio", "0.5", [](const EniConfig& c) { EXPECT_EQ(c.eni_cap_ratio, 0.5); }, "\"half\"",
       "expected a number"},
      {"eni_cap_shift", "-2", [](const EniConfig& c) { EXPECT_EQ(c.eni_cap_shift, -2); }, "\"1\"",
       "expected an integer"},
      {"idle_ip_reclaim_after", "\"30m\"", [](const EniConfig& c) { EXPECT_EQ(c.idle_ip_reclaim_after, seconds(1800)); },
       "30", "expected a string"},
      {"idle_ip_reclaim_interval", "\"15m\"",
       [](const EniConfig& c) { EXPECT_EQ(c.idle_ip_reclaim_interval, seconds(900)); }, "\"15\"", "missing unit"},
      {"idle_ip_reclaim_batch_size", "3", [](const EniConfig& c) { EXPECT_EQ(c.idle_ip_reclaim_batch_size, 3); },
       "-1", "out of range"},
      {"idle_ip_reclaim_jitter_factor", "\"0.2\"",
       [](const EniConfig& c) { EXPECT_EQ(c.idle_ip_reclaim_jitter_factor, 0.2); }, "\"lots\"", "is not a number"},
      {"ip_pool_sync_period", "\"30s\"", [](const EniConfig& c) { EXPECT_EQ(c.ip_pool_sync_period, seconds(30)); },
       "\"soon\"", "\"ip_pool_sync_period\""},
      {"vswitches", R"({"cn-hangzhou-i": ["vsw-1"]})",
       [](const EniConfig& c) { EXPECT_EQ(c.VSwitchesForZone("cn-hangzhou-i"), std::vector<std::string>{"vsw-1"}); },
       R"({"z": "vsw-1"})", "zone \"z\" must list vSwitch ids"},
      {"vswitch_selection_policy", "\"random\"",
       [](const EniConfig& c) { EXPECT_EQ(c.vswitch_selection_policy, VSwitchSelectionPolicy::kRandom); },
       "\"fastest\"", "use ordered (most available IPs first, as Terway), random, or list"},
      {"eni_selection_policy", "\"least_ips\"",
       [](const EniConfig& c) { EXPECT_EQ(c.eni_selection_policy, EniSelectionPolicy::kLeastIps); }, "\"fewest\"",
       "use most_ips"},
      {"security_group", "\"sg-1\"",
       [](const EniConfig& c) { EXPECT_EQ(c.security_groups, std::vector<std::string>{"sg-1"}); }, "[\"sg-1\"]",
       "expected a string"},
      {"security_groups", "[\"sg-1\", \"sg-2\"]",
       [](const EniConfig& c) { EXPECT_EQ(c.security_groups, (std::vector<std::string>{"sg-1", "sg-2"})); },
       "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]", "11 groups given"},
      {"eni_tags", R"({"team": "net"})", [](const EniConfig& c) { EXPECT_EQ(c.eni_tags.at("team"), "net"); },
       R"({"a": 1})", "tag \"a\" must have a string value"},
      {"eni_tag_filter", R"({"pool": "a"})", [](const EniConfig& c) { EXPECT_EQ(c.eni_tag_filter.at("pool"), "a"); },
       "[\"pool\"]", "expected an object of string tag values"},
      {"eni_tag_block_list", R"([{"key": "owner", "value": "rdma"}])",
       [](const EniConfig& c) { EXPECT_EQ(c.eni_tag_block_list, (std::vector<EniTag>{{"owner", "rdma"}})); },
       R"([{"value": "rdma"}])", "each entry is {\"key\""},
      {"resource_group_id", "\"rg-acfm\"", [](const EniConfig& c) { EXPECT_EQ(c.resource_group_id, "rg-acfm"); },
       "7", "expected a string"},
      {"rate_limit", R"({"CreateNetworkInterface": 60})",
       [](const EniConfig& c) { EXPECT_EQ(c.rate_limit.at("CreateNetworkInterface"), 60); },
       R"({"CreateNetworkInterface": 0})", "limit for CreateNetworkInterface must be a positive integer"},
      {"custom_stateful_workload_kinds", "[\"CloneSet\"]",
       [](const EniConfig& c) { EXPECT_EQ(c.custom_stateful_workload_kinds, std::vector<std::string>{"CloneSet"}); },
       "\"CloneSet\"", "expected a list of strings"},
      {"service_cidr", "\"172.21.0.0/20,fd00::/120\"",
       [](const EniConfig& c) { EXPECT_EQ(c.service_cidr->ToString(), "172.21.0.0/20"); }, "\"10.0.0.1/24\"",
       "is not a valid IPv4 CIDR"},
      {"kube_client_qps", "20.5", [](const EniConfig& c) { EXPECT_EQ(c.kube_client_qps, 20.5); }, "\"20\"",
       "expected requests per second"},
      {"kube_client_burst", "40", [](const EniConfig& c) { EXPECT_EQ(c.kube_client_burst, 40); }, "0",
       "out of range"},
      {"enable_patch_pod_ips", "false", [](const EniConfig& c) { EXPECT_FALSE(c.enable_patch_pod_ips); }, "\"false\"",
       "expected true or false"},
      {"disable_device_plugin", "true", [](const EniConfig& c) { EXPECT_TRUE(c.disable_device_plugin); }, "1",
       "expected true or false"},
      {"ip_stack", "\"dual\"",
       [](const EniConfig& c) {
         EXPECT_EQ(c.ip_stack, IpStack::kDual);
         EXPECT_EQ(PoolConfigOf(c).ip_stack, IpStack::kDual);
       },
       "\"ipv6\"", "unsupported ip_stack \"ipv6\""},
      {"ipam_type", "\"default\"", [](const EniConfig&) {}, "\"remote\"", "unknown IPAM type"},
      {"enable_eni_trunking", "false", [](const EniConfig&) {}, "\"no\"", "expected true or false"},
      {"enable_erdma", "false", [](const EniConfig&) {}, "0", "expected true or false"},
      {"enable_ip_prefix", "false", [](const EniConfig&) {}, "\"yes\"", "expected true or false"},
      {"ipv4_prefix_count", "0", [](const EniConfig&) {}, "-1", "out of range"},
      {"backoff_override", R"({"eni_ops": {"Duration": 2000000000, "Steps": 3}})",
       [](const EniConfig& c) { EXPECT_EQ(c.backoff.eni_attach_wait.steps, 3); }, R"({"eni_create": 3})",
       "entry \"eni_create\" must be an object"},
      {"extra_routes", "[]", [](const EniConfig&) {}, R"([{"dst": "10.0.0.0/33"}])", "each route is {\"dst\""},
      {"credential_path", "\"/var/addon/token-config\"",
       [](const EniConfig& c) { EXPECT_EQ(c.credential_path, "/var/addon/token-config"); }, "[]", "expected a string"},
      {"eni_mode", "\"exclusive\"", [](const EniConfig& c) { EXPECT_EQ(c.eni_mode, EniMode::kExclusive); },
       "\"trunk\"", "use shared or exclusive"},
      {"bandwidth_annotation_error", "\"ignore\"",
       [](const EniConfig& c) { EXPECT_EQ(c.bandwidth_annotation_error, BandwidthAnnotationError::kIgnore); },
       "\"warn\"", "use refuse or ignore"},
      {"metadata_credentials_for_pods", "\"allow\"",
       [](const EniConfig& c) { EXPECT_EQ(c.metadata_credentials_for_pods, MetadataCredentialsForPods::kAllow); },
       "false", "expected a string"},
      {"credential_source", "\"ram_role\"",
       [](const EniConfig& c) { EXPECT_EQ(c.credential_source, CredentialSource::kRamRole); }, "\"sts\"",
       "use auto, static, file or ram_role"},
  };
}

TEST(ParseEniConfig, EveryKeyValidInvalid) {
  for (const auto& k : KeyCases()) {
    SCOPED_TRACE(k.key);
    auto ok = ParseEniConfig(fmt::format(R"({{"{}": {}}})", k.key, k.valid));
    ASSERT_TRUE(ok.ok()) << ok.error().ToString();
    k.check(ok->config);
    EXPECT_TRUE(ok->warnings.empty()) << AllWarnings(*ok);

    auto bad = ParseEniConfig(fmt::format(R"({{"{}": {}}})", k.key, k.invalid));
    ASSERT_FALSE(bad.ok()) << k.invalid;
    EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
    const std::string text = bad.error().ToString();
    EXPECT_NE(text.find(fmt::format("\"{}\"", k.key)), std::string::npos) << text;
    EXPECT_NE(text.find(k.error), std::string::npos) << text;
  }
}

// Upstream's zero values that mean "the default".
TEST(ParseEniConfig, ZeroMeansUpstreamsDefault) {
  auto p = ParseEniConfig(
      R"({"idle_ip_reclaim_batch_size": 0, "idle_ip_reclaim_jitter_factor": "0", "eni_cap_ratio": 0})");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->config.idle_ip_reclaim_batch_size, 5);
  EXPECT_EQ(p->config.idle_ip_reclaim_jitter_factor, 0.1);
  EXPECT_EQ(p->config.eni_cap_ratio, 1);
  auto n = ParseEniConfig(R"({"idle_ip_reclaim_jitter_factor": 0.3})");
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(n->config.idle_ip_reclaim_jitter_factor, 0.3);
}

// "ordered" is upstream's chart default and means "most available IPs"
// there; "list" keeps the configuration order.
TEST(ParseEniConfig, VSwitchSelectionPolicyAsUpstream) {
  struct Row {
    const char* value;
    VSwitchSelectionPolicy want;
  } rows[] = {{"ordered", VSwitchSelectionPolicy::kMost},
              {"most", VSwitchSelectionPolicy::kMost},
              {"random", VSwitchSelectionPolicy::kRandom},
              {"", VSwitchSelectionPolicy::kRandom},
              {"list", VSwitchSelectionPolicy::kListOrder}};
  for (const auto& r : rows) {
    auto p = ParseEniConfig(fmt::format(R"({{"vswitch_selection_policy": "{}"}})", r.value));
    ASSERT_TRUE(p.ok()) << r.value << ": " << p.error().ToString();
    EXPECT_EQ(p->config.vswitch_selection_policy, r.want) << r.value;
  }
}

TEST(ParseEniConfig, MinPoolAboveMaxIsLoweredWithAWarning) {
  auto p = ParseEniConfig(R"({"min_pool_size": 6, "max_pool_size": 5})");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ(p->config.min_pool_size, 5);
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("min_pool_size (6) is greater than max_pool_size (5)"), std::string::npos)
      << p->warnings[0];
}

// A key of a feature we lack warns only when it asks for the feature, and
// says what the node does instead.
TEST(ParseEniConfig, MissingFeaturesWarnWithWhatTheNodeDoes) {
  struct Row {
    const char* json;
    const char* key;
    const char* instead;
  } rows[] = {
      {R"({"enable_eni_trunking": true})", "enable_eni_trunking", "pods take addresses of the node's shared ENIs"},
      {R"({"enable_erdma": true})", "enable_erdma", "no aliyun/erdma resource is offered"},
      {R"({"ipam_type": "crd"})", "ipam_type", "this node manages its own ENIs"},
      {R"({"enable_ip_prefix": true})", "enable_ip_prefix", "secondary IPs of the node's ENIs"},
      {R"({"ipv4_prefix_count": 4})", "ipv4_prefix_count", "secondary IPs of the node's ENIs"},
      {R"({"backoff_override": {"wait_leni_status": {"Duration": 1000000000, "Steps": 3}}})", "backoff_override",
       "\"wait_leni_status\" has no effect on this terwayd: upstream's terway-controlplane"},
      {R"({"backoff_override": {"eni_delete_confirm": {"Steps": 3}}})", "backoff_override",
       "\"eni_delete_confirm\" has no effect on this terwayd: this terwayd does not poll"},
      {R"({"extra_routes": [{"dst": "10.0.0.0/8"}]})", "extra_routes", "pods get their default route only"},
      {R"({"prefix": "x"})", "prefix", "ignored"},
      {R"({"host_stack_cidrs": ["169.254.20.10/32"]})", "host_stack_cidrs", "10-terway.conf"},
  };
  for (const auto& r : rows) {
    auto p = ParseEniConfig(r.json);
    ASSERT_TRUE(p.ok()) << r.json << ": " << p.error().ToString();
    ASSERT_EQ(p->warnings.size(), 1u) << r.json << "\n" << AllWarnings(*p);
    EXPECT_NE(p->warnings[0].find(fmt::format("\"{}\"", r.key)), std::string::npos) << p->warnings[0];
    EXPECT_NE(p->warnings[0].find(r.instead), std::string::npos) << p->warnings[0];
  }
}

// backoff_override: upstream's names for the waits we have, with Kubernetes
// wait.Backoff's fields (Go's JSON: nanoseconds, names in any case).
TEST(ParseEniConfig, BackoffOverrideSetsTheNamedWaits) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  auto p = ParseEniConfig(R"({"backoff_override": {
      "eni_ops": {"Duration": 3000000000, "Factor": 1.5, "Jitter": 0.5, "Steps": 8, "InitialDelay": 3000000000},
      "wait_eni_status": {"duration": "250ms", "factor": 0, "steps": 4, "cap": "1s"},
      "eni_create": {"Duration": 10000000000, "Factor": 2, "Jitter": 0.3, "Steps": 2},
      "eni_ip_ops": {"Duration": 5000000000, "Factor": 1, "Jitter": 1.3, "Steps": 6}}})");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_TRUE(p->warnings.empty()) << AllWarnings(*p);
  const CloudBackoffs& b = p->config.backoff;
  EXPECT_EQ(b.eni_attach_wait, (cloud::StepBackoff{.initial_delay = seconds(3), .duration = seconds(3),
                                                   .factor = 1.5, .jitter = 0.5, .steps = 8}));
  EXPECT_EQ(b.eni_detach_wait,
            (cloud::StepBackoff{.duration = milliseconds(250), .factor = 0, .steps = 4, .cap = seconds(1)}));
  ASSERT_TRUE(b.eni_create.has_value());
  EXPECT_EQ(b.eni_create->steps, 2);
  auto actions = b.ActionBackoffs();
  EXPECT_EQ(actions.size(), 5u);
  EXPECT_EQ(actions["CreateNetworkInterface"].duration, seconds(10));
  EXPECT_EQ(actions["AssignPrivateIpAddresses"].jitter, 1.3);
  EXPECT_EQ(actions["UnassignIpv6Addresses"].steps, 6);

  // Nothing given: the waits this terwayd always had, and no per-action retries.
  auto d = ParseEniConfig("{}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->config.backoff.eni_attach_wait, cloud::kDefaultEniStatusWait);
  EXPECT_EQ(d->config.backoff.eni_detach_wait, cloud::kDefaultEniStatusWait);
  EXPECT_TRUE(d->config.backoff.ActionBackoffs().empty());
}

TEST(ParseEniConfig, BackoffOverrideBadValuesNameTheEntry) {
  struct Row {
    const char* entry;
    const char* must_contain;
  } rows[] = {
      {R"("eni_ops": {"Duration": -1, "Steps": 3})", "\"eni_ops\".Duration is negative"},
      {R"("eni_ops": {"Duration": "-2s", "Steps": 3})", "\"eni_ops\".Duration: invalid duration"},
      {R"("eni_ops": {"Duration": true, "Steps": 3})", "must be nanoseconds"},
      {R"("eni_create": {"Factor": 0.5, "Steps": 3})", "\"eni_create\".Factor is 0.5; give 1 or more"},
      {R"("eni_create": {"Jitter": -0.1, "Steps": 3})", "\"eni_create\".Jitter is -0.1"},
      {R"("eni_ip_ops": {"Duration": 1000})", "\"eni_ip_ops\".Steps is missing or 0"},
      {R"("eni_ip_ops": {"Steps": 0})", "\"eni_ip_ops\".Steps is 0; give 1 to 10000"},
      {R"("eni_ip_ops": {"Steps": -2})", "\"eni_ip_ops\".Steps is -2"},
      {R"("eni_ip_ops": {"Steps": 1.5})", "must be an integer"},
      {R"("wait_leni_status": {"Steps": 0})", "\"wait_leni_status\".Steps is 0"},  // checked though unused
      {R"("eni_ops": {"InitialDelay": "1x", "Steps": 1})", "unknown unit"},
  };
  for (const auto& r : rows) {
    std::string text = fmt::format(R"({{"backoff_override": {{{}}}}})", r.entry);
    auto p = ParseEniConfig(text);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_NE(p.error().message.find("eni_conf key \"backoff_override\""), std::string::npos) << p.error().message;
    EXPECT_NE(p.error().message.find(r.must_contain), std::string::npos) << text << ": " << p.error().message;
  }
}

TEST(ParseEniConfig, BackoffOverrideUnknownNamesAndFieldsWarn) {
  auto p = ParseEniConfig(R"({"backoff_override": {"eni_opps": {"Steps": 2}, "eni_ops": {"Steps": 2, "Retries": 4},
                                                    "": {"Steps": 2}}})");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  std::string all = AllWarnings(*p);
  EXPECT_NE(all.find("\"eni_opps\" is not a backoff name upstream Terway knows"), std::string::npos) << all;
  EXPECT_NE(all.find("\"eni_ops\" has no field \"Retries\""), std::string::npos) << all;
  EXPECT_NE(all.find("the override of \"\" has no effect"), std::string::npos) << all;
  EXPECT_EQ(p->config.backoff.eni_attach_wait.steps, 2);
}

TEST(ParseEniConfig, CrossKeyErrorsNameTheKeys) {
  struct Row {
    const char* json;
    const char* must_contain;
  } rows[] = {
      {R"({"access_key": "ak"})", "\"access_secret\" is missing"},
      {R"({"credential_source": "static"})", "access_key/access_secret are missing"},
      {R"({"credential_source": "file"})", "credential_path is missing"},
      {R"({"security_groups": [""]})", "\"security_groups\": lists an empty security group id"},
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

TEST(PoolConfigOf, CarriesThePoolsSettingsAndTheBuiltInBlockList) {
  auto p = ParseEniConfig(R"({
    "max_pool_size": 9, "min_pool_size": 2, "ip_warm_up_size": 4, "max_eni": 3, "min_eni": 1,
    "eni_cap_ratio": 0.5, "eni_cap_shift": 1, "eni_selection_policy": "least_ips",
    "security_groups": ["sg-1"], "resource_group_id": "rg-1", "eni_tag_filter": {"pool": "a"},
    "eni_tag_block_list": [{"key": "owner", "value": "rdma"}, {"key": "creator", "value": "alibabacloud-erdma-controller"}],
    "idle_ip_reclaim_after": "1m", "idle_ip_reclaim_jitter_factor": "0.3",
    "access_key": "ak", "access_secret": "sk"
  })");
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  ipam::PoolConfig pc = PoolConfigOf(p->config);
  EXPECT_EQ(pc.max_pool_size, 9);
  EXPECT_EQ(pc.min_pool_size, 2);
  EXPECT_EQ(pc.ip_warm_up_size, 4);
  EXPECT_EQ(pc.max_eni, 3);
  EXPECT_EQ(pc.min_eni, 1);
  EXPECT_EQ(pc.eni_cap_ratio, 0.5);
  EXPECT_EQ(pc.eni_cap_shift, 1);
  EXPECT_EQ(pc.eni_selection_policy, ipam::EniSelectionPolicy::kLeastIps);
  EXPECT_EQ(pc.security_groups, std::vector<std::string>{"sg-1"});
  EXPECT_EQ(pc.resource_group_id, "rg-1");
  EXPECT_EQ(pc.eni_tag_filter.at("pool"), "a");
  EXPECT_EQ(pc.idle_ip_reclaim_after, seconds(60));
  EXPECT_EQ(pc.idle_ip_reclaim_jitter_factor, 0.3);
  // Upstream's built-in entries first, then the operator's, no duplicates.
  EXPECT_EQ(pc.eni_tag_block_list,
            (std::vector<EniTag>{{"creator", "alibabacloud-erdma-controller"},
                                 {"terway.alibabacloud.com/excluded", "true"},
                                 {"owner", "rdma"}}));
  // The built-in list applies with nothing configured too.
  EXPECT_EQ(PoolConfigOf(EniConfig{}).eni_tag_block_list, BuiltInEniTagBlockList());
}

}  // namespace
}  // namespace terway::config
