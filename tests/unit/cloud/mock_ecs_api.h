// GMock mock of EcsApi, for the pool's and the daemon's unit tests.
#pragma once

#include <gmock/gmock.h>

#include "cloud/ecs_api.h"

namespace terway::cloud {

class MockEcsApi : public EcsApi {
 public:
  MOCK_METHOD(Result<NetworkInterface>, CreateNetworkInterface, (const CreateEniRequest&), (override));
  MOCK_METHOD(Status, AttachNetworkInterface, (const std::string&, const std::string&), (override));
  MOCK_METHOD(Status, DetachNetworkInterface, (const std::string&, const std::string&), (override));
  MOCK_METHOD(Status, DeleteNetworkInterface, (const std::string&), (override));
  MOCK_METHOD(Result<std::vector<NetworkInterface>>, DescribeNetworkInterfaces,
              (const DescribeEnisFilter&), (override));
  MOCK_METHOD(Result<std::vector<std::string>>, AssignPrivateIpAddresses, (const AssignIpsRequest&),
              (override));
  MOCK_METHOD(Status, UnassignPrivateIpAddresses,
              (const std::string&, const std::vector<std::string>&), (override));
  MOCK_METHOD(Result<std::vector<std::string>>, AssignIpv6Addresses, (const AssignIpsRequest&),
              (override));
  MOCK_METHOD(Status, UnassignIpv6Addresses, (const std::string&, const std::vector<std::string>&),
              (override));
  MOCK_METHOD(Result<std::vector<InstanceType>>, DescribeInstanceTypes,
              (const std::vector<std::string>&), (override));
  MOCK_METHOD(Result<std::vector<VSwitch>>, DescribeVSwitches,
              (const std::string&, const std::vector<std::string>&), (override));
  MOCK_METHOD(Result<std::vector<Instance>>, DescribeInstances, (const std::vector<std::string>&),
              (override));
};

}  // namespace terway::cloud
