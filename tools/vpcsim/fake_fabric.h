// A Fabric that only records what it is asked to do: the control plane's unit
// tests and `vpcsim serve --fabric none` run on it.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tools/vpcsim/fabric.h"

namespace terway::vpcsim {

class FakeFabric : public Fabric {
 public:
  explicit FakeFabric(std::string prefix = "fake") : prefix_(std::move(prefix)) {}

  Status EnsureVpc(const std::string& vpc_id, const Ipv4Cidr& cidr) override;
  Status EnsureVSwitch(const FabricVSwitch& vsw) override;
  Status EnsureInstance(const std::string& instance_id, const FabricEni& primary) override;
  Status RemoveInstance(const std::string& instance_id) override;
  Status AttachEni(const std::string& instance_id, const FabricEni& eni, int device_index) override;
  Status DetachEni(const std::string& instance_id, const std::string& eni_id) override;
  Status SetEniIps(const FabricEni& eni) override;
  std::string RouterNetns() const override { return prefix_ + "-vpc"; }
  std::string InstanceNetns(const std::string& id) const override { return prefix_ + "-" + id; }
  Status Destroy() override;

  // Inspection for tests.
  std::vector<std::string> Calls() const;                 // "AttachEni eni-x i-y 1", ...
  std::map<std::string, int> AttachedEnis() const;        // eni -> device index
  std::vector<Ipv4Addr> EniIps(const std::string& eni_id) const;
  std::vector<Ipv6Addr> EniIpv6s(const std::string& eni_id) const;
  bool HasInstance(const std::string& id) const;
  void FailNext(const std::string& op);                   // the next call of op fails

 private:
  Status Record(const std::string& op, const std::string& line);
  mutable std::mutex mu_;
  std::string prefix_;
  std::vector<std::string> calls_;
  std::map<std::string, int> attached_;
  std::map<std::string, std::vector<Ipv4Addr>> ips_;
  std::map<std::string, std::vector<Ipv6Addr>> ipv6s_;
  std::map<std::string, bool> instances_;
  std::map<std::string, int> fail_next_;
};

}  // namespace terway::vpcsim
