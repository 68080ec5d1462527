// What a Calico user does with kubectl against the lab's API stand-in (the
// real kubectl binary, in-process server on 127.0.0.1:0): apply a `kind:
// List` of Calico and Kubernetes objects, meet Calico's refusals, read pods
// and nodes with the columns a real API server gives, and see Services'
// EndpointSlices follow their pods. Skips when kubectl is absent.
#include <algorithm>
#include <regex>

#include "kubectl_fixture.h"

namespace terway::lab {
namespace {

const char* kCalicoList = R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: team-a}
- apiVersion: projectcalico.org/v3
  kind: Tier
  metadata: {name: security}
  spec: {order: 100}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkSet
  metadata:
    name: blocked
    labels: {role: blocked}
  spec:
    nets: [198.51.100.0/24, 203.0.113.7, "2001:db8::/32"]
- apiVersion: projectcalico.org/v3
  kind: NetworkSet
  metadata:
    name: partners
    namespace: team-a
    labels: {role: partner}
  spec:
    nets: [192.0.2.0/24]
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: security.deny-blocked}
  spec:
    tier: security
    order: 10
    selector: all()
    egress:
    - action: Deny
      destination:
        selector: role == 'blocked'
        namespaceSelector: global()
    - action: Pass
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: allow-partners, namespace: team-a}
  spec:
    selector: app == 'web'
    ingress:
    - action: Allow
      protocol: TCP
      source: {selector: role == 'partner'}
      destination: {ports: [80, "8000:8080"]}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings, namespace: team-a}
  data: {mode: strict}
)";

class CalicoKubectlTest : public KubectlTest {
 protected:
  Json Get(const std::string& group, const std::string& plural, const std::string& ns, const std::string& name) {
    const ResourceType* t = server_->store().Find(group, group == kCalico ? "v3" : "v1", plural);
    if (!t) return Json();
    auto o = server_->store().Get(*t, ns, name);
    return o.ok() ? *o : Json();
  }
  void Put(const std::string& plural, const std::string& ns, Json obj) {
    const ResourceType* t = server_->store().Find("", "v1", plural);
    ASSERT_NE(t, nullptr);
    auto r = server_->store().Create(*t, ns, std::move(obj));
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  void SetStatus(const std::string& plural, const std::string& ns, const std::string& name, Json status) {
    const ResourceType* t = server_->store().Find("", "v1", plural);
    auto r = server_->store().Mutate(*t, ns, name, [&](Json& o) -> Status {
      o["status"] = status;
      return Ok();
    }, /*status_subresource=*/true);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  // A `kubectl get` table as rows of cells: kubectl pads columns with at
  // least two spaces, and single spaces stay inside a cell ("NOMINATED NODE").
  static std::vector<std::vector<std::string>> Table(const std::string& out) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream in(out);
    std::string line;
    static const std::regex kGap(" {2,}");
    while (std::getline(in, line)) {
      while (!line.empty() && line.back() == ' ') line.pop_back();
      if (line.empty()) continue;
      rows.emplace_back(std::sregex_token_iterator(line.begin(), line.end(), kGap, -1), std::sregex_token_iterator());
    }
    return rows;
  }
  static constexpr const char* kCalico = "projectcalico.org";
};

TEST_F(CalicoKubectlTest, ApplyAListOfCalicoAndKubernetesObjects) {
  const std::string list = dir_.Write("list.yaml", kCalicoList);
  auto applied = Kubectl({"apply", "-f", list});
  ASSERT_EQ(applied.code, 0) << applied.out;
  for (const char* want : {"namespace/team-a created", "tier.projectcalico.org/security created",
                           "globalnetworkset.projectcalico.org/blocked created",
                           "networkset.projectcalico.org/partners created",
                           "globalnetworkpolicy.projectcalico.org/security.deny-blocked created",
                           "networkpolicy.projectcalico.org/allow-partners created", "configmap/settings created"}) {
    EXPECT_NE(applied.out.find(want), std::string::npos) << want << "\n" << applied.out;
  }
  // Calico's defaulting, as stored.
  Json gnp = Get(kCalico, "globalnetworkpolicies", "", "security.deny-blocked");
  EXPECT_EQ(gnp["metadata"]["labels"]["projectcalico.org/tier"], "security");
  EXPECT_EQ(gnp["spec"]["types"], Json::array({"Egress"}));
  Json np = Get(kCalico, "networkpolicies", "team-a", "allow-partners");
  EXPECT_EQ(np["spec"]["tier"], "default");
  EXPECT_EQ(np["spec"]["ingress"][0]["destination"]["ports"], Json::parse(R"j([80, "8000:8080"])j"));
  EXPECT_EQ(Get(kCalico, "tiers", "", "security")["spec"]["defaultAction"], "Deny");
  EXPECT_EQ(Get(kCalico, "networksets", "team-a", "partners")["spec"]["nets"], Json::array({"192.0.2.0/24"}));
  // The namespace got its default ServiceAccount.
  EXPECT_FALSE(Get("", "serviceaccounts", "team-a", "default").is_null());

  auto again = Kubectl({"apply", "-f", list});
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(again.out.find("configured"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("globalnetworkpolicy.projectcalico.org/security.deny-blocked unchanged"), std::string::npos)
      << again.out;

  // The CRDs' printer columns.
  auto tiers = Table(Kubectl({"get", "tiers"}).out);
  ASSERT_EQ(tiers.size(), 3u);
  EXPECT_EQ(tiers[0], (std::vector<std::string>{"NAME", "ORDER", "DEFAULTACTION", "STATUS"}));
  EXPECT_EQ(tiers[1], (std::vector<std::string>{"default", "1000000", "Deny"}));
  EXPECT_EQ(tiers[2], (std::vector<std::string>{"security", "100", "Deny"}));
  auto gnps = Table(Kubectl({"get", "gnp"}).out);
  ASSERT_EQ(gnps.size(), 2u);
  EXPECT_EQ(gnps[0], (std::vector<std::string>{"NAME", "TIER", "ORDER", "AGE"}));
  EXPECT_EQ(std::vector<std::string>(gnps[1].begin(), gnps[1].begin() + 3),
            (std::vector<std::string>{"security.deny-blocked", "security", "10"}));
  auto sets = Table(Kubectl({"get", "networksets", "-A"}).out);
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0], (std::vector<std::string>{"NAMESPACE", "NAME", "AGE"}));
  EXPECT_EQ(sets[1][1], "partners");
  auto by_tier = Kubectl({"get", "gnp", "--field-selector", "spec.tier=security", "-o", "name"});
  EXPECT_EQ(by_tier.out, "globalnetworkpolicy.projectcalico.org/security.deny-blocked\n");
}

TEST_F(CalicoKubectlTest, ListValidationNamesTheBadFields) {
  auto r = Kubectl({"apply", "-f", dir_.Write("bad.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkSet
  metadata: {name: typo}
  spec:
    netz: [198.51.100.0/24]
- apiVersion: projectcalico.org/v3
  kind: Tier
  metadata: {name: first}
  spec: {order: first}
)")});
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(R"(unknown field "netz" in org.projectcalico.v3.GlobalNetworkSet.spec)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("org.projectcalico.v3.Tier.spec.order: got \"string\", expected \"number\""), std::string::npos)
      << r.out;
  EXPECT_TRUE(Get(kCalico, "globalnetworksets", "", "typo").is_null());
  EXPECT_TRUE(Get(kCalico, "tiers", "", "first").is_null());
}

TEST_F(CalicoKubectlTest, AMisspelledRuleFieldIsRefusedNotDropped) {
  auto r = Kubectl({"apply", "-f", dir_.Write("typo.yaml", R"(apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny-metadata}
spec:
  selector: all()
  egress:
  - action: Deny
    destinaton: {nets: [100.100.100.200/32]}
)")});
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(R"(strict decoding error: unknown field "spec.egress[0].destinaton")"), std::string::npos)
      << r.out;
  EXPECT_TRUE(Get(kCalico, "globalnetworkpolicies", "", "deny-metadata").is_null());
}

TEST_F(CalicoKubectlTest, WarnModePrunesWithAWarning) {
  auto r = Kubectl({"apply", "--validate=warn", "-f", dir_.Write("warn.yaml", R"(apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners}
spec:
  nets: [192.0.2.0/24]
  allowedEgressDomains: [example.com]
)")});
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(R"(Warning: unknown field "spec.allowedEgressDomains")"), std::string::npos) << r.out;
  Json stored = Get(kCalico, "globalnetworksets", "", "partners");
  EXPECT_EQ(stored["spec"], (Json{{"nets", {"192.0.2.0/24"}}}));
}

TEST_F(CalicoKubectlTest, WatchPrintsTableRows) {
  int before = server_->watches_served();
  Child watch(Argv({"get", "tiers", "-w"}), Env());
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (server_->watches_served() == before && std::chrono::steady_clock::now() < deadline) watch.ReadSome(20ms);
  ASSERT_GT(server_->watches_served(), before) << watch.output();
  ASSERT_EQ(Kubectl({"apply", "-f", dir_.Write("tier.yaml", R"(apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 50, defaultAction: Pass}
)")}).code, 0);
  // A row with the tier's printer columns, from the watch stream.
  EXPECT_TRUE(watch.WaitForOutput("platform", 20s)) << watch.output();
  auto rows = Table(watch.output());
  auto row = std::find_if(rows.begin(), rows.end(), [](const auto& r) { return !r.empty() && r[0] == "platform"; });
  ASSERT_NE(row, rows.end()) << watch.output();
  EXPECT_EQ(*row, (std::vector<std::string>{"platform", "50", "Pass"}));
  EXPECT_EQ(rows[0], (std::vector<std::string>{"NAME", "ORDER", "DEFAULTACTION", "STATUS"}));
}

TEST_F(CalicoKubectlTest, CalicoRefusals) {
  auto del = Kubectl({"delete", "tier", "default"});
  EXPECT_NE(del.code, 0) << del.out;
  EXPECT_NE(del.out.find("Error from server (Forbidden): tiers.projectcalico.org \"default\" is forbidden: the "
                         "built-in tier default cannot be deleted"),
            std::string::npos)
      << del.out;
  EXPECT_FALSE(Get(kCalico, "tiers", "", "default").is_null());

  const std::string orphan = dir_.Write("orphan.yaml", R"(apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: platform.allow-dns}
spec:
  tier: platform
  selector: all()
)");
  auto refused = Kubectl({"apply", "-f", orphan});
  EXPECT_NE(refused.code, 0) << refused.out;
  // kubectl prints an Invalid error from its causes: the field and why.
  EXPECT_NE(refused.out.find("The GlobalNetworkPolicy \"platform.allow-dns\" is invalid: spec.tier: Not found: "
                             "\"platform\": the tier does not exist; create the Tier first"),
            std::string::npos)
      << refused.out;
  EXPECT_TRUE(Get(kCalico, "globalnetworkpolicies", "", "platform.allow-dns").is_null());

  auto bad_net = Kubectl({"apply", "-f", dir_.Write("net.yaml", R"(apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners}
spec:
  nets: [192.0.2.0/33]
)")});
  EXPECT_NE(bad_net.code, 0) << bad_net.out;
  EXPECT_NE(bad_net.out.find("spec.nets[0]: Invalid value: \"192.0.2.0/33\""), std::string::npos) << bad_net.out;

  // Once the tier exists the same file applies, and the tier cannot go
  // while the policy is in it.
  ASSERT_EQ(Kubectl({"apply", "-f", dir_.Write("tier.yaml", R"(apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: platform}
spec: {order: 50}
)")}).code, 0);
  auto ok = Kubectl({"apply", "-f", orphan});
  ASSERT_EQ(ok.code, 0) << ok.out;
  auto busy = Kubectl({"delete", "tier", "platform"});
  EXPECT_NE(busy.code, 0);
  EXPECT_NE(busy.out.find("Cannot delete a non-empty tier"), std::string::npos) << busy.out;
}

TEST_F(CalicoKubectlTest, GetPodsWide) {
  Put("pods", "default", {{"metadata", {{"name", "web-1"}}},
                          {"spec", {{"nodeName", "node-a"}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}});
  Put("pods", "default", {{"metadata", {{"name", "web-2"}}},
                          {"spec", {{"nodeName", "node-b"}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}});
  SetStatus("pods", "default", "web-1",
            {{"phase", "Running"},
             {"podIP", "10.0.0.5"},
             {"podIPs", {{{"ip", "10.0.0.5"}}}},
             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
             {"containerStatuses",
              {{{"name", "c"}, {"ready", true}, {"restartCount", 0}, {"state", {{"running", Json::object()}}}}}}});
  auto plain = Table(Kubectl({"get", "pods"}).out);
  ASSERT_EQ(plain.size(), 3u);
  EXPECT_EQ(plain[0], (std::vector<std::string>{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}));
  EXPECT_EQ(std::vector<std::string>(plain[1].begin(), plain[1].begin() + 4),
            (std::vector<std::string>{"web-1", "1/1", "Running", "0"}));
  EXPECT_EQ(std::vector<std::string>(plain[2].begin(), plain[2].begin() + 4),
            (std::vector<std::string>{"web-2", "0/1", "Pending", "0"}));

  auto wide = Table(Kubectl({"get", "pods", "-o", "wide"}).out);
  ASSERT_EQ(wide.size(), 3u);
  EXPECT_EQ(wide[0], (std::vector<std::string>{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                               "NOMINATED NODE", "READINESS GATES"}));
  ASSERT_EQ(wide[1].size(), 9u);
  EXPECT_EQ(std::vector<std::string>(wide[1].begin() + 5, wide[1].end()),
            (std::vector<std::string>{"10.0.0.5", "node-a", "<none>", "<none>"}));
  EXPECT_EQ(std::vector<std::string>(wide[2].begin() + 5, wide[2].end()),
            (std::vector<std::string>{"<none>", "node-b", "<none>", "<none>"}));
  // -A adds the namespace from the rows' metadata.
  auto all = Table(Kubectl({"get", "pods", "-A"}).out);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0][0], "NAMESPACE");
  EXPECT_EQ(all[1][0], "default");
}

TEST_F(CalicoKubectlTest, GetNodesWide) {
  Put("nodes", "", {{"metadata", {{"name", "node-a"}, {"labels", {{"node-role.kubernetes.io/worker", ""}}}}}});
  SetStatus("nodes", "", "node-a",
            {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
             {"addresses",
              {{{"type", "Hostname"}, {"address", "node-a"}}, {{"type", "InternalIP"}, {"address", "192.168.0.10"}}}},
             {"nodeInfo",
              {{"kubeletVersion", "v1.32.0-lab"},
               {"osImage", "Debian GNU/Linux 12 (bookworm)"},
               {"kernelVersion", "6.1.0-lab"},
               {"containerRuntimeVersion", "terway-lab://1"}}}});
  auto plain = Table(Kubectl({"get", "nodes"}).out);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0], (std::vector<std::string>{"NAME", "STATUS", "ROLES", "AGE", "VERSION"}));
  EXPECT_EQ(plain[1][0], "node-a");
  EXPECT_EQ(plain[1][1], "Ready");
  EXPECT_EQ(plain[1][2], "worker");
  EXPECT_EQ(plain[1][4], "v1.32.0-lab");
  auto wide = Table(Kubectl({"get", "nodes", "-o", "wide"}).out);
  ASSERT_EQ(wide.size(), 2u);
  EXPECT_EQ(wide[0], (std::vector<std::string>{"NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP",
                                               "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"}));
  EXPECT_EQ(std::vector<std::string>(wide[1].begin() + 5, wide[1].end()),
            (std::vector<std::string>{"192.168.0.10", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-lab",
                                      "terway-lab://1"}));
}

TEST_F(CalicoKubectlTest, ServicesGetEndpointSlicesOfTheirPods) {
  ASSERT_EQ(Kubectl({"apply", "-f", dir_.Write("svc.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: web}
  spec:
    selector: {app: web}
    ports: [{name: http, port: 80, targetPort: http}]
- apiVersion: v1
  kind: Pod
  metadata: {name: web-1, labels: {app: web}}
  spec:
    nodeName: node-a
    containers: [{name: c, image: busybox, ports: [{name: http, containerPort: 8080}]}]
)")}).code, 0);
  SetStatus("pods", "default", "web-1",
            {{"phase", "Running"}, {"podIP", "10.0.0.5"}, {"podIPs", {{{"ip", "10.0.0.5"}}}},
             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}});
  auto slices = Table(Kubectl({"get", "endpointslices", "-l", "kubernetes.io/service-name=web"}).out);
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0], (std::vector<std::string>{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}));
  EXPECT_EQ(slices[1][0].rfind("web-", 0), 0u) << slices[1][0];
  EXPECT_EQ(std::vector<std::string>(slices[1].begin() + 1, slices[1].begin() + 4),
            (std::vector<std::string>{"IPv4", "8080", "10.0.0.5"}));
  auto svc = Table(Kubectl({"get", "svc", "web", "-o", "wide"}).out);
  ASSERT_EQ(svc.size(), 2u);
  EXPECT_EQ(svc[1][4], "80/TCP");
  EXPECT_EQ(svc[1][6], "app=web");
  ASSERT_EQ(Kubectl({"delete", "pod", "web-1"}).code, 0);
  // What stays is Kubernetes' placeholder: one slice, no endpoints.
  auto empty = Kubectl({"get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o", "json"});
  ASSERT_EQ(empty.code, 0) << empty.out;
  Json left = Json::parse(empty.out, nullptr, false);
  ASSERT_EQ(left["items"].size(), 1u) << empty.out;
  EXPECT_TRUE(left["items"][0]["endpoints"].is_null()) << empty.out;
}

}  // namespace
}  // namespace terway::lab
