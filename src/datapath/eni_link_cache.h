// EniLinkCache: an ENI's host link by MAC without a link dump per pod.
//
// Every shared-ENI ADD needs the host link of the pod's ENI, and the kernel
// finds a link by MAC only through a dump of every link -- on a node with a
// hundred pods that is a few hundred links parsed per ADD (measured ~0.4 ms of
// an eBPF pod's ADD, twice per ADD before this cache). An ENI's link keeps
// its ifindex while attached, so the index is remembered and each lookup
// asks the kernel for that one link and checks its MAC; a missing link or
// another MAC (detached, re-attached under a new index) falls back to the
// dump. Never wrong, only sometimes slower.
//
// Thread-safe: the mutex guards the map only, never a kernel call.
#pragma once

#include <map>
#include <mutex>

#include "common/ip.h"
#include "common/result.h"
#include "netlink/handle.h"

namespace terway::datapath {

class EniLinkCache {
 public:
  // The link with `mac` in `h`'s namespace (the first, as GetLinkByMac).
  // Callers share one cache per namespace.
  Result<netlink::Link> Find(netlink::Handle& h, const MacAddr& mac);

 private:
  std::mutex mu_;
  std::map<MacAddr, int> ifindex_;
};

}  // namespace terway::datapath
