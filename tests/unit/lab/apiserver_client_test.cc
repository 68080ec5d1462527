// The real REST client and caches against the lab's API stand-in, in one
// process on 127.0.0.1 (ephemeral ports).
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/cache.h"
#include "k8s/client.h"
#include "tools/lab/apiserver/server.h"

namespace terway::lab {
namespace {

using k8s::Json;
using k8s::RestClient;
namespace res = k8s::resources;
using namespace std::chrono_literals;

// Polls cond until it holds or the deadline passes.
template <typename F>
bool Eventually(F cond, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

ApiServerOptions FastOptions(int port = 0) {
  ApiServerOptions o;
  o.port = port;
  o.bookmark_interval = 50ms;
  o.threads = 16;
  return o;
}

std::unique_ptr<RestClient> ClientFor(const ApiServer& s) {
  k8s::RestConfig cfg;
  cfg.server = s.url();
  cfg.qps = 0;  // unlimited: the tests count events, not time
  return RestClient::FromConfig(cfg);
}

Json PodJson(const std::string& name, const std::string& node = "", k8s::Labels labels = {{"app", "web"}}) {
  Json p = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", name}, {"labels", labels}}},
            {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  return p;
}

class ApiServerClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server = std::make_unique<ApiServer>(NewDefaultStore(), FastOptions());
    ASSERT_TRUE(server->Start().ok());
    client = ClientFor(*server);
  }
  void TearDown() override {
    client.reset();
    if (server) server->Stop();
  }
  std::unique_ptr<ApiServer> server;
  std::unique_ptr<RestClient> client;
};

TEST_F(ApiServerClientTest, DiscoveryAndVersion) {
  auto v = client->GetPath("/version");
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  EXPECT_EQ((*v)["major"], "1");
  auto core = client->GetPath("/api/v1");
  ASSERT_TRUE(core.ok());
  std::set<std::string> names;
  for (const auto& r : (*core)["resources"]) names.insert(r["name"].get<std::string>());
  for (const char* want : {"pods", "pods/status", "namespaces", "nodes", "nodes/status", "configmaps", "events",
                           "serviceaccounts", "services", "services/status"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  auto groups = client->GetPath("/apis");
  ASSERT_TRUE(groups.ok());
  std::set<std::string> group_names;
  for (const auto& g : (*groups)["groups"]) group_names.insert(g["name"].get<std::string>());
  EXPECT_EQ(group_names, (std::set<std::string>{"discovery.k8s.io", "networking.k8s.io", "projectcalico.org"}));
  auto np = client->GetPath("/apis/networking.k8s.io/v1");
  ASSERT_TRUE(np.ok());
  EXPECT_EQ((*np)["resources"][0]["kind"], "NetworkPolicy");
}

TEST_F(ApiServerClientTest, CrudWithKubernetesErrors) {
  auto created = client->Create(res::kPods, "default", PodJson("a"));
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  auto dup = client->Create(res::kPods, "default", PodJson("a"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(dup.error().http_status, 409);

  auto got = client->Get(res::kPods, "default", "a");
  ASSERT_TRUE(got.ok());
  auto pod = k8s::ParsePod(*got);
  ASSERT_TRUE(pod.ok());
  EXPECT_EQ(pod->metadata.uid, (*created)["metadata"]["uid"]);

  // Update with the current version works, with the old one conflicts.
  Json next = *got;
  next["metadata"]["annotations"]["k8s.aliyun.com/pod-ips"] = "198.18.0.7";
  ASSERT_TRUE(client->Update(res::kPods, "default", next).ok());
  auto conflict = client->Update(res::kPods, "default", next);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);

  // Patches of the three kinds.
  ASSERT_TRUE(client->Patch(res::kPods, "default", "a", k8s::PatchType::kMerge,
                            Json{{"metadata", {{"labels", {{"tier", "fe"}, {"app", nullptr}}}}}}).ok());
  ASSERT_TRUE(client->Patch(res::kPods, "default", "a", k8s::PatchType::kJsonPatch,
                            Json::parse(R"([{"op": "add", "path": "/metadata/annotations/x", "value": "1"}])")).ok());
  ASSERT_TRUE(client->Patch(res::kPods, "default", "a", k8s::PatchType::kStrategicMerge,
                            Json::parse(R"({"spec": {"containers": [{"name": "c", "image": "nginx"}]}})")).ok());
  auto status = client->Patch(res::kPods, "default", "a", k8s::PatchType::kMerge,
                              Json{{"status", {{"podIP", "198.18.0.7"}, {"phase", "Running"}}}}, "status");
  ASSERT_TRUE(status.ok()) << status.error().ToString();
  auto after = k8s::ParsePod(*client->Get(res::kPods, "default", "a"));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->metadata.labels, (k8s::Labels{{"tier", "fe"}}));
  EXPECT_EQ(after->metadata.annotations.at("x"), "1");
  EXPECT_EQ(after->pod_ip, "198.18.0.7");
  ASSERT_EQ(after->containers.size(), 1u);
  EXPECT_EQ((*client->Get(res::kPods, "default", "a"))["spec"]["containers"][0]["image"], "nginx");

  ASSERT_TRUE(client->Delete(res::kPods, "default", "a").ok());
  auto gone = client->Get(res::kPods, "default", "a");
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(client->Delete(res::kPods, "default", "a").error().code, ErrorCode::kNotFound);

  // Cluster-scoped kinds, events and network policies.
  ASSERT_TRUE(client->Create(res::kNodes, "", Json{{"metadata", {{"name", "node-1"}}}}).ok());
  k8s::Event ev;
  ev.metadata.name = "a.1";
  ev.metadata.namespace_ = "default";
  ev.involved_object = {"Pod", "default", "a", "", "v1"};
  ev.reason = "AllocIPFailed";
  ASSERT_TRUE(client->Create(res::kEvents, "default", k8s::EventToJson(ev)).ok());
  auto np = client->Create(res::kNetworkPolicies, "default", Json::parse(R"({"metadata": {"name": "np"},
      "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}})"));
  ASSERT_TRUE(np.ok()) << np.error().ToString();
  EXPECT_EQ((*np)["apiVersion"], "networking.k8s.io/v1");
  EXPECT_TRUE(k8s::ParseNetworkPolicy(*np).ok());
}

TEST_F(ApiServerClientTest, ListSelectors) {
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("a", "node-1", {{"app", "web"}})).ok());
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("b", "node-2", {{"app", "db"}})).ok());
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("c", "", {{"app", "web"}, {"tier", "fe"}})).ok());
  auto names = [&](k8s::ListOptions o) {
    std::vector<std::string> out;
    auto l = client->List(res::kPods, "", o);
    EXPECT_TRUE(l.ok()) << l.error().ToString();
    if (l.ok()) {
      for (const auto& i : (*l)["items"]) out.push_back(i["metadata"]["name"]);
    }
    return out;
  };
  EXPECT_EQ(names({"app=web", "", "", 0, false, 0}), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(names({"app in (db,cache)", "", "", 0, false, 0}), std::vector<std::string>{"b"});
  EXPECT_EQ(names({"!tier", "", "", 0, false, 0}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(names({"", "spec.nodeName=node-1", "", 0, false, 0}), std::vector<std::string>{"a"});
  EXPECT_EQ(names({"app=web", "spec.nodeName!=node-1", "", 0, false, 0}), std::vector<std::string>{"c"});
  EXPECT_EQ(names({"", "metadata.name=b", "", 0, false, 0}), std::vector<std::string>{"b"});
  auto bad = client->List(res::kPods, "", {"a in (", "", "", 0, false, 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().http_status, 400);
  auto bad_field = client->List(res::kPods, "", {"", "spec.image=x", "", 0, false, 0});
  ASSERT_FALSE(bad_field.ok());
  EXPECT_EQ(bad_field.error().http_status, 400);
}

// Runs a watch on a thread and collects its events.
class WatchRecorder {
 public:
  WatchRecorder(RestClient& c, const k8s::ResourceRef& r, std::string ns, k8s::ListOptions o) {
    thread_ = std::thread([this, &c, r, ns, o] {
      result_ = c.Watch(r, ns, o, [this](k8s::WatchEvent ev) {
        std::lock_guard l(mu_);
        events_.push_back(std::move(ev));
        return true;
      }, &cancel_);
      done_ = true;
    });
  }
  ~WatchRecorder() {
    cancel_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> Summary(bool with_bookmarks = false) {
    std::lock_guard l(mu_);
    std::vector<std::string> out;
    for (const auto& e : events_) {
      if (e.type == k8s::WatchEventType::kBookmark && !with_bookmarks) continue;
      out.push_back(std::string(k8s::WatchEventTypeName(e.type)) + " " +
                    e.object["metadata"].value("name", e.object.value("reason", "")));
    }
    return out;
  }
  bool done() const { return done_; }
  const Status& result() const { return result_; }

 private:
  std::mutex mu_;
  std::vector<k8s::WatchEvent> events_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> done_{false};
  Status result_;
  std::thread thread_;
};

TEST_F(ApiServerClientTest, WatchOnAFieldSelectorSeesPodsEnterAndLeave) {
  auto list = client->List(res::kPods, "", {});
  ASSERT_TRUE(list.ok());
  k8s::ListOptions o;
  o.field_selector = "spec.nodeName=node-1";
  o.resource_version = (*list)["metadata"]["resourceVersion"];
  WatchRecorder w(*client, res::kPods, "", o);
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("p")).ok());  // unscheduled: not ours
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("other", "node-2")).ok());
  // Bound to our node: enters the selection as ADDED.
  ASSERT_TRUE(client->Patch(res::kPods, "default", "p", k8s::PatchType::kMerge,
                            Json{{"spec", {{"nodeName", "node-1"}}}}).ok());
  ASSERT_TRUE(client->Patch(res::kPods, "default", "p", k8s::PatchType::kMerge,
                            Json{{"metadata", {{"labels", {{"x", "1"}}}}}}).ok());
  ASSERT_TRUE(client->Delete(res::kPods, "default", "p").ok());
  std::vector<std::string> want = {"ADDED p", "MODIFIED p", "DELETED p"};
  EXPECT_TRUE(Eventually([&] { return w.Summary() == want; })) << ::testing::PrintToString(w.Summary());
}

TEST_F(ApiServerClientTest, WatchSendsBookmarksAndHonoursTimeout) {
  k8s::ListOptions o;
  o.resource_version = std::to_string(server->store().CurrentRv());
  o.allow_watch_bookmarks = true;
  o.timeout_seconds = 1;
  WatchRecorder w(*client, res::kNamespaces, "", o);
  EXPECT_TRUE(Eventually([&] { return !w.Summary(true).empty(); })) << "no bookmark";
  EXPECT_EQ(w.Summary(true).at(0), "BOOKMARK ");
  EXPECT_TRUE(Eventually([&] { return w.done(); }, 5s)) << "timeoutSeconds not honoured";
  EXPECT_TRUE(w.result().ok());
}

TEST_F(ApiServerClientTest, WatchFromACompactedVersionGetsExpired) {
  uint64_t old_rv = server->store().CurrentRv();
  ASSERT_TRUE(client->Create(res::kConfigMaps, "default", Json{{"metadata", {{"name", "c"}}}}).ok());
  server->CompactHistory();
  k8s::ListOptions o;
  o.resource_version = std::to_string(old_rv);
  std::vector<k8s::WatchEvent> got;
  auto st = client->Watch(res::kConfigMaps, "", o, [&](k8s::WatchEvent ev) {
    got.push_back(std::move(ev));
    return true;
  }, nullptr);
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].type, k8s::WatchEventType::kError);
  EXPECT_EQ(got[0].object["code"], 410);
  EXPECT_EQ(got[0].object["reason"], "Expired");
}

TEST_F(ApiServerClientTest, WatchWithoutVersionStartsWithTheCurrentState) {
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("a")).ok());
  WatchRecorder w(*client, res::kPods, "default", {});
  ASSERT_TRUE(Eventually([&] { return w.Summary().size() == 1; }));
  ASSERT_TRUE(client->Create(res::kPods, "default", PodJson("b")).ok());
  std::vector<std::string> want = {"ADDED a", "ADDED b"};
  EXPECT_TRUE(Eventually([&] { return w.Summary() == want; })) << ::testing::PrintToString(w.Summary());
}

// --- cache resilience: no missed or duplicated events ---

// Applies handler calls to a model; anything inconsistent is a violation.
struct PodModel {
  std::mutex mu;
  std::map<std::string, std::string> objects;  // key -> resourceVersion
  std::vector<std::string> violations;
  int adds = 0, updates = 0, deletes = 0;

  k8s::CacheHandlers<k8s::Pod> Handlers() {
    return {[this](const k8s::Pod& p) {
              std::lock_guard l(mu);
              adds++;
              if (!objects.emplace(p.metadata.Key(), p.metadata.resource_version).second) {
                violations.push_back("duplicate add " + p.metadata.Key());
              }
            },
            [this](const k8s::Pod& o, const k8s::Pod& n) {
              std::lock_guard l(mu);
              updates++;
              auto it = objects.find(n.metadata.Key());
              if (it == objects.end()) {
                violations.push_back("update of unknown " + n.metadata.Key());
                return;
              }
              if (it->second != o.metadata.resource_version) violations.push_back("stale old " + n.metadata.Key());
              if (it->second == n.metadata.resource_version)
                violations.push_back("duplicate update " + n.metadata.Key());
              it->second = n.metadata.resource_version;
            },
            [this](const k8s::Pod& p) {
              std::lock_guard l(mu);
              deletes++;
              if (!objects.erase(p.metadata.Key())) violations.push_back("delete of unknown " + p.metadata.Key());
            }};
  }
  std::map<std::string, std::string> Snapshot() {
    std::lock_guard l(mu);
    return objects;
  }
};

std::map<std::string, std::string> ServerPods(ObjectStore& store) {
  std::map<std::string, std::string> out;
  for (const auto& p : store.List(*store.Find("", "v1", "pods"), "").items) {
    out[p["metadata"]["namespace"].get<std::string>() + "/" + p["metadata"]["name"].get<std::string>()] =
        p["metadata"]["resourceVersion"];
  }
  return out;
}

class CacheResilienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = NewDefaultStore();
    server = std::make_unique<ApiServer>(store, FastOptions());
    ASSERT_TRUE(server->Start().ok());
    port = server->port();
    k8s::RestConfig cfg;
    cfg.server = server->url();
    cfg.qps = 0;
    client = RestClient::FromConfig(cfg);
    lw = std::make_unique<k8s::RestListerWatcher>(*client, res::kPods);
    k8s::ReflectorOptions ro;
    ro.backoff_initial = 10ms;
    ro.backoff_max = 200ms;
    cache = std::make_unique<k8s::Cache<k8s::Pod>>(*lw, ro, model.Handlers());
    cache->Start();
    ASSERT_TRUE(cache->WaitForSync(10s));
  }
  void TearDown() override {
    if (cache) cache->Stop();
    if (server) server->Stop();
  }
  // The cache and the handler-built model both equal the server's pods.
  void ExpectConverged(const char* phase) {
    bool ok = Eventually([&] {
      auto want = ServerPods(*store);
      if (model.Snapshot() != want) return false;
      std::map<std::string, std::string> cached;
      for (const auto& p : cache->List()) cached[p.metadata.Key()] = p.metadata.resource_version;
      return cached == want;
    });
    EXPECT_TRUE(ok) << phase << ": server " << ::testing::PrintToString(ServerPods(*store)) << " model "
                    << ::testing::PrintToString(model.Snapshot());
    std::lock_guard l(model.mu);
    EXPECT_TRUE(model.violations.empty()) << phase << ": " << ::testing::PrintToString(model.violations);
  }
  void Mutate(ObjectStore& s, int round) {
    const ResourceType& pods = *s.Find("", "v1", "pods");
    for (int i = 0; i < 4; i++) {
      ASSERT_TRUE(s.Create(pods, "default", PodJson("r" + std::to_string(round) + "-" + std::to_string(i))).ok());
    }
    ASSERT_TRUE(s.Mutate(pods, "default", "r" + std::to_string(round) + "-0", [](Json& o) -> Status {
      o["metadata"]["labels"]["touched"] = "yes";
      return Ok();
    }, false).ok());
    ASSERT_TRUE(s.Delete(pods, "default", "r" + std::to_string(round) + "-1").ok());
  }

  PodModel model;
  std::shared_ptr<ObjectStore> store;
  std::unique_ptr<ApiServer> server;
  int port = 0;
  std::unique_ptr<RestClient> client;
  std::unique_ptr<k8s::RestListerWatcher> lw;
  std::unique_ptr<k8s::Cache<k8s::Pod>> cache;
};

TEST_F(CacheResilienceTest, ServerClosingStreamsLosesNothing) {
  for (int round = 0; round < 5; round++) {
    // Close only once the client's next watch is open, so every round
    // really cuts a live stream.
    ASSERT_TRUE(Eventually([&] { return server->watches_served() >= round + 1; }));
    Mutate(*store, round);
    server->CloseAllWatches();
  }
  ExpectConverged("after closed streams");
  EXPECT_EQ(cache->reflector().lists(), 1) << "closing streams should resume, not relist";
  EXPECT_GE(cache->reflector().watches(), 5);
}

TEST_F(CacheResilienceTest, GoneForcesARelistThatIsDiffed) {
  Mutate(*store, 0);
  ExpectConverged("before");
  // Changes the client can only learn by relisting: the watch delivers
  // nothing while held, then the history is compacted away.
  server->HoldWatches(true);
  Mutate(*store, 1);
  const ResourceType& pods = *store->Find("", "v1", "pods");
  ASSERT_TRUE(store->Delete(pods, "default", "r0-2").ok());
  ASSERT_TRUE(store->Mutate(pods, "default", "r0-3", [](Json& o) -> Status {
    o["metadata"]["labels"]["v"] = "2";
    return Ok();
  }, false).ok());
  server->CompactHistory();
  server->HoldWatches(false);
  ExpectConverged("after 410");
  EXPECT_GE(cache->reflector().lists(), 2);
}

TEST_F(CacheResilienceTest, RestartWithPreservedState) {
  Mutate(*store, 0);
  ExpectConverged("before restart");
  server->Stop();
  Mutate(*store, 1);  // changes while the server is down
  server = std::make_unique<ApiServer>(store, FastOptions(port));
  ASSERT_TRUE(server->Start().ok());
  Mutate(*store, 2);
  ExpectConverged("after restart");
}

TEST_F(CacheResilienceTest, RestartWithResetState) {
  Mutate(*store, 0);
  ExpectConverged("before restart");
  server->Stop();
  // A new, unrelated store: one pod with an old name, others new.
  store = NewDefaultStore();
  const ResourceType& pods = *store->Find("", "v1", "pods");
  ASSERT_TRUE(store->Create(pods, "default", PodJson("r0-0", "", {{"reborn", "1"}})).ok());
  ASSERT_TRUE(store->Create(pods, "default", PodJson("fresh")).ok());
  server = std::make_unique<ApiServer>(store, FastOptions(port));
  ASSERT_TRUE(server->Start().ok());
  ExpectConverged("after reset");
  auto reborn = cache->Get("default/r0-0");
  ASSERT_TRUE(reborn.has_value());
  EXPECT_EQ(reborn->metadata.labels.count("reborn"), 1u);
}

}  // namespace
}  // namespace terway::lab
