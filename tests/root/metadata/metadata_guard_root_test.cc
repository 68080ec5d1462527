// The metadata guard in a real kernel. Everything lives in namespaces this
// test creates; 100.100.100.200 exists only inside its own "vpc" namespace.
//
//   pod a  198.18.1.2 --- twa<s>  \                          vpc namespace:
//   pod b  198.18.1.3 --- twb<s>   node (ip_forward) eni0 --- 198.18.0.1
//   pod c  198.18.1.4 --- cx<s>   / 198.18.0.10               100.100.100.200 on lo:
//   ext    198.18.2.2 --- hx<s>  /  (a non-pod source)         fake metadata :80, :8080
//
// Pods are wired as the shared-ENI datapath wires them (eth0 IP/32, default
// via 169.254.1.1 with a permanent neighbour; podIP/32 dev <host veth>).
// The fake metadata service records the source address of every request,
// so a test tells a request the proxy made (from the node, 198.18.0.10)
// from one the pod made directly. All is removed by the fixture, also on
// failure.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "metadata/metadata_guard.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::metadata {
namespace {

using ::terway::testing::Capture;
using Clock = std::chrono::steady_clock;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct Reply {
  bool connected = false;
  int connect_errno = 0;
  int status = -1;
  std::string body;
};

// One HTTP exchange from inside a namespace, on a raw socket so the exact
// request target reaches the wire. Connect bounded by connect_ms, the reply
// by 5 s.
Reply Http(const std::string& netns, const std::string& ip, int port, const std::string& request, int connect_ms = 2000) {
  Reply out;
  Status s = netlink::RunInNetns(netns, [&]() -> Status {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, connect_ms) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        out.connect_errno = err;
      } else {
        out.connect_errno = ETIMEDOUT;
      }
    } else if (rc != 0) {
      out.connect_errno = errno;
    }
    if (rc != 0) {
      close(fd);
      return Ok();
    }
    out.connected = true;
    (void)send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string raw;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    char buf[8192];
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (raw.rfind("HTTP/1.", 0) == 0) out.status = std::stoi(raw.substr(9, 3));
    auto p = raw.find("\r\n\r\n");
    if (p != std::string::npos) out.body = raw.substr(p + 4);
    return Ok();
  });
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  return out;
}

std::string GetRequest(const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 100.100.100.200\r\n" + extra + "Connection: close\r\n\r\n";
}

constexpr const char* kCredentials = "/latest/meta-data/ram/security-credentials/node-role";
constexpr const char* kSecret = "STS.node-secret";

// The stand-in for the ECS metadata service, inside the vpc namespace only.
class FakeMetadataService {
 public:
  Status Start(const std::string& netns, int port) {
    srv_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      if (req.path == "/latest/meta-data/instance-id") res.set_content("i-node", "text/plain");
      else if (req.path == "/latest/meta-data/ram/security-credentials/") res.set_content("node-role", "text/plain");
      else if (req.path == kCredentials) res.set_content(std::string("{\"AccessKeyId\":\"") + kSecret + "\"}", "application/json");
      else if (req.path == "/other-port") res.set_content("other-port", "text/plain");
      else res.status = 404;
    });
    srv_.Put("/latest/api/token", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.set_content("token-1", "text/plain");
    });
    bool bound = false;
    TERWAY_TRY(netlink::RunInNetns(netns, [&]() -> Status {
      bound = srv_.bind_to_port("100.100.100.200", port);
      return Ok();
    }));
    if (!bound) return MakeError(ErrorCode::kKernel, "fake metadata service: cannot bind port " + std::to_string(port));
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!srv_.is_running() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return Ok();
  }
  ~FakeMetadataService() {
    srv_.stop();
    if (thread_.joinable()) thread_.join();
  }
  // Source addresses that asked for `path`.
  std::vector<std::string> Askers(const std::string& path) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [from, p] : seen_)
      if (p == path) out.push_back(from);
    return out;
  }

 private:
  void Record(const httplib::Request& req) {
    std::lock_guard lock(mu_);
    seen_.emplace_back(req.remote_addr, req.path);
  }
  httplib::Server srv_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> seen_;
};

struct TestPod {
  std::string netns, host_veth, ip;
};

class MetadataGuardRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    s_ = terway::testing::UniqueSuffix();
    node_ = "tmn" + s_;
    vpc_ = "tmv" + s_;
    ext_ = "tmx" + s_;
    for (const auto& ns : {node_, vpc_, ext_}) Own(ns);
    std::string n = "ip -n " + node_ + " ", v = "ip -n " + vpc_ + " ", x = "ip -n " + ext_ + " ";
    ASSERT_EQ(Sh(n + "link set lo up && ip netns exec " + node_ + " sysctl -qw net.ipv4.ip_forward=1"), 0);
    // The node's uplink to the "VPC", where the metadata service lives.
    ASSERT_EQ(Sh(n + "link add eni0 type veth peer name vpc0 netns " + vpc_ + " && " + n +
                 "addr add 198.18.0.10/24 dev eni0 && " + n + "link set eni0 up && " + n +
                 "route add 100.100.100.200/32 via 198.18.0.1"),
              0);
    ASSERT_EQ(Sh(v + "link set lo up && " + v + "addr add 100.100.100.200/32 dev lo && " + v +
                 "addr add 198.18.0.1/24 dev vpc0 && " + v + "link set vpc0 up && " + v +
                 "route add 198.18.1.0/24 via 198.18.0.10 && " + v + "route add 198.18.2.0/24 via 198.18.0.10"),
              0);
    // A non-pod source behind the node (a link not named like a pod's).
    ASSERT_EQ(Sh(n + "link add hx" + s_ + " type veth peer name eth0 netns " + ext_ + " && " + n + "addr add 198.18.2.1/24 dev hx" +
                 s_ + " && " + n + "link set hx" + s_ + " up && " + x + "link set lo up && " + x +
                 "addr add 198.18.2.2/24 dev eth0 && " + x + "link set eth0 up && " + x + "route add default via 198.18.2.1"),
              0);
    a_ = AddPod("a", "tw", "198.18.1.2");
    b_ = AddPod("b", "tw", "198.18.1.3");
    c_ = AddPod("c", "cx", "198.18.1.4");  // named outside the "tw" prefix
    ASSERT_TRUE(md_.Start(vpc_, 80).ok());
    ASSERT_TRUE(other_port_.Start(vpc_, 8080).ok());
  }

  void TearDown() override {
    guard_.reset();  // before the namespaces: its workers live in the node's
    for (const auto& ns : owned_) (void)netlink::DeleteNamedNetns(ns);
  }

  void Own(const std::string& ns) {
    owned_.push_back(ns);
    ASSERT_TRUE(netlink::CreateNamedNetns(ns).ok()) << ns;
  }

  TestPod AddPod(const std::string& name, const std::string& prefix, const std::string& ip) {
    TestPod p{"tmp" + name + s_, prefix + name + s_, ip};
    Own(p.netns);
    EXPECT_EQ(Sh("ip -n " + node_ + " link add " + p.host_veth + " type veth peer name eth0 netns " + p.netns), 0);
    std::string mac = Capture("ip -n " + node_ + " -br link show " + p.host_veth + " | awk '{print $3}'");
    while (!mac.empty() && (mac.back() == '\n' || mac.back() == ' ')) mac.pop_back();
    std::string pn = "ip -n " + p.netns + " ";
    EXPECT_EQ(Sh(pn + "link set lo up && " + pn + "link set eth0 up && " + pn + "addr add " + ip + "/32 dev eth0 && " +
                 pn + "route add 169.254.1.1 dev eth0 scope link && " + pn + "route add default via 169.254.1.1 dev eth0 && " +
                 pn + "neigh add 169.254.1.1 lladdr " + mac + " dev eth0 nud permanent"),
              0);
    EXPECT_EQ(Sh("ip -n " + node_ + " link set " + p.host_veth + " up && ip -n " + node_ + " route add " + ip +
                 "/32 dev " + p.host_veth + " scope link"),
              0);
    return p;
  }

  MetadataGuardOptions Options(bool deny = true) {
    MetadataGuardOptions o;
    o.deny_credentials = deny;
    o.netns = node_;
    o.metadata_endpoint = "http://100.100.100.200";
    o.workers = 8;
    o.max_connections_per_pod = 3;
    o.head_deadline = std::chrono::seconds(2);
    return o;
  }

  void StartGuard(const std::vector<std::pair<TestPod, bool>>& pods = {}) {
    guard_ = std::make_unique<MetadataGuard>(Options());
    for (const auto& [p, exempt] : pods) {
      std::map<std::string, std::string> ann;
      if (exempt) ann[kAllowNodeRamRoleAnnotation] = "true";
      ASSERT_TRUE(guard_->PodStarted(Ipv4Addr::Parse(p.ip).value(), p.netns, ann).ok());
    }
    Status s = guard_->Start();
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }

  Reply Get(const std::string& netns, const std::string& target, const std::string& extra = "") {
    return Http(netns, "100.100.100.200", 80, GetRequest(target, extra));
  }

  std::string s_, node_, vpc_, ext_;
  std::vector<std::string> owned_;
  TestPod a_, b_, c_;
  FakeMetadataService md_, other_port_;
  std::unique_ptr<MetadataGuard> guard_;
};

TEST_F(MetadataGuardRoot, PodReadsMetadataButNeverTheCredentials) {
  // Without the guard the defect is there: the pod reads the node's keys.
  Reply before = Get(a_.netns, kCredentials);
  ASSERT_EQ(before.status, 200);
  ASSERT_NE(before.body.find(kSecret), std::string::npos);

  StartGuard();
  Reply id = Get(a_.netns, "/latest/meta-data/instance-id");
  EXPECT_EQ(id.status, 200);
  EXPECT_EQ(id.body, "i-node");
  // The proxy asked, from the node's address.
  EXPECT_EQ(md_.Askers("/latest/meta-data/instance-id"), std::vector<std::string>{"198.18.0.10"});

  for (const char* t : {kCredentials, "/latest/meta-data/ram/security-credentials/",
                        "/latest/meta-data/%72am/security-credentials/node-role",
                        "/latest/meta-data/ram%2Fsecurity-credentials%2Fnode-role",
                        "/latest//meta-data/./ram/../ram/Security-Credentials/node-role",
                        "/2016-01-01/meta-data/ram/security-credentials/node-role"}) {
    Reply r = Get(a_.netns, t);
    EXPECT_EQ(r.status, 403) << t << ": " << r.body << " connected=" << r.connected << " errno=" << r.connect_errno;
    EXPECT_EQ(r.body.find(kSecret), std::string::npos) << t;
    EXPECT_NE(r.body.find("k8s.aliyun.com/allow-node-ram-role"), std::string::npos) << r.body;
  }
  // Double encoding is refused as malformed, and reaches nobody either.
  EXPECT_EQ(Get(a_.netns, "/latest/meta-data/%2572am/security-credentials/node-role").status, 400);
  EXPECT_EQ(md_.Askers(kCredentials).size(), 1u) << "only the request made before the guard";
  EXPECT_EQ(md_.Askers("/latest/meta-data/ram/security-credentials/").size(), 0u);
  EXPECT_EQ(guard_->stats().refused_credentials, 6u);

  // Hardened mode's token flow passes through.
  Reply token = Http(a_.netns, "100.100.100.200", 80,
                     "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aliyun-ecs-metadata-token-ttl-seconds: 60\r\n"
                     "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(token.status, 200);
  EXPECT_EQ(token.body, "token-1");
}

TEST_F(MetadataGuardRoot, ExemptPodReadsTheCredentialsUntilItStops) {
  StartGuard({{b_, true}, {a_, false}});
  Reply b = Get(b_.netns, kCredentials);
  EXPECT_EQ(b.status, 200);
  EXPECT_NE(b.body.find(kSecret), std::string::npos);
  // Directly: the service saw the pod's own address.
  EXPECT_EQ(md_.Askers(kCredentials), std::vector<std::string>{"198.18.1.3"});
  EXPECT_EQ(Get(a_.netns, kCredentials).status, 403);

  // The pod ends; the next holder of its IP must not inherit the exemption.
  ASSERT_TRUE(guard_->PodStopped(Ipv4Addr::Parse(b_.ip).value()).ok());
  EXPECT_EQ(Get(b_.netns, kCredentials).status, 403);
  // And an exemption added to a running node's table works at once.
  ASSERT_TRUE(guard_->PodStarted(Ipv4Addr::Parse(a_.ip).value(), "x/a", {{kAllowNodeRamRoleAnnotation, "true"}}).ok());
  EXPECT_EQ(Get(a_.netns, kCredentials).status, 200);
  // A new pod with that IP and no annotation clears it (no DEL seen).
  ASSERT_TRUE(guard_->PodStarted(Ipv4Addr::Parse(a_.ip).value(), "x/a2", {}).ok());
  EXPECT_EQ(Get(a_.netns, kCredentials).status, 403);
}

TEST_F(MetadataGuardRoot, NonPodSourcesAreUnaffected) {
  StartGuard();
  // The node itself (terwayd, host-network pods).
  Reply node = Get(node_, kCredentials);
  EXPECT_EQ(node.status, 200);
  EXPECT_NE(node.body.find(kSecret), std::string::npos);
  // Forwarded traffic that did not come from a pod's link.
  Reply ext = Get(ext_, kCredentials);
  EXPECT_EQ(ext.status, 200);
  EXPECT_EQ(md_.Askers(kCredentials), (std::vector<std::string>{"198.18.0.10", "198.18.2.2"}));
  EXPECT_EQ(guard_->stats().forwarded, 0u);
}

TEST_F(MetadataGuardRoot, OtherPortsAreFencedAndTheProxyIsNodeLocal) {
  StartGuard({{b_, true}});
  const std::string other = GetRequest("/other-port");
  Reply a = Http(a_.netns, "100.100.100.200", 8080, other);
  EXPECT_FALSE(a.connected) << "a guarded pod reached another port of the metadata service";
  EXPECT_EQ(a.connect_errno, ECONNREFUSED);
  EXPECT_EQ(Http(b_.netns, "100.100.100.200", 8080, other).status, 200);  // exempt
  EXPECT_EQ(Http(ext_, "100.100.100.200", 8080, other).status, 200);      // not a pod

  // The proxy's own address answers pods (the same filter) ...
  EXPECT_EQ(Http(a_.netns, "169.254.100.200", 80, GetRequest(kCredentials)).status, 403);
  // ... and nothing that arrives on another link, though the node would
  // route it there.
  ASSERT_EQ(Sh("ip -n " + ext_ + " route add 169.254.100.200/32 via 198.18.2.1"), 0);
  Reply ext = Http(ext_, "169.254.100.200", 80, GetRequest("/latest/meta-data/instance-id"), 1000);
  EXPECT_FALSE(ext.connected);
  EXPECT_EQ(ext.connect_errno, ETIMEDOUT);
}

TEST_F(MetadataGuardRoot, LinksNamedOtherwiseAreGuardedOnceRegistered) {
  StartGuard();
  EXPECT_EQ(Get(c_.netns, kCredentials).status, 200) << "cx* is not a guarded prefix";
  ASSERT_TRUE(guard_->GuardInterface(c_.host_veth).ok());
  EXPECT_EQ(Get(c_.netns, kCredentials).status, 403);
  ASSERT_TRUE(guard_->ForgetInterface(c_.host_veth).ok());
  EXPECT_EQ(Get(c_.netns, kCredentials).status, 200);
  EXPECT_FALSE(guard_->GuardInterface("bad name").ok());
}

TEST_F(MetadataGuardRoot, OnePodCannotHoldEveryWorker) {
  StartGuard();
  // Four idle connections from pod a; its share is three (Options()).
  std::vector<int> held;
  Status s = netlink::RunInNetns(a_.netns, [&]() -> Status {
    for (int i = 0; i < 4; i++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(80);
      inet_pton(AF_INET, "100.100.100.200", &addr.sin_addr);
      EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << i;
      held.push_back(fd);
    }
    return Ok();
  });
  ASSERT_TRUE(s.ok());
  // One of them is answered 429 at once; the other three keep their workers.
  int refused = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); refused < 0 && Clock::now() < deadline;) {
    for (size_t i = 0; i < held.size(); i++) {
      pollfd p{held[i], POLLIN, 0};
      if (poll(&p, 1, 10) == 1) refused = static_cast<int>(i);
    }
  }
  ASSERT_GE(refused, 0);
  char buf[16] = {};
  EXPECT_GT(recv(held[refused], buf, sizeof buf - 1, 0), 0);
  EXPECT_EQ(std::string(buf).substr(0, 12), "HTTP/1.1 429");
  EXPECT_EQ(guard_->stats().refused_connections, 1u);
  // Another pod is served meanwhile.
  EXPECT_EQ(Get(b_.netns, "/latest/meta-data/instance-id").status, 200);
  for (int fd : held) close(fd);
  // Pod a is served again once its workers saw the closes (each polls in
  // 100 ms slices).
  int status = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(5); status != 200 && Clock::now() < deadline;) {
    status = Get(a_.netns, "/latest/meta-data/instance-id").status;
  }
  EXPECT_EQ(status, 200);
}

TEST_F(MetadataGuardRoot, RestartKeepsPodsGuardedAndRebuildsExemptions) {
  StartGuard({{b_, true}});
  ASSERT_EQ(Get(b_.netns, kCredentials).status, 200);
  guard_->Stop();
  // terwayd down: pods are refused by the node, not let through.
  Reply down = Get(a_.netns, kCredentials);
  EXPECT_FALSE(down.connected);
  EXPECT_EQ(down.connect_errno, ECONNREFUSED);
  EXPECT_EQ(Get(b_.netns, kCredentials).status, 200) << "the exemption holds while terwayd is down";
  // A new daemon rebuilds from its pods: b exempt, a not; the table is
  // replaced in place.
  guard_.reset();
  StartGuard({{b_, true}, {a_, false}});
  EXPECT_EQ(Get(a_.netns, kCredentials).status, 403);
  EXPECT_EQ(Get(b_.netns, kCredentials).status, 200);
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list tables"), "table ip terway_metadata\n");
}

TEST_F(MetadataGuardRoot, AllowRemovesTheGuard) {
  StartGuard();
  ASSERT_EQ(Get(a_.netns, kCredentials).status, 403);
  guard_.reset();
  guard_ = std::make_unique<MetadataGuard>(Options(/*deny=*/false));
  ASSERT_TRUE(guard_->Start().ok());
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list tables"), "");
  EXPECT_EQ(Capture("ip -n " + node_ + " -4 -br addr show dev lo | grep -c 169.254.100.200"), "0\n");
  EXPECT_EQ(Get(a_.netns, kCredentials).status, 200);
}

}  // namespace
}  // namespace terway::metadata
