// What the CNI service asks of network policy (PolicyController implements
// it): a new pod's rules in the kernel before its ADD returns, its address
// forgotten on DEL, and the operator's explain/show over the same socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/ip.h"
#include "common/result.h"
#include "policy/compiler.h"

namespace terway::daemon {

class PodPolicy {
 public:
  virtual ~PodPolicy() = default;
  // Ok: the pod's chains (if any policy selects it) are enforced. An error
  // means the pod would start unprotected; the ADD fails and is undone.
  // ipv6: a dual-stack pod's IPv6 address (the same chains police it).
  virtual Status PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip,
                             std::optional<Ipv6Addr> ipv6 = std::nullopt) = 0;
  // The pod's sandbox holding `ip` went (DEL, an undone ADD): forgotten only
  // if the pod's recorded address is still that one (another sandbox of the
  // same pod may hold a newer one).
  virtual void PodStopped(const std::string& ns, const std::string& name, Ipv4Addr ip) = 0;
  virtual Result<policy::Explanation> Explain(const std::string& from, const std::string& to,
                                              policy::Protocol proto, uint16_t port) = 0;
  virtual Result<std::string> Show() = 0;
};

}  // namespace terway::daemon
