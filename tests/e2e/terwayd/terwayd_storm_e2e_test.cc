// terwayd against the real emulated cloud, through the real CNI protocol:
// pod storms under injected throttling and server errors, with and without
// kill -9 of the daemon, then the invariants that matter to an operator:
// every pod got an IP, no IP went to two pods, and nothing leaked (the
// cloud's view equals the daemon's).
#include <random>
#include <sstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cloud/cloud_clients.h"
#include "cni/daemon_client.h"
#include "e2e/harness/world.h"
#include "store/state_store.h"
#include "test_util.h"

namespace terway::testing {
namespace {

namespace proto = cni::protocol;

class TerwaydStorm : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    WorldSpec ws;
    ws.instance_type = "ecs.g7.8xlarge";  // (8 - 1) x 30 = 210 pods
    ws.vswitch_cidr = "198.18.0.0/24";
    auto w = VpcsimWorld::Start(ws);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    world_ = std::move(w).value();
    instance_ = world_->instances()[0];
    TerwaydSpec ts;
    ts.instance_id = instance_;
    ts.max_pool_size = 10;
    auto n = TerwaydNode::Start(world_.get(), ts);
    ASSERT_TRUE(n.ok()) << n.error().ToString();
    node_ = std::move(n).value();
    auto ready = node_->WaitReady();
    ASSERT_TRUE(ready.ok()) << ready.error().ToString();

    cloud::CloudOptions co;
    co.region_id = "cn-hangzhou";
    co.ecs_endpoint = world_->endpoint();
    co.vpc_endpoint = world_->endpoint();
    co.credential_kind = cloud::CredentialKind::kStatic;
    co.access_key = VpcsimWorld::kAccessKey;
    co.access_secret = VpcsimWorld::kAccessSecret;
    auto c = cloud::CloudClients::Create(co);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    cloud_ = std::move(c).value();
  }

  void TearDown() override {
    if (HasFailure() && node_) {
      std::cerr << "---- terwayd log (tail) ----\n";
      std::string log = node_->process().Log();
      std::cerr << log.substr(log.size() > 8000 ? log.size() - 8000 : 0) << "\n";
    }
    node_.reset();
    world_.reset();
  }

  proto::Request PodRequest(proto::Op op, int i) {
    proto::Request r;
    r.op = op;
    r.container_id = "storm-container-" + std::to_string(i);
    r.netns = "/var/run/netns/storm-" + std::to_string(i);
    r.ifname = "eth0";
    r.pod.namespace_ = "storm";
    r.pod.name = "pod-" + std::to_string(i);
    r.pod.uid = "uid-" + std::to_string(i);
    return r;
  }

  // Calls like the plugin does, and like a runtime retries a failed ADD/DEL:
  // transient failures (daemon restarting, busy, throttled past its retries)
  // are retried until the deadline.
  Result<proto::Reply> CallWithRetry(const proto::Request& req, std::chrono::seconds deadline) {
    auto end = std::chrono::steady_clock::now() + deadline;
    std::string last;
    while (std::chrono::steady_clock::now() < end) {
      auto c = cni::MakeUnixDaemonClient(node_->socket(), std::chrono::seconds(60));
      auto r = c->Call(req);
      if (r.ok()) {
        if (r->ok()) return r;
        auto cls = r->error->cls;
        if (req.op == proto::Op::kRelease && cls == proto::ErrorClass::kNotFound) return r;
        if (cls != proto::ErrorClass::kRetryable && cls != proto::ErrorClass::kUnavailable &&
            cls != proto::ErrorClass::kTimeout) {
          return r;  // a real failure: report it
        }
        last = r->error->message;
      } else {
        last = r.error().ToString();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return Errorf(ErrorCode::kTimeout, "gave up: {}", last);
  }

  // Allocates pods [0, n) from `threads` threads; returns container -> IP.
  std::map<int, std::string> AllocateAll(int n, int threads) {
    std::map<int, std::string> got;
    std::mutex mu;
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) {
      ts.emplace_back([&, t] {
        for (int i = t; i < n; i += threads) {
          auto r = CallWithRetry(PodRequest(proto::Op::kAllocate, i), std::chrono::seconds(240));
          std::lock_guard l(mu);
          progress_++;
          if (r.ok() && r->ok() && r->result && !r->result->ips.empty()) {
            got[i] = r->result->ips[0].address;
          } else {
            ADD_FAILURE() << "pod " << i << ": "
                          << (r.ok() ? (r->error ? r->error->message : "no result")
                                     : r.error().ToString());
          }
        }
      });
    }
    for (auto& t : ts) t.join();
    return got;
  }

  void ReleaseAll(int n, int threads) {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++) {
      ts.emplace_back([&, t] {
        for (int i = t; i < n; i += threads) {
          auto r = CallWithRetry(PodRequest(proto::Op::kRelease, i), std::chrono::seconds(240));
          bool ok = r.ok() && (r->ok() || r->error->cls == proto::ErrorClass::kNotFound);
          EXPECT_TRUE(ok) << "release pod " << i << ": "
                          << (r.ok() ? r->error->message : r.error().ToString());
        }
      });
    }
    for (auto& t : ts) t.join();
  }

  // Private IPs the cloud lists on the instance's ENIs other than its
  // primary ENI (what the pool may hand out), and on Available ENIs tagged
  // for this instance (ENIs the pool created but has not attached).
  std::set<std::string> CloudPodIps() {
    cloud::DescribeEnisFilter f;
    f.instance_id = instance_;
    auto enis = cloud_->ecs()->DescribeNetworkInterfaces(f);
    EXPECT_TRUE(enis.ok()) << enis.error().ToString();
    std::set<std::string> ips;
    if (!enis.ok()) return ips;
    for (const auto& e : *enis) {
      if (e.type == "Primary") continue;
      for (const auto& p : e.private_ip_sets) ips.insert(p.address);
    }
    return ips;
  }

  std::set<std::string> StoreIps() {
    auto st = store::StateStore::Open(node_->state_path());
    EXPECT_TRUE(st.ok());
    std::set<std::string> ips;
    if (!st.ok()) return ips;
    auto list = (*st)->ListIps();
    EXPECT_TRUE(list.ok());
    for (const auto& r : *list) ips.insert(r.ip);
    EXPECT_TRUE((*st)->CheckIntegrity().ok());
    return ips;
  }

  void ExpectNoDuplicates(const std::map<int, std::string>& got) {
    std::set<std::string> uniq;
    for (const auto& [i, ip] : got) {
      EXPECT_TRUE(uniq.insert(ip).second) << ip << " was given to two pods";
    }
  }

  void ExpectPodIpsOnInstanceEnis(const std::map<int, std::string>& got) {
    auto cloud_ips = CloudPodIps();
    for (const auto& [i, ip] : got) {
      std::string bare = ip.substr(0, ip.find('/'));
      EXPECT_TRUE(cloud_ips.count(bare)) << "pod " << i << " IP " << bare
                                         << " is not a private IP of the node's ENIs";
    }
  }

  // Quiesce the daemon (no cloud call in flight), then compare.
  void ExpectCloudEqualsDaemon() {
    node_->Stop();
    auto stored = StoreIps();
    auto cloud_ips = CloudPodIps();
    EXPECT_EQ(stored, cloud_ips) << "daemon and cloud disagree about the node's pod IPs";
    auto st = store::StateStore::Open(node_->state_path());
    ASSERT_TRUE(st.ok());
    auto allocs = (*st)->ListAllocations();
    ASSERT_TRUE(allocs.ok());
    EXPECT_TRUE(allocs->empty()) << allocs->size() << " allocations left after every pod was deleted";
  }

  std::unique_ptr<VpcsimWorld> world_;
  std::unique_ptr<TerwaydNode> node_;
  std::unique_ptr<cloud::CloudClients> cloud_;
  std::string instance_;
  std::atomic<int> progress_{0};  // allocations answered so far
};

TEST_F(TerwaydStorm, TwoHundredPodsUnderThrottlingAndServerErrors) {
  ASSERT_TRUE(world_->SetFaults({{"action", "*"}, {"throttle_rate", 0.2}, {"error_rate", 0.05}}).ok());
  constexpr int kPods = 200;
  auto got = AllocateAll(kPods, 20);
  EXPECT_EQ(got.size(), static_cast<size_t>(kPods));
  ExpectNoDuplicates(got);
  ASSERT_TRUE(world_->ClearFaults().ok());  // read the cloud's view cleanly
  ExpectPodIpsOnInstanceEnis(got);
  ASSERT_TRUE(world_->SetFaults({{"action", "*"}, {"throttle_rate", 0.2}, {"error_rate", 0.05}}).ok());
  ReleaseAll(kPods, 20);
  ASSERT_TRUE(world_->ClearFaults().ok());

  // The operator sees it all in the metrics: every ADD served, and the cloud
  // calls with their retries (the injected throttling forced some).
  auto metrics = node_->Metrics();
  ASSERT_TRUE(metrics.ok()) << metrics.error().ToString();
  EXPECT_NE(metrics->find("terway_cni_requests_total{op=\"allocate\",result=\"ok\"}"),
            std::string::npos) << *metrics;
  double retries = 0;
  std::istringstream lines(*metrics);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("terway_cloud_api_retries_total{", 0) == 0) {
      retries += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  EXPECT_GT(retries, 0) << "20% throttling and 5% errors should have forced retries\n" << *metrics;
  EXPECT_NE(metrics->find("terway_pool_max_pods 210"), std::string::npos) << *metrics;
  ExpectCloudEqualsDaemon();
}

TEST_F(TerwaydStorm, Kill9DuringTheStormLosesNothing) {
  ASSERT_TRUE(world_->SetFaults({{"action", "*"}, {"throttle_rate", 0.2}, {"error_rate", 0.05}}).ok());
  constexpr int kPods = 120;
  // Kill at points tied to progress (not to wall time, which varies with the
  // machine's load), with a random offset so the instant within the daemon's
  // work differs from run to run.
  std::atomic<int> kills{0};
  std::thread killer([&] {
    std::mt19937 rng(std::random_device{}());
    for (int at : {kPods / 5, kPods / 2, kPods * 4 / 5}) {
      int target = at + static_cast<int>(rng() % 10);
      WaitFor([&] { return progress_ >= target; }, std::chrono::seconds(300),
              std::chrono::milliseconds(2));
      node_->Kill9();
      kills++;
      EXPECT_TRUE(node_->Restart().ok());
    }
  });
  auto got = AllocateAll(kPods, 12);
  killer.join();
  EXPECT_EQ(kills, 3);
  EXPECT_EQ(got.size(), static_cast<size_t>(kPods));
  ExpectNoDuplicates(got);

  // After one more crash, a restarted daemon answers the same IPs (the
  // allocations were committed before the replies were sent).
  node_->Kill9();
  ASSERT_TRUE(node_->Restart().ok());
  ASSERT_TRUE(node_->WaitReady().ok());
  for (const auto& [i, ip] : got) {
    auto r = CallWithRetry(PodRequest(proto::Op::kAllocate, i), std::chrono::seconds(60));
    ASSERT_TRUE(r.ok() && r->ok()) << "pod " << i;
    EXPECT_EQ(r->result->ips[0].address, ip) << "pod " << i << " changed IP across a crash";
  }
  ASSERT_TRUE(world_->ClearFaults().ok());
  ExpectPodIpsOnInstanceEnis(got);
  ReleaseAll(kPods, 12);
  // A restart reconciles whatever a crash left half-done.
  node_->Kill9();
  ASSERT_TRUE(node_->Restart().ok());
  ASSERT_TRUE(node_->WaitReady().ok());
  ExpectCloudEqualsDaemon();
}

}  // namespace
}  // namespace terway::testing
