// terwayd's PolicyController end to end: an in-process lab API server, a
// scratch node namespace, and changes made the way users make them (API
// writes: pods relabelled, added, removed; namespaces relabelled; Kubernetes
// and Calico policies added, changed, removed) and the way CNI makes them
// (PodStarting, PodStopped). After each, the kernel's table must become what
// a full compile of the API's objects (the same conversions, the same
// ledger) installs into a reference namespace: the incremental path
// (per-object tracking, the incremental compiler, netlink deltas) is checked
// against the whole-table path, in the kernel. A pod start's chain must be
// in the kernel when PodStarting returns.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <mutex>
#include <set>
#include <thread>

#include "daemon/metrics.h"
#include "daemon/policy_controller.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "netlink/netns.h"
#include "policy/incremental.h"
#include "policy/nft_batch.h"
#include "policy/nft_render.h"
#include "test_util.h"
#include "tools/lab/apiserver/server.h"

namespace terway::daemon {
namespace {

using Json = nlohmann::json;
using k8s::resources::kCalicoGlobalNetworkPolicies;
using k8s::resources::kCalicoNetworkPolicies;
using k8s::resources::kNamespaces;
using k8s::resources::kNetworkPolicies;
using k8s::resources::kPods;
constexpr const char* kNode = "node-1";

// The table as nft lists it, comparable across histories: handles dropped,
// objects in name order (the kernel lists them in creation order, which
// differs between a whole table and one built change by change), rules in
// their order within each chain.
Json Listing(const std::string& netns) {
  std::string out;
  Status s = policy::RunNftBatch(netns, "list table inet terway", &out);
  if (!s.ok()) return Json();
  Json j = Json::parse(out, nullptr, false);
  if (!j.contains("nftables")) return Json();
  std::function<void(Json&)> strip = [&](Json& v) {
    if (v.is_object()) {
      v.erase("handle");
      for (auto& [k, x] : v.items()) strip(x);
    } else if (v.is_array()) {
      for (auto& x : v) strip(x);
    }
  };
  std::set<std::string> objects;
  std::map<std::string, std::vector<std::string>> rules;
  for (auto& o : j["nftables"]) {
    strip(o);
    if (o.contains("rule")) rules[o["rule"].value("chain", std::string())].push_back(o.dump());
    else if (!o.contains("metainfo")) objects.insert(o.dump());
  }
  return Json{{"objects", objects}, {"rules", rules}};
}

class PolicyControllerRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    const std::string s = terway::testing::UniqueSuffix();
    node_ = "twcn" + s;
    reference_ = "twcr" + s;
    for (const auto& n : {node_, reference_}) {
      ASSERT_TRUE(netlink::CreateNamedNetns(n).ok());
      created_.push_back(n);
    }
    ASSERT_TRUE(api_.Start().ok());
    k8s::RestConfig rc;
    rc.server = api_.url();
    rc.qps = 1e6;
    rc.burst = 1000000;
    client_ = k8s::RestClient::FromConfig(rc);
  }
  void TearDown() override {
    controller_.reset();
    api_.Stop();
    for (const auto& n : created_) (void)netlink::DeleteNamedNetns(n);
  }

  void Create(const k8s::ResourceRef& r, const Json& obj) {
    std::string ns = obj["metadata"].value("namespace", std::string());
    auto res = client_->Create(r, ns, obj);
    ASSERT_TRUE(res.ok()) << res.error().ToString();
  }
  void Patch(const k8s::ResourceRef& r, const std::string& ns, const std::string& name, const Json& patch) {
    auto res = client_->Patch(r, ns, name, k8s::PatchType::kMerge, patch);
    ASSERT_TRUE(res.ok()) << res.error().ToString();
  }
  static Json Pod(const std::string& ns, const std::string& name, const std::string& node, const std::string& ip,
                  Json labels) {
    Json p = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
              {"spec", {{"nodeName", node},
                        {"containers", {{{"name", "c"}, {"image", "busybox"},
                                         {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}},
              {"status", {{"phase", "Running"}}}};
    if (!ip.empty()) p["status"]["podIP"] = ip;
    return p;
  }

  // What a full compile of the API's objects installs, in the reference
  // namespace, as nft lists it.
  Json Expected() {
    PolicySources src;
    src.node_name = kNode;
    src.local_ips = ledger_;
    auto list = [&](const k8s::ResourceRef& r) {
      auto l = client_->List(r, "");
      EXPECT_TRUE(l.ok());
      return l.ok() ? (*l)["items"] : Json::array();
    };
    for (const auto& p : list(kPods)) src.pods.push_back(k8s::ParsePod(p).value());
    for (const auto& n : list(kNamespaces)) src.namespaces.push_back(k8s::ParseNamespace(n).value());
    for (const auto& n : list(kNetworkPolicies)) src.network_policies.push_back(k8s::ParseNetworkPolicy(n).value());
    for (const auto& c : list(kCalicoNetworkPolicies)) src.calico_policies.push_back(c);
    for (const auto& c : list(kCalicoGlobalNetworkPolicies)) src.calico_policies.push_back(c);
    BuiltInputs b = BuildPolicyInputs(src);
    policy::NftModel m =
        policy::CanonicalModelOf(policy::PolicyCompiler(policy::CompileOptions{kNode}).Compile(std::move(b.inputs)));
    EXPECT_TRUE(policy::RunNftBatch(reference_, "add table inet terway\ndelete table inet terway\n").ok());
    Status s = policy::RunNftBatch(reference_, policy::RenderNftScript(m));
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    return Listing(reference_);
  }

  // The controller's table becomes the expected one within a deadline.
  void Converges(const std::string& what) {
    Json want = Expected();
    Json got;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline;) {
      got = Listing(node_);
      if (got == want) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The objects that differ, each side.
    std::set<std::string> a, b;
    for (const auto& part : {"objects", "rules"}) {
      if (got.contains(part)) for (const auto& o : got[part].items()) a.insert(o.value().dump());
      if (want.contains(part)) for (const auto& o : want[part].items()) b.insert(o.value().dump());
    }
    std::string diff;
    for (const auto& o : a) if (!b.count(o)) diff += "  controller only: " + o.substr(0, 600) + "\n";
    for (const auto& o : b) if (!a.count(o)) diff += "  full compile only: " + o.substr(0, 600) + "\n";
    FAIL() << what << ": the controller's table did not become the full compile's\n" << diff.substr(0, 8000);
  }

  std::string node_, reference_;
  std::vector<std::string> created_;
  lab::ApiServer api_{lab::NewDefaultStore()};
  std::shared_ptr<k8s::RestClient> client_;
  std::map<std::string, Ipv4Addr> ledger_;
  Metrics metrics_;
  std::unique_ptr<PolicyController> controller_;
};

TEST_F(PolicyControllerRoot, EveryKindOfChangeEndsInTheTableAFullCompileMakes) {
  for (const char* ns : {"x", "y"}) {
    Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"},
                         {"metadata", {{"name", ns}, {"labels", {{"team", ns == std::string("x") ? "red" : "blue"}}}}}});
  }
  const char* ips[] = {"198.18.5.1", "198.18.5.2", "198.18.5.3", "198.18.5.4"};
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  Create(kPods, Pod("x", "db", kNode, "", {{"app", "db"}}));
  Create(kPods, Pod("y", "client", kNode, "", {{"app", "client"}}));
  Create(kPods, Pod("y", "remote", "node-2", ips[3], {{"app", "client"}}));
  ledger_ = {{"x/web", *Ipv4Addr::Parse(ips[0])}, {"x/db", *Ipv4Addr::Parse(ips[1])},
             {"y/client", *Ipv4Addr::Parse(ips[2])}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-from-clients","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"client"}},"namespaceSelector":{}}],
      "ports":[{"protocol":"TCP","port":"http"}]}]}})"));
  Create(kCalicoGlobalNetworkPolicies, Json::parse(R"js({"apiVersion":"projectcalico.org/v3",
      "kind":"GlobalNetworkPolicy","metadata":{"name":"deny-db-egress"},"spec":{"order":10,
      "selector":"app == 'db'","egress":[{"action":"Deny","destination":{"namespaceSelector":"team == 'blue'"}},
      {"action":"Allow"}]}})js"));

  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  controller_ = std::move(*c);
  Converges("start");

  Patch(kPods, "y", "remote", {{"metadata", {{"labels", {{"app", "other"}}}}}});
  Converges("a remote pod relabelled");
  Patch(kPods, "y", "client", {{"metadata", {{"labels", {{"app", "web"}}}}}});
  Converges("a local pod relabelled");
  Patch(kNamespaces, "", "y", {{"metadata", {{"labels", {{"team", "red"}}}}}});
  Converges("a namespace relabelled");
  Create(kCalicoNetworkPolicies, Json::parse(R"js({"apiVersion":"projectcalico.org/v3","kind":"NetworkPolicy",
      "metadata":{"name":"log-web","namespace":"y"},"spec":{"selector":"app == 'web'",
      "ingress":[{"action":"Log","source":{"selector":"all()"}},{"action":"Pass"}]}})js"));
  Converges("a Calico policy added");
  Patch(kNetworkPolicies, "x", "web-from-clients",
        Json::parse(R"({"spec":{"ingress":[{"from":[{"ipBlock":{"cidr":"198.18.5.0/30"}}]}]}})"));
  Converges("a Kubernetes policy changed");

  // CNI: a pod starts (the API has it, without an address yet).
  Create(kPods, Pod("x", "new", kNode, "", {{"app", "web"}}));  // web-from-clients selects it
  const Ipv4Addr fresh = *Ipv4Addr::Parse("198.18.5.9");
  ASSERT_TRUE(controller_->PodStarting("x", "new", fresh).ok());
  ledger_["x/new"] = fresh;
  std::string map;
  ASSERT_TRUE(policy::RunNftBatch(node_, "list map inet terway pod_ingress", &map).ok());
  EXPECT_NE(map.find("\"198.18.5.9\""), std::string::npos) << "the started pod's chain is not in the kernel yet:\n"
                                                          << map;
  Converges("a pod started");
  controller_->PodStopped("x", "new", fresh);
  ledger_.erase("x/new");
  ASSERT_TRUE(client_->Delete(kPods, "x", "new").ok());
  Converges("a pod stopped");

  ASSERT_TRUE(client_->Delete(kCalicoGlobalNetworkPolicies, "", "deny-db-egress").ok());
  Converges("a global policy removed");
  ASSERT_TRUE(client_->Delete(kPods, "x", "db").ok());
  ledger_.erase("x/db");
  controller_->PodStopped("x", "db", *Ipv4Addr::Parse(ips[1]));
  Converges("a pod deleted");
}

// The eBPF datapath's policed flag follows MayIsolate: a pod's isolation is
// announced before its chain reaches the kernel and withdrawn only after the
// chain left it, so the flag never lags behind the table.
TEST_F(PolicyControllerRoot, IsolationNewsBracketsTheKernelsChains) {
  Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}});
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  Create(kPods, Pod("x", "free", kNode, "", {{"app", "free"}}));
  const Ipv4Addr web = *Ipv4Addr::Parse("198.18.6.1"), free = *Ipv4Addr::Parse("198.18.6.2");
  ledger_ = {{"x/web", web}, {"x/free", free}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-isolated","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "policyTypes":["Ingress"]}})"));

  struct News {
    std::string what;
    std::string ip;
    bool in_kernel = false;  // the pod's address in pod_ingress when told
  };
  std::mutex mu;
  std::vector<News> news;
  auto in_kernel = [this](const Ipv4Addr& ip) {
    std::string map;
    if (!policy::RunNftBatch(node_, "list map inet terway pod_ingress", &map).ok()) return false;
    return map.find("\"" + ip.ToString() + "\"") != std::string::npos;
  };
  auto record = [&](const char* what) {
    return [&, what](const std::set<Ipv4Addr>& ips) {
      std::lock_guard l(mu);
      for (const auto& ip : ips) news.push_back({what, ip.ToString(), in_kernel(ip)});
    };
  };
  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  opts.isolating = record("isolating");
  opts.released = record("released");
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  controller_ = std::move(*c);
  {
    std::lock_guard l(mu);
    ASSERT_EQ(news.size(), 1u);
    EXPECT_EQ(news[0].what, "isolating");
    EXPECT_EQ(news[0].ip, web.ToString());
    EXPECT_FALSE(news[0].in_kernel) << "told before the chain is applied";
    news.clear();
  }
  EXPECT_TRUE(in_kernel(web));
  EXPECT_TRUE(controller_->MayIsolate(web));
  EXPECT_FALSE(controller_->MayIsolate(free));

  // A pod start: isolated (and said so) by the time PodStarting returns.
  Create(kPods, Pod("x", "web2", kNode, "", {{"app", "web"}}));
  const Ipv4Addr web2 = *Ipv4Addr::Parse("198.18.6.3");
  ASSERT_TRUE(controller_->PodStarting("x", "web2", web2).ok());
  EXPECT_TRUE(controller_->MayIsolate(web2));
  {
    std::lock_guard l(mu);
    ASSERT_EQ(news.size(), 1u);
    EXPECT_EQ(news[0].what, "isolating");
    EXPECT_EQ(news[0].ip, web2.ToString());
    EXPECT_FALSE(news[0].in_kernel);
    news.clear();
  }

  // The policy goes: released only once the kernel dropped the chains.
  ASSERT_TRUE(client_->Delete(kNetworkPolicies, "x", "web-isolated").ok());
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline && controller_->MayIsolate(web);) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(controller_->MayIsolate(web));
  EXPECT_FALSE(controller_->MayIsolate(web2));
  std::lock_guard l(mu);
  ASSERT_EQ(news.size(), 2u);
  for (const auto& n : news) {
    EXPECT_EQ(n.what, "released") << n.ip;
    EXPECT_FALSE(n.in_kernel) << n.ip << ": told after the chain left the kernel";
  }
}

}  // namespace
}  // namespace terway::daemon
