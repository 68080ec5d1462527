// An emulated cloud for e2e tests and benchmarks: a real `vpcsim serve` with
// the Linux fabric, in a temp state dir, with a world name unique to this
// run; and terwayd daemons started inside its instance namespaces, talking to
// the API and metadata service through the VPC exactly as on ECS.
// Destruction stops every process and destroys the world (namespaces, links,
// nft tables), also when the test failed.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "e2e/harness/process.h"

namespace terway::testing {

struct WorldSpec {
  std::string instance_type = "ecs.g7.large";
  int instances = 1;
  std::string vswitch_cidr = "198.18.0.0/24";
  std::string extra_vswitch_cidr;  // optional second vSwitch (same zone)
  // Dual stack: the VPC's IPv6 /56 and the first vSwitch's /64 (inside
  // fd00::/8); "": IPv4 only.
  std::string vpc_ipv6_cidr;
  std::string vswitch_ipv6_cidr;
};

class VpcsimWorld {
 public:
  static Result<std::unique_ptr<VpcsimWorld>> Start(const WorldSpec& spec);
  ~VpcsimWorld();

  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& instances() const { return instances_; }
  const std::vector<std::string>& vswitches() const { return vswitches_; }
  std::string zone() const { return "cn-hangzhou-h"; }
  std::string InstanceNetns(const std::string& instance_id) const;
  const TempDir& dir() const { return dir_; }

  // The admin endpoint (faults, stats, world).
  Result<nlohmann::json> Admin(const std::string& method, const std::string& path,
                               const nlohmann::json& body = nullptr);
  Status SetFaults(const nlohmann::json& fault);  // {"action":"*","throttle_rate":0.2,...}
  Status ClearFaults();

  // Restart the emulator (kill -9 or graceful): state and fabric survive.
  Status Restart(bool kill9);
  Process& process() { return vpcsim_; }

  static constexpr const char* kAccessKey = "LTAIe2eTest";
  static constexpr const char* kAccessSecret = "e2e-test-secret";

 private:
  VpcsimWorld() = default;
  Status Launch();

  TempDir dir_;
  std::string name_;
  std::vector<std::string> instances_;
  std::vector<std::string> vswitches_;
  Process vpcsim_;
  int port_ = 0;
};

struct TerwaydSpec {
  std::string instance_id;
  int min_pool_size = 0;
  int max_pool_size = 5;
  std::string extra_conf;  // extra JSON members, e.g. "\"max_eni\": 2"
  // "none": IPAM only (pool tests drive the socket with made-up netns paths);
  // "shared": pods are wired for real.
  std::string datapath = "none";
  std::vector<std::string> extra_args;  // more terwayd flags, e.g. {"--bpffs", dir}
};

// terwayd inside an instance's namespace.
class TerwaydNode {
 public:
  static Result<std::unique_ptr<TerwaydNode>> Start(VpcsimWorld* world, const TerwaydSpec& spec);
  ~TerwaydNode();

  const std::string& socket() const { return socket_; }
  const std::string& state_path() const { return state_; }
  const std::string& config_path() const { return config_; }
  const std::string& netns() const { return netns_; }
  const std::string& log_path() const { return log_; }
  Process& process() { return proc_; }
  // Starts it again after Stop/Kill9 (same config, state and socket).
  Status Restart();
  void Kill9() { proc_.Kill9(); }
  int Stop() { return proc_.Stop(); }
  // Waits until the daemon answers STATUS ready.
  Status WaitReady(std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // VmRSS of the daemon in KiB.
  long RssKib();
  // The daemon's /metrics text (fetched from inside its namespace).
  Result<std::string> Metrics();

 private:
  TerwaydNode() = default;
  Status Launch();
  VpcsimWorld* world_ = nullptr;
  std::string netns_, socket_, state_, config_, log_, datapath_;
  std::vector<std::string> extra_args_;
  Process proc_;
};

}  // namespace terway::testing
