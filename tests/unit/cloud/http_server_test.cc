// The real libcurl transport against an in-process cpp-httplib server on
// 127.0.0.1 (port 0): the server checks every signature with signer.h, the
// way vpcsim and Alibaba Cloud do.
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_clients.h"
#include "cloud/curl_http_transport.h"
#include "cloud/ecs_api.h"
#include "cloud/metadata.h"
#include "cloud/signer.h"

namespace terway::cloud {
namespace {

// Runs a server on an ephemeral loopback port; stops and joins on scope exit.
class LocalServer {
 public:
  LocalServer() = default;
  ~LocalServer() { Stop(); }
  httplib::Server& server() { return server_; }

  void Start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // Poll with a deadline until the listener accepts.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!server_.is_running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(server_.is_running());
  }
  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

QueryParams ParamsOf(const httplib::Request& req) {
  QueryParams p;
  for (const auto& [k, v] : req.params) p[k] = v;
  return p;
}

TEST(HttpServerTest, SignedCallsThroughCurlWithRetries) {
  LocalServer srv;
  std::atomic<int> calls{0}, bad_signatures{0};
  srv.server().Get("/", [&](const httplib::Request& req, httplib::Response& res) {
    QueryParams p = ParamsOf(req);
    if (SignatureV1("GET", p, "secret") != p["Signature"]) {
      bad_signatures++;
      res.status = 400;
      res.set_content(R"({"Code":"SignatureDoesNotMatch","Message":"bad","RequestId":"r"})", "application/json");
      return;
    }
    int n = calls++;
    if (n < 2) {  // throttle the first two attempts
      res.status = 400;
      res.set_content(R"({"Code":"Throttling","Message":"Request was denied","RequestId":"r"})", "application/json");
      return;
    }
    EXPECT_EQ(p["Action"], "DescribeNetworkInterfaces");
    EXPECT_EQ(p["SecurityToken"], "sts-token");
    nlohmann::json eni = {{"NetworkInterfaceId", "eni-1"}, {"Status", "InUse"}};
    res.set_content(nlohmann::json{{"RequestId", "r"},
                                   {"NetworkInterfaceSets", {{"NetworkInterfaceSet", {eni}}}}}
                        .dump(),
                    "application/json");
  });
  srv.Start();

  FakeClock clock;
  FakeSleeper sleeper(&clock);
  CurlHttpTransport curl;
  StaticCredentialProvider creds("id", "secret", "sts-token");
  OpenApiConfig cfg;
  cfg.region_id = "cn-hangzhou";
  cfg.endpoints["ecs"] = srv.url();
  OpenApiClient client(cfg, {&curl, &creds, &clock, &sleeper, [] { return 0.5; }, nullptr});
  OpenApiEcsClient ecs(&client);
  auto enis = ecs.DescribeNetworkInterfaces({});
  ASSERT_TRUE(enis.ok()) << enis.error().ToString();
  ASSERT_EQ(enis->size(), 1u);
  EXPECT_EQ((*enis)[0].network_interface_id, "eni-1");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(bad_signatures.load(), 0);
  EXPECT_EQ(sleeper.sleeps().size(), 2u);

  // A wrong secret is refused by the server and not retried.
  StaticCredentialProvider wrong("id", "not-the-secret");
  OpenApiClient bad(cfg, {&curl, &wrong, &clock, &sleeper, [] { return 0.5; }, nullptr});
  auto r = bad.Call(Product::kEcs, "DescribeNetworkInterfaces", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().cloud_code, "SignatureDoesNotMatch");
  EXPECT_EQ(bad_signatures.load(), 1);
}

TEST(HttpServerTest, PostFormBodyIsSignedToo) {
  LocalServer srv;
  std::atomic<int> ok{0};
  srv.server().Post("/", [&](const httplib::Request& req, httplib::Response& res) {
    QueryParams p = ParamsOf(req);  // httplib parses the form body into params
    if (SignatureV1("POST", p, "secret") == p["Signature"] && p["PrivateIpAddress.1"] == "198.18.0.5") ok++;
    res.set_content(R"({"RequestId":"r"})", "application/json");
  });
  srv.Start();
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  CurlHttpTransport curl;
  StaticCredentialProvider creds("id", "secret");
  OpenApiConfig cfg;
  cfg.region_id = "cn-hangzhou";
  cfg.http_method = "POST";
  cfg.endpoints["ecs"] = srv.url();
  OpenApiClient client(cfg, {&curl, &creds, &clock, &sleeper, nullptr, nullptr});
  OpenApiEcsClient ecs(&client);
  auto st = ecs.UnassignPrivateIpAddresses("eni-1", {"198.18.0.5"});
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  EXPECT_EQ(ok.load(), 1);
}

TEST(HttpServerTest, ConnectionRefusedIsRetryableUnavailable) {
  int port;
  {
    LocalServer srv;
    srv.Start();
    port = srv.port();
  }  // stopped: nothing listens on the port now
  CurlHttpTransport curl;
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  auto r = curl.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(r.error().retryable);
  req.url = "ftp://127.0.0.1/";
  r = curl.Do(req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(HttpServerTest, SlowServerTimesOut) {
  LocalServer srv;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  srv.server().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock l(mu);
    // Held until the client has given up (bounded so a broken test cannot hang).
    cv.wait_for(l, std::chrono::seconds(20), [&] { return release; });
    res.set_content("late", "text/plain");
  });
  srv.Start();
  CurlHttpTransport curl;
  HttpRequest req;
  req.url = srv.url() + "/slow";
  req.timeout = std::chrono::milliseconds(200);
  auto r = curl.Do(req);
  {
    std::lock_guard l(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(r.error().retryable);
}

TEST(HttpServerTest, MetadataTokenFlowOverHttp) {
  LocalServer srv;
  std::atomic<int> tokens{0};
  srv.server().Put("/latest/api/token", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("X-aliyun-ecs-metadata-token-ttl-seconds").empty()) {
      res.status = 400;
      return;
    }
    tokens++;
    res.set_content("secret-token", "text/plain");
  });
  srv.server().Get(R"(/latest/meta-data/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("X-aliyun-ecs-metadata-token") != "secret-token") {
      res.status = 401;
      return;
    }
    if (req.matches[1] == "instance-id") {
      res.set_content("i-local", "text/plain");
    } else {
      res.status = 404;
    }
  });
  srv.Start();
  FakeClock clock;
  FakeSleeper sleeper(&clock);
  CurlHttpTransport curl;
  MetadataConfig cfg;
  cfg.base_url = srv.url();
  HttpMetadataClient md(cfg, &curl, &clock, &sleeper);
  auto id = md.InstanceId();
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  EXPECT_EQ(*id, "i-local");
  auto missing = md.ZoneId();
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(tokens.load(), 1);
}

TEST(HttpServerTest, CloudClientsWithRamRoleAndRegionFromMetadata) {
  // One loopback server plays both the metadata service and the ECS endpoint.
  LocalServer srv;
  srv.server().Put("/latest/api/token", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("t", "text/plain");
  });
  srv.server().Get(R"(/latest/meta-data/(.*))", [](const httplib::Request& req, httplib::Response& res) {
    std::string path = req.matches[1];
    if (path == "region-id") {
      res.set_content("cn-shanghai", "text/plain");
    } else if (path == "ram/security-credentials/") {
      res.set_content("NodeRole", "text/plain");
    } else if (path == "ram/security-credentials/NodeRole") {
      res.set_content(R"({"AccessKeyId":"STS.node","AccessKeySecret":"sts-secret","SecurityToken":"sts-token",)"
                      R"("Expiration":"2099-01-01T00:00:00Z","Code":"Success"})",
                      "application/json");
    } else {
      res.status = 404;
    }
  });
  std::atomic<int> good{0};
  srv.server().Get("/", [&](const httplib::Request& req, httplib::Response& res) {
    QueryParams p = ParamsOf(req);
    if (SignatureV1("GET", p, "sts-secret") == p["Signature"] && p["SecurityToken"] == "sts-token" &&
        p["AccessKeyId"] == "STS.node" && p["RegionId"] == "cn-shanghai") {
      good++;
    }
    res.set_content(R"({"RequestId":"r","Instances":{"Instance":[{"InstanceId":"i-1"}]}})", "application/json");
  });
  srv.Start();

  CloudOptions opts;
  opts.metadata_endpoint = srv.url();
  opts.ecs_endpoint = srv.url();
  auto clients = CloudClients::Create(opts);
  ASSERT_TRUE(clients.ok()) << clients.error().ToString();
  EXPECT_EQ((*clients)->region_id(), "cn-shanghai");
  auto inst = (*clients)->ecs()->DescribeInstances({"i-1"});
  ASSERT_TRUE(inst.ok()) << inst.error().ToString();
  EXPECT_EQ(good.load(), 1);

  // Half a static key is a configuration error at start.
  CloudOptions half;
  half.region_id = "cn-shanghai";
  half.access_key = "only-the-id";
  auto bad = CloudClients::Create(half);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace terway::cloud
