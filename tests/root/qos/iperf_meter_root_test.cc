// The iperf3 meter itself (iperf_meter.h), in one namespace the test creates:
// a run that fails is told in iperf3's own words and tried again a bounded
// number of times, then fails the measurement; a run that works is measured.
// All traffic stays on that namespace's loopback (the unreachable address
// has no route there: nothing is sent).
#include "root/qos/iperf_meter.h"

#include <string>

#include <gtest/gtest.h>

#include "netlink/netns.h"
#include "test_util.h"

namespace terway::testing {
namespace {

constexpr int kPort = 5201;

class IperfMeterRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    ns_ = "twim" + UniqueSuffix();
    ASSERT_OK(netlink::CreateNamedNetns(ns_));
    ASSERT_EQ(std::system(("ip -n " + ns_ + " link set lo up").c_str()), 0);
    ASSERT_OK(server_.Start(ns_, kPort));
  }
  ~IperfMeterRoot() override {
    server_.Stop();
    if (!ns_.empty()) (void)netlink::DeleteNamedNetns(ns_);
  }

  std::string ns_;
  IperfServer server_;
};

TEST_F(IperfMeterRoot, MeasuresALoopbackRun) {
  auto r = IperfSample(ns_, "127.0.0.1", server_, /*reverse=*/false, /*seconds=*/2);
  ASSERT_OK(r);
  EXPECT_GT(*r, 0);
}

TEST_F(IperfMeterRoot, RunThatNeverWorksFailsAfterBoundedTriesInIperfsOwnWords) {
  // No route to this address in the namespace: every run fails at connect.
  ::testing::internal::CaptureStderr();
  auto r = IperfShapedRate(ns_, "198.18.99.1", server_, /*reverse=*/false, 10e6);
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(r.ok()) << "measured " << *r << " bits/s from a run that cannot connect";
  const std::string e = r.error().ToString();
  EXPECT_NE(e.find("failed 3 times in a row"), std::string::npos) << e;
  EXPECT_NE(e.find("unable to connect"), std::string::npos) << "iperf3's own words: " << e;
  for (int i = 1; i <= kIperfTries; ++i) {
    EXPECT_NE(said.find("try " + std::to_string(i) + "/3 failed"), std::string::npos) << said;
  }
  EXPECT_EQ(said.find("try 4/"), std::string::npos) << said;
}

TEST_F(IperfMeterRoot, StoppedServerFailsTheMeasurement) {
  server_.Stop();
  auto r = IperfMedian(ns_, "127.0.0.1", server_, /*reverse=*/false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("iperf3 server"), std::string::npos) << r.error().ToString();
}

}  // namespace
}  // namespace terway::testing
