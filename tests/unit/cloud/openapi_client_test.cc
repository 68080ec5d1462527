#include "cloud/openapi_client.h"

#include <gtest/gtest.h>

#include <set>

#include "cloud/fake_http_transport.h"
#include "cloud_test_util.h"

namespace terway::cloud {
namespace {

using testing::ParamsOf;
using testing::SignatureValid;

std::string ErrorBody(const std::string& code, const std::string& message = "msg") {
  return nlohmann::json{{"RequestId", "req-1"}, {"HostId", "ecs-vpc.cn-hangzhou.aliyuncs.com"},
                        {"Code", code}, {"Message", message}}
      .dump();
}

class OpenApiClientTest : public ::testing::Test {
 protected:
  OpenApiClientTest() : sleeper_(&clock_), creds_("ak-id", "ak-secret") {}

  OpenApiClient& Client(OpenApiConfig cfg = {}) {
    if (cfg.region_id.empty()) cfg.region_id = "cn-hangzhou";
    OpenApiClient::Deps deps;
    deps.transport = &http_;
    deps.credentials = creds_override_ ? creds_override_ : &creds_;
    deps.clock = &clock_;
    deps.sleeper = &sleeper_;
    deps.random = [this] { return u01_; };
    deps.nonce = [this] { return "nonce-" + std::to_string(nonce_++); };
    client_ = std::make_unique<OpenApiClient>(cfg, deps);
    return *client_;
  }

  FakeClock clock_;
  FakeSleeper sleeper_;
  StaticCredentialProvider creds_;
  CredentialProvider* creds_override_ = nullptr;
  FakeHttpTransport http_;
  double u01_ = 0.5;
  int nonce_ = 0;
  std::unique_ptr<OpenApiClient> client_;
};

TEST_F(OpenApiClientTest, SignsWithCommonParameters) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, R"({"RequestId":"r"})"); });
  auto r = Client().Call(Product::kEcs, "DescribeRegions", {{"Foo", "a b*"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(http_.request_count(), 1u);
  HttpRequest req = http_.requests()[0];
  EXPECT_EQ(req.method, "GET");
  EXPECT_TRUE(req.url.starts_with("https://ecs-vpc.cn-hangzhou.aliyuncs.com/?")) << req.url;
  EXPECT_TRUE(SignatureValid(req, "ak-secret"));
  EXPECT_FALSE(SignatureValid(req, "other-secret"));
  QueryParams p = ParamsOf(req);
  EXPECT_EQ(p["Action"], "DescribeRegions");
  EXPECT_EQ(p["Version"], "2014-05-26");
  EXPECT_EQ(p["Format"], "JSON");
  EXPECT_EQ(p["AccessKeyId"], "ak-id");
  EXPECT_EQ(p["SignatureMethod"], "HMAC-SHA1");
  EXPECT_EQ(p["SignatureVersion"], "1.0");
  EXPECT_EQ(p["SignatureNonce"], "nonce-0");
  EXPECT_EQ(p["Timestamp"], FormatIso8601(clock_.Now()));
  EXPECT_EQ(p["RegionId"], "cn-hangzhou");
  EXPECT_EQ(p["Foo"], "a b*");
  EXPECT_FALSE(p.contains("SecurityToken"));
  EXPECT_FALSE(p.contains("ClientToken"));
}

TEST_F(OpenApiClientTest, SecurityTokenIsSentAndSigned) {
  StaticCredentialProvider sts("STS.id", "sts-secret", "the-token");
  creds_override_ = &sts;
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, "{}"); });
  ASSERT_TRUE(Client().Call(Product::kVpc, "DescribeVSwitches", {}).ok());
  HttpRequest req = http_.requests()[0];
  EXPECT_EQ(ParamsOf(req)["SecurityToken"], "the-token");
  EXPECT_EQ(ParamsOf(req)["Version"], "2016-04-28");
  EXPECT_TRUE(req.url.starts_with("https://vpc-vpc.cn-hangzhou.aliyuncs.com/?"));
  EXPECT_TRUE(SignatureValid(req, "sts-secret"));
}

TEST_F(OpenApiClientTest, PostSendsAFormBody) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, "{}"); });
  OpenApiConfig cfg;
  cfg.http_method = "POST";
  cfg.endpoints["ecs"] = "http://127.0.0.1:1234/";
  ASSERT_TRUE(Client(cfg).Call(Product::kEcs, "DescribeInstances", {}).ok());
  HttpRequest req = http_.requests()[0];
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.url, "http://127.0.0.1:1234/");
  EXPECT_TRUE(SignatureValid(req, "ak-secret"));
  EXPECT_EQ(ParamsOf(req)["Action"], "DescribeInstances");
}

TEST_F(OpenApiClientTest, EndpointOverridePerProduct) {
  OpenApiConfig cfg;
  cfg.region_id = "cn-beijing";
  cfg.endpoints["vpc"] = "http://127.0.0.1:9";
  auto& c = Client(cfg);
  EXPECT_EQ(c.EndpointFor(Product::kEcs), "https://ecs-vpc.cn-beijing.aliyuncs.com");
  EXPECT_EQ(c.EndpointFor(Product::kVpc), "http://127.0.0.1:9");
}

TEST_F(OpenApiClientTest, CallerErrorIsNotRetried) {
  http_.SetHandler([](const HttpRequest&) {
    return FakeHttpTransport::Reply(400, ErrorBody("InvalidParameter", "VSwitchId is bad"));
  });
  auto r = Client().Call(Product::kEcs, "CreateNetworkInterface", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 1u);
  const Error& e = r.error();
  EXPECT_EQ(e.code, ErrorCode::kCloud);
  EXPECT_EQ(e.cloud_code, "InvalidParameter");
  EXPECT_EQ(e.http_status, 400);
  EXPECT_FALSE(e.retryable);
  EXPECT_NE(e.ToString().find("VSwitchId is bad"), std::string::npos) << e.ToString();
  EXPECT_NE(e.ToString().find("req-1"), std::string::npos) << e.ToString();
  EXPECT_TRUE(sleeper_.sleeps().empty());
}

TEST_F(OpenApiClientTest, RetryClassification) {
  for (const char* code : {"Throttling", "Throttling.User", "Throttling.Api", "InternalError",
                           "ServiceUnavailable", "Operation.Conflict"}) {
    EXPECT_TRUE(IsRetryableCloudCode(code, 400)) << code;
  }
  for (const char* code : {"InvalidParameter", "MissingParameter", "InvalidVSwitchId.IpNotEnough",
                           "EniPerInstanceLimitExceeded", "QuotaExceeded.PrivateIpAddress",
                           "InvalidEniId.NotFound", "SignatureDoesNotMatch", "Forbidden.RAM"}) {
    EXPECT_FALSE(IsRetryableCloudCode(code, 400)) << code;
  }
  EXPECT_TRUE(IsRetryableCloudCode("", 503));
  EXPECT_FALSE(IsRetryableCloudCode("", 404));
  Error e = CloudErrorFromReply("X", 502, "<html>bad gateway</html>");
  EXPECT_TRUE(e.retryable);
  EXPECT_EQ(e.http_status, 502);
  EXPECT_EQ(e.code, ErrorCode::kCloud);
}

TEST_F(OpenApiClientTest, RetriesTransientErrorsWithFullJitterBackoff) {
  int n = 0;
  http_.SetHandler([&](const HttpRequest&) -> Result<HttpResponse> {
    switch (n++) {
      case 0: return FakeHttpTransport::Reply(400, ErrorBody("Throttling.User"));
      case 1: return FakeHttpTransport::Reply(503, ErrorBody("ServiceUnavailable"));
      case 2: {
        Error e(ErrorCode::kUnavailable, "connection refused");
        e.retryable = true;
        return e;
      }
      default: return FakeHttpTransport::Reply(200, R"({"ok":1})");
    }
  });
  u01_ = 0.75;
  OpenApiConfig cfg;
  cfg.backoff = {std::chrono::milliseconds(100), std::chrono::milliseconds(250), 2.0};
  auto r = Client(cfg).Call(Product::kEcs, "AttachNetworkInterface", {});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ((*r)["ok"], 1);
  EXPECT_EQ(http_.request_count(), 4u);
  // Delays are u * min(max, initial * 2^attempt): 75ms, 150ms, then capped 250 -> 187.5ms.
  auto sleeps = sleeper_.sleeps();
  ASSERT_EQ(sleeps.size(), 3u);
  EXPECT_EQ(sleeps[0], std::chrono::microseconds(75000));
  EXPECT_EQ(sleeps[1], std::chrono::microseconds(150000));
  EXPECT_EQ(sleeps[2], std::chrono::microseconds(187500));
  // Every attempt is freshly signed with a new nonce.
  std::set<std::string> nonces;
  for (const auto& req : http_.requests()) {
    EXPECT_TRUE(SignatureValid(req, "ak-secret"));
    nonces.insert(ParamsOf(req)["SignatureNonce"]);
  }
  EXPECT_EQ(nonces.size(), 4u);
  auto stats = client_->Stats()["AttachNetworkInterface"];
  EXPECT_EQ(stats.calls, 1u);
  EXPECT_EQ(stats.attempts, 4u);
  EXPECT_EQ(stats.retries, 3u);
  EXPECT_EQ(stats.errors, 0u);
}

TEST_F(OpenApiClientTest, BackoffBoundsHoldForAnyRandomDraw) {
  BackoffPolicy p{std::chrono::milliseconds(200), std::chrono::milliseconds(8000), 2.0};
  for (int attempt = 0; attempt < 12; attempt++) {
    auto ceiling = BackoffCeiling(p, attempt);
    EXPECT_LE(ceiling, std::chrono::milliseconds(8000));
    EXPECT_EQ(FullJitterDelay(p, attempt, 0.0), std::chrono::nanoseconds(0));
    EXPECT_LT(FullJitterDelay(p, attempt, 0.999999), ceiling + std::chrono::nanoseconds(1));
    EXPECT_GT(FullJitterDelay(p, attempt, 0.999999), ceiling * 99 / 100);
  }
  EXPECT_EQ(BackoffCeiling(p, 0), std::chrono::milliseconds(200));
  EXPECT_EQ(BackoffCeiling(p, 3), std::chrono::milliseconds(1600));
  EXPECT_EQ(BackoffCeiling(p, 10), std::chrono::milliseconds(8000));
}

TEST_F(OpenApiClientTest, ClientTokenIsStableAcrossRetries) {
  int n = 0;
  http_.SetHandler([&](const HttpRequest&) {
    return n++ < 2 ? FakeHttpTransport::Reply(500, ErrorBody("InternalError"))
                   : FakeHttpTransport::Reply(200, "{}");
  });
  CallOptions opts;
  opts.client_token = true;
  auto& c = Client();
  ASSERT_TRUE(c.Call(Product::kEcs, "CreateNetworkInterface", {}, opts).ok());
  auto reqs = http_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  std::string token = ParamsOf(reqs[0])["ClientToken"];
  EXPECT_FALSE(token.empty());
  for (const auto& r : reqs) EXPECT_EQ(ParamsOf(r)["ClientToken"], token);
  // A second logical call gets a different token.
  ASSERT_TRUE(c.Call(Product::kEcs, "CreateNetworkInterface", {}, opts).ok());
  EXPECT_NE(ParamsOf(http_.requests().back())["ClientToken"], token);
  // An explicit token is used as given.
  opts.explicit_client_token = "persisted-token";
  ASSERT_TRUE(c.Call(Product::kEcs, "CreateNetworkInterface", {}, opts).ok());
  EXPECT_EQ(ParamsOf(http_.requests().back())["ClientToken"], "persisted-token");
}

TEST_F(OpenApiClientTest, GivesUpAfterTheAttemptBudget) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(400, ErrorBody("Throttling")); });
  OpenApiConfig cfg;
  cfg.max_attempts = 4;
  auto r = Client(cfg).Call(Product::kEcs, "AssignPrivateIpAddresses", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 4u);
  EXPECT_EQ(r.error().cloud_code, "Throttling");
  EXPECT_TRUE(r.error().retryable);
  EXPECT_NE(r.error().ToString().find("gave up after 4 attempts"), std::string::npos)
      << r.error().ToString();
  EXPECT_EQ(client_->Stats()["AssignPrivateIpAddresses"].errors, 1u);
}

// eni_conf backoff_override's eni_create / eni_ip_ops: the action's own
// schedule decides the attempts and the waits; other actions keep the default.
TEST_F(OpenApiClientTest, ActionScheduleReplacesTheDefaultRetries) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(400, ErrorBody("Throttling")); });
  OpenApiConfig cfg;
  cfg.max_attempts = 6;
  cfg.call_deadline = std::chrono::milliseconds(1000);  // shorter than the schedule's waits
  cfg.action_backoff["CreateNetworkInterface"] =
      StepBackoff{.initial_delay = std::chrono::seconds(1), .duration = std::chrono::seconds(10),
                  .factor = 2, .jitter = 0.3, .steps = 3};
  u01_ = 0.5;
  auto r = Client(cfg).Call(Product::kEcs, "CreateNetworkInterface", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 3u);  // steps, not max_attempts
  EXPECT_NE(r.error().ToString().find("gave up after 3 attempts"), std::string::npos) << r.error().ToString();
  std::vector<std::chrono::nanoseconds> want = {std::chrono::seconds(1), std::chrono::milliseconds(11500),
                                                std::chrono::milliseconds(23000)};
  EXPECT_EQ(sleeper_.sleeps(), want);

  size_t before = http_.request_count();
  auto other = client_->Call(Product::kEcs, "AttachNetworkInterface", {});
  ASSERT_FALSE(other.ok());
  // The default: full-jitter waits within the 1 s call deadline.
  EXPECT_GT(http_.request_count() - before, 1u);
  EXPECT_NE(other.error().ToString().find("deadline"), std::string::npos) << other.error().ToString();
}

TEST_F(OpenApiClientTest, StopsAtTheCallDeadline) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(503, ErrorBody("ServiceUnavailable")); });
  OpenApiConfig cfg;
  cfg.max_attempts = 100;
  cfg.backoff = {std::chrono::milliseconds(1000), std::chrono::milliseconds(1000), 2.0};
  cfg.call_deadline = std::chrono::milliseconds(3500);
  u01_ = 0.999;  // ~1 s per wait: three waits fit, the fourth would pass 3.5 s
  auto start = clock_.Steady();
  auto r = Client(cfg).Call(Product::kEcs, "DescribeNetworkInterfaces", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 4u);
  EXPECT_LE(clock_.Steady() - start, std::chrono::milliseconds(3500));
  EXPECT_NE(r.error().ToString().find("deadline"), std::string::npos) << r.error().ToString();
  // Each attempt's HTTP timeout never exceeds what is left of the deadline.
  for (const auto& req : http_.requests()) EXPECT_LE(req.timeout, std::chrono::milliseconds(3500));
}

TEST_F(OpenApiClientTest, MalformedSuccessBodyIsAnError) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, "not json"); });
  auto r = Client().Call(Product::kEcs, "DescribeInstances", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCloud);
  EXPECT_FALSE(r.error().retryable);
}

TEST_F(OpenApiClientTest, MissingCredentialsFailWithoutSending) {
  StaticCredentialProvider empty("", "");
  creds_override_ = &empty;
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, "{}"); });
  auto r = Client().Call(Product::kEcs, "DescribeInstances", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(http_.request_count(), 0u);
  EXPECT_NE(r.error().ToString().find("access_key"), std::string::npos);
}

TEST_F(OpenApiClientTest, RateLimitQueuesCallsPerAction) {
  http_.SetHandler([](const HttpRequest&) { return FakeHttpTransport::Reply(200, "{}"); });
  OpenApiConfig cfg;
  cfg.rate_limit["AssignPrivateIpAddresses"] = 60;  // one per second, burst 60
  auto& c = Client(cfg);
  EXPECT_EQ(c.config().rate_limit.at("AssignPrivateIpAddresses"), 60);
  for (int i = 0; i < 60; i++) ASSERT_TRUE(c.Call(Product::kEcs, "AssignPrivateIpAddresses", {}).ok());
  EXPECT_TRUE(sleeper_.sleeps().empty()) << "the burst is free";
  ASSERT_TRUE(c.Call(Product::kEcs, "AssignPrivateIpAddresses", {}).ok());
  ASSERT_EQ(sleeper_.sleeps().size(), 1u);
  EXPECT_NEAR(std::chrono::duration<double>(sleeper_.sleeps()[0]).count(), 1.0, 1e-6);
  // Another action has its own bucket.
  ASSERT_TRUE(c.Call(Product::kEcs, "DescribeInstances", {}).ok());
  EXPECT_EQ(sleeper_.sleeps().size(), 1u);
}

TEST(RateLimiterTest, RefillsOverTimeAndRespectsDeadline) {
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  RateLimiter rl({{"A", 2}, {"U", 0}}, &clock, &sleeper);
  auto far = clock.Steady() + std::chrono::hours(1);
  ASSERT_TRUE(rl.Acquire("A", far).ok());
  ASSERT_TRUE(rl.Acquire("A", far).ok());
  // Empty: the next token comes after 30 s, past a 10 s deadline.
  auto r = rl.Acquire("A", clock.Steady() + std::chrono::seconds(10));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("rate_limit.A"), std::string::npos) << r.error().message;
  clock.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(rl.Acquire("A", clock.Steady()).ok());
  EXPECT_TRUE(sleeper.sleeps().empty());
  // Unlimited (<= 0) never waits.
  for (int i = 0; i < 10000; i++) ASSERT_TRUE(rl.Acquire("U", clock.Steady()).ok());
  EXPECT_TRUE(sleeper.sleeps().empty());
  // Defaults apply to listed and unlisted actions.
  EXPECT_EQ(rl.LimitFor("DescribeNetworkInterfaces"), 800);
  EXPECT_EQ(rl.LimitFor("SomethingElse"), 500);
}

}  // namespace
}  // namespace terway::cloud
