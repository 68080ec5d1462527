#include "datapath/ebpf_entry_index.h"

namespace terway::datapath {

void EndpointEntryIndex::Reset(const std::vector<ebpf::Endpoint>& entries,
                               const std::map<int, std::string>& veth_of_ifindex) {
  std::lock_guard l(mu_);
  by_ip_.clear();
  by_veth_.clear();
  for (const auto& ep : entries) {
    auto veth = veth_of_ifindex.find(ep.host_ifindex);
    if (veth == veth_of_ifindex.end()) continue;
    by_ip_[ep.ip] = Where{veth->second, ep.host_ifindex};
    by_veth_[veth->second].insert(ep.ip);
  }
}

std::vector<FormerEntry> EndpointEntryIndex::Record(const std::string& veth, int host_ifindex, Ipv4Addr ip) {
  std::lock_guard l(mu_);
  // The address may have been recorded for another veth (an earlier pod's):
  // its entry was just overwritten, so it is this veth's only.
  if (auto it = by_ip_.find(ip); it != by_ip_.end() && it->second.veth != veth) {
    auto other = by_veth_.find(it->second.veth);
    if (other != by_veth_.end()) {
      other->second.erase(ip);
      if (other->second.empty()) by_veth_.erase(other);
    }
  }
  by_ip_[ip] = Where{veth, host_ifindex};
  auto& mine = by_veth_[veth];
  mine.insert(ip);
  std::vector<FormerEntry> others;
  for (const auto& a : mine) {
    if (a != ip) others.push_back(FormerEntry{a, by_ip_[a].host_ifindex});
  }
  return others;
}

void EndpointEntryIndex::Forget(Ipv4Addr ip) {
  std::lock_guard l(mu_);
  auto it = by_ip_.find(ip);
  if (it == by_ip_.end()) return;
  auto v = by_veth_.find(it->second.veth);
  if (v != by_veth_.end()) {
    v->second.erase(ip);
    if (v->second.empty()) by_veth_.erase(v);
  }
  by_ip_.erase(it);
}

}  // namespace terway::datapath
