#include "tools/lab/apiserver/store.h"

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (auto& t : BuiltinResourceTypes()) store.Register(t);
    pods = store.Find("", "v1", "pods");
    nodes = store.Find("", "v1", "nodes");
    ASSERT_NE(pods, nullptr);
    ASSERT_NE(nodes, nullptr);
  }
  static Json Pod(const std::string& name, const std::string& node = "") {
    Json p = {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}}, {"spec", {{"containers", Json::array()}}}};
    if (!node.empty()) p["spec"]["nodeName"] = node;
    return p;
  }
  static uint64_t Rv(const Json& o) { return std::stoull(o["metadata"]["resourceVersion"].get<std::string>()); }

  FakeClock clock;
  ObjectStore store{100, clock};
  const ResourceType* pods = nullptr;
  const ResourceType* nodes = nullptr;
};

TEST_F(StoreTest, CreateSetsServerFieldsAndVersionsIncrease) {
  auto a = store.Create(*pods, "default", Pod("a"));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  auto b = store.Create(*pods, "default", Pod("b"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*a)["kind"], "Pod");
  EXPECT_EQ((*a)["apiVersion"], "v1");
  EXPECT_EQ((*a)["metadata"]["namespace"], "default");
  EXPECT_EQ((*a)["metadata"]["generation"], 1);
  EXPECT_FALSE((*a)["metadata"]["uid"].get<std::string>().empty());
  EXPECT_NE((*a)["metadata"]["uid"], (*b)["metadata"]["uid"]);
  EXPECT_EQ((*a)["metadata"]["creationTimestamp"], FormatIso8601(clock.Now()));
  EXPECT_LT(Rv(*a), Rv(*b));
  EXPECT_EQ(store.CurrentRv(), Rv(*b));
}

TEST_F(StoreTest, ErrorsLookLikeKubernetes) {
  ASSERT_TRUE(store.Create(*pods, "default", Pod("a")).ok());
  auto dup = store.Create(*pods, "default", Pod("a"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(HttpStatusOf(dup.error()), (std::pair<int, std::string>{409, "AlreadyExists"}));
  auto missing = store.Get(*pods, "default", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(HttpStatusOf(missing.error()), (std::pair<int, std::string>{404, "NotFound"}));
  EXPECT_EQ(missing.error().message, "pods \"nope\" not found");
  auto no_ns = store.Create(*pods, "ghost", Pod("a"));
  ASSERT_FALSE(no_ns.ok());
  EXPECT_EQ(no_ns.error().message, "namespaces \"ghost\" not found");
  EXPECT_FALSE(store.Create(*pods, "default", Pod("Bad_Name")).ok());
  Json s = StatusFor(404, "NotFound", "pods \"nope\" not found", "pods", "nope");
  EXPECT_EQ(s["kind"], "Status");
  EXPECT_EQ(s["status"], "Failure");
  EXPECT_EQ(s["code"], 404);
  EXPECT_EQ(s["details"]["name"], "nope");
}

TEST_F(StoreTest, InvalidErrorsCarryTheFieldCauseKubectlPrints) {
  Error e = MakeError(ErrorCode::kInvalidArgument,
                      "Tier.projectcalico.org \"t\" is invalid: spec.order: Invalid value: \"x\": must be a number");
  Json s = StatusForError(e, "tiers");
  EXPECT_EQ(s["code"], 422);
  EXPECT_EQ(s["reason"], "Invalid");
  EXPECT_EQ(s["message"], e.message);
  EXPECT_EQ(s["details"], Json::parse(R"j({"name":"t","kind":"Tier","group":"projectcalico.org",
      "causes":[{"reason":"FieldValueInvalid","field":"spec.order",
                 "message":"Invalid value: \"x\": must be a number"}]})j"));
  Error core = MakeError(ErrorCode::kInvalidArgument, "Service \"a\" is invalid: spec.ports: Required value");
  EXPECT_EQ(StatusForError(core)["details"]["causes"][0]["field"], "spec.ports");
  EXPECT_FALSE(StatusForError(core)["details"].contains("group"));
  // Other errors keep the plain details.
  Error gone = MakeError(ErrorCode::kNotFound, "pods \"x\" not found");
  EXPECT_EQ(StatusForError(gone, "pods", "x")["details"], (Json{{"name", "x"}, {"kind", "pods"}}));
}

TEST_F(StoreTest, OptimisticConcurrencyOnUpdate) {
  auto a = store.Create(*pods, "default", Pod("a"));
  ASSERT_TRUE(a.ok());
  Json v1 = *a;
  v1["metadata"]["labels"]["v"] = "1";
  auto updated = store.Update(*pods, "default", "a", v1, false);
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  EXPECT_GT(Rv(*updated), Rv(*a));
  // Writing again with the old version loses.
  Json stale = *a;
  stale["metadata"]["labels"]["v"] = "2";
  auto conflict = store.Update(*pods, "default", "a", stale, false);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(HttpStatusOf(conflict.error()).first, 409);
  EXPECT_EQ(HttpStatusOf(conflict.error()).second, "Conflict");
  // Without a version the write is unconditional.
  stale["metadata"].erase("resourceVersion");
  EXPECT_TRUE(store.Update(*pods, "default", "a", stale, false).ok());
}

TEST_F(StoreTest, GenerationAndStatusSubresource) {
  auto a = store.Create(*pods, "default", Pod("a"));
  ASSERT_TRUE(a.ok());
  // Metadata-only change: no new generation.
  auto labelled = store.Mutate(*pods, "default", "a", [](Json& o) -> Status {
    o["metadata"]["labels"]["x"] = "y";
    return Ok();
  }, false);
  ASSERT_TRUE(labelled.ok());
  EXPECT_EQ((*labelled)["metadata"]["generation"], 1);
  // Spec change bumps it; a status in the main resource is ignored.
  auto bound = store.Mutate(*pods, "default", "a", [](Json& o) -> Status {
    o["spec"]["nodeName"] = "node-1";
    o["status"] = {{"phase", "Running"}};
    return Ok();
  }, false);
  ASSERT_TRUE(bound.ok());
  EXPECT_EQ((*bound)["metadata"]["generation"], 2);
  EXPECT_FALSE(bound->contains("status"));
  // The status subresource changes only the status.
  Json st = *bound;
  st["status"] = {{"phase", "Running"}, {"podIP", "198.18.0.5"}};
  st["spec"]["nodeName"] = "node-2";
  auto with_status = store.Update(*pods, "default", "a", st, true);
  ASSERT_TRUE(with_status.ok());
  EXPECT_EQ((*with_status)["status"]["podIP"], "198.18.0.5");
  EXPECT_EQ((*with_status)["spec"]["nodeName"], "node-1");
  // A no-op write makes no new version.
  auto again = store.Update(*pods, "default", "a", *with_status, true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Rv(*again), Rv(*with_status));
}

TEST_F(StoreTest, HistoryReplaysAndCompactsToGone) {
  uint64_t start = store.CurrentRv();
  ASSERT_TRUE(store.Create(*pods, "default", Pod("a")).ok());
  ASSERT_TRUE(store.Create(*nodes, "", Json{{"metadata", {{"name", "n1"}}}}).ok());
  ASSERT_TRUE(store.Delete(*pods, "default", "a").ok());
  uint64_t upto = 0;
  auto evs = store.EventsAfter(pods->Key(), start, &upto);
  ASSERT_TRUE(evs.ok());
  ASSERT_EQ(evs->size(), 2u);
  EXPECT_EQ((*evs)[0].type, "ADDED");
  EXPECT_EQ((*evs)[1].type, "DELETED");
  EXPECT_GT((*evs)[1].rv, (*evs)[0].rv);
  EXPECT_EQ(upto, store.CurrentRv());
  // Resuming from the middle gives only what came after.
  auto tail = store.EventsAfter(pods->Key(), (*evs)[0].rv, &upto);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 1u);

  store.Compact();
  auto gone = store.EventsAfter(pods->Key(), start, &upto);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().http_status, 410);
  EXPECT_TRUE(store.EventsAfter(pods->Key(), store.CurrentRv(), &upto).ok());
  // A version this store never reached (a client of a previous, reset store).
  EXPECT_FALSE(store.EventsAfter(pods->Key(), store.CurrentRv() + 10, &upto).ok());
}

TEST_F(StoreTest, BoundedHistoryDropsTheOldest) {
  uint64_t start = store.CurrentRv();
  for (int i = 0; i < 150; i++) {
    ASSERT_TRUE(store.Create(*pods, "default", Pod("p" + std::to_string(i))).ok());
  }
  uint64_t upto = 0;
  EXPECT_FALSE(store.EventsAfter(pods->Key(), start, &upto).ok());
  auto recent = store.EventsAfter(pods->Key(), store.CompactedRv(), &upto);
  ASSERT_TRUE(recent.ok());
  EXPECT_EQ(recent->size(), 100u);
}

TEST_F(StoreTest, ListFiltersByNamespace) {
  Json ns = {{"metadata", {{"name", "other"}}}};
  ASSERT_TRUE(store.Create(*store.Find("", "v1", "namespaces"), "", ns).ok());
  ASSERT_TRUE(store.Create(*pods, "default", Pod("a")).ok());
  ASSERT_TRUE(store.Create(*pods, "other", Pod("a")).ok());
  EXPECT_EQ(store.List(*pods, "").items.size(), 2u);
  EXPECT_EQ(store.List(*pods, "other").items.size(), 1u);
  EXPECT_EQ(store.List(*pods, "", [](const Json& o) { return o["metadata"]["namespace"] == "default"; }).items.size(),
            1u);
}

TEST_F(StoreTest, ANewKindIsOneRegistration) {
  store.Register({"projectcalico.org", "v3", "GlobalNetworkPolicy", "globalnetworkpolicies",
                  "globalnetworkpolicy", false, {"gnp"}, false});
  const ResourceType* gnp = store.Find("projectcalico.org", "v3", "globalnetworkpolicies");
  ASSERT_NE(gnp, nullptr);
  auto obj = store.Create(*gnp, "", Json{{"metadata", {{"name", "deny-all"}}}, {"spec", {{"order", 10}}}});
  ASSERT_TRUE(obj.ok()) << obj.error().ToString();
  EXPECT_EQ((*obj)["apiVersion"], "projectcalico.org/v3");
}

}  // namespace
}  // namespace terway::lab
