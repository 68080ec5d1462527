// ipam::EniProvider over Alibaba Cloud's ECS OpenAPI (cloud::EcsApi).
//
// The pool speaks in its own small vocabulary (create, attach-and-wait,
// assign...); this adapter maps it to the API's actions, waits out the
// asynchronous attach/detach by polling, and finds this node's ENIs: the ones
// attached to the instance plus Available ones carrying our instance tag (an
// ENI created but never attached before a crash has no InstanceId).
#pragma once

#include "cloud/backoff.h"
#include "cloud/ecs_api.h"
#include "common/clock.h"
#include "ipam/provider.h"

namespace terway::daemon {

class AliyunEniProvider : public ipam::EniProvider {
 public:
  AliyunEniProvider(cloud::EcsApi* api, std::string vpc_id, const Clock* clock,
                    cloud::Sleeper* sleeper, cloud::WaitOptions attach_wait = {},
                    cloud::WaitOptions detach_wait = {})
      : api_(api),
        vpc_id_(std::move(vpc_id)),
        clock_(clock),
        sleeper_(sleeper),
        attach_wait_(std::move(attach_wait)),
        detach_wait_(std::move(detach_wait)) {}

  Result<cloud::NetworkInterface> CreateEni(const ipam::CreateEniRequest& req) override;
  Status AttachEni(const std::string& eni_id, const std::string& instance_id) override;
  Status DetachEni(const std::string& eni_id, const std::string& instance_id) override;
  Status DeleteEni(const std::string& eni_id) override;
  Result<std::vector<std::string>> AssignIps(const std::string& eni_id, int count) override;
  Status UnassignIps(const std::string& eni_id, const std::vector<std::string>& ips) override;
  Result<std::vector<std::string>> AssignIpv6(const std::string& eni_id, int count) override;
  Status UnassignIpv6(const std::string& eni_id, const std::vector<std::string>& ips) override;
  Result<std::vector<cloud::NetworkInterface>> ListEnis(const std::string& instance_id) override;
  Result<std::vector<std::string>> PrimaryEniSecurityGroups(const std::string& instance_id) override;
  Result<std::vector<cloud::VSwitch>> DescribeVSwitches(const std::vector<std::string>& ids) override;
  Result<ipam::InstanceLimits> GetInstanceLimits(const std::string& instance_type) override;

 private:
  cloud::EcsApi* api_;
  std::string vpc_id_;
  const Clock* clock_;
  cloud::Sleeper* sleeper_;
  cloud::WaitOptions attach_wait_;  // eni_conf backoff_override "eni_ops"
  cloud::WaitOptions detach_wait_;  // "wait_eni_status"
};

}  // namespace terway::daemon
