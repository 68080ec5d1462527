// ip_stack dual end to end on the cloud side: the real IpPool over the real
// AliyunEniProvider and ECS client against the real `vpcsim serve` binary
// (fabric none: no namespaces, loopback only). A pod's pair is an IPv4 and
// an IPv6 of one ENI as the cloud lists it; reclaim gives both families back;
// a restarted pool finds the same pairs. Back to ip_stack ipv4, the IPv6s go
// back as their pods end; a vSwitch without an IPv6 block is not used.
#include <set>

#include <gtest/gtest.h>

#include "cloud/backoff.h"
#include "cloud/cloud_clients.h"
#include "cloud/curl_http_transport.h"
#include "cloud/ecs_api.h"
#include "common/strings.h"
#include "daemon/aliyun_eni_provider.h"
#include "daemon/start_checks.h"
#include "e2e/harness/process.h"
#include "ipam/pool.h"
#include "store/state_store.h"
#include "test_util.h"

namespace terway {
namespace {

using terway::testing::Process;
using terway::testing::TempDir;

constexpr const char* kKeyId = "LTAIdualE2e";
constexpr const char* kSecret = "dual-e2e-secret";
constexpr const char* kVpc = "vpc-duale2e01";
constexpr const char* kVSwitch = "vsw-duale2e01";
constexpr const char* kIpv4OnlyVSwitch = "vsw-duale2e02";  // no IPv6 block
constexpr const char* kSecurityGroup = "sg-duale2e01";
constexpr const char* kIpv6Prefix = "fd00:c613:0:8:";  // the vSwitch's /64

class DualStackPoolE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "i-duale2e" + terway::testing::UniqueSuffix();
    for (auto& c : instance_) {
      if (c == 'x') c = 'a';
    }
    std::string world = fmt::format(R"(name: de{}
region: cn-hangzhou
zones: [cn-hangzhou-h]
vpc:
  id: {}
  cidr: 198.18.0.0/16
  ipv6_cidr: "fd00:c613::/56"
  vswitches:
    - id: {}
      zone: cn-hangzhou-h
      cidr: 198.18.8.0/24
      ipv6_cidr: "fd00:c613:0:8::/64"
    - id: {}
      zone: cn-hangzhou-h
      cidr: 198.18.9.0/24
instances:
  - id: {}
    instance_type: ecs.g7.large
    vswitch: {}
access_keys:
  - id: {}
    secret: {}
security_group: {}
)",
                                    getpid() % 10000, kVpc, kVSwitch, kIpv4OnlyVSwitch, instance_, kVSwitch, kKeyId,
                                    kSecret,
                                    kSecurityGroup);
    ASSERT_TRUE(terway::testing::WriteFile(dir_.File("world.yaml"), world).ok());
    auto p = Process::Start({{VPCSIM_BINARY, "serve", "--world", dir_.File("world.yaml"), "--state",
                              dir_.File("state"), "--listen", "127.0.0.1:0", "--port-file", dir_.File("port"),
                              "--fabric", "none", "--attach-delay-ms", "100"},
                             "",
                             dir_.File("vpcsim.log"),
                             {}});
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    vpcsim_ = std::move(p).value();
    ASSERT_TRUE(terway::testing::WaitFor(
        [&] { return !terway::testing::ReadFile(dir_.File("port")).empty() || !vpcsim_.running(); },
        std::chrono::seconds(30)));
    ASSERT_TRUE(vpcsim_.running()) << vpcsim_.Log();
    const std::string url = "http://127.0.0.1:" + std::string(Trim(terway::testing::ReadFile(dir_.File("port"))));

    cloud::OpenApiConfig cfg;
    cfg.region_id = "cn-hangzhou";
    cfg.endpoints = {{"ecs", url}, {"vpc", url}};
    cfg.backoff = {std::chrono::milliseconds(5), std::chrono::milliseconds(50), 2.0};
    cfg.max_attempts = 30;
    cfg.call_deadline = std::chrono::seconds(30);
    cloud::OpenApiClient::Deps deps;
    deps.transport = curl_.get();
    deps.credentials = &creds_;
    client_ = std::make_unique<cloud::OpenApiClient>(cfg, deps);
    ecs_ = std::make_unique<cloud::OpenApiEcsClient>(client_.get());
    cloud::WaitOptions wait;
    wait.backoff = {.duration = std::chrono::milliseconds(20), .factor = 2.0, .steps = 105,
                    .cap = std::chrono::milliseconds(200)};
    provider_ = std::make_unique<daemon::AliyunEniProvider>(ecs_.get(), kVpc, &RealClock::Instance(),
                                                            &cloud::RealSleeper::Instance(), wait, wait);
    auto st = store::StateStore::Open(dir_.File("state.db"));
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();

    opts_.instance_id = instance_;
    opts_.instance_type = "ecs.g7.large";
    opts_.vswitch_ids = {kVSwitch};
    opts_.config.ip_stack = ipam::IpStack::kDual;
    opts_.config.security_groups = {kSecurityGroup};
    opts_.config.eni_tags["creator"] = "terway";
    opts_.config.vswitch_selection_policy = ipam::VSwitchSelectionPolicy::kListOrder;
    opts_.config.min_pool_size = 4;
    opts_.config.max_pool_size = 4;
    opts_.config.idle_ip_reclaim_interval = std::chrono::seconds(3600);
    opts_.config.ip_pool_sync_period = std::chrono::seconds(3600);
  }

  void TearDown() override {
    pool_.reset();
    provider_.reset();
    ecs_.reset();
    client_.reset();
    curl_.reset();
    vpcsim_.Stop();
    if (HasFailure()) std::cerr << "vpcsim log:\n" << vpcsim_.Log() << "\n";
  }

  void NewPool() {
    pool_.reset();
    auto p = ipam::IpPool::Create(opts_, provider_.get(), store_.get(), &clock_);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    pool_ = std::move(p).value();
  }

  // The cloud's view of this instance's terway ENIs: IPv4s and IPv6s.
  void CloudAddresses(std::set<std::string>* v4, std::set<std::string>* v6, std::string* eni_of_first_v6 = nullptr) {
    auto enis = provider_->ListEnis(instance_);
    ASSERT_TRUE(enis.ok()) << enis.error().ToString();
    for (const auto& e : *enis) {
      if (e.type == "Primary") continue;
      for (const auto& p : e.private_ip_sets) v4->insert(p.address);
      v6->insert(e.ipv6_sets.begin(), e.ipv6_sets.end());
      if (eni_of_first_v6 && !e.ipv6_sets.empty()) *eni_of_first_v6 = e.network_interface_id;
    }
  }

  ipam::PodIdentity Pod(const std::string& name) {
    ipam::PodIdentity p;
    p.namespace_ = "default";
    p.name = name;
    p.uid = "uid-" + name;
    p.container_id = "c-" + name;
    return p;
  }

  TempDir dir_;
  Process vpcsim_;
  std::string instance_;
  std::unique_ptr<cloud::CurlHttpTransport> curl_ = std::make_unique<cloud::CurlHttpTransport>();
  cloud::StaticCredentialProvider creds_{kKeyId, kSecret};
  std::unique_ptr<cloud::OpenApiClient> client_;
  std::unique_ptr<cloud::OpenApiEcsClient> ecs_;
  std::unique_ptr<daemon::AliyunEniProvider> provider_;
  std::unique_ptr<store::StateStore> store_;
  FakeClock clock_;
  ipam::PoolOptions opts_;
  std::unique_ptr<ipam::IpPool> pool_;
};

TEST_F(DualStackPoolE2eTest, PairsFromOneEniReclaimBothFamiliesAndSurviveARestart) {
  // The IPv6 quota is what the catalogue publishes: g5.xlarge has 10 IPv4
  // but 1 IPv6 per ENI, so a dual-stack node of that type runs 2 pods.
  auto g5 = provider_->GetInstanceLimits("ecs.g5.xlarge");
  ASSERT_TRUE(g5.ok()) << g5.error().ToString();
  EXPECT_EQ(ipam::MaxPods(*g5, ipam::EniMode::kShared, ipam::IpStack::kDual), 2);
  EXPECT_EQ(ipam::MaxPods(*g5, ipam::EniMode::kShared, ipam::IpStack::kIpv4), 20);

  NewPool();
  EXPECT_EQ(pool_->MaxPodCount(), 12);  // g7.large: 2 secondary ENIs x min(6, 6)
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), std::chrono::milliseconds(0));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  ASSERT_EQ(a->ipv6.rfind(kIpv6Prefix, 0), 0u) << a->ipv6 << " is not from the vSwitch's IPv6 block";
  std::set<std::string> v4, v6;
  std::string eni;
  CloudAddresses(&v4, &v6, &eni);
  EXPECT_EQ(v4.size(), 4u);
  EXPECT_EQ(v6.size(), 4u);
  EXPECT_TRUE(v4.count(a->ip));
  EXPECT_TRUE(v6.count(a->ipv6));
  EXPECT_EQ(eni, a->eni_id);

  // The operator lowers the pool; the restarted daemon keeps p1's pair and
  // gives back both addresses of the others.
  opts_.config.min_pool_size = 0;
  opts_.config.max_pool_size = 1;
  NewPool();
  auto got = pool_->Get("c-p1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->ipv6, a->ipv6);
  ASSERT_TRUE(pool_->ReclaimOnce().ok());
  v4.clear();
  v6.clear();
  CloudAddresses(&v4, &v6);
  // p1's pair and one idle pair (the ENI's primary IP cannot go).
  EXPECT_EQ(v4.size(), 2u);
  EXPECT_EQ(v6.size(), 2u);
  EXPECT_TRUE(v6.count(a->ipv6));
  auto stats = pool_->Stats();
  EXPECT_EQ(stats.in_use, 1);
  EXPECT_EQ(stats.idle, 1);
  EXPECT_EQ(stats.unpaired, 0);
  auto ips = store_->ListIps();
  ASSERT_TRUE(ips.ok());
  std::set<std::string> stored_v6;
  for (const auto& r : *ips) stored_v6.insert(r.ipv6);
  EXPECT_EQ(stored_v6, v6);
}

// The node is restarted with ip_stack ipv4: the IPv6s no pod holds go back at
// once (UnassignIpv6Addresses), the dual-stack pod keeps its own until it is
// released, then the next reconcile gives it back.
TEST_F(DualStackPoolE2eTest, BackToIpv4TheIpv6sGoBackAsTheirPodsEnd) {
  NewPool();
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), std::chrono::milliseconds(0));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  std::set<std::string> v4, v6;
  CloudAddresses(&v4, &v6);
  ASSERT_EQ(v6.size(), 4u);

  opts_.config.ip_stack = ipam::IpStack::kIpv4;
  NewPool();
  v4.clear();
  v6.clear();
  CloudAddresses(&v4, &v6);
  EXPECT_EQ(v6, std::set<std::string>{a->ipv6});
  EXPECT_EQ(v4.size(), 4u);  // the IPv4 pool keeps its addresses
  EXPECT_EQ(pool_->Stats().leftover_ipv6.held, 1);
  EXPECT_EQ(pool_->Stats().leftover_ipv6.returned_total, 3u);

  ASSERT_TRUE(pool_->Release("c-p1").ok());
  ASSERT_TRUE(pool_->Reconcile().ok());
  v4.clear();
  v6.clear();
  CloudAddresses(&v4, &v6);
  EXPECT_TRUE(v6.empty());
  EXPECT_EQ(pool_->Stats().leftover_ipv6.held, 0);
  auto ips = store_->ListIps();
  ASSERT_TRUE(ips.ok());
  for (const auto& r : *ips) EXPECT_EQ(r.ipv6, "") << r.ip;
}

// vpcsim refuses IPv6s on a vSwitch without an IPv6 block as ECS does; the
// start check leaves such a vSwitch out, and refuses when none is left.
TEST_F(DualStackPoolE2eTest, NewEnisGoOnlyToVSwitchesWithAnIpv6Block) {
  opts_.vswitch_ids = {kIpv4OnlyVSwitch};
  NewPool();
  auto refused = pool_->RefillOnce();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().ToString().find("InvalidVSwitch.Ipv6NotTurnOn"), std::string::npos)
      << refused.error().ToString();
  pool_.reset();

  auto none = daemon::CheckVSwitchesForIpStack(*provider_, ipam::IpStack::kDual, {kIpv4OnlyVSwitch}, "eni.json");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(none.error().ToString().find(kIpv4OnlyVSwitch), std::string::npos) << none.error().ToString();

  auto choice =
      daemon::CheckVSwitchesForIpStack(*provider_, ipam::IpStack::kDual, {kIpv4OnlyVSwitch, kVSwitch}, "eni.json");
  ASSERT_TRUE(choice.ok()) << choice.error().ToString();
  EXPECT_EQ(choice->usable, std::vector<std::string>{kVSwitch});
  opts_.vswitch_ids = choice->usable;
  NewPool();
  ASSERT_TRUE(pool_->RefillOnce().ok());
  auto a = pool_->Allocate(Pod("p1"), std::chrono::milliseconds(0));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_EQ(a->vswitch_id, kVSwitch);
  EXPECT_EQ(a->ipv6.rfind(kIpv6Prefix, 0), 0u) << a->ipv6;
}

}  // namespace
}  // namespace terway
