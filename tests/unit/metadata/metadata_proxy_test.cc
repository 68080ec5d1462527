// The proxy on loopback (no root): a fake metadata service of our own on
// 127.0.0.1 records what reaches it; raw requests from a TCP socket show what
// a pod would get. Proves forwarding in canonical form, the token flow, the
// refusals, and every bound (head size, slow client, large or missing
// answers).
#include "metadata/metadata_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

namespace terway::metadata {
namespace {

using Clock = std::chrono::steady_clock;

struct Seen {
  std::string method, target, token, ttl, vpcsim_instance;
};

class FakeMetadataService {
 public:
  FakeMetadataService() {
    auto record = [this](const httplib::Request& req) {
      std::lock_guard lock(mu_);
      seen_.push_back({req.method, req.target, req.get_header_value("X-aliyun-ecs-metadata-token"),
                       req.get_header_value("X-aliyun-ecs-metadata-token-ttl-seconds"),
                       req.get_header_value("X-Vpcsim-Instance-Id")});
    };
    srv_.Get(".*", [this, record](const httplib::Request& req, httplib::Response& res) {
      record(req);
      if (req.path == "/big") {
        res.set_content(std::string(2 << 20, 'x'), "text/plain");
      } else if (req.path == "/latest/meta-data/instance-id") {
        res.set_content("i-test", "text/plain");
      } else if (req.path.find("security-credentials") != std::string::npos) {
        res.set_content("{\"AccessKeyId\":\"STS.secret\"}", "application/json");
      } else {
        res.status = 404;
      }
    });
    srv_.Put(".*", [record](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.set_header("X-aliyun-ecs-metadata-token-ttl-seconds", req.get_header_value("X-aliyun-ecs-metadata-token-ttl-seconds"));
      res.set_content("token-1", "text/plain");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    // stop() is a no-op until the loop runs: wait for it (bounded), or a
    // test that never calls the service could end before it starts.
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!srv_.is_running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeMetadataService() {
    srv_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<Seen> seen_;
};

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything the server sends until it closes (bounded by 10 s).
std::string ReadAll(int fd) {
  std::string out;
  auto deadline = Clock::now() + std::chrono::seconds(10);
  char buf[65536];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Exchange(uint16_t port, const std::string& request) {
  int fd = Connect(port);
  if (fd < 0) return "connect failed";
  (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out = ReadAll(fd);
  close(fd);
  return out;
}

int Status(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0) return -1;
  return std::stoi(reply.substr(9, 3));
}
std::string BodyOf(const std::string& reply) {
  auto p = reply.find("\r\n\r\n");
  return p == std::string::npos ? "" : reply.substr(p + 4);
}

class MetadataProxyTest : public ::testing::Test {
 protected:
  void StartProxy(std::string upstream, std::chrono::milliseconds head_deadline = std::chrono::seconds(3),
                  int workers = 2, int per_client = 4) {
    MetadataProxyOptions o;
    o.listen_ip = Ipv4Addr::Parse("127.0.0.1").value();
    o.listen_port = 0;
    o.upstream = std::move(upstream);
    o.workers = workers;
    o.max_connections_per_client = per_client;
    o.head_deadline = head_deadline;
    o.on_refusal = [this](Verdict v) {
      if (v == Verdict::kRefuseCredentials) refusal_callbacks_++;
    };
    auto p = MetadataProxy::Start(o);
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    proxy_ = std::move(*p);
  }
  std::string Get(const std::string& target, const std::string& extra = "") {
    return Exchange(proxy_->port(), "GET " + target + " HTTP/1.1\r\nHost: 100.100.100.200\r\n" + extra + "\r\n");
  }

  FakeMetadataService md_;
  std::unique_ptr<MetadataProxy> proxy_;
  std::atomic<int> refusal_callbacks_{0};
};

TEST_F(MetadataProxyTest, ForwardsMetadataAndRefusesCredentials) {
  StartProxy(md_.url());
  std::string r = Get("/latest//meta-data/./instance-id");
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_EQ(BodyOf(r), "i-test");
  EXPECT_NE(r.find("Content-Type: text/plain"), std::string::npos) << r;
  ASSERT_EQ(md_.seen().size(), 1u);
  EXPECT_EQ(md_.seen()[0].target, "/latest/meta-data/instance-id");  // canonical, as judged

  for (const char* t : {"/latest/meta-data/ram/security-credentials/node-role",
                        "/latest/meta-data/%72am/security-credentials/node-role",
                        "/latest/meta-data/ram%2Fsecurity-credentials/", "/latest/meta-data/RAM/"}) {
    std::string refused = Get(t);
    EXPECT_EQ(Status(refused), 403) << t << ": " << refused;
    EXPECT_NE(BodyOf(refused).find("k8s.aliyun.com/allow-node-ram-role"), std::string::npos) << refused;
    EXPECT_EQ(BodyOf(refused).find("STS.secret"), std::string::npos);
  }
  EXPECT_EQ(md_.seen().size(), 1u) << "a refused request reached the service";
  EXPECT_EQ(proxy_->stats().refused_credentials, 4u);
  EXPECT_EQ(proxy_->stats().forwarded, 1u);
  EXPECT_EQ(refusal_callbacks_.load(), 4);
}

TEST_F(MetadataProxyTest, TokenFlowPassesAndOtherHeadersDoNot) {
  StartProxy(md_.url());
  std::string put = Exchange(proxy_->port(),
                             "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aliyun-ecs-metadata-token-ttl-seconds: "
                             "300\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(Status(put), 200) << put;
  EXPECT_EQ(BodyOf(put), "token-1");
  EXPECT_NE(put.find("X-aliyun-ecs-metadata-token-ttl-seconds: 300"), std::string::npos) << put;
  std::string get = Get("/latest/meta-data/instance-id",
                        "X-aliyun-ecs-metadata-token: token-1\r\nX-Vpcsim-Instance-Id: i-someone-else\r\n");
  EXPECT_EQ(Status(get), 200) << get;
  auto seen = md_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].ttl, "300");
  EXPECT_EQ(seen[1].token, "token-1");
  EXPECT_EQ(seen[1].vpcsim_instance, "") << "a header outside the token flow was forwarded";
}

TEST_F(MetadataProxyTest, HeadGetsTheLengthWithoutABody) {
  StartProxy(md_.url());
  std::string r = Exchange(proxy_->port(), "HEAD /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(Status(r), 200) << r;
  EXPECT_NE(r.find("Content-Length: 6\r\n"), std::string::npos) << r;
  EXPECT_EQ(BodyOf(r), "");
}

TEST_F(MetadataProxyTest, IsNotAnOpenProxy) {
  StartProxy(md_.url());
  EXPECT_EQ(Status(Get("http://203.0.113.9/anything")), 400);
  // Authority-form (CONNECT) is not a path: refused before the method.
  EXPECT_EQ(Status(Exchange(proxy_->port(), "CONNECT 203.0.113.9:443 HTTP/1.1\r\nHost: x\r\n\r\n")), 400);
  EXPECT_EQ(Status(Exchange(proxy_->port(), "POST /latest/api/token HTTP/1.1\r\nContent-Length: 0\r\n\r\n")), 405);
  EXPECT_EQ(Status(Exchange(proxy_->port(), "PUT /latest/meta-data/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")), 405);
  EXPECT_EQ(Status(Exchange(proxy_->port(), "GET / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd")), 400);
  EXPECT_TRUE(md_.seen().empty());
}

TEST_F(MetadataProxyTest, BoundsTheHeadAndTheTimeToSendIt) {
  StartProxy(md_.url(), std::chrono::milliseconds(300));
  // A head that never ends is cut at kMaxHeadBytes, not read forever.
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a');
  (void)send(fd, endless.data(), endless.size(), MSG_NOSIGNAL);
  std::string r = ReadAll(fd);
  close(fd);
  EXPECT_EQ(Status(r), 431) << r.substr(0, 200);
  // A client that stops half-way is answered 408 after the deadline.
  fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  std::string half = "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n";
  (void)send(fd, half.data(), half.size(), MSG_NOSIGNAL);
  auto start = Clock::now();
  r = ReadAll(fd);
  close(fd);
  EXPECT_EQ(Status(r), 408) << r;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(proxy_->stats().malformed, 2u);
  EXPECT_TRUE(md_.seen().empty());
  // The workers are free again.
  EXPECT_EQ(Status(Get("/latest/meta-data/instance-id")), 200);
}

TEST_F(MetadataProxyTest, BoundsTheAnswerAndReportsAMissingService) {
  StartProxy(md_.url());
  std::string big = Get("/big");
  EXPECT_EQ(Status(big), 502) << big.substr(0, 300);
  EXPECT_NE(BodyOf(big).find("over 1048576 bytes"), std::string::npos) << BodyOf(big);

  // A port nothing listens on (bound and closed here, on loopback).
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  proxy_.reset();
  StartProxy("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  std::string down = Get("/latest/meta-data/instance-id");
  EXPECT_EQ(Status(down), 502) << down;
  EXPECT_EQ(proxy_->stats().upstream_failures, 1u);
}

// Idle connections hold workers (until head_deadline); one client gets at
// most its share, the rest of its connections are answered 429 at once.
TEST_F(MetadataProxyTest, OneClientHoldsAtMostItsShareOfWorkers) {
  StartProxy(md_.url(), std::chrono::seconds(30), /*workers=*/4, /*per_client=*/2);
  std::vector<int> fds;
  for (int i = 0; i < 3; i++) fds.push_back(Connect(proxy_->port()));
  // Exactly one of the three is refused, promptly.
  int refused = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); refused < 0 && Clock::now() < deadline;) {
    for (int i = 0; i < 3; i++) {
      pollfd p{fds[i], POLLIN, 0};
      if (poll(&p, 1, 10) == 1) refused = i;
    }
  }
  ASSERT_GE(refused, 0) << "no connection over the limit was refused";
  EXPECT_EQ(Status(ReadAll(fds[refused])), 429);
  for (int i = 0; i < 3; i++) {
    if (i == refused) continue;
    pollfd p{fds[i], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "connection " << i << " within the limit was answered or closed";
  }
  EXPECT_EQ(proxy_->stats().refused_connections, 1u);
  for (int fd : fds) close(fd);
}

TEST_F(MetadataProxyTest, StopReturnsWhileAClientHoldsAConnection) {
  StartProxy(md_.url(), std::chrono::seconds(30));
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  (void)send(fd, "GET / HT", 8, MSG_NOSIGNAL);
  auto start = Clock::now();
  proxy_->Stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  close(fd);
}

TEST(MetadataProxyUpstream, OnlyHostAndPort) {
  EXPECT_TRUE(ValidateUpstream("http://100.100.100.200").ok());
  EXPECT_TRUE(ValidateUpstream("http://127.0.0.1:8080").ok());
  for (const char* bad : {"", "100.100.100.200", "http://", "http://h/latest", "ftp://h", "http://u@h"}) {
    EXPECT_FALSE(ValidateUpstream(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace terway::metadata
