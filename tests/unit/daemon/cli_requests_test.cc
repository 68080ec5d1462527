#include "daemon/cli_requests.h"

#include <stdlib.h>

#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace terway::daemon {
namespace {

namespace proto = cni::protocol;
using cli_views::Json;

class RecordingHandler : public RequestHandler {
 public:
  proto::Reply Handle(const proto::Request& req) override {
    ops.push_back(req.op);
    proto::Reply r;
    r.status = proto::DaemonStatus{true, true, ""};
    return r;
  }
  std::vector<proto::Op> ops;
};

class MapMetadata : public cloud::InstanceMetadata {
 public:
  Result<std::string> Get(const std::string& path) override {
    if (path == hook_path && hook) hook();
    auto it = values.find(path);
    if (it == values.end()) return Errorf(ErrorCode::kNotFound, "metadata {} not found (404)", path);
    return it->second;
  }
  std::map<std::string, std::string> values;
  // Runs inside Get(hook_path): a slow or blocked metadata service.
  std::string hook_path;
  std::function<void()> hook;
};

class FixedAddresses : public ipam::PodAddressSource {
 public:
  void Start() override {}
  void Stop() override {}
  Result<ipam::IpAllocation> Allocate(const ipam::PodIdentity&, std::chrono::milliseconds) override {
    return MakeError(ErrorCode::kInternal, "not in this test");
  }
  Status Release(const std::string&) override { return Ok(); }
  Result<std::optional<ipam::IpAllocation>> Get(const std::string&) override {
    return std::optional<ipam::IpAllocation>();
  }
  Result<ipam::IpAllocation> Adopt(const ipam::PodIdentity&, const std::string&, const std::string&) override {
    return MakeError(ErrorCode::kInternal, "not in this test");
  }
  Status Reconcile() override { return Ok(); }
  int MaxPodCount() const override { return 2; }
  ipam::PoolStats Stats() const override {
    ipam::PoolStats s;
    s.in_use = 1;
    s.enis = 1;
    return s;
  }
};

class OperatorViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/terway-views-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto st = store::StateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    // An exclusive-ENI node: one pod on the primary IP of its own ENI.
    ASSERT_TRUE(store_->UpsertEni({"eni-p", "00:16:3e:00:00:02", "vsw-1", "198.18.0.20", false, 1}).ok());
    ASSERT_TRUE(store_->AddIps({{"198.18.0.20", "eni-p", 0}}).ok());
    store::AllocationRecord a;
    a.container_id = "c-web";
    a.pod_namespace = "default";
    a.pod_name = "web";
    a.ip = "198.18.0.20";
    a.eni_id = "eni-p";
    a.ifname = "eth0";
    ASSERT_TRUE(store_->Allocate(a).ok());

    md_.values = {{"instance-id", "i-test"},
                  {"mac", "00:16:3e:00:00:01"},
                  {"network/interfaces/macs/", "00:16:3e:00:00:01/\n00:16:3e:00:00:02/\n"},
                  {"network/interfaces/macs/00:16:3e:00:00:01/network-interface-id", "eni-node"},
                  {"network/interfaces/macs/00:16:3e:00:00:01/primary-ip-address", "198.18.0.5"},
                  {"network/interfaces/macs/00:16:3e:00:00:01/private-ipv4s", R"(["198.18.0.5"])"},
                  {"network/interfaces/macs/00:16:3e:00:00:02/network-interface-id", "eni-p"},
                  {"network/interfaces/macs/00:16:3e:00:00:02/primary-ip-address", "198.18.0.20"},
                  {"network/interfaces/macs/00:16:3e:00:00:02/private-ipv4s", R"(["198.18.0.20"])"},
                  {"network/interfaces/macs/00:16:3e:00:00:02/gateway", "198.18.0.253"}};
    OperatorViewSources src;
    src.store = store_.get();
    src.addresses = &addresses_;
    src.metadata = &md_;
    src.service_config = {{"eni_mode", "exclusive"}};
    src.pool_name = "exclusive-eni";
    src.node_config.source = "test";
    src.node_config.eni_conf_text = R"({"access_key": "LTAI-canary", "max_pool_size": 5})";
    views_ = std::make_unique<OperatorViews>(src, &next_);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  proto::Reply Ask(const std::string& view, const std::string& type = "", const std::string& name = "") {
    proto::Request r;
    r.op = proto::Op::kInspect;
    r.inspect_query = proto::InspectQuery{view, type, name};
    return views_->Handle(r);
  }
  static Json Parsed(const proto::Reply& r) {
    EXPECT_TRUE(r.ok()) << r.error->message;
    return Json::parse(r.text.value_or("null"));
  }

  std::string dir_;
  std::unique_ptr<store::StateStore> store_;
  MapMetadata md_;
  FixedAddresses addresses_;
  RecordingHandler next_;
  std::unique_ptr<OperatorViews> views_;
};

TEST_F(OperatorViewsTest, CniRequestsGoOnToTheService) {
  proto::Request r;
  r.op = proto::Op::kStatus;
  EXPECT_TRUE(views_->Handle(r).status.has_value());
  ASSERT_EQ(next_.ops.size(), 1u);
  EXPECT_EQ(next_.ops[0], proto::Op::kStatus);
  Ask("list");
  EXPECT_EQ(next_.ops.size(), 1u) << "inspect is answered here, not by the CNI service";
}

TEST_F(OperatorViewsTest, MappingFromTheStoreWithoutAPool) {
  Json m = Parsed(Ask("mapping"));
  ASSERT_EQ(m["rows"].size(), 1u) << m.dump();
  EXPECT_EQ(m["rows"][0]["pod"], "default/web");
  EXPECT_EQ(m["rows"][0]["status"], "Normal");
  EXPECT_EQ(m["rows"][0]["pool"], "-");
  EXPECT_EQ(m["errors"], 0);
}

TEST_F(OperatorViewsTest, MetadataAsTheServiceSaysWithWhatItDidNotAnswer) {
  Json md = Parsed(Ask("metadata"));
  EXPECT_EQ(md["instance_id"], "i-test");
  ASSERT_EQ(md["enis"].size(), 2u) << md.dump();
  EXPECT_EQ(md["enis"][0]["eni_id"], "eni-node");
  EXPECT_EQ(md["enis"][0]["terwayd"], "not tracked (the node's primary ENI)");
  EXPECT_EQ(md["enis"][1]["eni_id"], "eni-p");
  EXPECT_EQ(md["enis"][1]["terwayd"], "tracked");
  EXPECT_EQ(md["enis"][1]["gateway"], "198.18.0.253");
  // The fake answers no netmask: said, not invented.
  EXPECT_NE(md["enis"][1]["error"].get<std::string>().find("netmask"), std::string::npos) << md.dump();
  EXPECT_EQ(md["enis"][1]["netmask"], "");
  md_.values.erase("network/interfaces/macs/");
  auto failed = Ask("metadata");
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error->message.find("asking the metadata service"), std::string::npos) << failed.error->message;
}

TEST_F(OperatorViewsTest, OneMetadataViewAtATimeSoTheControlLaneStaysFree) {
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  md_.hook_path = "instance-id";
  md_.hook = [&] {
    entered.set_value();
    released.wait();
  };
  proto::Reply first;
  std::thread t([&] { first = Ask("metadata"); });
  entered.get_future().wait();
  auto second = Ask("metadata");
  release.set_value();
  t.join();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error->cls, proto::ErrorClass::kRetryable);
  EXPECT_TRUE(first.ok()) << first.error->message;
  md_.hook = nullptr;
  EXPECT_TRUE(Ask("metadata").ok()) << "the next one runs once the first is done";
}

TEST_F(OperatorViewsTest, MetadataStopsAskingOnceTheClientsDeadlinePassed) {
  // The service is slow before the per-ENI reads: the 1 ms budget is spent.
  md_.hook_path = "vswitch-id";
  md_.hook = [] {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
  };
  proto::Request r;
  r.op = proto::Op::kInspect;
  r.deadline_ms = 1;
  r.inspect_query = proto::InspectQuery{"metadata", "", ""};
  Json md = Parsed(views_->Handle(r));
  ASSERT_EQ(md["enis"].size(), 2u) << md.dump();
  for (const auto& e : md["enis"]) {
    EXPECT_EQ(e["eni_id"], "");
    EXPECT_NE(e["error"].get<std::string>().find("deadline passed"), std::string::npos) << e.dump();
  }
}

TEST_F(OperatorViewsTest, ListShowNodeconfigAndErrors) {
  EXPECT_EQ(Parsed(Ask("list", "pod"))["names"], Json::parse(R"(["default/web"])"));
  Json pool = Parsed(Ask("show", "resource_pool"));
  EXPECT_EQ(pool["name"], "exclusive-eni");
  EXPECT_EQ(Parsed(Ask("nodeconfig"))["eni_conf"]["access_key"], cli_views::kRedacted);
  auto missing = Ask("show", "pod", "default/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error->cls, proto::ErrorClass::kNotFound);
  auto unknown = Ask("tree");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error->cls, proto::ErrorClass::kInvalid);
  EXPECT_NE(unknown.error->message.find("mapping"), std::string::npos);
}

}  // namespace
}  // namespace terway::daemon
