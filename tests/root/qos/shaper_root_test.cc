// BandwidthShaper against the real kernel with real TCP traffic:
//
//   host netns  tq0 198.18.100.1/24 ──veth── eth0 198.18.100.2/24  pod netns
//                                                (iperf3 server)
//
// Client in the host namespace: sending = traffic INTO the pod (shaped by the
// TBF on tq0's root); -R = traffic OUT of the pod (shaped on the IFB that
// tq0's ingress redirects to). Assertions are about rates (median of 3
// samples within 10% of the limit), never about time. Namespaces, links and
// the iperf3 server are removed by the fixture, also on failure.
#include "qos/shaper.h"

#include <string>

#include <gtest/gtest.h>

#include "netlink/handle.h"
#include "netlink/netns.h"
#include "root/qos/iperf_meter.h"
#include "test_util.h"

namespace terway::qos {
namespace {

using ::terway::testing::Capture;

constexpr const char* kPodIp = "198.18.100.2";
constexpr int kPort = 5201;
constexpr double kMbit = 1e6;
// Far above any limit used here: a shaped direction never gets close.
constexpr double kUnlimitedFloor = 200 * kMbit;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

class ShaperRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    std::string s = testing::UniqueSuffix();
    host_ns_ = "twqh" + s;
    pod_ns_ = "twqp" + s;
    ASSERT_OK(netlink::CreateNamedNetns(host_ns_));
    ASSERT_OK(netlink::CreateNamedNetns(pod_ns_));
    auto h = netlink::Handle::OpenIn(host_ns_);
    ASSERT_OK(h);
    host_.emplace(std::move(*h));
    netlink::VethSpec v;
    v.name = "tq0";
    v.peer_name = "eth0";
    v.peer_netns = pod_ns_;
    v.mtu = 1500;
    ASSERT_OK(host_->CreateVeth(v));
    ASSERT_EQ(Sh("ip -n " + host_ns_ + " link set lo up && ip -n " + host_ns_ + " link set tq0 up && ip -n " +
                 host_ns_ + " addr add 198.18.100.1/24 dev tq0"),
              0);
    ASSERT_EQ(Sh("ip -n " + pod_ns_ + " link set lo up && ip -n " + pod_ns_ + " link set eth0 up && ip -n " +
                 pod_ns_ + " addr add " + kPodIp + "/24 dev eth0"),
              0);
    links_ = {"tq0", "tqifb" + s, "terway-pod-ifb:test", "", std::nullopt};
    ASSERT_OK(server_.Start(pod_ns_, kPort));
  }

  ~ShaperRoot() override {
    server_.Stop();
    host_.reset();
    if (!pod_ns_.empty()) (void)netlink::DeleteNamedNetns(pod_ns_);
    if (!host_ns_.empty()) (void)netlink::DeleteNamedNetns(host_ns_);
  }

  // Traffic into the pod (host sends) and out of it (pod sends).
  // limit_bps: the rate the path is shaped to (IperfShapedRate), 0 for none.
  double IntoPod(double limit_bps = 0) {
    auto r = limit_bps ? testing::IperfShapedRate(host_ns_, kPodIp, server_, /*reverse=*/false, limit_bps)
                       : testing::IperfMedian(host_ns_, kPodIp, server_, /*reverse=*/false);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : 0;
  }
  double OutOfPod(double limit_bps = 0) {
    auto r = limit_bps ? testing::IperfShapedRate(host_ns_, kPodIp, server_, /*reverse=*/true, limit_bps)
                       : testing::IperfMedian(host_ns_, kPodIp, server_, /*reverse=*/true);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : 0;
  }
  double OneSample(bool reverse) {
    auto r = testing::IperfSample(host_ns_, kPodIp, server_, reverse);
    EXPECT_TRUE(r.ok()) << r.error().ToString();
    return r.ok() ? *r : 0;
  }

  static cni::Bandwidth Limits(double in_mbit, double out_mbit) {
    cni::Bandwidth b;
    b.ingress_rate = static_cast<uint64_t>(in_mbit * kMbit);
    b.egress_rate = static_cast<uint64_t>(out_mbit * kMbit);
    b.ingress_burst = b.ingress_rate ? 64 * 1024 * 8 : 0;
    b.egress_burst = b.egress_rate ? 64 * 1024 * 8 : 0;
    return b;
  }

  // Only the kernel's default qdisc on tq0, no clsact, no filter, no IFB.
  void ExpectNothingLeft() {
    auto veth = host_->GetLink("tq0");
    ASSERT_OK(veth);
    auto qdiscs = host_->ListQdiscs(veth->index);
    ASSERT_OK(qdiscs);
    for (const auto& q : *qdiscs) EXPECT_EQ(q.handle, 0u) << "qdisc " << q.kind << " left on tq0";
    auto filters = host_->ListFilters(veth->index, netlink::kTcClsactIngress);
    ASSERT_OK(filters);
    EXPECT_TRUE(filters->empty());
    auto links = host_->ListLinks();
    ASSERT_OK(links);
    for (const auto& l : *links) EXPECT_NE(l.kind, "ifb") << "ifb " << l.name << " left";
    EXPECT_EQ(Capture("ip netns exec " + host_ns_ + " tc filter show dev tq0 ingress"), "");
  }

  std::string host_ns_, pod_ns_;
  std::optional<netlink::Handle> host_;
  PodShapingLinks links_;
  BandwidthShaper shaper_;
  testing::IperfServer server_;
};

void ExpectWithin10Percent(double measured, double limit_mbit, const char* what) {
  double limit = limit_mbit * kMbit;
  EXPECT_NEAR(measured, limit, 0.10 * limit)
      << what << ": measured " << measured / kMbit << " Mbit/s, limit " << limit_mbit << " Mbit/s";
  std::printf("[ measured ] %s: %.2f Mbit/s for a limit of %.0f Mbit/s (%.1f%%)\n", what, measured / kMbit,
              limit_mbit, 100.0 * measured / limit);
}

TEST_F(ShaperRoot, LimitsBothDirectionsUpdatesAndRemoves) {
  // Unlimited first: the path is far faster than any limit below.
  double free_in = OneSample(false), free_out = OneSample(true);
  std::printf("[ measured ] unlimited: into pod %.0f Mbit/s, out of pod %.0f Mbit/s\n", free_in / kMbit,
              free_out / kMbit);
  EXPECT_GT(free_in, kUnlimitedFloor);
  EXPECT_GT(free_out, kUnlimitedFloor);

  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(10, 10)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(10, 10)));
  ExpectWithin10Percent(IntoPod(10 * kMbit), 10, "10 Mbit/s into the pod");
  ExpectWithin10Percent(OutOfPod(10 * kMbit), 10, "10 Mbit/s out of the pod");

  // Idempotent: a second Apply changes nothing (one redirect filter).
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(10, 10)));
  auto veth = host_->GetLink("tq0");
  ASSERT_OK(veth);
  auto filters = host_->ListFilters(veth->index, netlink::kTcClsactIngress);
  ASSERT_OK(filters);
  EXPECT_EQ(filters->size(), 1u);

  // Update: the rates change in place.
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(50, 50)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(50, 50)));
  auto stale = shaper_.Check(*host_, links_, Limits(10, 10));
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().message.find("want 10.000 Mbit/s"), std::string::npos) << stale.error().ToString();
  ExpectWithin10Percent(IntoPod(50 * kMbit), 50, "50 Mbit/s into the pod");
  ExpectWithin10Percent(OutOfPod(50 * kMbit), 50, "50 Mbit/s out of the pod");

  // Dropping one direction's limit frees that direction only.
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(0, 50)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(0, 50)));
  EXPECT_GT(OneSample(false), kUnlimitedFloor);
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(50, 0)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(50, 0)));
  EXPECT_FALSE(host_->LinkExists(links_.ifb));
  EXPECT_GT(OneSample(true), kUnlimitedFloor);

  // Remove: full speed again and nothing of ours left.
  ASSERT_OK(shaper_.Remove(*host_, links_));
  ASSERT_OK(shaper_.Remove(*host_, links_));
  ASSERT_OK(shaper_.Check(*host_, links_, std::nullopt));
  ExpectNothingLeft();
  EXPECT_GT(OneSample(false), kUnlimitedFloor);
  EXPECT_GT(OneSample(true), kUnlimitedFloor);
}

TEST_F(ShaperRoot, CheckNamesWhatIsMissing) {
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(10, 20)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(10, 20)));
  auto veth = host_->GetLink("tq0");
  ASSERT_OK(veth);
  ASSERT_OK(host_->DeleteFiltersIfExist(veth->index, netlink::kTcClsactIngress, kRedirectFilterPriority));
  auto s = shaper_.Check(*host_, links_, Limits(10, 20));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no redirect"), std::string::npos) << s.error().ToString();
  // Apply repairs it.
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(10, 20)));
  ASSERT_OK(shaper_.Check(*host_, links_, Limits(10, 20)));
  // A limit on a pod that should have none is reported too.
  auto extra = shaper_.Check(*host_, links_, std::nullopt);
  ASSERT_FALSE(extra.ok());
  ASSERT_OK(shaper_.Remove(*host_, links_));
  ExpectNothingLeft();
}

TEST_F(ShaperRoot, RemoveAfterTheVethIsGoneDeletesTheIfb) {
  ASSERT_OK(shaper_.Apply(*host_, links_, Limits(10, 10)));
  ASSERT_TRUE(host_->LinkExists(links_.ifb));
  auto ifb = host_->GetLink(links_.ifb);
  ASSERT_OK(ifb);
  EXPECT_EQ(ifb->alias, links_.ifb_alias);
  ASSERT_OK(host_->DeleteLinkIfExists("tq0"));
  ASSERT_OK(shaper_.Remove(*host_, links_));
  EXPECT_FALSE(host_->LinkExists(links_.ifb));
}

TEST_F(ShaperRoot, BackendProbeSaysWhetherFqExists) {
  ShapingBackend b = shaper_.Backend(*host_);
  std::string reason = shaper_.BackendReason();
  // The probe's answer agrees with tc's own, on a scratch IFB of ours.
  bool tc_has_fq = Sh("ip -n " + host_ns_ + " link add twfqt type ifb && tc -n " + host_ns_ +
                      " qdisc add dev twfqt root fq") == 0;
  (void)Sh("ip -n " + host_ns_ + " link del twfqt");
  if (tc_has_fq) {
    EXPECT_EQ(b, ShapingBackend::kEdt);
    EXPECT_NE(reason.find("fq qdisc available"), std::string::npos) << reason;
  } else {
    EXPECT_EQ(b, ShapingBackend::kTbf);
    EXPECT_NE(reason.find("fq qdisc unavailable"), std::string::npos) << reason;
    EXPECT_NE(reason.find("using TBF"), std::string::npos) << reason;
  }
  // The probe leaves no link behind.
  auto links = host_->ListLinks();
  ASSERT_OK(links);
  for (const auto& l : *links) EXPECT_NE(l.kind, "ifb") << l.name;
}

}  // namespace
}  // namespace terway::qos
