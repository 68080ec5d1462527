// The CNI service's one teardown and ADD's undo stack: every path that frees
// an address removes the wiring first, stops the pod's policy, then
// releases; a wiring that cannot be removed keeps its address.
#include <filesystem>

#include <gtest/gtest.h>

#include "daemon/cni_service.h"
#include "ipam/pool.h"
#include "netlink/netns.h"
#include "unit/ipam/fake_cloud.h"

namespace terway::daemon {
namespace {

namespace proto = cni::protocol;
using ipam::testing::FakeCloud;

// One ordered log of what the datapath, the policy and the store saw.
struct Log {
  std::vector<std::string> events;
  void Add(std::string e) { events.push_back(std::move(e)); }
};

class ScriptedDatapath : public PodDatapath {
 public:
  ScriptedDatapath(Log* log, store::StateStore* store) : log_(log), store_(store) {}
  Result<cni::CniResult> Ensure(const PodNetwork& pod) override {
    log_->Add("ensure " + pod.container_id);
    if (fail_ensure) return Error(ErrorCode::kKernel, "injected: veth creation failed");
    cni::CniResult r;
    r.ips.push_back({pod.ip.ip + "/32", "169.254.1.1", std::nullopt});
    return r;
  }
  Status Remove(const PodNetwork& pod) override {
    auto held = store_->FindByContainer(pod.container_id);
    log_->Add("remove " + pod.container_id + (held.ok() && held->has_value() ? " (address held)" : "") +
              (pod.host_veth.empty() ? "" : " veth=" + pod.host_veth));
    if (fail_remove) return Error(ErrorCode::kKernel, "injected: link busy");
    return Ok();
  }
  Result<cni::CniResult> Check(const PodNetwork&) override { return cni::CniResult{}; }
  Status GuardAdopted(const PodNetwork&) override { return Ok(); }
  Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>&, const std::set<Ipv4Addr>&) override {
    return std::vector<std::string>{};
  }
  bool fail_ensure = false;
  bool fail_remove = false;

 private:
  Log* log_;
  store::StateStore* store_;
};

class LoggingPolicy : public PodPolicy {
 public:
  explicit LoggingPolicy(Log* log) : log_(log) {}
  Status PodStarting(const std::string& ns, const std::string& name, Ipv4Addr, std::optional<Ipv6Addr>) override {
    log_->Add("policy start " + ns + "/" + name);
    return Ok();
  }
  void PodStopped(const std::string& ns, const std::string& name, Ipv4Addr) override {
    log_->Add("policy stop " + ns + "/" + name);
  }
  Result<policy::Explanation> Explain(const std::string&, const std::string&, policy::Protocol, uint16_t) override {
    return Error(ErrorCode::kUnsupported, "not in this test");
  }
  Result<std::string> Show() override { return std::string(); }

 private:
  Log* log_;
};

class CniTeardownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/terway-teardown-XXXXXX";
    dir_ = mkdtemp(tmpl);
    cloud_ = std::make_unique<FakeCloud>(ipam::InstanceLimits{3, 10}, "i-test",
                                         std::vector<FakeCloud::VSwitchSpec>{{"vsw-a", 100}});
    auto st = store::StateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(st.ok());
    store_ = std::move(st).value();
    ipam::PoolOptions po;
    po.instance_id = "i-test";
    po.instance_type = "ecs.test";
    po.vswitch_ids = {"vsw-a"};
    po.config.eni_tags["creator"] = "terway";
    po.config.min_pool_size = 5;
    po.config.max_pool_size = 10;
    auto pool = ipam::IpPool::Create(po, cloud_.get(), store_.get(), &RealClock::Instance());
    ASSERT_TRUE(pool.ok());
    pool_ = std::move(pool).value();
    pool_->Start();
    dp_ = std::make_unique<ScriptedDatapath>(&log_, store_.get());
    policy_ = std::make_unique<LoggingPolicy>(&log_);
    CniServiceOptions o;
    o.datapath_mode = "shared";
    svc_ = std::make_unique<CniService>(o, pool_.get(), store_.get(), dp_.get(), &metrics_);
    svc_->SetPodPolicy(policy_.get());
    svc_->SetReady(true);
  }
  void TearDown() override {
    svc_.reset();
    pool_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  proto::Request Req(proto::Op op, const std::string& cid, const std::string& pod) {
    proto::Request r;
    r.op = op;
    r.container_id = cid;
    r.ifname = "eth0";
    r.netns = "/var/run/netns/terway-test-none";
    r.pod.namespace_ = "default";
    r.pod.name = pod;
    return r;
  }
  bool Held(const std::string& cid) {
    auto r = store_->FindByContainer(cid);
    return r.ok() && r->has_value();
  }
  store::AllocationRecord Record(const std::string& cid) { return **store_->FindByContainer(cid); }

  std::string dir_;
  Log log_;
  Metrics metrics_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<ipam::IpPool> pool_;
  std::unique_ptr<ScriptedDatapath> dp_;
  std::unique_ptr<LoggingPolicy> policy_;
  std::unique_ptr<CniService> svc_;
};

TEST_F(CniTeardownTest, FailedWiringIsUndoneNewestFirstThroughTheTeardownSteps) {
  dp_->fail_ensure = true;
  auto add = svc_->Handle(Req(proto::Op::kAllocate, "c1", "a"));
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(log_.events, (std::vector<std::string>{"policy start default/a", "ensure c1",
                                                    "remove c1 (address held)", "policy stop default/a"}));
  EXPECT_FALSE(Held("c1")) << "the failed ADD kept its address";
}

TEST_F(CniTeardownTest, AnUndoWhoseWiringCannotBeRemovedKeepsTheAddress) {
  dp_->fail_ensure = true;
  dp_->fail_remove = true;
  ASSERT_FALSE(svc_->Handle(Req(proto::Op::kAllocate, "c1", "a")).ok());
  EXPECT_TRUE(Held("c1")) << "released an address a half-wired sandbox may still hold";
  // The runtime's DEL after the failed ADD finishes it once the kernel lets go.
  dp_->fail_remove = false;
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kRelease, "c1", "a")).ok());
  EXPECT_FALSE(Held("c1"));
}

TEST_F(CniTeardownTest, RepeatedAddThatFailsLeavesTheLivePodAlone) {
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kAllocate, "c1", "a")).ok());
  log_.events.clear();
  dp_->fail_ensure = true;
  ASSERT_FALSE(svc_->Handle(Req(proto::Op::kAllocate, "c1", "a")).ok());
  for (const auto& e : log_.events) EXPECT_EQ(e.find("remove"), std::string::npos) << e;
  EXPECT_TRUE(Held("c1"));
}

TEST_F(CniTeardownTest, EveryCauseRemovesWiringThenStopsPolicyThenReleases) {
  for (auto cause : {TeardownCause::kPodGc, TeardownCause::kRestartRepair, TeardownCause::kDel}) {
    const std::string cid = std::string("c-") + TeardownCauseName(cause);
    ASSERT_TRUE(svc_->Handle(Req(proto::Op::kAllocate, cid, "p")).ok());
    log_.events.clear();
    ASSERT_TRUE(svc_->Teardown(Record(cid), cause).ok());
    EXPECT_EQ(log_.events, (std::vector<std::string>{"remove " + cid + " (address held)", "policy stop default/p"}))
        << TeardownCauseName(cause);
    EXPECT_FALSE(Held(cid));
  }
}

TEST_F(CniTeardownTest, PodGcOfASandboxThatCannotBeUnwiredKeepsItsAddress) {
  auto add = svc_->Handle(Req(proto::Op::kAllocate, "c1", "a"));
  ASSERT_TRUE(add.ok());
  const auto ip = Record("c1").ip;
  dp_->fail_remove = true;
  Status st = svc_->Teardown(Record("c1"), TeardownCause::kPodGc);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("stays allocated"), std::string::npos) << st.error().ToString();
  EXPECT_TRUE(Held("c1"));
  // And nobody else gets it meanwhile.
  for (int i = 0; i < 8; ++i) {
    auto other = svc_->Handle(Req(proto::Op::kAllocate, "o" + std::to_string(i), "o" + std::to_string(i)));
    ASSERT_TRUE(other.ok());
    EXPECT_NE(other.result->ips[0].address, ip + "/32");
  }
}

TEST_F(CniTeardownTest, AStaleViewDoesNotTearDownAReallocatedContainer) {
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kAllocate, "c1", "a")).ok());
  auto seen = Record("c1");
  seen.ip = "198.18.255.254";  // what a GC round read before a DEL and a new ADD
  log_.events.clear();
  ASSERT_TRUE(svc_->Teardown(seen, TeardownCause::kPodGc).ok());
  EXPECT_TRUE(log_.events.empty());
  EXPECT_TRUE(Held("c1"));
}

TEST_F(CniTeardownTest, AnAddressTheCloudTookAwayHasItsWiringRemoved) {
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kAllocate, "c1", "a")).ok());
  auto rec = Record("c1");
  // The pool already dropped it (Reconcile); the daemon gets the record.
  ASSERT_TRUE(pool_->Release("c1").ok());
  log_.events.clear();
  svc_->AddressesLost({rec});
  EXPECT_EQ(log_.events, (std::vector<std::string>{"remove c1", "policy stop default/a"}));
}

TEST_F(CniTeardownTest, DelOfAnAdoptedSandboxIsMatchedByPodAndNetns) {
  // What the state rebuild records for a pod wired by upstream Terway.
  auto seed = svc_->Handle(Req(proto::Op::kAllocate, "seed", "seed"));
  ASSERT_TRUE(seed.ok());
  const std::string ip = Record("seed").ip;
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kRelease, "seed", "seed")).ok());
  ipam::PodIdentity pod;
  pod.namespace_ = "default";
  pod.name = "legacy";
  pod.container_id = "rebuilt-" + ip;
  pod.origin = store::kOriginRebuilt;
  pod.host_veth = "cali0123456789a";
  pod.netns = "/var/run/netns/terway-test-legacy";
  ASSERT_TRUE(pool_->Adopt(pod, ip, "").ok());
  // The runtime's CNI GC cannot name it: kept.
  proto::Request gc = Req(proto::Op::kGc, "", "");
  ASSERT_TRUE(svc_->Handle(gc).ok());
  EXPECT_TRUE(Held(pod.container_id));
  // A DEL for another sandbox of the same pod (another netns) is not it.
  auto other = Req(proto::Op::kRelease, "runtime-id-2", "legacy");
  other.netns = "/var/run/netns/terway-test-other";
  svc_->Handle(other);
  EXPECT_TRUE(Held(pod.container_id));
  // The DEL of the adopted sandbox itself (its real id unknown to us).
  log_.events.clear();
  auto del = Req(proto::Op::kRelease, "runtime-id-1", "legacy");
  del.netns = pod.netns;
  ASSERT_TRUE(svc_->Handle(del).ok());
  EXPECT_FALSE(Held(pod.container_id));
  ASSERT_FALSE(log_.events.empty());
  EXPECT_EQ(log_.events[0], "remove " + pod.container_id + " (address held) veth=cali0123456789a");
}

TEST_F(CniTeardownTest, ANewSandboxOfAPodSupersedesItsAdoptedAddressWithoutASandbox) {
  auto seed = svc_->Handle(Req(proto::Op::kAllocate, "seed", "seed"));
  ASSERT_TRUE(seed.ok());
  const std::string ip = Record("seed").ip;
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kRelease, "seed", "seed")).ok());
  ipam::PodIdentity pod;
  pod.namespace_ = "default";
  pod.name = "web";
  pod.container_id = "rebuilt-" + ip;
  pod.origin = store::kOriginRebuilt;  // found in the API only: no sandbox, no netns
  ASSERT_TRUE(pool_->Adopt(pod, ip, "").ok());
  ASSERT_TRUE(svc_->Handle(Req(proto::Op::kAllocate, "new-sandbox", "web")).ok());
  EXPECT_FALSE(Held(pod.container_id)) << "the old address was kept beside the new sandbox's";
  EXPECT_TRUE(Held("new-sandbox"));
}

}  // namespace
}  // namespace terway::daemon
