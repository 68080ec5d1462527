// An in-process vpcsim (VpcCloud + OpenApiService + metadata + admin) on a
// FakeFabric and a FakeClock, with its state in a temporary directory.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tools/vpcsim/admin.h"
#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/fake_fabric.h"
#include "tools/vpcsim/metadata.h"
#include "tools/vpcsim/openapi.h"
#include "unit/vpcsim/signed_request.h"

namespace terway::vpcsim::testing {

inline constexpr const char* kTestWorld = R"(
name: ut
region: cn-hangzhou
vpc:
  id: vpc-test
  cidr: 198.18.0.0/16
  ipv6_cidr: "fd00:1::/56"
  vswitches:
    - {id: vsw-a, zone: cn-hangzhou-h, cidr: 198.18.0.0/24, ipv6_cidr: "fd00:1::/64"}
    - {id: vsw-b, zone: cn-hangzhou-h, cidr: 198.18.1.0/29}
    - {id: vsw-c, zone: cn-hangzhou-i, cidr: 198.18.2.0/24}
instances:
  - {id: i-tiny, instance_type: ecs.vpcsim.tiny, vswitch: vsw-a}
  - {id: i-big, instance_type: ecs.g7.4xlarge, vswitch: vsw-a}
access_keys:
  - {id: LTAItestkey, secret: test-secret}
ram_role: TestRole
security_group: sg-test
sts_ttl_seconds: 900
)";

class CloudFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vpcsim-ut-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto w = ParseWorld(world_yaml_);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    world_ = *w;
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto store = StateStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    fabric_ = std::make_unique<FakeFabric>("ut");
    VpcCloud::Options o;
    o.attach_delay = std::chrono::milliseconds(500);
    auto c = VpcCloud::Open(world_, std::move(*store), fabric_.get(), &clock_, &faults_, o);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    cloud_ = std::move(*c);
    ASSERT_TRUE(cloud_->SyncFabric().ok());
    api_ = std::make_unique<OpenApiService>(cloud_.get(), &faults_, &counters_);
    metadata_ = std::make_unique<MetadataService>(cloud_.get());
    admin_ = std::make_unique<AdminService>(cloud_.get(), &faults_, &counters_);
  }
  void Close() {
    admin_.reset();
    metadata_.reset();
    api_.reset();
    cloud_.reset();
    fabric_.reset();
  }
  void Reopen() {
    Close();
    Open();
  }

  HttpReply Raw(const std::string& action, const cloud::QueryParams& p, const Credential& c = {},
                const std::string& method = "GET", const std::string& version = cloud::kEcsApiVersion) {
    std::string q = SignedQuery(method, action, p, c, clock_.Now(), version);
    return method == "GET" ? api_->HandleRaw("GET", q, "") : api_->HandleRaw("POST", "", q);
  }
  // Expects success and returns the body.
  nlohmann::json Ok(const std::string& action, const cloud::QueryParams& p, const Credential& c = {}) {
    HttpReply r = Raw(action, p, c);
    EXPECT_EQ(r.status, 200) << action << ": " << r.body;
    return nlohmann::json::parse(r.body);
  }
  // Expects failure and returns "<status> <Code>".
  std::string Fail(const std::string& action, const cloud::QueryParams& p, const Credential& c = {},
                   const std::string& version = cloud::kEcsApiVersion) {
    HttpReply r = Raw(action, p, c, "GET", version);
    auto j = nlohmann::json::parse(r.body);
    EXPECT_TRUE(j.contains("RequestId") && j.contains("HostId") && j.contains("Message")) << r.body;
    return std::to_string(r.status) + " " + j.value("Code", "");
  }

  std::string CreateEni(const std::string& vsw = "vsw-a", cloud::QueryParams extra = {}) {
    extra["VSwitchId"] = vsw;
    extra.emplace("SecurityGroupId", "sg-test");
    auto j = Ok("CreateNetworkInterface", extra);
    return j.value("NetworkInterfaceId", "");
  }
  nlohmann::json Eni(const std::string& id) {
    auto j = Ok("DescribeNetworkInterfaces", {{"NetworkInterfaceId.1", id}});
    return j["NetworkInterfaceSets"]["NetworkInterfaceSet"][0];
  }
  void AttachAndWait(const std::string& eni, const std::string& instance) {
    Ok("AttachNetworkInterface", {{"NetworkInterfaceId", eni}, {"InstanceId", instance}});
    clock_.Advance(std::chrono::seconds(1));
    cloud_->Tick();
    ASSERT_EQ(Eni(eni)["Status"], "InUse");
  }

  std::string world_yaml_ = kTestWorld;
  std::string dir_;
  World world_;
  FakeClock clock_;
  FaultTable faults_{42};
  CallCounters counters_;
  std::unique_ptr<FakeFabric> fabric_;
  std::unique_ptr<VpcCloud> cloud_;
  std::unique_ptr<OpenApiService> api_;
  std::unique_ptr<MetadataService> metadata_;
  std::unique_ptr<AdminService> admin_;
};

}  // namespace terway::vpcsim::testing
