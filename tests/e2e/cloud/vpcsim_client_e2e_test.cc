// The real cloud client against the real `vpcsim serve` binary (fabric none:
// no namespaces, loopback only): the whole ENI lifecycle, idempotent creates,
// documented errors, retries under injected throttling, the metadata token
// flow and RAM-role (STS) credentials accepted by the API.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_clients.h"
#include "cloud/curl_http_transport.h"
#include "cloud/ecs_api.h"
#include "cloud/metadata.h"
#include "e2e/harness/process.h"
#include "common/strings.h"
#include "test_util.h"

namespace terway::cloud {
namespace {

using terway::testing::Process;
using terway::testing::TempDir;

constexpr const char* kKeyId = "LTAIcloudE2e";
constexpr const char* kSecret = "cloud-e2e-secret";
constexpr const char* kVSwitch = "vsw-cloude2e01";
constexpr const char* kSecurityGroup = "sg-cloude2e01";

// Real clock, sleeper and randomness; only the transport and credentials vary.
OpenApiClient::Deps RealDeps(HttpTransport* transport, CredentialProvider* creds) {
  OpenApiClient::Deps d;
  d.transport = transport;
  d.credentials = creds;
  return d;
}

class VpcsimClientE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    instance_ = "i-cloude2e" + terway::testing::UniqueSuffix();
    for (auto& c : instance_) {
      if (c == 'x') c = 'a';  // keep the id alphanumeric
    }
    std::string world = fmt::format(R"(name: ce{}
region: cn-hangzhou
zones: [cn-hangzhou-h]
vpc:
  id: vpc-cloude2e01
  cidr: 198.18.0.0/16
  ipv6_cidr: "fd00:c612::/56"
  vswitches:
    - id: {}
      zone: cn-hangzhou-h
      cidr: 198.18.8.0/24
      ipv6_cidr: "fd00:c612:0:8::/64"
instances:
  - id: {}
    instance_type: ecs.g7.large
    vswitch: {}
access_keys:
  - id: {}
    secret: {}
ram_role: TerwayRole
security_group: {}
sts_ttl_seconds: 3600
metadata_hardened: true
)",
                                    getpid() % 10000, kVSwitch, instance_, kVSwitch, kKeyId,
                                    kSecret, kSecurityGroup);
    ASSERT_TRUE(terway::testing::WriteFile(dir_.File("world.yaml"), world).ok());
    auto p = Process::Start({{VPCSIM_BINARY, "serve", "--world", dir_.File("world.yaml"),
                              "--state", dir_.File("state"), "--listen", "127.0.0.1:0",
                              "--port-file", dir_.File("port"), "--fabric", "none",
                              "--attach-delay-ms", "200"},
                             "",
                             dir_.File("vpcsim.log"),
                             {}});
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    vpcsim_ = std::move(p).value();
    ASSERT_TRUE(terway::testing::WaitFor(
        [&] { return !terway::testing::ReadFile(dir_.File("port")).empty() || !vpcsim_.running(); },
        std::chrono::seconds(30)));
    ASSERT_TRUE(vpcsim_.running()) << vpcsim_.Log();
    url_ = "http://127.0.0.1:" + std::string(Trim(terway::testing::ReadFile(dir_.File("port"))));

    OpenApiConfig cfg;
    cfg.region_id = "cn-hangzhou";
    cfg.endpoints = {{"ecs", url_}, {"vpc", url_}};
    // Short waits: the test runs against a local emulator.
    cfg.backoff = {std::chrono::milliseconds(5), std::chrono::milliseconds(50), 2.0};
    cfg.max_attempts = 30;
    cfg.call_deadline = std::chrono::seconds(30);
    client_ = std::make_unique<OpenApiClient>(cfg, RealDeps(curl_.get(), &creds_));
    ecs_ = std::make_unique<OpenApiEcsClient>(client_.get());
  }

  void TearDown() override {
    bool was_running = vpcsim_.running();
    // Close kept-alive connections first: the server waits for them on stop.
    ecs_.reset();
    client_.reset();
    curl_.reset();
    auto stop_start = std::chrono::steady_clock::now();
    int status = vpcsim_.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - stop_start, std::chrono::seconds(4))
        << "vpcsim did not stop promptly on SIGTERM";
    if (HasFailure()) {
      std::cerr << "vpcsim " << (was_running ? "was running" : "had exited") << ", wait status "
                << status << "; log:\n" << vpcsim_.Log() << "\n";
    }
  }

  Result<nlohmann::json> Admin(const std::string& method, const std::string& path,
                               const nlohmann::json& body = nullptr) {
    HttpRequest req;
    req.method = method;
    req.url = url_ + path;
    if (!body.is_null()) {
      req.body = body.dump();
      req.headers.emplace_back("Content-Type", "application/json");
    }
    TERWAY_ASSIGN_OR_RETURN(HttpResponse resp, curl_->Do(req));
    if (resp.status != 200) return Errorf(ErrorCode::kInternal, "admin {}: HTTP {} {}", path, resp.status, resp.body);
    return nlohmann::json::parse(resp.body, nullptr, false);
  }

  CreateEniRequest NewEni(int secondary) {
    CreateEniRequest req;
    req.vswitch_id = kVSwitch;
    req.security_group_ids = {kSecurityGroup};
    req.secondary_private_ip_count = secondary;
    req.tags = {{"creator", "terway"}};
    return req;
  }

  TempDir dir_;
  Process vpcsim_;
  std::string instance_;
  std::string url_;
  std::unique_ptr<CurlHttpTransport> curl_ = std::make_unique<CurlHttpTransport>();
  StaticCredentialProvider creds_{kKeyId, kSecret};
  std::unique_ptr<OpenApiClient> client_;
  std::unique_ptr<OpenApiEcsClient> ecs_;
  RealClock& clock_ = RealClock::Instance();
  RealSleeper& sleeper_ = RealSleeper::Instance();
};

TEST_F(VpcsimClientE2eTest, EniLifecycle) {
  auto types = ecs_->DescribeInstanceTypes({"ecs.g7.large"});
  ASSERT_TRUE(types.ok()) << types.error().ToString();
  ASSERT_EQ(types->size(), 1u);
  EXPECT_GT((*types)[0].eni_quantity, 1);
  EXPECT_GT((*types)[0].eni_private_ip_address_quantity, 1);

  auto vsws = ecs_->DescribeVSwitches("", {kVSwitch});
  ASSERT_TRUE(vsws.ok()) << vsws.error().ToString();
  ASSERT_EQ(vsws->size(), 1u);
  EXPECT_EQ((*vsws)[0].cidr_block, "198.18.8.0/24");
  int64_t free_before = (*vsws)[0].available_ip_address_count;

  auto eni = ecs_->CreateNetworkInterface(NewEni(2));
  ASSERT_TRUE(eni.ok()) << eni.error().ToString();
  const std::string id = eni->network_interface_id;
  EXPECT_EQ(eni->private_ip_sets.size(), 3u);
  EXPECT_EQ(eni->status, kEniAvailable);

  auto attached = ecs_->AttachNetworkInterface(id, instance_);
  ASSERT_TRUE(attached.ok()) << attached.error().ToString();
  WaitOptions wait;
  // 20 ms doubling to 200 ms, about 20 s in all.
  wait.backoff = {.duration = std::chrono::milliseconds(20), .factor = 2.0, .steps = 105,
                  .cap = std::chrono::milliseconds(200)};
  auto inuse = WaitForEniStatus(ecs_.get(), id, kEniInUse, &clock_, &sleeper_, wait);
  ASSERT_TRUE(inuse.ok()) << inuse.error().ToString();
  EXPECT_EQ(inuse->instance_id, instance_);

  auto ips = ecs_->AssignPrivateIpAddresses({id, 3, {}, ""});
  ASSERT_TRUE(ips.ok()) << ips.error().ToString();
  EXPECT_EQ(ips->size(), 3u);
  auto v6 = ecs_->AssignIpv6Addresses({id, 1, {}, ""});
  ASSERT_TRUE(v6.ok()) << v6.error().ToString();
  EXPECT_EQ(v6->size(), 1u);

  DescribeEnisFilter by_instance;
  by_instance.instance_id = instance_;
  auto mine = ecs_->DescribeNetworkInterfaces(by_instance);
  ASSERT_TRUE(mine.ok()) << mine.error().ToString();
  const NetworkInterface* found = nullptr;
  for (const auto& e : *mine) {
    if (e.network_interface_id == id) found = &e;
  }
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->private_ip_sets.size(), 6u);
  std::set<std::string> addrs;
  for (const auto& ip : found->private_ip_sets) addrs.insert(ip.address);
  for (const auto& ip : *ips) EXPECT_TRUE(addrs.contains(ip)) << ip;
  // Filter by one of its secondary IPs finds exactly this ENI.
  DescribeEnisFilter by_ip;
  by_ip.private_ips = {(*ips)[0]};
  auto one = ecs_->DescribeNetworkInterfaces(by_ip);
  ASSERT_TRUE(one.ok()) << one.error().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].network_interface_id, id);

  ASSERT_TRUE(ecs_->UnassignIpv6Addresses(id, *v6).ok());
  ASSERT_TRUE(ecs_->UnassignPrivateIpAddresses(id, *ips).ok());
  // Unassigning again is the documented caller error, not retried.
  auto again = ecs_->UnassignPrivateIpAddresses(id, *ips);
  ASSERT_FALSE(again.ok());
  EXPECT_FALSE(again.error().retryable);
  EXPECT_FALSE(again.error().cloud_code.empty());

  auto detached = ecs_->DetachNetworkInterface(id, instance_);
  ASSERT_TRUE(detached.ok()) << detached.error().ToString();
  auto avail = WaitForEniStatus(ecs_.get(), id, kEniAvailable, &clock_, &sleeper_, wait);
  ASSERT_TRUE(avail.ok()) << avail.error().ToString();
  ASSERT_TRUE(ecs_->DeleteNetworkInterface(id).ok());
  DescribeEnisFilter by_id;
  by_id.eni_ids = {id};
  auto gone = ecs_->DescribeNetworkInterfaces(by_id);
  ASSERT_TRUE(gone.ok()) << gone.error().ToString();
  EXPECT_TRUE(gone->empty());
  auto after = ecs_->DescribeVSwitches("", {kVSwitch});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)[0].available_ip_address_count, free_before) << "every address returned";
}

// The IPv6 side, our real client against the real vpcsim binary: the
// vSwitch's block and the type's quota, assign by count and by name (with a
// ClientToken replayed), describe, the metadata service's IPv6 entries, a
// quota refusal, unassign, and the addresses free again afterwards.
TEST_F(VpcsimClientE2eTest, Ipv6AssignDescribeMetadataUnassign) {
  auto vsws = ecs_->DescribeVSwitches("", {kVSwitch});
  ASSERT_TRUE(vsws.ok()) << vsws.error().ToString();
  ASSERT_EQ(vsws->size(), 1u);
  EXPECT_EQ((*vsws)[0].ipv6_cidr_block, "fd00:c612:0:8::/64");
  auto types = ecs_->DescribeInstanceTypes({"ecs.g7.large"});
  ASSERT_TRUE(types.ok()) << types.error().ToString();
  const int quota = types->at(0).eni_ipv6_address_quantity;
  ASSERT_EQ(quota, 6);

  auto eni = ecs_->CreateNetworkInterface(NewEni(0));
  ASSERT_TRUE(eni.ok()) << eni.error().ToString();
  const std::string id = eni->network_interface_id;
  ASSERT_TRUE(ecs_->AttachNetworkInterface(id, instance_).ok());
  WaitOptions wait;
  wait.backoff = {.duration = std::chrono::milliseconds(20), .factor = 2.0, .steps = 105,
                  .cap = std::chrono::milliseconds(200)};
  auto inuse = WaitForEniStatus(ecs_.get(), id, kEniInUse, &clock_, &sleeper_, wait);
  ASSERT_TRUE(inuse.ok()) << inuse.error().ToString();

  const std::string token = "e2e-v6-" + terway::testing::UniqueSuffix();
  auto by_count = ecs_->AssignIpv6Addresses({id, 2, {}, token});
  ASSERT_TRUE(by_count.ok()) << by_count.error().ToString();
  ASSERT_EQ(by_count->size(), 2u);
  auto replay = ecs_->AssignIpv6Addresses({id, 2, {}, token});
  ASSERT_TRUE(replay.ok()) << replay.error().ToString();
  EXPECT_EQ(*replay, *by_count) << "the same ClientToken is the same assignment";
  auto named = ecs_->AssignIpv6Addresses({id, 0, {"fd00:c612:0:8::abc"}, ""});
  ASSERT_TRUE(named.ok()) << named.error().ToString();
  EXPECT_EQ(*named, std::vector<std::string>{"fd00:c612:0:8::abc"});
  std::vector<std::string> held = *by_count;
  held.push_back("fd00:c612:0:8::abc");

  DescribeEnisFilter by_id;
  by_id.eni_ids = {id};
  auto described = ecs_->DescribeNetworkInterfaces(by_id);
  ASSERT_TRUE(described.ok()) << described.error().ToString();
  ASSERT_EQ(described->size(), 1u);
  EXPECT_EQ((*described)[0].ipv6_sets, held);

  MetadataConfig mc;
  mc.base_url = url_;
  mc.extra_headers = {{"X-Vpcsim-Instance-Id", instance_}};
  HttpMetadataClient md(mc, curl_.get(), &clock_, &sleeper_);
  const std::string mac = (*described)[0].mac_address;
  auto md_v6 = md.EniIpv6s(mac);
  ASSERT_TRUE(md_v6.ok()) << md_v6.error().ToString();
  EXPECT_EQ(*md_v6, held);
  EXPECT_EQ(md.EniIpv6Gateway(mac).value_or("?"), "fd00:c612:0:8:ffff:ffff:ffff:fff7");
  EXPECT_EQ(md.EniVSwitchIpv6CidrBlock(mac).value_or("?"), "fd00:c612:0:8::/64");
  EXPECT_EQ(md.EniVpcIpv6CidrBlocks(mac).value_or({}), std::vector<std::string>{"fd00:c612::/56"});

  // Past the type's quota: the documented code, not retried, nothing added.
  auto over = ecs_->AssignIpv6Addresses({id, quota - 2, {}, ""});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().cloud_code, "InvalidOperation.Ipv6CountExceeded");
  EXPECT_FALSE(over.error().retryable);
  // Someone else's address by name: InvalidIp.IpAssigned.
  auto other = ecs_->CreateNetworkInterface(NewEni(0));
  ASSERT_TRUE(other.ok()) << other.error().ToString();
  auto taken = ecs_->AssignIpv6Addresses({other->network_interface_id, 0, {held[0]}, ""});
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().cloud_code, "InvalidIp.IpAssigned");

  ASSERT_TRUE(ecs_->UnassignIpv6Addresses(id, held).ok());
  auto none = md.EniIpv6s(mac);
  ASSERT_TRUE(none.ok()) << none.error().ToString();
  EXPECT_TRUE(none->empty());
  auto after = ecs_->DescribeNetworkInterfaces(by_id);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_TRUE(after->at(0).ipv6_sets.empty());
  auto again = ecs_->UnassignIpv6Addresses(id, {held[0]});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().cloud_code, "InvalidIp.IpUnassigned");
  // Free again: the other ENI may take it now.
  auto retaken = ecs_->AssignIpv6Addresses({other->network_interface_id, 0, {held[0]}, ""});
  ASSERT_TRUE(retaken.ok()) << retaken.error().ToString();
}

TEST_F(VpcsimClientE2eTest, ClientTokenMakesCreateIdempotent) {
  CreateEniRequest req = NewEni(0);
  req.client_token = "e2e-token-" + terway::testing::UniqueSuffix();
  auto a = ecs_->CreateNetworkInterface(req);
  auto b = ecs_->CreateNetworkInterface(req);
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  EXPECT_EQ(a->network_interface_id, b->network_interface_id);
  DescribeEnisFilter avail;
  avail.status = kEniAvailable;
  auto all = ecs_->DescribeNetworkInterfaces(avail);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
  EXPECT_TRUE(ecs_->DeleteNetworkInterface(a->network_interface_id).ok());
}

TEST_F(VpcsimClientE2eTest, CallerErrorsAreNotRetried) {
  CreateEniRequest req = NewEni(0);
  req.vswitch_id = "vsw-doesnotexist";
  auto r = ecs_->CreateNetworkInterface(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCloud);
  EXPECT_FALSE(r.error().retryable);
  EXPECT_GE(r.error().http_status, 400);
  EXPECT_LT(r.error().http_status, 500);
  auto st = client_->Stats()["CreateNetworkInterface"];
  EXPECT_EQ(st.attempts, 1u);
  // A wrong secret is refused by the server's signature check.
  StaticCredentialProvider wrong(kKeyId, "not-the-secret");
  OpenApiConfig cfg = client_->config();
  OpenApiClient bad(cfg, RealDeps(curl_.get(), &wrong));
  auto sig = bad.Call(Product::kEcs, "DescribeInstances", {});
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.error().cloud_code, "SignatureDoesNotMatch");
}

TEST_F(VpcsimClientE2eTest, RetriesThroughInjectedThrottlingAndErrors) {
  auto eni = ecs_->CreateNetworkInterface(NewEni(0));
  ASSERT_TRUE(eni.ok()) << eni.error().ToString();
  const std::string id = eni->network_interface_id;
  ASSERT_TRUE(Admin("POST", "/admin/faults",
                    {{"action", "AssignPrivateIpAddresses"}, {"throttle_rate", 0.4}, {"error_rate", 0.1}})
                  .ok());
  ASSERT_TRUE(Admin("POST", "/admin/faults", {{"action", "UnassignPrivateIpAddresses"}, {"throttle_rate", 0.4}}).ok());
  std::set<std::string> seen;
  for (int i = 0; i < 15; i++) {
    auto ips = ecs_->AssignPrivateIpAddresses({id, 2, {}, ""});
    ASSERT_TRUE(ips.ok()) << ips.error().ToString();
    ASSERT_EQ(ips->size(), 2u);
    ASSERT_TRUE(ecs_->UnassignPrivateIpAddresses(id, *ips).ok());
  }
  ASSERT_TRUE(Admin("POST", "/admin/faults/clear", nlohmann::json::object()).ok());
  auto st = client_->Stats()["AssignPrivateIpAddresses"];
  EXPECT_EQ(st.calls, 15u);
  EXPECT_EQ(st.errors, 0u);
  EXPECT_GT(st.retries, 0u) << "with 50% injected failures some calls must have been retried";
  auto stats = Admin("GET", "/admin/stats");
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  std::string dump = stats->dump();
  EXPECT_NE(dump.find("Throttling"), std::string::npos) << dump;
  // Retries never leaked addresses: the ENI holds only its primary IP.
  DescribeEnisFilter by_id;
  by_id.eni_ids = {id};
  auto now = ecs_->DescribeNetworkInterfaces(by_id);
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->size(), 1u);
  EXPECT_EQ((*now)[0].private_ip_sets.size(), 1u);
  EXPECT_TRUE(ecs_->DeleteNetworkInterface(id).ok());
}

TEST_F(VpcsimClientE2eTest, MetadataTokenFlowAndRamRoleCredentials) {
  MetadataConfig mc;
  mc.base_url = url_;
  mc.extra_headers = {{"X-Vpcsim-Instance-Id", instance_}};
  HttpMetadataClient md(mc, curl_.get(), &clock_, &sleeper_);
  auto id = md.InstanceId();
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  EXPECT_EQ(*id, instance_);
  EXPECT_EQ(md.RegionId().value_or("?"), "cn-hangzhou");
  EXPECT_EQ(md.VSwitchId().value_or("?"), kVSwitch);
  EXPECT_EQ(md.InstanceType().value_or("?"), "ecs.g7.large");
  auto macs = md.Macs();
  ASSERT_TRUE(macs.ok()) << macs.error().ToString();
  ASSERT_FALSE(macs->empty());
  auto primary_mac = md.PrimaryMac();
  ASSERT_TRUE(primary_mac.ok());
  auto eni_id = md.EniId(*primary_mac);
  ASSERT_TRUE(eni_id.ok()) << eni_id.error().ToString();
  EXPECT_TRUE(eni_id->starts_with("eni-")) << *eni_id;
  auto ips = md.EniPrivateIpv4s(*primary_mac);
  ASSERT_TRUE(ips.ok()) << ips.error().ToString();
  ASSERT_FALSE(ips->empty());
  EXPECT_EQ((*ips)[0], md.PrivateIpv4().value_or("?"));
  EXPECT_EQ(md.EniGateway(*primary_mac).value_or("?"), "198.18.8.253");

  // The world is hardened: a tokenless read is refused.
  HttpRequest raw;
  raw.url = url_ + "/latest/meta-data/instance-id";
  raw.headers = {{"X-Vpcsim-Instance-Id", instance_}};
  auto tokenless = curl_->Do(raw);
  ASSERT_TRUE(tokenless.ok());
  EXPECT_NE(tokenless->status, 200);

  // STS credentials of the instance's RAM role sign calls the API accepts.
  RamRoleCredentialProvider role(&md, &clock_);
  auto cred = role.Get();
  ASSERT_TRUE(cred.ok()) << cred.error().ToString();
  EXPECT_FALSE(cred->security_token.empty());
  OpenApiClient sts(client_->config(), RealDeps(curl_.get(), &role));
  OpenApiEcsClient sts_ecs(&sts);
  auto inst = sts_ecs.DescribeInstances({instance_});
  ASSERT_TRUE(inst.ok()) << inst.error().ToString();
  ASSERT_EQ(inst->size(), 1u);
  EXPECT_EQ((*inst)[0].instance_id, instance_);
}

TEST_F(VpcsimClientE2eTest, PostFormRequestsAreAcceptedToo) {
  OpenApiConfig cfg = client_->config();
  cfg.http_method = "POST";
  OpenApiClient post(cfg, RealDeps(curl_.get(), &creds_));
  OpenApiEcsClient ecs(&post);
  auto inst = ecs.DescribeInstances({instance_});
  ASSERT_TRUE(inst.ok()) << inst.error().ToString();
  ASSERT_EQ(inst->size(), 1u);
  EXPECT_EQ((*inst)[0].instance_type, "ecs.g7.large");
}

}  // namespace
}  // namespace terway::cloud
