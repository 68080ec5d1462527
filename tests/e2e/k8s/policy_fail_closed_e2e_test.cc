// A Calico policy terway cannot enforce as written, told where users look:
// terwayd's policy controller and its Event writer (KubeNode, as the daemon
// wires them) against the lab's API stand-in over real HTTP, the node's nft
// table in a network namespace this test creates; kubectl, the independent
// client, writes the policy and reads the Warning Event back.
//
// Root only (the nft table lives in a namespace of its own); skips without
// root or kubectl.
#include <unistd.h>

#include "daemon/kube_node.h"
#include "daemon/policy_controller.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "kubectl_fixture.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::lab {
namespace {

constexpr char kNode[] = "node-1";

class PolicyFailClosedTest : public KubectlTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the policy table goes into a network namespace of its own";
    KubectlTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    netns_ = "tpfc" + std::to_string(getpid());
    ASSERT_OK(netlink::CreateNamedNetns(netns_));
    netns_made_ = true;
    auto cfg = k8s::LoadKubeconfig(kubeconfig_);
    ASSERT_OK(cfg);
    client_ = std::shared_ptr<k8s::RestClient>(k8s::RestClient::FromConfig(*cfg));
    Apply("world.yaml", R"(apiVersion: v1
kind: Node
metadata: {name: node-1}
status:
  addresses: [{type: InternalIP, address: 198.18.0.2}]
---
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {ns: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: x, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox}]
)");
    daemon::KubeNodeOptions ko;
    ko.node_name = kNode;
    auto kube = daemon::KubeNode::Create(client_, ko, &metrics_);
    ASSERT_OK(kube);
    kube_ = std::move(kube).value();
    daemon::PolicyControllerOptions po;
    po.node_name = kNode;
    po.netns = netns_;
    daemon::KubeNode* k = kube_.get();
    po.warn_event = [k](const k8s::ObjectReference& o, const std::string& reason, const std::string& message) {
      k->ObjectWarning(o, reason, message);
    };
    auto pc = daemon::PolicyController::Create(client_, po, {}, &metrics_);
    ASSERT_OK(pc);
    policy_ = std::move(pc).value();
  }

  void TearDown() override {
    policy_.reset();
    if (kube_) kube_->Shutdown();
    kube_.reset();
    if (netns_made_) {
      (void)daemon::PolicyController::RemoveTable(netns_);
      Status st = netlink::DeleteNamedNetns(netns_);
      EXPECT_TRUE(st.ok()) << st.error().ToString();
    }
    KubectlTest::TearDown();
  }

  void Apply(const std::string& name, const std::string& yaml) {
    auto r = Kubectl({"apply", "-f", dir_.Write(name, yaml)});
    ASSERT_EQ(r.code, 0) << r.out;
  }

  Json Get(const std::vector<std::string>& what) {
    std::vector<std::string> args = {"get"};
    args.insert(args.end(), what.begin(), what.end());
    args.insert(args.end(), {"-o", "json"});
    auto r = Kubectl(args);
    EXPECT_EQ(r.code, 0) << r.out;
    return Json::parse(r.out, nullptr, false);
  }

  // terwayd's Events about policies not enforced as written, in namespace x.
  std::vector<Json> PolicyEvents() {
    std::vector<Json> out;
    Json list = Get({"events", "-n", "x", "--field-selector", "reason=PolicyNotEnforcedAsWritten"});
    if (!list.is_object()) return out;
    for (const auto& e : list["items"]) out.push_back(e);
    return out;
  }

  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::seconds deadline = 30s) {
    auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return pred();
  }

  double FailClosed(const char* kind) { return metrics_.Get("terway_policy_fail_closed", {{"kind", kind}}); }
  double ChangeApplies() {
    return metrics_.Get("terway_policy_applies_total", {{"trigger", "change"}, {"result", "ok"}});
  }

  std::string netns_;
  bool netns_made_ = false;
  std::shared_ptr<k8s::RestClient> client_;
  daemon::Metrics metrics_;
  std::unique_ptr<daemon::KubeNode> kube_;
  std::unique_ptr<daemon::PolicyController> policy_;
};

// An HTTP match needs an application-layer proxy: nftables cannot see
// methods or paths, so the Allow is enforced as allowing nothing.
const char* PolicyYaml(int order) {
  static std::string text;
  text = fmt::format(R"(apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: web-http, namespace: x}}
spec:
  order: {}
  selector: app == 'web'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    http:
      methods: [GET]
    destination:
      ports: [80]
)",
                     order);
  return text.c_str();
}

TEST_F(PolicyFailClosedTest, WarningEventOncePerGenerationMetricAndShow) {
  Apply("policy.yaml", PolicyYaml(100));
  const std::string uid = Get({"networkpolicies.projectcalico.org", "web-http", "-n", "x"})["metadata"]["uid"];
  ASSERT_FALSE(uid.empty());

  std::vector<Json> events;
  ASSERT_TRUE(WaitFor([&] { return (events = PolicyEvents()).size() == 1; }))
      << "no Warning Event for x/web-http; events: " << Get({"events", "-n", "x"}).dump();
  const Json& e = events[0];
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["involvedObject"]["apiVersion"], "projectcalico.org/v3");
  EXPECT_EQ(e["involvedObject"]["kind"], "NetworkPolicy");
  EXPECT_EQ(e["involvedObject"]["namespace"], "x");
  EXPECT_EQ(e["involvedObject"]["name"], "web-http");
  EXPECT_EQ(e["involvedObject"]["uid"], uid);
  EXPECT_EQ(e["source"]["component"], "terwayd");
  EXPECT_EQ(e["source"]["host"], kNode);
  const std::string message = e["message"];
  EXPECT_NE(message.find("http"), std::string::npos) << message;
  EXPECT_NE(message.find("enforced as:"), std::string::npos) << message;
  EXPECT_EQ(e["count"], 1);

  EXPECT_EQ(FailClosed("calico"), 1);
  EXPECT_EQ(FailClosed("k8s"), 0);
  auto shown = policy_->Show();
  ASSERT_OK(shown);
  EXPECT_NE(shown->find("calico:x/web-http"), std::string::npos) << *shown;
  EXPECT_NE(shown->find("http"), std::string::npos) << *shown;
  EXPECT_NE(shown->find("enforced as:"), std::string::npos) << *shown;

  // Recompiles (a pod starts, labels change) tell nothing new.
  const double before = ChangeApplies();
  Apply("pods.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: db, namespace: x, labels: {app: db}}
spec:
  nodeName: node-1
  containers: [{name: c, image: busybox}]
)");
  ASSERT_TRUE(WaitFor([&] { return ChangeApplies() > before; })) << "no recompile after a pod was added";
  const double after_pod = ChangeApplies();
  auto label = Kubectl({"label", "pod", "db", "-n", "x", "tier=back"});
  ASSERT_EQ(label.code, 0) << label.out;
  ASSERT_TRUE(WaitFor([&] { return ChangeApplies() > after_pod; })) << "no recompile after a label change";

  // A new generation of the policy (same fields, so the same message) is
  // told again: the Event's count goes to 2. Events are written in order by
  // one writer, so once the count shows 2, any Event a recompile had wrongly
  // queued before would already show (a count above 2, or a second Event).
  Apply("policy.yaml", PolicyYaml(200));
  ASSERT_TRUE(WaitFor([&] {
    events = PolicyEvents();
    return !events.empty() && events[0]["count"].get<int>() >= 2;
  })) << "the edited policy was not told again";
  EXPECT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 2) << "told more than once per generation";

  // Deleted: nothing fails closed any more.
  auto del = Kubectl({"delete", "networkpolicies.projectcalico.org", "web-http", "-n", "x"});
  ASSERT_EQ(del.code, 0) << del.out;
  EXPECT_TRUE(WaitFor([&] { return FailClosed("calico") == 0; })) << "terway_policy_fail_closed still counts it";
  shown = policy_->Show();
  ASSERT_OK(shown);
  EXPECT_EQ(shown->find("web-http"), std::string::npos) << *shown;
}

}  // namespace
}  // namespace terway::lab
