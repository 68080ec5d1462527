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

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

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

// The eBPF datapath's policy map follows isolation: at every apply it is
// told the full set of isolated pods before the kernel gets the chains
// (`isolating`: it adds the missing) and again after (`isolation_applied`:
// it drops the rest), so a pod is in the map whenever its chain is in the
// kernel, and leaves it only after the chain left.
TEST_F(PolicyControllerRoot, IsolationNewsBracketsTheKernelsChains) {
  Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}});
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  Create(kPods, Pod("x", "free", kNode, "", {{"app", "free"}}));
  const Ipv4Addr web = *Ipv4Addr::Parse("198.18.6.1"), free = *Ipv4Addr::Parse("198.18.6.2");
  const Ipv4Addr web2 = *Ipv4Addr::Parse("198.18.6.3");
  ledger_ = {{"x/web", web}, {"x/free", free}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-isolated","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "policyTypes":["Ingress"]}})"));

  struct News {
    std::string what;
    std::set<std::string> ips;      // the set told
    std::set<std::string> in_kernel;  // of web, web2, free: those in pod_ingress when told
  };
  std::mutex mu;
  std::vector<News> news;
  auto in_kernel = [this](const Ipv4Addr& ip) {
    std::string map;
    if (!policy::RunNftBatch(node_, "list map inet terway pod_ingress", &map).ok()) return false;
    return map.find("\"" + ip.ToString() + "\"") != std::string::npos;
  };
  auto record = [&](const char* what) {
    return [&, what](const std::set<Ipv4Addr>& ips) -> Status {
      News n{what, {}, {}};
      for (const auto& ip : ips) n.ips.insert(ip.ToString());
      for (const auto& ip : {web, web2, free}) {
        if (in_kernel(ip)) n.in_kernel.insert(ip.ToString());
      }
      std::lock_guard l(mu);
      news.push_back(std::move(n));
      return Ok();
    };
  };
  auto take = [&] {
    std::lock_guard l(mu);
    return std::exchange(news, {});
  };
  using Set = std::set<std::string>;
  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  opts.isolating = record("isolating");
  opts.isolation_applied = record("applied");
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  controller_ = std::move(*c);
  {
    // Create's own apply (its worker starts after it; later applies of the
    // worker, if any, tell the same sets).
    auto n = take();
    ASSERT_GE(n.size(), 2u);
    EXPECT_EQ(n[0].what, "isolating");
    EXPECT_EQ(n[0].ips, Set{"198.18.6.1"});
    EXPECT_EQ(n[0].in_kernel, Set{}) << "told before the chain is applied";
    EXPECT_EQ(n[1].what, "applied");
    EXPECT_EQ(n[1].ips, Set{"198.18.6.1"});
    EXPECT_EQ(n[1].in_kernel, Set{"198.18.6.1"}) << "told after the chain is applied";
  }
  EXPECT_TRUE(in_kernel(web));
  EXPECT_TRUE(controller_->MayIsolate(web));
  EXPECT_FALSE(controller_->MayIsolate(free));
  // The callbacks said Ok, which they also say while no program is loaded:
  // only the datapath knows whether a map is in sync (terwayd's scrape asks
  // it), so the controller claims nothing.
  EXPECT_EQ(metrics_.Render().find("terway_ebpf_datapath_policy_synced "), std::string::npos) << metrics_.Render();
  EXPECT_EQ(metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total"), 0);

  // A pod start: isolated (and said so, with the full set) by the time
  // PodStarting returns.
  Create(kPods, Pod("x", "web2", kNode, "", {{"app", "web"}}));
  ASSERT_TRUE(controller_->PodStarting("x", "web2", web2).ok());
  EXPECT_TRUE(controller_->MayIsolate(web2));
  {
    // The first news naming web2 is before its chain, the first "applied"
    // naming it after.
    auto n = take();
    auto first = [&](const char* what) -> const News* {
      for (const auto& one : n) {
        if ((what == nullptr || one.what == what) && one.ips.count("198.18.6.3")) return &one;
      }
      return nullptr;
    };
    const News* told = first(nullptr);
    const News* applied = first("applied");
    ASSERT_NE(told, nullptr);
    ASSERT_NE(applied, nullptr);
    EXPECT_EQ(told->what, "isolating");
    EXPECT_EQ(told->ips, (Set{"198.18.6.1", "198.18.6.3"})) << "the full set";
    EXPECT_FALSE(told->in_kernel.count("198.18.6.3")) << "web2 told before its chain";
    EXPECT_TRUE(applied->in_kernel.count("198.18.6.3")) << "and again after it";
  }

  // The policy goes: the empty set is told before (the chains still there:
  // the map keeps its extras) and after the kernel dropped them.
  ASSERT_TRUE(client_->Delete(kNetworkPolicies, "x", "web-isolated").ok());
  std::vector<News> n;
  size_t released = 0;  // the first "applied" of the empty set
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline && released == 0;) {
    for (auto& one : take()) n.push_back(std::move(one));
    for (size_t i = 1; i < n.size() && released == 0; ++i) {
      if (n[i].what == "applied" && n[i].ips.empty()) released = i;
    }
    if (released == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(released, 0u) << "never told the empty set after an apply";
  const News& before = n[released - 1];  // the same apply's first call
  const News& after = n[released];
  EXPECT_EQ(before.what, "isolating");
  EXPECT_TRUE(before.ips.empty());
  EXPECT_EQ(before.in_kernel, (Set{"198.18.6.1", "198.18.6.3"})) << "told before the chains leave";
  EXPECT_EQ(after.what, "applied");
  EXPECT_TRUE(after.ips.empty());
  EXPECT_EQ(after.in_kernel, Set{}) << "told after the chains left the kernel";
  EXPECT_FALSE(controller_->MayIsolate(web));
  EXPECT_FALSE(controller_->MayIsolate(web2));
}

// The datapath cannot write its policy map (it fell to its safe side, every
// pod on the stack): the chains are applied anyway, the failure is counted,
// shown by the gauge and told once on the Node, and the worker retries
// until a full sync succeeds.
TEST_F(PolicyControllerRoot, AFailingIsolatingStillAppliesTheChainsAndIsRetriedUntilItWorks) {
  Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}});
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  const Ipv4Addr web = *Ipv4Addr::Parse("198.18.6.1");
  ledger_ = {{"x/web", web}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-isolated","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "policyTypes":["Ingress"]}})"));
  std::atomic<bool> broken{true};
  std::atomic<int> isolating_calls{0}, applied_ok{0};
  std::mutex mu;
  std::vector<std::pair<k8s::ObjectReference, std::string>> events;
  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  opts.isolating = [&](const std::set<Ipv4Addr>&) -> Status {
    ++isolating_calls;
    if (broken) return Errorf(ErrorCode::kKernel, "writing the policy map: No space left on device");
    return Ok();
  };
  opts.isolation_applied = [&](const std::set<Ipv4Addr>& ips) -> Status {
    if (broken) return Errorf(ErrorCode::kKernel, "writing the policy map: No space left on device");
    if (ips.count(web)) ++applied_ok;
    return Ok();
  };
  opts.warn_event = [&](const k8s::ObjectReference& o, const std::string& reason, const std::string&) {
    std::lock_guard l(mu);
    events.push_back({o, reason});
  };
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << "the chains are the enforcement: a datapath failure does not stop them: "
                      << c.error().ToString();
  controller_ = std::move(*c);
  std::string map;
  ASSERT_TRUE(policy::RunNftBatch(node_, "list map inet terway pod_ingress", &map).ok());
  EXPECT_NE(map.find("198.18.6.1"), std::string::npos) << map;
  EXPECT_GE(metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total"), 2) << "before and after the apply";
  // A pod start is not failed by it either: its chain is in the kernel (a
  // datapath that could not even fail closed refuses the pod in its own
  // Ensure: EbpfEniRoot.WhenFailingClosedFailsToo...).
  Create(kPods, Pod("x", "web2", kNode, "", {{"app", "web"}}));
  ASSERT_TRUE(controller_->PodStarting("x", "web2", *Ipv4Addr::Parse("198.18.6.3")).ok());

  // The worker retries on its own (no change needed).
  const int calls = isolating_calls;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       std::chrono::steady_clock::now() < deadline && isolating_calls <= calls;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT(isolating_calls, calls) << "retried";
  {
    std::lock_guard l(mu);
    ASSERT_EQ(events.size(), 1u) << "told once per outage, not at every retry";
    EXPECT_EQ(events[0].first.kind, "Node");
    EXPECT_EQ(events[0].first.name, kNode);
    EXPECT_EQ(events[0].second, PolicyController::kDatapathSyncEventReason);
  }
  broken = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       std::chrono::steady_clock::now() < deadline && applied_ok == 0;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GT(applied_ok, 0) << "a full sync after the datapath recovered";
  EXPECT_TRUE(controller_->WaitIdle(std::chrono::seconds(10)));
  // In sync: no more retries, so no more errors.
  const double errors = metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total");
  Create(kPods, Pod("x", "web3", kNode, "", {{"app", "web"}}));
  ASSERT_TRUE(controller_->PodStarting("x", "web3", *Ipv4Addr::Parse("198.18.6.4")).ok());
  EXPECT_TRUE(controller_->WaitIdle(std::chrono::seconds(10)));
  EXPECT_EQ(metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total"), errors);
}

// When the datapath could not even fall back to policing every pod, the
// outage is told again (it got worse), and a failure that turns failed-open
// into failed-closed is not told again.
TEST_F(PolicyControllerRoot, ADatapathThatCannotFailClosedIsToldAgain) {
  Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}});
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  ledger_ = {{"x/web", *Ipv4Addr::Parse("198.18.6.1")}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-isolated","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "policyTypes":["Ingress"]}})"));
  std::atomic<int> mode{1};  // 0 ok, 1 failed closed, 2 failed open
  auto result = [&]() -> Status {
    if (mode == 1) return Errorf(ErrorCode::kKernel, "writing the policy map: No space left on device");
    if (mode == 2) return Errorf(ErrorCode::kUnavailable, "could not mark the policy map not authoritative");
    return Ok();
  };
  std::mutex mu;
  std::vector<std::string> messages;
  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  opts.isolating = [&](const std::set<Ipv4Addr>&) { return result(); };
  opts.isolation_applied = [&](const std::set<Ipv4Addr>&) { return result(); };
  opts.warn_event = [&](const k8s::ObjectReference&, const std::string&, const std::string& message) {
    std::lock_guard l(mu);
    messages.push_back(message);
  };
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  controller_ = std::move(*c);
  auto told = [&] {
    std::lock_guard l(mu);
    return messages;
  };
  ASSERT_EQ(told().size(), 1u);
  EXPECT_NE(told()[0].find("takes the host stack"), std::string::npos) << told()[0];
  mode = 2;
  auto wait_for = [&](size_t n) {
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
         std::chrono::steady_clock::now() < deadline && told().size() < n;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return told().size() >= n;
  };
  ASSERT_TRUE(wait_for(2)) << "the worker's retry fails open: told again";
  EXPECT_NE(told()[1].find("refused"), std::string::npos) << told()[1];
  EXPECT_NE(told()[1].find("could not mark the policy map"), std::string::npos) << told()[1];
  mode = 1;
  const double errors = metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total");
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       std::chrono::steady_clock::now() < deadline &&
       metrics_.Get("terway_ebpf_datapath_policy_sync_errors_total") < errors + 2;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(told().size(), 2u) << "better news within the outage is not an Event";
}

// No lock is held across the kernel: while an apply waits on the kernel (a
// datapath callback that does not return), an operator's question is
// answered (it needs the compiler's inputs, not the kernel), and the pod
// start that apply serves returns once it is done, with its chain.
TEST_F(PolicyControllerRoot, AnApplyWaitingOnTheKernelHoldsNoOneElseUp) {
  Create(kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "x"}}}});
  Create(kPods, Pod("x", "web", kNode, "", {{"app", "web"}}));
  const Ipv4Addr web = *Ipv4Addr::Parse("198.18.6.1"), web2 = *Ipv4Addr::Parse("198.18.6.3");
  ledger_ = {{"x/web", web}};
  Create(kNetworkPolicies, Json::parse(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
      "metadata":{"name":"web-isolated","namespace":"x"},"spec":{"podSelector":{"matchLabels":{"app":"web"}},
      "policyTypes":["Ingress"]}})"));
  std::mutex mu;
  std::condition_variable cv;
  bool in_kernel = false, release = false;
  PolicyControllerOptions opts;
  opts.node_name = kNode;
  opts.netns = node_;
  opts.isolating = [&](const std::set<Ipv4Addr>& ips) -> Status {
    if (!ips.count(web2)) return Ok();
    std::unique_lock l(mu);
    in_kernel = true;
    cv.notify_all();
    // Bounded: a test that fails must still end.
    cv.wait_for(l, std::chrono::seconds(30), [&] { return release; });
    return Ok();
  };
  auto c = PolicyController::Create(client_, opts, ledger_, &metrics_);
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  controller_ = std::move(*c);
  auto let_go = [&] {
    std::lock_guard l(mu);
    release = true;
    cv.notify_all();
  };

  Create(kPods, Pod("x", "web2", kNode, "", {{"app", "web"}}));
  std::atomic<bool> started{false};
  Status start_status;
  std::thread adder([&] {
    start_status = controller_->PodStarting("x", "web2", web2);
    started = true;
  });
  {
    std::unique_lock l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return in_kernel; }))
        << "the apply of web2 never reached the datapath";
  }
  EXPECT_FALSE(started) << "PodStarting returned before its apply";
  std::mutex qmu;
  std::condition_variable qcv;
  bool answered = false;
  std::thread asker([&] {
    (void)controller_->Explain("x/web2", "x/web", policy::Protocol::kTCP, 80);
    std::lock_guard l(qmu);
    answered = true;
    qcv.notify_all();
  });
  bool in_time;
  {
    std::unique_lock l(qmu);
    in_time = qcv.wait_for(l, std::chrono::seconds(10), [&] { return answered; });
  }
  let_go();
  asker.join();
  adder.join();
  EXPECT_TRUE(in_time) << "Explain waited for an apply's kernel call";
  ASSERT_TRUE(start_status.ok()) << start_status.error().ToString();
  std::string map;
  ASSERT_TRUE(policy::RunNftBatch(node_, "list map inet terway pod_ingress", &map).ok());
  EXPECT_NE(map.find("198.18.6.3"), std::string::npos) << "web2's chain is in the kernel when PodStarting returns\n"
                                                       << map;
}

}  // namespace
}  // namespace terway::daemon
