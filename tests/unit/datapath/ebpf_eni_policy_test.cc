// The eBPF datapath's policy map writer and admission rule against a fake
// map that fails on demand: a failed write fails closed (the map is marked
// not authoritative); when that mark fails too the error says the map may
// have failed OPEN; a pod a chain isolates is admitted to the fast path only
// while the map polices it; `synced` (the gauge) is true only after a full
// sync that left the map exact and authoritative.
#include "datapath/ebpf_eni_policy.h"

#include <gtest/gtest.h>

namespace terway::datapath {
namespace {

Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }

// The two maps as the kernel keeps them, with writes and reads that fail
// when told to (as a full map, a frozen map or a lost capability does).
class FakePolicyMap : public ebpf::PolicyMap {
 public:
  std::set<Ipv4Addr> pods;
  bool state = true;  // authoritative
  bool fail_add = false, fail_state = false, fail_read = false;
  int writes = 0;

  Status AddPolicyPod(Ipv4Addr ip) override {
    if (fail_add) return Errorf(ErrorCode::kKernel, "marking {} isolated: Argument list too long", ip.ToString());
    ++writes;
    pods.insert(ip);
    return Ok();
  }
  Status DeletePolicyPod(Ipv4Addr ip) override {
    ++writes;
    pods.erase(ip);
    return Ok();
  }
  Result<bool> HasPolicyPod(Ipv4Addr ip) const override {
    if (fail_read) return Errorf(ErrorCode::kKernel, "reading the policy map: Bad file descriptor");
    return pods.count(ip) > 0;
  }
  Result<std::set<Ipv4Addr>> ListPolicyPods() const override {
    if (fail_read) return Errorf(ErrorCode::kKernel, "listing the policy map: Bad file descriptor");
    return pods;
  }
  Status SetPolicySynced(bool synced) override {
    if (fail_state) return Errorf(ErrorCode::kPermission, "setting the policy state: Operation not permitted");
    ++writes;
    state = synced;
    return Ok();
  }
  Result<bool> PolicySynced() const override {
    if (fail_read) return Errorf(ErrorCode::kKernel, "reading the policy state: Bad file descriptor");
    return state;
  }
};

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(PolicyMapWriter, AFailedWriteFailsClosed) {
  FakePolicyMap map;
  PolicyMapWriter w;
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.10")}, true).ok());
  map.fail_add = true;
  Status st = w.Sync(&map, {Ip("198.18.0.10"), Ip("198.18.0.11")}, false);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(PolicyMapFailedOpen(st.error())) << st.error().ToString();
  EXPECT_TRUE(Has(st.error().ToString(), "every pod takes the host stack")) << st.error().ToString();
  EXPECT_FALSE(map.state) << "not authoritative: every pod policed";
  EXPECT_FALSE(w.synced());
  // Closed, so the pod the map lacks is policed: admitted.
  EXPECT_TRUE(CheckIsolatedPodPoliced(map, Ip("198.18.0.11"), "pod x/b").ok());
}

// The double failure: the map write and the fail-closed mark both fail. The
// state still says authoritative while the map lacks the new pod: the error
// must say so (a caller refuses such pods), not "every pod takes the stack".
TEST(PolicyMapWriter, WhenTheFailClosedMarkFailsTooTheErrorSaysFailedOpen) {
  FakePolicyMap map;
  PolicyMapWriter w;
  ASSERT_TRUE(w.Sync(&map, {}, true).ok());
  map.fail_add = true;
  map.fail_state = true;
  Status st = w.Sync(&map, {Ip("198.18.0.11")}, false);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(PolicyMapFailedOpen(st.error())) << st.error().ToString();
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(st.error().retryable);
  const std::string text = st.error().ToString();
  EXPECT_TRUE(Has(text, "Argument list too long")) << text;   // the write's cause
  EXPECT_TRUE(Has(text, "Operation not permitted")) << text;  // and the mark's
  EXPECT_TRUE(Has(text, "NOT policed")) << text;
  EXPECT_FALSE(Has(text, "every pod takes the host stack")) << text;
  EXPECT_TRUE(map.state) << "the fake kept the state: this is the fail-open case";
  EXPECT_FALSE(w.synced());

  // The admission rule sees it: the isolated pod the map lacks is refused,
  // a pod the map holds is not.
  Status refused = CheckIsolatedPodPoliced(map, Ip("198.18.0.11"), "pod x/b");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(Has(refused.error().ToString(), "pod x/b (198.18.0.11)")) << refused.error().ToString();
  EXPECT_TRUE(Has(refused.error().ToString(), "retry")) << refused.error().ToString();
  map.pods.insert(Ip("198.18.0.12"));
  EXPECT_TRUE(CheckIsolatedPodPoliced(map, Ip("198.18.0.12"), "pod x/c").ok());

  // The retry once the kernel takes writes again: exact and authoritative.
  map.fail_add = false;
  map.fail_state = false;
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.11")}, false).ok());
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.11")}, true).ok());
  EXPECT_EQ(map.pods, (std::set<Ipv4Addr>{Ip("198.18.0.11")})) << "re-read from the map, the extra dropped";
  EXPECT_TRUE(map.state);
  EXPECT_TRUE(w.synced());
  EXPECT_TRUE(CheckIsolatedPodPoliced(map, Ip("198.18.0.11"), "pod x/b").ok());
}

// A write's own error never passes for the fail-open one.
TEST(PolicyMapWriter, OnlyTheFailOpenCaseIsUnavailable) {
  class Busy : public FakePolicyMap {
    Status AddPolicyPod(Ipv4Addr) override { return Errorf(ErrorCode::kUnavailable, "busy"); }
  } map;
  PolicyMapWriter w;
  Status st = w.Sync(&map, {Ip("198.18.0.11")}, false);
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(PolicyMapFailedOpen(st.error())) << st.error().ToString();
  EXPECT_FALSE(map.state);
}

TEST(CheckIsolatedPodPoliced, PolicedWhenInTheMapOrTheMapIsNotAuthoritative) {
  FakePolicyMap map;
  map.pods = {Ip("198.18.0.10")};
  EXPECT_TRUE(CheckIsolatedPodPoliced(map, Ip("198.18.0.10"), "pod x/a").ok());
  EXPECT_FALSE(CheckIsolatedPodPoliced(map, Ip("198.18.0.11"), "pod x/b").ok());
  map.state = false;
  EXPECT_TRUE(CheckIsolatedPodPoliced(map, Ip("198.18.0.11"), "pod x/b").ok());
  map.fail_read = true;  // cannot tell: refused (the safe side)
  Status st = CheckIsolatedPodPoliced(map, Ip("198.18.0.10"), "pod x/a");
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(Has(st.error().ToString(), "cannot be read")) << st.error().ToString();
}

// What terway_ebpf_datapath_policy_synced shows: 1 only once a full sync
// left the map exact and authoritative; a superset written before the
// chains changes nothing; any failure makes it 0; nothing loaded writes
// nothing (the datapath reports "no map" itself).
TEST(PolicyMapWriter, SyncedOnlyAfterAFullSync) {
  FakePolicyMap map;
  map.state = false;  // a fresh map
  PolicyMapWriter w;
  EXPECT_FALSE(w.synced());
  ASSERT_TRUE(w.Sync(nullptr, {Ip("198.18.0.10")}, true).ok());
  EXPECT_FALSE(w.synced()) << "nothing loaded: nothing synced";
  EXPECT_EQ(map.writes, 0);
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.10")}, false).ok());
  EXPECT_FALSE(w.synced());
  EXPECT_FALSE(map.state);
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.10")}, true).ok());
  EXPECT_TRUE(w.synced());
  EXPECT_TRUE(map.state);
  const int writes = map.writes;
  ASSERT_TRUE(w.Sync(&map, {Ip("198.18.0.10")}, true).ok());
  EXPECT_EQ(map.writes, writes) << "an unchanged set costs no write";
  map.fail_add = true;
  EXPECT_FALSE(w.Sync(&map, {Ip("198.18.0.12")}, false).ok());
  EXPECT_FALSE(w.synced());
}

}  // namespace
}  // namespace terway::datapath
