// An operator of upstream Terway swaps the image: the lab runs upstream's
// chart default eni_conf verbatim (security_groups [], vswitches {},
// ipam_type crd, vswitch_selection_policy ordered) and an exclusive-ENI node
// chosen by upstream's label k8s.aliyun.com/exclusive-mode-eni-type=eniOnly;
// a pod goes through each and they reach each other. Then the label is put
// on the shared node with kubectl: terwayd refuses to carry its shared pod
// over, and switches once the node is drained and labelled again.
#include <algorithm>

#include "lab_fixture.h"

namespace terway::testing {
namespace {

// charts/terway/templates/terwayd/configmap.yaml rendered with the chart's
// default values.
constexpr const char* kUpstreamChartEniConf = R"({
  "version": "1",
  "max_pool_size": 5,
  "min_pool_size": 0,
  "enable_eni_trunking": false,
  "access_key": "",
  "access_secret": "",
  "vswitches":{},
  "service_cidr": "10.96.0.0/12",
  "security_groups":[],
  "ip_stack": "ipv4",
  "ipam_type": "crd",
  "vswitch_selection_policy": "ordered"
}
)";

constexpr const char* kLabel = "k8s.aliyun.com/exclusive-mode-eni-type";

class LabUpstreamTest : public LabTest {
 protected:
  // The instance's ENIs other than its primary, and the primary's groups.
  struct Enis {
    std::vector<cloud::NetworkInterface> secondary;
    std::vector<std::string> primary_groups;
  };
  Enis EnisOf(const std::string& instance) {
    Enis out;
    for (const auto& e : DescribeEnis(instance)) {
      if (e.type == "Primary") {
        out.primary_groups = e.security_group_ids;
      } else {
        out.secondary.push_back(e);
      }
    }
    return out;
  }
  static bool Holds(const cloud::NetworkInterface& e, const std::string& ip) {
    return std::any_of(e.private_ip_sets.begin(), e.private_ip_sets.end(),
                       [&](const cloud::PrivateIp& p) { return p.address == ip; });
  }
};

TEST_F(LabUpstreamTest, ChartDefaultEniConfigAndExclusiveLabel) {
  const std::string conf = dir_.File("eni_conf.json");
  ASSERT_TRUE(WriteFile(conf, kUpstreamChartEniConf).ok());
  auto up = Lab({"up", "--nodes", "2", "--name", world_, "--eni-config", conf, "--node-label",
                 std::string("node2:") + kLabel + "=eniOnly"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string node1 = State()["nodes"][0]["instance_id"];
  const std::string node2 = State()["nodes"][1]["instance_id"];

  // The eni_conf the nodes run is the operator's, plus the emulator's endpoints.
  auto served = nlohmann::json::parse(KubectlGet("configmap", "eni-config", "{.data.eni_conf}", "kube-system"),
                                      nullptr, false);
  ASSERT_TRUE(served.is_object());
  EXPECT_EQ(served["security_groups"], nlohmann::json::array());
  EXPECT_EQ(served["ipam_type"], "crd");
  EXPECT_EQ(served["ecs_endpoint"], "http://100.100.0.1");

  const std::string a = AddPod("default/a", "node1");
  const std::string b = AddPod("default/b", "node2");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());

  // node1, shared ENI: the pod holds one address of a secondary ENI, which
  // joined the primary ENI's security groups (eni_conf lists none).
  Enis shared = EnisOf(node1);
  ASSERT_FALSE(shared.primary_groups.empty());
  auto eni_a = std::find_if(shared.secondary.begin(), shared.secondary.end(),
                            [&](const cloud::NetworkInterface& e) { return Holds(e, a); });
  ASSERT_NE(eni_a, shared.secondary.end()) << a << " is on no secondary ENI of " << node1;
  EXPECT_EQ(eni_a->security_group_ids, shared.primary_groups);
  EXPECT_GT(eni_a->private_ip_sets.size(), 1u) << "a shared ENI carries the warm pool too";

  // node2, exclusive ENI by upstream's label: the pod's address is the
  // primary IP of an ENI of its own, in the primary ENI's groups.
  Enis exclusive = EnisOf(node2);
  ASSERT_EQ(exclusive.secondary.size(), 1u) << "exclusive ENI keeps no pool";
  EXPECT_EQ(exclusive.secondary[0].private_ip_address, b);
  EXPECT_EQ(exclusive.secondary[0].private_ip_sets.size(), 1u);
  EXPECT_EQ(exclusive.secondary[0].security_group_ids, exclusive.primary_groups);

  auto ping = Exec("default/a", {"ping", "-c", "1", "-W", "2", b});
  EXPECT_EQ(ping.exit_code, 0) << ping.output;

  const std::string log1 = ReadFile(lab_dir_ + "/nodes/node1/terwayd.log");
  const std::string log2 = ReadFile(lab_dir_ + "/nodes/node2/terwayd.log");
  EXPECT_NE(log2.find(std::string("eni mode exclusive (node label ") + kLabel + "=eniOnly)"), std::string::npos)
      << log2;
  EXPECT_NE(log1.find("eni mode shared"), std::string::npos) << log1;
  for (const auto* log : {&log1, &log2}) {
    EXPECT_NE(log->find("eni_conf key \"ipam_type\" is \"crd\""), std::string::npos) << *log;
    EXPECT_NE(log->find("source=primary_eni"), std::string::npos) << *log;
  }

  // The label put on node1 with kubectl, with a shared pod running there:
  // its terwayd refuses the switch and says how to proceed.
  auto label = Kubectl({"label", "node", "node1", std::string(kLabel) + "=eniOnly"});
  ASSERT_EQ(label.exit_code, 0) << label.output;
  ASSERT_EQ(Lab({"terwayd", "kill", "node1"}).exit_code, 0);
  auto refused = Lab({"terwayd", "start", "node1"});
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_NE(refused.output.find("runs 1 pod(s) set up with shared ENI"), std::string::npos) << refused.output;
  // Drain first (with the label off again), then label: the node switches.
  ASSERT_EQ(Kubectl({"label", "node", "node1", std::string(kLabel) + "-"}).exit_code, 0);
  auto back = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(back.exit_code, 0) << back.output;
  auto del = Lab({"pod", "del", "default/a"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  ASSERT_EQ(Kubectl({"label", "node", "node1", std::string(kLabel) + "=eniOnly"}).exit_code, 0);
  ASSERT_EQ(Lab({"terwayd", "kill", "node1"}).exit_code, 0);
  auto switched = Lab({"terwayd", "start", "node1"});
  ASSERT_EQ(switched.exit_code, 0) << switched.output;
  const std::string c = AddPod("default/c", "node1");
  ASSERT_FALSE(c.empty());
  bool own_eni = false;
  for (const auto& e : EnisOf(node1).secondary) own_eni = own_eni || e.private_ip_address == c;
  EXPECT_TRUE(own_eni) << c << " is not the primary IP of an ENI of its own";
}

}  // namespace
}  // namespace terway::testing
