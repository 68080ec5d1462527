#include "daemon/pod_gc.h"

#include <filesystem>

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

store::AllocationRecord Alloc(const std::string& name, const std::string& origin, const std::string& netns = "",
                              const std::string& uid = "") {
  store::AllocationRecord a;
  a.container_id = "c-" + name;
  a.pod_namespace = "default";
  a.pod_name = name;
  a.pod_uid = uid.empty() ? "uid-" + name : uid;
  static int next = 10;
  a.ip = "198.18.0." + std::to_string(next++ % 250);
  a.origin = origin;
  a.netns = netns;
  return a;
}

TEST(PlanPodGc, TableOfWhatIsFreedAndWhatIsKept) {
  struct Case {
    std::string what;
    store::AllocationRecord alloc;
    std::optional<std::vector<ipam::LivePod>> live;
    std::set<std::string> gone_netns;
    bool freed;
  };
  const std::vector<ipam::LivePod> web_live = {{"default", "web", "uid-web"}};
  const std::vector<Case> cases = {
      {"API pod still there", Alloc("web", store::kOriginApi, "/run/netns/a"), web_live, {}, false},
      {"API pod gone", Alloc("db", store::kOriginApi, "/run/netns/b"), web_live, {}, true},
      {"API pod re-created with a new uid", Alloc("web", store::kOriginApi, "/run/netns/a", "uid-old"), web_live,
       {}, true},
      {"live uid unknown: name alone decides", Alloc("web", store::kOriginApi, "/run/netns/a", "uid-x"),
       std::vector<ipam::LivePod>{{"default", "web", ""}}, {}, false},
      {"runtime sandbox the API never had, namespace alive", Alloc("podman", store::kOriginRuntime, "/run/netns/p"),
       web_live, {}, false},
      {"runtime sandbox whose namespace is gone", Alloc("podman", store::kOriginRuntime, "/run/netns/p"), web_live,
       {"/run/netns/p"}, true},
      {"API pod whose sandbox namespace is gone", Alloc("web", store::kOriginApi, "/run/netns/a"), web_live,
       {"/run/netns/a"}, true},
      {"API unknown: only namespaces count", Alloc("db", store::kOriginApi, "/run/netns/b"), std::nullopt, {},
       false},
      {"API unknown, namespace gone", Alloc("db", store::kOriginApi, "/run/netns/b"), std::nullopt,
       {"/run/netns/b"}, true},
      {"adopted at start, pod gone", Alloc("old", store::kOriginRebuilt), web_live, {}, true},
      {"adopted at start, pod alive", Alloc("web", store::kOriginRebuilt), web_live, {}, false},
      {"recorded before origins, pod gone", Alloc("legacy", ""), web_live, {}, true},
  };
  for (const auto& c : cases) {
    auto d = PlanPodGc({c.alloc}, c.live, c.gone_netns);
    EXPECT_EQ(!d.empty(), c.freed) << c.what;
    if (!d.empty()) {
      EXPECT_FALSE(d[0].reason.empty()) << c.what;
    }
  }
}

TEST(PodGc, TearsDownThroughTheGivenTeardownAndCountsOnlySuccesses) {
  char tmpl[] = "/tmp/terway-podgc-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto st = store::StateStore::Open(dir + "/state.db");
  ASSERT_TRUE(st.ok());
  auto store = std::move(st).value();
  for (auto a : {Alloc("gone1", store::kOriginApi, "/n/1"), Alloc("gone2", store::kOriginApi, "/n/2"),
                 Alloc("kept", store::kOriginRuntime, "/n/3")}) {
    ASSERT_TRUE(store->Allocate(a).ok());
  }
  std::vector<std::string> torn;
  PodGcOptions o;
  o.live_pods = [](const std::vector<store::AllocationRecord>&) -> Result<std::vector<ipam::LivePod>> {
    return std::vector<ipam::LivePod>{};
  };
  o.netns_alive = [](const std::string&) { return true; };
  o.teardown = [&](const store::AllocationRecord& r) -> Status {
    torn.push_back(r.pod_name);
    if (r.pod_name == "gone2") return Error(ErrorCode::kKernel, "wiring could not be removed");
    return Ok();
  };
  PodGc gc(o, store.get());
  auto freed = gc.RunOnce();
  ASSERT_FALSE(freed.ok()) << "a failed teardown is reported";
  EXPECT_EQ(std::set<std::string>(torn.begin(), torn.end()), (std::set<std::string>{"gone1", "gone2"}));
  // An unreadable API: the runtime's sandbox with a live namespace is still kept.
  o.live_pods = [](const std::vector<store::AllocationRecord>&) -> Result<std::vector<ipam::LivePod>> {
    return Error(ErrorCode::kUnavailable, "cache not synced");
  };
  torn.clear();
  PodGc gc2(o, store.get());
  ASSERT_TRUE(gc2.RunOnce().ok());
  EXPECT_TRUE(torn.empty());
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace terway::daemon
