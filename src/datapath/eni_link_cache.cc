#include "datapath/eni_link_cache.h"

namespace terway::datapath {

Result<netlink::Link> EniLinkCache::Find(netlink::Handle& h, const MacAddr& mac) {
  int known = 0;
  {
    std::lock_guard l(mu_);
    if (auto it = ifindex_.find(mac); it != ifindex_.end()) known = it->second;
  }
  if (known > 0) {
    if (auto link = h.GetLinkByIndex(known); link.ok() && link->mac == mac) return link;
  }
  auto link = h.GetLinkByMac(mac);
  std::lock_guard l(mu_);
  if (link.ok()) {
    ifindex_[mac] = link->index;
  } else {
    ifindex_.erase(mac);
  }
  return link;
}

}  // namespace terway::datapath
