#include "netlink/sysctl.h"

#include <gtest/gtest.h>

namespace terway::netlink {
namespace {

TEST(SysctlPath, AcceptsDottedAndSlashKeys) {
  EXPECT_EQ(SysctlPath("net.ipv4.ip_forward").value(), "/proc/sys/net/ipv4/ip_forward");
  EXPECT_EQ(SysctlPath("net/ipv4/conf/eth0.100/rp_filter").value(),
            "/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
  EXPECT_EQ(SysctlPath("/net/ipv4/ip_forward").value(), "/proc/sys/net/ipv4/ip_forward");
}

TEST(SysctlPath, RefusesAnythingOutsideNet) {
  for (const char* bad : {"kernel.hostname", "net/../kernel/hostname", "", "netfoo.x", "vm/swappiness"}) {
    auto p = SysctlPath(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace terway::netlink
