#include "k8s/cache.h"

#include <condition_variable>
#include <deque>

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

Json NsObj(const std::string& name, int rv, Labels labels = {}) {
  Json j = {{"apiVersion", "v1"}, {"kind", "Namespace"},
            {"metadata", {{"name", name}, {"resourceVersion", std::to_string(rv)}, {"uid", "u-" + name}}}};
  if (!labels.empty()) j["metadata"]["labels"] = labels;
  return j;
}

// Records handler calls and checks them against a model: an add of a key
// already present, or an update/delete of an absent key, is a duplicated or
// missed event.
struct EventLog {
  std::mutex mu;
  std::vector<std::string> calls;
  std::map<std::string, std::string> model;  // key -> resourceVersion
  std::vector<std::string> violations;

  CacheHandlers<Namespace> Handlers() {
    return {[this](const Namespace& n) {
              std::lock_guard l(mu);
              calls.push_back("add " + n.metadata.name + "@" + n.metadata.resource_version);
              if (model.count(n.metadata.name)) violations.push_back("duplicate add " + n.metadata.name);
              model[n.metadata.name] = n.metadata.resource_version;
            },
            [this](const Namespace& o, const Namespace& n) {
              std::lock_guard l(mu);
              calls.push_back("update " + n.metadata.name + "@" + o.metadata.resource_version + "->" +
                              n.metadata.resource_version);
              if (!model.count(n.metadata.name)) violations.push_back("update of unknown " + n.metadata.name);
              if (model[n.metadata.name] != o.metadata.resource_version) violations.push_back("stale old object");
              model[n.metadata.name] = n.metadata.resource_version;
            },
            [this](const Namespace& n) {
              std::lock_guard l(mu);
              calls.push_back("delete " + n.metadata.name);
              if (!model.erase(n.metadata.name)) violations.push_back("delete of unknown " + n.metadata.name);
            }};
  }
  std::vector<std::string> Take() {
    std::lock_guard l(mu);
    auto out = std::move(calls);
    calls.clear();
    return out;
  }
};

// A ListerWatcher that never runs: for driving Replace/Apply by hand.
class NullListerWatcher : public ListerWatcher {
 public:
  Result<Json> List(const ListOptions&) override { return MakeError(ErrorCode::kUnavailable, "unused"); }
  Status Watch(const ListOptions&, const std::function<bool(WatchEvent)>&, const std::atomic<bool>*) override {
    return MakeError(ErrorCode::kUnavailable, "unused");
  }
};

class CacheTest : public ::testing::Test {
 protected:
  NullListerWatcher lw;
  EventLog log;
  Cache<Namespace> cache{lw, {}, log.Handlers()};
};

TEST_F(CacheTest, RelistIsDiffedAgainstTheCache) {
  cache.Replace({NsObj("a", 1), NsObj("b", 2), NsObj("c", 3)});
  EXPECT_EQ(log.Take(), (std::vector<std::string>{"add a@1", "add b@2", "add c@3"}));
  // a unchanged, b changed, c gone, d new.
  cache.Replace({NsObj("a", 1), NsObj("b", 5), NsObj("d", 6)});
  EXPECT_EQ(log.Take(), (std::vector<std::string>{"update b@2->5", "add d@6", "delete c"}));
  cache.Replace({NsObj("a", 1), NsObj("b", 5), NsObj("d", 6)});
  EXPECT_TRUE(log.Take().empty());
  EXPECT_EQ(cache.Size(), 3u);
  EXPECT_TRUE(log.violations.empty());
}

TEST_F(CacheTest, WatchEventsDedupedByResourceVersion) {
  cache.Replace({NsObj("a", 1)});
  log.Take();
  cache.Apply({WatchEventType::kAdded, NsObj("a", 1)});      // replay of what the list had
  cache.Apply({WatchEventType::kModified, NsObj("a", 1)});   // same
  cache.Apply({WatchEventType::kModified, NsObj("a", 4, {{"x", "y"}})});
  cache.Apply({WatchEventType::kModified, NsObj("a", 4, {{"x", "y"}})});  // duplicate delivery
  cache.Apply({WatchEventType::kAdded, NsObj("b", 5)});
  cache.Apply({WatchEventType::kDeleted, NsObj("b", 6)});
  cache.Apply({WatchEventType::kDeleted, NsObj("b", 6)});    // already gone
  cache.Apply({WatchEventType::kDeleted, NsObj("zz", 7)});   // never known
  EXPECT_EQ(log.Take(), (std::vector<std::string>{"update a@1->4", "add b@5", "delete b"}));
  EXPECT_TRUE(log.violations.empty());
  ASSERT_TRUE(cache.Get("a").has_value());
  EXPECT_EQ(cache.Get("a")->metadata.labels.at("x"), "y");
}

TEST_F(CacheTest, MalformedObjectsAreSkippedAndTheLastGoodCopyKept) {
  cache.Replace({NsObj("a", 1), NsObj("b", 2)});
  log.Take();
  Json bad_a = NsObj("a", 3);
  bad_a["metadata"]["labels"] = {{"k", 7}};  // label value not a string
  cache.Apply({WatchEventType::kModified, bad_a});
  EXPECT_TRUE(log.Take().empty());
  EXPECT_EQ(cache.Get("a")->metadata.resource_version, "1");
  // A relist with the malformed version keeps the good copy too; b is gone.
  cache.Replace({bad_a, Json::parse(R"({"metadata": 5})")});
  EXPECT_EQ(log.Take(), std::vector<std::string>{"delete b"});
  EXPECT_TRUE(cache.Get("a").has_value());
  // A malformed deletion still deletes (only the key is needed).
  cache.Apply({WatchEventType::kDeleted, bad_a});
  EXPECT_EQ(log.Take(), std::vector<std::string>{"delete a"});
  EXPECT_EQ(cache.malformed(), 4);
  EXPECT_TRUE(log.violations.empty());
}

// A cache of ObjectOrError keeps what its plain counterpart would drop: an
// update that no longer parses replaces the good copy (policy must see that
// the object as stored is unreadable, not enforce its previous version).
TEST(CacheOfObjectOrError, AnUnreadableVersionReplacesTheGoodOne) {
  NullListerWatcher lw;
  std::vector<std::string> calls;
  CacheHandlers<ObjectOrError<NetworkPolicy>> h;
  h.on_add = [&](const auto& o) { calls.push_back("add " + o.metadata.name); };
  h.on_update = [&](const auto&, const auto& n) {
    calls.push_back("update " + n.metadata.name + (n.object ? " ok" : " unreadable"));
  };
  Cache<ObjectOrError<NetworkPolicy>> cache{lw, {}, h};
  Json good = {{"metadata", {{"name", "p"}, {"namespace", "x"}, {"resourceVersion", "1"}}},
               {"spec", {{"podSelector", Json::object()}}}};
  cache.Replace({good});
  Json bad = good;
  bad["metadata"]["resourceVersion"] = "2";
  bad["spec"]["ingress"] = {{{"ports", {{{"port", 1.5}}}}}};
  cache.Apply({WatchEventType::kModified, bad});
  EXPECT_EQ(calls, (std::vector<std::string>{"add p", "update p unreadable"}));
  auto held = cache.Get("x/p");
  ASSERT_TRUE(held.has_value());
  EXPECT_FALSE(held->object.has_value());
  ASSERT_TRUE(held->error.has_value());
  EXPECT_NE(held->error->ToString().find("spec.ingress[0].ports[0]"), std::string::npos) << held->error->ToString();
  EXPECT_EQ(cache.malformed(), 0);
}

// Scripted server: each List returns the next scripted list; each Watch
// plays the next script and then returns its status, or blocks until
// cancelled when the scripts run out.
class ScriptedListerWatcher : public ListerWatcher {
 public:
  struct WatchScript {
    std::vector<WatchEvent> events;
    Status end;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Result<Json>> lists;
  std::deque<WatchScript> watches;
  std::vector<std::string> watch_rvs;

  Result<Json> List(const ListOptions&) override {
    std::lock_guard l(mu);
    if (lists.empty()) return MakeError(ErrorCode::kUnavailable, "no list scripted");
    auto r = std::move(lists.front());
    lists.pop_front();
    return r;
  }
  Status Watch(const ListOptions& opts, const std::function<bool(WatchEvent)>& on_event,
               const std::atomic<bool>* cancel) override {
    WatchScript s;
    {
      std::unique_lock l(mu);
      watch_rvs.push_back(opts.resource_version);
      cv.notify_all();
      if (watches.empty()) {
        while (!cancel->load()) cv.wait_for(l, std::chrono::milliseconds(5));
        return Ok();
      }
      s = std::move(watches.front());
      watches.pop_front();
    }
    for (auto& ev : s.events) {
      if (!on_event(std::move(ev))) return Ok();
    }
    return s.end;
  }
  bool WaitForWatches(size_t n, std::chrono::seconds timeout) {
    std::unique_lock l(mu);
    return cv.wait_for(l, timeout, [&] { return watch_rvs.size() >= n; });
  }
};

Json ListOf(std::vector<Json> items, int rv) {
  return {{"kind", "NamespaceList"}, {"metadata", {{"resourceVersion", std::to_string(rv)}}}, {"items", items}};
}

Json Bookmark(int rv) { return {{"kind", "Namespace"}, {"metadata", {{"resourceVersion", std::to_string(rv)}}}}; }

TEST(Reflector, RewatchesFromTheCursorAndRelistsOnGone) {
  ScriptedListerWatcher lw;
  lw.lists = {ListOf({NsObj("a", 1), NsObj("b", 2)}, 10),
              ListOf({NsObj("a", 1), NsObj("c", 30)}, 31)};
  lw.watches = {
      // A stream the server ends: resume from the last event's version.
      {{{WatchEventType::kAdded, NsObj("x", 11)}, {WatchEventType::kBookmark, Bookmark(15)}}, Ok()},
      // A broken connection: back off, resume from the bookmark.
      {{{WatchEventType::kModified, NsObj("x", 16)}}, MakeError(ErrorCode::kUnavailable, "reset")},
      // The server says our version is compacted away: relist.
      {{{WatchEventType::kError, Json{{"kind", "Status"}, {"code", 410}}}}, Ok()},
  };
  EventLog log;
  ReflectorOptions opts;
  opts.backoff_initial = std::chrono::milliseconds(1);
  Cache<Namespace> cache(lw, opts, log.Handlers());
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(lw.WaitForWatches(4, std::chrono::seconds(10)));
  cache.Stop();
  {
    std::lock_guard l(lw.mu);
    EXPECT_EQ(lw.watch_rvs, (std::vector<std::string>{"10", "15", "16", "31"}));
  }
  EXPECT_EQ(log.Take(), (std::vector<std::string>{"add a@1", "add b@2", "add x@11", "update x@11->16",
                                                  "add c@30", "delete b", "delete x"}));
  EXPECT_TRUE(log.violations.empty());
  EXPECT_EQ(cache.reflector().lists(), 2);
}

TEST(Reflector, RetriesAFailedListWithBackoff) {
  ScriptedListerWatcher lw;
  lw.lists = {MakeError(ErrorCode::kUnavailable, "down"), MakeError(ErrorCode::kUnavailable, "down"),
              ListOf({NsObj("a", 1)}, 5)};
  ReflectorOptions opts;
  opts.backoff_initial = std::chrono::milliseconds(1);
  EventLog log;
  Cache<Namespace> cache(lw, opts, log.Handlers());
  cache.Start();
  ASSERT_TRUE(cache.WaitForSync(std::chrono::seconds(10)));
  ASSERT_TRUE(lw.WaitForWatches(1, std::chrono::seconds(10)));
  cache.Stop();
  EXPECT_EQ(log.Take(), std::vector<std::string>{"add a@1"});
  EXPECT_EQ(lw.watch_rvs.at(0), "5");
}

}  // namespace
}  // namespace terway::k8s
