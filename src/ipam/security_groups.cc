#include "ipam/security_groups.h"

#include "common/log.h"

namespace terway::ipam {

Result<std::vector<std::string>> EniSecurityGroups::Get() {
  if (!configured_.empty()) return configured_;
  {
    std::lock_guard l(mu_);
    if (primary_) return *primary_;
  }
  auto groups = provider_->PrimaryEniSecurityGroups(instance_id_);
  if (!groups.ok()) {
    return std::move(groups).error().Wrap(fmt::format(
        "reading the security groups of the primary ENI of {} (eni_conf lists no security_groups: new ENIs join "
        "the primary ENI's groups, as Terway; list them in eni_conf to skip this lookup)",
        instance_id_));
  }
  if (groups->empty()) {
    return Errorf(ErrorCode::kNotFound,
                  "the primary ENI of {} belongs to no security group, and eni_conf lists none: add "
                  "\"security_groups\" to eni_conf",
                  instance_id_);
  }
  std::lock_guard l(mu_);
  if (!primary_) log::Info("eni_security_groups source=primary_eni groups={}", fmt::join(*groups, ","));
  primary_ = *groups;
  return *primary_;
}

}  // namespace terway::ipam
