#include "daemon/state_rebuild.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

// Upstream Terway names a pod's host veth "cali" + 11 hex digits of
// sha1("<namespace>.<name>" + ifname, eth0 counting as ""). Expected values
// computed independently (Python's hashlib).
TEST(UpstreamHostVethName, MatchesUpstreamNaming) {
  EXPECT_EQ(UpstreamHostVethName("default", "nginx", "eth0"), "calic440f455693");
  EXPECT_EQ(UpstreamHostVethName("default", "web", "eth0"), "cali68caf03a5f4");
  EXPECT_EQ(UpstreamHostVethName("kube-system", "coredns-7c9f5b8d4-x2x9l", "veth1"), "calid2f53dacd9b");
}

k8s::Pod ApiPod(const std::string& name, const std::string& ip, const std::string& phase = "Running") {
  k8s::Pod p;
  p.metadata.namespace_ = "default";
  p.metadata.name = name;
  p.metadata.uid = "uid-" + name;
  p.node_name = "node1";
  p.phase = phase;
  p.pod_ip = ip;
  return p;
}

TEST(ApiPodAddresses, LivePodsOfThisNodeWithEveryAddressTheyReport) {
  auto annotated = ApiPod("a", "");
  annotated.metadata.annotations["k8s.aliyun.com/pod-ips"] = "198.18.1.5, 198.18.1.6";
  auto finished = ApiPod("done", "198.18.1.7", "Succeeded");
  auto failed = ApiPod("failed", "198.18.1.8", "Failed");
  auto other = ApiPod("other", "198.18.1.9");
  other.node_name = "node2";
  auto host = ApiPod("host", "198.18.0.2");
  host.host_network = true;
  auto pending = ApiPod("pending", "198.18.1.10", "Pending");
  pending.pod_ips = {"198.18.1.10", "fd00::1"};
  auto got = ApiPodAddresses({annotated, finished, failed, other, host, pending}, "node1");
  std::set<std::string> ips;
  for (const auto& a : got) ips.insert(a.name + "=" + a.ip);
  EXPECT_EQ(ips, (std::set<std::string>{"a=198.18.1.5", "a=198.18.1.6", "pending=198.18.1.10"}));
}

TEST(PlanRebuild, AdoptsWhatTheStoreLacksFromKernelAndApi) {
  store::AllocationRecord known;
  known.container_id = "c-known";
  known.ip = "198.18.1.1";
  const std::vector<HostSandbox> sandboxes = {
      {"tw0000000000001", "198.18.1.1", "c-known", "/run/netns/k"},       // recorded: nothing to do
      {"tw0000000000002", "198.18.1.2", "c-ours", "/run/netns/o"},        // ours, record lost
      {"cali0123456789a", "198.18.1.3", "", "/run/netns/u"},              // upstream Terway's wiring
      {"tw0000000000004", "198.18.1.4", "c-podman", "/run/netns/p"},      // a sandbox the API never had
  };
  const std::vector<ApiPodAddress> api = {
      {"default", "ours", "uid-ours", "198.18.1.2"},
      {"default", "upstream", "uid-up", "198.18.1.3"},
      {"default", "nosandbox", "uid-ns", "198.18.1.5"},  // a pod whose wiring was not found
      {"default", "known", "uid-k", "198.18.1.1"},
  };
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild({known}, sandboxes, api, "shared", &conflicts);
  EXPECT_TRUE(conflicts.empty());
  std::map<std::string, Adoption> by_ip;
  for (const auto& a : plan) by_ip[a.ip] = a;
  ASSERT_EQ(by_ip.size(), 4u);
  EXPECT_FALSE(by_ip.count("198.18.1.1"));

  const auto& ours = by_ip["198.18.1.2"].pod;
  EXPECT_EQ(ours.container_id, "c-ours") << "the runtime's id from the alias: its DEL finds the record";
  EXPECT_EQ(ours.name, "ours");
  EXPECT_EQ(ours.origin, store::kOriginApi);
  EXPECT_EQ(ours.datapath_mode, "shared");
  EXPECT_EQ(ours.netns, "/run/netns/o");
  EXPECT_TRUE(ours.host_veth.empty());

  const auto& up = by_ip["198.18.1.3"].pod;
  EXPECT_EQ(up.container_id, RebuiltContainerId("198.18.1.3"));
  EXPECT_EQ(up.origin, store::kOriginRebuilt);
  EXPECT_EQ(up.host_veth, "cali0123456789a");
  EXPECT_EQ(up.datapath_mode, "") << "never verified or rebuilt our way";
  EXPECT_EQ(up.name, "upstream");

  const auto& podman = by_ip["198.18.1.4"].pod;
  EXPECT_EQ(podman.origin, store::kOriginRuntime) << "kept while its namespace lives";
  EXPECT_EQ(by_ip["198.18.1.4"].found_by, "kernel");

  const auto& nosandbox = by_ip["198.18.1.5"];
  EXPECT_EQ(nosandbox.pod.origin, store::kOriginRebuilt);
  EXPECT_EQ(nosandbox.pod.netns, "");
  EXPECT_EQ(nosandbox.found_by, "api");
}

TEST(PlanRebuild, AnAddressInTwoSandboxesIsReportedAndAdoptedOnce) {
  const std::vector<HostSandbox> sandboxes = {{"tw0000000000001", "198.18.1.2", "c-1", "/n/1"},
                                              {"tw0000000000002", "198.18.1.2", "c-2", "/n/2"}};
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild({}, sandboxes, {}, "shared", &conflicts);
  EXPECT_EQ(plan.size(), 1u);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_NE(conflicts[0].find("198.18.1.2"), std::string::npos);
}

}  // namespace
}  // namespace terway::daemon
