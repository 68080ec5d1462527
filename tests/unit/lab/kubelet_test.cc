// The lab kubelet's pure decisions: which pods need a sandbox, and the
// status it writes for Running and Failed pods.
#include "tools/lab/cluster/kubelet.h"

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

TEST(LabKubelet, OnlyPendingPodNetworkPodsNeedASandbox) {
  k8s::Pod p;
  EXPECT_TRUE(NeedsSandbox(p));  // just created: no status yet
  p.phase = "Pending";
  EXPECT_TRUE(NeedsSandbox(p));
  p.phase = "Running";
  EXPECT_FALSE(NeedsSandbox(p));
  p.phase = "Failed";
  EXPECT_FALSE(NeedsSandbox(p));
  k8s::Pod host;
  host.host_network = true;
  EXPECT_FALSE(NeedsSandbox(host));  // no CNI for host-network pods
  k8s::Pod dying;
  dying.metadata.deletion_timestamp = "2026-01-01T00:00:00Z";
  EXPECT_FALSE(NeedsSandbox(dying));
}

TEST(LabKubelet, RunningStatusCarriesTheIpAndReadyAndClearsAFailure) {
  auto j = RunningPodStatus({"198.18.0.9"}, "198.18.0.2", "2026-01-01T00:00:00Z");
  const auto& st = j.at("status");
  EXPECT_EQ(st.at("phase"), "Running");
  EXPECT_EQ(st.at("podIP"), "198.18.0.9");
  EXPECT_EQ(st.at("podIPs"), nlohmann::json::parse(R"([{"ip": "198.18.0.9"}])"));
  EXPECT_EQ(st.at("hostIP"), "198.18.0.2");
  bool ready = false;
  for (const auto& c : st.at("conditions")) ready |= c.at("type") == "Ready" && c.at("status") == "True";
  EXPECT_TRUE(ready);
  EXPECT_TRUE(st.at("message").is_null());  // merge patch: removes an old message

  auto f = FailedPodStatus("CNI error 7: ignored", "2026-01-01T00:00:00Z");
  EXPECT_EQ(f["status"]["phase"], "Failed");
  EXPECT_EQ(f["status"]["reason"], "FailedCreatePodSandBox");
  EXPECT_EQ(f["status"]["message"], "CNI error 7: ignored");
}

// A dual-stack ADD result as terwayd answers it (both addresses with their
// gateways); the order in `ips` is the plugin's, the status's is Kubernetes'.
TEST(LabKubelet, DualStackResultGivesBothPodIpsIpv4First) {
  auto result = nlohmann::json::parse(R"({
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/x"}],
    "ips": [
      {"address": "fd00:1ab:0:1::0a/128", "gateway": "fe80::1", "interface": 0},
      {"address": "198.18.0.9/32", "gateway": "169.254.1.1", "interface": 0}
    ]})");
  auto ips = PodIpsOfCniResult(result);
  ASSERT_TRUE(ips.ok()) << ips.error().ToString();
  EXPECT_EQ(*ips, (std::vector<std::string>{"198.18.0.9", "fd00:1ab:0:1::a"}));
  const auto st = RunningPodStatus(*ips, "198.18.0.2", "2026-01-01T00:00:00Z").at("status");
  EXPECT_EQ(st.at("podIP"), "198.18.0.9");
  EXPECT_EQ(st.at("podIPs"), nlohmann::json::parse(R"([{"ip": "198.18.0.9"}, {"ip": "fd00:1ab:0:1::a"}])"));
}

TEST(LabKubelet, PodIpsTakeOnePerFamilyAndRefuseAResultWithout) {
  auto only4 = PodIpsOfCniResult(nlohmann::json::parse(R"({"ips": [{"address": "198.18.0.9/32"}]})"));
  ASSERT_TRUE(only4.ok());
  EXPECT_EQ(*only4, std::vector<std::string>{"198.18.0.9"});
  // Kubernetes allows one address per family in podIPs: the first of each.
  auto extra = PodIpsOfCniResult(nlohmann::json::parse(
      R"({"ips": [{"address": "198.18.0.9/32"}, {"address": "198.18.0.10/32"}, {"address": "fd00::7/128"},
                  {"address": "fd00::8/128"}]})"));
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(*extra, (std::vector<std::string>{"198.18.0.9", "fd00::7"}));
  auto only6 = PodIpsOfCniResult(nlohmann::json::parse(R"({"ips": [{"address": "fd00::7/128"}]})"));
  ASSERT_TRUE(only6.ok());
  EXPECT_EQ(*only6, std::vector<std::string>{"fd00::7"});
  for (const char* bad : {R"({})", R"({"ips": []})", R"({"ips": [{"gateway": "198.18.0.1"}]})",
                          R"({"ips": [{"address": "not-an-ip/32"}]})", R"([1])"}) {
    auto r = PodIpsOfCniResult(nlohmann::json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("CNI result"), std::string::npos) << r.error().message;
    }
  }
}

}  // namespace
}  // namespace terway::lab
