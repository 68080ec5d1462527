// The pure parts of terwayd's Kubernetes view: what a Pod object tells the
// pool, which pods garbage collection must keep, when SufficientIP turns.
#include "daemon/kube_node.h"

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

k8s::Pod MakePod(const std::string& ns, const std::string& name, const std::string& uid) {
  k8s::Pod p;
  p.metadata.namespace_ = ns;
  p.metadata.name = name;
  p.metadata.uid = uid;
  return p;
}

TEST(KubeNode, MetadataTakesTheControllersKindLabelsAndAnnotations) {
  k8s::Pod p = MakePod("default", "db-0", "u1");
  p.metadata.labels["app"] = "db";
  p.metadata.annotations["k8s.aliyun.com/pod-ip-reservation"] = "true";
  p.metadata.owner_references.push_back({"v1", "ConfigMap", "x", "u2", false});
  p.metadata.owner_references.push_back({"apps/v1", "StatefulSet", "db", "u3", true});
  PodMetadata m = PodMetadataFromPod(p);
  EXPECT_EQ(m.uid, "u1");
  EXPECT_EQ(m.owner_kind, "StatefulSet");  // the controller, not the first reference
  EXPECT_EQ(m.labels.at("app"), "db");
  EXPECT_EQ(m.annotations.at("k8s.aliyun.com/pod-ip-reservation"), "true");

  k8s::Pod bare = MakePod("default", "b", "u4");
  EXPECT_EQ(PodMetadataFromPod(bare).owner_kind, "");
  bare.metadata.owner_references.push_back({"apps/v1", "ReplicaSet", "rs", "u5", false});
  EXPECT_EQ(PodMetadataFromPod(bare).owner_kind, "ReplicaSet");  // no controller: the first
}

TEST(KubeNode, IgnoreLabelMustBeExactlyTrue) {
  EXPECT_TRUE(IgnoredByTerway({{kIgnoreByTerwayLabel, "true"}}));
  EXPECT_FALSE(IgnoredByTerway({{kIgnoreByTerwayLabel, "True"}}));
  EXPECT_FALSE(IgnoredByTerway({{kIgnoreByTerwayLabel, ""}}));
  EXPECT_FALSE(IgnoredByTerway({{"app", "true"}}));
}

TEST(KubeNode, LivePodsAreTheCacheAndTheProtectedOnesOnce) {
  std::vector<k8s::Pod> cached = {MakePod("a", "p1", "u1"), MakePod("b", "p2", "u2")};
  auto live = MergeLivePods(cached, {{"a", "p1"}, {"c", "new"}});
  ASSERT_EQ(live.size(), 3u);
  EXPECT_EQ(live[0].uid, "u1");  // the cached copy, with its uid, wins
  EXPECT_EQ(live[2].namespace_, "c");
  EXPECT_EQ(live[2].name, "new");
  EXPECT_EQ(live[2].uid, "");  // unknown: matched by name alone
  EXPECT_TRUE(MergeLivePods({}, {}).empty());
}

TEST(KubeNode, OnlyExhaustionMakesTheNodeInsufficient) {
  EXPECT_TRUE(PoolCannotGrow(Error(ErrorCode::kExhausted, "vSwitch vsw-a has no free IP")));
  EXPECT_FALSE(PoolCannotGrow(Error(ErrorCode::kTimeout, "Throttling")));
  EXPECT_FALSE(PoolCannotGrow(Error(ErrorCode::kKernel, "veth")));
}

TEST(KubeNode, BandwidthAnnotationChangesAreSeenOthersIgnored) {
  k8s::Pod a = MakePod("x", "p", "u1");
  k8s::Pod b = a;
  b.metadata.annotations["note"] = "x";
  b.phase = "Running";
  EXPECT_FALSE(BandwidthAnnotationsChanged(a, b));
  b.metadata.annotations["kubernetes.io/ingress-bandwidth"] = "10M";
  EXPECT_TRUE(BandwidthAnnotationsChanged(a, b));  // added
  k8s::Pod c = b;
  c.metadata.annotations["kubernetes.io/ingress-bandwidth"] = "20M";
  EXPECT_TRUE(BandwidthAnnotationsChanged(b, c));  // changed
  EXPECT_TRUE(BandwidthAnnotationsChanged(c, a));  // removed
  k8s::Pod d = a;
  d.metadata.annotations["k8s.aliyun.com/egress-bandwidth"] = "1m";
  EXPECT_TRUE(BandwidthAnnotationsChanged(a, d));  // Terway's legacy form too
}

}  // namespace
}  // namespace terway::daemon
