// How terwayd reports and retries writes of the eBPF datapath's policy map:
// the reporter (counted, one Event per outage, again when it gets worse) and
// the writer with policy off (written when due, retried each pod GC round
// until in sync, never two writers at once).
#include "daemon/policy_datapath_sync.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace terway::daemon {
namespace {

struct Told {
  std::mutex mu;
  std::vector<std::pair<k8s::ObjectReference, std::string>> events;  // object, message
  WarnEvent Sink() {
    return [this](const k8s::ObjectReference& o, const std::string& reason, const std::string& message) {
      EXPECT_EQ(reason, kEbpfPolicyMapNotSyncedReason);
      std::lock_guard l(mu);
      events.push_back({o, message});
    };
  }
  size_t size() {
    std::lock_guard l(mu);
    return events.size();
  }
};

Status FailedClosed() { return Errorf(ErrorCode::kKernel, "writing the policy map: Argument list too long"); }
Status FailedOpen() {
  return Errorf(ErrorCode::kUnavailable, "writing the policy map failed, and marking it not authoritative too");
}

TEST(DatapathSyncReporter, CountsEveryFailureAndTellsEachOutageOnceUnlessItGetsWorse) {
  Metrics m;
  Told told;
  DatapathSyncReporter r(&m, "node-1", told.Sink());
  EXPECT_FALSE(r.Note(Ok()));
  EXPECT_EQ(told.size(), 0u);
  EXPECT_TRUE(r.Note(FailedClosed()));
  EXPECT_TRUE(r.Note(FailedClosed()));
  ASSERT_EQ(told.size(), 1u) << "once per outage";
  EXPECT_EQ(told.events[0].first.kind, "Node");
  EXPECT_EQ(told.events[0].first.name, "node-1");
  EXPECT_NE(told.events[0].second.find("takes the host stack"), std::string::npos) << told.events[0].second;
  EXPECT_TRUE(r.Note(FailedOpen()));
  ASSERT_EQ(told.size(), 2u) << "failed open is worse news: told again";
  EXPECT_NE(told.events[1].second.find("refused"), std::string::npos) << told.events[1].second;
  EXPECT_NE(told.events[1].second.find("marking it not authoritative"), std::string::npos) << told.events[1].second;
  EXPECT_TRUE(r.Note(FailedClosed()));
  EXPECT_TRUE(r.Note(FailedOpen()));
  EXPECT_EQ(told.size(), 2u) << "ups and downs within one outage";
  EXPECT_EQ(m.Get("terway_ebpf_datapath_policy_sync_errors_total"), 5);
  EXPECT_FALSE(r.Note(Ok()));
  EXPECT_TRUE(r.Note(FailedOpen()));
  EXPECT_EQ(told.size(), 3u) << "a new outage";
  // The gauge is the datapath's (set at scrape), never the reporter's.
  EXPECT_EQ(m.Render().find("terway_ebpf_datapath_policy_synced"), std::string::npos) << m.Render();
}

// Policy off: the empty set is written when programs are loaded and the map
// is not in sync -- at start, at the load, and each pod GC round until a
// write succeeds; a failure is reported like the controller's.
TEST(PolicyOffDatapathSync, AFailedWriteIsReportedAndRetriedUntilInSync) {
  Metrics m;
  Told told;
  DatapathSyncReporter r(&m, "node-1", told.Sink());
  std::optional<bool> synced;  // nothing loaded
  bool fail = true;
  int writes = 0;
  PolicyOffDatapathSync::Hooks h;
  h.synced = [&] { return synced; };
  h.write_empty = [&]() -> Status {
    ++writes;
    if (fail) return Errorf(ErrorCode::kPermission, "setting the policy state: Operation not permitted");
    synced = true;
    return Ok();
  };
  PolicyOffDatapathSync sync(h, &r);
  sync.SyncIfDue();  // start: nothing loaded
  EXPECT_EQ(writes, 0);
  synced = false;  // the first eBPF pod loaded the programs: a fresh map
  sync.SyncIfDue();  // the `loaded` hook
  EXPECT_EQ(writes, 1);
  EXPECT_EQ(m.Get("terway_ebpf_datapath_policy_sync_errors_total"), 1);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_NE(told.events[0].second.find("policy is off on this node"), std::string::npos) << told.events[0].second;
  sync.SyncIfDue();  // a pod GC round: retried
  EXPECT_EQ(writes, 2);
  EXPECT_EQ(m.Get("terway_ebpf_datapath_policy_sync_errors_total"), 2);
  EXPECT_EQ(told.size(), 1u);
  fail = false;
  sync.SyncIfDue();  // the next round succeeds
  EXPECT_EQ(writes, 3);
  EXPECT_EQ(synced, std::optional<bool>(true));
  sync.SyncIfDue();  // in sync: nothing to do
  EXPECT_EQ(writes, 3);
  EXPECT_EQ(m.Get("terway_ebpf_datapath_policy_sync_errors_total"), 2);
}

// The `loaded` hook (an ADD's thread) and the pod GC round may call at once:
// one writes, the other leaves it to that one; never two writers (the
// datapath's writer keeps a shadow of the map that is not locked).
TEST(PolicyOffDatapathSync, NeverTwoWritersAtOnce) {
  Metrics m;
  DatapathSyncReporter r(&m, "node-1", nullptr);
  std::atomic<int> inside{0}, most{0}, writes{0};
  std::atomic<bool> synced{false};
  PolicyOffDatapathSync::Hooks h;
  h.synced = [&]() -> std::optional<bool> { return synced.load(); };
  h.write_empty = [&]() -> Status {
    int now = ++inside;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    ++writes;
    std::this_thread::yield();
    --inside;
    return Errorf(ErrorCode::kKernel, "still failing");  // stays due: every call wants to write
  };
  PolicyOffDatapathSync sync(h, &r);
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    callers.emplace_back([&] {
      for (int k = 0; k < 200; ++k) sync.SyncIfDue();
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(most.load(), 1) << "two writers at once";
  EXPECT_GT(writes.load(), 0);
}

}  // namespace
}  // namespace terway::daemon
