#include "daemon/state_rebuild.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "daemon/metrics.h"

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

// Dual stack: the API's IPv6 of a pod (status.podIPs, or Terway's
// annotation "v4,v6"), in canonical form, goes with the IPv4 reported first.
TEST(ApiPodAddresses, ThePodsIpv6GoesWithItsFirstIpv4) {
  auto status = ApiPod("status", "198.18.1.5");
  status.pod_ips = {"198.18.1.5", "fd00:0:0::5"};
  auto annotated = ApiPod("annotated", "");
  annotated.metadata.annotations["k8s.aliyun.com/pod-ips"] = "198.18.1.6,fd00::6";
  auto two = ApiPod("two", "198.18.1.7");
  two.metadata.annotations["k8s.aliyun.com/pod-ips"] = "198.18.1.8, fd00::7";
  auto v4only = ApiPod("v4only", "198.18.1.9");
  std::map<std::string, std::string> v6;
  for (const auto& a : ApiPodAddresses({status, annotated, two, v4only}, "node1")) v6[a.ip] = a.ipv6;
  EXPECT_EQ(v6, (std::map<std::string, std::string>{{"198.18.1.5", "fd00::5"},
                                                    {"198.18.1.6", "fd00::6"},
                                                    {"198.18.1.7", "fd00::7"},
                                                    {"198.18.1.8", ""},
                                                    {"198.18.1.9", ""}}));
}

std::map<std::string, Adoption> ByIp(const std::vector<Adoption>& plan) {
  std::map<std::string, Adoption> out;
  for (const auto& a : plan) out[a.ip] = a;
  return out;
}

// Each adoption carries the IPv6 its sandbox holds (the kernel's; the
// API's where the kernel shows none), and those with an IPv6 come first:
// the pool records one without as the slot's pair, which must not be an
// IPv6 a sandbox adopted later holds.
TEST(PlanRebuild, CarriesEachSandboxsIpv6AndAdoptsThoseWithOneFirst) {
  const std::vector<HostSandbox> sandboxes = {
      {"tw0000000000001", "198.18.1.1", "c-v4only", "/n/1"},               // no IPv6 anywhere
      {"tw0000000000002", "198.18.1.2", "c-kernel", "/n/2", "fd00::2"},     // the kernel's
      {"cali0123456789a", "198.18.1.3", "", "/n/3"},                      // the API's stands in
      {"tw0000000000004", "198.18.1.4", "c-spelt", "/n/4", "fd00:0::4"},  // canonical form
  };
  const std::vector<ApiPodAddress> api = {
      {"default", "upstream", "uid-up", "198.18.1.3", "fd00::3"},
      {"default", "nosandbox", "uid-ns", "198.18.1.5", "fd00::5"},
      {"default", "nosandbox-v4", "uid-n4", "198.18.1.6"},
  };
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild({}, sandboxes, api, "shared", &conflicts);
  EXPECT_TRUE(conflicts.empty()) << conflicts[0];
  auto by_ip = ByIp(plan);
  ASSERT_EQ(by_ip.size(), 6u);
  EXPECT_EQ(by_ip["198.18.1.1"].ipv6, "");
  EXPECT_EQ(by_ip["198.18.1.2"].ipv6, "fd00::2");
  EXPECT_EQ(by_ip["198.18.1.3"].ipv6, "fd00::3");
  EXPECT_EQ(by_ip["198.18.1.4"].ipv6, "fd00::4");
  EXPECT_EQ(by_ip["198.18.1.5"].ipv6, "fd00::5");
  EXPECT_EQ(by_ip["198.18.1.6"].ipv6, "");
  bool seen_without = false;
  for (const auto& a : plan) {
    if (a.ipv6.empty()) seen_without = true;
    EXPECT_FALSE(seen_without && !a.ipv6.empty()) << a.ip << " with an IPv6 after one without";
  }
}

// One IPv6 claimed twice -- two sandboxes, a sandbox and a pod, or a
// sandbox and a recorded allocation -- is reported; the first claim keeps
// it, the others are adopted without it (their IPv4s stay theirs).
TEST(PlanRebuild, AnIpv6ClaimedTwiceIsReportedAndKeptByTheFirst) {
  store::AllocationRecord known;
  known.container_id = "c-known";
  known.ip = "198.18.1.9";
  known.ipv6 = "fd00::9";
  const std::vector<HostSandbox> sandboxes = {
      {"tw0000000000001", "198.18.1.1", "c-1", "/n/1", "fd00::1"},
      {"tw0000000000002", "198.18.1.2", "c-2", "/n/2", "fd00::1"},  // the same IPv6
      {"tw0000000000003", "198.18.1.3", "c-3", "/n/3", "fd00::9"},  // the recorded pod's
  };
  const std::vector<ApiPodAddress> api = {{"default", "nosandbox", "uid-ns", "198.18.1.5", "fd00::1"}};
  std::vector<std::string> conflicts;
  auto by_ip = ByIp(PlanRebuild({known}, sandboxes, api, "shared", &conflicts));
  ASSERT_EQ(by_ip.size(), 4u);
  EXPECT_EQ(by_ip["198.18.1.1"].ipv6, "fd00::1");
  EXPECT_EQ(by_ip["198.18.1.2"].ipv6, "");
  EXPECT_EQ(by_ip["198.18.1.3"].ipv6, "");
  EXPECT_EQ(by_ip["198.18.1.5"].ipv6, "");
  ASSERT_EQ(conflicts.size(), 3u);
  EXPECT_NE(conflicts[0].find("fd00::1"), std::string::npos) << conflicts[0];
  EXPECT_NE(conflicts[0].find("tw0000000000002"), std::string::npos) << conflicts[0];
  EXPECT_NE(conflicts[1].find("c-known"), std::string::npos) << conflicts[1];
  EXPECT_NE(conflicts[2].find("default/nosandbox"), std::string::npos) << conflicts[2];
}

// Kernel and API disagree on a pod's IPv6: reported; the sandbox's is
// adopted (it is what the pod uses).
TEST(PlanRebuild, TheKernelOutranksTheApiOnAPodsIpv6) {
  const std::vector<HostSandbox> sandboxes = {{"tw0000000000001", "198.18.1.1", "c-1", "/n/1", "fd00::1"}};
  const std::vector<ApiPodAddress> api = {{"default", "web", "uid-web", "198.18.1.1", "fd00::77"}};
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild({}, sandboxes, api, "shared", &conflicts);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].ipv6, "fd00::1");
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_NE(conflicts[0].find("fd00::77"), std::string::npos) << conflicts[0];
  EXPECT_NE(conflicts[0].find("default/web"), std::string::npos) << conflicts[0];
}

// Records each Adopt; refuses the IPv6s it is told to (as the pool does one
// another pod holds).
class RecordingSource : public ipam::PodAddressSource {
 public:
  std::set<std::string> refused_ipv6;
  std::vector<std::string> calls;  // "ip/ipv6"
  void Start() override {}
  void Stop() override {}
  Result<ipam::IpAllocation> Allocate(const ipam::PodIdentity&, std::chrono::milliseconds) override {
    return MakeError(ErrorCode::kInternal, "not in this test");
  }
  Status Release(const std::string&) override { return Ok(); }
  Result<std::optional<ipam::IpAllocation>> Get(const std::string&) override {
    return std::optional<ipam::IpAllocation>();
  }
  Result<ipam::IpAllocation> Adopt(const ipam::PodIdentity&, const std::string& ip, const std::string& ipv6) override {
    calls.push_back(ip + "/" + ipv6);
    if (refused_ipv6.count(ipv6)) return Errorf(ErrorCode::kConflict, "IPv6 {} is held by container c-x", ipv6);
    ipam::IpAllocation a;
    a.ip = ip;
    a.ipv6 = ipv6.empty() ? "fd00::99" : ipv6;
    return a;
  }
  Status Reconcile() override { return Ok(); }
  int MaxPodCount() const override { return 10; }
  ipam::PoolStats Stats() const override { return {}; }
};

// Adoptions with an IPv6 first; one whose IPv6 is refused keeps its IPv4,
// adopted alone before those that never had an IPv6.
TEST(AdoptPlan, AnAdoptionRefusedForItsIpv6KeepsItsIpv4) {
  const std::vector<HostSandbox> sandboxes = {
      {"tw0000000000001", "198.18.1.1", "c-1", "/n/1"},
      {"tw0000000000002", "198.18.1.2", "c-2", "/n/2", "fd00::2"},
      {"tw0000000000003", "198.18.1.3", "c-3", "/n/3", "fd00::3"},
  };
  std::vector<std::string> conflicts;
  auto plan = PlanRebuild({}, sandboxes, {}, "shared", &conflicts);
  RecordingSource source;
  source.refused_ipv6 = {"fd00::2"};
  Metrics metrics;
  AdoptPlan(&source, plan, &metrics);
  EXPECT_EQ(source.calls, (std::vector<std::string>{"198.18.1.2/fd00::2", "198.18.1.3/fd00::3", "198.18.1.2/",
                                                    "198.18.1.1/"}));
  EXPECT_EQ(metrics.Get("terway_state_rebuild_adoptions_total", {{"source", "kernel"}, {"result", "ok"}}), 3);
  EXPECT_EQ(metrics.Get("terway_state_rebuild_adoptions_total", {{"source", "kernel"}, {"result", "failed"}}), 0);
}

}  // namespace
}  // namespace terway::daemon
