// The security groups every ENI we create joins. eni_conf's, or -- when it
// lists none, which is upstream Terway's chart default (`security_groups:
// []`) -- those of the instance's primary ENI, as upstream Terway does
// (DescribeNetworkInterfaces with the instance and Type=Primary). Read from
// the cloud when the first ENI is needed, not at start: a node whose lookup
// fails still serves pods from the addresses it holds, and the next ENI
// creation asks again (the pool's worker backs off in between).
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ipam/provider.h"

namespace terway::ipam {

class EniSecurityGroups {
 public:
  EniSecurityGroups(std::vector<std::string> configured, EniProvider* provider, std::string instance_id)
      : configured_(std::move(configured)), provider_(provider), instance_id_(std::move(instance_id)) {}

  // The groups for a new ENI. Thread-safe; no lock is held across the cloud
  // call (two callers racing may both ask, and agree).
  Result<std::vector<std::string>> Get();

 private:
  const std::vector<std::string> configured_;
  EniProvider* const provider_;
  const std::string instance_id_;
  std::mutex mu_;
  std::optional<std::vector<std::string>> primary_;  // once read
};

}  // namespace terway::ipam
