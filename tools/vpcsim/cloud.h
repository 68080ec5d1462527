// VpcCloud: the emulated region's control plane. It owns the records (in
// memory, written through to SQLite), enforces quotas, runs the asynchronous
// attach/detach state machine and drives the Fabric. The OpenAPI server
// (openapi.h) authenticates requests and then calls Call(); the metadata
// service and the admin endpoint use the query methods below.
//
// Errors returned by Call() carry Error::cloud_code and Error::http_status:
// the documented Alibaba Cloud code and HTTP status of the failure.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud/signer.h"
#include "cloud/types.h"
#include "common/clock.h"
#include "common/result.h"
#include "tools/vpcsim/fabric.h"
#include "tools/vpcsim/faults.h"
#include "tools/vpcsim/model.h"
#include "tools/vpcsim/state_store.h"
#include "tools/vpcsim/world.h"

namespace terway::vpcsim {

// An API error with its documented code and HTTP status.
Error ApiError(int http_status, std::string code, std::string message);

// What the metadata service shows one instance.
struct InstanceView {
  InstanceRecord instance;
  std::vector<EniRecord> enis;  // attached and usable (InUse), primary first
};

class VpcCloud {
 public:
  struct Options {
    // Time an ENI spends in Attaching/Detaching (a fault's attach_delay_ms overrides).
    std::chrono::milliseconds attach_delay{300};
  };

  // Loads the state, seeding it from the world on the very first start.
  // fabric, clock and faults must outlive the cloud.
  static Result<std::unique_ptr<VpcCloud>> Open(World world, std::unique_ptr<StateStore> store,
                                                Fabric* fabric, Clock* clock, FaultTable* faults,
                                                Options options);

  // Re-creates the data plane to match the state (after a restart): VPC,
  // vSwitches, instances, attached ENIs and their IPs.
  Status SyncFabric();

  // "ecs" (2014-05-26) or "vpc" (2016-04-28), or "" if the version is unknown.
  static std::string ProductForVersion(const std::string& version);
  static bool KnownAction(const std::string& product, const std::string& action);

  // Runs one authenticated action; returns the response body without RequestId.
  Result<nlohmann::json> Call(const std::string& product, const std::string& action,
                              const cloud::QueryParams& params);

  // Completes Attaching/Detaching transitions that are due; returns how many.
  int Tick();

  // Authentication support.
  Result<bool> ConsumeNonce(const std::string& nonce);  // false: already used
  std::optional<StsCredential> FindSts(const std::string& access_key_id) const;
  // The instance's current STS credential for the world's RAM role, issuing a
  // fresh one when none is left or the current one is past two thirds of its life.
  Result<StsCredential> CredentialFor(const std::string& instance_id);

  // Admin.
  Result<InstanceRecord> AddInstance(WorldInstance spec);
  Status RemoveInstance(const std::string& instance_id);
  nlohmann::json Summary() const;

  // Metadata.
  std::optional<std::string> InstanceByIp(const std::string& ip) const;
  std::optional<InstanceView> View(const std::string& instance_id) const;

  const World& world() const { return world_; }
  Clock* clock() const { return clock_; }

 private:
  VpcCloud(World world, std::unique_ptr<StateStore> store, Fabric* fabric, Clock* clock,
           FaultTable* faults, Options options);
  Status LoadState(StateSnapshot snap);
  Status Seed();

  using Params = cloud::QueryParams;
  Result<nlohmann::json> CreateNetworkInterface(const Params& p);
  Result<nlohmann::json> AttachNetworkInterface(const Params& p);
  Result<nlohmann::json> DetachNetworkInterface(const Params& p);
  Result<nlohmann::json> DeleteNetworkInterface(const Params& p);
  Result<nlohmann::json> DescribeNetworkInterfaces(const Params& p);
  Result<nlohmann::json> AssignPrivateIpAddresses(const Params& p);
  Result<nlohmann::json> UnassignPrivateIpAddresses(const Params& p);
  Result<nlohmann::json> AssignIpv6Addresses(const Params& p);
  Result<nlohmann::json> UnassignIpv6Addresses(const Params& p);
  Result<nlohmann::json> DescribeInstanceTypes(const Params& p);
  Result<nlohmann::json> DescribeInstances(const Params& p);
  Result<nlohmann::json> DescribeVSwitches(const Params& p);

  // Helpers (mu_ held).
  Result<EniRecord*> FindEni(const Params& p);
  Result<std::string> AllocateIpv4(const std::string& vswitch_id, const std::string& wanted);
  Result<std::string> AllocateIpv6(const std::string& vswitch_id, const std::string& wanted);
  std::string NewMac();
  int ActiveEniCount(const std::string& instance_id) const;
  const cloud::InstanceType* TypeOf(const std::string& instance_id) const;
  Status Persist(const EniRecord& e);
  void Commit(EniRecord e);  // replaces the in-memory record and the used-address sets
  void CommitAndPushIps(EniRecord e);  // Commit, then the fabric's IPs of an InUse ENI
  void ForgetEni(const std::string& id);
  FabricEni ToFabric(const EniRecord& e) const;
  cloud::NetworkInterface ToApi(const EniRecord& e) const;
  cloud::Instance ToApi(const InstanceRecord& i) const;
  int64_t NowSec() const;
  int64_t NowMs() const;
  std::chrono::milliseconds TransitionDelay(const std::string& action) const;
  Result<InstanceRecord> AddInstanceLocked(WorldInstance spec, bool persist_txn);

  World world_;
  std::unique_ptr<StateStore> store_;
  Fabric* fabric_;
  Clock* clock_;
  FaultTable* faults_;
  Options options_;

  mutable std::mutex mu_;
  int64_t next_seq_ = 1;
  std::map<std::string, InstanceRecord> instances_;
  std::map<std::string, EniRecord> enis_;
  std::map<std::string, std::set<uint32_t>> used_v4_;        // vswitch -> host-order IPs
  std::map<std::string, std::set<std::string>> used_v6_;     // vswitch -> IPv6 text
  std::map<std::string, std::string> ip_owner_;              // IPv4 -> ENI id
  std::set<std::string> macs_;
  std::map<std::string, ClientTokenRecord> tokens_;
  std::map<std::string, StsCredential> sts_;
};

}  // namespace terway::vpcsim
