// Calico's defaulting and refusals on the lab's store (NewDefaultStore, as
// terway-lab and kubectl meet it): tiers, tiered policies, network sets.
#include "tools/lab/apiserver/calico.h"

#include <gtest/gtest.h>

#include "tools/lab/apiserver/server.h"

namespace terway::lab {
namespace {

class CalicoAdmissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = NewDefaultStore();
    for (const char* plural :
         {"tiers", "globalnetworkpolicies", "networkpolicies", "networksets", "globalnetworksets"}) {
      types[plural] = store->Find(kCalicoGroup, "v3", plural);
      ASSERT_NE(types[plural], nullptr) << plural;
    }
  }
  Result<Json> Create(const std::string& plural, Json obj, const std::string& ns = "") {
    return store->Create(*types[plural], ns, std::move(obj));
  }
  static Json Obj(const std::string& name, Json spec) {
    return {{"metadata", {{"name", name}}}, {"spec", std::move(spec)}};
  }
  static std::pair<int, std::string> Http(const Error& e) { return HttpStatusOf(e); }

  std::shared_ptr<ObjectStore> store;
  std::map<std::string, const ResourceType*> types;
};

TEST_F(CalicoAdmissionTest, DefaultTierExistsFromTheStart) {
  auto tier = store->Get(*types["tiers"], "", "default");
  ASSERT_TRUE(tier.ok()) << tier.error().ToString();
  EXPECT_EQ((*tier)["spec"]["order"], 1000000);
  EXPECT_EQ((*tier)["spec"]["defaultAction"], "Deny");
  EXPECT_EQ((*tier)["apiVersion"], "projectcalico.org/v3");
  EXPECT_FALSE((*tier)["metadata"]["uid"].get<std::string>().empty());
}

TEST_F(CalicoAdmissionTest, TierDefaultsAndRefusals) {
  auto t = Create("tiers", Obj("security", Json::object()));
  ASSERT_TRUE(t.ok()) << t.error().ToString();
  // Calico's DefaultTierFields: order 1,000,000 and Deny when absent.
  EXPECT_EQ((*t)["spec"]["order"], 1000000);
  EXPECT_EQ((*t)["spec"]["defaultAction"], "Deny");
  auto pass = Create("tiers", Obj("platform", {{"order", 100.5}, {"defaultAction", "Pass"}}));
  ASSERT_TRUE(pass.ok()) << pass.error().ToString();
  EXPECT_EQ((*pass)["spec"]["order"], 100.5);

  auto dotted = Create("tiers", Obj("a.b", Json::object()));
  ASSERT_FALSE(dotted.ok());
  EXPECT_EQ(Http(dotted.error()).first, 422);
  EXPECT_NE(dotted.error().message.find("metadata.name"), std::string::npos) << dotted.error().message;
  auto bad_action = Create("tiers", Obj("x", {{"defaultAction", "Drop"}}));
  ASSERT_FALSE(bad_action.ok());
  EXPECT_NE(bad_action.error().message.find("spec.defaultAction: Unsupported value: \"Drop\""), std::string::npos)
      << bad_action.error().message;
  // The default tier's order and action are fixed.
  Json moved = *store->Get(*types["tiers"], "", "default");
  moved["spec"]["order"] = 5;
  auto upd = store->Update(*types["tiers"], "", "default", moved, false);
  ASSERT_FALSE(upd.ok());
  EXPECT_NE(upd.error().message.find("Forbidden"), std::string::npos) << upd.error().message;
}

TEST_F(CalicoAdmissionTest, PoliciesDefaultToTheDefaultTierAndCarryItsLabel) {
  auto p = Create("globalnetworkpolicies", Obj("allow-dns", {{"selector", "all()"}}));
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  EXPECT_EQ((*p)["spec"]["tier"], "default");
  EXPECT_EQ((*p)["metadata"]["labels"]["projectcalico.org/tier"], "default");
  // No rules at all: Ingress (api/pkg/defaults).
  EXPECT_EQ((*p)["spec"]["types"], Json::array({"Ingress"}));
  auto egress = Create("networkpolicies", Obj("out", {{"egress", {{{"action", "Allow"}}}}}), "default");
  ASSERT_TRUE(egress.ok()) << egress.error().ToString();
  EXPECT_EQ((*egress)["spec"]["types"], Json::array({"Egress"}));
  auto both =
      Create("networkpolicies", Obj("both", {{"ingress", {{{"action", "Allow"}}}}, {"egress", {{{"action", "Deny"}}}}}),
             "default");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ((*both)["spec"]["types"], Json::array({"Ingress", "Egress"}));
  auto dup = Create("networkpolicies", Obj("dup", {{"types", {"Ingress", "Ingress"}}}), "default");
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("Duplicate value"), std::string::npos) << dup.error().message;
}

TEST_F(CalicoAdmissionTest, PolicyNamingAMissingTierIsRefused) {
  auto p = Create("globalnetworkpolicies", Obj("security.block", {{"tier", "security"}}));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(Http(p.error()).first, 422);
  EXPECT_EQ(p.error().message,
            "GlobalNetworkPolicy.projectcalico.org \"security.block\" is invalid: spec.tier: Not found: "
            "\"security\": the tier does not exist; create the Tier first (kubectl get tiers lists them)");
  EXPECT_FALSE(store->Get(*types["globalnetworkpolicies"], "", "security.block").ok());

  ASSERT_TRUE(Create("tiers", Obj("security", {{"order", 10}})).ok());
  auto ok = Create("globalnetworkpolicies", Obj("security.block", {{"tier", "security"}}));
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ((*ok)["metadata"]["labels"]["projectcalico.org/tier"], "security");
  // Moving it to a tier that does not exist is refused as well.
  Json moved = *ok;
  moved["spec"]["tier"] = "ghost";
  auto upd = store->Update(*types["globalnetworkpolicies"], "", "security.block", moved, false);
  ASSERT_FALSE(upd.ok());
  EXPECT_NE(upd.error().message.find("\"ghost\": the tier does not exist"), std::string::npos);
  // An unchanged tier is not looked up again (other fields may change).
  Json reordered = *ok;
  reordered["spec"]["order"] = 3;
  EXPECT_TRUE(store->Update(*types["globalnetworkpolicies"], "", "security.block", reordered, false).ok());
}

TEST_F(CalicoAdmissionTest, TierDeletion) {
  auto def = store->Delete(*types["tiers"], "", "default");
  ASSERT_FALSE(def.ok());
  EXPECT_EQ(Http(def.error()), (std::pair<int, std::string>{403, "Forbidden"}));
  EXPECT_NE(def.error().message.find("the built-in tier default cannot be deleted"), std::string::npos);
  EXPECT_TRUE(store->Get(*types["tiers"], "", "default").ok());

  ASSERT_TRUE(Create("tiers", Obj("security", Json::object())).ok());
  ASSERT_TRUE(Create("networkpolicies", Obj("p", {{"tier", "security"}}), "default").ok());
  auto busy = store->Delete(*types["tiers"], "", "security");
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(Http(busy.error()).first, 409);
  EXPECT_NE(busy.error().message.find("Cannot delete a non-empty tier (networkpolicies default/p is in it"),
            std::string::npos)
      << busy.error().message;
  ASSERT_TRUE(store->Delete(*types["networkpolicies"], "default", "p").ok());
  EXPECT_TRUE(store->Delete(*types["tiers"], "", "security").ok());
}

TEST_F(CalicoAdmissionTest, PolicyNames) {
  EXPECT_TRUE(Create("globalnetworkpolicies", Obj("one.two", Json::object())).ok());
  auto three = Create("globalnetworkpolicies", Obj("a.b.c", Json::object()));
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.error().message.find("metadata.name: Invalid value: \"a.b.c\""), std::string::npos)
      << three.error().message;
  auto long_label = Create("networkpolicies", Obj(std::string(64, 'a'), Json::object()), "default");
  EXPECT_FALSE(long_label.ok());
  EXPECT_TRUE(Create("networkpolicies", Obj("knp.default.from-k8s", Json::object()), "default").ok());
}

TEST_F(CalicoAdmissionTest, NetworkSetNets) {
  auto ok = Create("globalnetworksets",
                   Obj("mixed", {{"nets", {"198.51.100.0/24", "203.0.113.7", "2001:db8::/32", "2001:db8::1",
                                           "10.1.2.3/8"}}}));
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  // Stored as given: Calico does not rewrite nets.
  EXPECT_EQ((*ok)["spec"]["nets"][1], "203.0.113.7");

  auto bad = Create("networksets", Obj("bad", {{"nets", {"10.0.0.0/8", "10.0.0.0/33"}}}), "default");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(Http(bad.error()).first, 422);
  EXPECT_NE(bad.error().message.find("NetworkSet.projectcalico.org \"bad\" is invalid: spec.nets[1]: Invalid value: "
                                     "\"10.0.0.0/33\""),
            std::string::npos)
      << bad.error().message;
  auto word = Create("globalnetworksets", Obj("word", {{"nets", {"example.com"}}}));
  ASSERT_FALSE(word.ok());
  EXPECT_NE(word.error().message.find("not an IP address or CIDR"), std::string::npos) << word.error().message;
  auto not_list = Create("globalnetworksets", Obj("str", {{"nets", "10.0.0.0/8"}}));
  EXPECT_FALSE(not_list.ok());
  Json many = Json::array();
  for (int i = 0; i < 257; i++) many.push_back(fmt::format("10.{}.{}.0/24", i / 256, i % 256));
  auto too_many = Create("globalnetworksets", Obj("many", {{"nets", many}}));
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("at most 256"), std::string::npos);

  Json reserved = Obj("reserved", {{"nets", {"10.0.0.0/8"}}});
  reserved["metadata"]["labels"] = {{"projectcalico.org/namespace", "x"}};
  auto r = Create("networksets", reserved, "default");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("reserved"), std::string::npos);
  // Nothing of the refused writes was stored.
  EXPECT_EQ(store->List(*types["networksets"], "").items.size(), 0u);
  EXPECT_EQ(store->List(*types["globalnetworksets"], "").items.size(), 1u);
}

}  // namespace
}  // namespace terway::lab
