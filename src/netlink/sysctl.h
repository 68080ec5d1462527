// sysctl of a network namespace. /proc/sys/net shows the namespace of the
// thread that opens the file, so reads and writes happen on a thread inside
// the target namespace (RunInNetns), never by setns() on the caller's thread.
#pragma once

#include <string>

#include "common/result.h"

namespace terway::netlink {

// key: "net.ipv4.ip_forward" or "net/ipv4/ip_forward". Interface names that
// contain dots ("eth0.100") need the slash form. netns: name or path; "" for
// the calling thread's namespace.
Status SetSysctl(const std::string& netns, const std::string& key, const std::string& value);
Result<std::string> GetSysctl(const std::string& netns, const std::string& key);

// "/proc/sys/net/ipv4/ip_forward" for either spelling of the key; validated
// (no "..", must start with "net").
Result<std::string> SysctlPath(const std::string& key);

}  // namespace terway::netlink
