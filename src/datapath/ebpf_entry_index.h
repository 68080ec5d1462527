// Which endpoint entries point at which pod's host veth (the veth's name,
// which is the container's, -> the IPv4 keys of its entries), as this
// process wrote them or found them in the pinned map at load.
//
// Why: the endpoint map is keyed by the pod's IPv4. A pod wired again with
// another IPv4 (restart repair after a re-pairing, a rewired sandbox) gets a
// new entry, and the old one would keep redirecting the old address to the
// pod's veth; if the pool hands that address to another pod of the node,
// its traffic would go to the wrong pod. The map cannot be asked "which
// entries point at this veth" without a full walk; this index answers it
// without one on every ADD.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "ebpf/endpoint.h"

namespace terway::datapath {

// An address whose entry was recorded for a veth, and the veth's ifindex
// then (the veth may have been rebuilt since, with a new ifindex).
struct FormerEntry {
  Ipv4Addr ip;
  int host_ifindex = 0;
  bool operator==(const FormerEntry&) const = default;
};

class EndpointEntryIndex {
 public:
  // Replaces the index with what the map holds (at load); veth_of_ifindex
  // names the host links by ifindex (entries of a vanished link are left
  // out: GC removes them).
  void Reset(const std::vector<ebpf::Endpoint>& entries, const std::map<int, std::string>& veth_of_ifindex);
  // Records that `ip`'s entry points at the host veth `veth` (ifindex
  // `host_ifindex`) and returns the other addresses recorded for that veth
  // (the pod's former addresses, or those of an earlier sandbox of the same
  // container), still recorded until Forget.
  std::vector<FormerEntry> Record(const std::string& veth, int host_ifindex, Ipv4Addr ip);
  // The entry of `ip` is gone (deleted, or found to point elsewhere).
  void Forget(Ipv4Addr ip);

 private:
  struct Where {
    std::string veth;
    int host_ifindex = 0;
  };
  std::mutex mu_;  // never held across a syscall
  std::map<Ipv4Addr, Where> by_ip_;
  std::map<std::string, std::set<Ipv4Addr>> by_veth_;
};

}  // namespace terway::datapath
