// Every cloud call the pool and the exclusive-ENI allocator make, failing
// once in each way the cloud fails (a server error, throttling, a timeout),
// must leave them serving and converging: pods keep getting and giving back
// addresses, nothing wedges, and in the end the cloud, the store and the
// pool agree. A scenario that hangs (a lock taken twice, a waiter never
// woken) fails at its watchdog instead of hanging the suite.
#include <filesystem>
#include <future>
#include <set>

#include <gtest/gtest.h>

#include "fake_cloud.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "test_util.h"

namespace terway::ipam {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using testing::FakeCloud;

constexpr const char* kInstance = "i-faults";

enum class Fault { kServerError, kThrottle, kTimeout };

Error Make(Fault f, const std::string& op) {
  switch (f) {
    case Fault::kServerError: {
      Error e(ErrorCode::kCloud, op + ": injected server error");
      e.cloud_code = "InternalError";
      e.http_status = 500;
      e.retryable = true;
      return e;
    }
    case Fault::kThrottle: {
      Error e(ErrorCode::kCloud, op + ": injected throttling");
      e.cloud_code = "Throttling.User";
      e.http_status = 400;
      e.retryable = true;
      return e;
    }
    case Fault::kTimeout: {
      Error e(ErrorCode::kTimeout, op + ": injected timeout (no answer)");
      e.retryable = true;
      return e;
    }
  }
  return Error(ErrorCode::kInternal, "unreachable");
}

const char* Name(Fault f) {
  switch (f) {
    case Fault::kServerError: return "server_error";
    case Fault::kThrottle: return "throttle";
    case Fault::kTimeout: return "timeout";
  }
  return "?";
}

struct Row {
  std::string op;
  Fault fault;
};

std::vector<Row> Rows(const std::vector<std::string>& ops) {
  std::vector<Row> rows;
  for (const auto& op : ops) {
    for (Fault f : {Fault::kServerError, Fault::kThrottle, Fault::kTimeout}) rows.push_back({op, f});
  }
  return rows;
}

std::string RowName(const ::testing::TestParamInfo<Row>& info) {
  return info.param.op + "_" + Name(info.param.fault);
}

PodIdentity Pod(const std::string& name) {
  PodIdentity p;
  p.namespace_ = "default";
  p.name = name;
  p.uid = "uid-" + name;
  p.container_id = "c-" + name;
  return p;
}

// Runs body on a thread and fails the test if it does not finish in time.
// A wedged pool cannot be unwound from here, so the process ends at once
// with the reason rather than at the suite's timeout without one.
void WithWatchdog(const std::string& what, std::function<void()> body, seconds limit = seconds(60)) {
  auto done = std::async(std::launch::async, std::move(body));
  if (done.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not finish within " << limit.count() << " s: the pool is wedged";
    std::fprintf(stderr, "%s wedged; aborting\n", what.c_str());
    std::_Exit(1);
  }
  done.get();
}

class TempState {
 public:
  TempState() {
    dir_ = fs::temp_directory_path() / ("terway-faults-" + terway::testing::UniqueSuffix());
    fs::create_directories(dir_);
    auto st = store::StateStore::Open((dir_ / "state.db").string());
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    store = std::move(st).value();
  }
  ~TempState() {
    store.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<store::StateStore> store;

 private:
  fs::path dir_;
};

PoolOptions Options() {
  PoolOptions o;
  o.instance_id = kInstance;
  o.instance_type = "ecs.test";
  o.vswitch_ids = {"vsw-a"};
  o.config.vswitch_selection_policy = VSwitchSelectionPolicy::kListOrder;
  o.config.eni_tags["creator"] = "terway";
  o.config.min_pool_size = 0;
  o.config.max_pool_size = 0;  // everything idle is reclaimed: reclaim calls are exercised
  o.config.idle_ip_reclaim_after = seconds(60);
  o.config.idle_ip_reclaim_interval = seconds(3600);  // driven by hand
  o.config.ip_pool_sync_period = seconds(3600);       // driven by hand
  o.config.leaked_eni_grace_period = minutes(1);
  return o;
}

// --- the shared-ENI pool ---------------------------------------------------

class PoolCloudFaults : public ::testing::TestWithParam<Row> {};

TEST_P(PoolCloudFaults, OneFailedCallLeavesThePoolServingAndConverging) {
  const Row row = GetParam();
  FakeCloud cloud({3, 10}, kInstance, {{"vsw-a", 1000}});
  TempState state;
  FakeClock clock;
  auto created = IpPool::Create(Options(), &cloud, state.store.get(), &clock);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  std::unique_ptr<IpPool> pool = std::move(created).value();
  pool->Start();
  cloud.Script(row.op, Make(row.fault, row.op));

  WithWatchdog("pool scenario " + row.op, [&] {
    // Twelve pods: two ENIs (create + attach each) and an assign on one of
    // them. Each waits out the worker's retry after the injected failure.
    std::set<std::string> ips;
    for (int i = 0; i < 12; ++i) {
      auto a = pool->Allocate(Pod("p" + std::to_string(i)), seconds(20));
      ASSERT_TRUE(a.ok()) << "pod " << i << ": " << a.error().ToString();
      EXPECT_TRUE(ips.insert(a->ip).second) << a->ip << " handed out twice";
    }
    // All but one leave: reclaim gives the idle addresses back -- single
    // IPs (unassign) on the ENI the last pod keeps, whole ENIs (detach,
    // delete) elsewhere -- then the last one leaves and its ENI goes too. A
    // round may fail on the injected fault; later rounds (and a reconcile,
    // for releases the cloud may have applied) finish.
    for (int i = 1; i < 12; ++i) ASSERT_TRUE(pool->Release("c-p" + std::to_string(i)).ok());
    for (int phase = 0; phase < 2; ++phase) {
      if (phase == 1) {
        ASSERT_TRUE(pool->Release("c-p0").ok());
      }
      clock.Advance(minutes(2));
      for (int round = 0; round < 6; ++round) {
        (void)pool->ReclaimOnce();
        (void)pool->Reconcile();
        clock.Advance(minutes(2));
      }
    }
    // Still serving: the next pod gets an address and gives it back.
    auto next = pool->Allocate(Pod("after"), seconds(20));
    ASSERT_TRUE(next.ok()) << next.error().ToString();
    // And what it hands out is really the node's: on an ENI attached to it.
    EXPECT_TRUE(cloud.AttachedTerwayIps().count(next->ip)) << next->ip << " is on no ENI attached to the node";
    ASSERT_TRUE(pool->Release("c-after").ok());
    // Leaked ENIs (a create whose attach or undo failed) go after their
    // grace period.
    clock.Advance(minutes(2));
    for (int round = 0; round < 3; ++round) {
      (void)pool->Reconcile();
      clock.Advance(minutes(2));
    }
  });
  pool->Stop();
  EXPECT_GE(cloud.Calls(row.op), 1) << "the scenario never made the call under test";
  // Converged: the pool's addresses are exactly the cloud's, none in doubt.
  auto s = pool->Stats();
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.releasing, 0) << "addresses left out of service";
  auto cloud_ips = cloud.AttachedTerwayIps();
  auto rows = state.store->ListIps();
  ASSERT_TRUE(rows.ok());
  std::set<std::string> stored;
  for (const auto& r : *rows) stored.insert(r.ip);
  EXPECT_EQ(stored, cloud_ips);
  int available = 0;
  for (const auto& e : cloud.AllEnis()) available += e.status == cloud::kEniAvailable ? 1 : 0;
  EXPECT_EQ(available, 0) << "a leaked ENI was never collected";
}

INSTANTIATE_TEST_SUITE_P(EveryPoolCall, PoolCloudFaults,
                         ::testing::ValuesIn(Rows({"DescribeVSwitches", "CreateNetworkInterface",
                                                   "AttachNetworkInterface", "AssignPrivateIpAddresses",
                                                   "UnassignPrivateIpAddresses", "DetachNetworkInterface",
                                                   "DeleteNetworkInterface", "DescribeNetworkInterfaces",
                                                   FakeCloud::kPrimaryLookup})),
                         RowName);

// Three pods on one ENI, then the two on secondary IPs leave: the ENI stays
// (a pod still uses it) and the next reclaim unassigns the two idle IPs.
void ThreePodsTwoLeave(IpPool& pool) {
  std::vector<IpAllocation> got;
  for (const char* n : {"a", "b", "c"}) {
    auto a = pool.Allocate(Pod(n), seconds(20));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    got.push_back(*a);
  }
  int freed = 0;
  bool kept = false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!kept && (got[i].ip == got[i].eni_primary_ip || i + 1 == got.size())) {
      kept = true;
      continue;
    }
    ASSERT_TRUE(pool.Release("c-" + std::string(1, "abc"[i])).ok());
    ++freed;
  }
  ASSERT_EQ(freed, 2);
}

// The defect that wedged nodes: a failed unassign during reclaim took the
// pool's lock twice, and every later ADD and DEL hung.
TEST(PoolCloudFaultsRegression, FailedUnassignDuringReclaimDoesNotWedgeThePool) {
  FakeCloud cloud({3, 10}, kInstance, {{"vsw-a", 1000}});
  TempState state;
  FakeClock clock;
  auto created = IpPool::Create(Options(), &cloud, state.store.get(), &clock);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<IpPool> pool = std::move(created).value();
  pool->Start();
  WithWatchdog("reclaim with a failing unassign", [&] {
    ThreePodsTwoLeave(*pool);
    clock.Advance(minutes(2));
    cloud.Script("UnassignPrivateIpAddresses", Make(Fault::kThrottle, "unassign"));
    EXPECT_FALSE(pool->ReclaimOnce().ok());
    EXPECT_EQ(cloud.Calls("UnassignPrivateIpAddresses"), 1);
    auto a = pool->Allocate(Pod("next"), seconds(20));
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    ASSERT_TRUE(pool->Release("c-next").ok());
  });
}

// A release the cloud may have carried out (5xx, timeout) keeps its
// addresses out of service until the cloud is read again: a pod handed an
// unassigned address would have a dead network.
TEST(PoolCloudFaultsRegression, AppliedButFailedUnassignIsNeverHandedOut) {
  FakeCloud cloud({3, 10}, kInstance, {{"vsw-a", 1000}});
  TempState state;
  FakeClock clock;
  auto created = IpPool::Create(Options(), &cloud, state.store.get(), &clock);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<IpPool> pool = std::move(created).value();
  pool->Start();
  ThreePodsTwoLeave(*pool);
  pool->Stop();  // from here on nothing refills behind the test's back
  clock.Advance(minutes(2));
  // The unassign happens in the cloud; its answer is lost (InternalError).
  cloud.ApplyThenFail("UnassignPrivateIpAddresses");
  EXPECT_FALSE(pool->ReclaimOnce().ok());
  EXPECT_EQ(cloud.Calls("UnassignPrivateIpAddresses"), 1);
  EXPECT_EQ(pool->Stats().releasing, 2) << "addresses the cloud may have taken back are out of service";
  EXPECT_EQ(pool->Stats().idle, 0);
  auto d = pool->Allocate(Pod("d"), milliseconds(200));
  EXPECT_FALSE(d.ok()) << "handed out " << d->ip << ", which the cloud no longer has";
  // Reading the cloud settles it: they are gone, and dropped.
  ASSERT_TRUE(pool->Reconcile().ok());
  EXPECT_EQ(pool->Stats().releasing, 0);
  EXPECT_EQ(pool->Stats().idle, 0);
  EXPECT_EQ(pool->Stats().in_use, 1);
}

// Detached, then its deletion refused: the ENI is off the node, so none of
// its addresses may be handed to a pod while leak collection deletes it.
TEST(PoolCloudFaultsRegression, DetachedEniWhoseDeleteFailedServesNoPod) {
  FakeCloud cloud({3, 10}, kInstance, {{"vsw-a", 1000}});
  TempState state;
  FakeClock clock;
  auto created = IpPool::Create(Options(), &cloud, state.store.get(), &clock);
  ASSERT_TRUE(created.ok());
  std::unique_ptr<IpPool> pool = std::move(created).value();
  pool->Start();
  ASSERT_TRUE(pool->Allocate(Pod("a"), seconds(20)).ok());
  ASSERT_TRUE(pool->Release("c-a").ok());
  pool->Stop();
  clock.Advance(minutes(2));
  cloud.Script("DeleteNetworkInterface", Make(Fault::kThrottle, "delete"));
  EXPECT_FALSE(pool->ReclaimOnce().ok());
  EXPECT_EQ(cloud.Calls("DetachNetworkInterface"), 1);
  auto s = pool->Stats();
  EXPECT_EQ(s.idle, 0) << "addresses of a detached ENI are in service";
  EXPECT_EQ(s.enis, 0);
  // Leak collection deletes it after its grace period.
  ASSERT_TRUE(pool->Reconcile().ok());
  clock.Advance(minutes(2));
  ASSERT_TRUE(pool->Reconcile().ok());
  for (const auto& e : cloud.AllEnis()) EXPECT_EQ(e.type, "Primary") << e.network_interface_id << " leaked";
}

// --- the exclusive-ENI allocator ------------------------------------------

class ExclusiveCloudFaults : public ::testing::TestWithParam<Row> {};

TEST_P(ExclusiveCloudFaults, OneFailedCallLeavesTheAllocatorServingAndConverging) {
  const Row row = GetParam();
  FakeCloud cloud({4, 10}, kInstance, {{"vsw-a", 1000}});
  TempState state;
  FakeClock clock;
  auto created = ExclusiveEniAllocator::Create(Options(), &cloud, state.store.get(), &clock);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  std::unique_ptr<ExclusiveEniAllocator> alloc = std::move(created).value();
  cloud.Script(row.op, Make(row.fault, row.op));
  auto terway_enis = [&] {
    int n = 0;
    for (const auto& e : cloud.AllEnis()) n += e.type == "Primary" ? 0 : 1;
    return n;
  };
  WithWatchdog("exclusive scenario " + row.op, [&] {
    // The runtime retries a failed ADD; two tries cover one injected fault.
    for (const char* name : {"a", "b"}) {
      auto got = alloc->Allocate(Pod(name), seconds(20));
      if (!got.ok()) got = alloc->Allocate(Pod(name), seconds(20));
      ASSERT_TRUE(got.ok()) << name << ": " << got.error().ToString();
    }
    // DEL never fails for the cloud's sake: the pod is released, its ENI
    // finished by Reconcile.
    ASSERT_TRUE(alloc->Release("c-a").ok());
    ASSERT_TRUE(alloc->Release("c-b").ok());
    EXPECT_FALSE(alloc->Get("c-a")->has_value());
    for (int round = 0; round < 3; ++round) {
      (void)alloc->Reconcile();
      clock.Advance(minutes(2));
    }
    auto next = alloc->Allocate(Pod("after"), seconds(20));
    ASSERT_TRUE(next.ok()) << next.error().ToString();
    ASSERT_TRUE(alloc->Release("c-after").ok());
    for (int round = 0; round < 3; ++round) {
      (void)alloc->Reconcile();
      clock.Advance(minutes(2));
    }
  });
  EXPECT_GE(cloud.Calls(row.op), 1) << "the scenario never made the call under test";
  EXPECT_EQ(terway_enis(), 0) << "an ENI was left behind";
  EXPECT_TRUE(state.store->ListEnis()->empty());
  EXPECT_EQ(alloc->Stats().in_use, 0);
}

INSTANTIATE_TEST_SUITE_P(EveryExclusiveCall, ExclusiveCloudFaults,
                         ::testing::ValuesIn(Rows({"CreateNetworkInterface", "AttachNetworkInterface",
                                                   "DetachNetworkInterface", "DeleteNetworkInterface",
                                                   "DescribeNetworkInterfaces", FakeCloud::kPrimaryLookup})),
                         RowName);

}  // namespace
}  // namespace terway::ipam
