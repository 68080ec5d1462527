// An operator of upstream Terway swaps the image: the lab runs upstream's
// chart default eni_conf verbatim (security_groups [], vswitches {},
// ipam_type crd, vswitch_selection_policy ordered) and an exclusive-ENI node
// chosen by upstream's label k8s.aliyun.com/exclusive-mode-eni-type=eniOnly;
// a pod goes through each and they reach each other. Then the label is put
// on the shared node with kubectl: terwayd refuses to carry its shared pod
// over, and switches once the node is drained and labelled again. And the
// operator's everyday terway-cli commands of upstream (list, show, mapping,
// metadata, nodeconfig) answer with the lab's real values.
#include <algorithm>
#include <set>

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
  std::string Socket(int node) { return State()["nodes"][node]["socket"]; }
  CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), BinaryPath("terway-cli"));
    return RunCommand(args);
  }
  // `terway-cli <args> -o json` on the node, parsed; a test failure and null
  // when it did not answer JSON (mapping may exit 1 with its JSON: `code`).
  nlohmann::json CliJson(int node, std::vector<std::string> args, int code = 0) {
    args.insert(args.end(), {"--socket", Socket(node), "-o", "json"});
    auto r = Cli(args);
    EXPECT_EQ(r.exit_code, code) << r.output;
    // stderr is merged into output: the JSON document is the first '{' on.
    auto j = nlohmann::json::parse(r.output.substr(std::min(r.output.find('{'), r.output.size())), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j.is_discarded() ? nlohmann::json() : j;
  }
  static const nlohmann::json* RowOf(const nlohmann::json& mapping, const std::string& ip) {
    for (const auto& r : mapping["rows"]) {
      if (r["ip"] == ip) return &r;
    }
    return nullptr;
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

TEST_F(LabUpstreamTest, CliListShowMappingMetadataNodeconfig) {
  const std::string conf = dir_.File("eni_conf.json");
  ASSERT_TRUE(WriteFile(conf, kUpstreamChartEniConf).ok());
  auto up = Lab({"up", "--nodes", "2", "--name", world_, "--eni-config", conf, "--node-label",
                 std::string("node2:") + kLabel + "=eniOnly"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string node1 = State()["nodes"][0]["instance_id"];
  const std::string a = AddPod("default/a", "node1");
  const std::string b = AddPod("default/b", "node2");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  Enis shared = EnisOf(node1);
  auto eni_a = std::find_if(shared.secondary.begin(), shared.secondary.end(),
                            [&](const cloud::NetworkInterface& e) { return Holds(e, a); });
  ASSERT_NE(eni_a, shared.secondary.end()) << a << " is on no secondary ENI of " << node1;

  // mapping: the pod on the ENI the cloud has its address on, the warm
  // pool's addresses idle, nothing inconsistent.
  auto m1 = CliJson(0, {"mapping"});
  const auto* row = RowOf(m1, a);
  ASSERT_NE(row, nullptr) << m1.dump(2);
  EXPECT_EQ((*row)["status"], "Normal");
  EXPECT_EQ((*row)["pod"], "default/a");
  EXPECT_EQ((*row)["eni_id"], eni_a->network_interface_id);
  EXPECT_EQ((*row)["pool"], "in use");
  EXPECT_EQ(m1["errors"], 0) << m1.dump(2);
  std::string idle_ip;
  for (const auto& r : m1["rows"]) {
    if (r["status"] == "Idle" && r["eni_id"] == eni_a->network_interface_id) idle_ip = r["ip"];
  }
  ASSERT_FALSE(idle_ip.empty()) << "the shared ENI carries the warm pool: " << m1.dump(2);
  auto text = Cli({"mapping", "--socket", Socket(0)});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("STATUS"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find(a), std::string::npos) << text.output;

  // The exclusive node: the pod's address is its own ENI's primary IP; no pool.
  auto m2 = CliJson(1, {"mapping"});
  row = RowOf(m2, b);
  ASSERT_NE(row, nullptr) << m2.dump(2);
  EXPECT_EQ((*row)["status"], "Normal");
  EXPECT_EQ((*row)["pod"], "default/b");
  EXPECT_EQ((*row)["pool"], "-");

  // An address the database says is in use while no pod holds it: flagged,
  // and mapping fails as upstream's does.
  const std::string db = State()["nodes"][0]["state_db"];
  auto sql = [&](const std::string& stmt) {
    return RunCommand({"/usr/bin/sqlite3", "-cmd", ".timeout 5000", db, stmt});
  };
  auto idle_since = sql("SELECT idle_since_unix FROM ips WHERE ip='" + idle_ip + "'");
  ASSERT_EQ(idle_since.exit_code, 0) << idle_since.output;
  ASSERT_EQ(sql("UPDATE ips SET idle_since_unix=0 WHERE ip='" + idle_ip + "'").exit_code, 0);
  auto broken = CliJson(0, {"mapping"}, 1);
  row = RowOf(broken, idle_ip);
  ASSERT_NE(row, nullptr) << broken.dump(2);
  EXPECT_EQ((*row)["status"], "ERROR");
  EXPECT_NE((*row)["problem"].get<std::string>().find("no pod holds it"), std::string::npos) << row->dump();
  auto broken_text = Cli({"mapping", "--socket", Socket(0)});
  EXPECT_EQ(broken_text.exit_code, 1);
  EXPECT_NE(broken_text.output.find("error exists in mapping"), std::string::npos) << broken_text.output;
  std::string since = idle_since.output;
  since.erase(std::remove(since.begin(), since.end(), '\n'), since.end());
  ASSERT_EQ(sql("UPDATE ips SET idle_since_unix=" + since + " WHERE ip='" + idle_ip + "'").exit_code, 0);
  EXPECT_EQ(CliJson(0, {"mapping"})["errors"], 0);

  // metadata: the ENI's MAC, its primary IP and the pod's address among its
  // secondary IPs, as the (emulated) metadata service reports them.
  auto md = CliJson(0, {"metadata"});
  EXPECT_EQ(md["instance_id"], node1);
  const nlohmann::json* md_eni = nullptr;
  for (const auto& e : md["enis"]) {
    if (e["eni_id"] == eni_a->network_interface_id) md_eni = &e;
  }
  ASSERT_NE(md_eni, nullptr) << md.dump(2);
  EXPECT_EQ((*md_eni)["mac"], eni_a->mac_address);
  EXPECT_EQ((*md_eni)["primary_ipv4"], eni_a->private_ip_address);
  EXPECT_EQ((*md_eni)["terwayd"], "tracked");
  EXPECT_NE((*md_eni)["interface"], "") << "the ENI's link is on the node";
  // Every address the cloud lists on the ENI, the pod's among them.
  std::set<std::string> listed = {(*md_eni)["primary_ipv4"].get<std::string>()}, cloud_ips;
  for (const auto& ip : (*md_eni)["secondary_ipv4s"]) listed.insert(ip.get<std::string>());
  for (const auto& p : eni_a->private_ip_sets) cloud_ips.insert(p.address);
  EXPECT_EQ(listed, cloud_ips) << md_eni->dump();
  EXPECT_TRUE(listed.count(a)) << md_eni->dump();
  EXPECT_EQ(md["enis"][0]["primary"], true) << "the primary ENI first";
  auto md_text = Cli({"metadata", "--socket", Socket(0)});
  EXPECT_EQ(md_text.exit_code, 0) << md_text.output;
  EXPECT_NE(md_text.output.find(eni_a->mac_address), std::string::npos) << md_text.output;

  // nodeconfig: the operator's eni_conf as merged from the ConfigMap, and
  // what chose each node's mode.
  auto nc1 = CliJson(0, {"nodeconfig"});
  EXPECT_EQ(nc1["eni_conf"]["ipam_type"], "crd");
  EXPECT_EQ(nc1["eni_conf"]["max_pool_size"], 5);
  EXPECT_EQ(nc1["eni_conf"]["access_key"], "");
  EXPECT_NE(nc1["source"].get<std::string>().find("ConfigMap kube-system/eni-config"), std::string::npos);
  auto nc2 = CliJson(1, {"nodeconfig"});
  bool label_named = false;
  for (const auto& kv : nc2["node"]) {
    if (kv["key"] == "eni_mode") {
      EXPECT_EQ(kv["value"], "exclusive");
    }
    if (kv["key"] == "eni_mode_source") label_named = kv["value"].get<std::string>().find(kLabel) != std::string::npos;
  }
  EXPECT_TRUE(label_named) << nc2.dump(2);
  auto nc_text = Cli({"nodeconfig", "--socket", Socket(0)});
  EXPECT_NE(nc_text.output.find("max_pool_size"), std::string::npos) << nc_text.output;

  // list / show, and their errors.
  auto types = CliJson(0, {"list"});
  EXPECT_EQ(types["types"], nlohmann::json::parse(R"(["network_service", "resource_pool", "eni", "pod"])"));
  auto pods = Cli({"list", "pod", "--socket", Socket(0)});
  EXPECT_EQ(pods.exit_code, 0) << pods.output;
  EXPECT_NE(pods.output.find("* default/a"), std::string::npos) << pods.output;
  auto pod = Cli({"show", "pod", "default/a", "--socket", Socket(0)});
  EXPECT_EQ(pod.exit_code, 0) << pod.output;
  EXPECT_NE(pod.output.find(a), std::string::npos) << pod.output;
  auto svc = Cli({"show", "network_service", "--socket", Socket(0)});
  EXPECT_NE(svc.output.find(node1), std::string::npos) << svc.output;
  auto nope = Cli({"show", "pod", "default/nope", "--socket", Socket(0)});
  EXPECT_NE(nope.exit_code, 0);
  EXPECT_NE(nope.output.find("no pod named \"default/nope\""), std::string::npos) << nope.output;
  auto bad_type = Cli({"list", "factory", "--socket", Socket(0)});
  EXPECT_NE(bad_type.exit_code, 0);
  EXPECT_NE(bad_type.output.find("network_service"), std::string::npos) << bad_type.output;
  const std::string gone = dir_.File("no-terwayd.sock");
  auto down = Cli({"mapping", "--socket", gone});
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.output.find("terwayd is not answering at " + gone), std::string::npos) << down.output;
}

}  // namespace
}  // namespace terway::testing
