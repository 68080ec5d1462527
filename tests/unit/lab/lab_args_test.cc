// terway-lab's command line: every command, and the errors a user meets.
#include "tools/lab/cluster/lab_args.h"
#include "tools/lab/cluster/lab.h"

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

Result<LabCommand> Parse(std::vector<std::string> args) { return ParseLabArgs(args, "/run/x"); }

TEST(LabArgs, UpWithTypesNameAndHosts) {
  auto c = Parse({"--lab", "/tmp/l1", "up", "--nodes", "3", "--instance-type",
                  "ecs.vpcsim.tiny,ecs.g7.large", "--name=demo1", "--vpc-hosts", "0"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->lab_dir, "/tmp/l1");
  const auto& up = std::get<UpArgs>(c->action);
  EXPECT_EQ(up.nodes, 3);
  EXPECT_EQ(up.name, "demo1");
  EXPECT_EQ(up.vpc_hosts, 0);
  ASSERT_EQ(up.instance_types.size(), 2u);
  EXPECT_EQ(InstanceTypeOfNode(up.instance_types, 0), "ecs.vpcsim.tiny");
  EXPECT_EQ(InstanceTypeOfNode(up.instance_types, 1), "ecs.g7.large");
  EXPECT_EQ(InstanceTypeOfNode(up.instance_types, 2), "ecs.g7.large") << "the last type repeats";
  EXPECT_EQ(InstanceTypeOfNode({}, 0), kDefaultInstanceType);
}

TEST(LabArgs, UpEniipVirtualTypePerClusterAndPerNodeInTerwaydsSpellings) {
  auto c = Parse({"up", "--nodes", "3", "--eniip-virtual-type", "ipvlan", "--node-eniip-virtual-type",
                  "node2=DATAPATHV2", "--node-eniip-virtual-type=node3=Veth"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  const auto& up = std::get<UpArgs>(c->action);
  EXPECT_EQ(up.eniip_virtual_type, "IPVlan");
  EXPECT_EQ(VirtualTypeOfNode(up, "node1"), "IPVlan") << "the cluster's";
  EXPECT_EQ(VirtualTypeOfNode(up, "node2"), "datapathv2");
  EXPECT_EQ(VirtualTypeOfNode(up, "node3"), "veth");
  EXPECT_TRUE(IsEbpfVirtualType("IPVlan"));
  EXPECT_TRUE(IsEbpfVirtualType("datapathv2"));
  EXPECT_FALSE(IsEbpfVirtualType("veth"));
  auto d = Parse({"up", "--nodes", "1"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<UpArgs>(d->action).eniip_virtual_type, "veth") << "upstream's default";
}

TEST(LabArgs, BadEniipVirtualTypeNamesTheFlagAndTheAcceptedValues) {
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--eniip-virtual-type", "ebpf"}, {"--eniip-virtual-type", ""},
        {"--node-eniip-virtual-type", "node1=macvlan"}, {"--node-eniip-virtual-type", "node1"},
        {"--node-eniip-virtual-type", "=veth"}, {"--eniip-virtual-type"}}) {
    std::vector<std::string> args = {"up", "--nodes", "2"};
    args.insert(args.end(), bad.begin(), bad.end());
    auto c = Parse(args);
    ASSERT_FALSE(c.ok()) << bad[0];
    EXPECT_NE(c.error().ToString().find(bad[0]), std::string::npos) << c.error().ToString();
    if (bad.size() > 1) {
      EXPECT_NE(c.error().ToString().find("veth, IPVlan or datapathv2"), std::string::npos) << c.error().ToString();
    }
  }
}

TEST(LabArgs, UpIpStackIpv4ByDefaultOrDual) {
  auto d = Parse({"up", "--nodes", "1"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(std::get<UpArgs>(d->action).ip_stack, "ipv4") << "upstream's default";
  for (const std::vector<std::string>& flag :
       {std::vector<std::string>{"--ip-stack", "dual"}, std::vector<std::string>{"--ip-stack=dual"}}) {
    std::vector<std::string> args = {"up", "--nodes", "2"};
    args.insert(args.end(), flag.begin(), flag.end());
    auto c = Parse(args);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    EXPECT_EQ(std::get<UpArgs>(c->action).ip_stack, "dual");
  }
  auto v4 = Parse({"up", "--nodes", "1", "--ip-stack", "ipv4"});
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(std::get<UpArgs>(v4->action).ip_stack, "ipv4");
}

TEST(LabArgs, BadIpStackNamesTheFlagAndTheAcceptedValues) {
  // ipv6 (IPv6 only) is upstream's too, but not offered until terwayd makes it
  // real; the spellings are eni_conf's, exactly.
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--ip-stack", "ipv6"}, {"--ip-stack", "Dual"}, {"--ip-stack", "dualstack"},
        {"--ip-stack", ""}, {"--ip-stack=v4"}}) {
    std::vector<std::string> args = {"up", "--nodes", "1"};
    args.insert(args.end(), bad.begin(), bad.end());
    auto c = Parse(args);
    ASSERT_FALSE(c.ok()) << bad.back();
    EXPECT_NE(c.error().ToString().find("up --ip-stack"), std::string::npos) << c.error().ToString();
    EXPECT_NE(c.error().ToString().find("ipv4 or dual"), std::string::npos) << c.error().ToString();
  }
  auto missing = Parse({"up", "--nodes", "1", "--ip-stack"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("--ip-stack needs a value"), std::string::npos)
      << missing.error().ToString();
}

// The cluster's eni_conf (ConfigMap eni-config and every node's eni.json)
// carries upstream's `ip_stack` when the lab is dual stack.
TEST(LabEniConfIpStack, DualWritesUpstreamsKeyAndIpv4LeavesItOut) {
  LabState s;
  s.world = "lab1";
  s.zone = "cn-hangzhou-h";
  s.vswitch = "vsw-lab1a";
  EXPECT_FALSE(LabEniConf(s).contains("ip_stack")) << "IPv4 only is upstream's default: " << LabEniConf(s).dump();
  s.ip_stack = "dual";
  EXPECT_EQ(LabEniConf(s).value("ip_stack", ""), "dual") << LabEniConf(s).dump();
  EXPECT_EQ(LabEniConf(s).at("vswitches"), nlohmann::json::parse(R"({"cn-hangzhou-h": ["vsw-lab1a"]})"));
  // An operator's eni_conf gains it when it has none (up refuses one that
  // disagrees with --ip-stack).
  s.operator_eni_conf = R"({"version": "1", "max_pool_size": 2})";
  EXPECT_EQ(LabEniConf(s).value("ip_stack", ""), "dual") << LabEniConf(s).dump();
  EXPECT_EQ(LabEniConf(s).value("max_pool_size", 0), 2);
  s.ip_stack = "ipv4";
  EXPECT_FALSE(LabEniConf(s).contains("ip_stack")) << LabEniConf(s).dump();
}

TEST(LabArgs, DefaultLabDirIsTheCallersDefault) {
  auto c = Parse({"status"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->lab_dir, "/run/x");
  EXPECT_TRUE(std::holds_alternative<StatusArgs>(c->action));
  auto d = ParseLabArgs({"down"});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->lab_dir, kDefaultLabDir);
}

TEST(LabArgs, UpCniTimeoutDefaultsToTheKubeletsTwoMinutes) {
  auto d = Parse({"up", "--nodes", "1"});
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_EQ(std::get<UpArgs>(d->action).cni_timeout_seconds, 120);
  auto c = Parse({"up", "--nodes", "1", "--cni-timeout=5"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(std::get<UpArgs>(c->action).cni_timeout_seconds, 5);
}

TEST(LabArgs, UpRefusesBadInput) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"up"}, "number of nodes"},
      {{"up", "--nodes", "0"}, "from 1 to 16"},
      {{"up", "--nodes", "2x"}, "got '2x'"},
      {{"up", "--nodes"}, "needs a value"},
      {{"up", "--nodes", "1", "--name", "toolongname"}, "1-8 characters"},
      {{"up", "--nodes", "1", "--name", "Bad"}, "starting with a letter"},
      {{"up", "--nodes", "1", "--instance-type", "g7.large"}, "not an instance type"},
      {{"up", "--nodes", "1", "--bogus"}, "unknown argument '--bogus'"},
      {{"up", "--nodes", "1", "--cni-timeout", "0"}, "--cni-timeout wants a number from 1 to 600"},
      {{"up", "--nodes", "1", "--cni-timeout", "2m"}, "got '2m'"},
      {{"--lab", "relative", "up", "--nodes", "1"}, "absolute"},
      {{"--lab", "/", "up", "--nodes", "1"}, "root directory"},
      {{}, "no command"},
      {{"fly"}, "unknown command 'fly'"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.args);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.error().ToString().find(c.says), std::string::npos) << r.error().ToString();
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(LabArgs, PodAddWithLabelsAnnotationsAndVersion) {
  auto c = Parse({"pod", "add", "team-a/web-1", "--node", "node2", "--labels",
                  "app=web,example.com/tier=front", "--annotations=k8s.aliyun.com/pod-ips=,x=1",
                  "--cni-version", "0.4.0"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  const auto& add = std::get<PodAddArgs>(c->action);
  EXPECT_EQ(add.pod.ns, "team-a");
  EXPECT_EQ(add.pod.name, "web-1");
  EXPECT_EQ(add.node, "node2");
  EXPECT_EQ(add.labels.at("app"), "web");
  EXPECT_EQ(add.labels.at("example.com/tier"), "front");
  EXPECT_EQ(add.annotations.at("k8s.aliyun.com/pod-ips"), "");
  EXPECT_EQ(add.cni_version, "0.4.0");
}

TEST(LabArgs, PodAddRefusesBadInput) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"pod", "add", "web", "--node", "1"}, "NAMESPACE/NAME"},
      {{"pod", "add", "a/b/c", "--node", "1"}, "NAMESPACE/NAME"},
      {{"pod", "add", "Default/Web", "--node", "1"}, "lowercase DNS labels"},
      {{"pod", "add", "d/web"}, "give the node"},
      {{"pod", "add", "--node", "1"}, "name the pod"},
      {{"pod", "add", "d/w", "--node", "1", "--labels", "app"}, "'app' is not key=value"},
      {{"pod", "add", "d/w", "--node", "1", "--labels", "a=1,a=2"}, "given twice"},
      {{"pod", "add", "d/w", "--node", "1", "--labels", "bad key=1"}, "[prefix/]name"},
      {{"pod", "add", "d/w", "--node", "1", "--labels", "-x.com/a=1"}, "bad prefix"},
      {{"pod", "add", "d/w", "--node", "1", "--cni-version", "0.2.0"}, "not one terway speaks"},
      {{"pod", "add", "d/w", "d/x", "--node", "1"}, "unexpected argument 'd/x'"},
      {{"pod"}, "add, del or check"},
      {{"pod", "move", "d/w"}, "unknown subcommand 'move'"},
      {{"pod", "del"}, "name the pod"},
      {{"pod", "del", "d/w", "extra"}, "unexpected argument 'extra'"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.args);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_NE(r.error().ToString().find(c.says), std::string::npos) << r.error().ToString();
  }
}

TEST(LabArgs, PodDelCheckAndExec) {
  auto del = Parse({"pod", "del", "d/w"});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(std::get<PodDelArgs>(del->action).pod.ToString(), "d/w");
  auto check = Parse({"pod", "check", "d/w"});
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(std::get<PodCheckArgs>(check->action).pod.ToString(), "d/w");
  auto ex = Parse({"exec", "d/w", "--", "ping", "-c", "1", "--", "x"});
  ASSERT_TRUE(ex.ok());
  const auto& e = std::get<ExecArgs>(ex->action);
  EXPECT_EQ(e.pod.ToString(), "d/w");
  EXPECT_EQ(e.command, (std::vector<std::string>{"ping", "-c", "1", "--", "x"}))
      << "everything after the first -- belongs to the command";
  EXPECT_FALSE(Parse({"exec", "d/w", "ping"}).ok()) << "the -- is required";
  EXPECT_FALSE(Parse({"exec", "d/w", "--"}).ok()) << "a command is required";
}

TEST(LabArgs, HelpAndStatusDownTakeNoArguments) {
  EXPECT_TRUE(std::holds_alternative<HelpArgs>(Parse({"--help"})->action));
  EXPECT_TRUE(std::holds_alternative<DownArgs>(Parse({"down"})->action));
  EXPECT_FALSE(Parse({"down", "now"}).ok());
  EXPECT_NE(LabUsage().find("pod add NS/NAME"), std::string::npos);
}

TEST(LabArgs, EniModesPerNodeAndTerwaydKillStart) {
  auto c = Parse({"up", "--nodes", "3", "--eni-mode", "shared,exclusive"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  const auto& up = std::get<UpArgs>(c->action);
  EXPECT_EQ(EniModeOfNode(up.eni_modes, 0), "shared");
  EXPECT_EQ(EniModeOfNode(up.eni_modes, 2), "exclusive") << "the last mode repeats";
  EXPECT_EQ(EniModeOfNode({}, 0), "shared");
  auto bad = Parse({"up", "--nodes", "1", "--eni-mode", "trunk"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("shared or exclusive"), std::string::npos) << bad.error().message;

  auto kill = Parse({"terwayd", "kill", "node2"});
  ASSERT_TRUE(kill.ok()) << kill.error().ToString();
  EXPECT_FALSE(std::get<TerwaydArgs>(kill->action).start);
  EXPECT_EQ(std::get<TerwaydArgs>(kill->action).node, "node2");
  auto start = Parse({"terwayd", "start", "1"});
  ASSERT_TRUE(start.ok());
  EXPECT_TRUE(std::get<TerwaydArgs>(start->action).start);
  for (std::vector<std::string> args : {std::vector<std::string>{"terwayd"}, {"terwayd", "restart", "node1"},
                                        {"terwayd", "kill"}, {"terwayd", "kill", "node1", "extra"}}) {
    EXPECT_FALSE(Parse(args).ok()) << args.size();
  }
}

TEST(LabArgs, VpcsimKillStart) {
  auto kill = Parse({"vpcsim", "kill"});
  ASSERT_TRUE(kill.ok()) << kill.error().ToString();
  EXPECT_FALSE(std::get<VpcsimArgs>(kill->action).start);
  auto start = Parse({"vpcsim", "start"});
  ASSERT_TRUE(start.ok()) << start.error().ToString();
  EXPECT_TRUE(std::get<VpcsimArgs>(start->action).start);
  for (std::vector<std::string> args : {std::vector<std::string>{"vpcsim"}, {"vpcsim", "restart"},
                                        {"vpcsim", "kill", "node1"}}) {
    EXPECT_FALSE(Parse(args).ok()) << args.size();
  }
  EXPECT_NE(LabUsage().find("vpcsim kill"), std::string::npos);
}

TEST(LabRuntimeBandwidth, KubernetesAnnotationsBecomeRuntimeConfigAsContainerdSendsIt) {
  auto none = RuntimeBandwidth({{"k8s.aliyun.com/ingress-bandwidth", "1m"}});  // legacy: terway's to read
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto bw = RuntimeBandwidth({{"kubernetes.io/ingress-bandwidth", "10M"}, {"kubernetes.io/egress-bandwidth", "1Gi"}});
  ASSERT_TRUE(bw.ok() && bw->has_value()) << (bw.ok() ? "" : bw.error().ToString());
  EXPECT_EQ((**bw)["ingressRate"], 10000000);
  EXPECT_EQ((**bw)["ingressBurst"], 2147483647);
  EXPECT_EQ((**bw)["egressRate"], 1073741824);
  auto bad = RuntimeBandwidth({{"kubernetes.io/egress-bandwidth", "fast"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("kubernetes.io/egress-bandwidth"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace terway::lab
