// The instance-type catalogue: what DescribeInstanceTypes answers and what the
// ENI/IP quotas are enforced from.
#pragma once

#include <string_view>
#include <vector>

#include "cloud/types.h"

namespace terway::vpcsim {

const std::vector<cloud::InstanceType>& InstanceTypeCatalogue();
// nullptr when unknown.
const cloud::InstanceType* FindInstanceType(std::string_view id);

}  // namespace terway::vpcsim
