#include "cloud/metadata.h"

#include <gtest/gtest.h>

#include <map>

#include "cloud/fake_http_transport.h"

namespace terway::cloud {
namespace {

// A metadata service in a map, with the token flow: PUT /latest/api/token
// issues "tok-N"; reads must carry the current token.
class FakeMetadataServer {
 public:
  std::map<std::string, std::string> values;  // path under /latest/meta-data/
  int tokens_issued = 0;
  std::string valid_token;
  std::string last_ttl;
  int fail_next = 0;          // answer this many requests with fail_status
  int fail_status = 503;
  bool token_endpoint = true;  // false: an old service without the token flow

  Result<HttpResponse> Handle(const HttpRequest& req) {
    if (fail_next > 0) {
      fail_next--;
      return FakeHttpTransport::Reply(fail_status, "busy");
    }
    const std::string base = "http://mds.test/latest/";
    EXPECT_TRUE(req.url.starts_with(base)) << req.url;
    std::string rest = req.url.substr(base.size());
    if (rest == "api/token") {
      if (!token_endpoint) return FakeHttpTransport::Reply(404, "");
      EXPECT_EQ(req.method, "PUT");
      last_ttl = Header(req, "X-aliyun-ecs-metadata-token-ttl-seconds");
      valid_token = "tok-" + std::to_string(++tokens_issued);
      return FakeHttpTransport::Reply(200, valid_token);
    }
    EXPECT_EQ(req.method, "GET");
    if (token_endpoint && Header(req, "X-aliyun-ecs-metadata-token") != valid_token) {
      return FakeHttpTransport::Reply(401, "");
    }
    auto it = values.find(rest.substr(std::string("meta-data/").size()));
    if (it == values.end()) return FakeHttpTransport::Reply(404, "not found");
    return FakeHttpTransport::Reply(200, it->second);
  }

  static std::string Header(const HttpRequest& req, const std::string& name) {
    for (const auto& [k, v] : req.headers) {
      if (k == name) return v;
    }
    return "";
  }
};

class MetadataTest : public ::testing::Test {
 protected:
  MetadataTest() : sleeper_(&clock_) {
    server_.values = {
        {"instance-id", "i-123\n"},
        {"region-id", "cn-hangzhou"},
        {"zone-id", "cn-hangzhou-k"},
        {"instance/instance-type", "ecs.g7.large"},
        {"mac", "00:16:3e:00:00:01"},
        {"vpc-id", "vpc-1"},
        {"vpc-cidr-block", "198.18.0.0/15"},
        {"vswitch-id", "vsw-1"},
        {"vswitch-cidr-block", "198.18.0.0/24"},
        {"private-ipv4", "198.18.0.10"},
        {"network/interfaces/macs/", "00:16:3e:00:00:01/\n00:16:3e:00:00:02/"},
        {"network/interfaces/macs/00:16:3e:00:00:02/network-interface-id", "eni-2"},
        {"network/interfaces/macs/00:16:3e:00:00:02/primary-ip-address", "198.18.0.20"},
        {"network/interfaces/macs/00:16:3e:00:00:02/private-ipv4s", R"(["198.18.0.20","198.18.0.21"])"},
        {"network/interfaces/macs/00:16:3e:00:00:02/gateway", "198.18.0.253"},
        {"network/interfaces/macs/00:16:3e:00:00:02/netmask", "255.255.255.0"},
        {"network/interfaces/macs/00:16:3e:00:00:02/vswitch-cidr-block", "198.18.0.0/24"},
        {"network/interfaces/macs/00:16:3e:00:00:02/ipv6s", R"(["2001:db8::1"])"},
        // The IPv6 entries as Alibaba's metadata reference shows them: lists
        // bracketed and unquoted.
        {"network/interfaces/macs/00:16:3e:00:00:03/ipv6s", "[fd00:1::5, fd00:1::6]\n"},
        {"network/interfaces/macs/00:16:3e:00:00:03/ipv6-gateway", "fd00:1::ffff:ffff:ffff:fff7"},
        {"network/interfaces/macs/00:16:3e:00:00:03/vswitch-ipv6-cidr-block", "fd00:1::/64"},
        {"network/interfaces/macs/00:16:3e:00:00:03/vpc-ipv6-cidr-blocks", "[fd00:1::/56]"},
        {"network/interfaces/macs/00:16:3e:00:00:04/ipv6s", "[fd00:1::5,not-an-address]"},
        {"network/interfaces/macs/00:16:3e:00:00:05/ipv6s", "fd00:1::5"},
        {"network/interfaces/macs/00:16:3e:00:00:02/vpc-id", "vpc-1"},
        {"ram/security-credentials/", "TerwayRole"},
    };
    http_.SetHandler([this](const HttpRequest& r) { return server_.Handle(r); });
    MetadataConfig cfg;
    cfg.base_url = "http://mds.test/";
    cfg.token_ttl = std::chrono::seconds(600);
    client_ = std::make_unique<HttpMetadataClient>(cfg, &http_, &clock_, &sleeper_, [] { return 0.5; });
  }

  FakeClock clock_;
  FakeSleeper sleeper_;
  FakeMetadataServer server_;
  FakeHttpTransport http_;
  std::unique_ptr<HttpMetadataClient> client_;
};

TEST_F(MetadataTest, TypedGettersOverTheTokenFlow) {
  EXPECT_EQ(client_->InstanceId().value_or("?"), "i-123");  // whitespace trimmed
  EXPECT_EQ(client_->RegionId().value_or("?"), "cn-hangzhou");
  EXPECT_EQ(client_->ZoneId().value_or("?"), "cn-hangzhou-k");
  EXPECT_EQ(client_->InstanceType().value_or("?"), "ecs.g7.large");
  EXPECT_EQ(client_->PrimaryMac().value_or("?"), "00:16:3e:00:00:01");
  EXPECT_EQ(client_->VpcCidrBlock().value_or("?"), "198.18.0.0/15");
  EXPECT_EQ(client_->VSwitchCidrBlock().value_or("?"), "198.18.0.0/24");
  EXPECT_EQ(client_->PrivateIpv4().value_or("?"), "198.18.0.10");
  auto macs = client_->Macs();
  ASSERT_TRUE(macs.ok());
  EXPECT_EQ(*macs, (std::vector<std::string>{"00:16:3e:00:00:01", "00:16:3e:00:00:02"}));
  const std::string mac = "00:16:3e:00:00:02";
  EXPECT_EQ(client_->EniId(mac).value_or("?"), "eni-2");
  EXPECT_EQ(client_->EniPrimaryIp(mac).value_or("?"), "198.18.0.20");
  EXPECT_EQ(client_->EniGateway(mac).value_or("?"), "198.18.0.253");
  EXPECT_EQ(client_->EniNetmask(mac).value_or("?"), "255.255.255.0");
  EXPECT_EQ(client_->EniVpcId(mac).value_or("?"), "vpc-1");
  auto ips = client_->EniPrivateIpv4s(mac);
  ASSERT_TRUE(ips.ok()) << ips.error().ToString();
  EXPECT_EQ(*ips, (std::vector<std::string>{"198.18.0.20", "198.18.0.21"}));
  auto v6 = client_->EniIpv6s(mac);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(*v6, std::vector<std::string>{"2001:db8::1"});
  // An ENI without IPv6 has no ipv6s entry: empty, not an error.
  auto none = client_->EniIpv6s("00:16:3e:00:00:01");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(client_->RamRoles().value_or({}), std::vector<std::string>{"TerwayRole"});
  // One token for all of these, with the configured TTL.
  EXPECT_EQ(server_.tokens_issued, 1);
  EXPECT_EQ(server_.last_ttl, "600");
}

TEST_F(MetadataTest, Ipv6EntriesInTheDocumentedForm) {
  const std::string mac = "00:16:3e:00:00:03";
  auto v6 = client_->EniIpv6s(mac);
  ASSERT_TRUE(v6.ok()) << v6.error().ToString();
  EXPECT_EQ(*v6, (std::vector<std::string>{"fd00:1::5", "fd00:1::6"}));
  EXPECT_EQ(client_->EniIpv6Gateway(mac).value_or("?"), "fd00:1::ffff:ffff:ffff:fff7");
  EXPECT_EQ(client_->EniVSwitchIpv6CidrBlock(mac).value_or("?"), "fd00:1::/64");
  auto vpc = client_->EniVpcIpv6CidrBlocks(mac);
  ASSERT_TRUE(vpc.ok()) << vpc.error().ToString();
  EXPECT_EQ(*vpc, std::vector<std::string>{"fd00:1::/56"});
  // Without IPv6 on the vSwitch these entries are absent: an error the
  // caller sees as NotFound (the gateway), or empty (the addresses).
  auto gw = client_->EniIpv6Gateway("00:16:3e:00:00:01");
  ASSERT_FALSE(gw.ok());
  EXPECT_EQ(gw.error().code, ErrorCode::kNotFound);
  // A malformed list is an error naming the entry, never a partial answer.
  auto bad = client_->EniIpv6s("00:16:3e:00:00:04");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not-an-address"), std::string::npos) << bad.error().ToString();
  auto unbracketed = client_->EniIpv6s("00:16:3e:00:00:05");
  ASSERT_FALSE(unbracketed.ok());
  EXPECT_NE(unbracketed.error().message.find("ipv6s"), std::string::npos) << unbracketed.error().ToString();
}

TEST_F(MetadataTest, TokenRenewedBeforeTtlEnds) {
  ASSERT_TRUE(client_->InstanceId().ok());
  clock_.Advance(std::chrono::seconds(500));  // under 90% of 600 s: same token
  ASSERT_TRUE(client_->InstanceId().ok());
  EXPECT_EQ(server_.tokens_issued, 1);
  clock_.Advance(std::chrono::seconds(50));  // 550 s > 540 s: renew before expiry
  ASSERT_TRUE(client_->InstanceId().ok());
  EXPECT_EQ(server_.tokens_issued, 2);
}

TEST_F(MetadataTest, RefusedTokenIsReplacedOnce) {
  ASSERT_TRUE(client_->InstanceId().ok());
  server_.valid_token = "revoked";  // the service restarted
  auto r = client_->InstanceId();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(server_.tokens_issued, 2);
}

TEST_F(MetadataTest, RetriesOn429And5xx) {
  server_.fail_next = 3;
  server_.fail_status = 429;
  auto r = client_->VpcId();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, "vpc-1");
  EXPECT_EQ(sleeper_.sleeps().size(), 3u);
  for (auto d : sleeper_.sleeps()) EXPECT_LE(d, std::chrono::milliseconds(2000));
}

TEST_F(MetadataTest, PersistentFailureIsAClearError) {
  server_.fail_next = 1000;
  server_.fail_status = 503;
  auto r = client_->InstanceId();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.error().retryable);
  std::string msg = r.error().ToString();
  EXPECT_NE(msg.find("HTTP 503"), std::string::npos) << msg;
  EXPECT_NE(msg.find("is vpcsim running"), std::string::npos) << msg;
  EXPECT_EQ(http_.request_count(), 5u);  // max_attempts
}

TEST_F(MetadataTest, NotFoundNamesThePath) {
  auto r = client_->Get("no/such/path");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().http_status, 404);
  EXPECT_NE(r.error().ToString().find("/latest/meta-data/no/such/path"), std::string::npos);
  EXPECT_EQ(http_.request_count(), 2u);  // token + one read: 404 is not retried
}

TEST_F(MetadataTest, TransportFailureIsRetriedThenReported) {
  http_.SetHandler([](const HttpRequest&) -> Result<HttpResponse> {
    Error e(ErrorCode::kUnavailable, "Couldn't connect to server");
    e.retryable = true;
    return e;
  });
  auto r = client_->InstanceId();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().ToString().find("is this an ECS instance"), std::string::npos);
}

TEST_F(MetadataTest, TokenlessFallbackOnlyWithoutATokenEndpoint) {
  server_.token_endpoint = false;
  auto r = client_->InstanceId();
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  for (const auto& req : http_.requests()) {
    if (req.method == "GET") {
      EXPECT_TRUE(FakeMetadataServer::Header(req, "X-aliyun-ecs-metadata-token").empty());
    }
  }
}

TEST_F(MetadataTest, TokenRefusedIsAnErrorNotAFallback) {
  http_.SetHandler([](const HttpRequest& req) {
    return FakeHttpTransport::Reply(req.method == "PUT" ? 403 : 200, "x");
  });
  auto r = client_->InstanceId();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 1u);  // no tokenless read was tried
}

TEST_F(MetadataTest, MalformedPrivateIpv4sIsAnError) {
  server_.values["network/interfaces/macs/m/private-ipv4s"] = "198.18.0.1";
  auto r = client_->EniPrivateIpv4s("m");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace terway::cloud
