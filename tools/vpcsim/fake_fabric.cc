#include "tools/vpcsim/fake_fabric.h"

#include <fmt/format.h>

namespace terway::vpcsim {

Status FakeFabric::Record(const std::string& op, const std::string& line) {
  calls_.push_back(line);
  auto it = fail_next_.find(op);
  if (it != fail_next_.end() && it->second > 0) {
    it->second--;
    return Errorf(ErrorCode::kKernel, "fake fabric: injected failure of {}", op);
  }
  return Ok();
}

Status FakeFabric::EnsureVpc(const std::string& vpc_id, const Ipv4Cidr& cidr) {
  std::lock_guard l(mu_);
  return Record("EnsureVpc", fmt::format("EnsureVpc {} {}", vpc_id, cidr.ToString()));
}

Status FakeFabric::EnsureVSwitch(const FabricVSwitch& v) {
  std::lock_guard l(mu_);
  std::string line = fmt::format("EnsureVSwitch {} {} {}", v.vswitch_id, v.cidr.ToString(), v.gateway.ToString());
  if (v.ipv6_cidr) line += fmt::format(" {} {}", v.ipv6_cidr->ToString(), v.ipv6_gateway.ToString());
  return Record("EnsureVSwitch", line);
}

Status FakeFabric::EnsureInstance(const std::string& id, const FabricEni& primary) {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("EnsureInstance", fmt::format("EnsureInstance {} {}", id, primary.eni_id)));
  instances_[id] = true;
  attached_[primary.eni_id] = 0;
  ips_[primary.eni_id] = primary.ips;
  ipv6s_[primary.eni_id] = primary.ipv6s;
  return Ok();
}

Status FakeFabric::RemoveInstance(const std::string& id) {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("RemoveInstance", "RemoveInstance " + id));
  instances_.erase(id);
  return Ok();
}

Status FakeFabric::AttachEni(const std::string& id, const FabricEni& eni, int idx) {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("AttachEni", fmt::format("AttachEni {} {} {}", eni.eni_id, id, idx)));
  attached_[eni.eni_id] = idx;
  return Ok();
}

Status FakeFabric::DetachEni(const std::string& id, const std::string& eni_id) {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("DetachEni", fmt::format("DetachEni {} {}", eni_id, id)));
  attached_.erase(eni_id);
  ips_.erase(eni_id);
  ipv6s_.erase(eni_id);
  return Ok();
}

Status FakeFabric::SetEniIps(const FabricEni& eni) {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("SetEniIps", fmt::format("SetEniIps {} {}", eni.eni_id, eni.ips.size())));
  ips_[eni.eni_id] = eni.ips;
  ipv6s_[eni.eni_id] = eni.ipv6s;
  return Ok();
}

Status FakeFabric::Destroy() {
  std::lock_guard l(mu_);
  TERWAY_TRY(Record("Destroy", "Destroy"));
  attached_.clear();
  ips_.clear();
  ipv6s_.clear();
  instances_.clear();
  return Ok();
}

std::vector<std::string> FakeFabric::Calls() const {
  std::lock_guard l(mu_);
  return calls_;
}
std::map<std::string, int> FakeFabric::AttachedEnis() const {
  std::lock_guard l(mu_);
  return attached_;
}
std::vector<Ipv4Addr> FakeFabric::EniIps(const std::string& eni_id) const {
  std::lock_guard l(mu_);
  auto it = ips_.find(eni_id);
  return it == ips_.end() ? std::vector<Ipv4Addr>{} : it->second;
}
std::vector<Ipv6Addr> FakeFabric::EniIpv6s(const std::string& eni_id) const {
  std::lock_guard l(mu_);
  auto it = ipv6s_.find(eni_id);
  return it == ipv6s_.end() ? std::vector<Ipv6Addr>{} : it->second;
}
bool FakeFabric::HasInstance(const std::string& id) const {
  std::lock_guard l(mu_);
  return instances_.count(id) > 0;
}
void FakeFabric::FailNext(const std::string& op) {
  std::lock_guard l(mu_);
  fail_next_[op]++;
}

}  // namespace terway::vpcsim
