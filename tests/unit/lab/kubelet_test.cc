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
  auto j = RunningPodStatus("198.18.0.9", "198.18.0.2", "2026-01-01T00:00:00Z");
  const auto& st = j.at("status");
  EXPECT_EQ(st.at("phase"), "Running");
  EXPECT_EQ(st.at("podIP"), "198.18.0.9");
  EXPECT_EQ(st.at("podIPs")[0].at("ip"), "198.18.0.9");
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

}  // namespace
}  // namespace terway::lab
